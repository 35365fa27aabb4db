//! What the service answers only to operators: the reply types of the command line's own calls.
//! The replies the web doors read too are in [`kurir_protocol::reply`], re-exported here.

use serde::{Deserialize, Serialize};

pub use kurir_protocol::reply::*;

use crate::store::state::JobRecord;

/// The answer to a listing: the store's jobs, and what the store cannot know yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobList {
    /// Jobs, newest first.
    pub jobs: Vec<JobRecord>,
    /// What lies in `spool/incoming/`, not taken in yet, oldest first.
    pub waiting_in_spool: Vec<crate::spool::Waiting>,
    /// Whether the daemon answered (false: the command read the store itself, and nothing
    /// takes in what waits).
    pub daemon_running: bool,
}
