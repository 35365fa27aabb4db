//! The queue manager: reads due jobs from the store and hands each to its deliverer.
//!
//! The store's `due` index is the queue; nothing is kept only in memory, so a restart resumes
//! where the last run stopped. Deliverers do blocking work (PDF, files), so a round runs on the
//! blocking pool and the async runtime stays free for the control socket and signals.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{watch, Notify};

use crate::print::{PrintError, PrintQueue};
use crate::receipt;
use crate::registry::Seed;
use crate::spool::Spool;
use crate::state::{Channel, JobRecord, JobState};
use crate::store::{Store, StoreError};

/// Most jobs handled in one round before the batch bookkeeping runs.
const ROUND_SIZE: usize = 64;
/// How long a job waits after an unexpected delivery error before it is tried again.
const RETRY_AFTER_ERROR: SignedDuration = SignedDuration::from_secs(60);
/// How often the queue looks at the store when nothing woke it.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// The queue manager's parts.
pub struct QueueManager {
    store: Store,
    spool: Spool,
    seed: Arc<Seed>,
    print: PrintQueue,
}

impl QueueManager {
    /// A queue manager with its deliverers.
    pub fn new(store: Store, spool: Spool, seed: Arc<Seed>, print: PrintQueue) -> Self {
        QueueManager {
            store,
            spool,
            seed,
            print,
        }
    }

    /// Runs rounds until shutdown; `wake` is notified when intake queued something.
    pub async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        loop {
            if *shutdown.borrow() {
                break;
            }
            let worker = this.clone();
            let handled =
                match tokio::task::spawn_blocking(move || worker.round(Timestamp::now())).await {
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "queue round failed");
                        0
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "queue round panicked");
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

    /// Delivers the jobs that are due now; returns how many it looked at. Receipts are issued
    /// after the round's batch bookkeeping, so a receipt never names a letter that the batch
    /// manifest does not list yet.
    pub fn round(&self, now: Timestamp) -> Result<usize, StoreError> {
        let due = self.store.due(now, ROUND_SIZE)?;
        let mut finished = Vec::new();
        for job in &due {
            match self.deliver(job, now) {
                Ok(record) => finished.push(record),
                Err(e) => {
                    tracing::error!(job_id = %job.id, error = %e, "delivery attempt failed; will retry");
                    let detail = format!("attempt failed: {e}; retrying");
                    let retry = now + RETRY_AFTER_ERROR;
                    let _ = self
                        .store
                        .transition(&job.id, &[job.state], &detail, &[], |r| {
                            r.next_attempt = Some(retry);
                        });
                }
            }
        }
        if let Err(e) = self.print.finish_round(now, !finished.is_empty()) {
            tracing::error!(error = %e, "print batch bookkeeping failed");
        }
        for record in finished {
            if let Err(e) = receipt::issue(&self.spool, &self.store, &self.seed, &record.id) {
                // The job stays pending; the receipt is written again at the next start.
                tracing::error!(job_id = %record.id, error = %e, "receipt could not be written");
            }
        }
        Ok(due.len())
    }

    /// Hands one job to its deliverer; returns the job as recorded after delivery.
    fn deliver(&self, job: &JobRecord, now: Timestamp) -> Result<JobRecord, DeliverError> {
        let all_post = job
            .recipients
            .iter()
            .all(|r| r.channel == Some(Channel::Post));
        match job.state {
            JobState::Queued | JobState::FallenBack if all_post => {
                let record = self.print.print_job(job, now)?;
                tracing::info!(job_id = %record.id, "letters queued for print");
                Ok(record)
            }
            _ => Err(DeliverError::NoDeliverer(job.state)),
        }
    }
}

/// Why a delivery attempt failed unexpectedly.
#[derive(Debug, thiserror::Error)]
enum DeliverError {
    #[error(transparent)]
    Print(#[from] PrintError),
    #[error("no deliverer for a job in state {0} with these channels")]
    NoDeliverer(JobState),
}
