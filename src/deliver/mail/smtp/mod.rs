//! SMTP to the relay with required, verified TLS — never plaintext.
//!
//! lettre speaks SMTP; OpenSSL (tokio-openssl) does the TLS, because kurir must check things
//! lettre's pooled transport does not expose: the negotiated version and cipher for the
//! receipt, the server certificate's SHA-256, and a per-municipality pin — all before a single
//! byte of a message is sent. For STARTTLS the connection is a [`SwitchStream`]: lettre reads
//! the greeting and sends EHLO and STARTTLS over plain TCP, then the same socket is upgraded
//! in place and lettre continues over TLS. If the server offers no STARTTLS, or the handshake
//! or the verification fails, the connection is dropped and the delivery is deferred.
//!
//! Each message goes in its own envelope (one recipient), so one municipality's rejection
//! cannot affect another's. Connections are reused from a small pool.

mod error;
mod stream;

pub use error::{SendError, SetupError};
pub use stream::{Switch, SwitchStream};

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt, Rset, Starttls};
use lettre::transport::smtp::extension::{ClientId, Extension, MailParameter, RcptParameter};
use lettre::Address;
use openssl::ssl::{SslConnector, SslMethod, SslVersion};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use tokio::net::TcpStream;
use tokio::sync::OwnedMutexGuard;
use tokio_openssl::SslStream;

use crate::config::{SmtpSettings, SmtpTls};

/// What the TLS session to the server was: recorded in the receipt as proof.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TlsFacts {
    /// e.g. `TLSv1.3`.
    pub version: String,
    /// e.g. `TLS_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// SHA-256 of the server certificate (DER), hex.
    pub server_cert_sha256: String,
    /// SHA-256 of the server's public key (SubjectPublicKeyInfo DER), hex.
    pub server_key_sha256: String,
}

/// The server took the message.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The server's final reply, e.g. `250 2.0.0 Ok: queued as 4XyZ`.
    pub reply: String,
    /// The TLS session it went over.
    pub tls: TlsFacts,
    /// With a [`ReportRequest`]: whether the relay offered DSN, so that reports were asked for.
    pub dsn_requested: Option<bool>,
}

/// Asks for delivery reports: the envelope sender that takes them back, and the envelope id
/// they will name. DSN parameters (RFC 3461) are sent only where the relay advertises `DSN`.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    /// `MAIL FROM`: the per-recipient return address.
    pub return_path: String,
    /// `ENVID`: `<job-id>.<kommunkod>`.
    pub envelope_id: String,
}

struct Pooled {
    conn: AsyncSmtpConnection,
    /// kurir's handle on the socket lettre holds: the TLS upgrade and the commit gate.
    switch: Switch,
    tls: TlsFacts,
    /// The server advertised `DSN` in its EHLO reply over TLS.
    dsn: bool,
    idle_since: Instant,
}

/// A municipality's mail server, as kurir's connection check found and verified it: where a
/// direct delivery goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DirectTarget {
    /// The MX host name (the certificate must name it, unless `pinned`).
    pub host: String,
    /// The address the check connected to.
    pub address: std::net::IpAddr,
    /// The port (25).
    pub port: u16,
    /// DANE vouched for this certificate (SHA-256, hex) at the check: the server must present
    /// exactly it, and its chain and name are not looked at (RFC 7672 DANE-EE).
    pub pinned: Option<String>,
}

/// The relay client: one per daemon, shared by all deliveries.
pub struct Relay {
    settings: SmtpSettings,
    /// Direct mode: the address to connect to instead of resolving `settings.host`.
    connect_to: Option<std::net::IpAddr>,
    /// Direct mode, DANE: the certificate the server must present.
    pinned_only: Option<String>,
    connector: SslConnector,
    hello: ClientId,
    from: Address,
    pool: Mutex<Vec<Pooled>>,
    /// Serialises the end of DATA with the recording of its outcome (see [`CommitToken`]).
    commit_lock: Arc<tokio::sync::Mutex<()>>,
}

/// Held from the last bytes of a message's content (the end of DATA) until its outcome is
/// durably recorded. Drop it after recording.
///
/// Only the end of DATA is serialised: bodies stream over all pooled connections at once, and
/// each waits for the token just before the bytes that let the server accept it.
#[derive(Debug)]
pub struct CommitToken(#[allow(dead_code)] OwnedMutexGuard<()>);

impl Relay {
    /// Prepares the TLS context (CA, TLS ≥ 1.2, client certificate) and the sender address.
    pub fn new(settings: &SmtpSettings) -> Result<Relay, SetupError> {
        let mut builder = SslConnector::builder(SslMethod::tls_client())?;
        builder.set_min_proto_version(Some(SslVersion::TLS1_2))?;
        if !settings.ca_file.as_os_str().is_empty() {
            let path = &settings.ca_file;
            let pem = std::fs::read(path).map_err(|e| SetupError::CaFile {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let certs = X509::stack_from_pem(&pem).map_err(|e| SetupError::CaFile {
                path: path.clone(),
                message: e.to_string(),
            })?;
            if certs.is_empty() {
                return Err(SetupError::CaFile {
                    path: path.clone(),
                    message: "holds no certificate".into(),
                });
            }
            // Only these CAs: the system's roots are not consulted when a CA file is set.
            let mut store = X509StoreBuilder::new()?;
            for cert in certs {
                store.add_cert(cert)?;
            }
            builder.set_cert_store(store.build());
        }
        if !settings.client_cert.as_os_str().is_empty() {
            builder
                .set_certificate_chain_file(&settings.client_cert)
                .map_err(|e| SetupError::ClientCert(e.to_string()))?;
            builder
                .set_private_key_file(&settings.client_key, openssl::ssl::SslFiletype::PEM)
                .map_err(|e| SetupError::ClientCert(e.to_string()))?;
            builder
                .check_private_key()
                .map_err(|e| SetupError::ClientCert(e.to_string()))?;
        }
        let hello = if settings.hello_name.is_empty() {
            ClientId::default()
        } else {
            ClientId::Domain(settings.hello_name.clone())
        };
        let from = settings
            .from
            .parse::<Address>()
            .map_err(|e| SetupError::Settings(format!("from {:?}: {e}", settings.from)))?;
        Ok(Relay {
            settings: settings.clone(),
            connect_to: None,
            pinned_only: None,
            connector: builder.build(),
            hello,
            from,
            pool: Mutex::new(Vec::new()),
            commit_lock: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// A client for one municipality's MX (direct mode): STARTTLS on its port, its name (or,
    /// with DANE, its pinned certificate) verified against `ca_file`'s roots (empty: the
    /// system's), no client certificate and no AUTH.
    pub fn direct(
        settings: &SmtpSettings,
        target: &DirectTarget,
        ca_file: &std::path::Path,
    ) -> Result<Relay, SetupError> {
        let mut direct = settings.clone();
        direct.host = target.host.clone();
        direct.port = target.port;
        direct.tls = SmtpTls::Starttls;
        direct.ca_file = ca_file.to_path_buf();
        direct.client_cert = std::path::PathBuf::new();
        direct.client_key = std::path::PathBuf::new();
        direct.username = String::new();
        direct.password = String::new();
        let mut relay = Relay::new(&direct)?;
        relay.connect_to = Some(target.address);
        relay.pinned_only = target.pinned.clone();
        Ok(relay)
    }

    /// The relay as `host:port`, for logs and receipts.
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.settings.host, self.settings.port)
    }

    /// Sends one message to one recipient. `pin` is the municipality's registered TLS pin.
    /// Not serialised with other messages: for messages whose outcome must be durably recorded
    /// (decisions), use [`Relay::send_committed`].
    pub async fn send(
        &self,
        to: &str,
        message: &[u8],
        pin: Option<&str>,
    ) -> Result<Accepted, SendError> {
        self.send_inner(to, message, pin, None, None).await
    }

    /// Like [`Relay::send`], and returns a [`CommitToken`] once the end of the message was
    /// handed to the server. Keep it until the outcome is durably recorded: while it is held
    /// no other message can end its DATA, so a crash leaves at most one message whose
    /// acceptance the server knows and kurir does not — at most one duplicate per crash.
    pub async fn send_committed(
        &self,
        to: &str,
        message: &[u8],
        pin: Option<&str>,
        reports: Option<&ReportRequest>,
    ) -> (Result<Accepted, SendError>, Option<CommitToken>) {
        let mut commit = None;
        let result = self
            .send_inner(to, message, pin, Some(&mut commit), reports)
            .await;
        (result, commit)
    }

    async fn send_inner(
        &self,
        to: &str,
        message: &[u8],
        pin: Option<&str>,
        commit: Option<&mut Option<CommitToken>>,
        reports: Option<&ReportRequest>,
    ) -> Result<Accepted, SendError> {
        let to: Address = to
            .parse()
            .map_err(|e| SendError::Permanent(format!("invalid recipient address: {e}")))?;
        let mut pooled = match self.take_pooled().await {
            Some(p) => p,
            None => self.connect().await?,
        };
        if let Some(pin) = pin {
            let pin = pin.to_lowercase();
            if pooled.tls.server_cert_sha256 != pin && pooled.tls.server_key_sha256 != pin {
                let err = SendError::PinMismatch {
                    cert: pooled.tls.server_cert_sha256.clone(),
                    key: pooled.tls.server_key_sha256.clone(),
                };
                self.put_back(pooled);
                return Err(err);
            }
        }
        let dsn = pooled.dsn;
        let result = self
            .transaction(
                &mut pooled.conn,
                &pooled.switch,
                &to,
                message,
                commit,
                reports.map(|r| (r, dsn)),
            )
            .await;
        let tls = pooled.tls.clone();
        match &result {
            Ok(_) | Err(SendError::Transient(_)) | Err(SendError::Permanent(_))
                if !pooled.conn.has_broken() =>
            {
                if result.is_err() {
                    let _ = self.step(pooled.conn.command(Rset)).await;
                }
                self.put_back(pooled);
            }
            _ => pooled.conn.abort().await,
        }
        result.map(|reply| Accepted {
            reply,
            tls,
            dsn_requested: reports.map(|_| dsn),
        })
    }

    /// Connects with verified TLS and says goodbye: what `kurir doctor` checks. Also says
    /// whether the relay offers delivery reports (DSN).
    pub async fn probe(&self) -> Result<(TlsFacts, bool), SendError> {
        let mut pooled = self.connect().await?;
        let _ = self.step(pooled.conn.quit()).await;
        Ok((pooled.tls, pooled.dsn))
    }

    /// MAIL, RCPT, DATA, message — each step bounded by the timeout. Returns the final reply.
    ///
    /// The message's bytes go out while other connections send theirs; only its last bytes
    /// and the end-of-data marker wait for the commit token (see [`Switch::arm_commit_gate`]).
    async fn transaction(
        &self,
        conn: &mut AsyncSmtpConnection,
        switch: &Switch,
        to: &Address,
        message: &[u8],
        commit: Option<&mut Option<CommitToken>>,
        reports: Option<(&ReportRequest, bool)>,
    ) -> Result<String, SendError> {
        let before = |e: lettre::transport::smtp::Error| classify(e, false);
        let other = |keyword: &str, value: String| (keyword.to_string(), Some(value));
        let (from, mail_params, rcpt_params) = match reports {
            Some((request, dsn)) => {
                let from = request
                    .return_path
                    .parse::<Address>()
                    .map_err(|e| SendError::Permanent(format!("invalid return path: {e}")))?;
                let (mail, rcpt) = if dsn {
                    (
                        vec![
                            other("RET", "HDRS".into()),
                            other("ENVID", request.envelope_id.clone()),
                        ],
                        vec![
                            other("NOTIFY", "SUCCESS,FAILURE,DELAY".into()),
                            other("ORCPT", format!("rfc822;{to}")),
                        ],
                    )
                } else {
                    (Vec::new(), Vec::new())
                };
                (from, mail, rcpt)
            }
            None => (self.from.clone(), Vec::new(), Vec::new()),
        };
        let mail_params = mail_params
            .into_iter()
            .map(|(keyword, value)| MailParameter::Other { keyword, value })
            .collect();
        let rcpt_params = rcpt_params
            .into_iter()
            .map(|(keyword, value)| RcptParameter::Other { keyword, value })
            .collect();
        self.step(conn.command(Mail::new(Some(from), mail_params)))
            .await?
            .map_err(before)?;
        self.step(conn.command(Rcpt::new(to.clone(), rcpt_params)))
            .await?
            .map_err(before)?;
        self.step(conn.command(Data)).await?.map_err(before)?;
        // lettre ends the data with CRLF "." CRLF whatever the message ends with, so a message
        // that ends with its own CRLF (every one kurir builds) would arrive with an empty line
        // added. Without it the server stores exactly the bytes whose SHA-256 the receipt
        // carries as proof.
        let message = message.strip_suffix(b"\r\n").unwrap_or(message);
        if commit.is_some() {
            switch.arm_commit_gate(message.len() as u64, self.commit_lock.clone());
        }
        let sent = tokio::time::timeout(self.settings.timeout, conn.message(message)).await;
        let passed = match commit {
            Some(commit) => {
                *commit = switch.disarm_commit_gate().map(CommitToken);
                commit.is_some()
            }
            // Nothing waits for the end of the message: assume it went out.
            None => true,
        };
        let response = match sent {
            Ok(Ok(response)) => response,
            // The end of DATA never left: the server cannot have accepted the message.
            Ok(Err(e)) if !passed => return Err(classify(e, false)),
            Ok(Err(e)) => return Err(classify(e, true)),
            Err(_) if !passed => {
                return Err(SendError::Connection(format!(
                    "the message could not be sent within {:?}",
                    self.settings.timeout
                )))
            }
            Err(_) => {
                return Err(SendError::Unknown(format!(
                    "no reply within {:?} after the message was sent",
                    self.settings.timeout
                )))
            }
        };
        let code = response.code();
        let text: Vec<&str> = response.message().collect();
        Ok(format!("{code} {}", text.join(" ")))
    }

    /// Runs one SMTP step with the timeout; a timeout before the message is a connection
    /// failure (nothing was handed over).
    async fn step<T>(&self, fut: impl std::future::Future<Output = T>) -> Result<T, SendError> {
        tokio::time::timeout(self.settings.timeout, fut)
            .await
            .map_err(|_| {
                SendError::Connection(format!("no reply within {:?}", self.settings.timeout))
            })
    }

    async fn take_pooled(&self) -> Option<Pooled> {
        loop {
            let candidate = {
                let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
                pool.pop()
            }?;
            let mut candidate = candidate;
            if candidate.idle_since.elapsed() > self.settings.pool_idle_timeout {
                let _ = self.step(candidate.conn.quit()).await;
                continue;
            }
            if matches!(self.step(candidate.conn.test_connected()).await, Ok(true)) {
                return Some(candidate);
            }
            candidate.conn.abort().await;
        }
    }

    fn put_back(&self, mut pooled: Pooled) {
        pooled.idle_since = Instant::now();
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < self.settings.pool_max_idle {
            pool.push(pooled);
        }
    }

    /// Opens a connection with verified TLS; fails before any mail command otherwise.
    async fn connect(&self) -> Result<Pooled, SendError> {
        let connecting: Pin<
            Box<dyn std::future::Future<Output = std::io::Result<TcpStream>> + Send + '_>,
        > = match self.connect_to {
            Some(ip) => Box::pin(TcpStream::connect((ip, self.settings.port))),
            None => Box::pin(TcpStream::connect((
                self.settings.host.as_str(),
                self.settings.port,
            ))),
        };
        let tcp = tokio::time::timeout(self.settings.timeout, connecting)
            .await
            .map_err(|_| {
                SendError::Connect(format!("timed out after {:?}", self.settings.timeout))
            })?
            .map_err(|e| SendError::Connect(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let (stream, switch) = SwitchStream::plain(tcp);
        let (conn, tls, dsn) = match self.settings.tls {
            SmtpTls::Wrapper => {
                let tcp = switch
                    .take_plain()
                    .map_err(|e| SendError::Connect(e.to_string()))?;
                let (tls_stream, facts) = self.handshake(tcp).await?;
                switch.put_tls(tls_stream);
                let mut conn = self
                    .step(AsyncSmtpConnection::connect_with_transport(
                        Box::new(stream),
                        &self.hello,
                    ))
                    .await?
                    .map_err(|e| classify(e, false))?;
                // lettre's ServerInfo does not keep DSN: ask again and read the reply.
                let ehlo = self
                    .step(conn.command(Ehlo::new(self.hello.clone())))
                    .await?
                    .map_err(|e| classify(e, false))?;
                (conn, facts, offers_dsn(&ehlo))
            }
            SmtpTls::Starttls => {
                let mut conn = self
                    .step(AsyncSmtpConnection::connect_with_transport(
                        Box::new(stream),
                        &self.hello,
                    ))
                    .await?
                    .map_err(|e| classify(e, false))?;
                if !conn.server_info().supports_feature(Extension::StartTls) {
                    let _ = self.step(conn.quit()).await;
                    return Err(SendError::NoStartTls);
                }
                self.step(conn.command(Starttls))
                    .await?
                    .map_err(|e| SendError::Tls(format!("STARTTLS refused: {e}")))?;
                let tcp = switch
                    .take_plain()
                    .map_err(|e| SendError::Tls(e.to_string()))?;
                let (tls_stream, facts) = self.handshake(tcp).await?;
                switch.put_tls(tls_stream);
                let ehlo = self
                    .step(conn.command(Ehlo::new(self.hello.clone())))
                    .await?
                    .map_err(|e| classify(e, false))?;
                (conn, facts, offers_dsn(&ehlo))
            }
        };
        let mut conn = conn;
        if !self.settings.username.is_empty() {
            let credentials = lettre::transport::smtp::authentication::Credentials::new(
                self.settings.username.clone(),
                self.settings.password.clone(),
            );
            use lettre::transport::smtp::authentication::Mechanism;
            self.step(conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials))
                .await?
                .map_err(|e| classify(e, false))?;
        }
        Ok(Pooled {
            conn,
            switch,
            tls,
            dsn,
            idle_since: Instant::now(),
        })
    }

    /// TLS handshake with hostname and chain verification; returns the stream and its facts.
    async fn handshake(
        &self,
        tcp: TcpStream,
    ) -> Result<(SslStream<TcpStream>, TlsFacts), SendError> {
        let mut ssl = self
            .connector
            .configure()
            .and_then(|c| c.into_ssl(&self.settings.host))
            .map_err(|e| SendError::Tls(e.to_string()))?;
        if self.pinned_only.is_some() {
            // DANE-EE: the certificate is checked against the pin below, not against roots.
            ssl.set_verify(openssl::ssl::SslVerifyMode::NONE);
        }
        let mut stream = SslStream::new(ssl, tcp).map_err(|e| SendError::Tls(e.to_string()))?;
        let handshake =
            tokio::time::timeout(self.settings.timeout, Pin::new(&mut stream).connect()).await;
        match handshake {
            Err(_) => return Err(SendError::Tls("handshake timed out".into())),
            Ok(Err(e)) => {
                let verify = stream.ssl().verify_result();
                let reason = if verify.as_raw() != 0 {
                    format!("certificate verification failed: {}", verify.error_string())
                } else {
                    e.to_string()
                };
                return Err(SendError::Tls(reason));
            }
            Ok(Ok(())) => {}
        }
        let ssl = stream.ssl();
        let cert = ssl
            .peer_certificate()
            .ok_or_else(|| SendError::Tls("the server sent no certificate".into()))?;
        let cert_der = cert.to_der().map_err(|e| SendError::Tls(e.to_string()))?;
        let key_der = cert
            .public_key()
            .and_then(|k| k.public_key_to_der())
            .map_err(|e| SendError::Tls(e.to_string()))?;
        let facts = TlsFacts {
            version: ssl.version_str().to_string(),
            cipher: ssl
                .current_cipher()
                .map(|c| c.name().to_string())
                .unwrap_or_default(),
            server_cert_sha256: crate::digest::sha256_hex(&cert_der),
            server_key_sha256: crate::digest::sha256_hex(&key_der),
        };
        if let Some(pinned) = &self.pinned_only {
            if !facts.server_cert_sha256.eq_ignore_ascii_case(pinned) {
                return Err(SendError::Tls(format!(
                    "the server's certificate ({}) is not the one DANE vouched for at the last \
                     connection check ({pinned})",
                    facts.server_cert_sha256
                )));
            }
        }
        Ok((stream, facts))
    }
}

/// Whether an EHLO reply advertises delivery status notifications (RFC 3461).
fn offers_dsn(ehlo: &lettre::transport::smtp::response::Response) -> bool {
    ehlo.message().any(|line| {
        line.split_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("DSN"))
    })
}

/// Maps a lettre error to the queue's classes. `after_data` is true once the message itself
/// was (possibly) written: then a broken connection means the outcome is unknown.
fn classify(e: lettre::transport::smtp::Error, after_data: bool) -> SendError {
    let text = e.to_string();
    if e.is_permanent() {
        SendError::Permanent(text)
    } else if e.is_transient() {
        SendError::Transient(text)
    } else if after_data {
        SendError::Unknown(text)
    } else {
        SendError::Connection(text)
    }
}
