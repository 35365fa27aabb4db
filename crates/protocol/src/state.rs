//! What the store knows about a job: its state, recipients, documents and history.
//!
//! These records hold no personal data: no case number, no names, no file names chosen by the
//! writer (except the job directory's own name, which the writer needs to find its receipt).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::job::{DocumentKind, JobId, Kommunkod, RecipientRole};

pub use super::kinds::{AlertKind, AlertMark, AttemptOutcome, ReportKind, Team};

/// Where a job is in its life. See ARCHITECTURE.md for the transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", value(rename_all = "kebab-case"))]
pub enum JobState {
    /// Claimed from the spool and validated; not yet routed.
    Received,
    /// Routed and waiting for its deliverer.
    Queued,
    /// A deliverer is working on it.
    Sending,
    /// An attempt failed for a reason that may pass; `next_attempt` says when it is tried again.
    Deferred,
    /// E-mail did not succeed in time or failed permanently; the job goes to post instead.
    FallenBack,
    /// Letters are in a print batch: handed over to the postal path.
    PrintQueued,
    /// The print shop confirmed printing.
    Printed,
    /// Accepted by the receiving mail server.
    Delivered,
    /// Given up; operations alerted.
    Failed,
    /// Stopped by an operator.
    Cancelled,
    /// Held by an operator (the job, or its municipality); nothing happens until released.
    Held,
    /// Bad input; kept in `spool/quarantine/` with a reason.
    Quarantined,
}

impl JobState {
    /// A state in which a person may retry or hold the job: kurir still works on it and is
    /// not sending it this moment.
    pub fn is_waiting(self) -> bool {
        matches!(
            self,
            JobState::Received | JobState::Queued | JobState::Deferred | JobState::FallenBack
        )
    }

    /// A state after which kurir does nothing more with the job by itself.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::PrintQueued
                | JobState::Printed
                | JobState::Delivered
                | JobState::Failed
                | JobState::Cancelled
                | JobState::Quarantined
        )
    }

    /// The kebab-case name used on the command line, in JSON and in receipts.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Received => "received",
            JobState::Queued => "queued",
            JobState::Sending => "sending",
            JobState::Deferred => "deferred",
            JobState::FallenBack => "fallen-back",
            JobState::PrintQueued => "print-queued",
            JobState::Printed => "printed",
            JobState::Delivered => "delivered",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Held => "held",
            JobState::Quarantined => "quarantined",
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How documents reach a municipality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// Protected e-mail over enforced, verified TLS.
    Email,
    /// A printed letter in a window envelope.
    Post,
}

impl Channel {
    /// The lower-case name used in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Post => "post",
        }
    }
}

/// One document of a job, as validated: enough to prove later what was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRecord {
    /// Which document.
    pub kind: DocumentKind,
    /// File name inside `spool/active/<job-id>/` (checked to be a safe name).
    pub file: String,
    /// Number of pages.
    pub pages: u32,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
}

/// A letter in a print batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LetterRef {
    /// The batch directory's name under `spool/print/`.
    pub batch: String,
    /// The letter's file name in the batch.
    pub file: String,
    /// Pages including the cover letter.
    pub pages: u32,
    /// SHA-256 of the letter PDF.
    pub sha256: String,
    /// No postal address was registered: the letter is addressed to the registry office.
    pub address_missing: bool,
    /// When the print shop confirmed that the letter's batch was printed and posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub printed_at: Option<Timestamp>,
}

/// One municipality that gets the job's documents, and how it got them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The municipality.
    pub kommunkod: Kommunkod,
    /// Assigned municipality or copy.
    pub role: RecipientRole,
    /// The chosen channel, once routed.
    pub channel: Option<Channel>,
    /// The print letter, once made.
    pub letter: Option<LetterRef>,
    /// The e-mail delivery, once tried.
    #[serde(default)]
    pub email: Option<EmailDelivery>,
}

impl Recipient {
    /// The recipient has its documents: a letter is in a print batch, or the mail server
    /// accepted the message.
    pub fn is_done(&self) -> bool {
        self.letter.is_some() || self.email.as_ref().is_some_and(EmailDelivery::holds)
    }

    /// The recipient still waits for an e-mail delivery.
    pub fn awaits_email(&self) -> bool {
        self.channel == Some(Channel::Email) && !self.is_done()
    }

    /// The recipient still waits for a letter.
    pub fn awaits_letter(&self) -> bool {
        self.channel == Some(Channel::Post) && self.letter.is_none()
    }
}

/// E-mail delivery to one municipality: every attempt and, once accepted, the proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailDelivery {
    /// The Message-ID, the same on every attempt.
    pub message_id: String,
    /// Every attempt, oldest first.
    pub attempts: Vec<EmailAttempt>,
    /// What proves delivery, once the server accepted.
    pub accepted: Option<EmailProof>,
    /// The permanent rejection that sent this recipient to post, if any: the server's 5xx,
    /// or a delivery report's failure after the relay had accepted.
    pub rejected: Option<String>,
    /// Delivery reports and read notifications that came back, oldest first.
    #[serde(default)]
    pub reports: Vec<ProofReport>,
    /// Reports that would have moved the recipient backwards (a failure after delivery, a
    /// second read notification, …): kept for the record, acted on never.
    #[serde(default)]
    pub conflicts: Vec<ProofReport>,
    /// Report blocks about this message that name another mailbox than the one it was sent
    /// to (an alias or forward at the municipality): kept and alerted, never acted on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elsewhere: Vec<ProofReport>,
}

impl EmailDelivery {
    /// The message is with the municipality as far as kurir knows: accepted, and no report
    /// since said it failed.
    pub fn holds(&self) -> bool {
        self.accepted.is_some() && self.rejected.is_none()
    }

    /// The report that confirms delivery: the final server's `delivered`, or a relay's
    /// `relayed` (weaker: the next server offers no reports).
    pub fn confirmation(&self) -> Option<&ProofReport> {
        self.reports
            .iter()
            .find(|r| r.kind == ReportKind::Delivered)
            .or_else(|| self.reports.iter().find(|r| r.kind == ReportKind::Relayed))
    }

    /// The read notification that says the message was displayed.
    pub fn read_notice(&self) -> Option<&ProofReport> {
        self.reports
            .iter()
            .find(|r| r.kind == ReportKind::Displayed)
    }
}

/// One delivery report (DSN) or read notification (MDN) about one recipient's message, as
/// kurir took it in. Only protocol fields: never the quoted original's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofReport {
    /// When kurir took it in.
    pub at: Timestamp,
    /// The DSN's `Action` or the MDN's disposition type.
    pub kind: ReportKind,
    /// The DSN's `Status` (e.g. `2.0.0`), or the MDN's whole `Disposition` field.
    pub status: String,
    /// The DSN's `Diagnostic-Code`, if any.
    #[serde(default)]
    pub diagnostic: Option<String>,
    /// The server that reported: the DSN's `Reporting-MTA` or the MDN's `Reporting-UA`.
    #[serde(default)]
    pub reporting: Option<String>,
    /// The DSN's `Remote-MTA`, if any.
    #[serde(default)]
    pub remote_mta: Option<String>,
    /// The DSN's `Arrival-Date`: when the reporting server received the message.
    #[serde(default)]
    pub arrival_date: Option<String>,
    /// The mailbox the report speaks of (`Final-Recipient`).
    #[serde(default)]
    pub final_recipient: Option<String>,
    /// SHA-256 of the whole report message as it arrived.
    pub sha256: String,
}

/// One e-mail attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailAttempt {
    /// When.
    pub at: Timestamp,
    /// The address tried.
    pub address: String,
    /// What came of it.
    pub outcome: AttemptOutcome,
    /// The server's reply or the failure, in words.
    pub reply: String,
    /// The server's reply as a value, when it was one (not a connection or TLS failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpReply>,
}

/// An SMTP server's reply as a value, as Stalwart keeps it: the reply code (RFC 5321 §4.2),
/// the enhanced status code when the server gave one (RFC 3463: class.subject.detail, e.g.
/// `5.1.1` no such mailbox), and the text. Decisions and surfaces read the codes, never the
/// text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpReply {
    /// The three-digit reply code, e.g. 250, 451, 550.
    pub code: u16,
    /// The enhanced status code, `[class, subject, detail]`, e.g. `[2, 0, 0]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enhanced: Option<[u16; 3]>,
    /// What the server said after the codes.
    pub text: String,
}

impl SmtpReply {
    /// Reads a reply as kurir records it, `250 2.0.0 Ok: queued as 4Xb1`, or `None` when the
    /// words are no server's reply (a connection that failed, a certificate refused). Also
    /// finds a reply quoted at the end of a longer failure, as lettre words one
    /// (`permanent error (550): 5.1.1 no such user`).
    pub fn parse(words: &str) -> Option<SmtpReply> {
        let code_at = |s: &str| -> Option<u16> {
            let digits = s.get(..3)?;
            let code: u16 = digits.parse().ok()?;
            let after = s[3..].chars().next();
            ((200..600).contains(&code) && after.is_none_or(|c| c == ' ' || c == '-'))
                .then_some(code)
        };
        let (code, rest) = match code_at(words) {
            Some(code) => (code, words[3..].trim_start_matches(['-', ' '])),
            None => {
                // lettre: "permanent error (550): …" / "transient error (451): …"
                let at = words.find(" error (")? + " error (".len();
                let code: u16 = words.get(at..at + 3)?.parse().ok()?;
                let rest = words.get(at + 3..)?.strip_prefix("):")?;
                ((200..600).contains(&code)).then_some((code, rest.trim_start()))?
            }
        };
        // An enhanced code of another class than the reply's is not one (RFC 3463 §2).
        let of_class = |word: &str| enhanced_code(word).filter(|e| e[0] == code / 100);
        let (first, after) = rest.split_once(' ').unwrap_or((rest, ""));
        let (enhanced, text) = match of_class(first) {
            Some(e) => (Some(e), after),
            None => (None, rest),
        };
        Some(SmtpReply {
            code,
            enhanced,
            text: text.trim().to_string(),
        })
    }

    /// 2xx: the server took it.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 5xx: this will not work again as it is.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }
}

/// `class.subject.detail` (RFC 3463), each at most three digits, the class 2, 4 or 5.
fn enhanced_code(word: &str) -> Option<[u16; 3]> {
    let mut parts = word.split('.');
    let mut out = [0u16; 3];
    for slot in &mut out {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = part.parse().ok()?;
    }
    (parts.next().is_none() && matches!(out[0], 2 | 4 | 5)).then_some(out)
}

impl std::fmt::Display for SmtpReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some([c, s, d]) = self.enhanced {
            write!(f, " {c}.{s}.{d}")?;
        }
        if !self.text.is_empty() {
            write!(f, " {}", self.text)?;
        }
        Ok(())
    }
}

/// What kurir can show about an accepted message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailProof {
    /// When the server accepted it.
    pub at: Timestamp,
    /// The address it went to.
    pub address: String,
    /// The server's final reply (with its queue id).
    pub reply: String,
    /// That reply as a value ([`SmtpReply::parse`] of `reply`; absent before 0.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpReply>,
    /// The relay it was handed to, `host:port`.
    pub relay: String,
    /// TLS version.
    pub tls_version: String,
    /// TLS cipher.
    pub tls_cipher: String,
    /// SHA-256 of the server's certificate.
    pub server_cert_sha256: String,
    /// SHA-256 of the agency certificate that signed it.
    pub signed_by_sha256: String,
    /// Whether it was encrypted (S/MIME).
    pub encrypted: bool,
    /// SHA-256 of the certificate it was encrypted to.
    pub encrypted_to_sha256: Option<String>,
    /// SHA-256 of the message as sent.
    pub message_sha256: String,
    /// The envelope sender that asks for reports back (`[proof] return_path` with this
    /// recipient's token); `None` when no reports were asked for.
    #[serde(default)]
    pub return_path: Option<String>,
    /// Whether delivery reports (DSN) were asked of the relay: `Some(false)` when it offers
    /// none, so proof ends at the relay's acceptance.
    #[serde(default)]
    pub dsn_requested: Option<bool>,
    /// Direct mode: the municipality's own server that took it (the TLS facts above are of
    /// this hop): transport proof to the municipality's mail system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_hop: Option<FinalHop>,
}

/// The municipality's own mail server a direct delivery reached, and how it was trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalHop {
    /// The MX host.
    pub mx: String,
    /// The address connected to.
    pub address: String,
    /// The certificate was the one DNSSEC-validated TLSA records vouched for (DANE).
    pub dane: bool,
    /// The domain's MTA-STS policy (mode enforce) lists this MX.
    pub mta_sts: bool,
}

/// Why a job was quarantined, in words safe for logs and status (no file content quoted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineInfo {
    /// Short machine-readable reason, e.g. `pdf-encrypted`.
    pub code: String,
    /// One sentence for a person.
    pub summary: String,
    /// Directory name under `spool/quarantine/`.
    pub dir: String,
}

/// Everything the store keeps about one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job's id.
    pub id: JobId,
    /// The name of the directory the writer dropped into `spool/incoming/`.
    pub source: String,
    /// Current state.
    pub state: JobState,
    /// The assigned municipality, when the manifest could be read.
    pub to: Option<Kommunkod>,
    /// All recipients, the assigned municipality first.
    pub recipients: Vec<Recipient>,
    /// The documents in reading order.
    pub documents: Vec<DocumentRecord>,
    /// When kurir claimed the job.
    pub received_at: Timestamp,
    /// When the record last changed.
    pub updated_at: Timestamp,
    /// When the scheduler should next look at the job (None: nothing scheduled).
    pub next_attempt: Option<Timestamp>,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Set when the job was quarantined.
    pub quarantine: Option<QuarantineInfo>,
    /// The receipt for the current final state is on disk.
    pub receipt_written: bool,
    /// A letter of this job is recorded but its batch's manifest does not list it yet: the
    /// receipt, which names the batch, waits for the manifest.
    #[serde(default)]
    pub manifest_pending: bool,
    /// Number of events in the job's history (the next event's sequence number).
    pub events: u32,
    /// The alerts this job owes or owed, each once ([`JobRecord::mark`]).
    #[serde(default)]
    pub alerts: Vec<AlertMark>,
    /// Those of [`JobRecord::alerts`] the alert writer has raised (file written, e-mail
    /// queued); the rest are owed. `None`: a record from before 0.3, whose alerts were raised
    /// as they were marked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts_raised: Option<Vec<AlertMark>>,
    /// Alerts a person has dealt with (`kurir acknowledge`: the municipality was phoned, the
    /// documents went another way): no longer open, whatever the job's state.
    #[serde(default)]
    pub acknowledged: Vec<AlertMark>,
    /// Attempts whose outcome was unknown (connection lost after the message was sent).
    #[serde(default)]
    pub unknown_deliveries: u32,
    /// The SHA-256 of the case system's submission key, if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission: Option<String>,
    /// For a submission whose key an earlier job had: that job (this one is not sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<JobId>,
}

/// The job's state machine: the one place each state is set, with what goes with it (when it
/// is due next, the alert marks it owes). `tests/architecture.rs` finds any other.
impl JobRecord {
    /// Whether a person's `action` can be taken on the job as it stands: the one rule the
    /// operator commands apply, and the desk offers only the actions it allows.
    pub fn allows(&self, action: crate::action::Action) -> bool {
        use crate::action::Action;
        match action {
            Action::Retry | Action::Hold => self.state.is_waiting(),
            Action::Release => self.state == JobState::Held,
            Action::Cancel => !self.state.is_final() && self.state != JobState::Sending,
            Action::Reroute => {
                (self.state.is_waiting() || self.state == JobState::Held)
                    && self.recipients.iter().any(Recipient::awaits_email)
            }
            Action::Acknowledge | Action::CallNoted => !self.open_alerts().is_empty(),
            Action::QuarantineRelease | Action::QuarantineDelete => {
                self.state == JobState::Quarantined
            }
        }
    }
}

impl JobRecord {
    /// A job as intake first records it: received at `now` from the spool entry `source`,
    /// nothing known of it yet. The one place a record is made; every later state is a
    /// transition of it.
    pub fn received(id: JobId, source: &str, now: Timestamp) -> JobRecord {
        JobRecord {
            id,
            source: source.chars().take(200).collect(),
            state: JobState::Received,
            to: None,
            recipients: Vec::new(),
            documents: Vec::new(),
            received_at: now,
            updated_at: now,
            next_attempt: None,
            attempts: 0,
            quarantine: None,
            receipt_written: false,
            manifest_pending: false,
            events: 0,
            alerts: Vec::new(),
            alerts_raised: Some(Vec::new()),
            acknowledged: Vec::new(),
            unknown_deliveries: 0,
            submission: None,
            duplicate_of: None,
        }
    }

    /// Routed, and due at `now` for its first attempt (intake), or again after a hold (an
    /// operator's release).
    pub fn queue(&mut self, now: Timestamp) {
        self.state = JobState::Queued;
        self.next_attempt = Some(now);
    }

    /// Refused at intake for `info`'s reason, which a person can act on; its alert mark once.
    pub fn quarantine(&mut self, info: QuarantineInfo) {
        self.state = JobState::Quarantined;
        self.next_attempt = None;
        self.quarantine = Some(info);
        self.mark(AlertMark::job(AlertKind::Quarantined));
    }

    /// A deliverer has it: one more attempt.
    pub fn start_sending(&mut self) {
        self.state = JobState::Sending;
        self.attempts += 1;
    }

    /// Waits for its next attempt, at `next`.
    pub fn defer(&mut self, next: Timestamp) {
        self.state = JobState::Deferred;
        self.next_attempt = Some(next);
    }

    /// Handling it failed (the store, a file): tried again at `retry`; if a deliverer had
    /// it, it waits now.
    pub fn retry_after_error(&mut self, retry: Timestamp) {
        if self.state == JobState::Sending {
            self.state = JobState::Deferred;
        }
        self.next_attempt = Some(retry);
    }

    /// Stops until released (an operator, or its municipality held).
    pub fn hold(&mut self) {
        self.state = JobState::Held;
        self.next_attempt = None;
    }

    /// Past its expiry with recipients still waiting: failed, and its alert mark once.
    pub fn fail(&mut self) {
        self.state = JobState::Failed;
        self.next_attempt = None;
        self.mark(AlertMark::job(AlertKind::Failed));
    }

    /// Stopped for good: by an operator, as a resubmission kurir had before, or a record the
    /// store could not read.
    pub fn cancel(&mut self) {
        self.state = JobState::Cancelled;
        self.next_attempt = None;
    }

    /// Every recipient done: `delivered` or `print-queued` ([`JobRecord::settled_state`]),
    /// nothing due. Whether it settled.
    pub fn settle(&mut self) -> bool {
        match self.settled_state() {
            Some(done) => {
                self.state = done;
                self.next_attempt = None;
                true
            }
            None => false,
        }
    }

    /// The print shop confirmed letters: a print-queued job whose every letter is printed is
    /// `printed`. Whether it became so.
    pub fn confirm_printed(&mut self) -> bool {
        let all_printed = self
            .recipients
            .iter()
            .filter_map(|rec| rec.letter.as_ref())
            .all(|l| l.printed_at.is_some());
        let printed = self.state == JobState::PrintQueued && all_printed;
        if printed {
            self.state = JobState::Printed;
        }
        printed
    }

    /// Records that `mark`'s alert is owed, once: the alert writer raises it
    /// (`kurir::ops::alert`), in this record's words, and notes it raised.
    pub fn mark(&mut self, mark: AlertMark) {
        if self.alerts.contains(&mark) {
            return;
        }
        if self.alerts_raised.is_none() {
            // A record from before 0.3: what it marked then was raised then.
            self.alerts_raised = Some(self.alerts.clone());
        }
        self.alerts.push(mark);
    }

    /// The alerts marked and not yet raised.
    pub fn owed_alerts(&self) -> Vec<AlertMark> {
        match &self.alerts_raised {
            None => Vec::new(),
            Some(raised) => self
                .alerts
                .iter()
                .filter(|mark| !raised.contains(mark))
                .copied()
                .collect(),
        }
    }

    /// Whether an alert is marked and not yet raised ([`JobRecord::owed_alerts`], without
    /// listing them: asked at every write).
    pub fn owes_alert(&self) -> bool {
        self.alerts_raised
            .as_ref()
            .is_some_and(|raised| self.alerts.iter().any(|mark| !raised.contains(mark)))
    }

    /// Notes `mark`'s alert raised; whether that changed anything.
    pub fn alert_raised(&mut self, mark: AlertMark) -> bool {
        // A record from before 0.3: what it marked then was raised then.
        let marked = self.alerts.clone();
        let raised = self.alerts_raised.get_or_insert(marked);
        if raised.contains(&mark) {
            return false;
        }
        raised.push(mark);
        true
    }

    /// Sends `codes` by post from now on: each recipient's channel becomes post, the job falls
    /// back and is due at once (its letters are made at its next turn, or in this one), and
    /// each recipient gets its fell-back alert mark — unless a person chose post
    /// (`chosen_by_person`), who needs no alert about their own choice. The one fall-back.
    pub fn fall_back_to_post(
        &mut self,
        codes: &[Kommunkod],
        now: Timestamp,
        chosen_by_person: bool,
    ) {
        self.state = JobState::FallenBack;
        self.next_attempt = Some(now);
        for rec in self
            .recipients
            .iter_mut()
            .filter(|r| codes.contains(&r.kommunkod))
        {
            rec.channel = Some(Channel::Post);
        }
        if !chosen_by_person {
            for code in codes {
                self.mark(AlertMark::recipient(AlertKind::FellBack, *code));
            }
        }
    }

    /// A job to Umeå (2480) by post in `state`, with nothing recorded yet: what unit tests
    /// start from (the daemon's tests too, so it is public; nothing else calls it).
    #[doc(hidden)]
    pub fn for_tests(state: JobState) -> JobRecord {
        let now = Timestamp::now();
        let mut record = JobRecord::received(JobId::generate(), "drop-1", now);
        record.state = state;
        record.to = "2480".parse().ok();
        record.recipients = vec![Recipient {
            kommunkod: "2480".parse().expect("code"),
            role: RecipientRole::Assigned,
            channel: Some(Channel::Post),
            letter: None,
            email: None,
        }];
        record.next_attempt = Some(now);
        record
    }
}

impl JobRecord {
    /// Any letter of this job was addressed to a registry office for want of an address.
    pub fn address_missing(&self) -> bool {
        self.recipients
            .iter()
            .any(|r| r.letter.as_ref().is_some_and(|l| l.address_missing))
    }

    /// The final state once every recipient is done: `delivered` when the assigned
    /// municipality got e-mail, `print-queued` when it got a letter. `None` while work remains.
    pub fn settled_state(&self) -> Option<JobState> {
        if self.recipients.is_empty() || !self.recipients.iter().all(Recipient::is_done) {
            return None;
        }
        let assigned_by_email = self.recipients[0]
            .email
            .as_ref()
            .is_some_and(EmailDelivery::holds);
        Some(if assigned_by_email {
            JobState::Delivered
        } else {
            JobState::PrintQueued
        })
    }

    /// The municipalities still waiting for e-mail, in recipient order.
    pub fn awaiting_email(&self) -> Vec<Kommunkod> {
        self.recipients
            .iter()
            .filter(|r| r.awaits_email())
            .map(|r| r.kommunkod)
            .collect()
    }

    /// The job's channel as one word: `post`, `email`, `mixed`, or `-` before routing.
    pub fn channel_summary(&self) -> &'static str {
        let mut channels = self.recipients.iter().filter_map(|r| r.channel);
        match channels.next() {
            None => "-",
            Some(first) if channels.all(|c| c == first) => first.as_str(),
            Some(_) => "mixed",
        }
    }
}

/// A proof deadline watched per e-mail recipient: a delivery report must confirm the message,
/// and a read notification say it was displayed, within `[proof]`'s working time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofDeadline {
    /// A confirming delivery report (`delivered` or `relayed`).
    Confirm,
    /// A read notification (`displayed`).
    Read,
}

impl ProofDeadline {
    /// The alert this deadline raises.
    pub fn alert(self) -> AlertKind {
        match self {
            ProofDeadline::Confirm => AlertKind::Unconfirmed,
            ProofDeadline::Read => AlertKind::Unread,
        }
    }

    /// The entry in [`JobRecord::alerts`] that says the alert for `code` was raised.
    pub fn mark(self, code: Kommunkod) -> AlertMark {
        AlertMark::recipient(self.alert(), code)
    }

    /// Whether this deadline of `email` still waits: reports were asked for, the message is
    /// with the municipality, the report has not come and the alert has not been raised.
    pub fn pending(self, job: &JobRecord, code: Kommunkod, email: &EmailDelivery) -> bool {
        let asked = email
            .accepted
            .as_ref()
            .is_some_and(|a| a.return_path.is_some());
        let missing = match self {
            ProofDeadline::Confirm => email.confirmation().is_none(),
            ProofDeadline::Read => email.read_notice().is_none(),
        };
        asked && email.holds() && missing && !job.alerts.contains(&self.mark(code))
    }
}

impl JobRecord {
    /// The alerts raised for this job whose cause still holds and that no person has
    /// acknowledged: what operations' and dispatch's alerts fire on for as long as they hold
    /// (the store indexes them). A job still undelivered keeps `deferred-too-long` open; a
    /// missing report keeps `unconfirmed` or `unread` open until it comes; a quarantined job
    /// keeps `quarantined` open until it is released or deleted; the rest (failed, fell back,
    /// a conflicting report) need a person, and stay open until acknowledged.
    pub fn open_alerts(&self) -> Vec<AlertMark> {
        let email_of = |code: Option<Kommunkod>| {
            self.recipients
                .iter()
                .find(|r| Some(r.kommunkod) == code)
                .and_then(|r| r.email.as_ref())
        };
        self.alerts
            .iter()
            .copied()
            .filter(|mark| !self.acknowledged.contains(mark))
            .filter(|mark| match mark.kind {
                AlertKind::DeferredTooLong => !self.state.is_final(),
                AlertKind::Quarantined => self.state == JobState::Quarantined,
                AlertKind::Unconfirmed => email_of(mark.kommunkod)
                    .is_some_and(|e| e.holds() && e.confirmation().is_none()),
                AlertKind::Unread => {
                    email_of(mark.kommunkod).is_some_and(|e| e.holds() && e.read_notice().is_none())
                }
                AlertKind::Failed
                | AlertKind::FellBack
                | AlertKind::ConflictingReport
                | AlertKind::ReportNamesAnotherAddress => true,
                // About a registration or a batch, not a job: never a job's mark.
                AlertKind::RegistrationChanged
                | AlertKind::ApprovalWaiting
                | AlertKind::CertificateExpiring
                | AlertKind::PrintNotConfirmed
                | AlertKind::ConnectionFailed
                | AlertKind::ServerCertificateExpiring => false,
            })
            .collect()
    }

    /// Final, and its receipt is not on disk yet, nor waits for a manifest (the store indexes
    /// such jobs).
    pub fn owes_receipt(&self) -> bool {
        self.state.is_final() && !self.receipt_written && !self.manifest_pending
    }

    /// A proof deadline of some e-mail recipient still waits (the store indexes such jobs).
    pub fn awaits_proof(&self) -> bool {
        self.recipients.iter().any(|r| {
            r.email.as_ref().is_some_and(|e| {
                [ProofDeadline::Confirm, ProofDeadline::Read]
                    .iter()
                    .any(|d| d.pending(self, r.kommunkod, e))
            })
        })
    }
}

/// One entry of a job's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened.
    pub at: Timestamp,
    /// The state the job entered (or stayed in).
    pub state: JobState,
    /// What happened, in English words (the audit chain's, and all an event written before
    /// 0.3 has).
    pub detail: String,
    /// What happened, as a value each surface words itself (absent in events written before
    /// 0.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what: Option<super::event::EventKind>,
}

#[cfg(test)]
mod smtp_reply_tests {
    use super::SmtpReply;

    #[test]
    fn replies_as_servers_and_lettre_word_them_are_read_as_codes() {
        let ok = SmtpReply::parse("250 2.0.0 Ok: queued as 4Xb1Lk2").expect("reply");
        assert_eq!((ok.code, ok.enhanced), (250, Some([2, 0, 0])));
        assert_eq!(ok.text, "Ok: queued as 4Xb1Lk2");
        assert!(ok.is_positive());
        let refused = SmtpReply::parse(
            "rejected permanently: permanent error (550): 5.1.1 <x@umea.test>: Recipient address rejected",
        )
        .expect("reply");
        assert_eq!((refused.code, refused.enhanced), (550, Some([5, 1, 1])));
        assert!(refused.is_permanent());
        let later = SmtpReply::parse("temporary failure: transient error (451): try again later")
            .expect("reply");
        assert_eq!((later.code, later.enhanced), (451, None));
        // No server said these.
        for words in [
            "cannot connect to the relay: Connection refused (os error 111)",
            "TLS failed, nothing was sent: certificate verify failed (unable to get issuer)",
            "no route",
            "",
        ] {
            assert_eq!(SmtpReply::parse(words), None, "{words}");
        }
        // An enhanced code of another class than the reply is text.
        let odd = SmtpReply::parse("250 5.0.0 odd").expect("reply");
        assert_eq!(
            (odd.enhanced, odd.to_string().as_str()),
            (None, "250 5.0.0 odd")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falling_back_sends_the_recipients_by_post_now_and_marks_each_once() {
        let code: Kommunkod = "2480".parse().expect("code");
        let mut job = JobRecord::for_tests(JobState::Deferred);
        job.recipients[0].channel = Some(Channel::Email);
        let now = Timestamp::now();
        job.fall_back_to_post(&[code], now, false);
        job.fall_back_to_post(&[code], now, false);
        assert_eq!(job.state, JobState::FallenBack);
        assert_eq!(job.next_attempt, Some(now));
        assert_eq!(job.recipients[0].channel, Some(Channel::Post));
        assert_eq!(
            job.alerts,
            vec![AlertMark::recipient(AlertKind::FellBack, code)]
        );
        // A person's own choice of post raises no alert about it.
        let mut chosen = JobRecord::for_tests(JobState::Queued);
        chosen.fall_back_to_post(&[code], now, true);
        assert_eq!(chosen.state, JobState::FallenBack);
        assert!(chosen.alerts.is_empty());
    }

    #[test]
    fn state_names_match_serde_and_cli() {
        for s in [
            JobState::FallenBack,
            JobState::PrintQueued,
            JobState::Quarantined,
        ] {
            let json = serde_json::to_string(&s).expect("serializes");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        assert!(JobState::PrintQueued.is_final());
        assert!(!JobState::Deferred.is_final());
    }
}
