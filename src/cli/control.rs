//! How a command reaches the service: through the running daemon's operator socket, or — when
//! no daemon runs — by opening the store and running the same service in this process. sled
//! admits one process per database, and that process is `kurir run`; either way the same
//! [`Service`] answers, so the output cannot differ between the two paths.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Settings;
use crate::deliver::mail::Mailer;
use crate::registry::Seed;
use crate::service::protocol::{self, ClientError};
use crate::service::{Call, Command, Principal, Service, ServiceError, ServiceParts};
use crate::spool::Spool;
use crate::store::{Store, StoreError};

pub use crate::service::NOT_TAKEN_IN;

/// The operator socket's name in the state directory.
pub const SOCKET: &str = "kurir.sock";

/// The operator socket's path in the state directory.
pub fn socket_path(state_dir: &std::path::Path) -> PathBuf {
    state_dir.join(SOCKET)
}

/// Why a command could not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No daemon listens and the store could not be opened either.
    #[error("cannot reach the daemon at {socket} and cannot open the store: {store}")]
    Unreachable {
        /// The socket tried.
        socket: PathBuf,
        /// Why the store could not be opened.
        store: StoreError,
    },
    /// The daemon could not be talked to.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// This process could not run the service itself.
    #[error("answering without a daemon: {0}")]
    Local(String),
    /// No daemon answers and there is no store to open: only `kurir run` makes one.
    #[error(
        "no kurir store in {} (settings: {}); only `kurir run` makes one: start the daemon, or \
         name the installed settings with `--config /etc/kurir/kurir.toml` or KURIR_CONFIG",
        state.display(),
        settings_file.as_ref().map(|f| f.display().to_string())
            .unwrap_or_else(|| "built-in defaults, no settings file".into())
    )]
    NoStore {
        /// The state directory looked in.
        state: PathBuf,
        /// The settings file that named it, if any.
        settings_file: Option<PathBuf>,
    },
}

/// How long the command line waits for a backup: it copies every unfinished job's documents.
const BACKUP_CLIENT_TIMEOUT: Duration = Duration::from_secs(3600);

/// Sends a call to the running daemon, or answers it from the store when none runs.
pub fn request<C>(
    settings: &Settings,
    seed: Arc<Seed>,
    principal: Principal,
    call: C,
) -> Result<Result<C::Reply, ServiceError>, ControlError>
where
    C: Call + Into<Command>,
{
    let state_dir = settings.store.dir.as_path();
    let socket = socket_path(state_dir);
    let wait = if C::NAME == <crate::service::call::Backup as Call>::NAME {
        BACKUP_CLIENT_TIMEOUT
    } else {
        protocol::CLIENT_TIMEOUT
    };
    let mut last_store_error = None;
    for _ in 0..20 {
        match protocol::call_blocking(&socket, principal.clone(), &call, wait) {
            Ok(answer) => return Ok(answer),
            Err(ClientError::NotRunning(_)) => {}
            Err(e) => return Err(e.into()),
        }
        // Only the daemon makes a store: a command pointed at the wrong place must say so,
        // not answer from an empty store it just made.
        if !state_dir.join("db").is_dir() {
            return Err(ControlError::NoStore {
                state: std::path::absolute(state_dir).unwrap_or_else(|_| state_dir.to_path_buf()),
                settings_file: settings.file.clone(),
            });
        }
        // Root answers from the store in a process of the store's owner (the daemon's user):
        // files sled makes must be the daemon's, and a threaded process cannot safely change
        // its own user.
        let owner = crate::fsutil::Owner::of(state_dir).map_err(|e| {
            ControlError::Local(format!("reading the owner of {}: {e}", state_dir.display()))
        })?;
        let local = match owner {
            Some(owner) => answer_as(owner, settings, principal, call.into())?,
            None => match Store::open(state_dir) {
                Ok(store) => answer_locally(settings, store, seed, principal, call.into())?,
                // The daemon is starting or stopping: its socket will answer in a moment.
                Err(e) if e.is_locked() => {
                    last_store_error = Some(e);
                    std::thread::sleep(Duration::from_millis(250));
                    continue;
                }
                Err(store) => return Err(ControlError::Unreachable { socket, store }),
            },
        };
        return match local {
            Ok(value) => Ok(Ok(protocol::decode(&socket, value)?)),
            Err(refused) => Ok(Err(refused)),
        };
    }
    Err(ControlError::Unreachable {
        socket,
        store: last_store_error.unwrap_or_else(StoreError::locked),
    })
}

/// Has a process of the store's `owner` answer `command` from the store (root's command line,
/// no daemon running: [`crate::cli::as_owner`]).
fn answer_as(
    owner: crate::fsutil::Owner,
    settings: &Settings,
    principal: Principal,
    command: Command,
) -> Result<Result<serde_json::Value, ServiceError>, ControlError> {
    let task = crate::cli::as_owner::Task::Answer { principal, command };
    let (code, out) = crate::cli::as_owner::run(owner, settings, &task, true)
        .map_err(|e| ControlError::Local(format!("{e:#}")))?;
    if code != std::process::ExitCode::SUCCESS {
        return Err(ControlError::Local(
            "answering as the store's owner failed (its error is above)".into(),
        ));
    }
    let answer: protocol::Answer = serde_json::from_slice(&out)
        .map_err(|e| ControlError::Local(format!("reading the store's owner's answer: {e}")))?;
    Ok(match answer {
        protocol::Answer::Ok(value) => Ok(value),
        protocol::Answer::Err(refused) => Err(refused),
    })
}

/// Answers one request from the store in this process (no daemon runs), waiting while a
/// starting or stopping daemon holds it: what `kurir as-owner` does for root.
pub fn answer_here(
    settings: &Settings,
    seed: Arc<Seed>,
    principal: Principal,
    command: Command,
) -> Result<Result<serde_json::Value, ServiceError>, ControlError> {
    let state_dir = settings.store.dir.as_path();
    let mut last = None;
    for _ in 0..20 {
        match Store::open(state_dir) {
            Ok(store) => return answer_locally(settings, store, seed, principal, command),
            Err(e) if e.is_locked() => {
                last = Some(e);
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(store) => {
                return Err(ControlError::Unreachable {
                    socket: socket_path(state_dir),
                    store,
                })
            }
        }
    }
    Err(ControlError::Unreachable {
        socket: socket_path(state_dir),
        store: last.unwrap_or_else(StoreError::locked),
    })
}

/// No daemon runs: this process holds the store for one command.
fn answer_locally(
    settings: &Settings,
    store: Store,
    seed: Arc<Seed>,
    principal: Principal,
    command: Command,
) -> Result<Result<serde_json::Value, ServiceError>, ControlError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ControlError::Local(format!("starting a runtime: {e}")))?;
    // Only a verification sends mail; other commands must work even if e-mail is mis-set.
    let sends_mail = matches!(command, Command::MunicipalityVerify { .. });
    let mailer = if settings.smtp.enabled() && sends_mail {
        let mailer = Mailer::new(settings, store.clone(), seed.clone())
            .map_err(|e| ControlError::Local(format!("setting up e-mail: {e}")))?;
        Some(Arc::new(mailer))
    } else {
        None
    };
    let (code_key, smime_trust) =
        ServiceParts::keys(settings).map_err(|e| ControlError::Local(e.to_string()))?;
    let spool = Spool::new(&settings.spool.dir);
    // Alerts go to spool/alerts/ (the daemon e-mails its own; this command has no relay).
    let alerter = Arc::new(crate::ops::alert::Alerter::new(
        spool.clone(),
        store.clone(),
        seed.clone(),
        None,
    ));
    let checker_for = |settings: &crate::config::Settings, command: &Command| {
        let direct_send = settings.smtp.mode == crate::config::SmtpMode::Direct
            && matches!(command, Command::MunicipalityVerify { .. });
        if !matches!(command, Command::MunicipalityCheck { .. }) && !direct_send {
            return Ok(None);
        }
        crate::connection::Checker::new(&settings.connection, &settings.dns)
            .map(|c| Some(Arc::new(c)))
            .map_err(|e| ControlError::Local(format!("the connection check: {e}")))
    };
    let mailer_for_checks = mailer.clone();
    let service = Service::new(ServiceParts {
        store,
        seed,
        spool,
        mailer,
        relay_configured: settings.smtp.enabled(),
        connection_rule: crate::store::ConnectionRule::from_settings(&settings.connection),
        checker: checker_for(settings, &command)?,
        connection_expiry_warning: settings.connection.expiry_warning,
        code_ttl: settings.registry.verification_code_ttl,
        daemon: false,
        code_key,
        smime_trust,
        alerter,
        sender: settings.sender.clone(),
        working_hours: ServiceParts::working_hours(settings)
            .map_err(|e| ControlError::Local(format!("[working_hours]: {e}")))?,
        print_confirm_within: settings.print.confirm_within,
        read_within: settings.proof.read_within,
        pdf_limits: crate::pdf::PdfLimits::from_settings(&settings.spool),
        state_dir: settings.store.dir.clone(),
    });
    if let Some(mailer) = &mailer_for_checks {
        mailer.set_on_demand(Arc::new(service.clone()));
    }
    Ok(runtime.block_on(service.call(principal, command)))
}
