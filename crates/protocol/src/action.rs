//! What a person can do to jobs from the command line or the desk — retry, hold, release,
//! cancel, send by post, acknowledge — as the calls name them: what an action applies to, what
//! it did, and why it does not apply to a job in its state.

use serde::{Deserialize, Serialize};

use crate::job::{JobId, Kommunkod};

/// What an action applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// One job.
    Job(JobId),
    /// Every unfinished job whose assigned municipality this is.
    Municipality(Kommunkod),
    /// Every unfinished job (`kurir flush`): what `postqueue -f` is to Postfix.
    Everything,
}

/// Why an action does not apply to a job in its state (each surface words it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "kebab-case")]
pub enum StateHint {
    /// A deliverer has it right now.
    #[error("it is being sent right now; try again in a moment")]
    BeingSent,
    /// Retry applies to waiting jobs only.
    #[error("only waiting jobs can be retried (release a held one first)")]
    RetryNeedsWaiting,
    /// Hold applies to unfinished, waiting jobs only.
    #[error("only unfinished, waiting jobs can be held")]
    HoldNeedsWaiting,
    /// Release applies to held jobs only.
    #[error("only held jobs can be released")]
    ReleaseNeedsHeld,
    /// The job is finished.
    #[error("it is finished already")]
    Finished,
    /// Every recipient has its documents or goes by post already.
    #[error("no recipient is waiting for e-mail")]
    NoEmailRecipient,
    /// The job is not in quarantine.
    #[error("it is not quarantined")]
    NotQuarantined,
    /// Its quarantine folder is gone.
    #[error("its quarantine folder was already released or deleted")]
    QuarantineGone,
    /// Its quarantine entry is a file, not a job folder.
    #[error("its quarantine entry is not a job folder")]
    NotAFolder,
    /// No alert of the job is open.
    #[error("it has no open alert")]
    NoOpenAlert,
}

/// Which operator action was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Tried again now.
    Retry,
    /// Held.
    Hold,
    /// Released.
    Release,
    /// Cancelled for good.
    Cancel,
    /// Sent by post instead.
    Reroute,
    /// Put back into `incoming/` from quarantine.
    QuarantineRelease,
    /// Deleted from quarantine.
    QuarantineDelete,
    /// Its open alerts dealt with by a person.
    Acknowledge,
    /// A phone call about its open alerts that reached nobody, noted; the alerts stay open.
    CallNoted,
}

/// What an operator action did: the action and the jobs it touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionDone {
    /// The action.
    pub action: Action,
    /// The jobs it changed.
    pub jobs: Vec<JobId>,
    /// For a quarantine release: the folder's new name in `incoming/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incoming: Option<String>,
}

impl ActionDone {
    /// `action` done to `jobs`.
    pub fn of(action: Action, jobs: Vec<JobId>) -> ActionDone {
        ActionDone {
            action,
            jobs,
            incoming: None,
        }
    }
}
