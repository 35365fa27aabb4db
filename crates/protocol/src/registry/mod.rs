//! The municipality registry: the 290 kommuner built into the binary, plus what the agency has
//! registered about each — secure addresses proven by a mailed code, S/MIME certificates,
//! postal addresses, contacts, and who may manage it on the portal.
//!
//! The seed is compiled in so that a fresh `kurir run` knows every kommunkod without a file.
//! Registered facts live in the store, so they survive restarts and have a history. This
//! module holds the types and the rules; the service changes them, the store keeps them.
//! `address` (postal address, contacts, address checks), `cert` (S/MIME certificates),
//! `code` (proof of an address), `person` (grants), `bulk` (CSV), `seed` (the built-in 290).

pub mod address;
pub mod bulk;
pub mod cert;
pub mod change;
pub mod code;
pub mod connection;
pub mod person;
pub mod route;
pub mod seed;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::job::Kommunkod;

pub use address::{check_email, Contact, EmailField, PostalAddress, PostalProblem};
pub use cert::{
    check_certificate_for_email, holds_private_key, CertPolicy, CertificateProblem, RegisteredCert,
    SmimeTrust,
};
pub use change::{changed_fields, diff, FieldChange, NoticeRef, RegistryAction, RegistryChange};
pub use code::{
    new_verification_code, CodeKey, PendingAddress, CODE_KEY_FILE, MAX_CODES_PER_HOUR,
    MAX_CODE_ATTEMPTS,
};
pub use person::{check_hsa_id, Grant, Person, Recorded, StaffGrant, StaffRole};
pub use route::DecisionRoute;
pub use seed::{Seed, SeedMunicipality};

use address::{check_phone, check_pin};
use code::legacy_hash;

/// Why a registry value cannot be accepted. Each variant names what it concerns, so every
/// surface words it in its own language from the variant (English here, for the command line;
/// Swedish on the portal) and nobody reads this text to learn which field was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "kebab-case")]
pub enum RegistryError {
    /// The built-in list is broken (a build defect, caught by tests).
    #[error("built-in municipality list, line {line}: {problem}")]
    Seed {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// The code is well-formed but no such municipality exists.
    #[error("unknown kommunkod {0}: not one of the 290 municipalities")]
    UnknownKommunkod(Kommunkod),
    /// A postal address that a print shop could not use.
    #[error("postal address: {0}")]
    PostalAddress(PostalProblem),
    /// A malformed e-mail address.
    #[error("{field}: {value:?} is not a valid e-mail address")]
    Email {
        /// Which address.
        field: EmailField,
        /// The value given.
        value: String,
    },
    /// A malformed telephone number.
    #[error("telephone number {0:?}: use digits, spaces, '+', '-' and parentheses")]
    Phone(String),
    /// A contact that is not `Name, phone, e-mail`.
    #[error("contact {0:?}: write it as \"Name, phone, e-mail\"")]
    Contact(String),
    /// A certificate kurir must not encrypt to.
    #[error("S/MIME certificate: {0}")]
    Certificate(CertificateProblem),
    /// A TLS pin that is not a SHA-256 in hex.
    #[error("TLS pin must be a SHA-256 in hex (64 characters, colons allowed), got {0:?}")]
    TlsPin(String),
    /// `--secure` takes yes or no.
    #[error("secure connection must be yes or no, got {0:?}")]
    Secure(String),
    /// Nothing is waiting for proof.
    #[error("kommun {0} has no address waiting for verification")]
    NothingPending(Kommunkod),
    /// `verify` was not run for the pending address.
    #[error("no verification code has been sent for {address}; run `kurir municipality verify {code}` first")]
    NoCodeSent {
        /// The municipality.
        code: Kommunkod,
        /// The pending address.
        address: String,
    },
    /// The code does not match.
    #[error("wrong verification code for kommun {0}")]
    WrongCode(Kommunkod),
    /// Too many wrong codes: the code is void and a new one must be sent.
    #[error("too many wrong verification codes for kommun {0}: the code is no longer valid; send a new one")]
    TooManyAttempts(Kommunkod),
    /// An HSA-id that is not one.
    #[error("HSA-id {0:?}: expected SE, a 10-digit organisation number, '-' and letters or digits (at most 31 characters)")]
    HsaId(String),
    /// The code is too old.
    #[error("the verification code for kommun {0} has expired; run verify again")]
    ExpiredCode(Kommunkod),
    /// A mail domain that is not one.
    #[error("{0:?} is not a mail domain (letters, digits, hyphens and dots)")]
    Domain(String),
    /// Nothing waits for approval.
    #[error("nothing of kommun {0} waits for approval")]
    NothingToApprove(Kommunkod),
    /// Too many codes were asked for within an hour.
    #[error("too many verification codes were sent to kommun {code} within an hour; the next may be sent at {next}")]
    TooManyCodes {
        /// The municipality.
        code: Kommunkod,
        /// When the next may be sent.
        next: Timestamp,
    },
}

/// What has been registered about a municipality beyond the built-in list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Registered {
    /// The municipality's official e-mail address.
    pub official_email: Option<String>,
    /// A specific address for decisions; used instead of the official one when set.
    pub decision_email: Option<String>,
    /// The agency has set up a secure connection (säker anslutning) with the municipality.
    pub secure_connection: bool,
    /// Switchboard or registry telephone.
    pub phone: Option<String>,
    /// People to call.
    pub contacts: Vec<Contact>,
    /// Postal address for letters.
    pub postal_address: Option<PostalAddress>,
    /// Certificate to encrypt to.
    pub smime_cert: Option<RegisteredCert>,
    /// SHA-256 (hex, lower case) of the receiving server's certificate or public key.
    pub tls_pin: Option<String>,
    /// The address proven to work: the only one documents are sent to.
    pub active_address: Option<String>,
    /// A new or changed address waiting for proof.
    pub pending: Option<PendingAddress>,
    /// Who may manage this registration in the portal.
    pub grants: Vec<Grant>,
    /// The municipality's mail domains, kept by the agency (seeded from the official address
    /// an operator registered). A decision address outside them may be proven, but is used
    /// only once an operator approves it.
    pub domains: Vec<String>,
    /// What a person changed that waits for the agency's approval before it is used.
    pub awaiting_approval: Option<Approval>,
    /// When verification codes were sent at a person's request (the last hour's, for the
    /// limit [`MAX_CODES_PER_HOUR`]).
    pub codes_sent: Vec<Timestamp>,
    /// Expiry notices sent for the registered certificate (by its SHA-256 and the days left
    /// they warned of), so each goes once.
    pub cert_notices: Vec<CertNotice>,
    /// Whom the municipality's route was last announced to: the proven address and the
    /// contacts it last had. Told again when a change leaves nobody else to tell, so that
    /// emptying everything first and then setting a new address is not a silent redirect.
    pub last_told: Vec<String>,
}

/// A change a person made on the portal that is used only once an agency operator approves
/// it: a proven decision address outside the municipality's domains, or a postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// A proven address outside the domains, to be used on approval.
    pub address: Option<String>,
    /// A postal address, to be used on approval.
    pub postal_address: Option<PostalAddress>,
    /// Since when it waits.
    pub since: Timestamp,
    /// Who asked for it.
    pub by: String,
}

impl Approval {
    /// A short fingerprint of exactly what waits (the address, the postal address, who asked
    /// and since when): `show` prints it and `approve` must name it, so an approval puts to
    /// use only what the operator reviewed, never what joined it afterwards.
    pub fn digest(&self) -> String {
        let text = format!(
            "address={}\npostal={}\nsince={}\nby={}\n",
            self.address.as_deref().unwrap_or(""),
            self.postal_address
                .as_ref()
                .map(|p| p.lines().join("|"))
                .unwrap_or_default(),
            self.since,
            self.by
        );
        crate::digest::sha256_hex(text.as_bytes())[..16].to_string()
    }

    /// What waits, in words, for the history (each item by itself).
    pub fn items(&self) -> String {
        let mut items = Vec::new();
        if let Some(address) = &self.address {
            items.push(format!("address {address}"));
        }
        if let Some(postal) = &self.postal_address {
            items.push(format!("postal address {}", postal.lines().join(", ")));
        }
        items.join("; ")
    }
}

/// An expiry notice already sent for a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertNotice {
    /// The certificate's SHA-256.
    pub sha256: String,
    /// The notice's threshold in days (30 or 7).
    pub days: u32,
}

/// Who makes a change, and what the agency trusts: a person on the portal may not put a
/// postal address or an address outside the municipality's domains to use by themselves, and
/// their certificate must chain to a CA the agency trusts.
#[derive(Default, Clone, Copy)]
pub struct ChangeContext<'a> {
    /// An agency operator makes it (command line, CSV): takes effect at once.
    pub by_agency: bool,
    /// The CAs S/MIME certificates must chain to (`[registry] smime_ca`).
    pub smime_trust: Option<&'a SmimeTrust>,
    /// Who, as recorded (for what waits for approval).
    pub who: &'a str,
}

impl ChangeContext<'_> {
    /// An operator's change with no CA to check certificates against.
    pub fn agency() -> ChangeContext<'static> {
        ChangeContext {
            by_agency: true,
            smime_trust: None,
            who: "",
        }
    }
}

/// What proving an address came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proven {
    /// The address is in use now.
    InUse(String),
    /// Proven, but outside the municipality's domains: used once an operator approves it.
    AwaitsApproval(String),
}

/// The domain of an address, lower case.
pub fn domain_of(address: &str) -> Option<String> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
}

/// Checks a mail domain: letters, digits, hyphens and dots, at least one dot.
pub fn check_domain(domain: &str) -> Result<String, RegistryError> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(d)
    } else {
        Err(RegistryError::Domain(domain.chars().take(100).collect()))
    }
}

impl Registered {
    /// The address the municipality asked for: the decision address, else the official one.
    pub fn wanted_address(&self) -> Option<&str> {
        self.decision_email
            .as_deref()
            .or(self.official_email.as_deref())
    }

    /// Keeps `pending` and `active_address` in step with the wanted address: a new address
    /// waits for proof while the proven one stays in use; a withdrawn address is dropped.
    fn refresh_addresses(&mut self, now: Timestamp) {
        let wanted = self.wanted_address().map(str::to_string);
        match wanted {
            None => {
                self.active_address = None;
                self.pending = None;
            }
            Some(w) if self.active_address.as_deref() == Some(w.as_str()) => {
                self.pending = None;
            }
            Some(w) => {
                if self.pending.as_ref().map(|p| p.address.as_str()) != Some(w.as_str()) {
                    self.pending = Some(PendingAddress {
                        address: w,
                        since: now,
                        code_sha256: None,
                        code_mac: None,
                        code_expires: None,
                        failed_attempts: 0,
                    });
                }
            }
        }
    }

    /// The registration as shown to people and other processes: without the hash of a
    /// verification code (it would let a 40-bit code be found offline).
    pub fn redacted(&self) -> Registered {
        let mut shown = self.clone();
        if let Some(p) = shown.pending.as_mut() {
            p.code_sha256 = None;
            p.code_mac = None;
        }
        shown
    }

    /// Whether `person` may manage this registration on the portal.
    pub fn admits(&self, person: &Person) -> bool {
        self.grants.iter().any(|g| g.admits(person))
    }

    /// Whether `address` lies in the municipality's domains (or a subdomain of one).
    pub fn in_domains(&self, address: &str) -> bool {
        let Some(domain) = domain_of(address) else {
            return false;
        };
        self.domains
            .iter()
            .any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
    }

    /// Applies an operator's changes, with no CA to check certificates against.
    pub fn apply(&mut self, changes: &Changes, now: Timestamp) -> Result<(), RegistryError> {
        self.apply_with(changes, now, ChangeContext::agency())
    }

    /// Applies a set of changes (each a string from a person or a CSV file) made in `context`.
    pub fn apply_with(
        &mut self,
        changes: &Changes,
        now: Timestamp,
        context: ChangeContext<'_>,
    ) -> Result<(), RegistryError> {
        let text = |v: &Option<String>| v.as_ref().map(|s| s.trim().to_string());
        if let Some(v) = text(&changes.email) {
            self.official_email = optional(v, |v| check_email(EmailField::Official, &v))?;
            // The agency's official address names the municipality's own mail domain.
            if context.by_agency && self.domains.is_empty() {
                self.domains
                    .extend(self.official_email.as_deref().and_then(domain_of));
            }
        }
        if let Some(v) = text(&changes.decision_email) {
            self.decision_email = optional(v, |v| check_email(EmailField::Decision, &v))?;
        }
        if let Some(v) = text(&changes.phone) {
            self.phone = optional(v, |v| check_phone(&v))?;
        }
        if let Some(list) = &changes.contacts {
            self.contacts = list
                .iter()
                .filter(|c| !c.trim().is_empty())
                .map(|c| Contact::parse(c))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = text(&changes.postal_address) {
            let postal = optional(v, |v| PostalAddress::parse(&v))?;
            match (context.by_agency, postal) {
                (true, postal) => self.postal_address = postal,
                // A person's new postal address is used once the agency approves it.
                (false, Some(postal)) => {
                    let waiting = self.awaiting_approval.get_or_insert_with(|| Approval {
                        address: None,
                        postal_address: None,
                        since: now,
                        by: context.who.to_string(),
                    });
                    waiting.postal_address = Some(postal);
                }
                // Removing it would send letters to the registry office: the agency's call.
                (false, None) => {
                    return Err(RegistryError::PostalAddress(PostalProblem::Empty));
                }
            }
        }
        if let Some(v) = &changes.smime_cert_pem {
            let policy = CertPolicy {
                trust: context.smime_trust,
                require_trust: !context.by_agency,
                address: self.wanted_address(),
            };
            self.smime_cert =
                optional(v.trim().to_string(), |v| RegisteredCert::accept(&v, policy))?;
        }
        if let Some(v) = text(&changes.tls_pin) {
            self.tls_pin = optional(v, |v| check_pin(&v))?;
        }
        if let Some(v) = text(&changes.secure) {
            self.secure_connection = match v.to_lowercase().as_str() {
                "yes" | "ja" | "true" | "1" => true,
                "no" | "nej" | "false" | "0" => false,
                _ => return Err(RegistryError::Secure(v)),
            };
        }
        self.refresh_addresses(now);
        Ok(())
    }

    /// Records a newly sent code for the pending address; returns that address.
    pub fn set_code(
        &mut self,
        code: Kommunkod,
        secret: &str,
        expires: Timestamp,
        key: &CodeKey,
    ) -> Result<String, RegistryError> {
        let pending = self
            .pending
            .as_mut()
            .ok_or(RegistryError::NothingPending(code))?;
        pending.code_mac = Some(key.seal(code, &pending.address, secret));
        pending.code_sha256 = None;
        pending.code_expires = Some(expires);
        pending.failed_attempts = 0;
        Ok(pending.address.clone())
    }

    /// Proves the pending address if `secret` is its current code. Single use: on success
    /// the pending entry (and its code) is gone, and the address is in use — or, proven by a
    /// person and outside the municipality's domains, waits for an operator's approval while
    /// decisions keep going where they went.
    pub fn confirm(
        &mut self,
        code: Kommunkod,
        secret: &str,
        now: Timestamp,
        key: &CodeKey,
        context: ChangeContext<'_>,
    ) -> Result<Proven, RegistryError> {
        let pending = self
            .pending
            .as_mut()
            .ok_or(RegistryError::NothingPending(code))?;
        let (computed, expected) = match (&pending.code_mac, &pending.code_sha256) {
            (Some(mac), _) => (key.seal(code, &pending.address, secret), mac.clone()),
            (None, Some(legacy)) => (legacy_hash(secret), legacy.clone()),
            (None, None) => {
                return Err(RegistryError::NoCodeSent {
                    code,
                    address: pending.address.clone(),
                })
            }
        };
        let Some(expires) = pending.code_expires else {
            return Err(RegistryError::NoCodeSent {
                code,
                address: pending.address.clone(),
            });
        };
        let matches = crate::digest::same_secret(&computed, &expected);
        if !matches {
            // Counted in the registration, which the caller saves also on this error.
            pending.failed_attempts += 1;
            if pending.failed_attempts >= MAX_CODE_ATTEMPTS {
                pending.code_mac = None;
                pending.code_sha256 = None;
                pending.code_expires = None;
                return Err(RegistryError::TooManyAttempts(code));
            }
            return Err(RegistryError::WrongCode(code));
        }
        if now > expires {
            return Err(RegistryError::ExpiredCode(code));
        }
        let address = pending.address.clone();
        self.pending = None;
        // Inside the municipality's own domains an address is used at once; outside them it
        // waits for an approval, whoever proved it: no single actor, operator or person,
        // moves decisions out of the municipality's mail system.
        if self.in_domains(&address) {
            self.active_address = Some(address.clone());
            if let Some(waiting) = self.awaiting_approval.as_mut() {
                waiting.address = None;
            }
            self.drop_empty_approval();
            return Ok(Proven::InUse(address));
        }
        let waiting = self.awaiting_approval.get_or_insert_with(|| Approval {
            address: None,
            postal_address: None,
            since: now,
            by: context.who.to_string(),
        });
        waiting.address = Some(address.clone());
        Ok(Proven::AwaitsApproval(address))
    }

    fn drop_empty_approval(&mut self) {
        if self
            .awaiting_approval
            .as_ref()
            .is_some_and(|a| a.address.is_none() && a.postal_address.is_none())
        {
            self.awaiting_approval = None;
        }
    }

    /// An operator approves what waits: the proven address and the postal address are used
    /// from now on. Returns what was approved.
    pub fn approve(&mut self, code: Kommunkod) -> Result<Approval, RegistryError> {
        let approved = self
            .awaiting_approval
            .take()
            .ok_or(RegistryError::NothingToApprove(code))?;
        // The operator vouches for this address, not for its whole domain.
        if let Some(address) = &approved.address {
            self.active_address = Some(address.clone());
        }
        if let Some(postal) = &approved.postal_address {
            self.postal_address = Some(postal.clone());
        }
        Ok(approved)
    }

    /// An operator refuses what waits: nothing of it is used. Returns what was refused.
    pub fn refuse(&mut self, code: Kommunkod) -> Result<Approval, RegistryError> {
        self.awaiting_approval
            .take()
            .ok_or(RegistryError::NothingToApprove(code))
    }

    /// Notes a verification code sent at a person's request, refusing past the limit of
    /// [`MAX_CODES_PER_HOUR`]; returns when the next may be sent if refused.
    pub fn note_code_request(&mut self, now: Timestamp) -> Result<(), Timestamp> {
        let hour = jiff::SignedDuration::from_hours(1);
        self.codes_sent.retain(|t| *t + hour > now);
        if self.codes_sent.len() >= MAX_CODES_PER_HOUR {
            let oldest = self.codes_sent.iter().min().copied().unwrap_or(now);
            return Err(oldest + hour);
        }
        self.codes_sent.push(now);
        Ok(())
    }
}

/// Changes to a registration as given on the command line or in a CSV row. `None` leaves a
/// field alone; an empty string clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Changes {
    /// Official e-mail.
    pub email: Option<String>,
    /// Address for decisions.
    pub decision_email: Option<String>,
    /// Telephone.
    pub phone: Option<String>,
    /// Contacts, each `Name, phone, e-mail` (replaces the list).
    pub contacts: Option<Vec<String>>,
    /// Postal address lines.
    pub postal_address: Option<String>,
    /// Certificate PEM text.
    pub smime_cert_pem: Option<String>,
    /// TLS pin.
    pub tls_pin: Option<String>,
    /// `yes` or `no`.
    pub secure: Option<String>,
}

fn optional<T>(
    value: String,
    parse: impl FnOnce(String) -> Result<T, RegistryError>,
) -> Result<Option<T>, RegistryError> {
    if value.is_empty() {
        Ok(None)
    } else {
        parse(value).map(Some)
    }
}

#[cfg(test)]
mod tests;

/// Why an operator holds a municipality.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldNote {
    /// Who.
    pub operator: String,
    /// Why.
    pub reason: String,
    /// Since when.
    pub at: Timestamp,
}
