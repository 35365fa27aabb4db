//! One due job's turn: the policy applied in order — hold, expiry, fallback, e-mail, letters,
//! deferral — each decision journaled before the next step.

use std::collections::HashSet;

use jiff::Timestamp;

use super::{Deadlines, Handled, Inner, QueueError};
use crate::job::Kommunkod;
use crate::ops::alert::AlertKind;
use crate::store::event::{EventKind, FallBack};
use crate::store::state::{AlertMark, JobRecord};

impl Inner {
    /// Applies the policy to one due job.
    pub(super) async fn handle(
        &self,
        job: JobRecord,
        now: Timestamp,
        holds: &HashSet<Kommunkod>,
    ) -> Result<Handled, QueueError> {
        let mut job = job;
        if let Some(code) = job.to.filter(|c| holds.contains(c)) {
            self.store.transition_journaled(
                &job.id,
                &[job.state],
                &EventKind::MunicipalityHeld { kommunkod: code },
                JobRecord::hold,
            )?;
            return Ok(Handled {
                made_letters: false,
            });
        }
        let deadlines = self.policy.deadlines(&job);
        if now >= deadlines.expire_at {
            return self.give_up(job);
        }
        if now >= deadlines.fallback_at && job.recipients.iter().any(|r| r.awaits_email()) {
            job = self.fall_back(job, FallBack::Deadline)?;
        }
        if job.recipients.iter().any(|r| r.awaits_email()) {
            job = self.send_email(job, now).await?;
        }
        let mut made_letters = false;
        if job.recipients.iter().any(|r| r.awaits_letter()) {
            job = self.print_letters(job, now).await?;
            made_letters = true;
        }
        if let Some(done) = job.settled_state() {
            if job.state != done {
                // Made durable by the receipt writer's flush, before the receipt states it.
                job = self.store.transition_lazy(
                    &job.id,
                    &[job.state],
                    &EventKind::Settled,
                    &[],
                    |r| {
                        r.settle();
                    },
                )?;
            }
            tracing::info!(job_id = %job.id, state = %job.state, "job finished");
        } else {
            self.defer(job, now, deadlines)?;
        }
        Ok(Handled { made_letters })
    }

    /// Expiry: nothing more is tried; operations must act.
    fn give_up(&self, job: JobRecord) -> Result<Handled, QueueError> {
        let waiting: Vec<Kommunkod> = job
            .recipients
            .iter()
            .filter(|r| !r.is_done())
            .map(|r| r.kommunkod)
            .collect();
        self.store.transition_journaled(
            &job.id,
            &[job.state],
            &EventKind::Expired {
                waiting: waiting.clone(),
            },
            JobRecord::fail,
        )?;
        Ok(Handled {
            made_letters: false,
        })
    }

    /// Every recipient still waiting for e-mail gets a letter instead.
    pub(super) fn fall_back(&self, job: JobRecord, why: FallBack) -> Result<JobRecord, QueueError> {
        let codes = job.awaiting_email();
        let job = self.store.transition_journaled(
            &job.id,
            &[job.state],
            &EventKind::FellBack {
                why,
                to: codes.clone(),
            },
            |r| r.fall_back_to_post(&codes, Timestamp::now(), false),
        )?;
        Ok(job)
    }

    /// Not finished: wait for the next retry, or the next deadline if that comes first.
    fn defer(&self, job: JobRecord, now: Timestamp, d: Deadlines) -> Result<JobRecord, QueueError> {
        let relay_retry = self.store.relay_health()?.retry_at.filter(|t| *t > now);
        let own_retry = now + self.policy.retry_delay(job.attempts.saturating_sub(1));
        // Never before the relay's own retry: all its jobs wait for it together.
        let mut next = relay_retry.map_or(own_retry, |t| t.max(own_retry));
        for deadline in [d.fallback_at, d.expire_at] {
            if deadline > now {
                next = next.min(deadline);
            }
        }
        let warned = job
            .alerts
            .iter()
            .any(|a| a.kind == AlertKind::DeferredTooLong);
        if !warned && d.warn_at > now {
            next = next.min(d.warn_at);
        }
        let raise_warning = !warned && now >= d.warn_at;
        let waiting = job.awaiting_email();
        let job = self.store.transition_journaled(
            &job.id,
            &[job.state],
            &EventKind::Deferred {
                waiting: waiting.clone(),
                next,
                fallback_at: Some(d.fallback_at),
            },
            |r| {
                r.defer(next);
                if raise_warning {
                    r.mark(AlertMark::job(AlertKind::DeferredTooLong));
                }
            },
        )?;
        tracing::info!(job_id = %job.id, next_attempt = %next, "job deferred");
        Ok(job)
    }
}
