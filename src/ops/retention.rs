//! Retention: the one place that decides what kurir removes, and when. Children's documents
//! must not stay longer than needed, and the spool must not grow without end; the store keeps
//! the facts (each document's and report's SHA-256, every event) for the audit trail.
//!
//! [`run_once`] is the entry point; the daemon calls it at start and a few times per
//! retention period.

use jiff::Timestamp;

use crate::spool::Spool;
use crate::store::state::JobState;
use crate::store::{Store, StoreError};

/// What one pass of retention removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    /// Finished jobs whose documents left `spool/active/`.
    pub documents: usize,
    /// Delivery reports and read notifications kept in `spool/inbound/`.
    pub reports: usize,
}

/// Removes everything older than `cutoff` that retention covers.
pub fn run_once(store: &Store, spool: &Spool, cutoff: Timestamp) -> Result<Removed, StoreError> {
    let reports = purge_reports(spool, cutoff);
    let documents = purge_documents(store, spool, cutoff)?;
    Ok(Removed { documents, reports })
}

/// Removes the documents of jobs that finished before `cutoff` from `spool/active/`, noting it
/// in each job's history (the receipt and the audit log keep the documents' SHA-256).
/// Quarantined jobs are not touched: they stay until an operator acts. Returns how many.
fn purge_documents(store: &Store, spool: &Spool, cutoff: Timestamp) -> Result<usize, StoreError> {
    let mut purged = 0;
    for (key, id) in store.finished_before(cutoff, 10_000)? {
        let Some(job) = store.get(&id)? else {
            store.forget_finished(&key)?;
            continue;
        };
        let dir = spool.active_job(&id);
        if job.state != JobState::Quarantined && dir.is_dir() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::error!(job_id = %id, error = %e, "documents could not be removed");
                continue;
            }
            store.transition(
                &id,
                &[job.state],
                "documents removed from the spool after the retention period; their SHA-256 stay in the receipt and the audit log",
                &[],
                |_| {},
            )?;
            purged += 1;
        }
        store.forget_finished(&key)?;
    }
    Ok(purged)
}

/// Removes kept reports (`inbound/done/`, `inbound/unmatched/`) older than `cutoff`, like the
/// documents they speak of: the job keeps each report's fields and SHA-256. Returns how many.
fn purge_reports(spool: &Spool, cutoff: Timestamp) -> usize {
    let cutoff = std::time::SystemTime::UNIX_EPOCH
        + std::time::Duration::from_millis(u64::try_from(cutoff.as_millisecond()).unwrap_or(0));
    let mut removed = 0;
    for dir in [spool.inbound_done(), spool.inbound_unmatched()] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < cutoff);
            if old && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}
