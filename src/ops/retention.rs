//! Retention: the one place that decides what kurir removes, and when. Children's documents
//! must not stay longer than needed, and the spool must not grow without end; the store keeps
//! the facts (each document's and report's SHA-256, every event) for the audit trail.
//!
//! [`run_once`] is the entry point; the daemon calls it at start and a few times per
//! retention period. It covers documents (`spool/active/`), delivery reports
//! (`spool/inbound/`), receipts, alert files and confirmed print batches — never a file that
//! something still needs: an owed receipt, the alert of an unfinished job, a batch the print
//! shop has not confirmed — and the dispatch desk's drafts nobody sent within the hour.

use jiff::Timestamp;

use crate::job::JobId;
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
    /// Receipts in `spool/receipts/`.
    pub receipts: usize,
    /// Alert files in `spool/alerts/`.
    pub alerts: usize,
    /// Confirmed print batches in `spool/print/`.
    pub batches: usize,
    /// Drafts of the dispatch desk nobody sent ([`crate::spool::DRAFT_LIFETIME`]).
    pub drafts: usize,
}

/// The instant before which each kind of file goes (`[retention]`, counted back from now).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Finished jobs' documents.
    pub documents: Timestamp,
    /// Delivery reports.
    pub reports: Timestamp,
    /// Receipts.
    pub receipts: Timestamp,
    /// Alert files.
    pub alerts: Timestamp,
    /// Print batches, from their confirmation.
    pub print: Timestamp,
}

impl Cutoffs {
    /// The cutoffs of `settings` as of `now`.
    pub fn of(settings: &crate::config::RetentionSettings, now: Timestamp) -> Cutoffs {
        let back = |keep: std::time::Duration| {
            jiff::SignedDuration::try_from(keep)
                .ok()
                .and_then(|d| now.checked_sub(d).ok())
                .unwrap_or(Timestamp::MIN)
        };
        Cutoffs {
            documents: back(settings.documents_after),
            reports: back(settings.reports_after),
            receipts: back(settings.receipts_after),
            alerts: back(settings.alerts_after),
            print: back(settings.print_after),
        }
    }
}

/// Removes everything retention covers that is older than its cutoff.
pub fn run_once(store: &Store, spool: &Spool, cutoffs: Cutoffs) -> Result<Removed, StoreError> {
    // First: it needs no store, so a failing store does not keep drafts forever.
    let drafts = spool.sweep_drafts();
    Ok(Removed {
        reports: remove_files_older(
            &[spool.inbound_done(), spool.inbound_unmatched()],
            cutoffs.reports,
            |_| true,
        ),
        documents: purge_documents(store, spool, cutoffs.documents)?,
        receipts: remove_files_older(&[spool.receipts()], cutoffs.receipts, |name| {
            receipt_settled(store, name)
        }),
        alerts: remove_files_older(&[spool.alerts()], cutoffs.alerts, |name| {
            alert_settled(store, name)
        }),
        batches: purge_batches(store, spool, cutoffs.print)?,
        drafts,
    })
}

/// A receipt may go once its job owes no newer one (a newer event would write it again).
fn receipt_settled(store: &Store, name: &str) -> bool {
    let Some(id) = name
        .strip_suffix(".json")
        .and_then(|i| i.parse::<JobId>().ok())
    else {
        return false;
    };
    matches!(store.get(&id), Ok(Some(job)) if job.state.is_final() && job.receipt_written)
}

/// An alert file may go once the job is finished and settled (a job's alert is raised once,
/// and not again when its file is gone), a batch's once the batch is confirmed; a
/// registration's any time.
fn alert_settled(store: &Store, name: &str) -> bool {
    if let Some(rest) = name.strip_prefix("print-") {
        let batch = rest.split('-').take(2).collect::<Vec<_>>().join("-");
        return matches!(store.batch(&batch), Ok(Some(b)) if b.confirmed.is_some());
    }
    if name.starts_with("registry-") {
        return true;
    }
    let Some(id) = name.get(..JOB_ID_LEN).and_then(|i| i.parse::<JobId>().ok()) else {
        return false;
    };
    matches!(store.get(&id), Ok(Some(job)) if job.state.is_final() && job.receipt_written)
}

/// The length of a job id (`YYYYMMDD-HHMMSS-` and 12 hex digits), which alert files begin with.
const JOB_ID_LEN: usize = 28;

/// Removes the folders of print batches the print shop confirmed before `cutoff`, and notes
/// it on each batch (the store keeps every letter's SHA-256 and address). Returns how many.
fn purge_batches(store: &Store, spool: &Spool, cutoff: Timestamp) -> Result<usize, StoreError> {
    let mut removed = 0;
    for batch in store.batches()? {
        let confirmed_before = batch.confirmed.as_ref().is_some_and(|c| c.at < cutoff);
        let dir = spool.print().join(&batch.id);
        if !confirmed_before || batch.files_removed_at.is_some() {
            continue;
        }
        if dir.is_dir() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::error!(batch = %batch.id, error = %e, "print batch could not be removed");
                continue;
            }
        }
        store.note_batch_removed(&batch.id, Timestamp::now())?;
        removed += 1;
    }
    Ok(removed)
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
                &crate::store::event::EventKind::DocumentsRemoved,
                &[],
                |_| {},
            )?;
            purged += 1;
        }
        store.forget_finished(&key)?;
    }
    Ok(purged)
}

/// Removes the plain files in `dirs` last changed before `cutoff` whose name `may_go`
/// allows. Returns how many.
fn remove_files_older(
    dirs: &[std::path::PathBuf],
    cutoff: Timestamp,
    may_go: impl Fn(&str) -> bool,
) -> usize {
    let cutoff = std::time::SystemTime::UNIX_EPOCH
        + std::time::Duration::from_millis(u64::try_from(cutoff.as_millisecond()).unwrap_or(0));
    let mut removed = 0;
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let old = std::fs::symlink_metadata(entry.path())
                .and_then(|m| {
                    if m.is_file() {
                        m.modified()
                    } else {
                        Err(std::io::ErrorKind::Other.into())
                    }
                })
                .is_ok_and(|t| t < cutoff);
            let name = entry.file_name().to_string_lossy().into_owned();
            if old && may_go(&name) && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}
