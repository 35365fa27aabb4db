//! The portal's TLS: HTTPS only, and a client certificate required at the handshake and
//! verified against `[portal] client_ca` (SITHS in production) and the revocation lists in
//! `[portal] crl`. No certificate, an expired one, a revoked one, or one from another CA: the
//! handshake fails and no page is served at all. The lists are read again when their files
//! change ([`Trust::reload_if_changed`]), without a restart: a card reported lost stops
//! working within a minute of the new list being put in place.

use std::path::Path;

use openssl::nid::Nid;
use openssl::ssl::{SslAcceptor, SslMethod, SslVerifyMode};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509Ref, X509};

use kurir_protocol::registry::Person;

/// The person named by a verified peer certificate, if it carries an HSA-id: the HSA-id (the
/// subject's `serialNumber`, as SITHS person certificates carry it), the name (`CN`) and the
/// issuing CA (the certificate's issuer name).
pub fn person_of(cert: &X509Ref) -> Option<Person> {
    let entry = |nid| {
        cert.subject_name()
            .entries_by_nid(nid)
            .next()
            .and_then(|e| e.data().to_string().ok())
    };
    let hsa_id = entry(Nid::SERIALNUMBER)?;
    kurir_protocol::registry::check_hsa_id(&hsa_id).ok()?;
    Some(Person {
        hsa_id,
        name: entry(Nid::COMMONNAME).unwrap_or_default(),
        issuer: Some(name_text(cert.issuer_name())),
    })
}

pub use kurir_protocol::registry::cert::name_text;

/// Why the portal's TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// OpenSSL refused a file or setting.
    #[error("{what}: {source}")]
    OpenSsl {
        /// The setting.
        what: &'static str,
        /// Why.
        source: openssl::error::ErrorStack,
    },
    /// The client CA file cannot be read.
    #[error("portal.client_ca: {0}")]
    Io(#[from] std::io::Error),
    /// A revocation list cannot be read.
    #[error("portal.crl {path}: {problem}")]
    Crl {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        problem: String,
    },
}

pub use kurir_protocol::reply::CrlInfo;

/// Reads one CRL file (PEM or DER).
fn read_crl(path: &Path) -> Result<openssl::x509::X509Crl, TlsSetupError> {
    let bad = |problem: String| TlsSetupError::Crl {
        path: path.to_path_buf(),
        problem,
    };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let crl = if bytes.starts_with(b"-----BEGIN") {
        openssl::x509::X509Crl::from_pem(&bytes)
    } else {
        openssl::x509::X509Crl::from_der(&bytes)
    };
    crl.map_err(|e| bad(e.to_string()))
}

/// Unix seconds of an ASN.1 time.
fn unix_seconds(t: &openssl::asn1::Asn1TimeRef) -> Option<i64> {
    let epoch = openssl::asn1::Asn1Time::from_unix(0).ok()?;
    let d = epoch.diff(t).ok()?;
    Some(i64::from(d.days) * 86_400 + i64::from(d.secs))
}

/// What the revocation lists in `paths` say of themselves.
pub fn crl_info(paths: &[std::path::PathBuf]) -> Result<Vec<CrlInfo>, TlsSetupError> {
    paths
        .iter()
        .map(|path| {
            let crl = read_crl(path)?;
            Ok(CrlInfo {
                file: path.display().to_string(),
                issuer: name_text(crl.issuer_name()),
                next_update: crl.next_update().and_then(unix_seconds),
            })
        })
        .collect()
}

/// The subjects of the CAs in `client_ca`: the issuers a grant may be bound to.
pub fn issuers(client_ca: &Path) -> Result<Vec<String>, TlsSetupError> {
    let pem = std::fs::read(client_ca)?;
    let cas = X509::stack_from_pem(&pem).map_err(|source| TlsSetupError::OpenSsl {
        what: "portal.client_ca",
        source,
    })?;
    Ok(cas.iter().map(|c| name_text(c.subject_name())).collect())
}

/// The portal's TLS settings as they stand, read again when a revocation list changes.
pub struct Trust {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    client_ca: std::path::PathBuf,
    crls: Vec<std::path::PathBuf>,
    acceptor: std::sync::RwLock<std::sync::Arc<SslAcceptor>>,
    seen: std::sync::Mutex<Vec<Option<std::time::SystemTime>>>,
}

impl Trust {
    /// The portal's TLS from its settings.
    pub fn new(settings: &kurir_protocol::config::WebSettings) -> Result<Trust, TlsSetupError> {
        let acceptor = acceptor(
            &settings.cert,
            &settings.key,
            &settings.client_ca,
            &settings.crl,
        )?;
        Ok(Trust {
            cert: settings.cert.clone(),
            key: settings.key.clone(),
            client_ca: settings.client_ca.clone(),
            crls: settings.crl.clone(),
            acceptor: std::sync::RwLock::new(std::sync::Arc::new(acceptor)),
            seen: std::sync::Mutex::new(modified(&settings.crl)),
        })
    }

    /// The acceptor for the next handshake.
    pub fn current(&self) -> std::sync::Arc<SslAcceptor> {
        self.acceptor
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The revocation list files.
    pub fn crl_files(&self) -> &[std::path::PathBuf] {
        &self.crls
    }

    /// The client CA file.
    pub fn client_ca(&self) -> &Path {
        &self.client_ca
    }

    /// Builds the acceptor again if a revocation list changed since it was built. A list
    /// that cannot be read keeps the acceptor as it was (and says so): better the old list
    /// than none. Returns whether it was rebuilt.
    pub fn reload_if_changed(&self) -> bool {
        let now = modified(&self.crls);
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if *seen == now {
            return false;
        }
        match acceptor(&self.cert, &self.key, &self.client_ca, &self.crls) {
            Ok(fresh) => {
                *self.acceptor.write().unwrap_or_else(|p| p.into_inner()) =
                    std::sync::Arc::new(fresh);
                *seen = now;
                tracing::info!(
                    crls = self.crls.len(),
                    "portal: revocation lists read again"
                );
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "portal: a changed revocation list cannot be read; the previous lists stay in force");
                false
            }
        }
    }
}

fn modified(paths: &[std::path::PathBuf]) -> Vec<Option<std::time::SystemTime>> {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

/// The acceptor: TLS 1.2 or later, the server's chain and key, and client certificates from
/// `client_ca` required, checked against the revocation lists `crls` (every certificate of
/// the chain, when lists are given).
pub fn acceptor(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
    crls: &[std::path::PathBuf],
) -> Result<SslAcceptor, TlsSetupError> {
    let err = |what| move |source| TlsSetupError::OpenSsl { what, source };
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .map_err(err("portal settings"))?;
    builder
        .set_certificate_chain_file(cert)
        .map_err(err("portal.cert"))?;
    builder
        .set_private_key_file(key, openssl::ssl::SslFiletype::PEM)
        .map_err(err("portal.key"))?;
    builder.check_private_key().map_err(err("portal.key"))?;
    builder
        .set_ca_file(client_ca)
        .map_err(err("portal.client_ca"))?;
    let pem = std::fs::read(client_ca)?;
    for ca in X509::stack_from_pem(&pem).map_err(err("portal.client_ca"))? {
        builder
            .add_client_ca(&ca)
            .map_err(err("portal.client_ca"))?;
    }
    if !crls.is_empty() {
        let store = builder.cert_store_mut();
        let lookup = store
            .add_lookup(openssl::x509::store::X509Lookup::file())
            .map_err(err("portal.crl"))?;
        for path in crls {
            // Read first, so that a bad file is named as such.
            read_crl(path)?;
            let pem = std::fs::read(path)?.starts_with(b"-----BEGIN");
            let kind = if pem {
                openssl::ssl::SslFiletype::PEM
            } else {
                openssl::ssl::SslFiletype::ASN1
            };
            lookup
                .load_crl_file(path, kind)
                .map_err(err("portal.crl"))?;
        }
        store
            .set_flags(X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL)
            .map_err(err("portal.crl"))?;
    }
    builder.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    Ok(builder.build())
}
