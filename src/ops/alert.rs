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
use crate::job::join_kommunkoder as join;
use crate::job::{JobId, Kommunkod};
use crate::registry::{Contact, Seed};
use crate::spool::Spool;
use crate::store::event::EventKind;
use crate::store::kinds::ReportKind;
use crate::store::state::{Event, JobRecord};
use crate::store::{Store, StoreError};

pub use crate::store::state::{AlertKind, AlertMark, Team};

fn ops_team() -> Team {
    Team::Ops
}

/// Where the runbook is installed; alert e-mails point into it.
pub const RUNBOOK: &str = "/usr/share/doc/kurir/runbook.md";

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
    /// The print batch, for an alert about a batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// Who acts on it: `dispatch` (phones the municipality) or `ops`.
    #[serde(default = "ops_team")]
    pub team: Team,
    /// The runbook section that says what to do (the alerting rule's name).
    #[serde(default)]
    pub runbook: String,
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
            batch: None,
            team: kind.team(),
            runbook: kind.rule().to_string(),
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
            batch: None,
            team: kind.team(),
            runbook: kind.rule().to_string(),
            kommunkod: Some(code),
            municipality: self.seed.get(code).map(|m| m.name.clone()),
            phone: registered.phone,
            contacts: registered.contacts,
            what_failed,
            next_step,
            action: action_of(kind).to_string(),
        }
    }

    /// An alert about a print batch (the print shop has not confirmed it).
    pub fn about_batch(
        &self,
        kind: AlertKind,
        batch: &str,
        what_failed: String,
        next_step: String,
    ) -> Alert {
        Alert {
            kind,
            mark: None,
            at: Timestamp::now(),
            job_id: None,
            batch: Some(batch.to_string()),
            team: kind.team(),
            runbook: kind.rule().to_string(),
            kommunkod: None,
            municipality: None,
            phone: None,
            contacts: Vec::new(),
            what_failed,
            next_step,
            action: action_of(kind).to_string(),
        }
    }

    /// The file an alert about `batch` is written to: one per batch and kind, so it is
    /// raised once.
    pub fn batch_file_name(batch: &str, kind: AlertKind) -> String {
        format!("print-{batch}-{}.json", kind.as_str())
    }

    /// Writes the alert file, logs it, and queues the e-mail — a job's alert once: an alert
    /// whose file is there already was raised before. Never fails the caller: an alert that
    /// cannot be written is logged at ERROR instead. Whether the alert's file stands.
    pub fn raise(&self, alert: Alert) -> bool {
        self.write_and_tell(alert, true)
    }

    /// Writes the alert file and, once it is written (or, with `tell_anyway`, even when it
    /// cannot be), logs the alert, counts it and queues its e-mail. Whether the file stands.
    fn write_and_tell(&self, alert: Alert, tell_anyway: bool) -> bool {
        let name = match (&alert.job_id, alert.mark, &alert.batch) {
            (Some(job), Some(mark), _) => Self::file_name(job, mark),
            (_, _, Some(batch)) => Self::batch_file_name(batch, alert.kind),
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
            .or_else(|| alert.batch.clone())
            .unwrap_or_default();
        if path.exists() {
            tracing::debug!(job_id = %job, alert = alert.kind.as_str(), "alert raised before; not again");
            return true;
        }
        let written = serde_json::to_vec_pretty(&alert)
            .map_err(std::io::Error::other)
            .and_then(|mut bytes| {
                bytes.push(b'\n');
                fsutil::write_atomic(&path, &bytes)
            });
        if let Err(e) = &written {
            tracing::error!(job_id = %job, alert = alert.kind.as_str(), error = %e, "alert file could not be written");
            if !tell_anyway {
                return false;
            }
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
        if let Some(tx) = &self.email {
            if tx.try_send(alert).is_err() {
                tracing::error!("alert e-mail queue is full or closed; the alert file stands");
            }
        }
        written.is_ok()
    }
}

/// Most owed alerts raised in one round.
const ROUND: usize = 256;

impl Alerter {
    /// Raises every alert a job owes ([`JobRecord::owed_alerts`], the store's `alerts_owed`
    /// index) in the words of the step that marked it, and notes it raised: the one writer of
    /// jobs' alerts. Whoever records a step only marks the alert, in the same transaction, so
    /// a crash between the two cannot lose it; an alert whose file is there already (a crash
    /// after writing it, before noting it) is not raised twice. Returns how many it raised.
    pub fn raise_owed(&self) -> Result<usize, StoreError> {
        // Journaled steps reach sled, and so the index, with a flush.
        self.store.flush_journaled()?;
        let owed = self.store.owed_alerts(ROUND)?;
        let mut done = Vec::with_capacity(owed.len());
        for (id, mark) in owed {
            let Some(job) = self.store.get(&id)? else {
                done.push((id, mark));
                continue;
            };
            let events = self.store.events(&id)?;
            let words = words(mark, &job, &events);
            let alert = self.compose(
                mark,
                &id,
                words.kommunkod.or(job.to),
                words.what_failed,
                words.next_step,
            );
            // Told once it stands: while the spool cannot be written (a full disk) the alert
            // stays owed and is raised, and e-mailed, once it can — not every round meanwhile.
            if !self.write_and_tell(alert, false) {
                break;
            }
            done.push((id, mark));
        }
        self.store.mark_alerts_raised(&done)?;
        Ok(done.len())
    }
}

/// Raises owed alerts whenever a step marks one, until shutdown (after one last round).
pub async fn run(alerter: Arc<Alerter>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let wanted = alerter.store.alerts_wanted();
    loop {
        let stop = *shutdown.borrow();
        let writer = alerter.clone();
        let more = match tokio::task::spawn_blocking(move || writer.raise_owed()).await {
            Ok(Ok(raised)) => raised == ROUND,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "owed alerts could not be raised; will try again");
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "the alert writer failed");
                false
            }
        };
        if stop {
            return;
        }
        if more {
            continue;
        }
        tokio::select! {
            _ = wanted.notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// An alert's own words: what failed and what kurir does next, and the municipality it is
/// about when the mark names none.
struct Words {
    kommunkod: Option<Kommunkod>,
    what_failed: String,
    next_step: String,
}

/// Words `mark`'s alert from the latest step of `events` that marked it.
fn words(mark: AlertMark, job: &JobRecord, events: &[Event]) -> Words {
    let code = mark.kommunkod;
    let about = |c: &Kommunkod| Some(*c) == code;
    let said = |what_failed: String, next_step: &str| Words {
        kommunkod: None,
        what_failed,
        next_step: next_step.to_string(),
    };
    const LETTER: &str = "a letter is made for the postal print queue";
    for what in events.iter().rev().filter_map(|e| e.what.as_ref()) {
        let found = match (mark.kind, what) {
            (AlertKind::FellBack, EventKind::FellBack { why, to }) if to.iter().any(about) => {
                Some(said(
                    format!(
                        "e-mail to kommun {} did not succeed: {why}",
                        code.map(|c| c.to_string()).unwrap_or_default()
                    ),
                    LETTER,
                ))
            }
            (AlertKind::FellBack, EventKind::Rejected { kommunkod, .. }) if about(kommunkod) => {
                Some(said(what.to_string(), LETTER))
            }
            (
                AlertKind::FellBack,
                EventKind::Reports {
                    kommunkod,
                    taken,
                    fell_back: true,
                    ..
                },
            ) if about(kommunkod) => {
                let failure = taken.iter().find(|r| r.kind == ReportKind::Failed);
                Some(said(
                    format!(
                        "the municipality's mail server refused the message after the relay had \
                         accepted it ({} {})",
                        failure.map(|f| f.status.as_str()).unwrap_or(""),
                        failure.and_then(|f| f.diagnostic.as_deref()).unwrap_or("")
                    ),
                    "a letter is made for the postal print queue now",
                ))
            }
            (AlertKind::Failed, EventKind::Expired { waiting }) => Some(said(
                format!(
                    "the documents reached no route before the expiry deadline (still waiting: {})",
                    join(waiting)
                ),
                "kurir has stopped trying (state failed)",
            )),
            (
                AlertKind::DeferredTooLong,
                EventKind::Deferred {
                    waiting,
                    next,
                    fallback_at,
                },
            ) => {
                let last = job
                    .recipients
                    .iter()
                    .filter_map(|r| r.email.as_ref())
                    .filter_map(|e| e.attempts.last())
                    .map(|a| a.reply.clone())
                    .next_back()
                    .unwrap_or_else(|| "not tried yet".into());
                let letters = match fallback_at {
                    Some(at) => format!("letters instead from {at}"),
                    None => "letters instead at the fallback deadline".into(),
                };
                Some(Words {
                    kommunkod: waiting.first().copied(),
                    what_failed: format!("e-mail is still not delivered; last attempt: {last}"),
                    next_step: format!(
                        "next attempt at {next}; {letters} if e-mail has not succeeded"
                    ),
                })
            }
            (AlertKind::Quarantined, EventKind::Quarantined { code, summary }) => Some(said(
                format!("bad input ({code}): {summary}"),
                &format!(
                    "nothing is delivered; the job is kept in spool/quarantine/{}",
                    job.quarantine
                        .as_ref()
                        .map(|q| q.dir.as_str())
                        .unwrap_or("")
                ),
            )),
            (
                AlertKind::ConflictingReport,
                EventKind::Reports {
                    kommunkod,
                    conflicts,
                    ..
                },
            ) if about(kommunkod) && !conflicts.is_empty() => {
                let kinds: Vec<&str> = conflicts.iter().map(|r| r.as_str()).collect();
                Some(said(
                    format!(
                        "a report about the message to kommun {kommunkod} contradicts what \
                         earlier reports proved ({}); kurir changed nothing",
                        kinds.join(", ")
                    ),
                    "kurir keeps what the earlier reports proved; the report is kept in the job",
                ))
            }
            (
                AlertKind::ReportNamesAnotherAddress,
                EventKind::Reports {
                    kommunkod,
                    elsewhere,
                    ..
                },
            ) if about(kommunkod) && !elsewhere.is_empty() => {
                let kinds: Vec<&str> = elsewhere.iter().map(|r| r.as_str()).collect();
                Some(said(
                    format!(
                        "a delivery report about the decision to kommun {kommunkod} names \
                         another mailbox than the one it was sent to ({})",
                        kinds.join(", ")
                    ),
                    "the report is kept in the job; check with the municipality who has the \
                     decision",
                ))
            }
            (
                AlertKind::Unconfirmed,
                EventKind::NotConfirmedInTime {
                    kommunkod,
                    within_secs,
                },
            ) if about(kommunkod) => Some(said(
                format!(
                    "no delivery report confirms the message to kommun {kommunkod} within \
                         {} of working time",
                    working_time(*within_secs)
                ),
                STILL_WAITING,
            )),
            (
                AlertKind::Unread,
                EventKind::NotReadInTime {
                    kommunkod,
                    within_secs,
                },
            ) if about(kommunkod) => Some(said(
                format!(
                    "no read notification for the message to kommun {kommunkod} within {} \
                         of working time",
                    working_time(*within_secs)
                ),
                STILL_WAITING,
            )),
            _ => None,
        };
        if let Some(words) = found {
            return words;
        }
    }
    said(
        format!(
            "{}: `kurir status {}` shows what happened",
            mark.kind.as_str(),
            job.id
        ),
        &format!("the job is {} now", job.state),
    )
}

/// What kurir does after a proof deadline passed.
const STILL_WAITING: &str = "kurir keeps waiting for the report; the decision stays delivered";

/// A deadline's working time as the alert says it.
fn working_time(secs: Option<u64>) -> String {
    match secs {
        Some(secs) => humantime::format_duration(std::time::Duration::from_secs(secs)).to_string(),
        None => "the time set in [proof]".into(),
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
        AlertKind::ReportNamesAnotherAddress => {
            "A delivery report about this decision (its token proves it) names an address \
             kurir did not send to: the municipality's server passed the decision on (an alias \
             or a forward), and that mailbox's fate is in the report. `kurir status <job>` \
             shows it under other addresses; phone the municipality and check who has the \
             decision."
        }
        AlertKind::RegistrationChanged => {
            "Where a municipality's decisions go was changed: the municipality's proven address \
         and contact persons were told. If the change was not expected, phone the \
         municipality and check it (`kurir municipality history <kommunkod>`)."
        }
        AlertKind::ApprovalWaiting => {
            "A municipality proved an address outside its mail domains, or changed its postal \
         address on the portal: nothing of it is used until an operator approves it. Check \
         with the municipality, then approve what `kurir municipality show <kommunkod>` \
         lists, by the digest it prints (`approve <kommunkod> --digest D`), or `refuse`."
        }
        AlertKind::CertificateExpiring => {
            "A municipality's S/MIME certificate expires soon: the municipality was told. \
         Register its new certificate (`kurir municipality set <kommunkod> --smime-cert \
         FILE`) before it expires, or decisions go signed but unencrypted."
        }
        AlertKind::PrintNotConfirmed => {
            "A closed print batch has not been confirmed printed and posted. Call the print \
             shop; when it reports the batch posted, run `kurir print confirm <batch>`."
        }
        AlertKind::ConnectionFailed => {
            "kurir's check of the municipality's mail servers failed: its decisions go by post \
             until a check passes. The municipality's contacts were told what to fix; `kurir \
             municipality check <kommunkod>` checks again and shows why."
        }
        AlertKind::ServerCertificateExpiring => {
            "A certificate of the municipality's mail server expires soon: when it does, the \
             check fails and decisions go by post. Phone the municipality's IT so that they \
             renew it (`kurir municipality show <kommunkod>` shows which server)."
        }
    }
}

pub use kurir_protocol::kinds::rubrik;

/// What to do, in Swedish, for the person the alert goes to.
fn atgard(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::DeferredTooLong => {
            "Ring kommunen och be dem kontrollera att deras e-postserver tar emot post från \
             Migrationsverket. kurir försöker igen av sig själv och skickar med post när \
             tiden för e-post har gått ut."
        }
        AlertKind::FellBack => {
            "Beslutet ligger i dagens utskriftsbatch. Ring kommunen så att de väntar brevet, \
             och kvittera larmet när det är gjort."
        }
        AlertKind::Failed => {
            "Ingenting har levererats. Leverera handlingarna på annat sätt nu, ring kommunen \
             och kvittera larmet med vad som gjordes."
        }
        AlertKind::Quarantined => {
            "Inlämningen var felaktig och har inte skickats. Läs orsaken med `kurir \
             quarantine show`, rätta och lämna in den igen."
        }
        AlertKind::Unconfirmed => {
            "Kommunens server har inte bekräftat leveransen. Ring kommunen och fråga om \
             beslutet har kommit fram, och kvittera larmet."
        }
        AlertKind::Unread => {
            "Ring kommunen nu: beslutet har inte öppnats och kommunen behöver agera i dag. \
             Kvittera larmet när kommunen vet om beslutet."
        }
        AlertKind::ConflictingReport => {
            "En rapport motsäger tidigare rapporter och kan vara förfalskad. Ring kommunen \
             och bekräfta att beslutet kom fram; kvittera sedan larmet."
        }
        AlertKind::ReportNamesAnotherAddress => {
            "Kommunens e-postserver skickade beslutet vidare till en annan adress, och en \
             leveransrapport säger hur det gick där. Ring kommunen och kontrollera vem som har \
             beslutet; kvittera sedan larmet."
        }
        AlertKind::RegistrationChanged => {
            "Kommunen har underrättats om ändringen. Var den inte väntad: ring kommunen och \
             kontrollera den."
        }
        AlertKind::ApprovalWaiting => {
            "Ingenting av ändringen används förrän den är godkänd. Kontrollera med kommunen \
             och godkänn eller avslå den."
        }
        AlertKind::CertificateExpiring => {
            "Kommunen har underrättats. Registrera kommunens nya certifikat innan det gamla \
             går ut, annars går besluten signerade men okrypterade."
        }
        AlertKind::PrintNotConfirmed => {
            "Ring tryckeriet och fråga om batchen är utskriven och postad. När den är det: \
             `kurir print confirm` med batchens namn."
        }
        AlertKind::ConnectionFailed => {
            "Kommunens beslut går med post tills kontrollen av deras e-postserver går igenom. \
             Kommunens kontaktpersoner har fått veta vad som ska rättas; ring kommunens IT om \
             det brådskar."
        }
        AlertKind::ServerCertificateExpiring => {
            "Be kommunens IT förnya certifikatet för sin e-postserver innan det går ut; annars \
             går besluten med post."
        }
    }
}

/// The subject and body of an alert e-mail, all in Swedish (dispatch reads them; operations
/// too), with the municipality's telephone and contacts, and no run of spaces.
pub fn email_text(alert: &Alert) -> (String, String) {
    let reference = alert
        .job_id
        .as_ref()
        .map(|j| j.to_string())
        .or_else(|| alert.batch.as_ref().map(|b| format!("utskriftsbatch {b}")))
        .unwrap_or_else(|| "-".into());
    let subject = tidy(&format!("kurir larm: {} ({reference})", rubrik(alert.kind)));
    let mut lines = vec![
        format!("Larm från kurir: {}.", rubrik(alert.kind)),
        String::new(),
        format!("Referens: {reference}"),
    ];
    if let Some(code) = alert.kommunkod {
        let name = alert.municipality.clone().unwrap_or_default();
        lines.push(format!("Kommun: {name} ({code})"));
        lines.push(format!(
            "Telefon: {}",
            alert.phone.as_deref().unwrap_or("inget registrerat")
        ));
        for c in &alert.contacts {
            lines.push(format!(
                "Kontaktperson: {}, {}, {}",
                c.name, c.phone, c.email
            ));
        }
    }
    let zone = jiff::tz::TimeZone::get("Europe/Stockholm").unwrap_or(jiff::tz::TimeZone::UTC);
    lines.push(format!(
        "Tid: {} (svensk tid)",
        alert.at.to_zoned(zone).strftime("%Y-%m-%d %H:%M")
    ));
    lines.push(String::new());
    lines.push(format!("Gör så här: {}", atgard(alert.kind)));
    if let Some(job) = &alert.job_id {
        if alert.kind.is_a_call() {
            lines.push(
                "På expeditionen: sidan Att ringa, med vad du ska säga; där stänger du larmet \
                 när kommunen vet om beslutet."
                    .to_string(),
            );
        }
        lines.push(format!(
            "Status: `kurir status {job}`. Kvittera: `kurir acknowledge {job} --reason \"...\"`."
        ));
    }
    lines.push(String::new());
    lines.push(format!(
        "Driftshandboken, avsnittet {}: {RUNBOOK}",
        alert.kind.rule()
    ));
    let body: Vec<String> = lines.iter().map(|l| tidy(l)).collect();
    (subject, body.join("\r\n") + "\r\n")
}

/// One space between words: texts built from parts never carry runs of spaces.
fn tidy(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::state::JobState;

    /// A store and spool with one job that failed at its expiry (its mark recorded in the
    /// same step, as the queue records it), and an alerter over them.
    fn failed_job(dir: &std::path::Path) -> (Store, Spool, Alerter, JobId) {
        let store = Store::open(&dir.join("state")).expect("store");
        let spool = Spool::new(dir.join("spool"));
        spool.ensure().expect("spool");
        let job = JobRecord::for_tests(JobState::Queued);
        store
            .enqueue(&job, &[(JobState::Queued, EventKind::Settled)])
            .expect("enqueue");
        let code = "2480".parse().expect("code");
        store
            .transition(
                &job.id,
                &[JobState::Queued],
                &EventKind::Expired {
                    waiting: vec![code],
                },
                &[],
                JobRecord::fail,
            )
            .expect("fail");
        let seed = Arc::new(Seed::builtin().expect("seed"));
        let alerter = Alerter::new(spool.clone(), store.clone(), seed, None);
        (store, spool, alerter, job.id)
    }

    fn alert_files(spool: &Spool) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(spool.alerts())
            .expect("alerts")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_marked_alert_is_raised_once_in_the_words_of_its_step_and_never_again() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, spool, alerter, id) = failed_job(dir.path());
        assert_eq!(store.owed_alerts(10).expect("owed").len(), 1);
        assert_eq!(alerter.raise_owed().expect("raise"), 1);
        let files = alert_files(&spool);
        assert_eq!(files, [format!("{id}-failed.json")]);
        let alert: Alert =
            serde_json::from_slice(&std::fs::read(spool.alerts().join(&files[0])).expect("read"))
                .expect("json");
        assert!(
            alert
                .what_failed
                .contains("before the expiry deadline (still waiting: 2480"),
            "{}",
            alert.what_failed
        );
        assert!(store.owed_alerts(10).expect("owed").is_empty());
        // Retention takes the file away while the alert is still open (unacknowledged): the
        // writer does not raise it a second time.
        std::fs::remove_file(spool.alerts().join(&files[0])).expect("remove");
        assert_eq!(alerter.raise_owed().expect("raise"), 0);
        assert!(alert_files(&spool).is_empty());
    }

    #[test]
    fn an_alert_written_before_a_crash_and_not_yet_noted_is_not_raised_twice() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, spool, alerter, id) = failed_job(dir.path());
        // The file was written, the daemon killed before the store noted it.
        let mark = AlertMark::job(AlertKind::Failed);
        let earlier = alerter.compose(mark, &id, None, "before the crash".into(), "-".into());
        assert!(alerter.raise(earlier));
        assert_eq!(alerter.raise_owed().expect("raise"), 1, "noted raised");
        let alert: Alert = serde_json::from_slice(
            &std::fs::read(spool.alerts().join(format!("{id}-failed.json"))).expect("read"),
        )
        .expect("json");
        assert_eq!(
            alert.what_failed, "before the crash",
            "the file was not written again"
        );
        assert!(store.owed_alerts(10).expect("owed").is_empty());
    }

    #[test]
    fn a_record_from_before_the_writer_owes_nothing_and_marks_after_it_are_owed() {
        let mut old = JobRecord::for_tests(JobState::Deferred);
        old.alerts = vec![AlertMark::job(AlertKind::DeferredTooLong)];
        old.alerts_raised = None;
        assert!(
            old.owed_alerts().is_empty(),
            "raised by 0.2 when it was marked"
        );
        old.fail();
        assert_eq!(old.owed_alerts(), [AlertMark::job(AlertKind::Failed)]);
    }

    fn alert(kind: AlertKind) -> Alert {
        Alert {
            kind,
            mark: None,
            at: "2026-11-30T13:05:00Z".parse().expect("time"),
            job_id: Some("20261130-120000-0123456789ab".parse().expect("id")),
            batch: None,
            team: kind.team(),
            runbook: kind.rule().into(),
            kommunkod: Some("2480".parse().expect("code")),
            municipality: Some("Umeå kommun".into()),
            phone: Some("090-16 10 00".into()),
            contacts: vec![Contact {
                name: "Anna Berg".into(),
                phone: "090-16 10 01".into(),
                email: "anna@umea-test.example".into(),
            }],
            what_failed: "relay said   450 try   later".into(),
            next_step: "retry   at 14:00".into(),
            action: action_of(kind).into(),
        }
    }

    #[test]
    fn an_alert_email_is_swedish_tidy_and_names_whom_to_call() {
        for kind in AlertKind::ALL {
            let (subject, body) = email_text(&alert(kind));
            assert!(subject.starts_with("kurir larm: "), "{subject}");
            assert!(!subject.contains("  ") && !body.contains("  "), "{body}");
            // The English free text of the alert file stays out of the Swedish e-mail.
            assert!(
                !body.contains("relay said") && !body.contains("retry"),
                "{body}"
            );
            for swedish in [
                "Gör så här:",
                "Referens:",
                "Telefon: 090-16 10 00",
                "Tid: 2026-11-30 14:05",
            ] {
                assert!(body.contains(swedish), "{kind:?}: {body}");
            }
            assert!(body.contains(kind.rule()), "{body}");
        }
    }
}
