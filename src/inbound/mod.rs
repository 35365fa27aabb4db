//! The inbound channel: delivery reports and read notifications back from the municipalities'
//! side, matched to the job and recipient they speak of, and acted on.
//!
//! `kurir inbound` (the MTA's pipe) stores one message into `spool/inbound/new/` by the
//! tmp-then-rename rule ([`store_message`]) and needs no daemon. The daemon takes them like
//! jobs (watcher hint + rescan, [`Inbound::scan`]): each message is read as hostile input
//! ([`report::parse`]), counts only when the address it was sent to carries a valid token
//! ([`crate::report_token`]) and its ENVID / Original-Message-ID agrees, and is recorded on the job in one
//! flushed step keyed by the report's SHA-256 — so a crash between recording and moving the
//! file away processes it exactly once. Processed messages move to `inbound/done/`;
//! what matches nothing goes to `inbound/unmatched/` with a `.reason` file, is counted, and
//! changes no job.
//!
//! What a report does: `delivered` / `relayed` confirm the recipient's delivery; `failed`
//! after the relay had accepted sends that municipality a letter at once (fallen-back) and
//! raises an alert; `delayed` is an event; an MDN `displayed` marks the message read.
//! [`Inbound::check_deadlines`] raises an alert for a message not confirmed within
//! `[proof] confirm_within`, or not read within `[proof] read_within`, of working time.

pub mod accept;
pub mod progress;
pub mod report;

pub use accept::{
    store_message, StoreMessageError, ENVELOPE_LINE, EX_DATAERR, EX_NOUSER, EX_TEMPFAIL,
};

use std::path::Path;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use crate::config::ProofSettings;
use crate::fsutil;
use crate::job::Kommunkod;
use crate::ops::alert::AlertKind;
use crate::report_token::TokenKey;
use crate::spool::Spool;
use crate::store::event::{EventKind, ReportSeen};
use crate::store::state::{AlertMark, JobRecord, JobState, ProofDeadline, ProofReport, ReportKind};
use crate::store::{Store, StoreError};
use crate::worktime::WorkingHours;
use report::Report;

/// The metric of reports taken in, by what they did.
pub const REPORTS_METRIC: &str = "kurir_proof_reports_total";

/// What can stop the inbound stage (a bad message is not an error: it is set aside).
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The spool could not be read or changed.
    #[error(transparent)]
    Io(#[from] fsutil::FsError),
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> InboundError + 'a {
    fsutil::io(what, path)
}

/// What one scan of `inbound/new/` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct InboundOutcome {
    /// Reports recorded on a job.
    pub recorded: usize,
    /// Messages set aside in `inbound/unmatched/`.
    pub unmatched: usize,
    /// Messages left for a later scan (their job was being sent).
    pub later: usize,
}

/// What became of one message.
enum Handled {
    Recorded,
    Unmatched(String),
    Later,
}

/// The inbound stage.
pub struct Inbound {
    spool: Spool,
    store: Store,
    key: TokenKey,
    settings: ProofSettings,
    hours: WorkingHours,
    clock: Arc<dyn crate::clock::Clock>,
}

/// The most messages `inbound/unmatched/` keeps (each at most `[proof] max_inbound_bytes`).
pub const MAX_UNMATCHED: usize = 1000;

impl Inbound {
    /// The inbound stage over this spool and store.
    pub fn new(
        spool: Spool,
        store: Store,
        key: TokenKey,
        settings: ProofSettings,
        hours: WorkingHours,
        clock: Arc<dyn crate::clock::Clock>,
    ) -> Self {
        Inbound {
            spool,
            store,
            key,
            settings,
            hours,
            clock,
        }
    }

    /// What time it is, as this stage's clock says (which report is overdue).
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Takes in every message in `inbound/new/`, oldest first.
    pub fn scan(&self) -> Result<InboundOutcome, InboundError> {
        let new = self.spool.inbound_new();
        let mut names: Vec<String> = match std::fs::read_dir(&new) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| !n.starts_with('.'))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
            Err(e) => return Err(io("reading", &new)(e)),
        };
        names.sort();
        let mut outcome = InboundOutcome::default();
        for name in names {
            let path = new.join(&name);
            match self.take_in(&path)? {
                Handled::Recorded => {
                    self.move_to(&path, &self.spool.inbound_done(), &name, None)?;
                    outcome.recorded += 1;
                }
                Handled::Unmatched(reason) => {
                    tracing::warn!(message = %name, reason = %reason, "inbound message matches no job");
                    metrics::counter!(REPORTS_METRIC, "outcome" => "unmatched").increment(1);
                    self.move_to(&path, &self.spool.inbound_unmatched(), &name, Some(&reason))?;
                    outcome.unmatched += 1;
                }
                Handled::Later => outcome.later += 1,
            }
        }
        if outcome.unmatched > 0 {
            self.cap_unmatched();
        }
        Ok(outcome)
    }

    /// Keeps at most [`MAX_UNMATCHED`] messages in `inbound/unmatched/`, the newest: what
    /// matches no job is kept for a person to look at, not without bound.
    fn cap_unmatched(&self) {
        let dir = self.spool.inbound_unmatched();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let mut messages: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".eml"))
            .collect();
        if messages.len() <= MAX_UNMATCHED {
            return;
        }
        messages.sort();
        let excess = messages.len() - MAX_UNMATCHED;
        for name in &messages[..excess] {
            let _ = std::fs::remove_file(dir.join(name));
            let _ = std::fs::remove_file(dir.join(format!("{name}.reason")));
        }
        metrics::counter!(REPORTS_METRIC, "outcome" => "unmatched_dropped")
            .increment(excess as u64);
        tracing::warn!(
            dropped = excess,
            kept = MAX_UNMATCHED,
            "inbound/unmatched/ holds its most; the oldest unmatched messages were removed"
        );
    }

    fn move_to(
        &self,
        path: &Path,
        dir: &Path,
        name: &str,
        reason: Option<&str>,
    ) -> Result<(), InboundError> {
        fsutil::create_private_dir(dir).map_err(io("creating", dir))?;
        if let Some(reason) = reason {
            let note = dir.join(format!("{name}.reason"));
            fsutil::write_atomic(&note, format!("{reason}\n").as_bytes())
                .map_err(io("writing", &note))?;
        }
        let target = dir.join(name);
        std::fs::rename(path, &target).map_err(io("moving", path))?;
        fsutil::sync_dir(dir).map_err(io("syncing", dir))
    }

    /// Reads, matches and records one message.
    fn take_in(&self, path: &Path) -> Result<Handled, InboundError> {
        let limit = self.settings.max_inbound_bytes + 400;
        let raw = match fsutil::read_bounded(path, limit) {
            Ok(raw) => raw,
            Err(fsutil::ReadError::Missing) => return Ok(Handled::Later),
            Err(e) => return Ok(Handled::Unmatched(format!("unreadable: {e}"))),
        };
        let (recipient, message) = split_envelope(&raw);
        let sha256 = crate::digest::sha256_hex(message);
        let Some((job_id, code)) = TokenKey::token_of(&recipient).and_then(|t| self.key.verify(t))
        else {
            return Ok(Handled::Unmatched(
                "the address it was sent to carries no valid token".into(),
            ));
        };
        let report = match report::parse(message) {
            Ok(report) => report,
            Err(e) => return Ok(Handled::Unmatched(format!("job {job_id}: {e}"))),
        };
        let Some(job) = self.store.get(&job_id)? else {
            return Ok(Handled::Unmatched(format!("no job {job_id}")));
        };
        let Some(delivery) = job
            .recipients
            .iter()
            .find(|r| r.kommunkod == code)
            .and_then(|r| r.email.as_ref())
        else {
            return Ok(Handled::Unmatched(format!(
                "job {job_id} sent no e-mail to {code}"
            )));
        };
        if delivery
            .reports
            .iter()
            .chain(&delivery.conflicts)
            .chain(&delivery.elsewhere)
            .any(|r| r.sha256 == sha256)
        {
            return Ok(Handled::Recorded); // recorded before a crash; only the move was left
        }
        let Some(sent_to) = delivery.accepted.as_ref().map(|a| a.address.clone()) else {
            return Ok(Handled::Unmatched(format!(
                "job {job_id}: no message to {code} was accepted, so there is nothing to report on"
            )));
        };
        // Reports about the recipient have a budget of their own: blocks about other mailboxes
        // (kept apart, at most as many again) cannot use it up.
        let kept = delivery.reports.len() + delivery.conflicts.len();
        if kept >= progress::MAX_REPORTS_PER_RECIPIENT {
            return Ok(Handled::Unmatched(format!(
                "job {job_id}: {kept} reports are kept for {code} already; more are set aside"
            )));
        }
        // Each block is judged by itself. A block about the recipient the token names (kurir
        // sent ORCPT) is acted on; a block about another mailbox proves nothing about this one
        // — but the token proves the report concerns this decision, so it is kept and a person
        // is told (an alias or forward at the municipality, one of whose mailboxes may have
        // failed): no report about a decision is set aside unseen.
        let names_ours = |original: &Option<String>, last: &Option<String>| {
            original
                .as_deref()
                .or(last.as_deref())
                .is_some_and(|named| named.trim().eq_ignore_ascii_case(&sent_to))
        };
        let now = Timestamp::now();
        let (reports, elsewhere): (Vec<ProofReport>, Vec<ProofReport>) = match &report {
            Report::Delivery(dsn) => {
                let expected = format!("{job_id}.{code}");
                if dsn.envelope_id.as_deref().is_some_and(|id| id != expected) {
                    return Ok(Handled::Unmatched(format!(
                        "job {job_id}: its Original-Envelope-Id does not name {expected}"
                    )));
                }
                let block = |r: &report::RecipientStatus| ProofReport {
                    at: now,
                    kind: ReportKind::from_dsn_action(&r.action),
                    status: r.status.clone(),
                    diagnostic: r.diagnostic.clone(),
                    reporting: dsn.reporting_mta.clone(),
                    remote_mta: r.remote_mta.clone(),
                    arrival_date: dsn.arrival_date.clone(),
                    final_recipient: r.final_recipient.clone(),
                    sha256: sha256.clone(),
                };
                let (ours, others): (Vec<_>, Vec<_>) = dsn
                    .recipients
                    .iter()
                    .partition(|r| names_ours(&r.original_recipient, &r.final_recipient));
                (
                    ours.into_iter().map(block).collect(),
                    others.into_iter().map(block).collect(),
                )
            }
            Report::Read(mdn) => {
                let expected = delivery.message_id.trim_matches(['<', '>']);
                if mdn
                    .original_message_id
                    .as_deref()
                    .is_some_and(|id| id != expected)
                {
                    return Ok(Handled::Unmatched(format!(
                        "job {job_id}: its Original-Message-ID is not the message kurir sent"
                    )));
                }
                let read = ProofReport {
                    at: now,
                    kind: ReportKind::from_mdn_disposition(&mdn.disposition_type),
                    status: mdn.disposition.clone(),
                    diagnostic: None,
                    reporting: mdn.reporting_ua.clone(),
                    remote_mta: None,
                    arrival_date: None,
                    final_recipient: mdn.final_recipient.clone(),
                    sha256: sha256.clone(),
                };
                if names_ours(&mdn.original_recipient, &mdn.final_recipient) {
                    (vec![read], Vec::new())
                } else {
                    (Vec::new(), vec![read])
                }
            }
        };
        let room = progress::MAX_REPORTS_PER_RECIPIENT.saturating_sub(delivery.elsewhere.len());
        let mut elsewhere = elsewhere;
        elsewhere.truncate(room);
        if reports.is_empty() && elsewhere.is_empty() {
            return Ok(Handled::Unmatched(format!(
                "job {job_id}: the report has no recipient block"
            )));
        }
        if job.state == JobState::Sending {
            return Ok(Handled::Later);
        }
        self.record(&job, code, delivery, reports, elsewhere)
    }

    /// Records the reports on the job in one flushed step, each as what it is — a step
    /// forward, a note, or a conflict ([`progress::step`]) — then acts: a letter for a failure
    /// after acceptance, an alert for a conflict. The alerts' marks are recorded in the same
    /// step; the alert writer raises each once ([`crate::ops::alert::Alerter::raise_owed`]).
    fn record(
        &self,
        job: &JobRecord,
        code: Kommunkod,
        delivery: &crate::store::state::EmailDelivery,
        reports: Vec<ProofReport>,
        elsewhere: Vec<ProofReport>,
    ) -> Result<Handled, InboundError> {
        let mut after = delivery.clone();
        let mut taken = Vec::new();
        let mut conflicts = Vec::new();
        let mut failed = None;
        for report in reports {
            match progress::step(&after, report.kind) {
                progress::Step::Conflict => {
                    after.conflicts.push(report.clone());
                    conflicts.push(report);
                }
                step => {
                    if step == progress::Step::Forward && report.kind == ReportKind::Failed {
                        failed = Some(report.clone());
                    }
                    after.reports.push(report.clone());
                    taken.push(report);
                }
            }
        }
        let fell_back = failed.is_some();
        let raise_conflict = !conflicts.is_empty()
            && !job
                .alerts
                .contains(&AlertMark::recipient(AlertKind::ConflictingReport, code));
        let raise_elsewhere = !elsewhere.is_empty()
            && !job.alerts.contains(&AlertMark::recipient(
                AlertKind::ReportNamesAnotherAddress,
                code,
            ));
        let what = EventKind::Reports {
            kommunkod: code,
            taken: taken.iter().map(ReportSeen::from).collect(),
            fell_back,
            elsewhere: elsewhere.iter().map(|r| r.kind).collect(),
            conflicts: conflicts.iter().map(|r| r.kind).collect(),
        };
        let record = self
            .store
            .transition(&job.id, &[job.state], &what, &[], |r| {
                let now = Timestamp::now();
                let Some(rec) = r.recipients.iter_mut().find(|x| x.kommunkod == code) else {
                    return;
                };
                let Some(email) = rec.email.as_mut() else {
                    return;
                };
                email.reports.extend(taken.iter().cloned());
                email.conflicts.extend(conflicts.iter().cloned());
                email.elsewhere.extend(elsewhere.iter().cloned());
                if let Some(failure) = &failed {
                    email.rejected = Some(format!(
                        "delivery report after acceptance: {} {}",
                        failure.status,
                        failure.diagnostic.as_deref().unwrap_or("")
                    ));
                    r.fall_back_to_post(&[code], now, false);
                }
                if raise_conflict {
                    r.mark(AlertMark::recipient(AlertKind::ConflictingReport, code));
                }
                if raise_elsewhere {
                    r.mark(AlertMark::recipient(
                        AlertKind::ReportNamesAnotherAddress,
                        code,
                    ));
                }
            })?;
        for report in &taken {
            let outcome = match report.kind {
                ReportKind::Delivered => "confirmed",
                ReportKind::Relayed => "relayed",
                ReportKind::Failed => "failed_after_acceptance",
                ReportKind::Delayed => "delayed",
                ReportKind::Displayed => "read",
                _ => "other",
            };
            metrics::counter!(REPORTS_METRIC, "outcome" => outcome).increment(1);
        }
        for _ in &conflicts {
            metrics::counter!(REPORTS_METRIC, "outcome" => "conflicting").increment(1);
        }
        for _ in &elsewhere {
            metrics::counter!(REPORTS_METRIC, "outcome" => "another_address").increment(1);
        }
        tracing::info!(job_id = %record.id, kommunkod = %code, reports = taken.len(), conflicts = conflicts.len(), "delivery report recorded");
        Ok(Handled::Recorded)
    }

    /// Raises an alert, once per message, for each message not confirmed within
    /// `[proof] confirm_within`, or not read within `[proof] read_within`, of working time
    /// after the relay accepted it. Reads only the jobs the store indexes as awaiting proof.
    pub fn check_deadlines(&self, now: Timestamp) -> Result<usize, InboundError> {
        let within = |d: ProofDeadline| {
            let setting = match d {
                ProofDeadline::Confirm => self.settings.confirm_within,
                ProofDeadline::Read => self.settings.read_within,
            };
            SignedDuration::try_from(setting).unwrap_or(SignedDuration::MAX)
        };
        let mut raised = 0;
        for job in self.store.awaiting_proof()? {
            for rec in &job.recipients {
                let Some(email) = rec.email.as_ref() else {
                    continue;
                };
                let Some(accepted) = email.accepted.as_ref() else {
                    continue;
                };
                for deadline in [ProofDeadline::Confirm, ProofDeadline::Read] {
                    if deadline.pending(&job, rec.kommunkod, email)
                        && now >= self.hours.add(accepted.at, within(deadline))
                    {
                        self.raise_deadline(&job, rec.kommunkod, deadline)?;
                        raised += 1;
                    }
                }
            }
        }
        Ok(raised)
    }

    fn raise_deadline(
        &self,
        job: &JobRecord,
        code: Kommunkod,
        deadline: ProofDeadline,
    ) -> Result<(), InboundError> {
        let mark = deadline.mark(code);
        let detail = match deadline {
            ProofDeadline::Confirm => EventKind::NotConfirmedInTime {
                kommunkod: code,
                within_secs: Some(self.settings.confirm_within.as_secs()),
            },
            ProofDeadline::Read => EventKind::NotReadInTime {
                kommunkod: code,
                within_secs: Some(self.settings.read_within.as_secs()),
            },
        };
        // The mark is the alert: the alert writer raises it, in the words of this step.
        self.store
            .transition(&job.id, &[job.state], &detail, &[], |r| r.mark(mark))?;
        Ok(())
    }
}

/// How often the proof deadlines are looked at.
const DEADLINE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Takes in reports whenever the watcher of `inbound/new/` or the rescan timer says so, and
/// looks at the proof deadlines once a minute, until shutdown.
pub async fn run_loop(
    inbound: Arc<Inbound>,
    wake: Arc<tokio::sync::Notify>,
    rescan: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut last_check: Option<std::time::Instant> = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let check = last_check.is_none_or(|t| t.elapsed() >= DEADLINE_CHECK_EVERY);
        let worker = inbound.clone();
        let result = tokio::task::spawn_blocking(move || {
            let outcome = worker.scan()?;
            let raised = if check {
                worker.check_deadlines(worker.now())?
            } else {
                0
            };
            Ok::<_, InboundError>((outcome, raised))
        })
        .await;
        if check {
            last_check = Some(std::time::Instant::now());
        }
        match result {
            Ok(Ok((outcome, raised))) => {
                if outcome.recorded + outcome.unmatched + raised > 0 {
                    tracing::debug!(
                        recorded = outcome.recorded,
                        unmatched = outcome.unmatched,
                        alerts = raised,
                        "inbound reports taken in"
                    );
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "inbound failed; will look again"),
            // The runtime is going away: nothing more to take in.
            Err(e) if e.is_cancelled() => break,
            Err(e) => tracing::error!(error = %e, "inbound task failed; will look again"),
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(rescan.min(DEADLINE_CHECK_EVERY)) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// The envelope recipient `kurir inbound` wrote first, and the message after it.
fn split_envelope(raw: &[u8]) -> (String, &[u8]) {
    let Some(rest) = raw.strip_prefix(ENVELOPE_LINE.as_bytes()) else {
        return (String::new(), raw);
    };
    let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
    let recipient = String::from_utf8_lossy(&rest[..end]).trim().to_string();
    (recipient, rest.get(end + 1..).unwrap_or(&[]))
}
