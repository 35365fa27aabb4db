//! What an SMTP attempt can come to, classified for the queue: a failure of the relay itself,
//! of TLS, a 4xx, a 5xx, or an outcome nobody can know.

/// Why a message was not accepted, classified for the queue.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// TCP connect failed or timed out: try later.
    #[error("cannot connect to the relay: {0}")]
    Connect(String),
    /// The server does not offer STARTTLS: nothing was sent; try later, never without TLS.
    #[error("the server offers no STARTTLS; nothing was sent (TLS is required)")]
    NoStartTls,
    /// The TLS handshake or certificate verification failed: nothing was sent.
    #[error("TLS failed, nothing was sent: {0}")]
    Tls(String),
    /// The server's certificate does not match the municipality's registered pin.
    #[error("the server's certificate does not match the registered TLS pin (got certificate {cert}, key {key}); nothing was sent")]
    PinMismatch {
        /// SHA-256 of the certificate seen.
        cert: String,
        /// SHA-256 of its key.
        key: String,
    },
    /// The connection broke or stalled before the message was handed over.
    #[error("connection to the relay failed: {0}")]
    Connection(String),
    /// A 4xx reply.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// A 5xx reply: this address will not take the message.
    #[error("rejected permanently: {0}")]
    Permanent(String),
    /// The connection broke after the message was sent and before the server answered:
    /// it may or may not have been accepted.
    #[error("delivery unknown (connection lost after the message was sent): {0}")]
    Unknown(String),
}

impl SendError {
    /// Whether it is worth trying again later (everything but a permanent rejection).
    pub fn is_transient(&self) -> bool {
        !matches!(self, SendError::Permanent(_))
    }

    /// A failure of the relay itself rather than of one recipient: every job for the relay
    /// should wait instead of trying it again at once.
    pub fn is_relay_failure(&self) -> bool {
        matches!(
            self,
            SendError::Connect(_)
                | SendError::Connection(_)
                | SendError::NoStartTls
                | SendError::Tls(_)
        )
    }

    /// A failure of TLS itself (counted separately by operations).
    pub fn is_tls(&self) -> bool {
        matches!(
            self,
            SendError::NoStartTls | SendError::Tls(_) | SendError::PinMismatch { .. }
        )
    }
}

/// Why the relay client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The CA file cannot be used.
    #[error("smtp.ca_file {path}: {message}")]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        message: String,
    },
    /// The client certificate cannot be used.
    #[error("smtp.client_cert/client_key: {0}")]
    ClientCert(String),
    /// OpenSSL refused a setting.
    #[error("TLS set-up: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    /// A bad address or name.
    #[error("smtp: {0}")]
    Settings(String),
}
