//! What kurir has measured of a municipality's "säker anslutning": the hop from the agency to
//! the municipality's own mail servers. A check ([`ConnectionCheck`]) records, for each MX of
//! the decision address's domain, what the server offered (STARTTLS, TLS version, cipher,
//! certificate) and whether it can be trusted (DANE, MTA-STS, the certificate's chain and
//! name), and comes to a verdict with its reasons. Routing asks [`standing`]: e-mail needs
//! the agency's agreement *and* a passing check of the current address's domain that is
//! recent enough. Pure types and rules; the `connection` module does the network part and the
//! store keeps every check with its history.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// One check of one domain's mail servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionCheck {
    /// The domain of the decision address (lower case).
    pub domain: String,
    /// When the check ran.
    pub checked_at: Timestamp,
    /// Whether the MX answer was DNSSEC-validated by the resolver (its AD flag).
    pub mx_validated: bool,
    /// Every MX, most preferred first (the domain itself when it publishes no MX).
    pub mx: Vec<MxFinding>,
    /// What the domain's MTA-STS policy says.
    pub mta_sts: MtaSts,
    /// The outcome.
    pub verdict: Verdict,
    /// Why, when it failed: what a municipality's IT must fix.
    pub problems: Vec<Problem>,
}

/// Passed or failed: a failed check sends the municipality's decisions by post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every MX offered TLS 1.2 or newer with a certificate kurir could verify (DANE, or the
    /// chain and the MX's name).
    Passed,
    /// At least one MX did not, or the domain's mail servers could not be found.
    Failed,
}

/// One MX host as the check found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MxFinding {
    /// The host name (lower case, no trailing dot).
    pub host: String,
    /// MX preference.
    pub preference: u16,
    /// The address connected to.
    pub address: Option<String>,
    /// What DANE (RFC 7672) found for it.
    pub dane: Dane,
    /// The TLS session, when one was made.
    pub tls: Option<TlsFinding>,
    /// Whether this MX passed.
    pub passed: bool,
}

/// The TLS session an MX gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFinding {
    /// e.g. `TLSv1.3`.
    pub version: String,
    /// e.g. `TLS_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// SHA-256 of the server certificate (DER), hex.
    pub cert_sha256: String,
    /// The certificate's subject, one line.
    pub subject: String,
    /// The certificate's issuer, one line.
    pub issuer: String,
    /// When the certificate expires.
    pub not_after: Timestamp,
    /// The chain verified against the trusted roots, and the certificate names the MX host.
    pub pkix_verified: bool,
    /// Why not, in OpenSSL's words (for operators).
    pub pkix_error: Option<String>,
}

/// DANE for one MX (RFC 7672).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dane {
    /// The MX or its address was not DNSSEC-validated: TLSA cannot be trusted, not looked up.
    NotValidated,
    /// Validated, but no TLSA records: the certificate is checked the usual way.
    NoTlsa,
    /// TLSA records exist but none is usable for SMTP (PKIX-TA/EE usages).
    Unusable,
    /// A TLSA record matched the server's certificate.
    Matched,
    /// TLSA records were published and none matched: the server must not be trusted.
    NotMatched,
}

/// The domain's MTA-STS policy (RFC 8461).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MtaSts {
    /// No `_mta-sts` record.
    None,
    /// A policy was fetched.
    Policy {
        /// `enforce`, `testing` or `none`.
        mode: StsMode,
        /// The policy's `id` from the TXT record.
        id: String,
        /// The `mx` patterns.
        mx: Vec<String>,
        /// How long it may be cached, in seconds.
        max_age: u64,
        /// Every MX matched a pattern.
        covers_every_mx: bool,
    },
    /// A record exists but the policy could not be fetched or read.
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// MTA-STS policy mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StsMode {
    /// Senders must not deliver to an MX the policy does not list or over unverified TLS.
    Enforce,
    /// Report only.
    Testing,
    /// The policy is withdrawn.
    None,
}

/// What failed, per MX host where there is one: each is something the municipality's IT can
/// fix, and each surface words it itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Problem {
    /// The domain's MX (or its addresses) could not be looked up.
    Dns {
        /// The name asked about.
        name: String,
        /// The resolver's answer.
        detail: String,
    },
    /// The domain says it accepts no mail (null MX, RFC 7505) or has no address at all.
    NoMailServer,
    /// No TCP connection to port 25.
    Unreachable {
        /// The MX.
        host: String,
        /// Why.
        detail: String,
    },
    /// The server did not offer STARTTLS: mail to it would go in clear.
    NoStartTls {
        /// The MX.
        host: String,
    },
    /// STARTTLS was offered but the TLS handshake failed (or offered less than TLS 1.2).
    Handshake {
        /// The MX.
        host: String,
        /// OpenSSL's words.
        detail: String,
    },
    /// The certificate has expired.
    CertificateExpired {
        /// The MX.
        host: String,
        /// When it expired.
        not_after: Timestamp,
    },
    /// The certificate does not name the MX host.
    NameMismatch {
        /// The MX.
        host: String,
    },
    /// The certificate does not chain to a trusted root (self-signed, unknown CA).
    Untrusted {
        /// The MX.
        host: String,
        /// OpenSSL's words.
        detail: String,
    },
    /// DNSSEC-validated TLSA records were published and none matched the certificate.
    DaneMismatch {
        /// The MX.
        host: String,
    },
    /// An `enforce` MTA-STS policy does not list this MX.
    NotInMtaStsPolicy {
        /// The MX.
        host: String,
    },
}

impl Problem {
    /// The problem in English, for the command line, logs and alerts (no personal data: host
    /// names of municipalities' servers only).
    pub fn describe(&self) -> String {
        match self {
            Problem::Dns { name, detail } => format!("DNS lookup of {name} failed: {detail}"),
            Problem::NoMailServer => "the domain has no mail server (null MX or no address)".into(),
            Problem::Unreachable { host, detail } => {
                format!("{host}: no connection to port 25 ({detail})")
            }
            Problem::NoStartTls { host } => {
                format!("{host}: offers no STARTTLS, so mail to it would travel in clear")
            }
            Problem::Handshake { host, detail } => {
                format!("{host}: TLS handshake failed or older than TLS 1.2 ({detail})")
            }
            Problem::CertificateExpired { host, not_after } => {
                format!("{host}: the certificate expired {not_after}")
            }
            Problem::NameMismatch { host } => {
                format!("{host}: the certificate does not name the server")
            }
            Problem::Untrusted { host, detail } => {
                format!("{host}: the certificate is not trusted ({detail})")
            }
            Problem::DaneMismatch { host } => {
                format!("{host}: no published TLSA record matches the certificate")
            }
            Problem::NotInMtaStsPolicy { host } => {
                format!("{host}: not listed in the domain's MTA-STS policy (mode enforce)")
            }
        }
    }
}

impl Problem {
    /// What is wrong and what to fix, in Swedish, for the municipality's IT (the notice they
    /// get and the portal page they read).
    pub fn att_rätta(&self) -> String {
        match self {
            Problem::Dns { name, .. } => format!(
                "Namnet {name} kunde inte slås upp i DNS. Kontrollera domänens MX-poster och att \
                 DNSSEC-signaturerna är giltiga."
            ),
            Problem::NoMailServer => "Domänen tar inte emot e-post (null MX eller ingen adress). \
                 Publicera MX-poster för er e-postserver."
                .into(),
            Problem::Unreachable { host, .. } => format!(
                "Servern {host} svarar inte på port 25. Öppna port 25 för Migrationsverket eller \
                 ta bort MX-posten."
            ),
            Problem::NoStartTls { host } => format!(
                "Servern {host} erbjuder inte STARTTLS, så e-post till den skulle gå okrypterad. \
                 Slå på STARTTLS."
            ),
            Problem::Handshake { host, .. } => format!(
                "TLS-handskakningen med {host} misslyckades. Servern ska stödja TLS 1.2 eller \
                 senare."
            ),
            Problem::CertificateExpired { host, not_after } => format!(
                "Certifikatet för {host} gick ut {}. Installera ett nytt certifikat.",
                not_after.strftime("%Y-%m-%d")
            ),
            Problem::NameMismatch { host } => format!(
                "Certifikatet för {host} är inte utfärdat för namnet {host}. Installera ett \
                 certifikat som har servernamnet (subjectAltName)."
            ),
            Problem::Untrusted { host, .. } => format!(
                "Certifikatet för {host} är inte utfärdat av en betrodd utfärdare (t.ex. \
                 självsignerat). Installera ett certifikat från en betrodd utfärdare, eller \
                 publicera en TLSA-post (DANE) i en DNSSEC-signerad zon."
            ),
            Problem::DaneMismatch { host } => format!(
                "TLSA-posten för {host} stämmer inte med serverns certifikat. Uppdatera \
                 TLSA-posten (_25._tcp.{host}) när certifikatet byts."
            ),
            Problem::NotInMtaStsPolicy { host } => format!(
                "Er MTA-STS-policy (mode: enforce) listar inte {host}. Lägg till servern i \
                 policyns mx-rader."
            ),
        }
    }
}

impl ConnectionCheck {
    /// The earliest expiry among the certificates the MX hosts presented.
    pub fn first_expiry(&self) -> Option<Timestamp> {
        self.mx
            .iter()
            .filter_map(|m| m.tls.as_ref().map(|t| t.not_after))
            .min()
    }

    /// Whether every MX with TLSA records was DANE-matched: the relay may then be told
    /// `dane-only` for the domain.
    pub fn dane_everywhere(&self) -> bool {
        !self.mx.is_empty() && self.mx.iter().all(|m| m.dane == Dane::Matched)
    }

    /// The MX host names, most preferred first.
    pub fn mx_hosts(&self) -> Vec<String> {
        self.mx.iter().map(|m| m.host.clone()).collect()
    }
}

/// Where a municipality stands for routing, as far as its connection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Standing {
    /// A passing check of the current address's domain, recent enough.
    Verified,
    /// kurir is set not to require checks (`[connection] required = false`).
    NotRequired,
    /// No check of the current address's domain yet.
    NotChecked,
    /// The latest check of the domain failed.
    Failed,
    /// The latest check passed but is older than `[connection] max_age`.
    Outdated,
}

impl Standing {
    /// Whether e-mail may be used.
    pub fn allows_email(self) -> bool {
        matches!(self, Standing::Verified | Standing::NotRequired)
    }
}

/// The lower-case domain of an address (what is checked).
pub fn domain_of(address: &str) -> Option<String> {
    let (_, domain) = address.rsplit_once('@')?;
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    (!domain.is_empty()).then_some(domain)
}

/// The rule: where a municipality whose decisions would go to `address` stands, given the
/// latest check of that address's domain.
pub fn standing(
    latest: Option<&ConnectionCheck>,
    address: &str,
    now: Timestamp,
    max_age: SignedDuration,
    required: bool,
) -> Standing {
    if !required {
        return Standing::NotRequired;
    }
    let Some(check) = latest else {
        return Standing::NotChecked;
    };
    if domain_of(address).as_deref() != Some(check.domain.as_str()) {
        return Standing::NotChecked;
    }
    match check.verdict {
        Verdict::Failed => Standing::Failed,
        Verdict::Passed if now.duration_since(check.checked_at) > max_age => Standing::Outdated,
        Verdict::Passed => Standing::Verified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(domain: &str, verdict: Verdict, at: Timestamp) -> ConnectionCheck {
        ConnectionCheck {
            domain: domain.into(),
            checked_at: at,
            mx_validated: false,
            mx: Vec::new(),
            mta_sts: MtaSts::None,
            verdict,
            problems: Vec::new(),
        }
    }

    #[test]
    fn email_needs_a_recent_passing_check_of_the_current_domain() {
        let now: Timestamp = "2026-12-07T10:00:00Z".parse().expect("t");
        let week = SignedDuration::from_hours(24 * 7);
        let day_ago = now - SignedDuration::from_hours(24);
        let month_ago = now - SignedDuration::from_hours(24 * 30);
        let passed = check("umea.se", Verdict::Passed, day_ago);
        let failed = check("umea.se", Verdict::Failed, day_ago);
        let old = check("umea.se", Verdict::Passed, month_ago);
        let table: &[(Option<&ConnectionCheck>, &str, bool, Standing)] = &[
            (
                Some(&passed),
                "registrator@umea.se",
                true,
                Standing::Verified,
            ),
            (
                Some(&passed),
                "Registrator@UMEA.SE",
                true,
                Standing::Verified,
            ),
            (
                Some(&passed),
                "registrator@elsewhere.se",
                true,
                Standing::NotChecked,
            ),
            (Some(&failed), "registrator@umea.se", true, Standing::Failed),
            (Some(&old), "registrator@umea.se", true, Standing::Outdated),
            (None, "registrator@umea.se", true, Standing::NotChecked),
            (None, "registrator@umea.se", false, Standing::NotRequired),
        ];
        for (latest, address, required, expected) in table {
            assert_eq!(
                standing(*latest, address, now, week, *required),
                *expected,
                "{address} required={required}"
            );
        }
        assert!(Standing::Verified.allows_email());
        assert!(!Standing::Outdated.allows_email());
    }
}
