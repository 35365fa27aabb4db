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

mod attempt;
pub mod operator;
pub mod policy;
pub mod print_shop;
pub mod shape;
mod turn;

pub use policy::{Deadlines, Policy};

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{watch, Notify, Semaphore};

use crate::config::QueueSettings;
use crate::deliver::mail::Mailer;
use crate::deliver::print::{PrintError, PrintQueue};
use crate::job::{JobId, Kommunkod};
use crate::receipt;
use crate::registry::Seed;
use crate::spool::Spool;
use crate::store::event::EventKind;
use crate::store::state::JobState;
use crate::store::{Store, StoreError};

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
    /// Where the queue's loop proves it is alive (health check, systemd watchdog).
    pub health: Arc<crate::ops::Health>,
    /// What time it is: which jobs are due, which deadline has passed.
    pub clock: Arc<dyn crate::clock::Clock>,
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
    policy: Policy,
    relay_slots: Arc<Semaphore>,
    job_slots: Arc<Semaphore>,
    health: Arc<crate::ops::Health>,
    clock: Arc<dyn crate::clock::Clock>,
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
                policy,
                relay_slots: Arc::new(Semaphore::new(queue.per_relay_connections)),
                job_slots: Arc::new(Semaphore::new(queue.max_concurrent_jobs)),
                health: parts.health,
                clock: parts.clock,
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
                    &EventKind::InterruptedWhileSending,
                    &[],
                    |r| r.defer(Timestamp::now()),
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
            let now = inner.clock.now();
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
                worker.finish_round(worker.clock.now(), &group);
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
        let what = EventKind::HandlingFailed {
            error: error.to_string(),
        };
        let retry = now + RETRY_AFTER_ERROR;
        let _ = self
            .store
            .transition_journaled(id, &[current], &what, |r| r.retry_after_error(retry));
    }
}
