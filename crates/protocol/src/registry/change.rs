//! A change of a registration as the history keeps it, and the differences between two.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Registered;

/// One change to a municipality's registration: who, when, what, before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryChange {
    /// When.
    pub at: Timestamp,
    /// Operator name (command line or OS user).
    pub operator: String,
    /// What was done, in words (the audit chain's and the command line's English; written
    /// from [`RegistryChange::action`] since 0.3).
    #[serde(default)]
    pub what: String,
    /// What was done, as a value each surface words itself (`None` in entries written before
    /// kurir 0.3: their `what` is all there is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<RegistryAction>,
    /// What it was.
    pub before: Registered,
    /// What it became.
    pub after: Registered,
    /// The notice of the change the municipality's people were sent, if it called for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<NoticeRef>,
}

/// What a change of a registration did: the kinds of entry a municipality's history holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RegistryAction {
    /// Fields were set (by the portal, an operator, or an operator's import).
    Set,
    /// Fields were set by an import of many municipalities.
    Import,
    /// A verification code went to the address that waits to be confirmed.
    CodeSent {
        /// The address.
        address: String,
    },
    /// A wrong verification code was typed.
    WrongCode,
    /// The address was confirmed by its code.
    Confirmed {
        /// The address.
        address: String,
        /// It lies outside the municipality's mail domains and waits for the agency's
        /// approval before it is used.
        awaits_approval: bool,
    },
    /// The agency approved what waited for approval.
    Approved {
        /// The digest of what the operator reviewed.
        digest: String,
        /// What was approved, as the approval listed it.
        items: String,
    },
    /// The agency refused what waited for approval.
    Refused {
        /// Why.
        reason: String,
    },
    /// The municipality's mail domains were set.
    Domains {
        /// The domains now.
        domains: Vec<String>,
    },
    /// A person was let manage the municipality on the portal.
    AccessGranted {
        /// Their HSA-id.
        hsa_id: String,
    },
    /// A person's portal access was taken away.
    AccessRevoked {
        /// Their HSA-id.
        hsa_id: String,
    },
    /// The municipality was told its S/MIME certificate expires soon.
    CertificateExpiryNotice {
        /// The notice's threshold, in days before expiry.
        days: u32,
    },
    /// kurir's check of the municipality's mail servers failed; its people were told what
    /// to fix.
    ConnectionCheckFailed,
}

impl std::fmt::Display for RegistryAction {
    /// The English the audit chain and the command line record (`RegistryChange::what`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryAction::Set => f.write_str("set"),
            RegistryAction::Import => f.write_str("import"),
            RegistryAction::CodeSent { address } => {
                write!(f, "verification code sent to {address}")
            }
            RegistryAction::WrongCode => f.write_str("wrong verification code"),
            RegistryAction::Confirmed {
                address,
                awaits_approval: false,
            } => write!(f, "address {address} confirmed"),
            RegistryAction::Confirmed { address, .. } => write!(
                f,
                "address {address} confirmed; outside the municipality's mail domains, it \
                 waits for the agency's approval"
            ),
            RegistryAction::Approved { digest, items } => {
                write!(
                    f,
                    "approved what waited for approval (digest {digest}): {items}"
                )
            }
            RegistryAction::Refused { reason } => {
                write!(f, "refused what waited for approval: {reason}")
            }
            RegistryAction::Domains { domains } => {
                write!(f, "mail domains now {}", domains.join(", "))
            }
            RegistryAction::AccessGranted { hsa_id } => {
                write!(f, "portal access granted to {hsa_id}")
            }
            RegistryAction::AccessRevoked { hsa_id } => {
                write!(f, "portal access revoked for {hsa_id}")
            }
            RegistryAction::CertificateExpiryNotice { days } => {
                write!(f, "certificate expiry notice ({days} days) queued")
            }
            RegistryAction::ConnectionCheckFailed => {
                f.write_str("connection check failed: the municipality was told what to fix")
            }
        }
    }
}

/// Who a notice of a change went to, and what it was called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeRef {
    /// The addresses.
    pub to: Vec<String>,
    /// Its subject.
    pub subject: String,
}

/// One field that differs between two registrations: its name, and its value before and after
/// (a certificate by its SHA-256).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The field's name in the registration.
    pub field: String,
    /// What it was.
    pub before: Value,
    /// What it became.
    pub after: Value,
}

/// Field-by-field differences between two registrations, for dry runs and replies.
pub fn diff(before: &Registered, after: &Registered) -> Vec<FieldChange> {
    let (Ok(Value::Object(b)), Ok(Value::Object(a))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return Vec::new();
    };
    a.iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, v)| {
            let shown = |x: Option<&Value>| match (k.as_str(), x) {
                ("smime_cert", Some(Value::Object(o))) => {
                    o.get("sha256").cloned().unwrap_or(Value::Null)
                }
                (_, Some(v)) => v.clone(),
                (_, None) => Value::Null,
            };
            FieldChange {
                field: k.clone(),
                before: shown(b.get(k)),
                after: shown(Some(v)),
            }
        })
        .collect()
}

/// The names of the fields that differ (values are not audited: they may name people).
pub fn changed_fields(before: &Registered, after: &Registered) -> Vec<String> {
    diff(before, after).into_iter().map(|c| c.field).collect()
}
