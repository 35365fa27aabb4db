//! A municipality's S/MIME certificate: what kurir encrypts to, and the checks a certificate
//! must pass before anything is encrypted to it or signed with it.

use openssl::nid::Nid;
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::{X509ExtendedKeyUsage, X509KeyUsage, X509PurposeId, X509StoreContext, X509};
use serde::{Deserialize, Serialize};

use super::RegistryError;

/// What is wrong with a certificate (the surfaces word it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "kebab-case")]
pub enum CertificateProblem {
    /// Not a certificate in PEM (or, uploaded, DER) form.
    #[error("not a PEM certificate")]
    NotACertificate,
    /// OpenSSL could not encode it again.
    #[error("cannot be encoded")]
    Unencodable,
    /// The clock could not be read to check validity.
    #[error("the current time could not be read")]
    Clock,
    /// Past its validity.
    #[error("expired on {0}")]
    Expired(String),
    /// Before its validity.
    #[error("not valid before {0}")]
    NotYetValid(String),
    /// Its extended key usage leaves out e-mail protection.
    #[error("not made for e-mail protection (extended key usage lacks emailProtection)")]
    NotForEmail,
    /// Its key usage leaves out encryption (keyEncipherment for RSA, keyAgreement for EC).
    #[error("not made for encryption (key usage lacks keyEncipherment and keyAgreement)")]
    NotForEncryption,
    /// The upload holds a private key: it is exposed now and should be replaced.
    #[error("the file holds a private key as well: nothing was stored; that key has left its owner and should be replaced (upload the certificate alone)")]
    HoldsPrivateKey,
    /// It does not chain to a CA the agency trusts for organisation e-mail (`[registry] smime_ca`).
    #[error("not issued by a CA the agency trusts for e-mail ([registry] smime_ca): {0}")]
    Untrusted(String),
    /// The agency has named no CA to check against, and the change comes from the portal.
    #[error("no CA is configured to check certificates against ([registry] smime_ca); only an operator can register one")]
    NoTrustedCa,
    /// The certificate is not for the address decisions go to.
    #[error("it is not for {0} (neither subjectAltName nor emailAddress names it)")]
    AddressMissing(String),
    /// No address is registered to check it against.
    #[error("register the address decisions go to first: the certificate must name it")]
    NoAddress,
}

/// The CAs the agency trusts for municipalities' organisation e-mail (`[registry] smime_ca`).
pub struct SmimeTrust(X509Store);

impl SmimeTrust {
    /// The trust store from a PEM file of CA certificates.
    pub fn from_pem(pem: &[u8]) -> Result<SmimeTrust, openssl::error::ErrorStack> {
        let mut builder = X509StoreBuilder::new()?;
        for ca in X509::stack_from_pem(pem)? {
            builder.add_cert(ca)?;
        }
        builder.set_purpose(X509PurposeId::SMIME_ENCRYPT)?;
        Ok(SmimeTrust(builder.build()))
    }

    /// Whether `cert` (with the `intermediates` uploaded beside it) chains to a trusted CA.
    fn verify(&self, cert: &X509, intermediates: &[X509]) -> Result<(), CertificateProblem> {
        let untrusted =
            |e: openssl::error::ErrorStack| CertificateProblem::Untrusted(e.to_string());
        let mut chain = Stack::new().map_err(untrusted)?;
        for c in intermediates {
            chain.push(c.clone()).map_err(untrusted)?;
        }
        let mut ctx = X509StoreContext::new().map_err(untrusted)?;
        let verdict = ctx
            .init(&self.0, cert, &chain, |c| {
                let ok = c.verify_cert()?;
                Ok((ok, c.error().error_string().to_string()))
            })
            .map_err(untrusted)?;
        match verdict {
            (true, _) => Ok(()),
            (false, why) => Err(CertificateProblem::Untrusted(why)),
        }
    }
}

/// What a certificate is checked against when it is registered.
#[derive(Default, Clone, Copy)]
pub struct CertPolicy<'a> {
    /// The CAs it must chain to; `None`: not checked (an operator's responsibility).
    pub trust: Option<&'a SmimeTrust>,
    /// Refuse when there is no trust store to check against (a person on the portal).
    pub require_trust: bool,
    /// The address it must name: where decisions go.
    pub address: Option<&'a str>,
}

/// Whether a text holds a private key in PEM form.
pub fn holds_private_key(text: &str) -> bool {
    text.contains("PRIVATE KEY-----")
}

/// The e-mail addresses a certificate names: subjectAltName rfc822Name and subject
/// emailAddress.
pub fn addresses_of(cert: &X509) -> Vec<String> {
    let mut out: Vec<String> = cert
        .subject_alt_names()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.email().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    out.extend(
        cert.subject_name()
            .entries_by_nid(Nid::PKCS9_EMAILADDRESS)
            .filter_map(|e| e.data().to_string().ok().map(|s| s.to_string())),
    );
    out
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
    /// Accepts a certificate as a receiver would: no private key beside it, valid now, made
    /// for e-mail protection and for encryption, chaining to a CA the agency trusts (where
    /// the policy names one), and naming the address decisions go to. What is stored is the
    /// parsed certificate encoded again, never the uploaded text.
    pub fn accept(pem: &str, policy: CertPolicy<'_>) -> Result<RegisteredCert, RegistryError> {
        Self::check(pem, policy).map_err(RegistryError::Certificate)
    }

    fn check(pem: &str, policy: CertPolicy<'_>) -> Result<RegisteredCert, CertificateProblem> {
        if holds_private_key(pem) {
            return Err(CertificateProblem::HoldsPrivateKey);
        }
        let mut certs = X509::stack_from_pem(pem.as_bytes())
            .map_err(|_| CertificateProblem::NotACertificate)?
            .into_iter();
        let cert = certs.next().ok_or(CertificateProblem::NotACertificate)?;
        let intermediates: Vec<X509> = certs.collect();
        check_certificate_for_email(&cert)?;
        if let Some(usage) = cert.key_usage() {
            if !usage.intersects(X509KeyUsage::KEY_ENCIPHERMENT | X509KeyUsage::KEY_AGREEMENT) {
                return Err(CertificateProblem::NotForEncryption);
            }
        }
        match policy.trust {
            Some(trust) => trust.verify(&cert, &intermediates)?,
            None if policy.require_trust => return Err(CertificateProblem::NoTrustedCa),
            None => {}
        }
        let address = policy.address.ok_or(CertificateProblem::NoAddress)?;
        if !addresses_of(&cert)
            .iter()
            .any(|a| a.trim().eq_ignore_ascii_case(address.trim()))
        {
            return Err(CertificateProblem::AddressMissing(address.to_string()));
        }
        let der = cert.to_der().map_err(|_| CertificateProblem::Unencodable)?;
        let pem = cert.to_pem().map_err(|_| CertificateProblem::Unencodable)?;
        Ok(RegisteredCert {
            pem: String::from_utf8_lossy(&pem).into_owned(),
            sha256: crate::digest::sha256_hex(&der),
            subject: subject_of(&cert),
            not_after: cert.not_after().to_string(),
        })
    }

    /// The certificate, parsed.
    pub fn x509(&self) -> Result<X509, openssl::error::ErrorStack> {
        X509::from_pem(self.pem.as_bytes())
    }

    /// When the certificate expires, in Unix seconds (for the metric that warns of it).
    pub fn expires_at_unix(&self) -> Option<i64> {
        unix_seconds(self.x509().ok()?.not_after())
    }
}

/// An ASN.1 time (a certificate's validity bound) in Unix seconds.
pub fn unix_seconds(time: &openssl::asn1::Asn1TimeRef) -> Option<i64> {
    let epoch = openssl::asn1::Asn1Time::from_unix(0).ok()?;
    let diff = epoch.diff(time).ok()?;
    Some(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
}

/// A certificate's subject as `key=value, …`, for people.
pub fn subject_of(cert: &X509) -> String {
    name_text(cert.subject_name())
}

/// A distinguished name as `CN=…, O=…, C=…`.
pub fn name_text(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks that a certificate may sign or receive S/MIME now: within its validity and, if it
/// restricts its purposes, allowed e-mail protection.
pub fn check_certificate_for_email(cert: &X509) -> Result<(), CertificateProblem> {
    let now = openssl::asn1::Asn1Time::days_from_now(0).map_err(|_| CertificateProblem::Clock)?;
    if cert.not_after() < now {
        return Err(CertificateProblem::Expired(cert.not_after().to_string()));
    }
    if cert.not_before() > now {
        return Err(CertificateProblem::NotYetValid(
            cert.not_before().to_string(),
        ));
    }
    if let Some(eku) = cert.extended_key_usage() {
        if !eku.intersects(X509ExtendedKeyUsage::SMIME | X509ExtendedKeyUsage::ANYEKU) {
            return Err(CertificateProblem::NotForEmail);
        }
    }
    Ok(())
}
