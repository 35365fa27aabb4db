//! "Säker anslutning", measured: kurir's own check of a municipality's mail servers, and the
//! TLS policy it gives the agency's relay for them.
//!
//! [`Checker::check`] looks up the MX of the decision address's domain with a real resolver
//! ([`dns`]), and for each MX connects to port 25, requires STARTTLS and TLS 1.2 or newer
//! ([`probe`]), and decides whether the certificate can be trusted: by DANE where the resolver
//! validated DNSSEC and TLSA records exist ([`dane`]), else by its chain to the trusted roots
//! and the MX's name; an `enforce` MTA-STS policy must list every MX ([`mta_sts`]). The result
//! is a typed [`ConnectionCheck`] the store keeps with its history; routing needs a recent
//! passing one. [`policy`] answers Postfix's TLS policy lookups from those checks, so the relay
//! itself refuses to hand a decision to anything less.

pub mod dane;
pub mod dns;
pub mod mta_sts;
pub mod policy;
pub mod probe;

use std::net::SocketAddr;

use jiff::Timestamp;
use openssl::asn1::Asn1TimeRef;

use crate::config::{ConnectionSettings, DnsSettings};
use crate::registry::connection::{
    ConnectionCheck, Dane, MtaSts, MxFinding, Problem, StsMode, TlsFinding, Verdict,
};

/// At most this many MX hosts are checked per domain.
pub const MAX_MX_CHECKED: usize = 10;
/// A check that takes longer than this fails as a whole (ten slow MX hosts cannot hold the
/// daemon's rounds, or a direct delivery, for half an hour).
pub const MAX_CHECK_TIME: std::time::Duration = std::time::Duration::from_secs(120);

/// Checks domains' mail servers. One per daemon; cheap to share.
pub struct Checker {
    resolver: dns::Resolver,
    prober: probe::Prober,
    sts: mta_sts::MtaSts,
    port: u16,
}

/// Why the checker could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CheckerError {
    /// `[dns]`.
    #[error("[dns]: {0}")]
    Dns(#[from] dns::DnsError),
    /// `[connection] ca_file` or OpenSSL.
    #[error("[connection] ca_file {0}")]
    Tls(#[from] probe::ProberError),
}

impl Checker {
    /// A checker with the resolver of `[dns]` and the roots of `[connection] ca_file`.
    pub fn new(settings: &ConnectionSettings, dns: &DnsSettings) -> Result<Checker, CheckerError> {
        let resolver = dns::Resolver::new(dns, settings.timeout)?;
        let prober = probe::Prober::new(&settings.ca_file, "", settings.timeout)?;
        // The policy host's certificate is verified in the handshake (mta_sts sets PEER).
        let https = probe::tls_context(&settings.ca_file)?;
        Ok(Checker {
            resolver,
            prober,
            sts: mta_sts::MtaSts::new(https, settings.https_port, settings.timeout),
            port: settings.port,
        })
    }

    /// Whether DANE can apply: the resolver is on this host.
    pub fn trusts_dnssec(&self) -> bool {
        self.resolver.trusts_dnssec()
    }

    /// The nameservers asked (for doctor).
    pub fn nameservers(&self) -> Vec<String> {
        self.resolver
            .servers()
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// Checks the mail servers of `domain` now, within [`MAX_CHECK_TIME`].
    pub async fn check(&self, domain: &str) -> ConnectionCheck {
        let started = Timestamp::now();
        match tokio::time::timeout(MAX_CHECK_TIME, self.check_unbounded(domain)).await {
            Ok(check) => check,
            Err(_) => {
                let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
                ConnectionCheck {
                    problems: vec![Problem::Unreachable {
                        host: domain.clone(),
                        detail: format!(
                            "the check took longer than {} s",
                            MAX_CHECK_TIME.as_secs()
                        ),
                    }],
                    domain,
                    checked_at: started,
                    mx_validated: false,
                    mx: Vec::new(),
                    mta_sts: MtaSts::None,
                    verdict: Verdict::Failed,
                }
            }
        }
    }

    async fn check_unbounded(&self, domain: &str) -> ConnectionCheck {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let checked_at = Timestamp::now();
        let mut problems = Vec::new();
        let mut check = ConnectionCheck {
            domain: domain.clone(),
            checked_at,
            mx_validated: false,
            mx: Vec::new(),
            mta_sts: MtaSts::None,
            verdict: Verdict::Failed,
            problems: Vec::new(),
        };
        let mx = match self.resolver.mx(&domain).await {
            Ok(answer) => answer,
            Err(e) => {
                check.problems.push(Problem::Dns {
                    name: domain.clone(),
                    detail: e.to_string(),
                });
                return check;
            }
        };
        check.mx_validated = mx.validated;
        let hosts: Vec<(u16, String)> = if mx.records.is_empty() {
            vec![(0, domain.clone())]
        } else {
            mx.records.clone()
        };
        if hosts.iter().any(|(_, h)| h.is_empty()) {
            check.problems.push(Problem::NoMailServer);
            return check;
        }
        let policy = self.sts.lookup(&self.resolver, &domain).await;
        for (preference, host) in hosts.into_iter().take(MAX_MX_CHECKED) {
            let finding = self
                .check_mx(&host, preference, mx.validated, &policy, &mut problems)
                .await;
            check.mx.push(finding);
        }
        check.mta_sts = match policy {
            mta_sts::Found::None => MtaSts::None,
            mta_sts::Found::Unavailable(reason) => MtaSts::Unavailable { reason },
            mta_sts::Found::Policy(p) => MtaSts::Policy {
                covers_every_mx: check.mx.iter().all(|m| mta_sts::covers(&p.mx, &m.host)),
                mode: p.mode,
                id: p.id,
                mx: p.mx,
                max_age: p.max_age,
            },
        };
        check.verdict = if problems.is_empty() && !check.mx.is_empty() {
            Verdict::Passed
        } else {
            Verdict::Failed
        };
        check.problems = problems;
        check
    }

    async fn check_mx(
        &self,
        host: &str,
        preference: u16,
        mx_validated: bool,
        policy: &mta_sts::Found,
        problems: &mut Vec<Problem>,
    ) -> MxFinding {
        let mut finding = MxFinding {
            host: host.to_string(),
            preference,
            address: None,
            dane: Dane::NotValidated,
            tls: None,
            passed: false,
        };
        let before = problems.len();
        let addresses = match self.resolver.addresses(host).await {
            Ok(a) if !a.records.is_empty() => a,
            Ok(_) => {
                problems.push(Problem::Unreachable {
                    host: host.to_string(),
                    detail: "the name has no address".into(),
                });
                return finding;
            }
            Err(e) => {
                problems.push(Problem::Dns {
                    name: host.to_string(),
                    detail: e.to_string(),
                });
                return finding;
            }
        };
        // DANE only over an unbroken chain of validated answers (RFC 7672 §2.2).
        let tlsa = if mx_validated && addresses.validated {
            match self.resolver.tlsa(host, self.port).await {
                Ok(answer) if answer.validated => Some(answer.records),
                Ok(_) => None,
                Err(e) => {
                    problems.push(Problem::Dns {
                        name: format!("_{}._tcp.{host}", self.port),
                        detail: e.to_string(),
                    });
                    return finding;
                }
            }
        } else {
            None
        };
        let address = SocketAddr::new(addresses.records[0], self.port);
        finding.address = Some(address.ip().to_string());
        let probed = match self.prober.probe(address, host).await {
            Ok(p) => p,
            Err(probe::ProbeError::Unreachable(detail)) => {
                problems.push(Problem::Unreachable {
                    host: host.to_string(),
                    detail,
                });
                return finding;
            }
            Err(probe::ProbeError::NoStartTls) => {
                problems.push(Problem::NoStartTls {
                    host: host.to_string(),
                });
                return finding;
            }
            Err(probe::ProbeError::Handshake(detail)) => {
                problems.push(Problem::Handshake {
                    host: host.to_string(),
                    detail,
                });
                return finding;
            }
        };
        finding.dane = match &tlsa {
            Some(records) => dane::evaluate(records, &probed.leaf, &probed.chain, host),
            None => Dane::NotValidated,
        };
        let not_after = timestamp_of(probed.leaf.not_after());
        let cert_der = probed.leaf.to_der().unwrap_or_default();
        finding.tls = Some(TlsFinding {
            version: probed.version.clone(),
            cipher: probed.cipher.clone(),
            cert_sha256: crate::digest::sha256_hex(&cert_der),
            subject: crate::registry::cert::name_text(probed.leaf.subject_name()),
            issuer: crate::registry::cert::name_text(probed.leaf.issuer_name()),
            not_after,
            pkix_verified: probed.pkix_error.is_none(),
            pkix_error: probed.pkix_error.as_ref().map(|(_, words)| words.clone()),
        });
        match finding.dane {
            Dane::Matched => {}
            Dane::NotMatched => problems.push(Problem::DaneMismatch {
                host: host.to_string(),
            }),
            Dane::NotValidated | Dane::NoTlsa | Dane::Unusable => match &probed.pkix_error {
                None => {}
                Some((code, _)) if *code == probe::VERIFY_EXPIRED => {
                    problems.push(Problem::CertificateExpired {
                        host: host.to_string(),
                        not_after,
                    })
                }
                Some((code, _)) if *code == probe::VERIFY_HOSTNAME_MISMATCH => {
                    problems.push(Problem::NameMismatch {
                        host: host.to_string(),
                    })
                }
                Some((_, words)) => problems.push(Problem::Untrusted {
                    host: host.to_string(),
                    detail: words.clone(),
                }),
            },
        }
        if let mta_sts::Found::Policy(p) = policy {
            if p.mode == StsMode::Enforce && !mta_sts::covers(&p.mx, host) {
                problems.push(Problem::NotInMtaStsPolicy {
                    host: host.to_string(),
                });
            }
        }
        finding.passed = problems.len() == before;
        finding
    }
}

/// An ASN.1 time as a timestamp (the epoch when it cannot be read: an expiry long past).
fn timestamp_of(time: &Asn1TimeRef) -> Timestamp {
    crate::registry::cert::unix_seconds(time)
        .and_then(|s| Timestamp::from_second(s).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}
