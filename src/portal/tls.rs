//! The portal's TLS: HTTPS only, and a client certificate required at the handshake and
//! verified against `[portal] client_ca` (SITHS in production). No certificate, an expired
//! one, or one from another CA: the handshake fails and no page is served at all.

use std::path::Path;

use openssl::nid::Nid;
use openssl::ssl::{SslAcceptor, SslMethod, SslVerifyMode};
use openssl::x509::{X509Ref, X509};

use crate::registry::Person;

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
    crate::registry::check_hsa_id(&hsa_id).ok()?;
    Some(Person {
        hsa_id,
        name: entry(Nid::COMMONNAME).unwrap_or_default(),
        issuer: Some(name_text(cert.issuer_name())),
    })
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
}

/// The acceptor: TLS 1.2 or later, the server's chain and key, and client certificates from
/// `client_ca` required.
pub fn acceptor(cert: &Path, key: &Path, client_ca: &Path) -> Result<SslAcceptor, TlsSetupError> {
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
    builder.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    Ok(builder.build())
}
