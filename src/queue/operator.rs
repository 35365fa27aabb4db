//! Operator control: retry now, hold, release, cancel, reroute to post, and the queue's shape.
//!
//! Every action is a compare-and-set transition in the store with an event that names the
//! operator and the reason, so the job's history says who did what and why. A job that is
//! being sent at this moment cannot be changed: the operator is told to try again.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::job::{JobId, Kommunkod};
use crate::spool::Spool;
use crate::store::event::{EventKind, PersonAction};
use crate::store::kinds::{AlertMark, Team};
use crate::store::state::{JobRecord, JobState};
use crate::store::{HoldNote, RelayHealth, Store, StoreError};

pub use kurir_protocol::action::{Action, ActionDone, StateHint, Target};

/// Who acts and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The operator.
    pub operator: String,
    /// The reason given.
    pub reason: String,
}

impl Actor {
    /// The history's step: this person did `action`, for their reason.
    fn did(&self, action: PersonAction) -> EventKind {
        EventKind::ByPerson {
            action,
            by: self.operator.clone(),
            reason: self.reason.trim().to_string(),
        }
    }
}

/// Why an action was refused.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such job.
    #[error("no job with id {0}")]
    NoJob(JobId),
    /// The job is in a state the action does not apply to.
    #[error("job {id} is {state}: {hint}")]
    WrongState {
        /// The job.
        id: JobId,
        /// Its state.
        state: JobState,
        /// Why the action does not apply, and what the operator can do.
        hint: StateHint,
    },
    /// A reason is required for this action.
    #[error("give a reason (--reason): it is recorded in the job's history")]
    NoReason,
    /// A file-system step failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A quarantined job whose folder is still in `spool/quarantine/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinedJob {
    /// The job.
    pub job_id: JobId,
    /// When kurir took it in.
    pub received_at: Timestamp,
    /// Its folder under `spool/quarantine/`.
    pub dir: String,
    /// The machine-readable reason.
    pub code: String,
    /// The reason for a person.
    pub summary: String,
}

/// What a quarantine folder holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantineFolder {
    /// The job.
    pub job: JobRecord,
    /// The folder.
    pub folder: std::path::PathBuf,
    /// Its `reason.txt`.
    pub reason: String,
    /// Its entries.
    pub files: Vec<FolderEntry>,
}

/// One entry of a quarantine folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderEntry {
    /// Its name.
    pub name: String,
    /// Its size.
    pub bytes: Option<u64>,
    /// What it is.
    pub kind: Option<EntryKind>,
}

/// What a folder entry is (a job folder should hold plain files only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// A symbolic link.
    Link,
    /// A folder.
    Directory,
    /// A plain file.
    File,
    /// A device, pipe or socket.
    Special,
}

/// The stores and files operator actions touch.
pub struct Operations<'a> {
    /// The store.
    pub store: &'a Store,
    /// The spool (quarantine folders).
    pub spool: &'a Spool,
}

impl Operations<'_> {
    fn job(&self, id: &JobId) -> Result<JobRecord, OperatorError> {
        self.store
            .get(id)?
            .ok_or_else(|| OperatorError::NoJob(id.clone()))
    }

    fn jobs_of(&self, code: Kommunkod) -> Result<Vec<JobRecord>, OperatorError> {
        Ok(self
            .store
            .pending()?
            .into_iter()
            .filter(|j| j.to == Some(code) && !j.state.is_final())
            .collect())
    }

    fn refuse(job: &JobRecord, hint: StateHint) -> OperatorError {
        OperatorError::WrongState {
            id: job.id.clone(),
            state: job.state,
            hint,
        }
    }

    fn busy_or(job: &JobRecord, hint: StateHint) -> OperatorError {
        if job.state == JobState::Sending {
            Self::refuse(job, StateHint::BeingSent)
        } else {
            Self::refuse(job, hint)
        }
    }

    /// The target's unfinished, waiting jobs; for one job, an error naming `hint` if it is not
    /// waiting.
    fn waiting(&self, target: &Target, hint: StateHint) -> Result<Vec<JobRecord>, OperatorError> {
        match target {
            Target::Job(id) => {
                let job = self.job(id)?;
                if !job.state.is_waiting() {
                    return Err(Self::busy_or(&job, hint));
                }
                Ok(vec![job])
            }
            Target::Municipality(code) => Ok(self
                .jobs_of(*code)?
                .into_iter()
                .filter(|j| j.state.is_waiting())
                .collect()),
            Target::Everything => Ok(self
                .store
                .pending()?
                .into_iter()
                .filter(|j| j.state.is_waiting())
                .collect()),
        }
    }

    /// Applies one recorded change to each job (compare-and-set on its current state).
    fn change_each(
        &self,
        jobs: Vec<JobRecord>,
        what: &EventKind,
        change: impl Fn(&mut JobRecord),
    ) -> Result<Vec<JobId>, OperatorError> {
        let mut done = Vec::with_capacity(jobs.len());
        for job in jobs {
            self.store
                .transition(&job.id, &[job.state], what, &[], &change)?;
            done.push(job.id);
        }
        Ok(done)
    }

    /// Tries the job (or the municipality's jobs) at once, and forgets the relay's back-off.
    pub fn retry(&self, target: &Target, actor: &Actor) -> Result<ActionDone, OperatorError> {
        let now = Timestamp::now();
        let jobs = self.waiting(target, StateHint::RetryNeedsWaiting)?;
        self.store.set_relay_health(&RelayHealth::default())?;
        let done = self.change_each(jobs, &actor.did(PersonAction::RetryRequested), |r| {
            r.next_attempt = Some(now);
        })?;
        Ok(ActionDone::of(Action::Retry, done))
    }

    /// Stops the job (or the municipality's jobs, including ones that arrive later) until
    /// released.
    pub fn hold(&self, target: &Target, actor: &Actor) -> Result<ActionDone, OperatorError> {
        if actor.reason.trim().is_empty() {
            return Err(OperatorError::NoReason);
        }
        if let Target::Municipality(code) = target {
            self.store.set_hold(
                *code,
                Some(&HoldNote {
                    operator: actor.operator.clone(),
                    reason: actor.reason.clone(),
                    at: Timestamp::now(),
                }),
            )?;
        }
        let jobs = self.waiting(target, StateHint::HoldNeedsWaiting)?;
        let done = self.change_each(jobs, &actor.did(PersonAction::Held), JobRecord::hold)?;
        Ok(ActionDone::of(Action::Hold, done))
    }

    /// Lets held jobs go on at once.
    pub fn release(&self, target: &Target, actor: &Actor) -> Result<ActionDone, OperatorError> {
        let now = Timestamp::now();
        let jobs = match target {
            Target::Job(id) => {
                let job = self.job(id)?;
                if !job.allows(Action::Release) {
                    return Err(Self::refuse(&job, StateHint::ReleaseNeedsHeld));
                }
                vec![job]
            }
            Target::Municipality(code) => {
                self.store.set_hold(*code, None)?;
                self.jobs_of(*code)?
                    .into_iter()
                    .filter(|j| j.state == JobState::Held)
                    .collect()
            }
            // Held jobs, not municipalities' holds: those are lifted one by one, on purpose.
            Target::Everything => self
                .store
                .pending()?
                .into_iter()
                .filter(|j| j.state == JobState::Held)
                .collect(),
        };
        let done = self.change_each(jobs, &actor.did(PersonAction::Released), |r| r.queue(now))?;
        Ok(ActionDone::of(Action::Release, done))
    }

    /// Records that a person dealt with the open alerts of the job (phoned the
    /// municipality, delivered the documents another way): the alerts close, whatever the
    /// job's state. A reason is required: it says what was done. With `only`, just that
    /// team's alerts close: a caseworker does not close what operations must look at.
    pub fn acknowledge(
        &self,
        id: &JobId,
        actor: &Actor,
        only: Option<Team>,
        alert: Option<AlertMark>,
    ) -> Result<ActionDone, OperatorError> {
        if actor.reason.trim().is_empty() {
            return Err(OperatorError::NoReason);
        }
        let job = self.job(id)?;
        let open: Vec<_> = job
            .open_alerts()
            .into_iter()
            .filter(|m| only.is_none_or(|team| m.kind.team() == team))
            .filter(|m| alert.is_none_or(|one| *m == one))
            .collect();
        if open.is_empty() {
            return Err(Self::refuse(&job, StateHint::NoOpenAlert));
        }
        let what = actor.did(PersonAction::Acknowledged {
            alerts: open.iter().map(|m| m.kind).collect(),
        });
        self.store.transition(id, &[job.state], &what, &[], |r| {
            for mark in &open {
                if !r.acknowledged.contains(mark) {
                    r.acknowledged.push(*mark);
                }
            }
        })?;
        Ok(ActionDone::of(Action::Acknowledge, vec![id.clone()]))
    }

    /// Notes a phone call about the job's open alerts that reached nobody: the history says
    /// who tried and when, and the alerts stay open for the next call.
    pub fn called_no_answer(
        &self,
        id: &JobId,
        actor: &Actor,
        alert: AlertMark,
    ) -> Result<ActionDone, OperatorError> {
        if actor.reason.trim().is_empty() {
            return Err(OperatorError::NoReason);
        }
        let job = self.job(id)?;
        if !alert.kind.is_a_call() || !job.open_alerts().contains(&alert) {
            return Err(Self::refuse(&job, StateHint::NoOpenAlert));
        }
        self.store.transition(
            id,
            &[job.state],
            &actor.did(PersonAction::CalledNoAnswer),
            &[],
            |_| {},
        )?;
        Ok(ActionDone::of(Action::CallNoted, vec![id.clone()]))
    }

    /// Stops a job for good; its receipt (written by the receipt writer) says so.
    pub fn cancel(&self, id: &JobId, actor: &Actor) -> Result<ActionDone, OperatorError> {
        if actor.reason.trim().is_empty() {
            return Err(OperatorError::NoReason);
        }
        let job = self.job(id)?;
        if !job.allows(Action::Cancel) {
            return Err(Self::busy_or(&job, StateHint::Finished));
        }
        self.store.transition(
            id,
            &[job.state],
            &actor.did(PersonAction::Cancelled),
            &[],
            JobRecord::cancel,
        )?;
        Ok(ActionDone::of(Action::Cancel, vec![id.clone()]))
    }

    /// Sends every recipient still waiting for e-mail a letter instead, at once.
    pub fn reroute_to_post(&self, id: &JobId, actor: &Actor) -> Result<ActionDone, OperatorError> {
        if actor.reason.trim().is_empty() {
            return Err(OperatorError::NoReason);
        }
        let job = self.job(id)?;
        if !job.state.is_waiting() && job.state != JobState::Held {
            return Err(Self::busy_or(&job, StateHint::Finished));
        }
        if !job.allows(Action::Reroute) {
            return Err(Self::refuse(&job, StateHint::NoEmailRecipient));
        }
        let now = Timestamp::now();
        self.store.transition(
            id,
            &[job.state],
            &actor.did(PersonAction::ReroutedToPost),
            &[],
            |r| r.fall_back_to_post(&r.awaiting_email(), now, true),
        )?;
        Ok(ActionDone::of(Action::Reroute, vec![id.clone()]))
    }
}

impl Operations<'_> {
    fn quarantined(&self, id: &JobId) -> Result<(JobRecord, std::path::PathBuf), OperatorError> {
        let job = self.job(id)?;
        let dir = match (&job.quarantine, job.state) {
            (Some(q), JobState::Quarantined) => self.spool.quarantine().join(&q.dir),
            _ => return Err(Self::refuse(&job, StateHint::NotQuarantined)),
        };
        if !dir.exists() {
            return Err(Self::refuse(&job, StateHint::QuarantineGone));
        }
        Ok((job, dir))
    }

    /// Quarantined jobs whose folder is still in `spool/quarantine/`.
    pub fn quarantine_list(&self) -> Result<Vec<QuarantinedJob>, OperatorError> {
        Ok(self
            .store
            .list(&[JobState::Quarantined], 10_000)?
            .into_iter()
            .filter_map(|j| {
                let q = j.quarantine.clone()?;
                self.spool
                    .quarantine()
                    .join(&q.dir)
                    .exists()
                    .then_some(QuarantinedJob {
                        job_id: j.id,
                        received_at: j.received_at,
                        dir: q.dir,
                        code: q.code,
                        summary: q.summary,
                    })
            })
            .collect())
    }

    /// A quarantined job: its reason and the files it holds.
    pub fn quarantine_show(&self, id: &JobId) -> Result<QuarantineFolder, OperatorError> {
        let (job, dir) = self.quarantined(id)?;
        let reason = std::fs::read_to_string(dir.join("reason.txt")).unwrap_or_default();
        let mut files = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let meta = std::fs::symlink_metadata(e.path()).ok();
                files.push(FolderEntry {
                    name: e.file_name().to_string_lossy().into_owned(),
                    bytes: meta.as_ref().map(|m| m.len()),
                    kind: meta.map(|m| {
                        if m.file_type().is_symlink() {
                            EntryKind::Link
                        } else if m.is_dir() {
                            EntryKind::Directory
                        } else if m.is_file() {
                            EntryKind::File
                        } else {
                            EntryKind::Special
                        }
                    }),
                });
            }
        }
        Ok(QuarantineFolder {
            job,
            folder: dir,
            reason,
            files,
        })
    }

    /// Puts a corrected quarantined job back into `incoming/`, where it becomes a new job.
    pub fn quarantine_release(
        &self,
        id: &JobId,
        actor: &Actor,
    ) -> Result<ActionDone, OperatorError> {
        if actor.reason.trim().is_empty() {
            return Err(OperatorError::NoReason);
        }
        let (job, dir) = self.quarantined(id)?;
        if !dir.is_dir() {
            return Err(Self::refuse(&job, StateHint::NotAFolder));
        }
        for kurir_file in ["reason.txt", "reason.kurir.txt", crate::spool::SOURCE_NOTE] {
            let _ = std::fs::remove_file(dir.join(kurir_file));
        }
        let name = format!("released-{id}");
        let target = self.spool.incoming().join(&name);
        std::fs::rename(&dir, &target).map_err(|source| OperatorError::Io {
            what: format!("moving {} to {}", dir.display(), target.display()),
            source,
        })?;
        self.store.transition(
            id,
            &[JobState::Quarantined],
            &actor.did(PersonAction::ReleasedFromQuarantine { name: name.clone() }),
            &[],
            |_| {},
        )?;
        Ok(ActionDone {
            action: Action::QuarantineRelease,
            jobs: vec![id.clone()],
            incoming: Some(name),
        })
    }

    /// Deletes a quarantined job's folder for good.
    pub fn quarantine_delete(
        &self,
        id: &JobId,
        actor: &Actor,
    ) -> Result<ActionDone, OperatorError> {
        if actor.reason.trim().is_empty() {
            return Err(OperatorError::NoReason);
        }
        let (_, dir) = self.quarantined(id)?;
        let removed = if dir.is_dir() {
            std::fs::remove_dir_all(&dir)
        } else {
            std::fs::remove_file(&dir)
        };
        removed.map_err(|source| OperatorError::Io {
            what: format!("deleting {}", dir.display()),
            source,
        })?;
        self.store.transition(
            id,
            &[JobState::Quarantined],
            &actor.did(PersonAction::DeletedFromQuarantine),
            &[],
            |_| {},
        )?;
        Ok(ActionDone::of(Action::QuarantineDelete, vec![id.clone()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kinds::{AlertKind, AlertMark};

    fn failed_with_conflict() -> JobRecord {
        let mut job = JobRecord::for_tests(JobState::Failed);
        job.alerts = vec![
            AlertMark::job(AlertKind::Failed),
            AlertMark::job(AlertKind::ConflictingReport),
        ];
        job
    }

    #[test]
    fn a_caseworker_closes_dispatch_alerts_and_leaves_operations_their_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let spool = Spool::new(dir.path().join("spool"));
        let job = failed_with_conflict();
        store
            .enqueue(
                &job,
                &[(
                    JobState::Failed,
                    EventKind::Note {
                        text: "failed".into(),
                    },
                )],
            )
            .expect("enqueue");
        let ops = Operations {
            store: &store,
            spool: &spool,
        };
        let actor = Actor {
            operator: "SE2321000016-a1".into(),
            reason: "ringt".into(),
        };
        ops.acknowledge(&job.id, &actor, Some(Team::Dispatch), None)
            .expect("acknowledged");
        let open = store.get(&job.id).expect("get").expect("job").open_alerts();
        assert_eq!(open, vec![AlertMark::job(AlertKind::ConflictingReport)]);
        // Nothing of dispatch's is left for the caseworker to close.
        assert!(ops
            .acknowledge(&job.id, &actor, Some(Team::Dispatch), None)
            .is_err());
        ops.acknowledge(&job.id, &actor, None, None)
            .expect("operations");
        assert!(store
            .get(&job.id)
            .expect("get")
            .expect("job")
            .open_alerts()
            .is_empty());
    }

    #[test]
    fn a_call_closes_the_one_alert_it_answers_and_an_unanswered_call_closes_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let spool = Spool::new(dir.path().join("spool"));
        let mut job = JobRecord::for_tests(JobState::Delivered);
        let assigned = AlertMark::recipient(AlertKind::FellBack, "2480".parse().expect("code"));
        let copy = AlertMark::recipient(AlertKind::FellBack, "0180".parse().expect("code"));
        job.alerts = vec![assigned, copy];
        let note = EventKind::Note {
            text: "delivered".into(),
        };
        store
            .enqueue(&job, &[(JobState::Delivered, note)])
            .expect("enqueue");
        let ops = Operations {
            store: &store,
            spool: &spool,
        };
        let actor = Actor {
            operator: "SE2321000016-a1".into(),
            reason: "ringt".into(),
        };
        let open = || store.get(&job.id).expect("get").expect("job").open_alerts();
        ops.called_no_answer(&job.id, &actor, copy).expect("noted");
        assert_eq!(open(), vec![assigned, copy]);
        // An alert the job does not have, or one that is no call, is no call to note.
        let conflict = AlertMark::job(AlertKind::ConflictingReport);
        assert!(ops.called_no_answer(&job.id, &actor, conflict).is_err());
        // The copy municipality knows: the assigned one must still be called.
        ops.acknowledge(&job.id, &actor, Some(Team::Dispatch), Some(copy))
            .expect("acknowledged");
        assert_eq!(open(), vec![assigned]);
    }
}
