//! Journaled steps kept in memory until the next flush writes them into sled (group commit),
//! and the replay of a journal an earlier run left behind. Every read of the store sees these
//! steps at once ([`newer_of`]); the journal file ([`super::journal`]) is what makes them
//! survive a crash of the process before they reach sled.

use super::*;

/// A journaled transition that is not in sled yet: reads see it at once; the next flush,
/// or the next sled transition of the same job, writes it there (group commit).
#[derive(Debug, Clone)]
pub(super) struct Unapplied {
    /// What the step was.
    pub(super) what: EventKind,
    /// The record as the transition left it (`events` counts its event).
    pub(super) record: JobRecord,
}

/// One journaled transition: the record as the transition left it, and its event's detail.
#[derive(Serialize, Deserialize)]
pub(super) struct JournalEntry<R> {
    pub(super) v: u32,
    /// The step in English words (all a journal written before 0.3 has).
    #[serde(default)]
    pub(super) detail: String,
    /// The step as a value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) what: Option<EventKind>,
    pub(super) record: R,
}

/// The job as its latest transition left it: the journaled step if it is newer than what
/// sled holds (sled may have it already when a flush ran in between).
pub(super) fn newer_of(stored: JobRecord, journaled: Option<Unapplied>) -> JobRecord {
    match journaled {
        Some(step) if step.record.events > stored.events => step.record,
        _ => stored,
    }
}

impl Store {
    pub(super) fn lock_unapplied(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<JobId, Vec<Unapplied>>> {
        self.unapplied.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The job's journaled steps not in sled yet, oldest first.
    pub(super) fn unapplied_of(&self, id: &JobId) -> Vec<Unapplied> {
        self.lock_unapplied().get(id).cloned().unwrap_or_default()
    }

    /// The job's latest journaled step not in sled yet, if any.
    pub(super) fn last_unapplied(&self, id: &JobId) -> Option<Unapplied> {
        self.lock_unapplied()
            .get(id)
            .and_then(|s| s.last().cloned())
    }

    /// Forgets the job's journaled steps up to `events`: sled has them now.
    pub(super) fn forget_applied(&self, id: &JobId, events: u32) {
        let mut unapplied = self.lock_unapplied();
        if let Some(steps) = unapplied.get_mut(id) {
            steps.retain(|s| s.record.events > events);
            if steps.is_empty() {
                unapplied.remove(id);
            }
        }
    }

    /// Writes journaled steps into sled, all jobs in one transaction.
    pub(super) fn apply_unapplied(
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

    /// Applies what the journal of an earlier run holds and is not in sled yet (it was
    /// journaled, then the process died before a flush), then flushes and deletes the files.
    /// An entry applies if it is the job's next transition; one already in sled is skipped.
    /// A torn line (the process died inside its write) is skipped: its change was not
    /// acknowledged to anyone.
    pub(super) fn replay(
        &self,
        leftovers: Vec<crate::store::journal::Leftover>,
    ) -> Result<usize, StoreError> {
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
                if !(OLDEST_FORMAT..=FORMAT_VERSION).contains(&entry.v) {
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
                let what = entry.what.unwrap_or(EventKind::Note { text: entry.detail });
                self.transition_with(
                    &record.id,
                    &[current.state],
                    &what,
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
}
