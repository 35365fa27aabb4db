//! The service: the one way anything in kurir is asked or changed from outside the flow.
//!
//! Every surface is a thin adapter over it: the command line (through the control socket, or
//! in-process when no daemon runs), the portal (its own process, through its own socket) and
//! the desk. A request is a typed call ([`call`]) from a [`Principal`]; the answer is that
//! call's own reply type ([`Call::Reply`]) or a [`ServiceError`] that names what went wrong,
//! which each surface words itself.
//! Who may send what is decided here, once (`access`): a person on the portal may only touch
//! the municipalities the agency granted them, and nothing an operator alone may do.
//!
//! Store work is blocking (sled, flushes, files): it crosses into `spawn_blocking` here, at one
//! boundary ([`Service::call`]), so that no async worker ever waits for the disk.
//!
//! Files: `call`, `reply`, `error` (the shared vocabulary), `access` (who may send what),
//! `registry` (registrations, codes, grants), `jobs` (status, lists, operator actions, audit),
//! `protocol` (the versioned wire format of the control sockets, their server and clients).

mod access;
mod announce;
pub mod call;
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

use crate::config::{SenderSettings, WebDoor};
use crate::deliver::mail::Mailer;
use crate::ops::alert::Alerter;
use crate::registry::{ChangeContext, CodeKey, Person, Seed, SmimeTrust, StaffRole};
use crate::spool::Spool;
use crate::store::kinds::Team;
use crate::store::Store;
use crate::worktime::WorkingHours;

pub use call::{Call, Command};
pub use connection::address_to_check;
pub use error::{ImportLineError, ServiceError, NOT_TAKEN_IN};
pub use kurir_protocol::wire::Principal;
pub use reply::*;

/// A call's reply as the wire carries it. Naming the call (`reply::<call::Status>(…)`) makes
/// the compiler hold each handler to that call's reply type.
fn reply<C: Call>(
    answer: Result<C::Reply, ServiceError>,
) -> Result<serde_json::Value, ServiceError> {
    serde_json::to_value(answer?)
        .map_err(|e| ServiceError::Internal(format!("encoding a reply: {e}")))
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
    /// Working time after the relay accepted a message within which it must be opened
    /// (`[proof] read_within`): the desk shows when the alert comes if it is not.
    pub read_within: Duration,
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
    read_within: SignedDuration,
    pdf_limits: crate::pdf::PdfLimits,
    state_dir: std::path::PathBuf,
    /// Domains whose mail servers are being checked now (one check per domain at a time).
    checking: Mutex<std::collections::HashSet<String>>,
    /// Registry changes are read-modify-write: one at a time.
    registry_lock: Mutex<()>,
    /// What the desk last reported of itself.
    desk: Mutex<Option<WebStatus>>,
    /// What the portal last reported of itself.
    portal: Mutex<Option<WebStatus>>,
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
        let code_key = CodeKey::from_bytes(&crate::fsutil::secret_key(
            &settings.store.dir.join(crate::registry::CODE_KEY_FILE),
            32,
        )?);
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
                read_within: SignedDuration::try_from(parts.read_within)
                    .unwrap_or(SignedDuration::MAX),
                pdf_limits: parts.pdf_limits,
                state_dir: parts.state_dir,
                checking: Mutex::new(std::collections::HashSet::new()),
                registry_lock: Mutex::new(()),
                portal: Mutex::new(None),
                desk: Mutex::new(None),
            }),
        }
    }

    /// Answers one request from `principal` (as it came off the wire): checks that the
    /// principal may send it, then carries it out; the call's reply as JSON. The blocking part
    /// runs on the blocking pool; only sending a verification code and checking a mail server
    /// wait for the network here.
    pub async fn call(
        &self,
        principal: Principal,
        command: Command,
    ) -> Result<serde_json::Value, ServiceError> {
        let command = match command {
            Command::MunicipalityVerify(c) => {
                return reply::<call::MunicipalityVerify>(self.verify(principal, c.code).await)
            }
            Command::MunicipalityCheck(c) => {
                return reply::<call::MunicipalityCheck>(
                    self.check_connection(principal, c.code).await,
                )
            }
            other => other,
        };
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
    ) -> Result<CodeSent, ServiceError> {
        let core = self.core.clone();
        let mailer = core.mailer.clone().ok_or(ServiceError::NoRelay)?;
        let prepared = tokio::task::spawn_blocking(move || {
            access::check(&core, &principal, &call::MunicipalityVerify { code }.into())?;
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
        Ok(CodeSent {
            kommunkod: code,
            address: prepared.address,
            expires: prepared.expires,
            reply,
        })
    }
}

/// Revocation lists a web process may report: SITHS publishes a handful.
const MAX_REPORTED_CRLS: usize = 16;

impl Core {
    /// Keeps what the portal or the desk (`door`) reports of itself, and shows it in the
    /// metrics (both doors' revocation lists; when the portal last reported).
    fn web_report(
        &self,
        door: WebDoor,
        mut crls: Vec<CrlInfo>,
        issuers: Vec<String>,
    ) -> Option<WebStatus> {
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
        let status = WebStatus {
            at: jiff::Timestamp::now(),
            crls,
            issuers,
        };
        *self
            .web_status(door)
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(status.clone());
        Some(status)
    }

    /// What the portal or the desk last reported of itself.
    fn web_status(&self, door: WebDoor) -> &Mutex<Option<WebStatus>> {
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

    /// Carries out a command the principal may send (blocking): each call's handler returns
    /// that call's reply type, checked here by the compiler ([`reply`]).
    fn execute(
        &self,
        principal: &Principal,
        command: Command,
    ) -> Result<serde_json::Value, ServiceError> {
        use call as c;
        match command {
            Command::Status(q) => reply::<c::Status>(self.status(q.id)),
            Command::List(q) => reply::<c::List>(self.list(&q.states, q.limit)),
            Command::Queue(_) => reply::<c::Queue>(self.queue()),
            Command::Retry(q) => reply::<c::Retry>(self.check_target(&q.target).and_then(|()| {
                self.act(principal, q.reason, |ops, actor| {
                    ops.retry(&q.target, actor)
                })
            })),
            Command::Hold(q) => reply::<c::Hold>(self.check_target(&q.target).and_then(|()| {
                self.act(principal, q.reason, |ops, actor| ops.hold(&q.target, actor))
            })),
            Command::Release(q) => {
                reply::<c::Release>(self.check_target(&q.target).and_then(|()| {
                    self.act(principal, q.reason, |ops, actor| {
                        ops.release(&q.target, actor)
                    })
                }))
            }
            Command::Cancel(q) => {
                reply::<c::Cancel>(
                    self.act(principal, q.reason, |ops, actor| ops.cancel(&q.id, actor)),
                )
            }
            Command::Reroute(q) => {
                reply::<c::Reroute>(self.act(principal, q.reason, |ops, actor| {
                    ops.reroute_to_post(&q.id, actor)
                }))
            }
            Command::QuarantineList(_) => reply::<c::QuarantineList>(self.quarantine_list()),
            Command::QuarantineShow(q) => reply::<c::QuarantineShow>(self.quarantine_show(q.id)),
            Command::QuarantineRelease(q) => {
                reply::<c::QuarantineRelease>(self.act(principal, q.reason, |ops, actor| {
                    ops.quarantine_release(&q.id, actor)
                }))
            }
            Command::QuarantineDelete(q) => {
                reply::<c::QuarantineDelete>(self.act(principal, q.reason, |ops, actor| {
                    ops.quarantine_delete(&q.id, actor)
                }))
            }
            Command::OpenAlerts(_) => reply::<c::OpenAlerts>(self.open_alerts_for(principal)),
            Command::PrintBatches(_) => reply::<c::PrintBatches>(self.print_batches()),
            Command::PrintConfirm(q) => {
                reply::<c::PrintConfirm>(self.print_confirm(principal, q.batch, q.reason))
            }
            Command::Acknowledge(q) => reply::<c::Acknowledge>(self.acknowledge(principal, q)),
            Command::CallCount(_) => reply::<c::CallCount>(self.call_count()),
            Command::CallNoAnswer(q) => {
                reply::<c::CallNoAnswer>(self.act(principal, q.reason, |ops, actor| {
                    ops.called_no_answer(&q.id, actor, q.alert)
                }))
            }
            Command::StaffGrant(q) => reply::<c::StaffGrant>(
                self.staff_grant(principal, q.hsa_id, q.name, q.role, q.issuer),
            ),
            Command::StaffRevoke(q) => {
                reply::<c::StaffRevoke>(self.staff_revoke(principal, q.hsa_id))
            }
            Command::StaffList(_) => reply::<c::StaffList>(Ok(self.store.all_staff()?)),
            Command::WhoAmI(_) => reply::<c::WhoAmI>(match principal {
                Principal::Staff(person) => self.desk_grant(person).map(|g| g.map(|g| g.role)),
                _ => Ok(None),
            }),
            Command::DeskDraft(q) => {
                reply::<c::DeskDraft>(self.desk_draft(person_of(principal)?, q))
            }
            Command::DeskDraftDocument(q) => reply::<c::DeskDraftDocument>(
                self.desk_draft_document(person_of(principal)?, q.draft, q.kind),
            ),
            Command::DeskSend(q) => {
                reply::<c::DeskSend>(self.desk_send(person_of(principal)?, q.draft))
            }
            Command::DeskJobs(q) => reply::<c::DeskJobs>(self.desk_jobs(
                person_of(principal)?,
                &q.search,
                q.filter,
                q.limit,
            )),
            Command::DeskJob(q) => {
                reply::<c::DeskJob>(self.desk_job(person_of(principal)?, q.id, q.view))
            }
            Command::Backup(q) => reply::<c::Backup>(self.backup(&q.dest)),
            Command::SubmissionLookup(q) => {
                reply::<c::SubmissionLookup>(self.submission_lookup(&q.digest))
            }
            Command::AuditVerify(_) => reply::<c::AuditVerify>(Ok(self.store.verify_audit()?)),
            Command::AuditExport(q) => {
                reply::<c::AuditExport>(Ok(self.store.audit_since(q.since)?))
            }
            Command::MunicipalityList(q) => {
                reply::<c::MunicipalityList>(self.municipality_list(q.secure_only))
            }
            Command::MunicipalityShow(q) => {
                reply::<c::MunicipalityShow>(self.municipality_show(q.code))
            }
            Command::MunicipalitySet(q) => {
                reply::<c::MunicipalitySet>(self.set(principal, q.code, q.changes))
            }
            Command::MunicipalityHistory(q) => {
                reply::<c::MunicipalityHistory>(self.history(q.code))
            }
            Command::MunicipalityImport(q) => {
                reply::<c::MunicipalityImport>(self.import(principal, &q.csv, q.dry_run))
            }
            Command::MunicipalityExport(_) => reply::<c::MunicipalityExport>(self.export()),
            Command::MunicipalityConfirm(q) => {
                reply::<c::MunicipalityConfirm>(self.confirm(principal, q.code, &q.secret))
            }
            Command::MunicipalityGrant(q) => reply::<c::MunicipalityGrant>(
                self.grant(principal, q.code, q.hsa_id, q.name, q.issuer),
            ),
            Command::MunicipalityRevoke(q) => {
                reply::<c::MunicipalityRevoke>(self.revoke(principal, q.code, q.hsa_id))
            }
            Command::MyMunicipalities(_) => reply::<c::MyMunicipalities>(self.mine(principal)),
            Command::MunicipalityApprove(q) => {
                reply::<c::MunicipalityApprove>(self.approve(principal, q.code, &q.digest))
            }
            Command::MunicipalityRefuse(q) => {
                reply::<c::MunicipalityRefuse>(self.refuse(principal, q.code, &q.reason))
            }
            Command::MunicipalityDomains(q) => {
                reply::<c::MunicipalityDomains>(self.domains(principal, q.code, &q.add, &q.remove))
            }
            Command::PortalReport(q) => {
                // The door decides whose report it is (a principal comes only through its own).
                let door = match principal {
                    Principal::Desk => WebDoor::Desk,
                    _ => WebDoor::Portal,
                };
                reply::<c::PortalReport>(Ok(self.web_report(door, q.crls, q.issuers)))
            }
            Command::PortalStatus(_) => reply::<c::PortalStatus>(Ok(self
                .portal
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone())),
            Command::DeskStatus(_) => reply::<c::DeskStatus>(Ok(self
                .desk
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone())),
            // Answered by `Service::verify` and `Service::check_connection`: the network.
            Command::MunicipalityVerify(_) | Command::MunicipalityCheck(_) => {
                Err(ServiceError::Internal(
                    "a verification is not carried out on the blocking path".into(),
                ))
            }
        }
    }

    /// The open alerts; a member of staff's reading of them is in the audit chain.
    fn open_alerts_for(&self, principal: &Principal) -> Result<Vec<OpenAlert>, ServiceError> {
        let mut alerts = self.open_alerts()?;
        if let Principal::Staff(person) = principal {
            // The caller names the case when they phone; only staff see it.
            for alert in alerts.iter_mut().filter(|a| a.kind.is_a_call()) {
                alert.case = self.case_of(&alert.job_id);
            }
            let mut shown: Vec<_> = alerts.iter().map(|a| a.job_id.clone()).collect();
            shown.dedup();
            self.store.audit_list_view(
                &person.on_desk(),
                "the list of decisions to phone about",
                false,
                &shown,
            )?;
        }
        Ok(alerts)
    }

    /// Closes a job's open alerts: a caseworker dispatch's only; operations (and an operator
    /// at the command line) any.
    fn acknowledge(
        &self,
        principal: &Principal,
        q: call::Acknowledge,
    ) -> Result<crate::queue::operator::ActionDone, ServiceError> {
        let only = match principal {
            Principal::Staff(person) => match self.desk_grant(person)? {
                Some(grant) if grant.role == StaffRole::Drift => None,
                _ => Some(Team::Dispatch),
            },
            _ => None,
        };
        self.act(principal, q.reason, |ops, actor| {
            ops.acknowledge(&q.id, actor, only, q.alert)
        })
    }

    /// Writes a backup of the store as it stands into `dest` (absolute: the daemon writes it).
    fn backup(
        &self,
        dest: &std::path::Path,
    ) -> Result<Box<crate::ops::backup::Manifest>, ServiceError> {
        if !dest.is_absolute() {
            return Err(ServiceError::Io {
                what: format!("backup to {}", dest.display()),
                detail: "give an absolute path".into(),
            });
        }
        let manifest = crate::ops::backup::write(&self.store, &self.spool, &self.state_dir, dest)
            .map_err(|e| ServiceError::Io {
            what: format!("backup to {}", dest.display()),
            detail: e.to_string(),
        })?;
        tracing::info!(dest = %dest.display(), jobs = manifest.jobs, "backup written");
        Ok(Box::new(manifest))
    }

    /// The job that first had a submission key (by its digest), and its state.
    fn submission_lookup(
        &self,
        digest: &str,
    ) -> Result<Option<(crate::job::JobId, crate::store::state::JobState)>, ServiceError> {
        Ok(match self.store.submission(digest)? {
            Some(id) => self.store.get(&id)?.map(|job| (id, job.state)),
            None => None,
        })
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
