//! The queue's policy: when a job is tried again (the retry schedule, with jitter) and when it
//! is warned about, falls back to post, or expires (deadlines in working time). Pure
//! arithmetic over the settings, so the queue manager's loop only applies it.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::config::{DeadlineSettings, QueueSettings};
use crate::store::state::JobRecord;
use crate::worktime::WorkingHours;

/// When things are tried and given up: the settings, turned into arithmetic.
#[derive(Debug, Clone)]
pub struct Policy {
    retry_intervals: Vec<SignedDuration>,
    jitter: f64,
    deadlines: DeadlineSettings,
    hours: WorkingHours,
}

/// The instants that matter for one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// After this, a deferred job raises an alert.
    pub warn_at: Timestamp,
    /// After this, e-mail gives way to post.
    pub fallback_at: Timestamp,
    /// After this, kurir gives up.
    pub expire_at: Timestamp,
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

impl Policy {
    /// The policy of the `[queue]`, `[deadlines]` and `[working_hours]` settings.
    pub fn new(queue: &QueueSettings, deadlines: &DeadlineSettings, hours: WorkingHours) -> Policy {
        Policy {
            retry_intervals: queue.retry_intervals.iter().copied().map(signed).collect(),
            jitter: queue.jitter,
            deadlines: deadlines.clone(),
            hours,
        }
    }

    /// The wait before attempt number `attempt + 1` (0-based `attempt` just failed), with
    /// jitter; the last interval repeats.
    pub fn retry_delay(&self, attempt: u32) -> SignedDuration {
        let index = (attempt as usize).min(self.retry_intervals.len().saturating_sub(1));
        let base = self
            .retry_intervals
            .get(index)
            .copied()
            .unwrap_or(SignedDuration::from_mins(30));
        let mut bytes = [0u8; 4];
        let unit = if openssl::rand::rand_bytes(&mut bytes).is_ok() {
            f64::from(u32::from_be_bytes(bytes)) / f64::from(u32::MAX) * 2.0 - 1.0
        } else {
            0.0
        };
        let factor = 1.0 + self.jitter * unit;
        SignedDuration::from_secs_f64((base.as_secs_f64() * factor).max(1.0))
    }

    /// The job's deadlines: the strictest of its documents' kinds.
    pub fn deadlines(&self, job: &JobRecord) -> Deadlines {
        let kinds = job
            .documents
            .iter()
            .map(|d| self.deadlines.for_kind(d.kind));
        let fallback = kinds
            .clone()
            .map(|k| k.fallback_after)
            .min()
            .unwrap_or_default();
        let expire = kinds.map(|k| k.expire_after).min().unwrap_or_default();
        Deadlines {
            warn_at: self
                .hours
                .add(job.received_at, signed(self.deadlines.warn_after)),
            fallback_at: self.hours.add(job.received_at, signed(fallback)),
            expire_at: job.received_at + signed(expire),
        }
    }
}
