//! A municipality's S/MIME certificate: what kurir encrypts to, and the checks a certificate
//! must pass before anything is encrypted to it or signed with it.

use openssl::x509::{X509ExtendedKeyUsage, X509};
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
        let bad = RegistryError::Certificate;
        let cert =
            X509::from_pem(pem.as_bytes()).map_err(|_| bad(CertificateProblem::NotACertificate))?;
        check_certificate_for_email(&cert).map_err(bad)?;
        let der = cert
            .to_der()
            .map_err(|_| bad(CertificateProblem::Unencodable))?;
        Ok(RegisteredCert {
            pem: pem.to_string(),
            sha256: crate::digest::sha256_hex(&der),
            subject: subject_of(&cert),
            not_after: cert.not_after().to_string(),
        })
    }

    /// The certificate, parsed.
    pub fn x509(&self) -> Result<X509, openssl::error::ErrorStack> {
        X509::from_pem(self.pem.as_bytes())
    }
}

/// A certificate's subject as `key=value, …`, for people.
pub fn subject_of(cert: &X509) -> String {
    cert.subject_name()
        .entries()
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
