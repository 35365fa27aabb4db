//! Alerts: when a document cannot be delivered as it should, a person must know at once what
//! to do. An alert is a JSON file in `spool/alerts/`, a WARN log line with an `alert` field,
//! and — where `[alerts] email` is set — a signed e-mail to operations.
//!
//! An alert names the job id, the municipality, its telephone number and contact persons, what
//! failed and what kurir will do next. It carries no personal data about the child.

use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::fsutil;
use crate::job::{JobId, Kommunkod};
use crate::registry::{Contact, Seed};
use crate::spool::Spool;
use crate::store::Store;

pub use crate::store::state::{AlertKind, AlertMark};

/// One alert, as written to `spool/alerts/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alert {
    /// What it is about.
    pub kind: AlertKind,
    /// The mark in the job's record that says it was raised (its file is named after it);
    /// none for an alert about a registration.
    pub mark: Option<AlertMark>,
    /// When it was raised.
    pub at: Timestamp,
    /// The job, for an alert about a job.
    pub job_id: Option<JobId>,
    /// The municipality concerned, if known.
    pub kommunkod: Option<Kommunkod>,
    /// Its name.
    pub municipality: Option<String>,
    /// Its registered telephone number.
    pub phone: Option<String>,
    /// Its contact persons.
    pub contacts: Vec<Contact>,
    /// What failed.
    pub what_failed: String,
    /// What kurir does next.
    pub next_step: String,
    /// What a person should do.
    pub action: String,
}

/// Raises alerts. Cheap to share; e-mail goes through a background task.
pub struct Alerter {
    spool: Spool,
    store: Store,
    seed: Arc<Seed>,
    email: Option<mpsc::Sender<Alert>>,
}

impl Alerter {
    /// An alerter; `email` is the queue of the task that e-mails operations, if configured.
    pub fn new(
        spool: Spool,
        store: Store,
        seed: Arc<Seed>,
        email: Option<mpsc::Sender<Alert>>,
    ) -> Self {
        Alerter {
            spool,
            store,
            seed,
            email,
        }
    }

    /// Builds the alert `mark` of job `job_id` names, with the contact details of the
    /// municipality `code` (the mark's own, else the job's).
    pub fn compose(
        &self,
        mark: AlertMark,
        job_id: &JobId,
        code: Option<Kommunkod>,
        what_failed: String,
        next_step: String,
    ) -> Alert {
        let kind = mark.kind;
        let code = mark.kommunkod.or(code);
        let registered = code
            .and_then(|c| self.store.registered(c).ok())
            .unwrap_or_default();
        let municipality = code.and_then(|c| self.seed.get(c)).map(|m| m.name.clone());
        let action = action_of(kind);
        Alert {
            kind,
            mark: Some(mark),
            at: Timestamp::now(),
            job_id: Some(job_id.clone()),
            kommunkod: code,
            municipality,
            phone: registered.phone,
            contacts: registered.contacts,
            what_failed,
            next_step,
            action: action.to_string(),
        }
    }

    /// The alert file's name: one per job, kind and municipality, so that an alert raised
    /// again (after a crash between recording its mark and writing it) is the same file.
    pub fn file_name(job_id: &JobId, mark: AlertMark) -> String {
        match mark.kommunkod {
            Some(code) => format!("{job_id}-{}-{code}.json", mark.kind.as_str()),
            None => format!("{job_id}-{}.json", mark.kind.as_str()),
        }
    }

    /// An alert about a municipality's registration (a change of where decisions go,
    /// something waiting for approval, a certificate about to expire).
    pub fn about_registration(
        &self,
        kind: AlertKind,
        code: Kommunkod,
        what_failed: String,
        next_step: String,
    ) -> Alert {
        let registered = self.store.registered(code).unwrap_or_default();
        Alert {
            kind,
            mark: None,
            at: Timestamp::now(),
            job_id: None,
            kommunkod: Some(code),
            municipality: self.seed.get(code).map(|m| m.name.clone()),
            phone: registered.phone,
            contacts: registered.contacts,
            what_failed,
            next_step,
            action: action_of(kind).to_string(),
        }
    }

    /// Writes the alert file, logs it, and queues the e-mail — a job's alert once: an alert
    /// whose file is there already was raised before. Never fails the caller: an alert that
    /// cannot be written is logged at ERROR instead.
    pub fn raise(&self, alert: Alert) {
        let name = match (&alert.job_id, alert.mark) {
            (Some(job), Some(mark)) => Self::file_name(job, mark),
            _ => format!(
                "registry-{}-{}-{}.json",
                alert
                    .kommunkod
                    .map(|k| k.to_string())
                    .unwrap_or_else(|| "-".into()),
                alert.kind.as_str(),
                alert.at.strftime("%Y%m%dT%H%M%S%.3fZ")
            ),
        };
        let path = self.spool.alerts().join(name);
        let job = alert
            .job_id
            .as_ref()
            .map(|j| j.to_string())
            .unwrap_or_default();
        if path.exists() {
            tracing::debug!(job_id = %job, alert = alert.kind.as_str(), "alert raised before; not again");
            return;
        }
        metrics::counter!(crate::ops::names::ALERTS, "kind" => alert.kind.as_str()).increment(1);
        tracing::warn!(
            alert = alert.kind.as_str(),
            job_id = %job,
            kommunkod = alert.kommunkod.map(|k| k.to_string()).unwrap_or_default(),
            what_failed = %alert.what_failed,
            next_step = %alert.next_step,
            "ALERT"
        );
        let written = serde_json::to_vec_pretty(&alert)
            .map_err(std::io::Error::other)
            .and_then(|mut bytes| {
                bytes.push(b'\n');
                fsutil::write_atomic(&path, &bytes)
            });
        if let Err(e) = written {
            tracing::error!(job_id = %job, error = %e, "alert file could not be written");
        }
        if let Some(tx) = &self.email {
            if tx.try_send(alert).is_err() {
                tracing::error!("alert e-mail queue is full or closed; the alert file stands");
            }
        }
    }
}

impl Alerter {
    /// After a start: raises every alert whose mark a job carries but whose file is missing —
    /// a crash came between recording the mark and writing the alert. With
    /// [`Alerter::raise`] writing each alert once, every alert is raised exactly once.
    pub fn recover(&self) -> Result<usize, crate::store::StoreError> {
        let mut raised = 0;
        for job in self.store.pending()? {
            for mark in &job.alerts {
                let name = Self::file_name(&job.id, *mark);
                if self.spool.alerts().join(&name).exists() {
                    continue;
                }
                let alert = self.compose(
                    *mark,
                    &job.id,
                    job.to,
                    "raised after a restart: the daemon stopped between recording this alert \
                     and writing it; `kurir status <job>` shows what happened"
                        .into(),
                    format!("the job is {} now", job.state),
                );
                self.raise(alert);
                raised += 1;
            }
        }
        Ok(raised)
    }
}

fn action_of(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::DeferredTooLong => {
            "Call the municipality to check that its mail server accepts mail from the agency; \
             the job keeps retrying. `kurir status <job>` shows every attempt."
        }
        AlertKind::FellBack => {
            "A letter is in the print queue: make sure today's batch is printed and posted, and \
             call the municipality so it expects the letter."
        }
        AlertKind::Failed => {
            "Nothing was delivered. Deliver the documents another way now, and call the \
             municipality."
        }
        AlertKind::Quarantined => {
            "Read reason.txt in the quarantined folder, correct the job and submit it again."
        }
        AlertKind::Unconfirmed => {
            "The relay accepted the message but no delivery report has come back from the \
             municipality's server. Call the municipality and ask whether the decision \
             arrived; `kurir status <job>` shows what was sent and where."
        }
        AlertKind::Unread => {
            "Phone the municipality now (number and contacts below): the decision has not \
             been opened, and the child's new municipality must act on it today."
        }
        AlertKind::ConflictingReport => {
            "A delivery report or read notification contradicted earlier ones (a failure \
             after delivery, say): someone may be sending forged reports. `kurir status \
             <job>` shows them under conflicts; call the municipality to confirm the \
             decision arrived."
        }
        AlertKind::RegistrationChanged => {
            "Where a municipality's decisions go was changed: the municipality's proven address \
         and contact persons were told. If the change was not expected, phone the \
         municipality and check it (`kurir municipality history <kommunkod>`)."
        }
        AlertKind::ApprovalWaiting => {
            "A municipality proved an address outside its mail domains, or changed its postal \
         address on the portal: nothing of it is used until an operator approves it. Check \
         with the municipality, then `kurir municipality approve <kommunkod>` (or `refuse`)."
        }
        AlertKind::CertificateExpiring => {
            "A municipality's S/MIME certificate expires soon: the municipality was told. \
         Register its new certificate (`kurir municipality set <kommunkod> --smime-cert \
         FILE`) before it expires, or decisions go signed but unencrypted."
        }
    }
}

/// The text of an alert e-mail to operations.
pub fn email_text(alert: &Alert) -> (String, String) {
    let job = alert
        .job_id
        .as_ref()
        .map(|j| j.to_string())
        .unwrap_or_else(|| "-".into());
    let subject = format!("kurir larm: {} – ref {job}", alert.kind.as_str());
    let mut body = format!(
        "Larm från kurir ({kind}) för referens {job}.\r\n\r\nVad som hänt: {what}\r\n\
         Nästa steg: {next}\r\nÅtgärd: {action}\r\n",
        kind = alert.kind.as_str(),
        what = alert.what_failed,
        next = alert.next_step,
        action = alert.action,
    );
    if let (Some(code), Some(name)) = (alert.kommunkod, &alert.municipality) {
        body.push_str(&format!("\r\nKommun: {name} ({code})\r\n"));
    }
    if let Some(phone) = &alert.phone {
        body.push_str(&format!("Telefon: {phone}\r\n"));
    }
    for c in &alert.contacts {
        body.push_str(&format!("Kontakt: {c}\r\n"));
    }
    (subject, body)
}
