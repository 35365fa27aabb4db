//! Routing: which channel a municipality's copy of a job takes. A pure function, so every rule
//! is a row in a table test and the decision never depends on I/O. The one routing rule:
//! intake routes a new job with it, the mail deliverer checks it again at every attempt, and
//! the service shows it.
//!
//! The rule (DOMAIN.md): protected e-mail only when kurir has a relay that enforces verified TLS,
//! the agency has agreed a secure connection with the municipality, kurir's own check of the
//! municipality's mail servers passed recently (`registry::connection`), and an address for it
//! has been proven to work.
//! Anything less goes by post: a document is never sent over a weaker route.

use crate::registry::connection::Standing;

/// The facts routing looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInput<'a> {
    /// An SMTP relay with required TLS is configured.
    pub relay_configured: bool,
    /// The municipality has a secure connection (säker anslutning).
    pub secure_connection: bool,
    /// The address proven to work (verified and active), if any.
    pub verified_address: Option<&'a str>,
    /// What kurir's check of the municipality's mail servers says.
    pub connection: Standing,
}

pub use crate::registry::route::{PostReason, Route};

/// Decides the route for one recipient.
pub fn route(input: RouteInput<'_>) -> Route {
    if !input.relay_configured {
        return Route::Post {
            reason: PostReason::NoRelay,
        };
    }
    if !input.secure_connection {
        return Route::Post {
            reason: PostReason::NoSecureConnection,
        };
    }
    let address = match input.verified_address {
        Some(address) if !address.is_empty() => address,
        _ => {
            return Route::Post {
                reason: PostReason::NoVerifiedAddress,
            }
        }
    };
    let refused = match input.connection {
        Standing::Verified | Standing::NotRequired => None,
        Standing::NotChecked => Some(PostReason::ConnectionNotChecked),
        Standing::Failed => Some(PostReason::ConnectionFailed),
        Standing::Outdated => Some(PostReason::ConnectionCheckOutdated),
    };
    match refused {
        Some(reason) => Route::Post { reason },
        None => Route::Email {
            address: address.to_string(),
        },
    }
}

/// The routing rule over what the store knows of a municipality now: its registration and the
/// latest check of its mail servers. Every place that routes (intake, each e-mail attempt, the
/// service's views, the desk's preview) asks this, so they cannot disagree.
pub fn route_registered(
    store: &crate::store::Store,
    registered: &crate::registry::Registered,
    relay_configured: bool,
    rule: crate::store::ConnectionRule,
) -> Result<Route, crate::store::StoreError> {
    let connection = store.connection_standing(registered, rule, jiff::Timestamp::now())?;
    Ok(route(RouteInput {
        relay_configured,
        secure_connection: registered.secure_connection,
        verified_address: registered.active_address.as_deref(),
        connection,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_table() {
        let addr = Some("registrator@umea.se");
        let table: &[(bool, bool, Option<&str>, Route)] = &[
            (
                false,
                true,
                addr,
                Route::Post {
                    reason: PostReason::NoRelay,
                },
            ),
            (
                false,
                false,
                None,
                Route::Post {
                    reason: PostReason::NoRelay,
                },
            ),
            (
                true,
                false,
                addr,
                Route::Post {
                    reason: PostReason::NoSecureConnection,
                },
            ),
            (
                true,
                true,
                None,
                Route::Post {
                    reason: PostReason::NoVerifiedAddress,
                },
            ),
            (
                true,
                true,
                Some(""),
                Route::Post {
                    reason: PostReason::NoVerifiedAddress,
                },
            ),
            (
                true,
                true,
                addr,
                Route::Email {
                    address: "registrator@umea.se".into(),
                },
            ),
        ];
        for (relay, secure, address, expected) in table {
            let got = route(RouteInput {
                relay_configured: *relay,
                secure_connection: *secure,
                verified_address: *address,
                connection: Standing::Verified,
            });
            assert_eq!(
                &got, expected,
                "relay={relay} secure={secure} address={address:?}"
            );
        }
    }

    #[test]
    fn an_agreed_connection_still_needs_kurirs_own_check() {
        let table = [
            (Standing::Verified, None),
            (Standing::NotRequired, None),
            (Standing::NotChecked, Some(PostReason::ConnectionNotChecked)),
            (Standing::Failed, Some(PostReason::ConnectionFailed)),
            (
                Standing::Outdated,
                Some(PostReason::ConnectionCheckOutdated),
            ),
        ];
        for (standing, post) in table {
            let got = route(RouteInput {
                relay_configured: true,
                secure_connection: true,
                verified_address: Some("registrator@umea.se"),
                connection: standing,
            });
            let expected = match post {
                Some(reason) => Route::Post { reason },
                None => Route::Email {
                    address: "registrator@umea.se".into(),
                },
            };
            assert_eq!(got, expected, "{standing:?}");
        }
    }
}
