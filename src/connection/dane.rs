//! DANE for SMTP (RFC 7672): does a DNSSEC-validated TLSA record match what the server
//! presented? Only DANE-EE (3) and DANE-TA (2) are usable for SMTP (§3.1.3); PKIX-TA (0) and
//! PKIX-EE (1) records are "unusable". DANE-EE matches the server's own certificate and
//! ignores names and dates (§3.1.1); DANE-TA matches a certificate of the chain the server
//! sent and still needs the certificate to name the MX host (§3.1.2).

use openssl::hash::{hash, MessageDigest};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509StoreContext, X509};

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
        _ => {
            names_host(leaf, host)
                && chain
                    .iter()
                    .filter(|c| matches(t, c))
                    .any(|anchor| chains_to(leaf, chain, anchor))
        }
    });
    if matched {
        Dane::Matched
    } else {
        Dane::NotMatched
    }
}

/// Whether `leaf` verifies up to `anchor` (the DANE-TA trust anchor) through the certificates
/// the server sent: the anchor is the only trusted certificate, and it need not be a root
/// (partial chain). Presenting the anchor beside a leaf it did not sign proves nothing.
fn chains_to(leaf: &X509, chain: &[X509], anchor: &X509) -> bool {
    let verified = || -> Result<bool, openssl::error::ErrorStack> {
        let mut store = X509StoreBuilder::new()?;
        store.add_cert(anchor.clone())?;
        store.set_flags(X509VerifyFlags::PARTIAL_CHAIN)?;
        let store = store.build();
        let mut untrusted = Stack::new()?;
        for c in chain {
            untrusted.push(c.clone())?;
        }
        let mut context = X509StoreContext::new()?;
        context.init(&store, leaf, &untrusted, |c| c.verify_cert())
    };
    verified().unwrap_or(false)
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

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::Asn1Time;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::{PKey, Private};
    use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
    use openssl::x509::X509NameBuilder;

    fn key() -> PKey<Private> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("curve");
        PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey")
    }

    /// A certificate for `name` signed by `issuer` (self-signed without one).
    fn cert(name: &str, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>) -> X509 {
        let mut n = X509NameBuilder::new().expect("name");
        n.append_entry_by_text("CN", name).expect("cn");
        let n = n.build();
        let mut b = X509::builder().expect("builder");
        b.set_version(2).expect("v3");
        b.set_subject_name(&n).expect("subject");
        b.set_issuer_name(issuer.map_or(&n, |(c, _)| c.subject_name()))
            .expect("issuer");
        b.set_pubkey(key).expect("pubkey");
        b.set_not_before(&Asn1Time::days_from_now(0).expect("t"))
            .expect("nb");
        b.set_not_after(&Asn1Time::days_from_now(30).expect("t"))
            .expect("na");
        if issuer.is_none() {
            let bc = BasicConstraints::new().critical().ca().build().expect("bc");
            b.append_extension(bc).expect("ext");
        } else {
            let san = SubjectAlternativeName::new()
                .dns(name)
                .build(&b.x509v3_context(issuer.map(|(c, _)| &**c), None))
                .expect("san");
            b.append_extension(san).expect("ext");
        }
        let signer = issuer.map_or(key, |(_, k)| k);
        b.sign(signer, MessageDigest::sha256()).expect("sign");
        b.build()
    }

    fn ta_record(anchor: &X509) -> Tlsa {
        Tlsa {
            usage: 2,
            selector: 0,
            matching: 1,
            data: hash(MessageDigest::sha256(), &anchor.to_der().expect("der"))
                .expect("hash")
                .to_vec(),
        }
    }

    #[test]
    fn dane_ta_needs_the_leaf_signed_by_the_anchor_not_just_the_anchor_beside_it() {
        let ca_key = key();
        let ca = cert("Kommunens CA", &ca_key, None);
        let host = "mx.umea.se";
        let leaf_key = key();
        let leaf = cert(host, &leaf_key, Some((&ca, &ca_key)));
        let records = [ta_record(&ca)];
        assert_eq!(
            evaluate(&records, &leaf, std::slice::from_ref(&ca), host),
            Dane::Matched
        );
        // An attacker's own leaf, with the real (public) anchor sent beside it.
        let rogue_key = key();
        let rogue_ca = cert("Kommunens CA", &rogue_key, None);
        let forged = cert(host, &key(), Some((&rogue_ca, &rogue_key)));
        assert_eq!(
            evaluate(&records, &forged, std::slice::from_ref(&ca), host),
            Dane::NotMatched
        );
        // The right chain, the wrong name.
        assert_eq!(
            evaluate(&records, &leaf, std::slice::from_ref(&ca), "mx.other.se"),
            Dane::NotMatched
        );
    }
}
