//! The deliverers' side of a turn: letters for the postal path, and e-mail attempts with each
//! outcome recorded (journaled) before the next message may end its DATA.

use jiff::Timestamp;

use super::{Inner, QueueError};
use crate::deliver::mail::Outcome;
use crate::job::Kommunkod;
use crate::store::event::{EventKind, FallBack};
use crate::store::state::{AttemptOutcome, EmailAttempt, EmailDelivery, JobRecord, JobState};
use crate::store::{RelayHealth, StoreError};

impl Inner {
    pub(super) async fn print_letters(
        &self,
        job: JobRecord,
        now: Timestamp,
    ) -> Result<JobRecord, QueueError> {
        // PDF work is blocking; one print queue, used by one job at a time (batch consistency).
        let print = self.print.clone();
        let job = tokio::task::spawn_blocking(move || {
            print
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .print_job(&job, now)
        })
        .await
        .map_err(|e| QueueError::Task(e.to_string()))??;
        tracing::info!(job_id = %job.id, "letters queued for print");
        Ok(job)
    }

    /// Attempts every recipient that awaits e-mail, recording each outcome at once.
    pub(super) async fn send_email(
        &self,
        job: JobRecord,
        now: Timestamp,
    ) -> Result<JobRecord, QueueError> {
        let Some(mailer) = &self.mailer else {
            return self.fall_back(job, FallBack::NoRelay);
        };
        let health = self.store.relay_health()?;
        if let Some(retry_at) = health.retry_at.filter(|t| *t > now) {
            // The relay itself is failing: wait for its retry instead of hammering it.
            tracing::debug!(job_id = %job.id, %retry_at, "relay unavailable; not tried");
            return Ok(job);
        }
        let permit = self
            .relay_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| QueueError::Task(e.to_string()))?;
        // Journaled, not flushed: the outcome's record below follows it in the journal, so a
        // start after a crash replays both in order.
        let mut job = self.store.transition_journaled(
            &job.id,
            &[JobState::Queued, JobState::Deferred, JobState::FallenBack],
            &EventKind::Sending {
                relay: mailer.relay().to_string(),
            },
            JobRecord::start_sending,
        )?;
        let codes = job.awaiting_email();
        for code in codes {
            let attempted = mailer.attempt(&job, code).await;
            self.note_relay_health(&attempted.outcome, now)?;
            // Journaled (one write(2), no wait for the disk): it survives a crash of kurir
            // from here on, so the next message may end its DATA.
            job = self.record(&job, code, attempted.outcome, attempted.message_id)?;
            drop(attempted.commit);
        }
        drop(permit);
        Ok(job)
    }

    /// Tracks failures of the relay itself in the store, so all its jobs back off together.
    fn note_relay_health(&self, outcome: &Outcome, now: Timestamp) -> Result<(), StoreError> {
        let mut health = self.store.relay_health()?;
        match outcome {
            Outcome::Deferred {
                relay: true,
                reason,
                ..
            } => {
                health.failures += 1;
                let wait = self.policy.retry_delay(health.failures - 1);
                health.retry_at = Some(now + wait);
                health.last_error = Some(reason.clone());
                tracing::warn!(failures = health.failures, retry_at = %now.saturating_add(wait).unwrap_or(now), "relay failing; all e-mail waits");
                self.store.set_relay_health(&health)
            }
            Outcome::Accepted(_)
            | Outcome::Rejected { .. }
            | Outcome::Deferred { relay: false, .. }
                if health != RelayHealth::default() =>
            {
                self.store.set_relay_health(&RelayHealth::default())
            }
            _ => Ok(()),
        }
    }

    /// Records one attempt's outcome on the job.
    fn record(
        &self,
        job: &JobRecord,
        code: Kommunkod,
        outcome: Outcome,
        message_id: Option<String>,
    ) -> Result<JobRecord, QueueError> {
        let now = Timestamp::now();
        let attempt = |address: &str, outcome: AttemptOutcome, reply: &str| EmailAttempt {
            at: now,
            address: address.to_string(),
            outcome,
            reply: reply.to_string(),
            smtp: crate::store::state::SmtpReply::parse(reply),
        };
        let class = match &outcome {
            Outcome::Accepted(_) => Some(("2xx", false)),
            Outcome::Deferred { tls: true, .. } => Some(("tls", true)),
            Outcome::Deferred { relay: true, .. } => Some(("connection", false)),
            Outcome::Deferred { .. } => Some(("4xx", false)),
            Outcome::Rejected { .. } => Some(("5xx", false)),
            Outcome::Unknown { .. } => Some(("unknown", false)),
            Outcome::NoRoute(_) | Outcome::Failed(_) => None,
        };
        if let Some((class, tls)) = class {
            crate::ops::smtp_outcome(class, tls);
        }
        let (attempt, detail, fall_back) = match &outcome {
            Outcome::Accepted(proof) => {
                tracing::info!(job_id = %job.id, kommunkod = %code, reply = %proof.reply, "e-mail accepted");
                (
                    attempt(&proof.address, AttemptOutcome::Accepted, &proof.reply),
                    EventKind::Accepted {
                        kommunkod: code,
                        relay: proof.relay.to_string(),
                        tls_version: proof.tls_version.to_string(),
                        reply: proof.reply.to_string(),
                    },
                    false,
                )
            }
            Outcome::Deferred {
                address,
                reason,
                tls,
                ..
            } => {
                tracing::warn!(job_id = %job.id, kommunkod = %code, tls_failure = tls, reason = %reason, "e-mail deferred");
                (
                    attempt(address, AttemptOutcome::Deferred, reason),
                    EventKind::AttemptDeferred {
                        kommunkod: code,
                        reason: reason.to_string(),
                    },
                    false,
                )
            }
            Outcome::Unknown { address, reason } => {
                tracing::warn!(job_id = %job.id, kommunkod = %code, reason = %reason, "e-mail delivery unknown");
                (
                    attempt(address, AttemptOutcome::Unknown, reason),
                    EventKind::DeliveryUnknown {
                        kommunkod: code,
                        reason: reason.to_string(),
                    },
                    false,
                )
            }
            Outcome::Rejected { address, reply } => {
                tracing::warn!(job_id = %job.id, kommunkod = %code, reply = %reply, "e-mail rejected permanently; falling back to post");
                (
                    attempt(address, AttemptOutcome::Rejected, reply),
                    EventKind::Rejected {
                        kommunkod: code,
                        reply: reply.to_string(),
                    },
                    true,
                )
            }
            Outcome::NoRoute(reason) => (
                attempt("", AttemptOutcome::NoRoute, reason.describe()),
                EventKind::NoRoute {
                    kommunkod: code,
                    reason: reason.describe().to_string(),
                },
                true,
            ),
            Outcome::Failed(reason) => {
                tracing::error!(job_id = %job.id, kommunkod = %code, reason = %reason, "message could not be composed");
                (
                    attempt("", AttemptOutcome::Deferred, reason),
                    EventKind::ComposeFailed {
                        kommunkod: code,
                        reason: reason.to_string(),
                    },
                    false,
                )
            }
        };
        let record = self
            .store
            .transition_journaled(&job.id, &[job.state], &detail, |r| {
                if fall_back {
                    r.fall_back_to_post(&[code], now, false);
                }
                if matches!(outcome, Outcome::Unknown { .. }) {
                    r.unknown_deliveries += 1;
                }
                if let Some(rec) = r.recipients.iter_mut().find(|x| x.kommunkod == code) {
                    let delivery = rec.email.get_or_insert_with(|| EmailDelivery {
                        message_id: String::new(),
                        attempts: Vec::new(),
                        accepted: None,
                        rejected: None,
                        reports: Vec::new(),
                        conflicts: Vec::new(),
                        elsewhere: Vec::new(),
                    });
                    if let Some(id) = &message_id {
                        delivery.message_id.clone_from(id);
                    }
                    delivery.attempts.push(attempt.clone());
                    match &outcome {
                        Outcome::Accepted(proof) => delivery.accepted = Some((**proof).clone()),
                        Outcome::Rejected { reply, .. } => {
                            delivery.rejected = Some(reply.clone());
                        }
                        _ => {}
                    }
                }
                // The last recipient done finishes the job in the same step.
                r.settle();
            })?;
        Ok(record)
    }
}
