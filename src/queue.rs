//! The queue manager: reads due jobs from the store and hands each to its deliverers.
//!
//! The store's `due` index is the queue; nothing is kept only in memory, so a restart resumes
//! where the last run stopped. A job with e-mail recipients moves to `sending` (durably) before
//! any message leaves, and every attempt's outcome is recorded before the next one starts, so
//! a crash resends at most the message in flight — with the same Message-ID. Letters are made
//! on the blocking pool; receipts are issued after the round's batch bookkeeping.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{watch, Notify};

use crate::job::Kommunkod;
use crate::mail::{Mailer, Outcome};
use crate::print::{PrintError, PrintQueue};
use crate::receipt;
use crate::registry::Seed;
use crate::spool::Spool;
use crate::state::{Channel, EmailAttempt, EmailDelivery, JobRecord, JobState};
use crate::store::{Store, StoreError};

/// Most jobs handled in one round before the batch bookkeeping runs.
const ROUND_SIZE: usize = 64;
/// How long a job waits after an unexpected error before it is tried again.
const RETRY_AFTER_ERROR: SignedDuration = SignedDuration::from_secs(60);
/// How often the queue looks at the store when nothing woke it.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// The queue manager's parts.
pub struct QueueManager {
    store: Store,
    spool: Spool,
    seed: Arc<Seed>,
    print: Arc<PrintQueue>,
    mailer: Option<Arc<Mailer>>,
    retry_interval: SignedDuration,
}

/// Why handling a job failed unexpectedly (not a delivery outcome: those are recorded).
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Making letters failed.
    #[error(transparent)]
    Print(#[from] PrintError),
    /// A blocking task failed.
    #[error("worker task failed: {0}")]
    Task(String),
}

impl QueueManager {
    /// A queue manager with its deliverers; `mailer` is `None` when no relay is configured.
    pub fn new(
        store: Store,
        spool: Spool,
        seed: Arc<Seed>,
        print: PrintQueue,
        mailer: Option<Arc<Mailer>>,
        retry_interval: Duration,
    ) -> Self {
        QueueManager {
            store,
            spool,
            seed,
            print: Arc::new(print),
            mailer,
            retry_interval: SignedDuration::try_from(retry_interval)
                .unwrap_or(SignedDuration::from_secs(300)),
        }
    }

    /// The print deliverer (for start-up reconciliation).
    pub fn print(&self) -> &PrintQueue {
        &self.print
    }

    /// Jobs that were `sending` when the last run stopped are due again now (their messages
    /// keep their Message-ID, so a receiver can discard a duplicate).
    pub fn recover(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for job in self.store.pending()? {
            if job.state == JobState::Sending {
                self.store.transition(
                    &job.id,
                    &[JobState::Sending],
                    "interrupted while sending; will try again",
                    &[],
                    |r| {
                        r.state = JobState::Deferred;
                        r.next_attempt = Some(Timestamp::now());
                    },
                )?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Runs rounds until shutdown; `wake` is notified when intake queued something.
    pub async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            let handled = match self.round(Timestamp::now()).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "queue round failed");
                    0
                }
            };
            if handled < ROUND_SIZE {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }

    /// Handles the jobs that are due now; returns how many it looked at.
    pub async fn round(&self, now: Timestamp) -> Result<usize, QueueError> {
        let due = self.store.due(now, ROUND_SIZE)?;
        let mut finished = Vec::new();
        let mut printed = false;
        for job in &due {
            match self.process(job.clone(), now).await {
                Ok((record, made_letters)) => {
                    printed |= made_letters;
                    if record.state.is_final() {
                        finished.push(record.id);
                    }
                }
                Err(e) => {
                    tracing::error!(job_id = %job.id, error = %e, "handling the job failed; will retry");
                    let detail = format!("handling failed: {e}; retrying");
                    let retry = now + RETRY_AFTER_ERROR;
                    let current = self
                        .store
                        .get(&job.id)?
                        .map(|j| j.state)
                        .unwrap_or(job.state);
                    if !current.is_final() {
                        let _ = self
                            .store
                            .transition(&job.id, &[current], &detail, &[], |r| {
                                if r.state == JobState::Sending {
                                    r.state = JobState::Deferred;
                                }
                                r.next_attempt = Some(retry);
                            });
                    }
                }
            }
        }
        let print = self.print.clone();
        let bookkeeping =
            tokio::task::spawn_blocking(move || print.finish_round(now, printed)).await;
        match bookkeeping {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "print batch bookkeeping failed"),
            Err(e) => tracing::error!(error = %e, "print batch bookkeeping task failed"),
        }
        for id in finished {
            if let Err(e) = receipt::issue(&self.spool, &self.store, &self.seed, &id) {
                // The job stays pending; the receipt is written again at the next start.
                tracing::error!(job_id = %id, error = %e, "receipt could not be written");
            }
        }
        Ok(due.len())
    }

    /// One job: e-mail recipients first, then letters, then the job's resulting state.
    /// Returns the job as recorded and whether letters were made.
    async fn process(
        &self,
        job: JobRecord,
        now: Timestamp,
    ) -> Result<(JobRecord, bool), QueueError> {
        let mut job = job;
        if job.recipients.iter().any(|r| r.awaits_email()) {
            job = self.send_email(job).await?;
        }
        let mut made_letters = false;
        if job.recipients.iter().any(|r| r.awaits_letter()) {
            let print = self.print.clone();
            let pending = job.clone();
            job = tokio::task::spawn_blocking(move || print.print_job(&pending, now))
                .await
                .map_err(|e| QueueError::Task(e.to_string()))??;
            made_letters = true;
            tracing::info!(job_id = %job.id, "letters queued for print");
        }
        if let Some(done) = job.settled_state() {
            if job.state != done {
                job = self.store.transition(
                    &job.id,
                    &[job.state],
                    "all recipients have their documents",
                    &[],
                    |r| {
                        r.state = done;
                        r.next_attempt = None;
                    },
                )?;
            }
            tracing::info!(job_id = %job.id, state = %job.state, "job finished");
        } else if job.state != JobState::Deferred || job.next_attempt.is_none_or(|t| t <= now) {
            let retry = Timestamp::now() + self.retry_interval;
            let waiting: Vec<String> = job
                .recipients
                .iter()
                .filter(|r| r.awaits_email())
                .map(|r| r.kommunkod.to_string())
                .collect();
            job = self.store.transition(
                &job.id,
                &[job.state],
                &format!(
                    "deferred: e-mail to {} will be tried again at {retry}",
                    waiting.join(", ")
                ),
                &[],
                |r| {
                    r.state = JobState::Deferred;
                    r.next_attempt = Some(retry);
                },
            )?;
            tracing::warn!(job_id = %job.id, next_attempt = %retry, "job deferred");
        }
        Ok((job, made_letters))
    }

    /// Attempts every recipient that awaits e-mail, recording each outcome at once.
    async fn send_email(&self, job: JobRecord) -> Result<JobRecord, QueueError> {
        let Some(mailer) = &self.mailer else {
            // The relay was removed from the configuration: post is the only route left.
            return Ok(self.store.transition(
                &job.id,
                &[job.state],
                "no SMTP relay configured any more: falling back to post",
                &[],
                |r| {
                    r.state = JobState::FallenBack;
                    for rec in r.recipients.iter_mut().filter(|x| x.awaits_email()) {
                        rec.channel = Some(Channel::Post);
                    }
                },
            )?);
        };
        let mut job = self.store.transition(
            &job.id,
            &[JobState::Queued, JobState::Deferred, JobState::FallenBack],
            &format!("sending through {}", mailer.relay()),
            &[],
            |r| {
                r.state = JobState::Sending;
                r.attempts += 1;
            },
        )?;
        let codes: Vec<Kommunkod> = job
            .recipients
            .iter()
            .filter(|r| r.awaits_email())
            .map(|r| r.kommunkod)
            .collect();
        for code in codes {
            let outcome = mailer.attempt(&job, code).await;
            job = self.record(&job, code, outcome)?;
        }
        Ok(job)
    }

    /// Records one attempt's outcome on the job.
    fn record(
        &self,
        job: &JobRecord,
        code: Kommunkod,
        outcome: Outcome,
    ) -> Result<JobRecord, StoreError> {
        let now = Timestamp::now();
        let message_id = crate::compose::message_id(
            self.mailer
                .as_ref()
                .map(|m| m.from_address())
                .unwrap_or("kurir@invalid"),
            &job.id,
            code,
        );
        let (attempt, detail, fall_back) = match &outcome {
            Outcome::Accepted(proof) => {
                tracing::info!(job_id = %job.id, kommunkod = %code, reply = %proof.reply, "e-mail accepted");
                (
                    EmailAttempt {
                        at: now,
                        address: proof.address.clone(),
                        outcome: "accepted".into(),
                        reply: proof.reply.clone(),
                    },
                    format!(
                        "{code}: e-mail accepted by {} over {}: {}",
                        proof.relay, proof.tls_version, proof.reply
                    ),
                    false,
                )
            }
            Outcome::Deferred {
                address,
                reason,
                tls,
            } => {
                tracing::warn!(job_id = %job.id, kommunkod = %code, tls_failure = tls, reason = %reason, "e-mail deferred");
                (
                    EmailAttempt {
                        at: now,
                        address: address.clone(),
                        outcome: "deferred".into(),
                        reply: reason.clone(),
                    },
                    format!("{code}: e-mail deferred: {reason}"),
                    false,
                )
            }
            Outcome::Unknown { address, reason } => {
                tracing::warn!(job_id = %job.id, kommunkod = %code, reason = %reason, "e-mail delivery unknown");
                (
                    EmailAttempt {
                        at: now,
                        address: address.clone(),
                        outcome: "unknown".into(),
                        reply: reason.clone(),
                    },
                    format!(
                        "{code}: delivery unknown, will resend with the same Message-ID: {reason}"
                    ),
                    false,
                )
            }
            Outcome::Rejected { address, reply } => {
                tracing::warn!(job_id = %job.id, kommunkod = %code, reply = %reply, "e-mail rejected permanently; falling back to post");
                (
                    EmailAttempt {
                        at: now,
                        address: address.clone(),
                        outcome: "rejected".into(),
                        reply: reply.clone(),
                    },
                    format!("{code}: e-mail rejected permanently ({reply}); falling back to post"),
                    true,
                )
            }
            Outcome::NoRoute(reason) => (
                EmailAttempt {
                    at: now,
                    address: String::new(),
                    outcome: "no-route".into(),
                    reply: reason.clone(),
                },
                format!("{code}: {reason}; falling back to post"),
                true,
            ),
            Outcome::Failed(reason) => {
                tracing::error!(job_id = %job.id, kommunkod = %code, reason = %reason, "message could not be composed");
                (
                    EmailAttempt {
                        at: now,
                        address: String::new(),
                        outcome: "deferred".into(),
                        reply: reason.clone(),
                    },
                    format!("{code}: message could not be composed: {reason}"),
                    false,
                )
            }
        };
        self.store
            .transition(&job.id, &[job.state], &detail, &[], |r| {
                if fall_back {
                    r.state = JobState::FallenBack;
                }
                if let Some(rec) = r.recipients.iter_mut().find(|x| x.kommunkod == code) {
                    let delivery = rec.email.get_or_insert_with(|| EmailDelivery {
                        message_id: message_id.clone(),
                        attempts: Vec::new(),
                        accepted: None,
                        rejected: None,
                    });
                    delivery.attempts.push(attempt.clone());
                    match &outcome {
                        Outcome::Accepted(proof) => delivery.accepted = Some((**proof).clone()),
                        Outcome::Rejected { reply, .. } => {
                            delivery.rejected = Some(reply.clone());
                            rec.channel = Some(Channel::Post);
                        }
                        Outcome::NoRoute(_) => rec.channel = Some(Channel::Post),
                        _ => {}
                    }
                }
            })
    }
}
