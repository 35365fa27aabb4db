//! Jobs: one job's status, lists, the queue's shape, the operator's actions and quarantine.
//! Every action is recorded in the jobs it touches with the operator and the reason.

use jiff::Timestamp;

use crate::job::JobId;
use crate::queue::operator::{ActionDone, Actor, Operations, OperatorError, Target};
use crate::queue::print_shop::{self, PrintShopError};
use crate::queue::shape::queue_shape;

use super::reply::{JobList, JobStatus};
use super::{Core, Principal, ServiceError};
use crate::store::state::JobState;

/// Refuses free text that seems to hold a case number or a personal identity number.
pub(super) fn refuse_personal_data(text: &str) -> Result<(), ServiceError> {
    match crate::free_text::personal_data_in(text) {
        Some(found) => Err(ServiceError::PersonalDataInText(found)),
        None => Ok(()),
    }
}

/// The longest reason or note a person's action records: it is kept for good, in the job's
/// history and the audit chain, and a few sentences say what was done.
const MAX_REASON_CHARS: usize = 1000;

impl Core {
    fn operations(&self) -> Operations<'_> {
        Operations {
            store: &self.store,
            spool: &self.spool,
        }
    }

    /// Who acts, and why, as the history records it: a reason holding what identifies a
    /// child is refused (it would be kept where it cannot be redacted).
    fn actor(principal: &Principal, reason: String) -> Result<Actor, ServiceError> {
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(ServiceError::ReasonTooLong {
                max: MAX_REASON_CHARS,
            });
        }
        refuse_personal_data(&reason)?;
        Ok(Actor {
            operator: principal.recorded_as(),
            reason,
        })
    }

    /// "No such job", or — for a job just submitted that lies in the spool until intake takes
    /// it in — "not taken in yet", so it never looks lost.
    pub(super) fn unknown(&self, id: JobId) -> ServiceError {
        if self.spool.holds(&id) {
            ServiceError::NotTakenIn(id)
        } else {
            ServiceError::UnknownJob(id)
        }
    }

    /// An operator's refusal, with "no such job" said as [`Core::unknown`] says it.
    fn refused(&self, e: crate::queue::operator::OperatorError) -> ServiceError {
        match ServiceError::from(e) {
            ServiceError::UnknownJob(id) => self.unknown(id),
            other => other,
        }
    }

    pub(super) fn status(&self, id: JobId) -> Result<Box<JobStatus>, ServiceError> {
        let Some(job) = self.store.get(&id)? else {
            return Err(self.unknown(id));
        };
        let events = self.store.events(&id)?;
        Ok(Box::new(JobStatus { job, events }))
    }

    pub(super) fn list(&self, states: &[JobState], limit: usize) -> Result<JobList, ServiceError> {
        let jobs = self.store.list(states, limit)?;
        // A spool that cannot be read is not a reason to withhold the store's answer.
        let waiting_in_spool = self.spool.waiting().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read spool/incoming/");
            Vec::new()
        });
        Ok(JobList {
            jobs,
            waiting_in_spool,
            daemon_running: self.daemon,
        })
    }

    pub(super) fn queue(&self) -> Result<Box<crate::queue::shape::QueueShape>, ServiceError> {
        Ok(Box::new(queue_shape(
            &self.store,
            &self.seed,
            Timestamp::now(),
        )?))
    }

    pub(super) fn open_alerts(&self) -> Result<Vec<super::OpenAlert>, ServiceError> {
        let mut out = Vec::new();
        for (job_id, mark) in self.store.open_alerts()? {
            let assigned = match mark.kommunkod {
                Some(_) => None,
                None => self.store.get(&job_id)?.and_then(|j| j.to),
            };
            out.push(self.open_alert(&job_id, mark, assigned)?);
        }
        // Oldest first: the longest-waiting call comes first.
        out.sort_by_key(|a| a.since);
        Ok(out)
    }

    /// How many open alerts ask dispatch to phone ([`AlertKind::is_a_call`]): one call each,
    /// as the desk's Att ringa lists them.
    pub(super) fn call_count(&self) -> Result<usize, ServiceError> {
        Ok(self
            .store
            .open_alerts()?
            .into_iter()
            .filter(|(_, mark)| mark.kind.is_a_call())
            .count())
    }

    pub(super) fn print_batches(
        &self,
    ) -> Result<Vec<crate::queue::print_shop::BatchView>, ServiceError> {
        let views = print_shop::batches(
            &self.store,
            &self.working_hours,
            self.print_confirm_within,
            Timestamp::now(),
        )?;
        Ok(views)
    }

    pub(super) fn print_confirm(
        &self,
        principal: &Principal,
        batch: String,
        reason: String,
    ) -> Result<crate::queue::print_shop::BatchConfirmed, ServiceError> {
        let actor = Self::actor(principal, reason)?;
        match print_shop::confirm(&self.store, &batch, &actor) {
            Ok(done) => {
                tracing::info!(batch = %done.batch, jobs = done.jobs.len(), by = %done.confirmation.by, "print batch confirmed printed and posted");
                Ok(done)
            }
            Err(PrintShopError::Store(e)) => Err(e.into()),
            Err(PrintShopError::NoBatch(batch)) => Err(ServiceError::NoBatch(batch)),
            Err(PrintShopError::StillOpen(batch)) => Err(ServiceError::BatchOpen(batch)),
        }
    }

    pub(super) fn quarantine_list(
        &self,
    ) -> Result<Vec<crate::queue::operator::QuarantinedJob>, ServiceError> {
        let list = self.operations().quarantine_list();
        list.map_err(|e| self.refused(e))
    }

    pub(super) fn quarantine_show(
        &self,
        id: JobId,
    ) -> Result<Box<crate::queue::operator::QuarantineFolder>, ServiceError> {
        let folder = self.operations().quarantine_show(&id);
        folder.map(Box::new).map_err(|e| self.refused(e))
    }

    /// Does one operator action as `principal`, for `reason` (recorded), and answers what it
    /// did or why it was refused.
    pub(super) fn act(
        &self,
        principal: &Principal,
        reason: String,
        action: impl FnOnce(&Operations<'_>, &Actor) -> Result<ActionDone, OperatorError>,
    ) -> Result<crate::queue::operator::ActionDone, ServiceError> {
        let actor = Self::actor(principal, reason)?;
        action(&self.operations(), &actor).map_err(|e| self.refused(e))
    }

    /// A municipality named as a target must be one of the 290.
    pub(super) fn check_target(&self, target: &Target) -> Result<(), ServiceError> {
        if let Target::Municipality(code) = target {
            self.seed.require(*code)?;
        }
        Ok(())
    }
}
