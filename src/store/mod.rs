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
//! - `audit`: sequence (u64 BE) → [`AuditEntry`], a hash chain written in the same transaction
//!   as the change it records
//! - `finished`: finish time (ms, u64 BE), job id → job id — what retention reads
//!
//! Every recorded job change is also counted for Prometheus (`ops::job_recorded`) as the call
//! returns: after its flush or journal entry where it has one.

pub mod audit;
pub mod journal;
pub mod state;

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
use crate::store::audit::{AuditEntry, AuditKind};
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

/// The on-disk format version of every value this module writes.
const FORMAT_VERSION: u32 = 1;

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
    #[error("job store value has format version {0}; this kurir reads version {FORMAT_VERSION}")]
    UnsupportedVersion(u32),
    /// No such job.
    #[error("no job with id {0}")]
    NotFound(JobId),
    /// The job exists already.
    #[error("job {0} exists already")]
    AlreadyExists(JobId),
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
            StoreError::Sled(sled::Error::Io(e)) => {
                e.kind() == std::io::ErrorKind::WouldBlock
                    || e.to_string().contains("could not acquire lock")
            }
            _ => false,
        }
    }
}

/// One letter as the print shop's manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LetterRow {
    /// Batch id.
    pub batch: String,
    /// PDF file name in the batch directory.
    pub file: String,
    /// The job.
    pub job_id: JobId,
    /// The recipient municipality.
    pub kommunkod: Kommunkod,
    /// Assigned municipality or copy.
    pub role: RecipientRole,
    /// Recipient name line.
    pub namn: String,
    /// c/o line.
    pub care_of: String,
    /// Street or box.
    pub adress: String,
    /// Second street line.
    pub lagenhet: String,
    /// `nnn nn`.
    pub postnummer: String,
    /// Postort.
    pub postort: String,
    /// Pages including the cover letter.
    pub pages: u32,
    /// SHA-256 of the PDF.
    pub sha256: String,
    /// The address was unknown; the letter goes to the registry office.
    pub address_missing: bool,
}

/// A print batch: a directory of letters the print shop takes once it is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRecord {
    /// Directory name under `spool/print/`, e.g. `20261122-001`.
    pub id: String,
    /// The Stockholm calendar day the batch belongs to, `YYYY-MM-DD`.
    pub day: String,
    /// When it was opened.
    pub opened_at: Timestamp,
    /// Letters in it.
    pub letters: u32,
    /// When it was closed, if it was.
    pub closed_at: Option<Timestamp>,
}

/// Why an operator holds a municipality.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldNote {
    /// Who.
    pub operator: String,
    /// Why.
    pub reason: String,
    /// Since when.
    pub at: Timestamp,
}

/// Consecutive failures of the relay itself and when it may be tried again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayHealth {
    /// Failures in a row (connect, TLS).
    pub failures: u32,
    /// No attempt before this instant.
    pub retry_at: Option<Timestamp>,
    /// The last failure, in words.
    pub last_error: Option<String>,
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
    journal: Arc<Journal>,
    unapplied: Arc<Mutex<HashMap<JobId, Vec<Unapplied>>>>,
    registry_cache: Arc<Mutex<HashMap<Kommunkod, Registered>>>,
    observer: Arc<std::sync::OnceLock<Arc<dyn JobObserver>>>,
}

/// A journaled transition that is not in sled yet: reads see it at once; the next flush,
/// or the next sled transition of the same job, writes it there (group commit).
#[derive(Debug, Clone)]
struct Unapplied {
    detail: String,
    /// The record as the transition left it (`events` counts its event).
    record: JobRecord,
}

/// The trees a job's transition writes, inside one transaction.
struct JobTrees<'a> {
    jobs: &'a TransactionalTree,
    events: &'a TransactionalTree,
    due: &'a TransactionalTree,
    pending: &'a TransactionalTree,
    finished: &'a TransactionalTree,
    audit: &'a TransactionalTree,
    meta: &'a TransactionalTree,
    /// For a letter written with the transition.
    letters: &'a TransactionalTree,
    /// For its batch's record.
    batches: &'a TransactionalTree,
}

impl JobTrees<'_> {
    /// Writes one step of a job from `old` to `new` (whose `events` is one more): its event,
    /// the record, the indexes and the audit entry, all as of `new.updated_at`.
    fn write_step(
        &self,
        old: &JobRecord,
        new: &JobRecord,
        detail: &str,
        data: serde_json::Value,
    ) -> TxResult<()> {
        let event = Event {
            at: new.updated_at,
            state: new.state,
            detail: detail.to_string(),
        };
        self.record_event(new, old.events, &event, data)?;
        self.jobs
            .insert(new.id.as_str().as_bytes(), tx_encode(new)?)?;
        reindex(self.due, self.pending, self.finished, Some(old), new)?;
        Ok(())
    }

    /// Writes a job's event number `seq` and its audit entry (with `data`, if any).
    fn record_event(
        &self,
        job: &JobRecord,
        seq: u32,
        event: &Event,
        data: serde_json::Value,
    ) -> TxResult<()> {
        self.events
            .insert(event_key(&job.id, seq), tx_encode(event)?)?;
        audit::append(
            self.audit,
            self.meta,
            audit::Draft {
                kind: AuditKind::Job,
                job_id: Some(job.id.clone()),
                kommunkod: job.to,
                state: Some(event.state),
                operator: None,
                action: event.detail.clone(),
                data,
            },
            event.at,
        )?;
        Ok(())
    }

    /// Writes the job's journaled steps that sled does not have yet, in order, and returns
    /// the record as the last of them left it. Steps sled has already are skipped, so a
    /// transaction that is retried, or two that race, apply each step once.
    fn catch_up(&self, stored: JobRecord, unapplied: &[Unapplied]) -> TxResult<JobRecord> {
        let mut current = stored;
        for step in unapplied {
            if step.record.events == current.events + 1 {
                self.write_step(
                    &current,
                    &step.record,
                    &step.detail,
                    serde_json::Value::Null,
                )?;
                current = step.record.clone();
            }
        }
        Ok(current)
    }
}

/// One journaled transition: the record as the transition left it, and its event's detail.
#[derive(Serialize, Deserialize)]
struct JournalEntry<R> {
    v: u32,
    detail: String,
    record: R,
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
    if versioned.v != FORMAT_VERSION {
        return Err(StoreError::UnsupportedVersion(versioned.v));
    }
    Ok(versioned.data)
}

/// Names of the registration fields that differ (values are not audited: they may name people).
fn changed_fields(before: &Registered, after: &Registered) -> Vec<String> {
    let (Ok(serde_json::Value::Object(b)), Ok(serde_json::Value::Object(a))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return Vec::new();
    };
    a.iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect()
}

fn event_key(id: &JobId, seq: u32) -> Vec<u8> {
    let mut key = id.as_str().as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn due_key(at: Timestamp, id: &JobId) -> Vec<u8> {
    let ms = u64::try_from(at.as_millisecond()).unwrap_or(0);
    let mut key = ms.to_be_bytes().to_vec();
    key.extend_from_slice(id.as_str().as_bytes());
    key
}

fn letter_key(batch: &str, file: &str) -> Vec<u8> {
    let mut key = batch.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(file.as_bytes());
    key
}

fn prefix(batch_or_code: &str) -> Vec<u8> {
    let mut key = batch_or_code.as_bytes().to_vec();
    key.push(0);
    key
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// The record a transition leaves: `change` applied, stamped `now`, one event more, and a
/// receipt owed again if the state moved.
fn next_record(old: &JobRecord, change: impl Fn(&mut JobRecord), now: Timestamp) -> JobRecord {
    let mut new = old.clone();
    change(&mut new);
    new.updated_at = now;
    if new.state != old.state {
        new.receipt_written = false;
    }
    new.events = old.events + 1;
    new
}

/// The job as its latest transition left it: the journaled step if it is newer than what
/// sled holds (sled may have it already when a flush ran in between).
fn newer_of(stored: JobRecord, journaled: Option<Unapplied>) -> JobRecord {
    match journaled {
        Some(step) if step.record.events > stored.events => step.record,
        _ => stored,
    }
}

/// Compare-and-set: the job must be in one of `expected`.
fn check_expected(record: &JobRecord, expected: &[JobState]) -> Result<(), StoreError> {
    if expected.contains(&record.state) {
        return Ok(());
    }
    Err(StoreError::Conflict {
        id: record.id.clone(),
        expected: expected
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("|"),
        actual: record.state,
    })
}

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

/// The index maintenance every job write does: due entry and pending marker follow the record.
fn reindex(
    due: &TransactionalTree,
    pending: &TransactionalTree,
    finished: &TransactionalTree,
    old: Option<&JobRecord>,
    new: &JobRecord,
) -> Result<(), UnabortableTransactionError> {
    let was_final = old.is_some_and(|o| o.state.is_final());
    if new.state.is_final() && !was_final {
        finished.insert(due_key(new.updated_at, &new.id), new.id.as_str().as_bytes())?;
    }
    if let Some(at) = old.and_then(|o| o.next_attempt) {
        due.remove(due_key(at, &new.id))?;
    }
    if let (Some(at), false) = (new.next_attempt, new.state.is_final()) {
        due.insert(due_key(at, &new.id), new.id.as_str().as_bytes())?;
    }
    if new.state.is_final() && new.receipt_written {
        pending.remove(new.id.as_str().as_bytes())?;
    } else {
        pending.insert(new.id.as_str().as_bytes(), &[])?;
    }
    Ok(())
}

impl Store {
    /// Opens (or creates) the store in `dir`. Fails if another process holds it.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(dir.join("db"))
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(CACHE_BYTES)
            .open()?;
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
            journal: Arc::new(journal),
            unapplied: Arc::default(),
            registry_cache: Arc::default(),
            observer: Arc::default(),
            db,
        };
        store.replay(leftovers)?;
        Ok(store)
    }

    /// Sets the one observer told of every recorded job (the daemon's metrics); later calls
    /// are ignored.
    pub fn observe(&self, observer: Arc<dyn JobObserver>) {
        let _ = self.observer.set(observer);
    }

    fn tell_observer(&self, job: &JobRecord, previous: Option<JobState>) {
        if let Some(observer) = self.observer.get() {
            observer.recorded(job, previous);
        }
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

    fn lock_unapplied(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Vec<Unapplied>>> {
        self.unapplied.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The job's journaled steps not in sled yet, oldest first.
    fn unapplied_of(&self, id: &JobId) -> Vec<Unapplied> {
        self.lock_unapplied().get(id).cloned().unwrap_or_default()
    }

    /// The job's latest journaled step not in sled yet, if any.
    fn last_unapplied(&self, id: &JobId) -> Option<Unapplied> {
        self.lock_unapplied()
            .get(id)
            .and_then(|s| s.last().cloned())
    }

    /// Forgets the job's journaled steps up to `events`: sled has them now.
    fn forget_applied(&self, id: &JobId, events: u32) {
        let mut unapplied = self.lock_unapplied();
        if let Some(steps) = unapplied.get_mut(id) {
            steps.retain(|s| s.record.events > events);
            if steps.is_empty() {
                unapplied.remove(id);
            }
        }
    }

    /// Writes journaled steps into sled, all jobs in one transaction.
    fn apply_unapplied(
        &self,
        unapplied: &HashMap<JobId, Vec<Unapplied>>,
    ) -> Result<(), StoreError> {
        if unapplied.is_empty() {
            return Ok(());
        }
        let applied = self.job_transaction(|trees| {
            let mut applied = Vec::with_capacity(unapplied.len());
            for (id, steps) in unapplied {
                let Some(bytes) = trees.jobs.get(id.as_str().as_bytes())? else {
                    // Nothing to apply them to (cannot happen: steps are only journaled for
                    // jobs that exist); forgotten rather than retried at every flush.
                    applied.push((id, u32::MAX));
                    continue;
                };
                let record = trees.catch_up(tx_decode(&bytes)?, steps)?;
                applied.push((id, record.events));
            }
            Ok(applied)
        })?;
        for (id, events) in applied {
            self.forget_applied(id, events);
        }
        Ok(())
    }

    /// Runs `f` as one transaction over the trees a job's steps write (retried by sled on a
    /// conflict, so `f` must only depend on what it reads there).
    fn job_transaction<T>(&self, f: impl Fn(&JobTrees) -> TxResult<T>) -> Result<T, StoreError> {
        let result = (
            &self.jobs,
            &self.events,
            &self.due,
            &self.pending,
            &self.finished,
            &self.audit,
            &self.meta,
            &self.letters,
            &self.batches,
        )
            .transaction(
                |(jobs, events, due, pending, finished, audit, meta, letters, batches)| {
                    f(&JobTrees {
                        jobs,
                        events,
                        due,
                        pending,
                        finished,
                        audit,
                        meta,
                        letters,
                        batches,
                    })
                },
            );
        unwrap_tx(result)
    }

    /// Applies what the journal of an earlier run holds and is not in sled yet (it was
    /// journaled, then the process died before a flush), then flushes and deletes the files.
    /// An entry applies if it is the job's next transition; one already in sled is skipped.
    /// A torn line (the process died inside its write) is skipped: its change was not
    /// acknowledged to anyone.
    fn replay(&self, leftovers: Vec<crate::store::journal::Leftover>) -> Result<usize, StoreError> {
        if leftovers.is_empty() {
            return Ok(0);
        }
        let mut applied = 0;
        for leftover in &leftovers {
            for line in &leftover.lines {
                let Ok(entry) = serde_json::from_slice::<JournalEntry<JobRecord>>(line) else {
                    tracing::warn!(file = %leftover.path.display(), "torn journal entry skipped");
                    continue;
                };
                if entry.v != FORMAT_VERSION {
                    return Err(StoreError::UnsupportedVersion(entry.v));
                }
                let Some(current) = self.get(&entry.record.id)? else {
                    continue;
                };
                if current.events >= entry.record.events {
                    continue; // in sled already
                }
                if current.events + 1 != entry.record.events {
                    // A step between them is missing from both: not this entry's to fill.
                    tracing::warn!(job_id = %current.id, "journal entry out of sequence skipped");
                    continue;
                }
                let record = entry.record;
                self.transition_with(
                    &record.id,
                    &[current.state],
                    &entry.detail,
                    &[],
                    |r| {
                        let events = r.events;
                        *r = record.clone();
                        r.events = events;
                    },
                    Commit {
                        durability: Durability::Lazy,
                        at: record.updated_at,
                    },
                )?;
                applied += 1;
            }
        }
        self.db.flush()?;
        for leftover in leftovers {
            std::fs::remove_file(&leftover.path).map_err(StoreError::Journal)?;
        }
        if applied > 0 {
            tracing::info!(
                applied,
                "changes recorded before the last stop were replayed from the journal"
            );
        }
        Ok(applied)
    }

    /// Records a new job with its first events (e.g. received, then queued), durably. Fails
    /// if the id exists.
    pub fn enqueue(
        &self,
        record: &JobRecord,
        history: &[(JobState, String)],
    ) -> Result<(), StoreError> {
        self.enqueue_many(&[(record.clone(), history.to_vec())], true)
    }

    /// Records new jobs, each with its first events, in one transaction (intake's group
    /// commit: one log write for the group instead of one per job). Durable only after a
    /// flush unless `durable`. Fails, recording none, if any id exists.
    pub fn enqueue_many(
        &self,
        jobs: &[(JobRecord, Vec<(JobState, String)>)],
        durable: bool,
    ) -> Result<(), StoreError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let prepared: Vec<(JobRecord, Vec<Event>, Vec<serde_json::Value>)> = jobs
            .iter()
            .map(|(record, history)| {
                let mut record = record.clone();
                let events: Vec<Event> = history
                    .iter()
                    .map(|(state, detail)| Event {
                        at: record.updated_at,
                        state: *state,
                        detail: detail.clone(),
                    })
                    .collect();
                record.events = u32::try_from(events.len()).unwrap_or(u32::MAX);
                let documents = record
                    .documents
                    .iter()
                    .map(|d| serde_json::json!({ "kind": d.kind, "pages": d.pages, "sha256": d.sha256 }))
                    .collect();
                (record, events, documents)
            })
            .collect();
        self.job_transaction(|trees| {
            for (record, events, documents) in &prepared {
                let key = record.id.as_str().as_bytes();
                if trees.jobs.get(key)?.is_some() {
                    return abort(StoreError::AlreadyExists(record.id.clone()));
                }
                trees.jobs.insert(key, tx_encode(record)?)?;
                for (seq, event) in events.iter().enumerate() {
                    let data = if seq == 0 {
                        serde_json::json!({ "source": record.source, "documents": documents })
                    } else {
                        serde_json::Value::Null
                    };
                    let n = u32::try_from(seq).unwrap_or(u32::MAX);
                    trees.record_event(record, n, event, data)?;
                }
                reindex(trees.due, trees.pending, trees.finished, None, record)?;
            }
            Ok(())
        })?;
        if durable {
            self.flush()?;
        }
        for (record, _, _) in &prepared {
            self.tell_observer(record, None);
        }
        Ok(())
    }

    /// Moves a job from one of `expected` to whatever `change` makes of it, appending an event,
    /// together with `side` writes, in one durable step. Compare-and-set: if the job is in
    /// another state, nothing is written and [`StoreError::Conflict`] is returned.
    pub fn transition(
        &self,
        id: &JobId,
        expected: &[JobState],
        detail: &str,
        side: &[SideWrite],
        change: impl Fn(&mut JobRecord),
    ) -> Result<JobRecord, StoreError> {
        self.transition_with(
            id,
            expected,
            detail,
            side,
            change,
            Commit::now(Durability::Flushed),
        )
    }

    /// Like [`Store::transition`], committed (atomic, visible) but durable only at the next
    /// flush. For steps whose loss in a crash is harmless because the step is redone: the
    /// caller flushes before any effect depends on it (group commit).
    pub fn transition_lazy(
        &self,
        id: &JobId,
        expected: &[JobState],
        detail: &str,
        side: &[SideWrite],
        change: impl Fn(&mut JobRecord),
    ) -> Result<JobRecord, StoreError> {
        self.transition_with(
            id,
            expected,
            detail,
            side,
            change,
            Commit::now(Durability::Lazy),
        )
    }

    /// Like [`Store::transition`], durable against a crash of the process (kill -9) when it
    /// returns, without waiting for the disk or for sled: the change is appended to the
    /// write-ahead journal with one `write(2)` and is seen at once by every read of this
    /// store; the next flush writes it into sled together with the others made since (one
    /// transaction, one log write, instead of one each), and a start after a crash replays
    /// it. For the queue's steps, which hold others up while they are recorded (a mail
    /// server's answer, while the next message waits to end its DATA). If the journal cannot
    /// be written, the change is flushed instead.
    pub fn transition_journaled(
        &self,
        id: &JobId,
        expected: &[JobState],
        detail: &str,
        change: impl Fn(&mut JobRecord),
    ) -> Result<JobRecord, StoreError> {
        let now = Timestamp::now();
        // Held from the read to the append: no other transition of the job, and no flush's
        // rotation, falls in between.
        let mut journal = self.journal.lock();
        let old = self
            .get(id)?
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        check_expected(&old, expected)?;
        let new = next_record(&old, &change, now);
        let entry = serde_json::to_vec(&JournalEntry {
            v: FORMAT_VERSION,
            detail: detail.to_string(),
            record: &new,
        })?;
        if let Err(e) = journal.append(&entry) {
            drop(journal);
            tracing::warn!(job_id = %id, error = %e, "journal not writable; flushing instead");
            return self.transition(id, expected, detail, &[], change);
        }
        self.lock_unapplied()
            .entry(id.clone())
            .or_default()
            .push(Unapplied {
                detail: detail.to_string(),
                record: new.clone(),
            });
        drop(journal);
        self.tell_observer(&new, Some(old.state));
        Ok(new)
    }

    fn transition_with(
        &self,
        id: &JobId,
        expected: &[JobState],
        detail: &str,
        side: &[SideWrite],
        change: impl Fn(&mut JobRecord),
        commit: Commit,
    ) -> Result<JobRecord, StoreError> {
        let Commit {
            durability,
            at: now,
        } = commit;
        let letter_hashes: Vec<serde_json::Value> = side
            .iter()
            .filter_map(|w| match w {
                SideWrite::Letter(row) => Some(serde_json::json!({
                    "batch": row.batch, "letter": row.file, "kommunkod": row.kommunkod,
                    "pages": row.pages, "sha256": row.sha256,
                })),
                SideWrite::Batch(_) => None,
            })
            .collect();
        // Held for the transaction: the job's journaled steps cannot change meanwhile.
        let journal = self.journal.lock();
        let unapplied = self.unapplied_of(id);
        let result = self.job_transaction(|trees| {
            let Some(bytes) = trees.jobs.get(id.as_str().as_bytes())? else {
                return abort(StoreError::NotFound(id.clone()));
            };
            // Journaled steps first: this one follows them.
            let old = trees.catch_up(tx_decode(&bytes)?, &unapplied)?;
            if let Err(e) = check_expected(&old, expected) {
                return abort(e);
            }
            let new = next_record(&old, &change, now);
            let data = if letter_hashes.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::json!({ "letters": letter_hashes })
            };
            trees.write_step(&old, &new, detail, data)?;
            for write in side {
                match write {
                    SideWrite::Letter(row) => {
                        trees
                            .letters
                            .insert(letter_key(&row.batch, &row.file), tx_encode(row)?)?;
                    }
                    SideWrite::Batch(batch) => {
                        trees
                            .batches
                            .insert(batch.id.as_bytes(), tx_encode(batch)?)?;
                    }
                }
            }
            Ok((old.state, new))
        });
        let (previous, record) = result?;
        self.forget_applied(id, record.events);
        drop(journal);
        if durability == Durability::Flushed {
            self.flush()?;
        }
        self.tell_observer(&record, Some(previous));
        Ok(record)
    }

    /// Notes that the receipt for the job's current final state is on disk. Not flushed: if the
    /// note is lost in a crash, the receipt is written again, which is harmless.
    pub fn mark_receipt_written(&self, id: &JobId) -> Result<(), StoreError> {
        self.mark_receipts_written(std::slice::from_ref(id))
    }

    /// [`Store::mark_receipt_written`] for many jobs in one transaction (receipts are written
    /// in groups). Jobs that no longer exist are skipped.
    pub fn mark_receipts_written(&self, ids: &[JobId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let result = (&self.jobs, &self.due, &self.pending, &self.finished).transaction(
            |(jobs, due, pending, finished)| {
                for id in ids {
                    let key = id.as_str().as_bytes();
                    let Some(bytes) = jobs.get(key)? else {
                        if ids.len() == 1 {
                            return abort(StoreError::NotFound(id.clone()));
                        }
                        continue;
                    };
                    let old: JobRecord = tx_decode(&bytes)?;
                    let mut new = old.clone();
                    new.receipt_written = true;
                    jobs.insert(key, tx_encode(&new)?)?;
                    reindex(due, pending, finished, Some(&old), &new)?;
                }
                Ok(())
            },
        );
        unwrap_tx(result)
    }

    /// One job, if it exists, as its latest transition left it (journaled or in sled).
    pub fn get(&self, id: &JobId) -> Result<Option<JobRecord>, StoreError> {
        // The journaled steps first, then sled: a flush writes sled before it forgets them,
        // so whichever is newer is the truth.
        let journaled = self.last_unapplied(id);
        match self.jobs.get(id.as_str().as_bytes())? {
            Some(bytes) => Ok(Some(newer_of(decode(&bytes)?, journaled))),
            None => Ok(None),
        }
    }

    /// A job's history, oldest first, including journaled steps not in sled yet.
    pub fn events(&self, id: &JobId) -> Result<Vec<Event>, StoreError> {
        let journaled = self.unapplied_of(id);
        let mut key = id.as_str().as_bytes().to_vec();
        key.push(0);
        let mut events: Vec<Event> = self
            .events
            .scan_prefix(key)
            .map(|item| decode(&item?.1))
            .collect::<Result<_, StoreError>>()?;
        for step in journaled {
            if step.record.events as usize == events.len() + 1 {
                events.push(Event {
                    at: step.record.updated_at,
                    state: step.record.state,
                    detail: step.detail,
                });
            }
        }
        Ok(events)
    }

    /// Jobs whose next attempt is at or before `now`, earliest first, at most `limit`.
    pub fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        self.due_except(now, limit, &std::collections::HashSet::new())
    }

    /// Like [`Store::due`], skipping the jobs in `except` (those already in hand) without
    /// reading their records.
    pub fn due_except(
        &self,
        now: Timestamp,
        limit: usize,
        except: &std::collections::HashSet<JobId>,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let end_ms = u64::try_from(now.as_millisecond())
            .unwrap_or(0)
            .saturating_add(1);
        let end = end_ms.to_be_bytes().to_vec();
        let mut out = Vec::new();
        for item in self.due.range(..end) {
            if out.len() >= limit {
                break;
            }
            let (_, id) = item?;
            let Ok(id) = std::str::from_utf8(&id).unwrap_or("").parse::<JobId>() else {
                continue;
            };
            if except.contains(&id) {
                continue;
            }
            // A journaled step sled's index does not show yet may have finished the job or
            // moved its next attempt (only ever later): the record decides.
            let Some(record) = self.get(&id)? else {
                continue;
            };
            let due = record
                .next_attempt
                .is_some_and(|at| u64::try_from(at.as_millisecond()).unwrap_or(0) < end_ms);
            if due && !record.state.is_final() {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Every job with work left (not final, or its receipt not yet written).
    pub fn pending(&self) -> Result<Vec<JobRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.pending.iter() {
            let (key, _) = item?;
            let id = String::from_utf8_lossy(&key).to_string();
            if let Ok(id) = id.parse::<JobId>() {
                if let Some(record) = self.get(&id)? {
                    out.push(record);
                }
            }
        }
        Ok(out)
    }

    /// Newest jobs first, optionally only those in `state`, at most `limit`.
    pub fn list(
        &self,
        state: Option<JobState>,
        limit: usize,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.jobs.iter().rev() {
            let stored: JobRecord = decode(&item?.1)?;
            let journaled = self.last_unapplied(&stored.id);
            let record = newer_of(stored, journaled);
            if state.is_none_or(|s| s == record.state) {
                out.push(record);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The batch letters currently go into, if one is open.
    pub fn open_batch(&self) -> Result<Option<BatchRecord>, StoreError> {
        let Some(id) = self.meta.get(b"open_batch")? else {
            return Ok(None);
        };
        self.batch(&String::from_utf8_lossy(&id))
    }

    /// One batch by id.
    pub fn batch(&self, id: &str) -> Result<Option<BatchRecord>, StoreError> {
        match self.batches.get(id.as_bytes())? {
            Some(bytes) => Ok(Some(decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Ids of all batches that start with `day_prefix` (e.g. `20261122-`), to number a new one.
    pub fn batch_ids_with_prefix(&self, day_prefix: &str) -> Result<Vec<String>, StoreError> {
        self.batches
            .scan_prefix(day_prefix.as_bytes())
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?).to_string()))
            .collect()
    }

    /// Records a new batch and makes it the open one.
    pub fn open_new_batch(&self, batch: &BatchRecord) -> Result<(), StoreError> {
        let result = (&self.batches, &self.meta).transaction(|(batches, meta)| {
            batches.insert(batch.id.as_bytes(), tx_encode(batch)?)?;
            meta.insert(b"open_batch".as_slice(), batch.id.as_bytes())?;
            Ok(())
        });
        unwrap_tx(result)?;
        self.flush()
    }

    /// Marks a batch closed; it is no longer the open one.
    pub fn close_batch(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        let result = (&self.batches, &self.meta).transaction(|(batches, meta)| {
            if let Some(bytes) = batches.get(id.as_bytes())? {
                let mut batch: BatchRecord = tx_decode(&bytes)?;
                batch.closed_at = Some(at);
                batches.insert(id.as_bytes(), tx_encode(&batch)?)?;
            }
            if meta.get(b"open_batch")?.as_deref() == Some(id.as_bytes()) {
                meta.remove(b"open_batch".as_slice())?;
            }
            Ok(())
        });
        unwrap_tx(result)?;
        self.flush()
    }

    /// The letters of one batch, in file-name order.
    pub fn letters(&self, batch: &str) -> Result<Vec<LetterRow>, StoreError> {
        self.letters
            .scan_prefix(prefix(batch))
            .map(|item| decode(&item?.1))
            .collect()
    }

    /// What has been registered for a municipality (default: nothing). Read for every job
    /// (routing, message, letter), so it is kept decoded in memory; [`Store::register`] is the
    /// only writer and replaces it there.
    pub fn registered(&self, code: Kommunkod) -> Result<Registered, StoreError> {
        // The lock is held across a miss's read so a concurrent `register` cannot be undone
        // by a stale value put back after it.
        let mut cache = self
            .registry_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(registered) = cache.get(&code) {
            return Ok(registered.clone());
        }
        let registered = match self.registry.get(code.as_str().as_bytes())? {
            Some(bytes) => decode(&bytes)?,
            None => Registered::default(),
        };
        cache.insert(code, registered.clone());
        Ok(registered)
    }

    /// Replaces a municipality's registration, keeping the previous value in its history.
    /// `what` says in words what changed (e.g. "set", "verification code sent").
    pub fn register(
        &self,
        code: Kommunkod,
        after: &Registered,
        operator: &str,
        what: &str,
    ) -> Result<RegistryChange, StoreError> {
        let at = Timestamp::now();
        let mut cache = self
            .registry_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let result = (&self.registry, &self.registry_history, &self.audit, &self.meta).transaction(
            |(reg, history, audit_tree, meta)| {
            let before: Registered = match reg.get(code.as_str().as_bytes())? {
                Some(bytes) => tx_decode(&bytes)?,
                None => Registered::default(),
            };
            let change = RegistryChange {
                at,
                operator: operator.to_string(),
                what: what.to_string(),
                before,
                after: after.clone(),
            };
            reg.insert(code.as_str().as_bytes(), tx_encode(after)?)?;
            let mut key = prefix(code.as_str());
            key.extend_from_slice(&at.as_nanosecond().to_be_bytes());
            history.insert(key, tx_encode(&change)?)?;
            audit::append(
                audit_tree,
                meta,
                audit::Draft {
                    kind: AuditKind::Registry,
                    job_id: None,
                    kommunkod: Some(code),
                    state: None,
                    operator: Some(operator.to_string()),
                    action: what.to_string(),
                    data: serde_json::json!({ "fields": changed_fields(&change.before, &change.after) }),
                },
                at,
            )?;
            Ok(change)
        });
        let change = unwrap_tx(result);
        // Dropped on failure too: the next read goes to sled.
        cache.remove(&code);
        let change = change?;
        cache.insert(code, after.clone());
        drop(cache);
        self.flush()?;
        Ok(change)
    }

    /// Every municipality with a registration, in code order.
    pub fn all_registered(&self) -> Result<Vec<(Kommunkod, Registered)>, StoreError> {
        let mut out = Vec::new();
        for item in self.registry.iter() {
            let (key, value) = item?;
            if let Ok(code) = String::from_utf8_lossy(&key).parse::<Kommunkod>() {
                out.push((code, decode(&value)?));
            }
        }
        Ok(out)
    }

    /// Municipalities an operator has put on hold, with who and why.
    pub fn holds(&self) -> Result<Vec<(Kommunkod, HoldNote)>, StoreError> {
        let mut out = Vec::new();
        for item in self.meta.scan_prefix(b"hold:") {
            let (key, value) = item?;
            let code = String::from_utf8_lossy(&key[5..]).to_string();
            if let Ok(code) = code.parse::<Kommunkod>() {
                out.push((code, decode(&value)?));
            }
        }
        Ok(out)
    }

    /// Puts a municipality on hold (`Some`) or releases it (`None`).
    pub fn set_hold(&self, code: Kommunkod, note: Option<&HoldNote>) -> Result<(), StoreError> {
        let key = format!("hold:{code}");
        match note {
            Some(n) => {
                self.meta.insert(key.as_bytes(), encode(n)?)?;
            }
            None => {
                self.meta.remove(key.as_bytes())?;
            }
        }
        self.flush()
    }

    /// The relay's recent failures: kept in the store so that a restart does not forget that
    /// the relay is down and hammer it.
    pub fn relay_health(&self) -> Result<RelayHealth, StoreError> {
        match self.meta.get(b"relay_health")? {
            Some(bytes) => decode(&bytes),
            None => Ok(RelayHealth::default()),
        }
    }

    /// Records the relay's health (not flushed: losing it costs one extra attempt).
    pub fn set_relay_health(&self, health: &RelayHealth) -> Result<(), StoreError> {
        self.meta
            .insert(b"relay_health".as_slice(), encode(health)?)?;
        Ok(())
    }

    /// Appends an operator action that changes no job state (e.g. deleting a quarantined job).
    pub fn audit_operator(&self, draft: audit::Draft) -> Result<(), StoreError> {
        let at = Timestamp::now();
        let result = (&self.audit, &self.meta).transaction(|(audit_tree, meta)| {
            audit::append(audit_tree, meta, draft.clone(), at)?;
            Ok(())
        });
        unwrap_tx(result)?;
        self.flush()
    }

    /// Checks the whole audit chain.
    pub fn verify_audit(&self) -> Result<audit::Verdict, StoreError> {
        let head = self.meta.get(b"audit_head")?.and_then(|b| {
            let v: serde_json::Value = serde_json::from_slice(&b).ok()?;
            Some((v["seq"].as_u64()?, v["hash"].as_str()?.to_string()))
        });
        let entries = self.audit.iter().map(|item| {
            item.map_err(|e| e.to_string()).map(|(k, v)| {
                let mut seq = [0u8; 8];
                seq.copy_from_slice(&k[..8.min(k.len())]);
                (u64::from_be_bytes(seq), v.to_vec())
            })
        });
        Ok(audit::verify(entries, head))
    }

    /// Audit entries from `since` on, oldest first.
    pub fn audit_since(&self, since: Timestamp) -> Result<Vec<AuditEntry>, StoreError> {
        let mut out = Vec::new();
        for item in self.audit.iter() {
            let (_, bytes) = item?;
            let entry: AuditEntry = serde_json::from_slice(&bytes)?;
            if entry.at >= since {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// Final jobs that finished before `before`, oldest first (for retention), each with its
    /// index key for [`Store::forget_finished`].
    pub fn finished_before(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, JobId)>, StoreError> {
        let end_ms = u64::try_from(before.as_millisecond()).unwrap_or(0);
        let mut out = Vec::new();
        for item in self.finished.range(..end_ms.to_be_bytes().to_vec()) {
            let (key, id) = item?;
            if let Ok(id) = String::from_utf8_lossy(&id).parse::<JobId>() {
                out.push((key.to_vec(), id));
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Drops an entry of the retention index once retention is done with it.
    pub fn forget_finished(&self, key: &[u8]) -> Result<(), StoreError> {
        self.finished.remove(key)?;
        Ok(())
    }

    /// Writes and flushes a heartbeat: proves the store is writable (for /healthz).
    pub fn check_writable(&self) -> Result<(), StoreError> {
        let now = Timestamp::now().as_millisecond().to_be_bytes();
        self.meta.insert(b"heartbeat".as_slice(), &now[..])?;
        self.flush()
    }

    /// Every change to a municipality's registration, oldest first.
    pub fn registry_history(&self, code: Kommunkod) -> Result<Vec<RegistryChange>, StoreError> {
        self.registry_history
            .scan_prefix(prefix(code.as_str()))
            .map(|item| decode(&item?.1))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::state::{Channel, Recipient};
    use jiff::SignedDuration;

    fn record(state: JobState) -> JobRecord {
        let now = Timestamp::now();
        JobRecord {
            id: JobId::generate(),
            source: "drop-1".into(),
            state,
            to: Some("2480".parse().expect("code")),
            recipients: vec![Recipient {
                kommunkod: "2480".parse().expect("code"),
                role: RecipientRole::Assigned,
                channel: Some(Channel::Post),
                letter: None,
                email: None,
            }],
            documents: vec![],
            received_at: now,
            updated_at: now,
            next_attempt: Some(now),
            attempts: 0,
            quarantine: None,
            receipt_written: false,
            events: 0,
            alerts: Vec::new(),
            unknown_deliveries: 0,
        }
    }

    /// A store with one queued job, flushed: the state both sides of a crash agree on.
    fn store_with(dir: &Path, job: &JobRecord) -> Store {
        let store = Store::open(dir).expect("open");
        store
            .enqueue(job, &[(JobState::Queued, "queued".into())])
            .expect("enqueue");
        store
    }

    /// A store whose queued job has been moved to `sending` by a journaled step only.
    fn store_with_sending(dir: &Path) -> (Store, JobRecord) {
        let job = record(JobState::Queued);
        let store = store_with(dir, &job);
        store
            .transition_journaled(&job.id, &[JobState::Queued], "sending", |r| {
                r.state = JobState::Sending;
                r.attempts += 1;
            })
            .expect("sending");
        (store, job)
    }

    /// The details of the job's events, oldest first.
    fn details(store: &Store, id: &JobId) -> Vec<String> {
        store
            .events(id)
            .expect("events")
            .into_iter()
            .map(|e| e.detail)
            .collect()
    }

    fn journal_files(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(dir.join(crate::store::journal::DIR))
            .expect("journal dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn journaled_transitions_lost_from_sled_are_replayed_in_order_at_the_next_open() {
        // What a crash leaves: sled without the changes, the journal with them. Made with
        // two stores that agree up to the journaled changes; the second gets the first's
        // journal, as if its process had died before flushing.
        let (a, b) = (
            tempfile::tempdir().expect("a"),
            tempfile::tempdir().expect("b"),
        );
        let job = record(JobState::Queued);
        let first = store_with(a.path(), &job);
        drop(store_with(b.path(), &job));
        first
            .transition_journaled(&job.id, &[JobState::Queued], "sending", |r| {
                r.state = JobState::Sending;
                r.attempts += 1;
            })
            .expect("sending");
        let delivered = first
            .transition_journaled(&job.id, &[JobState::Sending], "accepted", |r| {
                r.state = JobState::Delivered;
                r.next_attempt = None;
            })
            .expect("delivered");
        let written = journal_files(a.path());
        assert_eq!(written.len(), 1, "both changes in one file until a flush");
        let target = b.path().join(crate::store::journal::DIR);
        for file in &written {
            std::fs::copy(file, target.join(file.file_name().expect("name"))).expect("copy");
        }
        // A torn line after them, as a kill inside write(2) could leave.
        let mut torn = std::fs::read(&written[0]).expect("read");
        torn.extend_from_slice(b"{\"v\":1,\"detail\":\"acc");
        std::fs::write(target.join(written[0].file_name().expect("name")), torn).expect("w");

        let replayed = Store::open(b.path()).expect("reopen replays");
        let got = replayed.get(&job.id).expect("get").expect("job");
        assert_eq!(got.state, JobState::Delivered);
        assert_eq!(got.attempts, 1);
        assert_eq!(got.events, delivered.events);
        assert!(replayed.due(Timestamp::now(), 10).expect("due").is_empty());
        assert_eq!(
            details(&replayed, &job.id),
            ["queued", "sending", "accepted"]
        );
        assert!(matches!(
            replayed.verify_audit().expect("verify"),
            audit::Verdict::Ok { .. }
        ));
        assert!(
            journal_files(b.path()).is_empty(),
            "replayed files are removed"
        );
        drop(replayed);

        // The first store's own files replay onto a sled that has them: nothing is applied twice.
        drop(first);
        let again = Store::open(a.path()).expect("reopen");
        assert_eq!(
            again.events(&job.id).expect("events").len(),
            3,
            "an entry already in sled is skipped"
        );
    }

    /// What sled itself holds for the job, bypassing the journaled steps.
    fn in_sled(store: &Store, id: &JobId) -> JobRecord {
        decode(
            &store
                .jobs
                .get(id.as_str().as_bytes())
                .expect("get")
                .expect("job"),
        )
        .expect("decode")
    }

    #[test]
    fn journaled_steps_are_read_at_once_and_reach_sled_together_at_the_next_flush() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, job) = store_with_sending(dir.path());
        store
            .transition_journaled(&job.id, &[JobState::Sending], "accepted", |r| {
                r.state = JobState::Delivered;
                r.next_attempt = None;
            })
            .expect("delivered");

        // Every read sees them; sled does not have them yet.
        let seen = store.get(&job.id).expect("get").expect("job");
        assert_eq!(
            (seen.state, seen.attempts, seen.events),
            (JobState::Delivered, 1, 3)
        );
        assert_eq!(details(&store, &job.id), ["queued", "sending", "accepted"]);
        assert_eq!(
            store
                .list(Some(JobState::Delivered), 10)
                .expect("list")
                .len(),
            1
        );
        assert!(
            store.due(Timestamp::now(), 10).expect("due").is_empty(),
            "a job finished by a journaled step is not due, whatever sled's index says"
        );
        assert_eq!(in_sled(&store, &job.id).state, JobState::Queued);
        // A step that does not follow the journaled state is refused like any other.
        assert!(matches!(
            store.transition_journaled(&job.id, &[JobState::Sending], "again", |_| {}),
            Err(StoreError::Conflict {
                actual: JobState::Delivered,
                ..
            })
        ));

        store.flush().expect("flush");
        let stored = in_sled(&store, &job.id);
        assert_eq!((stored.state, stored.events), (JobState::Delivered, 3));
        assert_eq!(store.events(&job.id).expect("events").len(), 3);
        assert!(store.lock_unapplied().is_empty());
        assert!(matches!(
            store.verify_audit().expect("verify"),
            audit::Verdict::Ok { .. }
        ));
    }

    #[test]
    fn a_flushed_transition_writes_the_journaled_steps_before_it_and_follows_them() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, job) = store_with_sending(dir.path());
        // The operator's view of the job is the journaled one.
        assert!(matches!(
            store.transition(&job.id, &[JobState::Queued], "cancel", &[], |_| {}),
            Err(StoreError::Conflict {
                actual: JobState::Sending,
                ..
            })
        ));
        store
            .transition(&job.id, &[JobState::Sending], "deferred", &[], |r| {
                r.state = JobState::Deferred;
            })
            .expect("deferred");
        let stored = in_sled(&store, &job.id);
        assert_eq!((stored.state, stored.events), (JobState::Deferred, 3));
        assert_eq!(details(&store, &job.id), ["queued", "sending", "deferred"]);
        assert!(store.lock_unapplied().is_empty(), "nothing left to apply");
        store.flush().expect("a later flush applies nothing twice");
        assert_eq!(store.events(&job.id).expect("events").len(), 3);
    }

    #[test]
    fn a_job_deferred_by_a_journaled_step_is_due_at_its_new_time_not_its_old_one() {
        let dir = tempfile::tempdir().expect("dir");
        let job = record(JobState::Queued);
        let store = store_with(dir.path(), &job);
        let now = Timestamp::now();
        let later = now + SignedDuration::from_mins(10);
        store
            .transition_journaled(&job.id, &[JobState::Queued], "deferred", |r| {
                r.state = JobState::Deferred;
                r.next_attempt = Some(later);
            })
            .expect("deferred");
        assert!(store.due(now, 10).expect("due").is_empty());
        let due = store
            .due(later + SignedDuration::from_secs(1), 10)
            .expect("due");
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].state, JobState::Deferred);
        store.flush().expect("flush");
        assert!(
            store.due(now, 10).expect("due").is_empty(),
            "sled's index moved"
        );
        assert_eq!(store.due(later, 10).expect("due").len(), 1);
    }

    #[test]
    fn a_flush_retires_the_journal_file_it_covers() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, _) = store_with_sending(dir.path());
        assert_eq!(journal_files(dir.path()).len(), 1);
        assert!(
            store.flush_journaled().expect("flush"),
            "entries were waiting"
        );
        assert!(journal_files(dir.path()).is_empty());
        assert!(!store.flush_journaled().expect("flush"), "nothing to do");
    }

    #[test]
    fn enqueue_then_due_then_transition_to_final_leaves_schedule() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let job = record(JobState::Queued);
        store
            .enqueue(&job, &[(JobState::Queued, "received".into())])
            .expect("enqueue");
        assert!(matches!(
            store.enqueue(&job, &[(JobState::Queued, "again".into())]),
            Err(StoreError::AlreadyExists(_))
        ));
        let due = store.due(Timestamp::now(), 10).expect("due");
        assert_eq!(due.len(), 1);

        let done = store
            .transition(&job.id, &[JobState::Queued], "printed", &[], |r| {
                r.state = JobState::PrintQueued;
                r.next_attempt = None;
            })
            .expect("transition");
        assert_eq!(done.state, JobState::PrintQueued);
        assert!(store.due(Timestamp::now(), 10).expect("due").is_empty());
        assert_eq!(
            store.pending().expect("pending").len(),
            1,
            "receipt still owed"
        );
        store.mark_receipt_written(&job.id).expect("mark");
        assert!(store.pending().expect("pending").is_empty());

        let events = store.events(&job.id).expect("events");
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].state, JobState::PrintQueued);
    }

    #[test]
    fn a_group_enqueued_in_one_transaction_is_all_due_with_an_unbroken_audit_chain() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let group: Vec<_> = (0..3)
            .map(|_| {
                (
                    record(JobState::Queued),
                    vec![
                        (JobState::Received, "claimed".to_string()),
                        (JobState::Queued, "routed".to_string()),
                    ],
                )
            })
            .collect();
        store.enqueue_many(&group, false).expect("group");
        store.flush().expect("flush");
        let mut due: Vec<JobId> = store
            .due(Timestamp::now(), 10)
            .expect("due")
            .into_iter()
            .map(|r| r.id)
            .collect();
        let mut ids: Vec<JobId> = group.iter().map(|(r, _)| r.id.clone()).collect();
        due.sort();
        ids.sort();
        assert_eq!(due, ids);
        assert_eq!(store.events(&ids[0]).expect("events").len(), 2);
        assert!(matches!(
            store.verify_audit().expect("verify"),
            audit::Verdict::Ok { entries: 6 }
        ));
        // One id already known: the whole group is refused and nothing of it is written.
        let again = vec![group[0].clone(), (record(JobState::Queued), vec![])];
        assert!(matches!(
            store.enqueue_many(&again, false),
            Err(StoreError::AlreadyExists(_))
        ));
        assert!(store.get(&again[1].0.id).expect("get").is_none());
    }

    #[test]
    fn receipts_marked_as_a_group_leave_nothing_pending() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let jobs: Vec<JobRecord> = (0..2).map(|_| record(JobState::PrintQueued)).collect();
        for job in &jobs {
            let mut job = job.clone();
            job.next_attempt = None;
            store
                .enqueue(&job, &[(JobState::PrintQueued, "printed".into())])
                .expect("enqueue");
        }
        assert_eq!(store.pending().expect("pending").len(), 2);
        let mut ids: Vec<JobId> = jobs.iter().map(|j| j.id.clone()).collect();
        ids.push(JobId::generate()); // gone meanwhile: skipped
        store.mark_receipts_written(&ids).expect("mark");
        assert!(store.pending().expect("pending").is_empty());
    }

    #[test]
    fn transition_from_unexpected_state_is_a_conflict_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let job = record(JobState::Queued);
        store
            .enqueue(&job, &[(JobState::Queued, "received".into())])
            .expect("enqueue");
        let err = store
            .transition(&job.id, &[JobState::Sending], "x", &[], |r| {
                r.state = JobState::Delivered
            })
            .expect_err("conflict");
        assert!(matches!(err, StoreError::Conflict { .. }));
        assert_eq!(store.events(&job.id).expect("events").len(), 1);
    }

    #[test]
    fn due_excludes_future_attempts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let mut job = record(JobState::Deferred);
        job.next_attempt = Some(Timestamp::now() + SignedDuration::from_secs(3600));
        store
            .enqueue(&job, &[(JobState::Deferred, "deferred".into())])
            .expect("enqueue");
        assert!(store.due(Timestamp::now(), 10).expect("due").is_empty());
    }

    #[test]
    fn data_survives_reopen_and_list_filters_by_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = record(JobState::Queued);
        let b = record(JobState::Quarantined);
        {
            let store = Store::open(dir.path()).expect("open");
            store
                .enqueue(&a, &[(JobState::Queued, "received".into())])
                .expect("enqueue");
            store
                .enqueue(&b, &[(JobState::Quarantined, "quarantined".into())])
                .expect("enqueue");
        }
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(store.list(None, 10).expect("list").len(), 2);
        let q = store.list(Some(JobState::Quarantined), 10).expect("list");
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].id, b.id);
    }

    #[test]
    fn registry_changes_keep_history() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let code: Kommunkod = "2480".parse().expect("code");
        let first = Registered {
            postal_address: Some(
                crate::registry::PostalAddress::parse("Box 1\n901 84 Umeå").expect("addr"),
            ),
            ..Registered::default()
        };
        // Read (and kept in memory) before each change: a read after it sees the change.
        assert_eq!(store.registered(code).expect("read"), Registered::default());
        store
            .register(code, &first, "anna", "set")
            .expect("register");
        assert_eq!(store.registered(code).expect("read"), first);
        store
            .register(code, &Registered::default(), "bo", "set")
            .expect("register");
        assert_eq!(store.registered(code).expect("read"), Registered::default());
        let history = store.registry_history(code).expect("history");
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].before, first);
        assert_eq!(history[1].operator, "bo");
    }
}
