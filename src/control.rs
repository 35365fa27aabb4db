//! The control socket: how `kurir status`, `list` and `municipality` reach the store.
//!
//! sled admits one process per database, and that process is `kurir run`. So the daemon serves
//! requests on a Unix socket in the state directory (mode 0600: file permissions are the access
//! control), and when no daemon runs the command opens the store itself. Either way the same
//! [`Handler`] answers, so the output cannot differ between the two paths.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::job::{JobId, Kommunkod};
use crate::registry::{PostalAddress, Seed};
use crate::state::JobState;
use crate::store::{Store, StoreError};

/// Longest request line accepted.
const MAX_REQUEST_BYTES: u64 = 1 << 20;
/// How long a client waits for the daemon.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A request to the store's owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// One job with its history.
    Status {
        /// The job.
        id: JobId,
    },
    /// Newest jobs, optionally in one state.
    List {
        /// Only this state.
        state: Option<JobState>,
        /// At most this many.
        limit: usize,
    },
    /// A municipality: built-in facts and what is registered.
    MunicipalityShow {
        /// The municipality.
        code: Kommunkod,
    },
    /// Changes a municipality's registration.
    MunicipalitySet {
        /// The municipality.
        code: Kommunkod,
        /// New postal address, as lines.
        postal_address: Option<String>,
        /// Who makes the change.
        operator: String,
    },
    /// Every change to a municipality's registration.
    MunicipalityHistory {
        /// The municipality.
        code: Kommunkod,
    },
}

/// The answer: a JSON result or an error message for a person.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request succeeded.
    pub ok: bool,
    /// The result when it did.
    #[serde(default)]
    pub result: Value,
    /// The message when it did not.
    #[serde(default)]
    pub error: Option<String>,
}

impl Response {
    fn ok(result: Value) -> Response {
        Response {
            ok: true,
            result,
            error: None,
        }
    }
    fn err(message: impl Into<String>) -> Response {
        Response {
            ok: false,
            result: Value::Null,
            error: Some(message.into()),
        }
    }
}

/// Answers requests from the store. Used by the daemon and, without one, by the command itself.
pub struct Handler {
    store: Store,
    seed: Arc<Seed>,
}

impl Handler {
    /// A handler over this store.
    pub fn new(store: Store, seed: Arc<Seed>) -> Self {
        Handler { store, seed }
    }

    /// Answers one request.
    pub fn handle(&self, request: Request) -> Response {
        match self.try_handle(request) {
            Ok(value) => Response::ok(value),
            Err(message) => Response::err(message),
        }
    }

    fn try_handle(&self, request: Request) -> Result<Value, String> {
        let store_err = |e: StoreError| e.to_string();
        let json_err = |e: serde_json::Error| e.to_string();
        match request {
            Request::Status { id } => {
                let job = self
                    .store
                    .get(&id)
                    .map_err(store_err)?
                    .ok_or_else(|| format!("no job with id {id}"))?;
                let events = self.store.events(&id).map_err(store_err)?;
                Ok(json!({ "job": job, "events": events }))
            }
            Request::List { state, limit } => {
                let jobs = self.store.list(state, limit).map_err(store_err)?;
                serde_json::to_value(jobs).map_err(json_err)
            }
            Request::MunicipalityShow { code } => {
                let seed = self.seed.require(code).map_err(|e| e.to_string())?;
                let registered = self.store.registered(code).map_err(store_err)?;
                Ok(json!({ "municipality": seed, "registered": registered }))
            }
            Request::MunicipalitySet {
                code,
                postal_address,
                operator,
            } => {
                self.seed.require(code).map_err(|e| e.to_string())?;
                let mut registered = self.store.registered(code).map_err(store_err)?;
                if let Some(text) = postal_address {
                    registered.postal_address = if text.trim().is_empty() {
                        None
                    } else {
                        Some(PostalAddress::parse(&text).map_err(|e| e.to_string())?)
                    };
                }
                let change = self
                    .store
                    .register(code, &registered, &operator)
                    .map_err(store_err)?;
                tracing::info!(kommunkod = %code, operator = %operator, "municipality registration changed");
                serde_json::to_value(change).map_err(json_err)
            }
            Request::MunicipalityHistory { code } => {
                self.seed.require(code).map_err(|e| e.to_string())?;
                let history = self.store.registry_history(code).map_err(store_err)?;
                serde_json::to_value(history).map_err(json_err)
            }
        }
    }
}

/// The socket's path in the state directory.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("kurir.sock")
}

/// Serves requests until `shutdown` turns true.
pub async fn serve(
    path: PathBuf,
    handler: Arc<Handler>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    // A socket file left by a killed daemon would make bind fail.
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "control socket accept failed");
                        continue;
                    }
                };
                let handler = handler.clone();
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, handler).await {
                        tracing::debug!(error = %e, "control connection ended with an error");
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}

async fn answer(stream: tokio::net::UnixStream, handler: Arc<Handler>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    tokio::io::AsyncReadExt::take(tokio::io::BufReader::new(read), MAX_REQUEST_BYTES)
        .read_line(&mut line)
        .await?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(request) => tokio::task::spawn_blocking(move || handler.handle(request))
            .await
            .unwrap_or_else(|e| Response::err(format!("request failed: {e}"))),
        Err(e) => Response::err(format!("malformed request: {e}")),
    };
    let mut bytes = serde_json::to_vec(&response).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    write.shutdown().await
}

/// Why a command could not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No daemon listens and the store could not be opened either.
    #[error("cannot reach the daemon at {socket} and cannot open the store: {store}")]
    Unreachable {
        /// The socket tried.
        socket: PathBuf,
        /// Why the store could not be opened.
        store: StoreError,
    },
    /// The daemon answered something unreadable or the connection broke.
    #[error("talking to the daemon at {socket}: {source}")]
    Io {
        /// The socket.
        socket: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn call_daemon(socket: &Path, request: &Request) -> std::io::Result<Response> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut bytes = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    stream.write_all(&bytes)?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(std::io::Error::other)
}

/// Sends a request to the running daemon, or answers it from the store when none runs.
pub fn request(
    state_dir: &Path,
    seed: Arc<Seed>,
    request: Request,
) -> Result<Response, ClientError> {
    let socket = socket_path(state_dir);
    let mut last_store_error = None;
    for _ in 0..20 {
        match call_daemon(&socket, &request) {
            Ok(response) => return Ok(response),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) => {}
            Err(source) => return Err(ClientError::Io { socket, source }),
        }
        match Store::open(state_dir) {
            Ok(store) => return Ok(Handler::new(store, seed).handle(request)),
            // The daemon is starting or stopping: its socket will answer in a moment.
            Err(e) if e.is_locked() => {
                last_store_error = Some(e);
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(store) => return Err(ClientError::Unreachable { socket, store }),
        }
    }
    Err(ClientError::Unreachable {
        socket,
        store: last_store_error.unwrap_or(StoreError::Sled(sled::Error::Unsupported(
            "store locked".into(),
        ))),
    })
}
