//! The queue manager: decides when each job is tried, when e-mail gives way to post, when
//! kurir gives up, and when a person is alerted — and hands jobs to the deliverers.
//!
//! The store's `due` index is the queue and every decision is recorded there, so a restart
//! resumes exactly where the last run stopped. A job moves to `sending` before any message
//! leaves, and every attempt's outcome is recorded (journaled: it survives a crash of the
//! process at once) before the next message may end its DATA, so a crash resends at most the
//! message in flight — with the same Message-ID.
//!
//! The queue's decisions run on the async workers and none of them waits for the disk or for a
//! sled transaction: each is journaled ([`Store::transition_journaled`]) and reaches sled and
//! the disk with the next group flush (receipts, intake, or a quiet second). Letters are
//! recorded lazily and flushed with their round, before the manifest and the receipts name
//! them.
//!
//! Policy, in order, for a due job:
//! 1. its municipality is on hold → `held`;
//! 2. older than `expire_after` → `failed`, alert;
//! 3. e-mail not done by `fallback_after` (working time) → letters instead, alert;
//! 4. the relay itself is failing → wait for the relay's next retry, do not hammer it;
//! 5. otherwise attempt e-mail (at most `per_relay_connections` at once), then make letters;
//! 6. not finished → `deferred` until the next retry (schedule with jitter), or the next
//!    deadline if that comes first; after `warn_after` of working time, alert once.

pub mod operator;
pub mod policy;
pub mod shape;

pub use policy::{Deadlines, Policy};

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{watch, Notify, Semaphore};

use crate::config::QueueSettings;
use crate::deliver::mail::{Mailer, Outcome};
use crate::deliver::print::{PrintError, PrintQueue};
use crate::job::{JobId, Kommunkod};
use crate::ops::alert::{AlertKind, Alerter};
use crate::receipt;
use crate::registry::Seed;
use crate::spool::Spool;
use crate::store::state::{
    AlertMark, AttemptOutcome, Channel, EmailAttempt, EmailDelivery, JobRecord, JobState,
};
use crate::store::{RelayHealth, Store, StoreError};

/// Most jobs taken from the store in one round.
const ROUND_SIZE: usize = 64;
/// Most turns whose print bookkeeping is done together (one flush, one directory sync).
const ROUND_GROUP: usize = 256;
/// How long a job waits after an unexpected error before it is tried again.
const RETRY_AFTER_ERROR: SignedDuration = SignedDuration::from_secs(60);
/// How often the queue looks at the store when nothing woke it.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// What the queue manager works with.
pub struct QueueParts {
    /// The store.
    pub store: Store,
    /// The spool (receipts).
    pub spool: Spool,
    /// The municipality list (receipts).
    pub seed: Arc<Seed>,
    /// The postal deliverer.
    pub print: PrintQueue,
    /// The e-mail deliverer; `None` when no relay is configured.
    pub mailer: Option<Arc<Mailer>>,
    /// Where alerts go.
    pub alerter: Arc<Alerter>,
    /// Where the queue's loop proves it is alive (health check, systemd watchdog).
    pub health: Arc<crate::ops::Health>,
}

/// The queue manager. Cheap to clone: everything is shared.
#[derive(Clone)]
pub struct QueueManager {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    spool: Spool,
    seed: Arc<Seed>,
    print: Arc<Mutex<PrintQueue>>,
    mailer: Option<Arc<Mailer>>,
    alerter: Arc<Alerter>,
    policy: Policy,
    relay_slots: Arc<Semaphore>,
    job_slots: Arc<Semaphore>,
    health: Arc<crate::ops::Health>,
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
    /// A worker task failed.
    #[error("worker task failed: {0}")]
    Task(String),
    /// Receipts could not be written.
    #[error(transparent)]
    Receipt(#[from] crate::receipt::ReceiptError),
}

/// What handling one job did.
struct Handled {
    made_letters: bool,
}

impl QueueManager {
    /// A queue manager with its deliverers, under `policy` and the `[queue]` limits.
    pub fn new(parts: QueueParts, policy: Policy, queue: &QueueSettings) -> Self {
        QueueManager {
            inner: Arc::new(Inner {
                store: parts.store,
                spool: parts.spool,
                seed: parts.seed,
                print: Arc::new(Mutex::new(parts.print)),
                mailer: parts.mailer,
                alerter: parts.alerter,
                policy,
                relay_slots: Arc::new(Semaphore::new(queue.per_relay_connections)),
                job_slots: Arc::new(Semaphore::new(queue.max_concurrent_jobs)),
                health: parts.health,
            }),
        }
    }

    /// Reconciles the open print batch and makes jobs that were `sending` when the last run
    /// stopped due again (their messages keep their Message-ID). Blocking: run before `run`.
    pub fn recover(&self) -> Result<usize, QueueError> {
        self.inner
            .print
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .recover()?;
        let mut n = 0;
        for job in self.inner.store.pending()? {
            if job.state == JobState::Sending {
                self.inner.store.transition(
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

    /// Runs until shutdown; `wake` is notified when intake queued something.
    ///
    /// A pipeline, not rounds: up to `max_concurrent_jobs` jobs are in hand at once, and a
    /// free slot is refilled from the due index as soon as a job is done, so no job waits for
    /// a slower one. Turns that made letters go to the print bookkeeping (`Inner::bookkeeper`),
    /// which brings the batch's manifest up to date in groups, off this loop; receipts are the
    /// receipt writer's ([`crate::receipt::run`]), woken by the store. At shutdown the jobs in
    /// hand are finished (the caller bounds how long that may take).
    pub async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let inner = &self.inner;
        let (finished_tx, finished_rx) = tokio::sync::mpsc::unbounded_channel();
        let bookkeeper = tokio::spawn(inner.clone().bookkeeper(finished_rx));
        let mut tasks = tokio::task::JoinSet::new();
        let mut in_hand: HashSet<JobId> = HashSet::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            inner.health.beat();
            let now = Timestamp::now();
            let free = inner.job_slots.available_permits();
            let mut started = 0;
            if free > 0 {
                match self.start_due(now, free, &mut in_hand, &mut tasks) {
                    Ok(n) => started = n,
                    Err(e) => tracing::error!(error = %e, "queue could not read the due jobs"),
                }
            }
            tokio::select! {
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Some(done) = inner.settle(joined, &mut in_hand) {
                        let _ = finished_tx.send(done);
                    }
                }
                _ = wake.notified(), if started == 0 => {}
                _ = tokio::time::sleep(IDLE_POLL), if started == 0 => {}
                _ = shutdown.changed() => {}
            }
        }
        while let Some(joined) = tasks.join_next().await {
            if let Some(done) = inner.settle(joined, &mut in_hand) {
                let _ = finished_tx.send(done);
            }
        }
        drop(finished_tx);
        if let Err(e) = bookkeeper.await {
            tracing::error!(error = %e, "print bookkeeping failed");
        }
    }

    /// Starts up to `free` due jobs that are not already in hand; returns how many.
    fn start_due(
        &self,
        now: Timestamp,
        free: usize,
        in_hand: &mut HashSet<JobId>,
        tasks: &mut tokio::task::JoinSet<Settled>,
    ) -> Result<usize, QueueError> {
        let inner = &self.inner;
        let due = inner.store.due_except(now, free, in_hand)?;
        if due.is_empty() {
            return Ok(0);
        }
        // Read at every start, so that a hold placed during a burst applies at once.
        let holds: Arc<HashSet<Kommunkod>> =
            Arc::new(inner.store.holds()?.into_iter().map(|(k, _)| k).collect());
        let mut n = 0;
        for job in due {
            let Ok(permit) = inner.job_slots.clone().try_acquire_owned() else {
                break;
            };
            n += 1;
            in_hand.insert(job.id.clone());
            let worker = inner.clone();
            let holds = holds.clone();
            tasks.spawn(async move {
                let (id, state) = (job.id.clone(), job.state);
                let result = worker.handle(job, now, &holds).await;
                drop(permit);
                Settled {
                    id,
                    state,
                    now,
                    result,
                }
            });
        }
        Ok(n)
    }

    /// Handles the jobs that are due at `now` (at most one batch), waits for all of them, does
    /// the print bookkeeping and writes the receipts owed; returns how many it looked at. `now` is the clock for every
    /// decision, so tests can drive deadlines without waiting. The daemon uses [`Self::run`].
    pub async fn round(&self, now: Timestamp) -> Result<usize, QueueError> {
        let inner = &self.inner;
        // Each due job at most once per round, even if it is due again at `now`.
        let mut seen = HashSet::new();
        let mut gone = HashSet::new();
        let mut tasks = tokio::task::JoinSet::new();
        let mut finished = Vec::new();
        let mut looked = 0;
        loop {
            let free = inner.job_slots.available_permits().min(ROUND_SIZE - looked);
            if free > 0 {
                looked += self.start_due(now, free, &mut seen, &mut tasks)?;
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let joined = joined.map_err(|e| QueueError::Task(e.to_string()))?;
            finished.extend(inner.settle(Ok(joined), &mut gone));
        }
        let worker = inner.clone();
        tokio::task::spawn_blocking(move || {
            worker.finish_round(now, &finished);
            receipt::write_owed(&worker.spool, &worker.store, &worker.seed)
        })
        .await
        .map_err(|e| QueueError::Task(e.to_string()))??;
        Ok(looked)
    }
}

/// A job's turn in the queue, as it ended.
struct Settled {
    id: JobId,
    state: JobState,
    now: Timestamp,
    result: Result<Handled, QueueError>,
}

/// A job whose turn made letters: its print batch needs its bookkeeping.
struct Finished {
    id: JobId,
}

impl Inner {
    /// Takes a job's ended turn off the books; what the print bookkeeping must know of it.
    fn settle(
        &self,
        joined: Result<Settled, tokio::task::JoinError>,
        in_hand: &mut HashSet<JobId>,
    ) -> Option<Finished> {
        let settled = match joined {
            Ok(s) => s,
            Err(e) => {
                // A panicked task: its job stays due and is found again by the due index.
                tracing::error!(error = %e, "a queue task failed");
                return None;
            }
        };
        in_hand.remove(&settled.id);
        match settled.result {
            Ok(handled) => handled.made_letters.then_some(Finished { id: settled.id }),
            Err(e) => {
                tracing::error!(job_id = %settled.id, error = %e, "handling the job failed; will retry");
                self.retry_after_error(&settled.id, settled.state, settled.now, &e.to_string());
                None
            }
        }
    }

    /// Print-batch bookkeeping for turns that made letters, in groups: one directory sync and
    /// one store flush per group rather than per job. Also closes a print batch of an earlier
    /// day when nothing happens. Ends when the queue loop has gone.
    async fn bookkeeper(
        self: Arc<Self>,
        mut finished: tokio::sync::mpsc::UnboundedReceiver<Finished>,
    ) {
        loop {
            let first = match tokio::time::timeout(IDLE_POLL, finished.recv()).await {
                Ok(Some(f)) => Some(f),
                Ok(None) => break,
                Err(_) => None,
            };
            let mut group: Vec<Finished> = first.into_iter().collect();
            while group.len() < ROUND_GROUP {
                match finished.try_recv() {
                    Ok(f) => group.push(f),
                    Err(_) => break,
                }
            }
            let worker = self.clone();
            let done = tokio::task::spawn_blocking(move || {
                worker.finish_round(Timestamp::now(), &group);
            })
            .await;
            if let Err(e) = done {
                tracing::error!(error = %e, "print bookkeeping task failed");
            }
        }
    }

    /// Brings the print batch up to date after a group of finished turns (manifest, and the
    /// close of a full batch or one of an earlier day). Errors are logged: the manifest is
    /// written again at the next round or start.
    fn finish_round(&self, now: Timestamp, group: &[Finished]) {
        let made: Vec<JobId> = group.iter().map(|f| f.id.clone()).collect();
        let bookkeeping = self
            .print
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .finish_round(now, &made);
        if let Err(e) = bookkeeping {
            tracing::error!(error = %e, "print batch bookkeeping failed");
        }
    }

    fn retry_after_error(
        &self,
        id: &crate::job::JobId,
        was: JobState,
        now: Timestamp,
        error: &str,
    ) {
        let current = self
            .store
            .get(id)
            .ok()
            .flatten()
            .map(|j| j.state)
            .unwrap_or(was);
        if current.is_final() || current == JobState::Held {
            return;
        }
        let detail = format!("handling failed: {error}; retrying");
        let retry = now + RETRY_AFTER_ERROR;
        let _ = self
            .store
            .transition_journaled(id, &[current], &detail, |r| {
                if r.state == JobState::Sending {
                    r.state = JobState::Deferred;
                }
                r.next_attempt = Some(retry);
            });
    }

    /// Applies the policy to one due job.
    async fn handle(
        &self,
        job: JobRecord,
        now: Timestamp,
        holds: &HashSet<Kommunkod>,
    ) -> Result<Handled, QueueError> {
        let mut job = job;
        if let Some(code) = job.to.filter(|c| holds.contains(c)) {
            self.store.transition_journaled(
                &job.id,
                &[job.state],
                &format!("held: kommun {code} is on hold"),
                |r| {
                    r.state = JobState::Held;
                    r.next_attempt = None;
                },
            )?;
            return Ok(Handled {
                made_letters: false,
            });
        }
        let deadlines = self.policy.deadlines(&job);
        if now >= deadlines.expire_at {
            return self.give_up(job);
        }
        if now >= deadlines.fallback_at && job.recipients.iter().any(|r| r.awaits_email()) {
            job = self.fall_back(job, "e-mail did not succeed before the fallback deadline")?;
        }
        if job.recipients.iter().any(|r| r.awaits_email()) {
            job = self.send_email(job, now).await?;
        }
        let mut made_letters = false;
        if job.recipients.iter().any(|r| r.awaits_letter()) {
            job = self.print_letters(job, now).await?;
            made_letters = true;
        }
        if let Some(done) = job.settled_state() {
            if job.state != done {
                // Made durable by the receipt writer's flush, before the receipt states it.
                job = self.store.transition_lazy(
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
        } else {
            self.defer(job, now, deadlines)?;
        }
        Ok(Handled { made_letters })
    }

    /// Expiry: nothing more is tried; operations must act.
    fn give_up(&self, job: JobRecord) -> Result<Handled, QueueError> {
        let waiting: Vec<String> = job
            .recipients
            .iter()
            .filter(|r| !r.is_done())
            .map(|r| r.kommunkod.to_string())
            .collect();
        let job = self.store.transition_journaled(
            &job.id,
            &[job.state],
            &format!(
                "expired: not delivered to {} in time; giving up",
                waiting.join(", ")
            ),
            |r| {
                r.state = JobState::Failed;
                r.next_attempt = None;
                r.alerts.push(AlertMark::job(AlertKind::Failed));
            },
        )?;
        let alert = self.alerter.compose(
            AlertKind::Failed,
            &job.id,
            job.to,
            format!(
                "the documents reached no route before the expiry deadline (still waiting: {})",
                waiting.join(", ")
            ),
            "kurir has stopped trying (state failed)".into(),
        );
        self.alerter.raise(alert);
        Ok(Handled {
            made_letters: false,
        })
    }

    /// Every recipient still waiting for e-mail gets a letter instead.
    fn fall_back(&self, job: JobRecord, why: &str) -> Result<JobRecord, QueueError> {
        let codes = job.awaiting_email();
        let job = self.store.transition_journaled(
            &job.id,
            &[job.state],
            &format!("{why}: falling back to post for {}", join(&codes)),
            |r| {
                r.state = JobState::FallenBack;
                for rec in r.recipients.iter_mut().filter(|x| x.awaits_email()) {
                    rec.channel = Some(Channel::Post);
                }
                r.alerts.push(AlertMark::job(AlertKind::FellBack));
            },
        )?;
        for code in codes {
            let alert = self.alerter.compose(
                AlertKind::FellBack,
                &job.id,
                Some(code),
                format!("e-mail to kommun {code} did not succeed: {why}"),
                "a letter is made for the postal print queue".into(),
            );
            self.alerter.raise(alert);
        }
        Ok(job)
    }

    /// Not finished: wait for the next retry, or the next deadline if that comes first.
    fn defer(&self, job: JobRecord, now: Timestamp, d: Deadlines) -> Result<JobRecord, QueueError> {
        let relay_retry = self.store.relay_health()?.retry_at.filter(|t| *t > now);
        let own_retry = now + self.policy.retry_delay(job.attempts.saturating_sub(1));
        // Never before the relay's own retry: all its jobs wait for it together.
        let mut next = relay_retry.map_or(own_retry, |t| t.max(own_retry));
        for deadline in [d.fallback_at, d.expire_at] {
            if deadline > now {
                next = next.min(deadline);
            }
        }
        let warned = job
            .alerts
            .iter()
            .any(|a| a.kind == AlertKind::DeferredTooLong);
        if !warned && d.warn_at > now {
            next = next.min(d.warn_at);
        }
        let raise_warning = !warned && now >= d.warn_at;
        let waiting = job.awaiting_email();
        let job = self.store.transition_journaled(
            &job.id,
            &[job.state],
            &format!(
                "deferred: e-mail to {} is tried again at {next}",
                join(&waiting)
            ),
            |r| {
                r.state = JobState::Deferred;
                r.next_attempt = Some(next);
                if raise_warning {
                    r.alerts.push(AlertMark::job(AlertKind::DeferredTooLong));
                }
            },
        )?;
        tracing::info!(job_id = %job.id, next_attempt = %next, "job deferred");
        if raise_warning {
            let last = job
                .recipients
                .iter()
                .filter_map(|r| r.email.as_ref())
                .filter_map(|e| e.attempts.last())
                .map(|a| a.reply.clone())
                .next_back()
                .unwrap_or_else(|| "not tried yet".into());
            let alert = self.alerter.compose(
                AlertKind::DeferredTooLong,
                &job.id,
                waiting.first().copied().or(job.to),
                format!("e-mail is still not delivered; last attempt: {last}"),
                format!(
                    "next attempt at {next}; letters instead from {} if e-mail has not succeeded",
                    d.fallback_at
                ),
            );
            self.alerter.raise(alert);
        }
        Ok(job)
    }

    async fn print_letters(&self, job: JobRecord, now: Timestamp) -> Result<JobRecord, QueueError> {
        // PDF work is blocking; one print queue, used by one job at a time (batch consistency).
        let print = self.print.clone();
        let job = tokio::task::spawn_blocking(move || {
            print
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .print_job(&job, now)
        })
        .await
        .map_err(|e| QueueError::Task(e.to_string()))??;
        tracing::info!(job_id = %job.id, "letters queued for print");
        Ok(job)
    }

    /// Attempts every recipient that awaits e-mail, recording each outcome at once.
    async fn send_email(&self, job: JobRecord, now: Timestamp) -> Result<JobRecord, QueueError> {
        let Some(mailer) = &self.mailer else {
            return self.fall_back(job, "no SMTP relay is configured any more");
        };
        let health = self.store.relay_health()?;
        if let Some(retry_at) = health.retry_at.filter(|t| *t > now) {
            // The relay itself is failing: wait for its retry instead of hammering it.
            tracing::debug!(job_id = %job.id, %retry_at, "relay unavailable; not tried");
            return Ok(job);
        }
        let permit = self
            .relay_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| QueueError::Task(e.to_string()))?;
        // Journaled, not flushed: the outcome's record below follows it in the journal, so a
        // start after a crash replays both in order.
        let mut job = self.store.transition_journaled(
            &job.id,
            &[JobState::Queued, JobState::Deferred, JobState::FallenBack],
            &format!("sending through {}", mailer.relay()),
            |r| {
                r.state = JobState::Sending;
                r.attempts += 1;
            },
        )?;
        let codes = job.awaiting_email();
        for code in codes {
            let attempted = mailer.attempt(&job, code).await;
            self.note_relay_health(&attempted.outcome, now)?;
            // Journaled (one write(2), no wait for the disk): it survives a crash of kurir
            // from here on, so the next message may end its DATA.
            job = self.record(&job, code, attempted.outcome, attempted.message_id)?;
            drop(attempted.commit);
        }
        drop(permit);
        Ok(job)
    }

    /// Tracks failures of the relay itself in the store, so all its jobs back off together.
    fn note_relay_health(&self, outcome: &Outcome, now: Timestamp) -> Result<(), StoreError> {
        let mut health = self.store.relay_health()?;
        match outcome {
            Outcome::Deferred {
                relay: true,
                reason,
                ..
            } => {
                health.failures += 1;
                let wait = self.policy.retry_delay(health.failures - 1);
                health.retry_at = Some(now + wait);
                health.last_error = Some(reason.clone());
                tracing::warn!(failures = health.failures, retry_at = %now.saturating_add(wait).unwrap_or(now), "relay failing; all e-mail waits");
                self.store.set_relay_health(&health)
            }
            Outcome::Accepted(_)
            | Outcome::Rejected { .. }
            | Outcome::Deferred { relay: false, .. }
                if health != RelayHealth::default() =>
            {
                self.store.set_relay_health(&RelayHealth::default())
            }
            _ => Ok(()),
        }
    }

    /// Records one attempt's outcome on the job.
    fn record(
        &self,
        job: &JobRecord,
        code: Kommunkod,
        outcome: Outcome,
        message_id: Option<String>,
    ) -> Result<JobRecord, QueueError> {
        let now = Timestamp::now();
        let attempt = |address: &str, outcome: AttemptOutcome, reply: &str| EmailAttempt {
            at: now,
            address: address.to_string(),
            outcome,
            reply: reply.to_string(),
        };
        let class = match &outcome {
            Outcome::Accepted(_) => Some(("2xx", false)),
            Outcome::Deferred { tls: true, .. } => Some(("tls", true)),
            Outcome::Deferred { relay: true, .. } => Some(("connection", false)),
            Outcome::Deferred { .. } => Some(("4xx", false)),
            Outcome::Rejected { .. } => Some(("5xx", false)),
            Outcome::Unknown { .. } => Some(("unknown", false)),
            Outcome::NoRoute(_) | Outcome::Failed(_) => None,
        };
        if let Some((class, tls)) = class {
            crate::ops::smtp_outcome(class, tls);
        }
        let (attempt, detail, fall_back) = match &outcome {
            Outcome::Accepted(proof) => {
                tracing::info!(job_id = %job.id, kommunkod = %code, reply = %proof.reply, "e-mail accepted");
                (
                    attempt(&proof.address, AttemptOutcome::Accepted, &proof.reply),
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
                ..
            } => {
                tracing::warn!(job_id = %job.id, kommunkod = %code, tls_failure = tls, reason = %reason, "e-mail deferred");
                (
                    attempt(address, AttemptOutcome::Deferred, reason),
                    format!("{code}: e-mail deferred: {reason}"),
                    false,
                )
            }
            Outcome::Unknown { address, reason } => {
                tracing::warn!(job_id = %job.id, kommunkod = %code, reason = %reason, "e-mail delivery unknown");
                (
                    attempt(address, AttemptOutcome::Unknown, reason),
                    format!(
                        "{code}: delivery unknown, will resend with the same Message-ID: {reason}"
                    ),
                    false,
                )
            }
            Outcome::Rejected { address, reply } => {
                tracing::warn!(job_id = %job.id, kommunkod = %code, reply = %reply, "e-mail rejected permanently; falling back to post");
                (
                    attempt(address, AttemptOutcome::Rejected, reply),
                    format!("{code}: e-mail rejected permanently ({reply}); falling back to post"),
                    true,
                )
            }
            Outcome::NoRoute(reason) => (
                attempt("", AttemptOutcome::NoRoute, reason.describe()),
                format!("{code}: {}; falling back to post", reason.describe()),
                true,
            ),
            Outcome::Failed(reason) => {
                tracing::error!(job_id = %job.id, kommunkod = %code, reason = %reason, "message could not be composed");
                (
                    attempt("", AttemptOutcome::Deferred, reason),
                    format!("{code}: message could not be composed: {reason}"),
                    false,
                )
            }
        };
        let record = self
            .store
            .transition_journaled(&job.id, &[job.state], &detail, |r| {
                if fall_back {
                    r.state = JobState::FallenBack;
                    r.alerts.push(AlertMark::job(AlertKind::FellBack));
                }
                if matches!(outcome, Outcome::Unknown { .. }) {
                    r.unknown_deliveries += 1;
                }
                if let Some(rec) = r.recipients.iter_mut().find(|x| x.kommunkod == code) {
                    let delivery = rec.email.get_or_insert_with(|| EmailDelivery {
                        message_id: String::new(),
                        attempts: Vec::new(),
                        accepted: None,
                        rejected: None,
                        reports: Vec::new(),
                    });
                    if let Some(id) = &message_id {
                        delivery.message_id.clone_from(id);
                    }
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
                // The last recipient done finishes the job in the same step.
                if let Some(done) = r.settled_state() {
                    r.state = done;
                    r.next_attempt = None;
                }
            })?;
        if fall_back {
            let alert = self.alerter.compose(
                AlertKind::FellBack,
                &record.id,
                Some(code),
                detail.clone(),
                "a letter is made for the postal print queue".into(),
            );
            self.alerter.raise(alert);
        }
        Ok(record)
    }
}

fn join(codes: &[Kommunkod]) -> String {
    codes
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
