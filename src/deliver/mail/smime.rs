//! S/MIME with OpenSSL's CMS: every message is signed by the agency; where the municipality
//! registered a certificate it is also encrypted (AES-256) to that certificate and to the
//! agency's own, so the sent copy stays readable.
//!
//! The MIME wrapping is mail-builder's job (see `compose`); this module only makes the CMS
//! structures and loads the agency's signing identity.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::X509;

use crate::registry::{check_certificate_for_email, RegisteredCert};

/// Why S/MIME could not be done.
#[derive(Debug, thiserror::Error)]
pub enum SmimeError {
    /// A file of the signing identity could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The signing certificate or key is not usable.
    #[error("signing identity: {0}")]
    Identity(String),
    /// OpenSSL failed.
    #[error("S/MIME: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

/// Most parsed recipient certificates kept (there are 290 municipalities).
const RECIPIENT_CACHE: usize = 1024;

/// The agency's signing identity.
pub struct Signer {
    cert: X509,
    key: PKey<Private>,
    chain: Stack<X509>,
    fingerprint: String,
    /// Recipients' certificates parsed once, by SHA-256: parsing PEM costs more than
    /// encrypting a message's key to it.
    recipients: Mutex<HashMap<String, X509>>,
}

impl Signer {
    /// Loads and checks the certificate (with any chain after it) and the key.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Signer, SmimeError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| SmimeError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        let certs = X509::stack_from_pem(&read(cert_path)?).map_err(|_| {
            SmimeError::Identity(format!("{} holds no PEM certificate", cert_path.display()))
        })?;
        let mut certs = certs.into_iter();
        let cert = certs.next().ok_or_else(|| {
            SmimeError::Identity(format!("{} holds no certificate", cert_path.display()))
        })?;
        let key = PKey::private_key_from_pem(&read(key_path)?).map_err(|_| {
            SmimeError::Identity(format!("{} holds no PEM private key", key_path.display()))
        })?;
        if !cert.public_key()?.public_eq(&key) {
            return Err(SmimeError::Identity(format!(
                "the key in {} does not belong to the certificate in {}",
                key_path.display(),
                cert_path.display()
            )));
        }
        check_certificate_for_email(&cert)
            .map_err(|e| SmimeError::Identity(format!("signing certificate {e}")))?;
        let mut chain = Stack::new()?;
        for extra in certs {
            chain.push(extra)?;
        }
        let fingerprint = crate::digest::sha256_hex(&cert.to_der()?);
        Ok(Signer {
            cert,
            key,
            chain,
            fingerprint,
            recipients: Mutex::new(HashMap::new()),
        })
    }

    /// SHA-256 of the signing certificate.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// When the agency's signing certificate expires, in seconds since the Unix epoch (for the
    /// metric operations alert on well before the day).
    pub fn expires_at_unix(&self) -> Option<i64> {
        crate::registry::cert::unix_seconds(self.cert.not_after())
    }

    /// A detached signature (DER) over `content`, which must already be canonical MIME (CRLF).
    pub fn sign_detached(&self, content: &[u8]) -> Result<Vec<u8>, SmimeError> {
        let flags = CMSOptions::DETACHED | CMSOptions::BINARY;
        let cms = CmsContentInfo::sign(
            Some(&self.cert),
            Some(&self.key),
            Some(&self.chain),
            Some(content),
            flags,
        )?;
        Ok(cms.to_der()?)
    }

    /// Enveloped data (DER) of `content` for a municipality's registered certificate and for
    /// the agency itself.
    pub fn encrypt_to(
        &self,
        content: &[u8],
        recipient: &RegisteredCert,
    ) -> Result<Vec<u8>, SmimeError> {
        let cached = self
            .recipients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&recipient.sha256)
            .cloned();
        let x509 = match cached {
            Some(x509) => x509,
            None => {
                let x509 = recipient.x509()?;
                let mut cache = self.recipients.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= RECIPIENT_CACHE {
                    cache.clear();
                }
                cache.insert(recipient.sha256.clone(), x509.clone());
                x509
            }
        };
        self.encrypt(content, &x509)
    }

    /// Enveloped data (DER) of `content` for `recipient` and for the agency itself.
    pub fn encrypt(&self, content: &[u8], recipient: &X509) -> Result<Vec<u8>, SmimeError> {
        let mut recipients = Stack::new()?;
        recipients.push(recipient.clone())?;
        recipients.push(self.cert.clone())?;
        let cms = CmsContentInfo::encrypt(
            &recipients,
            content,
            Cipher::aes_256_cbc(),
            CMSOptions::BINARY,
        )?;
        Ok(cms.to_der()?)
    }
}
