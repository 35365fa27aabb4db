//! The job store: sled, the single source of truth for what happened to every job.
//!
//! Each public call is one sled transaction across the trees it touches, followed by a flush,
//! because sled commits are durable only after `flush` (see FIELD-NOTES.md): when a call returns
//! `Ok`, the fact survives `kill -9`. The exceptions say so: `*_lazy` calls are durable at the
//! next flush (for steps that are redone after a crash), and [`Store::transition_journaled`]
//! is durable against a crash of the process at once, through the write-ahead
//! [`crate::store::journal`], and against a power cut at the next flush. A journaled change is kept
//! in memory until then and every read here sees it (`get`, `events`, `due`, `list`,
//! `pending`); the flush writes all of them into sled in one transaction, and a sled
//! transition of the same job writes them first. Opening the store replays what the journal
//! holds. Values are JSON with a format version, so the format can
//! evolve without a migration tool.
//!
//! Trees:
//! - `jobs`: job id → [`JobRecord`]
//! - `events`: job id, NUL, sequence (u32 BE) → [`Event`]
//! - `due`: next attempt (ms, u64 BE), job id → job id — what the scheduler reads; it holds
//!   only scheduled jobs, so start-up never scans history
//! - `pending`: job id → () for every job with work left (not final, or receipt not written)
//! - `letters`: batch id, NUL, letter file → [`LetterRow`]
//! - `batches`: batch id → [`BatchRecord`]; `meta`: `open_batch` → batch id
//! - `registry`: kommunkod → [`Registered`]; `registry_history`: kommunkod, NUL, time → change
//! - `audit`: sequence (u64 BE) → [`audit::AuditEntry`], a hash chain written in the same transaction
//!   as the change it records
//! - `finished`: finish time (ms, u64 BE), job id → job id — what retention reads
//! - `receipts_owed`: job id → () for every final job whose receipt is not written yet —
//!   what the receipt writer reads
//! - `notices`: sequence (u64 BE) → [`Notice`], notices to municipalities not yet sent, queued
//!   with the change that calls for them
//! - `proof_watch`: job id → () for every job with a delivery report or read notification
//!   still awaited and not yet alerted on — what the proof deadlines read
//! - `submissions`: SHA-256 of a case system's submission key → the job that had it first
//! - `staff`: HSA-id → [`crate::registry::StaffGrant`], who may use the dispatch desk
//! - `open_alerts`: job id, NUL, alert kind, NUL, kommunkod → () for every alert whose cause
//!   still holds and that nobody acknowledged ([`state::JobRecord::open_alerts`]) — what the
//!   `kurir_alerts_open` gauge and `kurir alerts` read
//!
//! The files: this one opens the trees, flushes and runs transactions; `jobs` writes a job's
//! steps and `queries` reads them; `unapplied` keeps journaled steps until the flush and
//! replays a journal left by a crash; `batches`, `registrations`, `retention` and `audit`
//! each own their trees. The store records and nothing else: it tells one [`JobObserver`]
//! (the daemon's metrics) of every recorded job as the call returns, after its flush or
//! journal entry where it has one.

pub mod audit;
pub use kurir_protocol::{event, kinds, state};
pub mod journal;

mod backup;
mod batches;
mod connections;
pub use connections::{ConnectionRule, CHECKS_KEPT_PER_DOMAIN};
mod jobs;
mod migrate;
mod notices;
mod queries;
mod registrations;
mod retention;
pub mod seal;
mod staff;
#[cfg(test)]
mod tests;
mod unapplied;

pub use backup::{SnapshotInfo, TreeEntries};
pub use batches::{BatchConfirmation, BatchRecord, LetterRow};
pub use migrate::DOWNGRADE_GUARD;
pub use notices::Notice;
pub use registrations::{HoldNote, RelayHealth};

use batches::letter_key;
use jobs::*;
use unapplied::*;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::Transactional;

use crate::job::{JobId, Kommunkod, RecipientRole};
use crate::registry::{Registered, RegistryChange};
use crate::store::audit::AuditKind;
use crate::store::event::EventKind;
use crate::store::journal::Journal;
use crate::store::state::{Event, JobRecord, JobState};

/// sled's page cache (its default is 1 GiB). The daemon reads mostly what it just wrote and
/// the small indexes, so a modest cache keeps memory bounded however long the history grows.
/// Measured in a 10,000-job burst: 32 MiB peaked at 75–77 MB RSS, 24 MiB at 69 MB, 16 MiB at
/// 58–61 MB but with more CPU per job (pages read back); the bound is 80 MB.
const CACHE_BYTES: u64 = 24 * 1024 * 1024;

/// When a transition is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Flushed before the call returns.
    Flushed,
    /// Durable at the next flush.
    Lazy,
}

/// How and as of when a transition is committed.
#[derive(Debug, Clone, Copy)]
struct Commit {
    durability: Durability,
    /// The change's time (now, or the original time when a journal entry is replayed).
    at: Timestamp,
}

impl Commit {
    fn now(durability: Durability) -> Commit {
        Commit {
            durability,
            at: Timestamp::now(),
        }
    }
}

/// The on-disk format version of every value this module writes. Version 1 is kurir 0.1.0's;
/// its values are read too, and its job records rewritten at open ([`migrate`]).
const FORMAT_VERSION: u32 = 2;
/// The oldest format this kurir reads.
const OLDEST_FORMAT: u32 = 1;

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled itself failed (I/O, corruption, or the database is locked by another process).
    #[error("job store: {0}")]
    Sled(#[from] sled::Error),
    /// A value could not be encoded or decoded.
    #[error("job store value: {0}")]
    Codec(#[from] serde_json::Error),
    /// A value written by a newer kurir.
    #[error("job store value has format version {0}; this kurir reads versions {OLDEST_FORMAT} to {FORMAT_VERSION}")]
    UnsupportedVersion(u32),
    /// The store was migrated by a newer kurir: this one would misread it.
    #[error("the store was written by a newer kurir (store format {found}; this kurir knows {FORMAT_VERSION} and older): downgrading onto it is refused; install the newer kurir again or restore a backup taken before the upgrade")]
    NewerStore {
        /// The store's format.
        found: u32,
    },
    /// No such job.
    #[error("no job with id {0}")]
    NotFound(JobId),
    /// The job exists already.
    #[error("job {0} exists already")]
    AlreadyExists(JobId),
    /// The integrity key beside the store could not be read or made.
    #[error(transparent)]
    Integrity(#[from] seal::KeyError),
    /// The note of the store's format (beside it, for the package's scripts) could not be
    /// written.
    #[error("writing the store's FORMAT note: {0}")]
    FormatNote(std::io::Error),
    /// A snapshot could not be written or a store made from one.
    #[error("backup: {0}")]
    Backup(std::io::Error),
    /// A submission key an earlier job already had (that job's id).
    #[error("the submission key was used by job {0}")]
    SubmissionTaken(String),
    /// Compare-and-set failed: someone else moved the job first.
    #[error("job {id} is {actual}, expected {expected}")]
    Conflict {
        /// The job.
        id: JobId,
        /// The states the caller expected.
        expected: String,
        /// The state it is in.
        actual: JobState,
    },
    /// The write-ahead journal could not be opened, read or cleaned up.
    #[error("job store journal: {0}")]
    Journal(std::io::Error),
}

impl StoreError {
    /// The error of a database that stayed held by another process.
    pub fn locked() -> StoreError {
        StoreError::Sled(sled::Error::Unsupported("store locked".into()))
    }

    /// The database is held by another process (normally a running `kurir run`).
    pub fn is_locked(&self) -> bool {
        match self {
            StoreError::Sled(e) => sled_locked(e),
            _ => false,
        }
    }
}

/// Whether sled refused to open the database because another handle holds its lock. sled
/// reports it as an I/O error of kind `WouldBlock`, or (on some platforms) only in its words.
fn sled_locked(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(e) => {
            e.kind() == std::io::ErrorKind::WouldBlock
                || e.to_string().contains("could not acquire lock")
        }
        _ => false,
    }
}

/// A write that must commit together with a job transition.
#[derive(Debug, Clone)]
pub enum SideWrite {
    /// A letter joins a batch.
    Letter(LetterRow),
    /// A batch record changes (its letter count).
    Batch(BatchRecord),
}

/// Told of every job the store records, once the write is done: how operations counts jobs
/// and their latency without the store knowing about metrics (the store only records).
pub trait JobObserver: Send + Sync {
    /// `job` was recorded; `previous` is the state it left, `None` for a new job.
    fn recorded(&self, job: &JobRecord, previous: Option<JobState>);
}

/// The store. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    jobs: sled::Tree,
    events: sled::Tree,
    due: sled::Tree,
    pending: sled::Tree,
    letters: sled::Tree,
    batches: sled::Tree,
    meta: sled::Tree,
    registry: sled::Tree,
    registry_history: sled::Tree,
    audit: sled::Tree,
    finished: sled::Tree,
    proof_watch: sled::Tree,
    receipts_owed: sled::Tree,
    open_alerts: sled::Tree,
    alerts_owed: sled::Tree,
    staff: sled::Tree,
    submissions: sled::Tree,
    notices: sled::Tree,
    /// Every connection check, by domain and time ([`connections`]).
    connection_checks: sled::Tree,
    /// Who on the dispatch desk sent each job sent from there: job id → how the person is
    /// recorded ([`crate::registry::Person::on_desk`]).
    senders: sled::Tree,
    /// The latest check per domain, decoded (routing reads it for every job).
    latest_checks:
        Arc<Mutex<HashMap<String, Option<crate::registry::connection::ConnectionCheck>>>>,
    /// Passed by every write; held for writing while a snapshot is taken ([`backup`]).
    gate: Arc<std::sync::RwLock<()>>,
    journal: Arc<Journal>,
    unapplied: Arc<Mutex<HashMap<JobId, Vec<Unapplied>>>>,
    registry_cache: Arc<Mutex<HashMap<Kommunkod, Registered>>>,
    observer: Arc<std::sync::OnceLock<Arc<dyn JobObserver>>>,
    receipts_wanted: Arc<tokio::sync::Notify>,
    alerts_wanted: Arc<tokio::sync::Notify>,
    notices_wanted: Arc<tokio::sync::Notify>,
    /// What opening found: a new store, one of this format, or one it migrated.
    opened: Opening,
    /// Seals the audit chain's head: the key beside the store, never in a backup.
    integrity: seal::IntegrityKey,
    /// When each person last read each job's desk page (readings coalesce, [`staff`]).
    recent_views: Arc<Mutex<HashMap<ViewKey, Timestamp>>>,
}

/// A person's reading of a job's desk page: who, which job, which page.
type ViewKey = (String, JobId, String);

/// What [`Store::open`] found in the folder: the start-up log and the tests tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// No store was there: one was made, in this release's format.
    Created,
    /// A store of this release's format.
    Current,
    /// A store of an older format, migrated in one transaction.
    Migrated {
        /// The format it was in.
        from: u32,
        /// How many job records were rewritten.
        jobs: usize,
    },
}

#[derive(Serialize)]
struct VersionedRef<'a, T> {
    v: u32,
    #[serde(flatten)]
    data: &'a T,
}

#[derive(Deserialize)]
struct Versioned<T> {
    v: u32,
    #[serde(flatten)]
    data: T,
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    Ok(serde_json::to_vec(&VersionedRef {
        v: FORMAT_VERSION,
        data: value,
    })?)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    let versioned: Versioned<T> = serde_json::from_slice(bytes)?;
    if !(OLDEST_FORMAT..=FORMAT_VERSION).contains(&versioned.v) {
        return Err(StoreError::UnsupportedVersion(versioned.v));
    }
    Ok(versioned.data)
}

fn prefix(batch_or_code: &str) -> Vec<u8> {
    let mut key = batch_or_code.as_bytes().to_vec();
    key.push(0);
    key
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

fn tx_decode<T: DeserializeOwned>(bytes: &[u8]) -> TxResult<T> {
    decode(bytes).or_else(abort)
}

fn tx_encode<T: Serialize>(value: &T) -> TxResult<Vec<u8>> {
    encode(value).or_else(abort)
}

fn unwrap_tx<T>(r: Result<T, TransactionError<StoreError>>) -> Result<T, StoreError> {
    r.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Sled(e),
    })
}

impl Store {
    /// Opens (or creates) the store in `dir`. Fails if another process holds it.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let config = sled::Config::new()
            .path(dir.join("db"))
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(CACHE_BYTES);
        // A store this process closed a moment ago is let go when sled's last background
        // thread ends: wait for that (briefly) rather than report it held by another process.
        let mut opened = config.open();
        for _ in 0..40 {
            match &opened {
                Err(e) if sled_locked(e) => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    opened = config.open();
                }
                _ => break,
            }
        }
        let db = opened?;
        let integrity = seal::IntegrityKey::for_state(dir)?;
        // A store sled made just now is created in this release's format, never migrated.
        let created = !db.was_recovered();
        let (journal, leftovers) = Journal::open(dir).map_err(StoreError::Journal)?;
        let store = Store {
            jobs: db.open_tree("jobs")?,
            events: db.open_tree("events")?,
            due: db.open_tree("due")?,
            pending: db.open_tree("pending")?,
            letters: db.open_tree("letters")?,
            batches: db.open_tree("batches")?,
            meta: db.open_tree("meta")?,
            registry: db.open_tree("registry")?,
            registry_history: db.open_tree("registry_history")?,
            audit: db.open_tree("audit")?,
            finished: db.open_tree("finished")?,
            proof_watch: db.open_tree("proof_watch")?,
            receipts_owed: db.open_tree("receipts_owed")?,
            open_alerts: db.open_tree("open_alerts")?,
            alerts_owed: db.open_tree("alerts_owed")?,
            staff: db.open_tree("staff")?,
            submissions: db.open_tree("submissions")?,
            notices: db.open_tree("notices")?,
            connection_checks: db.open_tree("connection_checks")?,
            senders: db.open_tree("senders")?,
            latest_checks: Arc::default(),
            gate: Arc::default(),
            journal: Arc::new(journal),
            unapplied: Arc::default(),
            registry_cache: Arc::default(),
            observer: Arc::default(),
            receipts_wanted: Arc::default(),
            alerts_wanted: Arc::default(),
            notices_wanted: Arc::default(),
            opened: Opening::Current,
            integrity,
            recent_views: Arc::default(),
            db,
        };
        let mut store = store;
        store.refuse_newer()?;
        if created && store.jobs.is_empty() && store.meta.is_empty() {
            store.create_in_current_format()?;
            store.opened = Opening::Created;
        }
        store.replay(leftovers)?;
        let from = store.format()?;
        let jobs = store.migrate()?;
        if from < FORMAT_VERSION {
            store.opened = Opening::Migrated { from, jobs };
        }
        store.seal_unsealed_audit_head()?;
        store.note_format(dir)?;
        Ok(store)
    }

    /// The key that seals the audit chain and this store's backups (never in a backup).
    pub fn integrity_key(&self) -> &seal::IntegrityKey {
        &self.integrity
    }

    /// What opening found: a new store, a current one, or one it migrated.
    pub fn opened(&self) -> Opening {
        self.opened
    }

    /// Sets the one observer told of every recorded job (the daemon's metrics); later calls
    /// are ignored.
    pub fn observe(&self, observer: Arc<dyn JobObserver>) {
        let _ = self.observer.set(observer);
    }

    fn tell_observer(&self, job: &JobRecord, previous: Option<JobState>) {
        if job.owes_receipt() {
            self.receipts_wanted.notify_one();
        }
        if job.owes_alert() {
            self.alerts_wanted.notify_one();
        }
        if let Some(observer) = self.observer.get() {
            observer.recorded(job, previous);
        }
    }

    /// Notified whenever a recorded job owes a receipt: what the receipt writer waits on.
    pub fn receipts_wanted(&self) -> Arc<tokio::sync::Notify> {
        self.receipts_wanted.clone()
    }

    /// Notified whenever a recorded job owes an alert: what the alert writer waits on.
    pub fn alerts_wanted(&self) -> Arc<tokio::sync::Notify> {
        self.alerts_wanted.clone()
    }

    /// Notified whenever a notice is queued: what the notifier waits on.
    pub fn notices_wanted(&self) -> Arc<tokio::sync::Notify> {
        self.notices_wanted.clone()
    }

    /// Wakes the receipt writer: a receipt it had to leave (a quarantine not yet finished)
    /// may be written now.
    pub fn wake_receipt_writer(&self) {
        self.receipts_wanted.notify_one();
    }

    /// Makes every committed write durable — writing the journaled transitions into sled
    /// first, in one transaction — and retires the journal file whose entries that covers.
    pub fn flush(&self) -> Result<(), StoreError> {
        let (unapplied, retired) = {
            let mut journal = self.journal.lock();
            let unapplied = self.lock_unapplied().clone();
            (unapplied, journal.rotate())
        };
        // A failure leaves the entries waiting (and the retired file on disk, for replay).
        self.apply_unapplied(&unapplied)?;
        self.db.flush()?;
        if let Some(path) = retired {
            if let Err(e) = self.journal.retire(&path) {
                // Harmless: its entries are replayed once more at the next start, and skipped.
                tracing::warn!(error = %e, "a flushed journal file could not be retired");
            }
        }
        Ok(())
    }

    /// Flushes if anything was journaled since the last flush: bounds how much a power cut
    /// could take back, and how long sled's indexes lag, when nothing else flushes (only
    /// deferred outcomes, say). Returns whether it flushed.
    pub fn flush_journaled(&self) -> Result<bool, StoreError> {
        if self.journal.is_empty() && self.lock_unapplied().is_empty() {
            return Ok(false);
        }
        self.flush()?;
        Ok(true)
    }

    /// Runs `f` as one transaction over the trees a job's steps write (retried by sled on a
    /// conflict, so `f` must only depend on what it reads there).
    fn job_transaction<T>(&self, f: impl Fn(&JobTrees) -> TxResult<T>) -> Result<T, StoreError> {
        let _gate = self.gate();
        let result = (
            &self.jobs,
            &self.events,
            &self.due,
            &self.pending,
            &self.finished,
            &self.proof_watch,
            &self.receipts_owed,
            &self.open_alerts,
            &self.alerts_owed,
            &self.audit,
            &self.meta,
            &self.letters,
            &self.batches,
            &self.submissions,
        )
            .transaction(
                |(
                    jobs,
                    events,
                    due,
                    pending,
                    finished,
                    proof,
                    receipts,
                    open_alerts,
                    alerts_owed,
                    audit,
                    meta,
                    letters,
                    batches,
                    submissions,
                )| {
                    f(&JobTrees {
                        integrity: &self.integrity,
                        jobs,
                        events,
                        due,
                        pending,
                        finished,
                        proof,
                        receipts,
                        open_alerts,
                        alerts_owed,
                        audit,
                        meta,
                        letters,
                        batches,
                        submissions,
                    })
                },
            );
        unwrap_tx(result)
    }

    /// Writes and flushes a heartbeat: proves the store is writable (for /healthz).
    pub fn check_writable(&self) -> Result<(), StoreError> {
        let now = Timestamp::now().as_millisecond().to_be_bytes();
        {
            let _gate = self.gate();
            self.meta.insert(b"heartbeat".as_slice(), &now[..])?;
        }
        self.flush()
    }
}
