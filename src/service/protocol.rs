//! The control sockets' server; their wire format and client are in
//! [`kurir_protocol::wire`], shared with the web programs.
//!
//! One request per connection: a JSON line `{"protocol":4,"principal":…,"command":…}`, answered
//! by one JSON line `{"protocol":4,"result":{"ok":<the call's reply>}|{"err":…}}`. Both ends
//! share the types ([`super::Call`] ties each call to its reply type), so a field cannot be
//! misspelt on one side and a call cannot be answered with another's reply; the `protocol`
//! number says which version of them a peer speaks, and a peer of another version gets a clear
//! error instead of a misread answer (a 0.1.0 client, which sends no number, gets one in the
//! form it understands). Version 4 (kurir 0.3) names each call by its type.
//!
//! Three doors, one per kind of caller. The operator socket (`<state>/kurir.sock`, mode 0600 in
//! the private state directory) takes operators' commands from the daemon's own user or root.
//! The portal socket (`[portal] socket`) takes requests on behalf of municipality persons only,
//! the desk socket (`[desk] socket`) on behalf of the agency's staff only: whatever a web
//! process sends, it cannot speak as an operator nor as the other door's people, and the
//! service checks the person's grants itself. The daemon tells the callers apart by the socket
//! a request came through and by the peer's credentials (SO_PEERCRED).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

pub use kurir_protocol::wire::{
    call, call_blocking, decode, Answer, ClientError, Response, CLIENT_TIMEOUT, PROTOCOL,
};

use super::{Command, Principal, Service, ServiceError};
use crate::net;

/// Longest request line from the operator's socket (a CSV import is the largest).
const MAX_OPERATOR_REQUEST_BYTES: u64 = 8 << 20;
/// Longest request line from the desk's socket: a decision, its PDFs in base64 (the desk
/// takes at most [`kurir_protocol::call::DESK_UPLOAD_BYTES`] of upload).
const MAX_DESK_REQUEST_BYTES: u64 = 64 << 20;
/// Longest request line from the portal's socket: a registration change with an S/MIME
/// certificate is the largest.
const MAX_PORTAL_REQUEST_BYTES: u64 = 1 << 20;
/// How long a request may take to arrive.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A request on the wire, as the daemon reads it: any call.
pub type Request = kurir_protocol::wire::Request<Command>;

/// Which socket a request came through, and so who may be speaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// The operator socket: the daemon's own user and root, as operators.
    Operator {
        /// The daemon's user id.
        own_uid: u32,
    },
    /// The portal socket: municipality persons signed in on the portal, and no one else.
    Portal {
        /// When set, the only user id the portal process may have.
        portal_uid: Option<u32>,
    },
    /// The desk socket: the agency's staff signed in on the desk, and no one else.
    Desk {
        /// When set, the only user id the desk process may have.
        desk_uid: Option<u32>,
    },
}

impl Door {
    /// Whether a peer with `uid` may knock at this door at all.
    fn admits_peer(self, uid: Option<u32>) -> bool {
        match (self, uid) {
            (_, None) => false,
            (Door::Operator { own_uid }, Some(uid)) => uid == own_uid || uid == 0,
            (Door::Portal { portal_uid: only } | Door::Desk { desk_uid: only }, Some(uid)) => {
                only.is_none_or(|only| only == uid)
            }
        }
    }

    /// Whether `principal` may speak through this door.
    fn admits(self, principal: &Principal) -> bool {
        matches!(
            (self, principal),
            (Door::Operator { .. }, Principal::Operator(_))
                | (
                    Door::Portal { .. },
                    Principal::Person(_) | Principal::Portal
                )
                | (Door::Desk { .. }, Principal::Staff(_) | Principal::Desk)
        )
    }
}

/// Binds a control socket at `path` with `mode` (a socket left by a killed daemon is removed
/// first).
pub fn bind(path: &Path, mode: u32) -> std::io::Result<tokio::net::UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(listener)
}

/// Serves a control socket until shutdown.
pub async fn serve(
    listener: tokio::net::UnixListener,
    door: Door,
    service: Service,
    shutdown: watch::Receiver<bool>,
) {
    // The web doors take the larger requests (a desk upload): fewer at once, so even a web
    // process that lies holds at most 16 × MAX_DESK_REQUEST_BYTES of the daemon.
    let connections = match door {
        Door::Operator { .. } => 64,
        Door::Portal { .. } | Door::Desk { .. } => 16,
    };
    let limits = net::Limits {
        connections,
        per_client: connections,
        grace: Duration::from_secs(30),
    };
    let what = match door {
        Door::Operator { .. } => "control socket",
        Door::Portal { .. } => "portal socket",
        Door::Desk { .. } => "desk socket",
    };
    net::serve(listener, limits, shutdown, what, move |stream, uid, _| {
        let service = service.clone();
        async move {
            if !door.admits_peer(uid) {
                tracing::warn!(socket = what, uid = ?uid, "refused a connection from a user that may not use this socket");
                return;
            }
            if let Err(e) = answer(stream, door, service).await {
                tracing::debug!(socket = what, error = %e, "control connection ended with an error");
            }
        }
    })
    .await;
}

async fn answer(
    stream: tokio::net::UnixStream,
    door: Door,
    service: Service,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let limit = match door {
        Door::Operator { .. } => MAX_OPERATOR_REQUEST_BYTES,
        // Registrations are small; only the desk sends documents.
        Door::Portal { .. } => MAX_PORTAL_REQUEST_BYTES,
        Door::Desk { .. } => MAX_DESK_REQUEST_BYTES,
    };
    let mut reader = tokio::io::BufReader::new(read).take(limit);
    tokio::time::timeout(READ_TIMEOUT, reader.read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let reply = match parse(&line) {
        Parsed::Legacy => legacy_refusal(),
        Parsed::Version(theirs) => encode(&Response {
            protocol: PROTOCOL,
            result: Answer::Err(ServiceError::Internal(format!(
                "this daemon speaks control protocol {PROTOCOL}, the client {theirs}: use the \
                 kurir of the daemon's version"
            ))),
        }),
        Parsed::Malformed(e) => encode(&Response {
            protocol: PROTOCOL,
            result: Answer::Err(ServiceError::Internal(format!("malformed request: {e}"))),
        }),
        Parsed::Request(request) => {
            let result = if door.admits(&request.principal) {
                match service.call(request.principal, request.command).await {
                    Ok(reply) => Answer::Ok(reply),
                    Err(e) => Answer::Err(e),
                }
            } else {
                tracing::warn!(
                    ?door,
                    "refused a request that may not come through this socket"
                );
                Answer::Err(ServiceError::NotPermitted)
            };
            encode(&Response {
                protocol: PROTOCOL,
                result,
            })
        }
    };
    write.write_all(&reply).await?;
    write.shutdown().await
}

enum Parsed {
    Request(Box<Request>),
    /// A client from before the protocol had a number (0.1.0).
    Legacy,
    Version(u64),
    Malformed(String),
}

fn parse(line: &str) -> Parsed {
    // Straight into the request: a large upload is not copied into a JSON tree first. Only a
    // line that is not a request of this version is looked at again, to say why.
    if let Ok(request) = serde_json::from_str::<Request>(line) {
        if request.protocol != PROTOCOL {
            return Parsed::Version(u64::from(request.protocol));
        }
        return Parsed::Request(Box::new(request));
    }
    /// Just the fields that tell versions apart.
    #[derive(serde::Deserialize)]
    struct Envelope {
        protocol: Option<u64>,
        op: Option<serde::de::IgnoredAny>,
    }
    match serde_json::from_str::<Envelope>(line) {
        Ok(Envelope {
            protocol: None,
            op: Some(_),
        }) => Parsed::Legacy,
        Ok(Envelope {
            protocol: Some(v), ..
        }) if v != u64::from(PROTOCOL) => Parsed::Version(v),
        _ => match serde_json::from_str::<Request>(line) {
            Ok(request) => Parsed::Request(Box::new(request)),
            Err(e) => Parsed::Malformed(e.to_string()),
        },
    }
}

/// The answer a 0.1.0 client understands: `{"ok":false,"error":…}`.
fn legacy_refusal() -> Vec<u8> {
    let mut bytes = serde_json::to_vec(&serde_json::json!({
        "ok": false,
        "error": format!(
            "this daemon speaks control protocol {PROTOCOL} and this kurir command is older: \
             use the kurir command of the daemon's version"
        ),
    }))
    .unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

fn encode(response: &Response) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(response).unwrap_or_else(|e| {
        format!("{{\"protocol\":{PROTOCOL},\"result\":{{\"err\":{{\"internal\":\"{e}\"}}}}}}")
            .into_bytes()
    });
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(protocol: u32) -> String {
        serde_json::to_string(&Request {
            protocol,
            principal: Principal::Operator("drift".into()),
            command: crate::service::call::Queue {}.into(),
        })
        .unwrap_or_default()
    }

    #[test]
    fn a_request_of_this_version_is_read() {
        assert!(matches!(parse(&line(PROTOCOL)), Parsed::Request(_)));
    }

    #[test]
    fn a_request_of_another_version_is_refused_even_when_it_decodes() {
        assert!(matches!(
            parse(&line(PROTOCOL + 1)),
            Parsed::Version(v) if v == u64::from(PROTOCOL + 1)
        ));
    }

    #[test]
    fn a_010_client_line_is_recognised() {
        assert!(matches!(
            parse(r#"{"op":"status","id":"x"}"#),
            Parsed::Legacy
        ));
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(parse("{not json"), Parsed::Malformed(_)));
    }

    /// The wire as protocol 4 writes it, byte for byte: a change here is a new protocol version.
    #[test]
    fn the_wire_format_of_protocol_4_is_pinned() {
        use crate::service::call;
        let staff = Principal::Staff(crate::registry::Person {
            hsa_id: "SE2021000001-a1".into(),
            name: "A".into(),
            issuer: Some("CN=CA".into()),
        });
        let golden = [
            (
                Request {
                    protocol: 4,
                    principal: staff,
                    command: call::DeskJobs {
                        search: String::new(),
                        filter: call::DeskFilter::AlertOpen,
                        limit: 5,
                    }
                    .into(),
                },
                r#"{"protocol":4,"principal":{"staff":{"hsa_id":"SE2021000001-a1","name":"A","issuer":"CN=CA"}},"command":{"command":"DeskJobs","search":"","filter":"alert-open","limit":5}}"#,
            ),
            (
                Request {
                    protocol: 4,
                    principal: Principal::Operator("drift".into()),
                    command: call::Queue {}.into(),
                },
                r#"{"protocol":4,"principal":{"operator":"drift"},"command":{"command":"Queue"}}"#,
            ),
            (
                Request {
                    protocol: 4,
                    principal: Principal::Desk,
                    command: call::PortalReport {
                        crls: vec![],
                        issuers: vec!["CN=CA".into()],
                    }
                    .into(),
                },
                r#"{"protocol":4,"principal":"desk","command":{"command":"PortalReport","crls":[],"issuers":["CN=CA"]}}"#,
            ),
        ];
        for (request, line) in golden {
            assert_eq!(serde_json::to_string(&request).unwrap_or_default(), line);
            assert!(
                matches!(parse(line), Parsed::Request(r) if r.command == request.command),
                "{line}"
            );
        }
        // A client writes one call tagged with its name (the web programs know no
        // `Command`); the daemon reads it as the same command.
        let call = call::DeskJobs {
            search: "2480".into(),
            filter: call::DeskFilter::ByPost,
            limit: 7,
        };
        let client = serde_json::to_string(&kurir_protocol::wire::Request {
            protocol: PROTOCOL,
            principal: Principal::Desk,
            command: kurir_protocol::wire::Tagged(&call),
        })
        .unwrap_or_default();
        assert!(
            matches!(parse(&client), Parsed::Request(r) if r.command == call.clone().into()),
            "{client}"
        );
        // Answers: the call's reply bare, or the refusal by name.
        let answers = [
            (
                Answer::Ok(serde_json::json!(null)),
                r#"{"protocol":4,"result":{"ok":null}}"#,
            ),
            (
                Answer::Err(ServiceError::NotPermitted),
                r#"{"protocol":4,"result":{"err":"not-permitted"}}"#,
            ),
        ];
        for (result, line) in answers {
            let response = Response {
                protocol: 4,
                result,
            };
            assert_eq!(serde_json::to_string(&response).unwrap_or_default(), line);
        }
    }

    /// Protocol 2 (kurir 0.2) wrapped replies in the variant's name, protocol 3 named calls in
    /// kebab-case; their requests are refused with the version this daemon speaks rather than
    /// answered in a shape they would misread.
    #[test]
    fn requests_of_protocols_2_and_3_are_refused_by_version() {
        for v in [2, 3] {
            let line = format!(
                r#"{{"protocol":{v},"principal":{{"operator":"drift"}},"command":{{"command":"queue"}}}}"#
            );
            assert!(matches!(parse(&line), Parsed::Version(x) if x == v));
        }
    }
}
