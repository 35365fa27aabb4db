//! The service: the one way anything in kurir is asked or changed from outside the flow.
//!
//! Every surface is a thin adapter over it: the command line (through the control socket, or
//! in-process when no daemon runs), the portal (its own process, through its own socket) and
//! the desk. A request is a typed [`Command`] from a [`Principal`]; the answer is a typed
//! [`Reply`] or a [`ServiceError`] that names what went wrong, which each surface words itself.
//! Who may send what is decided here, once ([`access`]): a person on the portal may only touch
//! the municipalities the agency granted them, and nothing an operator alone may do.
//!
//! Store work is blocking (sled, flushes, files): it crosses into `spawn_blocking` here, at one
//! boundary ([`Service::call`]), so that no async worker ever waits for the disk.
//!
//! Files: `command`, `reply`, `error` (the shared vocabulary), `access` (who may send what),
//! `registry` (registrations, codes, grants), `jobs` (status, lists, operator actions, audit),
//! `protocol` (the versioned wire format of the control sockets, their server and clients).

mod access;
mod announce;
pub mod command;
mod connection;
mod desk;
pub mod error;
mod jobs;
mod notices;
pub mod protocol;
mod registry;
pub mod reply;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use crate::config::{SenderSettings, WebDoor};
use crate::deliver::mail::Mailer;
use crate::ops::alert::Alerter;
use crate::registry::{ChangeContext, CodeKey, Person, Seed, SmimeTrust, StaffRole};
use crate::spool::Spool;
use crate::store::kinds::Team;
use crate::store::Store;
use crate::worktime::WorkingHours;

pub use command::Command;
pub use connection::{address_to_check, ConnectionReport};
pub use error::{ImportLineError, ServiceError, NOT_TAKEN_IN};
pub use reply::*;

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

/// The member of staff behind a desk command (the desk is for persons signed in with a card).
fn person_of(principal: &Principal) -> Result<&Person, ServiceError> {
    match principal {
        Principal::Staff(person) => Ok(person),
        _ => Err(ServiceError::NotPermitted),
    }
}

/// What the service works with.
pub struct ServiceParts {
    /// The store.
    pub store: Store,
    /// The 290 municipalities.
    pub seed: Arc<Seed>,
    /// The spool (quarantine folders, jobs not taken in yet, receipts).
    pub spool: Spool,
    /// Sends verification codes; `None` without a relay.
    pub mailer: Option<Arc<Mailer>>,
    /// Whether e-mail is a possible route at all.
    pub relay_configured: bool,
    /// What routing needs of the municipality's connection check.
    pub connection_rule: crate::store::ConnectionRule,
    /// Checks municipalities' mail servers (`municipality check`); `None` where a command
    /// holds the store without a network.
    pub checker: Option<Arc<crate::connection::Checker>>,
    /// A municipality's server certificate expiring within this alerts operations.
    pub connection_expiry_warning: Duration,
    /// How long a verification code stays valid.
    pub code_ttl: Duration,
    /// Whether this is the daemon (its receipt writer writes the receipts a change makes
    /// owed); a command that answers from the store itself writes them before it returns.
    pub daemon: bool,
    /// Seals verification codes in the store.
    pub code_key: CodeKey,
    /// The CAs municipalities' S/MIME certificates must chain to (`[registry] smime_ca`).
    pub smime_trust: Option<SmimeTrust>,
    /// Raises the agency's alerts (a change of where decisions go, an approval waiting).
    pub alerter: Arc<Alerter>,
    /// The agency, as named in notices to municipalities.
    pub sender: SenderSettings,
    /// The office hours the print shop's confirmation is counted in.
    pub working_hours: WorkingHours,
    /// Working time within which a closed print batch must be confirmed.
    pub print_confirm_within: Duration,
    /// What a document must be to be sent (the desk checks drafts as `kurir submit` does).
    pub pdf_limits: crate::pdf::PdfLimits,
    /// The state folder (its keys go into backups).
    pub state_dir: std::path::PathBuf,
}

/// The service. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    core: Arc<Core>,
}

/// What the blocking half works with.
struct Core {
    store: Store,
    seed: Arc<Seed>,
    spool: Spool,
    mailer: Option<Arc<Mailer>>,
    relay_configured: bool,
    connection_rule: crate::store::ConnectionRule,
    checker: Option<Arc<crate::connection::Checker>>,
    connection_expiry_warning: SignedDuration,
    code_ttl: SignedDuration,
    daemon: bool,
    code_key: CodeKey,
    smime_trust: Option<SmimeTrust>,
    alerter: Arc<Alerter>,
    sender: SenderSettings,
    working_hours: WorkingHours,
    print_confirm_within: SignedDuration,
    pdf_limits: crate::pdf::PdfLimits,
    state_dir: std::path::PathBuf,
    /// Domains whose mail servers are being checked now (one check per domain at a time).
    checking: Mutex<std::collections::HashSet<String>>,
    /// Registry changes are read-modify-write: one at a time.
    registry_lock: Mutex<()>,
    /// What the desk last reported of itself.
    desk: Mutex<Option<PortalStatus>>,
    /// What the portal last reported of itself.
    portal: Mutex<Option<PortalStatus>>,
}

/// Why the service could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The key that seals verification codes.
    #[error("the verification code key: {0}")]
    CodeKey(#[from] crate::fsutil::SecretError),
    /// The S/MIME trust store.
    #[error("[registry] smime_ca {path}: {problem}")]
    SmimeCa {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        problem: String,
    },
}

impl ServiceParts {
    /// The office hours of `[working_hours]`.
    pub fn working_hours(
        settings: &crate::config::Settings,
    ) -> Result<WorkingHours, crate::worktime::WorkTimeError> {
        let w = &settings.working_hours;
        WorkingHours::new(&w.time_zone, &w.start, &w.end)
    }

    /// The code key (made at first start) and the S/MIME trust store, from the settings.
    pub fn keys(
        settings: &crate::config::Settings,
    ) -> Result<(CodeKey, Option<SmimeTrust>), SetupError> {
        let code_key = CodeKey::load_or_create(&settings.store.dir)?;
        let path = &settings.registry.smime_ca;
        let trust = if path.as_os_str().is_empty() {
            None
        } else {
            let bad = |problem: String| SetupError::SmimeCa {
                path: path.clone(),
                problem,
            };
            let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            Some(SmimeTrust::from_pem(&pem).map_err(|e| bad(e.to_string()))?)
        };
        Ok((code_key, trust))
    }
}

impl Service {
    /// The service over these parts.
    pub fn new(parts: ServiceParts) -> Service {
        Service {
            core: Arc::new(Core {
                store: parts.store,
                seed: parts.seed,
                spool: parts.spool,
                mailer: parts.mailer,
                relay_configured: parts.relay_configured,
                connection_rule: parts.connection_rule,
                checker: parts.checker,
                connection_expiry_warning: SignedDuration::try_from(
                    parts.connection_expiry_warning,
                )
                .unwrap_or(SignedDuration::from_hours(21 * 24)),
                code_ttl: SignedDuration::try_from(parts.code_ttl)
                    .unwrap_or(SignedDuration::from_hours(168)),
                daemon: parts.daemon,
                code_key: parts.code_key,
                smime_trust: parts.smime_trust,
                alerter: parts.alerter,
                sender: parts.sender,
                working_hours: parts.working_hours,
                print_confirm_within: SignedDuration::try_from(parts.print_confirm_within)
                    .unwrap_or(SignedDuration::from_hours(8)),
                pdf_limits: parts.pdf_limits,
                state_dir: parts.state_dir,
                checking: Mutex::new(std::collections::HashSet::new()),
                registry_lock: Mutex::new(()),
                portal: Mutex::new(None),
                desk: Mutex::new(None),
            }),
        }
    }

    /// Answers one command from `principal`: checks that the principal may send it, then
    /// carries it out. The blocking part runs on the blocking pool; only sending a
    /// verification code waits for the network here.
    pub async fn call(
        &self,
        principal: Principal,
        command: Command,
    ) -> Result<Reply, ServiceError> {
        if let Command::MunicipalityVerify { code } = command {
            return self.verify(principal, code).await;
        }
        if let Command::MunicipalityCheck { code } = command {
            return self.check_connection(principal, code).await;
        }
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || {
            access::check(&core, &principal, &command)?;
            let reply = core.execute(&principal, command)?;
            core.after_change();
            Ok(reply)
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?
    }

    /// Sends a verification code: recorded first (blocking), then mailed (async), so a code
    /// that arrives is always one kurir knows.
    async fn verify(
        &self,
        principal: Principal,
        code: crate::job::Kommunkod,
    ) -> Result<Reply, ServiceError> {
        let core = self.core.clone();
        let mailer = core.mailer.clone().ok_or(ServiceError::NoRelay)?;
        let prepared = tokio::task::spawn_blocking(move || {
            access::check(&core, &principal, &Command::MunicipalityVerify { code })?;
            core.prepare_code(&principal, code)
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))??;
        let reply = mailer
            .send_verification(code, &prepared.registered, &prepared.secret)
            .await
            .map_err(|detail| {
                tracing::warn!(kommunkod = %code, error = %detail, "verification message not sent");
                ServiceError::SendFailed {
                    address: prepared.address.clone(),
                    detail,
                }
            })?;
        tracing::info!(kommunkod = %code, "verification message sent");
        Ok(Reply::CodeSent(CodeSent {
            kommunkod: code,
            address: prepared.address,
            expires: prepared.expires,
            reply,
        }))
    }
}

/// Revocation lists a web process may report: SITHS publishes a handful.
const MAX_REPORTED_CRLS: usize = 16;

impl Core {
    /// Keeps what the portal or the desk (`door`) reports of itself, and shows it in the
    /// metrics (both doors' revocation lists; when the portal last reported).
    fn web_report(&self, door: WebDoor, mut crls: Vec<CrlInfo>, issuers: Vec<String>) -> Reply {
        // Each door's lists under its own label: one web process cannot speak for the other's
        // lists (and so hide that they went stale); a bounded number of series per door.
        crls.truncate(MAX_REPORTED_CRLS);
        for crl in &crls {
            if let Some(next) = crl.next_update {
                metrics::gauge!(
                    crate::ops::names::PORTAL_CRL_NEXT_UPDATE,
                    "door" => door.section(),
                    "crl" => crl.file.clone()
                )
                .set(next as f64);
            }
        }
        if door == WebDoor::Portal {
            metrics::gauge!(crate::ops::names::PORTAL_REPORTED)
                .set(jiff::Timestamp::now().as_second() as f64);
        }
        let status = PortalStatus {
            at: jiff::Timestamp::now(),
            crls,
            issuers,
        };
        *self
            .web_status(door)
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(status.clone());
        Reply::PortalStatus(Some(status))
    }

    /// What the portal or the desk last reported of itself.
    fn web_status(&self, door: WebDoor) -> &Mutex<Option<PortalStatus>> {
        match door {
            WebDoor::Portal => &self.portal,
            WebDoor::Desk => &self.desk,
        }
    }

    /// The issuer a new grant for `door` is bound to when none is named: the one CA that door
    /// trusts (a municipality grant the portal's, a staff grant the desk's).
    pub(super) fn default_issuer(&self, door: WebDoor) -> Option<String> {
        let status = self
            .web_status(door)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match status.as_ref().map(|p| p.issuers.as_slice()) {
            Some([only]) => Some(only.clone()),
            _ => None,
        }
    }

    /// What a change by `principal` may do: an operator's takes effect at once; a person's
    /// waits for approval where the rules say so.
    fn context<'a>(&'a self, principal: &Principal, who: &'a str) -> ChangeContext<'a> {
        ChangeContext {
            by_agency: matches!(principal, Principal::Operator(_)),
            smime_trust: self.smime_trust.as_ref(),
            who,
        }
    }

    /// Carries out a command the principal may send (blocking).
    fn execute(&self, principal: &Principal, command: Command) -> Result<Reply, ServiceError> {
        match command {
            Command::Status { id } => self.status(id),
            Command::List { states, limit } => self.list(&states, limit),
            Command::Queue => self.queue(),
            Command::Retry { target, reason } => {
                self.check_target(&target)?;
                self.act(principal, reason, |ops, actor| ops.retry(&target, actor))
            }
            Command::Hold { target, reason } => {
                self.check_target(&target)?;
                self.act(principal, reason, |ops, actor| ops.hold(&target, actor))
            }
            Command::Release { target, reason } => {
                self.check_target(&target)?;
                self.act(principal, reason, |ops, actor| ops.release(&target, actor))
            }
            Command::Cancel { id, reason } => {
                self.act(principal, reason, |ops, actor| ops.cancel(&id, actor))
            }
            Command::Reroute { id, reason } => self.act(principal, reason, |ops, actor| {
                ops.reroute_to_post(&id, actor)
            }),
            Command::QuarantineList => self.quarantine_list(),
            Command::QuarantineShow { id } => self.quarantine_show(id),
            Command::QuarantineRelease { id, reason } => {
                self.act(principal, reason, |ops, actor| {
                    ops.quarantine_release(&id, actor)
                })
            }
            Command::QuarantineDelete { id, reason } => {
                self.act(principal, reason, |ops, actor| {
                    ops.quarantine_delete(&id, actor)
                })
            }
            Command::OpenAlerts => {
                let reply = self.open_alerts()?;
                if let (Principal::Staff(person), Reply::OpenAlerts(alerts)) = (principal, &reply) {
                    let mut shown: Vec<_> = alerts.iter().map(|a| a.job_id.clone()).collect();
                    shown.dedup();
                    self.store.audit_list_view(
                        &person.on_desk(),
                        "the list of decisions to phone about",
                        false,
                        &shown,
                    )?;
                }
                Ok(reply)
            }
            Command::PrintBatches => self.print_batches(),
            Command::PrintConfirm { batch, reason } => self.print_confirm(principal, batch, reason),
            Command::Acknowledge { id, reason } => {
                // A caseworker closes dispatch's alerts only; operations (and an operator at
                // the command line) close any.
                let only = match principal {
                    Principal::Staff(person) => match self.desk_grant(person)? {
                        Some(grant) if grant.role == StaffRole::Drift => None,
                        _ => Some(Team::Dispatch),
                    },
                    _ => None,
                };
                self.act(principal, reason, |ops, actor| {
                    ops.acknowledge(&id, actor, only)
                })
            }
            Command::StaffGrant {
                hsa_id,
                name,
                role,
                issuer,
            } => self.staff_grant(principal, hsa_id, name, role, issuer),
            Command::StaffRevoke { hsa_id } => self.staff_revoke(principal, hsa_id),
            Command::StaffList => Ok(Reply::Staff(self.store.all_staff()?)),
            Command::WhoAmI => match principal {
                Principal::Staff(person) => Ok(Reply::Me(self.desk_grant(person)?.map(|g| g.role))),
                _ => Ok(Reply::Me(None)),
            },
            Command::DeskDraft {
                to,
                case,
                copy_to,
                documents,
            } => self.desk_draft(person_of(principal)?, to, case, copy_to, documents),
            Command::DeskSend { draft } => self.desk_send(person_of(principal)?, draft),
            Command::DeskJobs {
                search,
                filter,
                limit,
            } => self.desk_jobs(person_of(principal)?, &search, filter, limit),
            Command::DeskJob { id, view } => self.desk_job(person_of(principal)?, id, view),
            Command::Backup { dest } => {
                if !dest.is_absolute() {
                    return Err(ServiceError::Io {
                        what: format!("backup to {}", dest.display()),
                        detail: "give an absolute path".into(),
                    });
                }
                let manifest =
                    crate::ops::backup::write(&self.store, &self.spool, &self.state_dir, &dest)
                        .map_err(|e| ServiceError::Io {
                            what: format!("backup to {}", dest.display()),
                            detail: e.to_string(),
                        })?;
                tracing::info!(dest = %dest.display(), jobs = manifest.jobs, "backup written");
                Ok(Reply::BackedUp(Box::new(manifest)))
            }
            Command::SubmissionLookup { digest } => {
                let first = match self.store.submission(&digest)? {
                    Some(id) => self.store.get(&id)?.map(|job| (id, job.state)),
                    None => None,
                };
                Ok(Reply::Submission(first))
            }
            Command::AuditVerify => Ok(Reply::Audit(self.store.verify_audit()?)),
            Command::AuditExport { since } => {
                Ok(Reply::AuditEntries(self.store.audit_since(since)?))
            }
            Command::MunicipalityList { secure_only } => self.municipality_list(secure_only),
            Command::MunicipalityShow { code } => self.municipality_show(code),
            Command::MunicipalitySet { code, changes } => self.set(principal, code, changes),
            Command::MunicipalityHistory { code } => self.history(code),
            Command::MunicipalityImport { csv, dry_run } => self.import(principal, &csv, dry_run),
            Command::MunicipalityExport => self.export(),
            Command::MunicipalityConfirm { code, secret } => self.confirm(principal, code, &secret),
            Command::MunicipalityGrant {
                code,
                hsa_id,
                name,
                issuer,
            } => self.grant(principal, code, hsa_id, name, issuer),
            Command::MunicipalityRevoke { code, hsa_id } => self.revoke(principal, code, hsa_id),
            Command::MyMunicipalities => self.mine(principal),
            Command::MunicipalityApprove { code, digest } => self.approve(principal, code, &digest),
            Command::MunicipalityRefuse { code, reason } => self.refuse(principal, code, &reason),
            Command::MunicipalityDomains { code, add, remove } => {
                self.domains(principal, code, &add, &remove)
            }
            Command::PortalReport { crls, issuers } => {
                let door = match principal {
                    Principal::Desk => WebDoor::Desk,
                    _ => WebDoor::Portal,
                };
                Ok(self.web_report(door, crls, issuers))
            }
            Command::PortalStatus => Ok(Reply::PortalStatus(
                self.portal
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
            )),
            Command::DeskStatus => Ok(Reply::PortalStatus(
                self.desk.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            )),
            // Answered by `Service::verify` and `Service::check_connection`: the network.
            Command::MunicipalityVerify { .. } | Command::MunicipalityCheck { .. } => {
                Err(ServiceError::Internal(
                    "a verification is not carried out on the blocking path".into(),
                ))
            }
        }
    }

    /// After a command: the receipts it made owed are written — by the daemon's receipt
    /// writer (the store wakes it), or, in a command that holds the store itself, right now.
    fn after_change(&self) {
        if self.daemon {
            return;
        }
        if let Err(e) = crate::receipt::write_owed(&self.spool, &self.store, &self.seed) {
            tracing::error!(error = %e, "receipts could not be written; the daemon writes them at its start");
        }
    }
}
