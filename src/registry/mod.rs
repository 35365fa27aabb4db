//! The municipality registry: the 290 kommuner built into the binary, plus what the agency has
//! registered about each (postal address today; secure e-mail addresses build on it).
//!
//! The seed is compiled in so that a fresh `kurir run` knows every kommunkod without a file.
//! Registered facts live in the store, so they survive restarts and have a history.

pub mod bulk;

use std::collections::BTreeMap;

use jiff::Timestamp;
use openssl::x509::{X509ExtendedKeyUsage, X509};
use serde::{Deserialize, Serialize};

use crate::job::Kommunkod;

/// The SCB list from `config/municipalities.csv`, compiled in.
const SEED_CSV: &str = include_str!("../../config/municipalities.csv");

/// A municipality as the seed knows it: code, official name and county.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeedMunicipality {
    /// Four-digit code.
    pub code: Kommunkod,
    /// Official name, e.g. "Umeå kommun", "Region Gotland".
    pub name: String,
    /// Two-digit county (län) code.
    pub county: String,
}

/// Why a registry value cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    PostalAddress(String),
    /// A malformed e-mail address.
    #[error("{field}: {value:?} is not a valid e-mail address")]
    Email {
        /// Which setting.
        field: &'static str,
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
    Certificate(String),
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
}

/// The built-in list of municipalities, indexed by code.
#[derive(Debug, Clone)]
pub struct Seed {
    by_code: BTreeMap<Kommunkod, SeedMunicipality>,
}

impl Seed {
    /// Parses the compiled-in list, correcting the known defects of the source data set.
    pub fn builtin() -> Result<Seed, RegistryError> {
        let mut by_code = BTreeMap::new();
        let mut reader = csv::Reader::from_reader(SEED_CSV.as_bytes());
        for (i, row) in reader.records().enumerate() {
            let line = i + 2;
            let row = row.map_err(|e| RegistryError::Seed {
                line,
                problem: e.to_string(),
            })?;
            let field = |n: usize| row.get(n).unwrap_or("").trim().to_string();
            let code: Kommunkod =
                field(0)
                    .parse()
                    .map_err(|e: crate::job::ParseError| RegistryError::Seed {
                        line,
                        problem: e.to_string(),
                    })?;
            let name = official_name(code, &field(1));
            by_code.insert(
                code,
                SeedMunicipality {
                    code,
                    name,
                    county: field(3),
                },
            );
        }
        Ok(Seed { by_code })
    }

    /// The municipality with this code, if it exists.
    pub fn get(&self, code: Kommunkod) -> Option<&SeedMunicipality> {
        self.by_code.get(&code)
    }

    /// Checks that a code names a real municipality.
    pub fn require(&self, code: Kommunkod) -> Result<&SeedMunicipality, RegistryError> {
        self.get(code).ok_or(RegistryError::UnknownKommunkod(code))
    }

    /// All municipalities in code order.
    pub fn iter(&self) -> impl Iterator<Item = &SeedMunicipality> {
        self.by_code.values()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    /// Whether the list is empty (never, for the built-in one).
    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }
}

/// The data set's `municipality_name` with its known defects corrected (see shared/data).
fn official_name(code: Kommunkod, raw: &str) -> String {
    match code.as_str() {
        "0880" => "Kalmar kommun".into(),
        "2080" => "Falu kommun".into(),
        "2514" => "Kalix kommun".into(),
        "2513" => "Överkalix kommun".into(),
        "0980" => "Region Gotland".into(),
        _ => raw.to_string(),
    }
}

/// A Swedish postal address as a print shop's manifest wants it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostalAddress {
    /// "c/o" line, if any (without the "c/o ").
    pub care_of: Option<String>,
    /// Street address or box.
    pub street: String,
    /// A second street line (floor, apartment, department), if any.
    pub extra: Option<String>,
    /// Five digits written `nnn nn`.
    pub postnummer: String,
    /// Postort.
    pub postort: String,
}

impl PostalAddress {
    /// Parses lines like `"Skolgatan 31A\n901 84 Umeå"`; `\n` may be a real newline or the two
    /// characters backslash-n (as typed in a shell). A first line `c/o …` is the care-of line.
    pub fn parse(text: &str) -> Result<PostalAddress, RegistryError> {
        let bad = |s: &str| RegistryError::PostalAddress(s.to_string());
        let normalized = text.replace("\\n", "\n");
        let mut lines: Vec<&str> = normalized
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines
            .iter()
            .any(|l| l.chars().count() > 60 || l.chars().any(char::is_control))
        {
            return Err(bad(
                "each line must be at most 60 characters, without control characters",
            ));
        }
        let last = lines
            .pop()
            .ok_or_else(|| bad("give at least a street line and a line `nnn nn Postort`"))?;
        let (postnummer, postort) = split_postnummer(last)
            .ok_or_else(|| bad("the last line must be `nnn nn Postort`, e.g. `901 84 Umeå`"))?;
        let care_of = match lines.first() {
            Some(l) if l.to_lowercase().starts_with("c/o ") => {
                let rest = l[4..].trim().to_string();
                lines.remove(0);
                Some(rest)
            }
            _ => None,
        };
        let (street, extra) = match lines.as_slice() {
            [street] => (street.to_string(), None),
            [street, extra] => (street.to_string(), Some(extra.to_string())),
            [] => return Err(bad("a street or box line is missing")),
            _ => {
                return Err(bad(
                    "at most: c/o line, two street lines, postnummer and postort",
                ))
            }
        };
        Ok(PostalAddress {
            care_of,
            street,
            extra,
            postnummer,
            postort,
        })
    }

    /// The address lines below the recipient's name, as printed in the window.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(c) = &self.care_of {
            out.push(format!("c/o {c}"));
        }
        out.push(self.street.clone());
        if let Some(e) = &self.extra {
            out.push(e.clone());
        }
        out.push(format!("{} {}", self.postnummer, self.postort));
        out
    }
}

/// Splits `"901 84 Umeå"` or `"90184 Umeå"` into (`"901 84"`, `"Umeå"`).
fn split_postnummer(line: &str) -> Option<(String, String)> {
    let digits: String = line
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ' ')
        .collect();
    let only_digits: String = digits.chars().filter(char::is_ascii_digit).collect();
    if only_digits.len() != 5 {
        return None;
    }
    let postort = line[digits.len()..].trim().to_string();
    if postort.is_empty() || postort.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((
        format!("{} {}", &only_digits[..3], &only_digits[3..]),
        postort,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_list_has_all_290_with_corrected_names() {
        let seed = Seed::builtin().expect("seed parses");
        assert_eq!(seed.len(), 290);
        let name = |c: &str| {
            seed.get(c.parse().expect("code"))
                .expect("exists")
                .name
                .clone()
        };
        assert_eq!(name("2480"), "Umeå kommun");
        assert_eq!(name("0980"), "Region Gotland");
        assert_eq!(name("0880"), "Kalmar kommun");
        assert_eq!(name("2080"), "Falu kommun");
        assert_eq!(name("2514"), "Kalix kommun");
        assert_eq!(name("2513"), "Överkalix kommun");
        assert!(seed.get("9999".parse().expect("code")).is_none());
    }

    #[test]
    fn postal_address_parses_typed_and_real_newlines() {
        let a = PostalAddress::parse("Skolgatan 31A\\n90184 Umeå").expect("valid");
        assert_eq!(a.postnummer, "901 84");
        assert_eq!(a.postort, "Umeå");
        assert_eq!(a.street, "Skolgatan 31A");
        let b =
            PostalAddress::parse("c/o Socialtjänsten\nBox 1\nPlan 2\n901 84 UMEÅ").expect("valid");
        assert_eq!(b.care_of.as_deref(), Some("Socialtjänsten"));
        assert_eq!(b.extra.as_deref(), Some("Plan 2"));
        assert_eq!(b.lines().len(), 4);
    }

    #[test]
    fn postal_address_without_postnummer_is_refused() {
        assert!(PostalAddress::parse("Skolgatan 31A\nUmeå").is_err());
        assert!(PostalAddress::parse("901 84 Umeå").is_err());
        assert!(PostalAddress::parse("Gata 1\n9018 Umeå").is_err());
    }
}

/// A contact person at the municipality, for operations to call when delivery fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Name.
    pub name: String,
    /// Telephone.
    pub phone: String,
    /// E-mail.
    pub email: String,
}

impl Contact {
    /// Parses `"Name, phone, e-mail"`.
    pub fn parse(text: &str) -> Result<Contact, RegistryError> {
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        let [name, phone, email] = parts.as_slice() else {
            return Err(RegistryError::Contact(text.chars().take(100).collect()));
        };
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(RegistryError::Contact(text.chars().take(100).collect()));
        }
        Ok(Contact {
            name: name.to_string(),
            phone: check_phone(phone)?,
            email: check_email("contact e-mail", email)?,
        })
    }
}

impl std::fmt::Display for Contact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, {}, {}", self.name, self.phone, self.email)
    }
}

/// A municipality's S/MIME certificate as registered: kept as PEM with what was checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredCert {
    /// The certificate.
    pub pem: String,
    /// SHA-256 of its DER form, hex: the fingerprint named in receipts.
    pub sha256: String,
    /// Its subject, for people.
    pub subject: String,
    /// Its expiry, as OpenSSL prints it.
    pub not_after: String,
}

impl RegisteredCert {
    /// Accepts a certificate only if it is valid now and made for e-mail protection.
    pub fn parse(pem: &str) -> Result<RegisteredCert, RegistryError> {
        let bad = |s: &str| RegistryError::Certificate(s.to_string());
        let cert = X509::from_pem(pem.as_bytes()).map_err(|_| bad("not a PEM certificate"))?;
        check_certificate_for_email(&cert).map_err(RegistryError::Certificate)?;
        let der = cert.to_der().map_err(|_| bad("cannot be encoded"))?;
        let subject = cert
            .subject_name()
            .entries()
            .map(|e| {
                let key = e.object().nid().short_name().unwrap_or("?");
                let value = e.data().to_string().unwrap_or_default();
                format!("{key}={value}")
            })
            .collect::<Vec<_>>()
            .join(", ");
        Ok(RegisteredCert {
            pem: pem.to_string(),
            sha256: crate::digest::sha256_hex(&der),
            subject,
            not_after: cert.not_after().to_string(),
        })
    }

    /// The certificate, parsed.
    pub fn x509(&self) -> Result<X509, openssl::error::ErrorStack> {
        X509::from_pem(self.pem.as_bytes())
    }
}

/// Checks that a certificate may sign or receive S/MIME now: within its validity and, if it
/// restricts its purposes, allowed e-mail protection. The words say what is wrong.
pub fn check_certificate_for_email(cert: &X509) -> Result<(), String> {
    let now = openssl::asn1::Asn1Time::days_from_now(0).map_err(|e| e.to_string())?;
    if cert.not_after() < now {
        return Err(format!("expired on {}", cert.not_after()));
    }
    if cert.not_before() > now {
        return Err(format!("not valid before {}", cert.not_before()));
    }
    if let Some(eku) = cert.extended_key_usage() {
        if !eku.intersects(X509ExtendedKeyUsage::SMIME | X509ExtendedKeyUsage::ANYEKU) {
            return Err(
                "not made for e-mail protection (extended key usage lacks emailProtection)".into(),
            );
        }
    }
    Ok(())
}

/// An address that was registered but has not yet been proven to receive mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAddress {
    /// The address waiting for proof.
    pub address: String,
    /// When it was registered.
    pub since: Timestamp,
    /// SHA-256 of the code sent to it (the code itself is never stored).
    pub code_sha256: Option<String>,
    /// When the code stops being accepted.
    pub code_expires: Option<Timestamp>,
    /// Wrong codes typed since the code was sent; at [`MAX_CODE_ATTEMPTS`] the code is void.
    #[serde(default)]
    pub failed_attempts: u32,
}

/// Wrong verification codes accepted before a code is void: with a 40-bit code, five guesses
/// give an attacker no useful chance.
pub const MAX_CODE_ATTEMPTS: u32 = 5;

/// A person the agency lets manage a municipality's registration in the portal, by the HSA-id
/// on their SITHS certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The HSA-id (the certificate subject's serialNumber), e.g. `SE2321000016-abc1`.
    pub hsa_id: String,
    /// The person's name, for the history and the page.
    #[serde(default)]
    pub name: Option<String>,
}

/// Checks the form of an HSA-id: `SE`, ten digits, `-`, then letters and digits; at most 31
/// characters (Inera's format for person HSA-ids).
pub fn check_hsa_id(hsa_id: &str) -> Result<(), RegistryError> {
    let ok = hsa_id.len() <= 31
        && hsa_id.len() > 13
        && hsa_id.starts_with("SE")
        && hsa_id[2..12].bytes().all(|b| b.is_ascii_digit())
        && hsa_id.as_bytes()[12] == b'-'
        && hsa_id[13..].bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(RegistryError::HsaId(hsa_id.to_string()))
    }
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
                        code_expires: None,
                        failed_attempts: 0,
                    });
                }
            }
        }
    }

    /// Applies a set of changes (each already a string from a person or a CSV file).
    pub fn apply(&mut self, changes: &Changes, now: Timestamp) -> Result<(), RegistryError> {
        let text = |v: &Option<String>| v.as_ref().map(|s| s.trim().to_string());
        if let Some(v) = text(&changes.email) {
            self.official_email = optional(v, |v| check_email("e-mail", &v))?;
        }
        if let Some(v) = text(&changes.decision_email) {
            self.decision_email = optional(v, |v| check_email("decision e-mail", &v))?;
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
            self.postal_address = optional(v, |v| PostalAddress::parse(&v))?;
        }
        if let Some(v) = &changes.smime_cert_pem {
            self.smime_cert = optional(v.trim().to_string(), |v| RegisteredCert::parse(&v))?;
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
    ) -> Result<String, RegistryError> {
        let pending = self
            .pending
            .as_mut()
            .ok_or(RegistryError::NothingPending(code))?;
        pending.code_sha256 = Some(hash_code(secret));
        pending.code_expires = Some(expires);
        pending.failed_attempts = 0;
        Ok(pending.address.clone())
    }

    /// Makes the pending address active if `secret` is its current code. Single use: on
    /// success the pending entry (and its code) is gone.
    pub fn confirm(
        &mut self,
        code: Kommunkod,
        secret: &str,
        now: Timestamp,
    ) -> Result<String, RegistryError> {
        let pending = self
            .pending
            .as_mut()
            .ok_or(RegistryError::NothingPending(code))?;
        let (Some(expected), Some(expires)) = (&pending.code_sha256, pending.code_expires) else {
            return Err(RegistryError::NoCodeSent {
                code,
                address: pending.address.clone(),
            });
        };
        if &hash_code(secret) != expected {
            // Counted in the registration, which the caller saves also on this error.
            pending.failed_attempts += 1;
            if pending.failed_attempts >= MAX_CODE_ATTEMPTS {
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
        self.active_address = Some(address.clone());
        self.pending = None;
        Ok(address)
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

/// A plain address (`local@domain`), as lettre parses it, at most 254 characters.
pub fn check_email(field: &'static str, value: &str) -> Result<String, RegistryError> {
    let value = value.trim();
    let ok = value.len() <= 254
        && value.parse::<lettre::Address>().is_ok()
        && value.contains('.')
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>');
    if ok {
        Ok(value.to_string())
    } else {
        Err(RegistryError::Email {
            field,
            value: value.chars().take(100).collect(),
        })
    }
}

fn check_phone(value: &str) -> Result<String, RegistryError> {
    let value = value.trim();
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let ok = (5..=20).contains(&digits)
        && value
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()".contains(c));
    if ok {
        Ok(value.to_string())
    } else {
        Err(RegistryError::Phone(value.chars().take(40).collect()))
    }
}

fn check_pin(value: &str) -> Result<String, RegistryError> {
    let hex: String = value
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_lowercase();
    if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(RegistryError::TlsPin(value.chars().take(100).collect()))
    }
}

/// SHA-256 of a verification code, hex; codes are compared case-insensitively.
fn hash_code(secret: &str) -> String {
    crate::digest::sha256_hex(secret.trim().to_uppercase().as_bytes())
}

/// A fresh verification code: 8 characters without look-alikes (no 0/O, 1/I).
pub fn new_verification_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 8];
    if openssl::rand::rand_bytes(&mut bytes).is_err() {
        // Without randomness no code is safe to issue; the caller refuses an empty code.
        return String::new();
    }
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod registration_tests {
    use super::*;

    fn code() -> Kommunkod {
        "2480".parse().expect("code")
    }

    #[test]
    fn a_new_address_waits_for_proof_and_the_proven_one_stays_in_use() {
        let now = Timestamp::now();
        let mut r = Registered::default();
        r.apply(
            &Changes {
                email: Some("registrator@umea.example".into()),
                secure: Some("yes".into()),
                ..Changes::default()
            },
            now,
        )
        .expect("valid");
        assert_eq!(r.active_address, None);
        assert_eq!(
            r.pending.as_ref().map(|p| p.address.as_str()),
            Some("registrator@umea.example")
        );

        let secret = "ABCD2345";
        r.set_code(code(), secret, now + jiff::SignedDuration::from_hours(1))
            .expect("pending");
        assert!(matches!(
            r.confirm(code(), "WRONG123", now),
            Err(RegistryError::WrongCode(_))
        ));
        r.confirm(code(), "abcd2345", now)
            .expect("case-insensitive match");
        assert_eq!(
            r.active_address.as_deref(),
            Some("registrator@umea.example")
        );
        assert!(matches!(
            r.confirm(code(), secret, now),
            Err(RegistryError::NothingPending(_))
        ));

        // A decision address replaces the official one only once proven.
        r.apply(
            &Changes {
                decision_email: Some("beslut@umea.example".into()),
                ..Changes::default()
            },
            now,
        )
        .expect("valid");
        assert_eq!(
            r.active_address.as_deref(),
            Some("registrator@umea.example")
        );
        assert_eq!(
            r.pending.as_ref().map(|p| p.address.as_str()),
            Some("beslut@umea.example")
        );
    }

    #[test]
    fn an_expired_code_is_refused() {
        let now = Timestamp::now();
        let mut r = Registered::default();
        r.apply(
            &Changes {
                email: Some("a@b.example".into()),
                ..Changes::default()
            },
            now,
        )
        .expect("valid");
        r.set_code(code(), "ABCD2345", now - jiff::SignedDuration::from_secs(1))
            .expect("pending");
        assert!(matches!(
            r.confirm(code(), "ABCD2345", now),
            Err(RegistryError::ExpiredCode(_))
        ));
    }

    #[test]
    fn malformed_values_are_refused() {
        let now = Timestamp::now();
        let mut r = Registered::default();
        for changes in [
            Changes {
                email: Some("not an address".into()),
                ..Changes::default()
            },
            Changes {
                email: Some("a@b".into()),
                ..Changes::default()
            },
            Changes {
                phone: Some("call me".into()),
                ..Changes::default()
            },
            Changes {
                contacts: Some(vec!["Anna".into()]),
                ..Changes::default()
            },
            Changes {
                tls_pin: Some("abc".into()),
                ..Changes::default()
            },
            Changes {
                secure: Some("maybe".into()),
                ..Changes::default()
            },
            Changes {
                smime_cert_pem: Some("-----BEGIN CERTIFICATE-----".into()),
                ..Changes::default()
            },
        ] {
            assert!(r.apply(&changes, now).is_err(), "{changes:?}");
        }
        let c = Contact::parse("Anna Berg, 090-16 10 00, anna.berg@umea.example").expect("valid");
        assert_eq!(c.phone, "090-16 10 00");
    }

    #[test]
    fn codes_are_eight_unambiguous_characters() {
        let a = new_verification_code();
        assert_eq!(a.len(), 8);
        assert!(!a.contains('0') && !a.contains('O') && !a.contains('1') && !a.contains('I'));
        assert_ne!(a, new_verification_code());
    }
}
