//! The control sockets' wire format and its client: one request per connection, a JSON line
//! `{"protocol":4,"principal":…,"command":{"command":"<call>",…}}`, answered by one JSON line
//! `{"protocol":4,"result":{"ok":<the call's reply>}|{"err":…}}`. The `protocol` number says
//! which version of these types a peer speaks; a peer of another version gets a clear error
//! instead of a misread answer. Version 4 (kurir 0.3) names each call by its type
//! ([`Call::NAME`]); version 3 named it in kebab-case, version 2 wrapped replies in a
//! variant's name. The server is the daemon's (`kurir::service::protocol`).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use crate::call::Call;
use crate::error::ServiceError;
use crate::registry::Person;

/// The version of the wire format this kurir speaks.
pub const PROTOCOL: u32 = 4;
/// Longest answer a client reads (a desk list, an audit export).
const MAX_ANSWER_BYTES: u64 = 64 << 20;
/// How long a client waits for the daemon's answer (a verification mail may take a while).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

/// Who asks. Recorded with every change, in the job's or the registration's history and in
/// the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Principal {
    /// An operator at the command line, by name (`--operator`, else the OS user).
    Operator(String),
    /// A municipality person signed in on the portal, as the portal process read their
    /// certificate. Speaks only through the portal's door, and only of registrations.
    Person(Person),
    /// A member of the agency's staff signed in on the desk, as the desk process read their
    /// card. Speaks only through the desk's door, and only of decisions.
    Staff(Person),
    /// The portal process itself, reporting on its own state (its revocation lists).
    Portal,
    /// The desk process itself, reporting on its own state (its revocation lists).
    Desk,
}

impl Principal {
    /// How the principal is named in histories and the audit chain.
    pub fn recorded_as(&self) -> String {
        match self {
            Principal::Operator(name) => name.clone(),
            Principal::Person(person) => person.operator(),
            Principal::Staff(person) => person.on_desk(),
            Principal::Portal => "kurir portal".into(),
            Principal::Desk => "kurir desk".into(),
        }
    }
}

/// A request on the wire: `command` is the daemon's enum of every call when it reads one,
/// and one call, tagged with its name ([`Tagged`]), when a client writes one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request<C> {
    /// The sender's [`PROTOCOL`].
    pub protocol: u32,
    /// Who asks.
    pub principal: Principal,
    /// What.
    pub command: C,
}

/// One call as the wire carries it: its fields and `"command": C::NAME`.
#[derive(Debug)]
pub struct Tagged<'a, C>(pub &'a C);

impl<C: Call> Serialize for Tagged<'_, C> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut value = serde_json::to_value(self.0).map_err(S::Error::custom)?;
        let Value::Object(fields) = &mut value else {
            return Err(S::Error::custom("a call is a struct"));
        };
        // The tag is the wire's; a call with a field of that name would be misread.
        if fields.contains_key("command") {
            return Err(S::Error::custom("a call has a field named `command`"));
        }
        fields.insert("command".into(), Value::from(C::NAME));
        value.serialize(s)
    }
}

/// An answer on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// The daemon's [`PROTOCOL`].
    pub protocol: u32,
    /// The answer.
    pub result: Answer,
}

/// The service's answer, or why there is none.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Answer {
    /// What the service answered: the call's [`Call::Reply`], as JSON.
    Ok(Value),
    /// Why it did not.
    Err(ServiceError),
}

/// Why a client got no answer from the service.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens at the socket: no daemon runs (or it is restarting).
    #[error("no daemon answers at {0}")]
    NotRunning(PathBuf),
    /// The socket exists but this user may not use it.
    #[error("{0}: permission denied (run as the daemon's user or root)")]
    Denied(PathBuf),
    /// The daemon speaks another version of the protocol.
    #[error("the daemon at {socket} speaks control protocol {daemon}; this kurir speaks {PROTOCOL}: use the kurir of the daemon's version")]
    OtherVersion {
        /// The socket.
        socket: PathBuf,
        /// What the daemon speaks (1 for 0.1.0).
        daemon: u32,
    },
    /// The exchange failed.
    #[error("talking to the daemon at {socket}: {source}")]
    Io {
        /// The socket.
        socket: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl ClientError {
    fn of(socket: &Path, e: std::io::Error) -> ClientError {
        match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                ClientError::NotRunning(socket.to_path_buf())
            }
            std::io::ErrorKind::PermissionDenied => ClientError::Denied(socket.to_path_buf()),
            _ => ClientError::Io {
                socket: socket.to_path_buf(),
                source: e,
            },
        }
    }
}

fn request_line<C: Call>(principal: Principal, call: &C) -> std::io::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec(&Request {
        protocol: PROTOCOL,
        principal,
        command: Tagged(call),
    })
    .map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Reads a call's reply out of the answer's JSON.
pub fn decode<R: serde::de::DeserializeOwned>(
    socket: &Path,
    value: Value,
) -> Result<R, ClientError> {
    serde_json::from_value(value).map_err(|e| ClientError::Io {
        socket: socket.to_path_buf(),
        source: std::io::Error::other(e),
    })
}

fn read_answer(socket: &Path, line: &str) -> Result<Result<Value, ServiceError>, ClientError> {
    let value: Value = serde_json::from_str(line).map_err(|e| ClientError::Io {
        socket: socket.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    match value.get("protocol").and_then(Value::as_u64) {
        Some(v) if v == u64::from(PROTOCOL) => {}
        other => {
            return Err(ClientError::OtherVersion {
                socket: socket.to_path_buf(),
                daemon: other.and_then(|v| u32::try_from(v).ok()).unwrap_or(1),
            })
        }
    }
    let response: Response = serde_json::from_value(value).map_err(|e| ClientError::Io {
        socket: socket.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    Ok(match response.result {
        Answer::Ok(reply) => Ok(reply),
        Answer::Err(e) => Err(e),
    })
}

/// Sends one call to the daemon at `socket` and waits up to `wait` for its reply (the command
/// line).
pub fn call_blocking<C: Call>(
    socket: &Path,
    principal: Principal,
    call: &C,
    wait: Duration,
) -> Result<Result<C::Reply, ServiceError>, ClientError> {
    let io = |e| ClientError::of(socket, e);
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(io)?;
    stream.set_read_timeout(Some(wait)).map_err(io)?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
    stream
        .write_all(&request_line(principal, call).map_err(io)?)
        .map_err(io)?;
    let mut line = String::new();
    BufReader::new(stream)
        .take(MAX_ANSWER_BYTES)
        .read_line(&mut line)
        .map_err(io)?;
    match read_answer(socket, &line)? {
        Ok(value) => Ok(Ok(decode(socket, value)?)),
        Err(refused) => Ok(Err(refused)),
    }
}

/// Sends one call to the daemon at `socket` and waits for its reply (the portal, the desk).
pub async fn call<C: Call>(
    socket: &Path,
    principal: Principal,
    call: C,
) -> Result<Result<C::Reply, ServiceError>, ClientError> {
    let io = |e| ClientError::of(socket, e);
    let exchange = async {
        let mut stream = tokio::net::UnixStream::connect(socket).await.map_err(io)?;
        stream
            .write_all(&request_line(principal, &call).map_err(io)?)
            .await
            .map_err(io)?;
        let mut line = String::new();
        tokio::io::BufReader::new(stream)
            .take(MAX_ANSWER_BYTES)
            .read_line(&mut line)
            .await
            .map_err(io)?;
        read_answer(socket, &line)
    };
    let answer = tokio::time::timeout(CLIENT_TIMEOUT, exchange)
        .await
        .map_err(|_| io(std::io::Error::from(std::io::ErrorKind::TimedOut)))??;
    match answer {
        Ok(value) => Ok(Ok(decode(socket, value)?)),
        Err(refused) => Ok(Err(refused)),
    }
}
