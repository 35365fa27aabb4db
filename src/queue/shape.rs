//! The queue's shape, like Postfix's qshape: unfinished jobs by age × municipality and by
//! state, the next attempts, held municipalities and the relay's health.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::job::{JobId, Kommunkod};
use crate::registry::Seed;
use crate::store::state::{JobRecord, JobState};
use crate::store::{RelayHealth, Store, StoreError};

/// Age buckets of the queue summary, like Postfix's qshape.
pub const AGE_BUCKETS: [(&str, i64); 6] = [
    ("5m", 300),
    ("15m", 900),
    ("1h", 3600),
    ("4h", 14_400),
    ("1d", 86_400),
    ("older", i64::MAX),
];

/// Counts per age bucket, in [`AGE_BUCKETS`] order.
pub type Counts = [usize; 6];

/// The unfinished jobs by state × age × municipality, with their next attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueShape {
    /// The buckets' names.
    pub buckets: Vec<String>,
    /// All unfinished jobs.
    pub total: Counts,
    /// Per assigned municipality (`-` before routing).
    pub by_municipality: Vec<MunicipalityCounts>,
    /// Per state.
    pub by_state: Vec<StateCounts>,
    /// The 20 nearest next attempts.
    pub next_attempts: Vec<NextAttempt>,
    /// Municipalities an operator holds.
    pub held_municipalities: Vec<HeldMunicipality>,
    /// The relay's recent failures.
    pub relay: RelayHealth,
}

/// One municipality's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MunicipalityCounts {
    /// Its kommunkod, or `-`.
    pub kommunkod: String,
    /// Its name.
    pub name: Option<String>,
    /// Jobs per age bucket.
    pub counts: Counts,
}

/// One state's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    /// The state.
    pub state: JobState,
    /// Jobs per age bucket.
    pub counts: Counts,
}

/// A job's next attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextAttempt {
    /// The job.
    pub job_id: JobId,
    /// Its state.
    pub state: JobState,
    /// Its assigned municipality.
    pub kommunkod: Option<Kommunkod>,
    /// When.
    pub next_attempt: Option<Timestamp>,
    /// Attempts so far.
    pub attempts: u32,
}

/// A municipality on hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldMunicipality {
    /// Which.
    pub kommunkod: Kommunkod,
    /// Who holds it.
    pub operator: String,
    /// Why.
    pub reason: String,
    /// Since when.
    pub at: Timestamp,
}

/// The unfinished jobs by state × age × municipality, with their next attempts.
pub fn queue_shape(store: &Store, seed: &Seed, now: Timestamp) -> Result<QueueShape, StoreError> {
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
    let mut by_municipality: BTreeMap<String, Counts> = BTreeMap::new();
    let mut by_state: BTreeMap<&'static str, (JobState, Counts)> = BTreeMap::new();
    let mut total = Counts::default();
    for j in &jobs {
        let b = bucket(j);
        total[b] += 1;
        let code = j.to.map(|k| k.to_string()).unwrap_or_else(|| "-".into());
        by_municipality.entry(code).or_default()[b] += 1;
        by_state
            .entry(j.state.as_str())
            .or_insert((j.state, Counts::default()))
            .1[b] += 1;
    }
    let mut upcoming: Vec<&JobRecord> = jobs.iter().filter(|j| j.next_attempt.is_some()).collect();
    upcoming.sort_by_key(|j| j.next_attempt);
    Ok(QueueShape {
        buckets: AGE_BUCKETS.iter().map(|(n, _)| n.to_string()).collect(),
        total,
        by_municipality: by_municipality
            .into_iter()
            .map(|(code, counts)| MunicipalityCounts {
                name: code
                    .parse::<Kommunkod>()
                    .ok()
                    .and_then(|k| seed.get(k))
                    .map(|m| m.name.clone()),
                kommunkod: code,
                counts,
            })
            .collect(),
        by_state: by_state
            .into_values()
            .map(|(state, counts)| StateCounts { state, counts })
            .collect(),
        next_attempts: upcoming
            .iter()
            .take(20)
            .map(|j| NextAttempt {
                job_id: j.id.clone(),
                state: j.state,
                kommunkod: j.to,
                next_attempt: j.next_attempt,
                attempts: j.attempts,
            })
            .collect(),
        held_municipalities: store
            .holds()?
            .into_iter()
            .map(|(kommunkod, n)| HeldMunicipality {
                kommunkod,
                operator: n.operator,
                reason: n.reason,
                at: n.at,
            })
            .collect(),
        relay: store.relay_health()?,
    })
}
