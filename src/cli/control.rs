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

use crate::registry::bulk;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use jiff::{SignedDuration, Timestamp};

use crate::deliver::mail::Mailer;
use crate::intake::route::{self, Route, RouteInput};
use crate::job::{JobId, Kommunkod};
use crate::queue::operator::{self, Actor, Operations, Target};
use crate::registry::{
    check_hsa_id, new_verification_code, Changes, Grant, Registered, RegistryError, Seed,
};
use crate::spool::Spool;
use crate::store::state::JobState;
use crate::store::{Store, StoreError};

/// Longest request line accepted.
const MAX_REQUEST_BYTES: u64 = 1 << 20;
/// How long a client waits for the daemon.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// What `status` and the operator commands answer for a job that lies in the spool but has no
/// record yet: intake takes it in within moments (scripts may wait on this text; it carries no
/// personal data).
pub const NOT_TAKEN_IN: &str = "received, not taken in yet";

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
    /// All municipalities with their registration.
    MunicipalityList {
        /// Only those with a secure connection.
        secure_only: bool,
    },
    /// A municipality: built-in facts, registration and the route documents take now.
    MunicipalityShow {
        /// The municipality.
        code: Kommunkod,
    },
    /// Changes a municipality's registration.
    MunicipalitySet {
        /// The municipality.
        code: Kommunkod,
        /// What to change.
        changes: Changes,
        /// Who makes the change.
        operator: String,
    },
    /// Every change to a municipality's registration.
    MunicipalityHistory {
        /// The municipality.
        code: Kommunkod,
    },
    /// Bulk registration from CSV text.
    MunicipalityImport {
        /// The CSV file's content.
        csv: String,
        /// Only show what would change.
        dry_run: bool,
        /// Who makes the change.
        operator: String,
    },
    /// All registrations as CSV text (the import format).
    MunicipalityExport,
    /// Sends a one-time code to the municipality's pending address.
    MunicipalityVerify {
        /// The municipality.
        code: Kommunkod,
        /// Who asks.
        operator: String,
    },
    /// Operator: try now.
    Retry {
        /// What to retry.
        target: Target,
        /// Who and why.
        actor: Actor,
    },
    /// Operator: stop until released.
    Hold {
        /// What to hold.
        target: Target,
        /// Who and why.
        actor: Actor,
    },
    /// Operator: let held jobs go on.
    Release {
        /// What to release.
        target: Target,
        /// Who and why.
        actor: Actor,
    },
    /// Operator: stop a job for good.
    Cancel {
        /// The job.
        id: JobId,
        /// Who and why.
        actor: Actor,
    },
    /// Operator: letters instead of e-mail, now.
    Reroute {
        /// The job.
        id: JobId,
        /// Who and why.
        actor: Actor,
    },
    /// The queue's shape: unfinished jobs by state, age and municipality.
    Queue,
    /// Quarantined jobs still in the quarantine folder.
    QuarantineList,
    /// One quarantined job: reason and files.
    QuarantineShow {
        /// The job.
        id: JobId,
    },
    /// Puts a corrected quarantined job back into `incoming/`.
    QuarantineRelease {
        /// The job.
        id: JobId,
        /// Who and why.
        actor: Actor,
    },
    /// Deletes a quarantined job's folder.
    QuarantineDelete {
        /// The job.
        id: JobId,
        /// Who and why.
        actor: Actor,
    },
    /// Walks the audit chain.
    AuditVerify,
    /// Audit entries from an instant on.
    AuditExport {
        /// From when.
        since: Timestamp,
    },
    /// Lets a person (by HSA-id) manage the municipality's registration in the portal.
    MunicipalityGrant {
        /// The municipality.
        code: Kommunkod,
        /// The person's HSA-id.
        hsa_id: String,
        /// The person's name.
        name: Option<String>,
        /// Who grants it.
        operator: String,
    },
    /// Withdraws a grant.
    MunicipalityRevoke {
        /// The municipality.
        code: Kommunkod,
        /// The person's HSA-id.
        hsa_id: String,
        /// Who withdraws it.
        operator: String,
    },
    /// Makes the pending address active with the code it received.
    MunicipalityConfirm {
        /// The municipality.
        code: Kommunkod,
        /// The code from the verification message.
        secret: String,
        /// Who confirms.
        operator: String,
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
    spool: Spool,
    mailer: Option<Arc<Mailer>>,
    relay_configured: bool,
    code_ttl: SignedDuration,
    /// Registry changes are read-modify-write: one at a time.
    registry_lock: tokio::sync::Mutex<()>,
}

fn store_err(e: StoreError) -> String {
    e.to_string()
}

impl Handler {
    /// A handler over this store; `mailer` sends verification messages; `relay_configured`
    /// says whether e-mail is a possible route at all.
    pub fn new(
        store: Store,
        seed: Arc<Seed>,
        spool: Spool,
        mailer: Option<Arc<Mailer>>,
        relay_configured: bool,
        code_ttl: Duration,
    ) -> Self {
        Handler {
            store,
            seed,
            spool,
            mailer,
            relay_configured,
            code_ttl: SignedDuration::try_from(code_ttl).unwrap_or(SignedDuration::from_hours(168)),
            registry_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn operations(&self) -> Operations<'_> {
        Operations {
            store: &self.store,
            spool: &self.spool,
            seed: &self.seed,
        }
    }

    /// Answers one request.
    pub async fn handle(&self, request: Request) -> Response {
        match self.try_handle(request).await {
            Ok(value) => Response::ok(value),
            Err(message) => Response::err(message),
        }
    }

    /// What to say of a job id the store has no record of: a job just submitted lies in the
    /// spool until intake takes it in, and must not look lost.
    fn unknown_job(&self, id: &JobId) -> String {
        if self.spool.holds(id) {
            format!("{NOT_TAKEN_IN} (job {id}); ask again in a moment")
        } else {
            format!("no job with id {id}")
        }
    }

    /// An operator's error for a person; "no such job" as [`Handler::unknown_job`] says it.
    fn op_error(&self, e: operator::OperatorError) -> String {
        match e {
            operator::OperatorError::NoJob(id)
            | operator::OperatorError::Store(StoreError::NotFound(id)) => self.unknown_job(&id),
            other => other.to_string(),
        }
    }

    async fn try_handle(&self, request: Request) -> Result<Value, String> {
        let json_err = |e: serde_json::Error| e.to_string();
        let op_err = |e: operator::OperatorError| self.op_error(e);
        match request {
            Request::Status { id } => {
                let Some(job) = self.store.get(&id).map_err(store_err)? else {
                    return Err(self.unknown_job(&id));
                };
                let events = self.store.events(&id).map_err(store_err)?;
                Ok(json!({ "job": job, "events": events }))
            }
            Request::List { state, limit } => {
                let jobs = self.store.list(state, limit).map_err(store_err)?;
                serde_json::to_value(jobs).map_err(json_err)
            }
            Request::Retry { target, actor } => {
                self.operations().retry(&target, &actor).map_err(op_err)
            }
            Request::Hold { target, actor } => {
                self.operations().hold(&target, &actor).map_err(op_err)
            }
            Request::Release { target, actor } => {
                self.operations().release(&target, &actor).map_err(op_err)
            }
            Request::Cancel { id, actor } => self.operations().cancel(&id, &actor).map_err(op_err),
            Request::Reroute { id, actor } => self
                .operations()
                .reroute_to_post(&id, &actor)
                .map_err(op_err),
            Request::QuarantineList => self.operations().quarantine_list().map_err(op_err),
            Request::QuarantineShow { id } => {
                self.operations().quarantine_show(&id).map_err(op_err)
            }
            Request::QuarantineRelease { id, actor } => self
                .operations()
                .quarantine_release(&id, &actor)
                .map_err(op_err),
            Request::QuarantineDelete { id, actor } => self
                .operations()
                .quarantine_delete(&id, &actor)
                .map_err(op_err),
            Request::AuditVerify => match self.store.verify_audit().map_err(store_err)? {
                crate::store::audit::Verdict::Ok { entries } => {
                    Ok(json!({ "ok": true, "entries": entries }))
                }
                crate::store::audit::Verdict::Broken { seq, problem } => {
                    Ok(json!({ "ok": false, "seq": seq, "problem": problem }))
                }
            },
            Request::AuditExport { since } => {
                let entries = self.store.audit_since(since).map_err(store_err)?;
                serde_json::to_value(entries).map_err(json_err)
            }
            Request::Queue => {
                operator::queue_shape(&self.store, &self.seed, Timestamp::now()).map_err(store_err)
            }
            Request::MunicipalityList { secure_only } => {
                let registered: std::collections::HashMap<Kommunkod, Registered> = self
                    .store
                    .all_registered()
                    .map_err(store_err)?
                    .into_iter()
                    .collect();
                let rows: Vec<Value> = self
                    .seed
                    .iter()
                    .filter_map(|m| {
                        let r = registered.get(&m.code).cloned().unwrap_or_default();
                        if secure_only && !r.secure_connection {
                            return None;
                        }
                        Some(json!({ "municipality": m, "registered": r }))
                    })
                    .collect();
                Ok(Value::Array(rows))
            }
            Request::MunicipalityShow { code } => {
                let seed = self.seed.require(code).map_err(|e| e.to_string())?;
                let registered = self.store.registered(code).map_err(store_err)?;
                let route = route::route(RouteInput {
                    relay_configured: self.relay_configured,
                    secure_connection: registered.secure_connection,
                    verified_address: registered.active_address.as_deref(),
                });
                let route = match route {
                    Route::Email { address } => format!("e-mail to {address}"),
                    Route::Post { reason } => format!("post ({})", reason.describe()),
                };
                Ok(json!({ "municipality": seed, "registered": registered, "route": route }))
            }
            Request::MunicipalitySet {
                code,
                changes,
                operator,
            } => {
                self.seed.require(code).map_err(|e| e.to_string())?;
                let _guard = self.registry_lock.lock().await;
                let mut registered = self.store.registered(code).map_err(store_err)?;
                let before = registered.clone();
                registered
                    .apply(&changes, Timestamp::now())
                    .map_err(|e| e.to_string())?;
                let diff = diff(&before, &registered);
                self.store
                    .register(code, &registered, &operator, "set")
                    .map_err(store_err)?;
                tracing::info!(kommunkod = %code, operator = %operator, "municipality registration changed");
                Ok(json!({ "kommunkod": code, "changes": diff, "registered": registered }))
            }
            Request::MunicipalityHistory { code } => {
                self.seed.require(code).map_err(|e| e.to_string())?;
                let history = self.store.registry_history(code).map_err(store_err)?;
                serde_json::to_value(history).map_err(json_err)
            }
            Request::MunicipalityImport {
                csv,
                dry_run,
                operator,
            } => self.import(&csv, dry_run, &operator).await,
            Request::MunicipalityExport => {
                let all = self.store.all_registered().map_err(store_err)?;
                bulk::export(&all).map(Value::String)
            }
            Request::MunicipalityVerify { code, operator } => {
                self.seed.require(code).map_err(|e| e.to_string())?;
                let mailer = self.mailer.clone().ok_or(
                    "no SMTP relay is configured ([smtp] host): the verification message must \
                     travel the same protected route as decisions",
                )?;
                let _guard = self.registry_lock.lock().await;
                let mut registered = self.store.registered(code).map_err(store_err)?;
                let secret = new_verification_code();
                if secret.is_empty() {
                    return Err("no randomness available for a verification code".into());
                }
                let expires = Timestamp::now() + self.code_ttl;
                let address = registered
                    .set_code(code, &secret, expires)
                    .map_err(|e| e.to_string())?;
                // Recorded before it is sent: a code that arrives is always one kurir knows.
                self.store
                    .register(
                        code,
                        &registered,
                        &operator,
                        &format!("verification code sent to {address}"),
                    )
                    .map_err(store_err)?;
                let reply = mailer
                    .send_verification(code, &registered, &secret)
                    .await
                    .map_err(|e| format!("sending the verification message to {address}: {e}"))?;
                tracing::info!(kommunkod = %code, operator = %operator, "verification message sent");
                Ok(
                    json!({ "kommunkod": code, "address": address, "expires": expires, "reply": reply }),
                )
            }
            Request::MunicipalityGrant {
                code,
                hsa_id,
                name,
                operator,
            } => {
                self.seed.require(code).map_err(|e| e.to_string())?;
                check_hsa_id(&hsa_id).map_err(|e| e.to_string())?;
                let _guard = self.registry_lock.lock().await;
                let mut registered = self.store.registered(code).map_err(store_err)?;
                registered.grants.retain(|g| g.hsa_id != hsa_id);
                registered.grants.push(Grant {
                    hsa_id: hsa_id.clone(),
                    name,
                });
                self.store
                    .register(
                        code,
                        &registered,
                        &operator,
                        &format!("portal access granted to {hsa_id}"),
                    )
                    .map_err(store_err)?;
                Ok(json!({ "kommunkod": code, "grants": registered.grants }))
            }
            Request::MunicipalityRevoke {
                code,
                hsa_id,
                operator,
            } => {
                self.seed.require(code).map_err(|e| e.to_string())?;
                let _guard = self.registry_lock.lock().await;
                let mut registered = self.store.registered(code).map_err(store_err)?;
                let before = registered.grants.len();
                registered.grants.retain(|g| g.hsa_id != hsa_id);
                if registered.grants.len() == before {
                    return Err(format!("{hsa_id} has no access to kommun {code}"));
                }
                self.store
                    .register(
                        code,
                        &registered,
                        &operator,
                        &format!("portal access revoked for {hsa_id}"),
                    )
                    .map_err(store_err)?;
                Ok(json!({ "kommunkod": code, "grants": registered.grants }))
            }
            Request::MunicipalityConfirm {
                code,
                secret,
                operator,
            } => {
                self.seed.require(code).map_err(|e| e.to_string())?;
                let _guard = self.registry_lock.lock().await;
                let mut registered = self.store.registered(code).map_err(store_err)?;
                let address = match registered.confirm(code, &secret, Timestamp::now()) {
                    Ok(address) => address,
                    Err(e @ (RegistryError::WrongCode(_) | RegistryError::TooManyAttempts(_))) => {
                        // The count of wrong codes is part of the registration: keep it.
                        self.store
                            .register(code, &registered, &operator, "wrong verification code")
                            .map_err(store_err)?;
                        return Err(e.to_string());
                    }
                    Err(e) => return Err(e.to_string()),
                };
                self.store
                    .register(
                        code,
                        &registered,
                        &operator,
                        &format!("address {address} confirmed"),
                    )
                    .map_err(store_err)?;
                tracing::info!(kommunkod = %code, operator = %operator, "address confirmed and active");
                Ok(json!({ "kommunkod": code, "active_address": address }))
            }
        }
    }

    /// Applies a CSV file: every row is checked first; with errors or `dry_run` nothing is
    /// written. Returns the changes per municipality.
    async fn import(&self, text: &str, dry_run: bool, operator: &str) -> Result<Value, String> {
        let rows = bulk::parse(text)?;
        let _guard = self.registry_lock.lock().await;
        let now = Timestamp::now();
        let mut planned = Vec::new();
        let mut errors = Vec::new();
        for (line, code, changes) in rows {
            if let Err(e) = self.seed.require(code) {
                errors.push(format!("line {line}: {e}"));
                continue;
            }
            let before = self.store.registered(code).map_err(store_err)?;
            let mut after = before.clone();
            match after.apply(&changes, now) {
                Ok(()) => {
                    let d = diff(&before, &after);
                    if !d.is_empty() {
                        planned.push((code, after, d));
                    }
                }
                Err(e) => errors.push(format!("line {line} (kommun {code}): {e}")),
            }
        }
        if !errors.is_empty() {
            return Err(format!("nothing was imported:\n{}", errors.join("\n")));
        }
        let summary: Vec<Value> = planned
            .iter()
            .map(|(code, _, d)| json!({ "kommunkod": code, "changes": d }))
            .collect();
        if !dry_run {
            for (code, after, _) in &planned {
                self.store
                    .register(*code, after, operator, "import")
                    .map_err(store_err)?;
            }
            tracing::info!(municipalities = planned.len(), operator = %operator, "registrations imported");
        }
        Ok(json!({ "dry_run": dry_run, "municipalities": summary }))
    }
}

/// Field-by-field differences between two registrations, for dry runs and replies.
fn diff(before: &Registered, after: &Registered) -> Vec<Value> {
    let (Ok(Value::Object(b)), Ok(Value::Object(a))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return Vec::new();
    };
    a.iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, v)| {
            let shown = |x: Option<&Value>| match (k.as_str(), x) {
                ("smime_cert", Some(Value::Object(o))) => {
                    o.get("sha256").cloned().unwrap_or(Value::Null)
                }
                (_, Some(v)) => v.clone(),
                (_, None) => Value::Null,
            };
            json!({ "field": k, "before": shown(b.get(k)), "after": shown(Some(v)) })
        })
        .collect()
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
        Ok(request) => handler.handle(request).await,
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
    settings: &crate::config::Settings,
    seed: Arc<Seed>,
    request: Request,
) -> Result<Response, ClientError> {
    let state_dir = settings.store.dir.as_path();
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
            Ok(store) => return Ok(answer_locally(settings, store, seed, request)),
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
        store: last_store_error.unwrap_or_else(StoreError::locked),
    })
}

/// No daemon runs: this process holds the store for one request.
fn answer_locally(
    settings: &crate::config::Settings,
    store: Store,
    seed: Arc<Seed>,
    request: Request,
) -> Response {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return Response::err(format!("starting a runtime: {e}")),
    };
    // Only a verification sends mail; other requests must work even if e-mail is mis-set.
    let sends_mail = matches!(request, Request::MunicipalityVerify { .. });
    let mailer = if settings.smtp.enabled() && sends_mail {
        match Mailer::new(settings, store.clone(), seed.clone()) {
            Ok(m) => Some(Arc::new(m)),
            Err(e) => return Response::err(format!("setting up e-mail: {e}")),
        }
    } else {
        None
    };
    let handler = Handler::new(
        store,
        seed,
        Spool::new(&settings.spool.dir),
        mailer,
        settings.smtp.enabled(),
        settings.registry.verification_code_ttl,
    );
    runtime.block_on(handler.handle(request))
}
