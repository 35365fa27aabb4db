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
    /// What was done, in words.
    #[serde(default)]
    pub what: String,
    /// What it was.
    pub before: Registered,
    /// What it became.
    pub after: Registered,
    /// The notice of the change the municipality's people were sent, if it called for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<NoticeRef>,
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
