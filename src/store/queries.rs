//! Reading jobs: one record, its events, what is due, what has work left, the newest first.
//! Every read sees the journaled steps that have not reached sled yet, so a step is visible
//! the moment the call that made it returns.

use super::*;
use crate::store::state::AlertMark;

impl Store {
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
                    detail: step.what.to_string(),
                    what: Some(step.what),
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
            if key.as_ref() == super::migrate::DOWNGRADE_GUARD.as_bytes() {
                continue;
            }
            let id = String::from_utf8_lossy(&key).to_string();
            if let Ok(id) = id.parse::<JobId>() {
                if let Some(record) = self.get(&id)? {
                    out.push(record);
                }
            }
        }
        Ok(out)
    }

    /// Newest jobs first, only those in one of `states` (all when empty), at most `limit`.
    pub fn list(&self, states: &[JobState], limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.jobs.iter().rev() {
            if item
                .as_ref()
                .is_ok_and(|(k, _)| k.as_ref() == super::migrate::DOWNGRADE_GUARD.as_bytes())
            {
                continue;
            }
            let stored: JobRecord = decode(&item?.1)?;
            let journaled = self.last_unapplied(&stored.id);
            let record = newer_of(stored, journaled);
            if states.is_empty() || states.contains(&record.state) {
                out.push(record);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The job that first had the submission key whose digest this is, if any.
    pub fn submission(&self, digest: &str) -> Result<Option<JobId>, StoreError> {
        Ok(self
            .submissions
            .get(digest.as_bytes())?
            .and_then(|v| String::from_utf8_lossy(&v).parse().ok()))
    }

    /// Every open alert ([`JobRecord::open_alerts`]), by job id.
    pub fn open_alerts(&self) -> Result<Vec<(JobId, AlertMark)>, StoreError> {
        let mut out = Vec::new();
        for item in self.open_alerts.iter() {
            let (key, _) = item?;
            if let Some(open) = AlertMark::from_index_key(&key) {
                out.push(open);
            }
        }
        Ok(out)
    }

    /// Alerts marked and not yet raised ([`JobRecord::owed_alerts`]), at most `limit`: what
    /// the alert writer raises.
    pub fn owed_alerts(&self, limit: usize) -> Result<Vec<(JobId, AlertMark)>, StoreError> {
        let mut out = Vec::new();
        for item in self.alerts_owed.iter() {
            let (key, _) = item?;
            if let Some(owed) = AlertMark::from_index_key(&key) {
                out.push(owed);
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Jobs with a delivery report or read notification still awaited and not yet alerted on
    /// ([`JobRecord::awaits_proof`]), as they stand now. Kept as an index, so the deadline check
    /// reads only these however long the history grows; a journaled step reaches the index at
    /// the next flush.
    pub fn awaiting_proof(&self) -> Result<Vec<JobRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.proof_watch.iter() {
            let (key, _) = item?;
            let Ok(id) = String::from_utf8_lossy(&key).parse::<JobId>() else {
                continue;
            };
            if let Some(job) = self.get(&id)? {
                out.push(job);
            }
        }
        Ok(out)
    }

    /// Final jobs whose receipt is not written yet, at most `limit` (what the receipt writer
    /// reads). A journaled step reaches this index at the next flush: the writer flushes first.
    pub fn owed_receipts(&self, limit: usize) -> Result<Vec<JobId>, StoreError> {
        let mut out = Vec::new();
        for item in self.receipts_owed.iter() {
            let (key, _) = item?;
            if let Ok(id) = String::from_utf8_lossy(&key).parse::<JobId>() {
                out.push(id);
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}
