//! Who may act for a municipality on the portal: a person, known by the HSA-id on their SITHS
//! certificate, and the grants the agency gives such persons.

use serde::{Deserialize, Serialize};

use super::RegistryError;

/// A person signed in with a SITHS certificate, as the portal read it from a verified TLS
/// client certificate: the HSA-id (the subject's `serialNumber`), the name (`CN`) and the
/// issuing CA's subject. The daemon never takes the portal's word for what this person may
/// do: it checks the person's grants itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Person {
    /// The HSA-id, e.g. `SE2321000016-abc1`.
    pub hsa_id: String,
    /// The certificate's common name.
    pub name: String,
    /// The issuing CA's subject, e.g. `CN=SITHS e-id Person HSA-id 3 CA v1,O=Inera AB,C=SE`.
    #[serde(default)]
    pub issuer: Option<String>,
}

impl Person {
    /// How the person is named as the operator in histories and the audit chain, when they
    /// act on the municipality portal.
    pub fn operator(&self) -> String {
        format!("{} ({}) via portal", self.hsa_id, self.name)
    }

    /// How a member of staff is named in histories and the audit chain, when they act on the
    /// dispatch desk.
    pub fn on_desk(&self) -> String {
        format!("{} ({}) via desk", self.hsa_id, self.name)
    }
}

/// Who a history or the audit chain names, read back from the words [`Person::operator`],
/// [`Person::on_desk`] and an operator's name give: the one reader of that one format, so that
/// a page can say "by whom" in its own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A municipality person on the portal.
    Portal {
        /// Their HSA-id.
        hsa_id: String,
        /// Their name.
        name: String,
    },
    /// A member of the agency's staff on the dispatch desk.
    Desk {
        /// Their HSA-id.
        hsa_id: String,
        /// Their name.
        name: String,
    },
    /// kurir itself (a scheduled notice, a failed check).
    Kurir,
    /// An operator at the command line (or a web process), by name.
    Operator(String),
}

impl Recorded {
    /// Reads `text` as recorded.
    pub fn read(text: &str) -> Recorded {
        let person = |rest: &str| {
            let (hsa_id, name) = rest.split_once(" (")?;
            Some((hsa_id.to_string(), name.strip_suffix(')')?.to_string()))
        };
        if let Some((hsa_id, name)) = text.strip_suffix(" via portal").and_then(person) {
            return Recorded::Portal { hsa_id, name };
        }
        if let Some((hsa_id, name)) = text.strip_suffix(" via desk").and_then(person) {
            return Recorded::Desk { hsa_id, name };
        }
        match text {
            "kurir" => Recorded::Kurir,
            other => Recorded::Operator(other.to_string()),
        }
    }
}

/// A person the agency lets manage a municipality's registration in the portal, by the HSA-id
/// on their SITHS certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The HSA-id (the certificate subject's serialNumber), e.g. `SE2321000016-abc1`.
    pub hsa_id: String,
    /// The person's name, for the history and the page.
    #[serde(default)]
    pub name: Option<String>,
    /// The CA that issued the person's card (its subject): an HSA-id is unique only within
    /// its CA. `None` for a grant made by kurir 0.1.0, which names no CA (doctor warns).
    #[serde(default)]
    pub issuer: Option<String>,
}

impl Grant {
    /// Whether this grant is for `person`: the same HSA-id, from the same CA.
    pub fn admits(&self, person: &Person) -> bool {
        self.hsa_id == person.hsa_id
            && self
                .issuer
                .as_ref()
                .is_none_or(|issuer| person.issuer.as_deref() == Some(issuer.as_str()))
    }
}

/// Checks the form of an HSA-id: `SE`, ten digits, `-`, then letters and digits; at most 31
/// characters (Inera's format for person HSA-ids).
pub fn check_hsa_id(hsa_id: &str) -> Result<(), RegistryError> {
    let ok = hsa_id.len() <= 31
        && hsa_id.len() > 13
        && hsa_id.is_ascii()
        && hsa_id.starts_with("SE")
        && hsa_id[2..12].bytes().all(|b| b.is_ascii_digit())
        && hsa_id.as_bytes()[12] == b'-'
        && hsa_id[13..].bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(RegistryError::HsaId(hsa_id.chars().take(40).collect()))
    }
}

/// What a member of the agency's own staff may do on the dispatch desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum StaffRole {
    /// A caseworker at Bosättningsenheten: sends decisions, follows them, phones the
    /// municipalities, sends again or by post, cancels a decision sent in error.
    #[serde(rename = "handläggare")]
    #[cfg_attr(feature = "clap", value(name = "handläggare", alias = "handlaggare"))]
    Handlaggare,
    /// Operations: follows every decision, sends again or by post, holds, releases and
    /// cancels; sends no decision of its own.
    #[serde(rename = "drift")]
    #[cfg_attr(feature = "clap", value(name = "drift"))]
    Drift,
}

impl StaffRole {
    /// The role's name, as the command line and the desk show it.
    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Handlaggare => "handläggare",
            StaffRole::Drift => "drift",
        }
    }
}

/// A person of the agency's own staff the desk lets in, by the HSA-id on their SITHS card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffGrant {
    /// The HSA-id.
    pub hsa_id: String,
    /// The person's name.
    pub name: String,
    /// What they may do.
    pub role: StaffRole,
    /// The CA that issues their card (its subject): an HSA-id is unique only within its CA.
    pub issuer: Option<String>,
    /// Who granted it.
    pub granted_by: String,
    /// When.
    pub granted_at: jiff::Timestamp,
}

impl StaffGrant {
    /// Whether this grant is for `person`: the same HSA-id, from the same CA.
    pub fn admits(&self, person: &Person) -> bool {
        self.hsa_id == person.hsa_id
            && self
                .issuer
                .as_ref()
                .is_none_or(|issuer| person.issuer.as_deref() == Some(issuer.as_str()))
    }
}

#[cfg(test)]
mod recorded_tests {
    use super::*;

    fn person() -> Person {
        Person {
            hsa_id: "SE2321000016-abc1".into(),
            name: "Anna (Ann) Berg".into(),
            issuer: None,
        }
    }

    #[test]
    fn what_a_person_is_recorded_as_reads_back_as_the_same_person() {
        assert_eq!(
            Recorded::read(&person().operator()),
            Recorded::Portal {
                hsa_id: "SE2321000016-abc1".into(),
                name: "Anna (Ann) Berg".into()
            }
        );
        assert_eq!(
            Recorded::read(&person().on_desk()),
            Recorded::Desk {
                hsa_id: "SE2321000016-abc1".into(),
                name: "Anna (Ann) Berg".into()
            }
        );
        assert_eq!(Recorded::read("kurir"), Recorded::Kurir);
        assert_eq!(
            Recorded::read("ops-erik"),
            Recorded::Operator("ops-erik".into())
        );
    }
}
