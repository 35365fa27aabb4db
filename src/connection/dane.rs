//! DANE for SMTP (RFC 7672): does a DNSSEC-validated TLSA record match what the server
//! presented? Only DANE-EE (3) and DANE-TA (2) are usable for SMTP (§3.1.3); PKIX-TA (0) and
//! PKIX-EE (1) records are "unusable". DANE-EE matches the server's own certificate and
//! ignores names and dates (§3.1.1); DANE-TA matches a certificate of the chain the server
//! sent and still needs the certificate to name the MX host (§3.1.2).

use openssl::hash::{hash, MessageDigest};
use openssl::x509::X509;

use super::dns::Tlsa;
use crate::registry::connection::Dane;

/// What the TLSA records say of this server's certificates (the RRset was validated).
pub fn evaluate(records: &[Tlsa], leaf: &X509, chain: &[X509], host: &str) -> Dane {
    let usable: Vec<&Tlsa> = records
        .iter()
        .filter(|t| matches!(t.usage, 2 | 3) && t.selector <= 1 && t.matching <= 2)
        .collect();
    if records.is_empty() {
        return Dane::NoTlsa;
    }
    if usable.is_empty() {
        return Dane::Unusable;
    }
    let matched = usable.iter().any(|t| match t.usage {
        3 => matches(t, leaf),
        _ => chain.iter().any(|c| matches(t, c)) && names_host(leaf, host),
    });
    if matched {
        Dane::Matched
    } else {
        Dane::NotMatched
    }
}

/// Whether one record's association data matches one certificate.
fn matches(t: &Tlsa, cert: &X509) -> bool {
    let selected = match t.selector {
        0 => cert.to_der(),
        _ => cert.public_key().and_then(|k| k.public_key_to_der()),
    };
    let Ok(selected) = selected else {
        return false;
    };
    let digest = match t.matching {
        0 => Ok(selected),
        1 => hash(MessageDigest::sha256(), &selected).map(|d| d.to_vec()),
        _ => hash(MessageDigest::sha512(), &selected).map(|d| d.to_vec()),
    };
    digest.is_ok_and(|d| d == t.data)
}

/// Whether the certificate's DNS names (subjectAltName) name `host`, with a wildcard only as
/// the whole left-most label (RFC 6125 §6.4.3).
pub fn names_host(cert: &X509, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let Some(names) = cert.subject_alt_names() else {
        return false;
    };
    names.iter().filter_map(|n| n.dnsname()).any(|name| {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        match name.strip_prefix("*.") {
            Some(parent) => host
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
            None => name == host,
        }
    })
}
