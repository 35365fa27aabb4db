//! One MX, one address: connect to port 25, read the greeting, EHLO, require STARTTLS, and
//! make a TLS 1.2+ session, keeping what the server showed (version, cipher, certificate and
//! chain) and what OpenSSL thought of the chain and the name. The probe sends no mail: it
//! ends with QUIT. lettre speaks SMTP over the same switching socket the relay client uses.

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::Starttls;
use lettre::transport::smtp::extension::{ClientId, Extension};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use crate::deliver::mail::smtp::SwitchStream;

/// What one probe found.
pub struct Probed {
    /// The negotiated protocol, e.g. `TLSv1.3`.
    pub version: String,
    /// The negotiated cipher suite.
    pub cipher: String,
    /// The server's certificate.
    pub leaf: X509,
    /// The certificates the server sent after its own (intermediates, perhaps a root).
    pub chain: Vec<X509>,
    /// OpenSSL's verification of the chain against the trusted roots and of the MX name:
    /// `None` when it verified, else its error code and words.
    pub pkix_error: Option<(i32, String)>,
}

/// Why a probe found no TLS session.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProbeError {
    /// No TCP connection or no SMTP greeting.
    #[error("{0}")]
    Unreachable(String),
    /// The server's EHLO reply lists no STARTTLS (or it refused the command).
    #[error("no STARTTLS")]
    NoStartTls,
    /// The handshake failed (including a server that offers less than TLS 1.2).
    #[error("{0}")]
    Handshake(String),
}

/// The most a probed server may send (greeting, EHLO reply, STARTTLS reply; the handshake goes
/// around this count): a hostile server cannot make kurir buffer an endless line.
pub const MAX_PROBE_READ: u64 = 64 * 1024;

/// OpenSSL's `X509_V_ERR_CERT_HAS_EXPIRED`.
pub const VERIFY_EXPIRED: i32 = 10;
/// OpenSSL's `X509_V_ERR_HOSTNAME_MISMATCH`.
pub const VERIFY_HOSTNAME_MISMATCH: i32 = 62;

/// Probes SMTP servers: the TLS context (TLS ≥ 1.2, the trusted roots) and the EHLO name.
pub struct Prober {
    connector: SslConnector,
    hello: ClientId,
    timeout: Duration,
}

/// Why the prober could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ProberError {
    /// OpenSSL.
    #[error("TLS: {0}")]
    Tls(#[from] openssl::error::ErrorStack),
    /// The CA file.
    #[error("{path}: {detail}")]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        detail: String,
    },
}

/// A TLS client context with these roots (or the system's) and TLS 1.2 as the floor. The
/// handshake itself does not stop on a bad certificate: the verdict is kurir's, from the
/// recorded result, so that an expired or misnamed certificate is reported as such.
pub fn tls_context(ca_file: &std::path::Path) -> Result<SslConnector, ProberError> {
    let mut builder = SslConnector::builder(SslMethod::tls_client())?;
    builder.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    if !ca_file.as_os_str().is_empty() {
        let bad = |detail: String| ProberError::CaFile {
            path: ca_file.to_path_buf(),
            detail,
        };
        let pem = std::fs::read(ca_file).map_err(|e| bad(e.to_string()))?;
        let certs = X509::stack_from_pem(&pem).map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("holds no certificate".into()));
        }
        let mut store = X509StoreBuilder::new()?;
        for cert in certs {
            store.add_cert(cert)?;
        }
        builder.set_cert_store(store.build());
    }
    builder.set_verify(SslVerifyMode::NONE);
    Ok(builder.build())
}

impl Prober {
    /// A prober trusting `ca_file` (empty: the system's roots).
    pub fn new(
        ca_file: &std::path::Path,
        hello_name: &str,
        timeout: Duration,
    ) -> Result<Prober, ProberError> {
        let hello = if hello_name.is_empty() {
            ClientId::default()
        } else {
            ClientId::Domain(hello_name.to_string())
        };
        Ok(Prober {
            connector: tls_context(ca_file)?,
            hello,
            timeout,
        })
    }

    /// Probes `host` at `addr`.
    pub async fn probe(&self, addr: SocketAddr, host: &str) -> Result<Probed, ProbeError> {
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ProbeError::Unreachable(format!("timed out after {:?}", self.timeout)))?
            .map_err(|e| ProbeError::Unreachable(e.to_string()))?;
        let (stream, switch) = SwitchStream::plain_limited(tcp, MAX_PROBE_READ);
        let mut conn = self
            .bounded(AsyncSmtpConnection::connect_with_transport(
                Box::new(stream),
                &self.hello,
            ))
            .await?
            .map_err(|e| ProbeError::Unreachable(e.to_string()))?;
        if !conn.server_info().supports_feature(Extension::StartTls) {
            let _ = self.bounded(conn.quit()).await;
            return Err(ProbeError::NoStartTls);
        }
        if self.bounded(conn.command(Starttls)).await?.is_err() {
            return Err(ProbeError::NoStartTls);
        }
        let tcp = switch
            .take_plain()
            .map_err(|e| ProbeError::Handshake(e.to_string()))?;
        let mut ssl = self
            .connector
            .configure()
            .and_then(|mut c| {
                c.set_verify_hostname(false);
                c.param_mut().set_host(host)?;
                c.into_ssl(host)
            })
            .map_err(|e| ProbeError::Handshake(e.to_string()))?;
        ssl.set_verify(SslVerifyMode::NONE);
        let mut tls = SslStream::new(ssl, tcp).map_err(|e| ProbeError::Handshake(e.to_string()))?;
        match tokio::time::timeout(self.timeout, Pin::new(&mut tls).connect()).await {
            Err(_) => return Err(ProbeError::Handshake("the handshake timed out".into())),
            Ok(Err(e)) => return Err(ProbeError::Handshake(e.to_string())),
            Ok(Ok(())) => {}
        }
        let session = tls.ssl();
        let leaf = session
            .peer_certificate()
            .ok_or_else(|| ProbeError::Handshake("the server sent no certificate".into()))?;
        let chain: Vec<X509> = session
            .peer_cert_chain()
            .map(|stack| stack.iter().skip(1).map(|c| c.to_owned()).collect())
            .unwrap_or_default();
        let verify = session.verify_result();
        let probed = Probed {
            version: session.version_str().to_string(),
            cipher: session
                .current_cipher()
                .map(|c| c.name().to_string())
                .unwrap_or_default(),
            leaf,
            chain,
            pkix_error: (verify.as_raw() != 0)
                .then(|| (verify.as_raw(), verify.error_string().to_string())),
        };
        switch.put_tls(tls);
        let _ = self.bounded(conn.quit()).await;
        Ok(probed)
    }

    async fn bounded<T>(&self, fut: impl std::future::Future<Output = T>) -> Result<T, ProbeError> {
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| ProbeError::Unreachable(format!("no reply in {:?}", self.timeout)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_server_that_sends_an_endless_line_is_cut_off_not_buffered() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let chunk = vec![b'2'; 16 * 1024];
            // A greeting that never ends: far beyond what kurir reads.
            for _ in 0..1024 {
                if s.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        });
        let prober = Prober::new(
            std::path::Path::new(""),
            "kurir.test",
            Duration::from_secs(20),
        )
        .expect("prober");
        let result = prober.probe(addr, "mx.test").await;
        assert!(
            matches!(&result, Err(ProbeError::Unreachable(e)) if e.contains("more than")),
            "{:?}",
            result.err()
        );
    }
}
