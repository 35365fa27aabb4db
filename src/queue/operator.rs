//! Operator control: retry now, hold, release, cancel, reroute to post, and the queue's shape.
//!
//! Every action is a compare-and-set transition in the store with an event that names the
//! operator and the reason, so the job's history says who did what and why. A job that is
//! being sent at this moment cannot be changed: the operator is told to try again.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::job::{JobId, Kommunkod};
use crate::registry::Seed;
use crate::spool::Spool;
use crate::store::state::{Channel, JobRecord, JobState};
use crate::store::{HoldNote, RelayHealth, Store, StoreError};

/// What an action applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// One job.
    Job(JobId),
    /// Every unfinished job whose assigned municipality this is.
    Municipality(Kommunkod),
}

/// Who acts and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The operator.
    pub operator: String,
    /// The reason given.
    pub reason: String,
}

impl Actor {
    fn says(&self, what: &str) -> String {
        if self.reason.trim().is_empty() {
            format!("{what} by {}", self.operator)
        } else {
            format!("{what} by {}: {}", self.operator, self.reason.trim())
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
        /// What the operator can do.
        hint: &'static str,
    },
    /// A reason is required for this action.
    #[error("give a reason (--reason): it is recorded in the job's history")]
    NoReason,
    /// The receipt could not be written.
    #[error(transparent)]
    Receipt(#[from] crate::receipt::ReceiptError),
    /// A file-system step failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The stores and files operator actions touch.
pub struct Operations<'a> {
    /// The store.
    pub store: &'a Store,
    /// The spool (receipts).
    pub spool: &'a Spool,
    /// The municipality list (receipts).
    pub seed: &'a Seed,
}

const ACTIVE: [JobState; 4] = [
    JobState::Received,
    JobState::Queued,
    JobState::Deferred,
    JobState::FallenBack,
];

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

    fn refuse(job: &JobRecord, hint: &'static str) -> OperatorError {
        OperatorError::WrongState {
            id: job.id.clone(),
            state: job.state,
            hint,
        }
    }

    fn busy_or(job: &JobRecord, hint: &'static str) -> OperatorError {
        if job.state == JobState::Sending {
            Self::refuse(job, "it is being sent right now; try again in a moment")
        } else {
            Self::refuse(job, hint)
        }
    }

    /// The target's unfinished, waiting jobs; for one job, an error naming `hint` if it is not
    /// waiting.
    fn waiting(
        &self,
        target: &Target,
        hint: &'static str,
    ) -> Result<Vec<JobRecord>, OperatorError> {
        match target {
            Target::Job(id) => {
                let job = self.job(id)?;
                if !ACTIVE.contains(&job.state) {
                    return Err(Self::busy_or(&job, hint));
                }
                Ok(vec![job])
            }
            Target::Municipality(code) => Ok(self
                .jobs_of(*code)?
                .into_iter()
                .filter(|j| ACTIVE.contains(&j.state))
                .collect()),
        }
    }

    /// Applies one recorded change to each job (compare-and-set on its current state).
    fn change_each(
        &self,
        jobs: Vec<JobRecord>,
        detail: &str,
        change: impl Fn(&mut JobRecord),
    ) -> Result<Vec<JobId>, OperatorError> {
        let mut done = Vec::with_capacity(jobs.len());
        for job in jobs {
            self.store
                .transition(&job.id, &[job.state], detail, &[], &change)?;
            done.push(job.id);
        }
        Ok(done)
    }

    /// Tries the job (or the municipality's jobs) at once, and forgets the relay's back-off.
    pub fn retry(&self, target: &Target, actor: &Actor) -> Result<Value, OperatorError> {
        let now = Timestamp::now();
        let jobs = self.waiting(
            target,
            "only waiting jobs can be retried (release a held one first)",
        )?;
        self.store.set_relay_health(&RelayHealth::default())?;
        let done = self.change_each(jobs, &actor.says("retry requested"), |r| {
            r.next_attempt = Some(now);
        })?;
        Ok(json!({ "action": "retry", "jobs": done }))
    }

    /// Stops the job (or the municipality's jobs, including ones that arrive later) until
    /// released.
    pub fn hold(&self, target: &Target, actor: &Actor) -> Result<Value, OperatorError> {
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
        let jobs = self.waiting(target, "only unfinished, waiting jobs can be held")?;
        let done = self.change_each(jobs, &actor.says("held"), |r| {
            r.state = JobState::Held;
            r.next_attempt = None;
        })?;
        Ok(json!({ "action": "hold", "jobs": done }))
    }

    /// Lets held jobs go on at once.
    pub fn release(&self, target: &Target, actor: &Actor) -> Result<Value, OperatorError> {
        let now = Timestamp::now();
        let jobs = match target {
            Target::Job(id) => {
                let job = self.job(id)?;
                if job.state != JobState::Held {
                    return Err(Self::refuse(&job, "only held jobs can be released"));
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
        };
        let done = self.change_each(jobs, &actor.says("released"), |r| {
            r.state = JobState::Queued;
            r.next_attempt = Some(now);
        })?;
        Ok(json!({ "action": "release", "jobs": done }))
    }

    /// Stops a job for good; its receipt says so.
    pub fn cancel(&self, id: &JobId, actor: &Actor) -> Result<Value, OperatorError> {
        if actor.reason.trim().is_empty() {
            return Err(OperatorError::NoReason);
        }
        let job = self.job(id)?;
        if job.state.is_final() || job.state == JobState::Sending {
            return Err(Self::busy_or(&job, "it is finished already"));
        }
        self.store
            .transition(id, &[job.state], &actor.says("cancelled"), &[], |r| {
                r.state = JobState::Cancelled;
                r.next_attempt = None;
            })?;
        crate::receipt::issue(self.spool, self.store, self.seed, id)?;
        Ok(json!({ "action": "cancel", "jobs": [id] }))
    }

    /// Sends every recipient still waiting for e-mail a letter instead, at once.
    pub fn reroute_to_post(&self, id: &JobId, actor: &Actor) -> Result<Value, OperatorError> {
        if actor.reason.trim().is_empty() {
            return Err(OperatorError::NoReason);
        }
        let job = self.job(id)?;
        if !ACTIVE.contains(&job.state) && job.state != JobState::Held {
            return Err(Self::busy_or(&job, "it is finished already"));
        }
        if !job.recipients.iter().any(|r| r.awaits_email()) {
            return Err(Self::refuse(&job, "no recipient is waiting for e-mail"));
        }
        let now = Timestamp::now();
        self.store.transition(
            id,
            &[job.state],
            &actor.says("rerouted to post"),
            &[],
            |r| {
                r.state = JobState::FallenBack;
                r.next_attempt = Some(now);
                for rec in r.recipients.iter_mut().filter(|x| x.awaits_email()) {
                    rec.channel = Some(Channel::Post);
                }
            },
        )?;
        Ok(json!({ "action": "reroute", "jobs": [id] }))
    }
}

impl Operations<'_> {
    fn quarantined(&self, id: &JobId) -> Result<(JobRecord, std::path::PathBuf), OperatorError> {
        let job = self.job(id)?;
        let dir = match (&job.quarantine, job.state) {
            (Some(q), JobState::Quarantined) => self.spool.quarantine().join(&q.dir),
            _ => return Err(Self::refuse(&job, "it is not quarantined")),
        };
        if !dir.exists() {
            return Err(Self::refuse(
                &job,
                "its quarantine folder was already released or deleted",
            ));
        }
        Ok((job, dir))
    }

    /// Quarantined jobs whose folder is still in `spool/quarantine/`.
    pub fn quarantine_list(&self) -> Result<Value, OperatorError> {
        let jobs: Vec<Value> = self
            .store
            .list(Some(JobState::Quarantined), 10_000)?
            .into_iter()
            .filter_map(|j| {
                let q = j.quarantine.clone()?;
                self.spool.quarantine().join(&q.dir).exists().then(|| {
                    json!({ "job_id": j.id, "received_at": j.received_at, "dir": q.dir,
                            "code": q.code, "summary": q.summary })
                })
            })
            .collect();
        Ok(Value::Array(jobs))
    }

    /// A quarantined job: its reason and the files it holds.
    pub fn quarantine_show(&self, id: &JobId) -> Result<Value, OperatorError> {
        let (job, dir) = self.quarantined(id)?;
        let reason = std::fs::read_to_string(dir.join("reason.txt")).unwrap_or_default();
        let mut files = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let meta = std::fs::symlink_metadata(e.path()).ok();
                files.push(json!({
                    "name": e.file_name().to_string_lossy(),
                    "bytes": meta.as_ref().map(|m| m.len()),
                    "kind": meta.map(|m| if m.file_type().is_symlink() { "link" } else if m.is_dir() { "directory" } else if m.is_file() { "file" } else { "special" }),
                }));
            }
        }
        Ok(json!({ "job": job, "folder": dir, "reason": reason, "files": files }))
    }

    /// Puts a corrected quarantined job back into `incoming/`, where it becomes a new job.
    pub fn quarantine_release(&self, id: &JobId, actor: &Actor) -> Result<Value, OperatorError> {
        if actor.reason.trim().is_empty() {
            return Err(OperatorError::NoReason);
        }
        let (job, dir) = self.quarantined(id)?;
        if !dir.is_dir() {
            return Err(Self::refuse(
                &job,
                "its quarantine entry is not a job folder",
            ));
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
            &actor.says(&format!("released from quarantine as incoming/{name}")),
            &[],
            |_| {},
        )?;
        Ok(json!({ "action": "quarantine-release", "jobs": [id], "incoming": name }))
    }

    /// Deletes a quarantined job's folder for good.
    pub fn quarantine_delete(&self, id: &JobId, actor: &Actor) -> Result<Value, OperatorError> {
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
            &actor.says("deleted from quarantine"),
            &[],
            |_| {},
        )?;
        Ok(json!({ "action": "quarantine-delete", "jobs": [id] }))
    }
}

/// Age buckets of the queue summary, like Postfix's qshape.
pub const AGE_BUCKETS: [(&str, i64); 6] = [
    ("5m", 300),
    ("15m", 900),
    ("1h", 3600),
    ("4h", 14_400),
    ("1d", 86_400),
    ("older", i64::MAX),
];

/// The unfinished jobs by state × age × municipality, with their next attempts.
pub fn queue_shape(store: &Store, seed: &Seed, now: Timestamp) -> Result<Value, StoreError> {
    let jobs: Vec<JobRecord> = store
        .pending()?
        .into_iter()
        .filter(|j| !j.state.is_final())
        .collect();
    let bucket = |j: &JobRecord| {
        let age = now.duration_since(j.received_at).as_secs();
        AGE_BUCKETS
            .iter()
            .position(|(_, limit)| age < *limit)
            .unwrap_or(AGE_BUCKETS.len() - 1)
    };
    let mut by_municipality: BTreeMap<String, [usize; 6]> = BTreeMap::new();
    let mut by_state: BTreeMap<String, [usize; 6]> = BTreeMap::new();
    let mut total = [0usize; 6];
    for j in &jobs {
        let b = bucket(j);
        total[b] += 1;
        let code = j.to.map(|k| k.to_string()).unwrap_or_else(|| "-".into());
        by_municipality.entry(code).or_default()[b] += 1;
        by_state.entry(j.state.as_str().to_string()).or_default()[b] += 1;
    }
    let mut upcoming: Vec<&JobRecord> = jobs.iter().filter(|j| j.next_attempt.is_some()).collect();
    upcoming.sort_by_key(|j| j.next_attempt);
    let holds = store.holds()?;
    Ok(json!({
        "buckets": AGE_BUCKETS.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "total": total,
        "by_municipality": by_municipality.iter().map(|(code, counts)| json!({
            "kommunkod": code,
            "name": code.parse::<Kommunkod>().ok().and_then(|k| seed.get(k)).map(|m| m.name.clone()),
            "counts": counts,
        })).collect::<Vec<_>>(),
        "by_state": by_state.iter().map(|(state, counts)| json!({ "state": state, "counts": counts })).collect::<Vec<_>>(),
        "next_attempts": upcoming.iter().take(20).map(|j| json!({
            "job_id": j.id, "state": j.state, "kommunkod": j.to, "next_attempt": j.next_attempt,
            "attempts": j.attempts,
        })).collect::<Vec<_>>(),
        "held_municipalities": holds.iter().map(|(k, n)| json!({
            "kommunkod": k, "operator": n.operator, "reason": n.reason, "at": n.at,
        })).collect::<Vec<_>>(),
        "relay": store.relay_health()?,
    }))
}

/// Removes the documents of jobs that finished before `cutoff` from `spool/active/`, noting it
/// in each job's history (the receipt and the audit log keep the documents' SHA-256).
/// Quarantined jobs are not touched: they stay until an operator acts. Returns how many.
pub fn purge_documents(
    store: &Store,
    spool: &Spool,
    cutoff: Timestamp,
) -> Result<usize, StoreError> {
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
