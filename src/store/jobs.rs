//! Writing a job's steps: intake's first record (`enqueue`, `enqueue_many`) and every later
//! transition, each with its event, its audit entry and the indexes (`due`, `pending`,
//! `finished`) in one transaction over the trees a job writes ([`JobTrees`]). How durable a
//! call is when it returns is its name's promise: flushed, lazy, or journaled.

use super::*;

/// The trees a job's transition writes, inside one transaction.
pub(super) struct JobTrees<'a> {
    /// Seals the audit chain's head.
    pub(super) integrity: &'a super::seal::IntegrityKey,
    pub(super) jobs: &'a TransactionalTree,
    pub(super) events: &'a TransactionalTree,
    pub(super) due: &'a TransactionalTree,
    pub(super) pending: &'a TransactionalTree,
    pub(super) finished: &'a TransactionalTree,
    pub(super) proof: &'a TransactionalTree,
    pub(super) receipts: &'a TransactionalTree,
    pub(super) open_alerts: &'a TransactionalTree,
    pub(super) alerts_owed: &'a TransactionalTree,
    pub(super) audit: &'a TransactionalTree,
    pub(super) meta: &'a TransactionalTree,
    /// For a letter written with the transition.
    pub(super) letters: &'a TransactionalTree,
    /// For its batch's record.
    pub(super) batches: &'a TransactionalTree,
    /// Submission key digests → the job that had them first.
    pub(super) submissions: &'a TransactionalTree,
}

/// The indexes a job's record keeps, inside one transaction.
pub(super) struct Indexes<'a> {
    pub(super) due: &'a TransactionalTree,
    pub(super) pending: &'a TransactionalTree,
    pub(super) finished: &'a TransactionalTree,
    pub(super) proof: &'a TransactionalTree,
    pub(super) receipts: &'a TransactionalTree,
    pub(super) open_alerts: &'a TransactionalTree,
    pub(super) alerts_owed: &'a TransactionalTree,
}

impl JobTrees<'_> {
    pub(super) fn indexes(&self) -> Indexes<'_> {
        Indexes {
            due: self.due,
            pending: self.pending,
            finished: self.finished,
            proof: self.proof,
            receipts: self.receipts,
            open_alerts: self.open_alerts,
            alerts_owed: self.alerts_owed,
        }
    }

    /// Writes one step of a job from `old` to `new` (whose `events` is one more): its event,
    /// the record, the indexes and the audit entry, all as of `new.updated_at`.
    pub(super) fn write_step(
        &self,
        old: &JobRecord,
        new: &JobRecord,
        what: &EventKind,
        data: serde_json::Value,
    ) -> TxResult<()> {
        let event = Event {
            at: new.updated_at,
            state: new.state,
            detail: what.to_string(),
            what: Some(what.clone()),
        };
        self.record_event(new, old.events, &event, data)?;
        self.jobs
            .insert(new.id.as_str().as_bytes(), tx_encode(new)?)?;
        reindex(&self.indexes(), Some(old), new)?;
        Ok(())
    }

    /// Writes a job's event number `seq` and its audit entry (with `data`, if any).
    pub(super) fn record_event(
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
            self.integrity,
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
    pub(super) fn catch_up(
        &self,
        stored: JobRecord,
        unapplied: &[Unapplied],
    ) -> TxResult<JobRecord> {
        let mut current = stored;
        for step in unapplied {
            if step.record.events == current.events + 1 {
                self.write_step(&current, &step.record, &step.what, serde_json::Value::Null)?;
                current = step.record.clone();
            }
        }
        Ok(current)
    }
}

pub(super) fn event_key(id: &JobId, seq: u32) -> Vec<u8> {
    let mut key = id.as_str().as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

pub(super) fn due_key(at: Timestamp, id: &JobId) -> Vec<u8> {
    let ms = u64::try_from(at.as_millisecond()).unwrap_or(0);
    let mut key = ms.to_be_bytes().to_vec();
    key.extend_from_slice(id.as_str().as_bytes());
    key
}

/// The record a transition leaves: `change` applied, stamped `now`, one event more, and a
/// receipt owed again if the state moved.
pub(super) fn next_record(
    old: &JobRecord,
    change: impl Fn(&mut JobRecord),
    now: Timestamp,
) -> JobRecord {
    let mut new = old.clone();
    change(&mut new);
    new.updated_at = now;
    // A receipt lists the state and every event: a new state, or a new event of a finished
    // job (a report, a note), makes it owed again.
    if new.state != old.state || new.state.is_final() {
        new.receipt_written = false;
    }
    new.events = old.events + 1;
    new
}

/// Compare-and-set: the job must be in one of `expected`.
pub(super) fn check_expected(record: &JobRecord, expected: &[JobState]) -> Result<(), StoreError> {
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

/// The index maintenance every job write does: due entry, pending marker, retention's
/// finished entry, the proof watch, the receipt owed and the open alerts follow the record.
pub(super) fn reindex(
    ix: &Indexes<'_>,
    old: Option<&JobRecord>,
    new: &JobRecord,
) -> Result<(), UnabortableTransactionError> {
    let Indexes {
        due,
        pending,
        finished,
        proof,
        receipts,
        open_alerts,
        alerts_owed,
    } = *ix;
    let open = new.open_alerts();
    for mark in old.map(JobRecord::open_alerts).unwrap_or_default() {
        if !open.contains(&mark) {
            open_alerts.remove(mark.index_key(&new.id))?;
        }
    }
    for mark in open {
        open_alerts.insert(mark.index_key(&new.id), &[])?;
    }
    let owed = new.owed_alerts();
    for mark in old.map(JobRecord::owed_alerts).unwrap_or_default() {
        if !owed.contains(&mark) {
            alerts_owed.remove(mark.index_key(&new.id))?;
        }
    }
    for mark in owed {
        alerts_owed.insert(mark.index_key(&new.id), &[])?;
    }
    if new.owes_receipt() {
        receipts.insert(new.id.as_str().as_bytes(), &[])?;
    } else if old.is_some_and(JobRecord::owes_receipt) {
        receipts.remove(new.id.as_str().as_bytes())?;
    }
    if new.awaits_proof() {
        proof.insert(new.id.as_str().as_bytes(), &[])?;
    } else if old.is_some_and(JobRecord::awaits_proof) {
        proof.remove(new.id.as_str().as_bytes())?;
    }
    let was_final = old.is_some_and(|o| o.state.is_final());
    if let (Some(old), false) = (old.filter(|_| was_final), new.state.is_final()) {
        // Reopened (a delivery report said it failed after all): not finished any more.
        finished.remove(due_key(old.updated_at, &new.id))?;
    }
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
    /// Records a new job with its first events (e.g. received, then queued), durably. Fails
    /// if the id exists.
    pub fn enqueue(
        &self,
        record: &JobRecord,
        history: &[(JobState, EventKind)],
    ) -> Result<(), StoreError> {
        self.enqueue_many(&[(record.clone(), history.to_vec())], true)
    }

    /// Records new jobs, each with its first events, in one transaction (intake's group
    /// commit: one log write for the group instead of one per job). Durable only after a
    /// flush unless `durable`. Fails, recording none, if any id exists.
    pub fn enqueue_many(
        &self,
        jobs: &[(JobRecord, Vec<(JobState, EventKind)>)],
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
                    .map(|(state, what)| Event {
                        at: record.updated_at,
                        state: *state,
                        detail: what.to_string(),
                        what: Some(what.clone()),
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
                // A submission key is had once: the first job keeps it; a duplicate (marked
                // by intake) records nothing in the index.
                if let (Some(digest), None) = (&record.submission, &record.duplicate_of) {
                    if let Some(first) = trees.submissions.get(digest.as_bytes())? {
                        let first = String::from_utf8_lossy(&first).to_string();
                        return abort(StoreError::SubmissionTaken(first));
                    }
                    trees
                        .submissions
                        .insert(digest.as_bytes(), record.id.as_str().as_bytes())?;
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
                reindex(&trees.indexes(), None, record)?;
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
        what: &EventKind,
        side: &[SideWrite],
        change: impl Fn(&mut JobRecord),
    ) -> Result<JobRecord, StoreError> {
        self.transition_with(
            id,
            expected,
            what,
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
        what: &EventKind,
        side: &[SideWrite],
        change: impl Fn(&mut JobRecord),
    ) -> Result<JobRecord, StoreError> {
        self.transition_with(
            id,
            expected,
            what,
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
        what: &EventKind,
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
            detail: what.to_string(),
            what: Some(what.clone()),
            record: &new,
        })?;
        if let Err(e) = journal.append(&entry) {
            drop(journal);
            tracing::warn!(job_id = %id, error = %e, "journal not writable; flushing instead");
            return self.transition(id, expected, what, &[], change);
        }
        self.lock_unapplied()
            .entry(id.clone())
            .or_default()
            .push(Unapplied {
                what: what.clone(),
                record: new.clone(),
            });
        drop(journal);
        self.tell_observer(&new, Some(old.state));
        Ok(new)
    }

    pub(super) fn transition_with(
        &self,
        id: &JobId,
        expected: &[JobState],
        what: &EventKind,
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
            trees.write_step(&old, &new, what, data)?;
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
        self.mark(ids, |r| {
            let was = r.receipt_written;
            r.receipt_written = true;
            !was
        })
    }

    /// Notes these alerts raised (their files written): the alert writer's, after it wrote
    /// them. Durable with the next flush: lost in a crash, the note is made again — the
    /// alert's file is there, so it is not raised twice.
    pub fn mark_alerts_raised(
        &self,
        raised: &[(JobId, crate::store::state::AlertMark)],
    ) -> Result<(), StoreError> {
        let ids: Vec<JobId> = raised.iter().map(|(id, _)| id.clone()).collect();
        self.mark(&ids, |r| {
            let mut changed = false;
            let id = r.id.clone();
            for (_, mark) in raised.iter().filter(|(of, _)| *of == id) {
                changed |= r.alert_raised(*mark);
            }
            changed
        })
    }

    /// Notes that the print batches' manifests list these jobs' letters: their receipts,
    /// which name the batch, may be written now. Not flushed (a manifest is rewritten from the
    /// store at the next start, and the note with it).
    pub fn mark_listed(&self, ids: &[JobId]) -> Result<(), StoreError> {
        self.mark(ids, |r| {
            let was = r.manifest_pending;
            r.manifest_pending = false;
            was
        })?;
        self.receipts_wanted.notify_one();
        Ok(())
    }

    /// Changes a flag of many jobs in one transaction, without an event (a note about files,
    /// not a step of the job). `change` says whether it changed anything.
    fn mark(
        &self,
        ids: &[JobId],
        change: impl Fn(&mut JobRecord) -> bool,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        // Journaled steps of these jobs go into sled first: applied later, they would write
        // the whole record over this flag.
        let _journal = self.journal.lock();
        let steps: HashMap<JobId, Vec<Unapplied>> = {
            let unapplied = self.lock_unapplied();
            ids.iter()
                .filter_map(|id| unapplied.get(id).map(|s| (id.clone(), s.clone())))
                .collect()
        };
        self.apply_unapplied(&steps)?;
        let _gate = self.gate();
        let trees = (
            &self.jobs,
            &self.due,
            &self.pending,
            &self.finished,
            &self.proof_watch,
            &self.receipts_owed,
            &self.open_alerts,
            &self.alerts_owed,
        );
        let result = trees.transaction(
            |(jobs, due, pending, finished, proof, receipts, open_alerts, alerts_owed)| {
                let ix = Indexes {
                    due,
                    pending,
                    finished,
                    proof,
                    receipts,
                    open_alerts,
                    alerts_owed,
                };
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
                    if change(&mut new) {
                        jobs.insert(key, tx_encode(&new)?)?;
                        reindex(&ix, Some(&old), &new)?;
                    }
                }
                Ok(())
            },
        );
        unwrap_tx(result)
    }
}
