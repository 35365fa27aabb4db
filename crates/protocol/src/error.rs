//! What the service refuses, and why, as variants — never as text to be matched. The
//! command line words them in English (this module's `Display`); the portal and the desk word
//! them in Swedish from the variant.

use serde::{Deserialize, Serialize};

use crate::action::StateHint;
use crate::job::{JobId, Kommunkod};
use crate::registry::bulk::BulkError;
use crate::registry::RegistryError;
use crate::state::JobState;

/// What the command line prints for a job that lies in the spool and has no record yet:
/// intake takes it in within moments (scripts may wait on this text; it carries no personal
/// data).
pub const NOT_TAKEN_IN: &str = "received, not taken in yet";

/// Why the service did not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceError {
    /// No job with this id, in the store or the spool.
    #[error("no job with id {0}")]
    UnknownJob(JobId),
    /// The job lies in the spool: intake has not taken it in yet.
    #[error("{NOT_TAKEN_IN} (job {0}); ask again in a moment")]
    NotTakenIn(JobId),
    /// A registration value, a code or a kommunkod was refused; the variant names the field.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A CSV file could not be read as registrations.
    #[error(transparent)]
    Bulk(#[from] BulkError),
    /// Rows of a CSV file were refused: nothing was imported.
    #[error("nothing was imported:\n{}", lines.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Import {
        /// Each refused row.
        lines: Vec<ImportLineError>,
    },
    /// The job is in a state the action does not apply to.
    #[error("job {id} is {state}: {hint}")]
    WrongState {
        /// The job.
        id: JobId,
        /// Its state.
        state: JobState,
        /// Why.
        hint: StateHint,
    },
    /// The person has no desk access.
    #[error("{0} has no access to the dispatch desk")]
    NotStaff(String),
    /// The person's desk role does not allow this.
    #[error("the role {} does not allow this", .0.as_str())]
    RoleForbids(crate::registry::StaffRole),
    /// A case number is not `xx-xxxxxx`.
    #[error("the case number must be written xx-xxxxxx")]
    CaseNumber,
    /// A copy for the assigned municipality itself.
    #[error("kommun {0} is the assigned municipality itself; it gets no copy")]
    CopyToAssigned(Kommunkod),
    /// A draft could not be made or sent.
    #[error(transparent)]
    Draft(#[from] crate::draft::DraftError),
    /// No print batch has this id.
    #[error("no print batch {0} (`kurir print list` shows them)")]
    NoBatch(String),
    /// The print batch is still open: letters may still go into it.
    #[error("print batch {0} is still open: it closes (READY) when full or at the end of the day")]
    BatchOpen(String),
    /// Free text (a reason, a note) seems to hold a case number or a personal identity
    /// number: it would be kept for good where it cannot be redacted.
    #[error("the text looks like it holds {}: reasons and notes are kept for good in the job's history, its receipts and the audit chain, which cannot be redacted; write it without the number", match .0 { crate::free_text::PersonalData::CaseNumber => "a case number", crate::free_text::PersonalData::IdentityNumber => "a personal identity number" })]
    PersonalDataInText(crate::free_text::PersonalData),
    /// The action needs a reason for the history.
    #[error("give a reason (--reason): it is recorded in the job's history")]
    ReasonRequired,
    /// A reason or note longer than a history keeps.
    #[error("the reason is longer than {max} characters: say it shorter")]
    ReasonTooLong {
        /// The most characters a reason may have.
        max: usize,
    },
    /// What waits for approval is not what the operator reviewed: it changed after `show`.
    #[error("what waits for approval in kommun {code} is not what you reviewed (it now has digest {now}): run `kurir municipality show {code}` again and approve what it shows")]
    ApprovalChanged {
        /// The municipality.
        code: Kommunkod,
        /// The digest of what waits now.
        now: String,
    },
    /// The one who asked for a change may not approve it: no single actor moves decisions out
    /// of a municipality's mail domains.
    #[error(
        "{by} asked for what waits for approval in kommun {code}: another operator must approve it"
    )]
    ApproverAskedForIt {
        /// The municipality.
        code: Kommunkod,
        /// Who asked, and would approve.
        by: String,
    },
    /// The person has no grant for this municipality.
    #[error("{hsa_id} may not manage kommun {code}")]
    NoGrant {
        /// The municipality.
        code: Kommunkod,
        /// The person.
        hsa_id: String,
    },
    /// A grant must name the CA that issues the person's card, and none can be assumed.
    #[error("name the CA that issues the person's card (--issuer \"CN=…\"): the portal (for staff: the desk) has not reported exactly one CA it trusts")]
    IssuerRequired,
    /// A revoke for a grant that does not exist.
    #[error("{hsa_id} has no access to kommun {code}")]
    NoSuchGrant {
        /// The municipality.
        code: Kommunkod,
        /// The person.
        hsa_id: String,
    },
    /// The caller may not send this command at all (a portal person asked for what only an
    /// operator may do, or changed a field only the agency sets).
    #[error("not permitted from this caller")]
    NotPermitted,
    /// A verification code must travel the protected route, and there is none.
    #[error(
        "no SMTP relay is configured ([smtp] host): the verification message must travel the \
         same protected route as decisions"
    )]
    NoRelay,
    /// The municipality has no address whose mail servers could be checked.
    #[error("kommun {0} has no proven address whose mail servers could be checked (prove one first: `municipality verify` and `confirm`)")]
    NothingToCheck(Kommunkod),
    /// A check of the domain is running now.
    #[error("a check of {0}'s mail servers is running; try again in a minute")]
    CheckRunning(String),
    /// This process cannot check connections (no network part was set up).
    #[error(
        "connection checks run in the daemon; start it (`kurir run`) or run the check without it"
    )]
    NoChecker,
    /// No randomness for a code.
    #[error("no randomness available for a verification code")]
    NoRandomness,
    /// The verification message could not be sent (the details are in the daemon's log).
    #[error("sending the verification message to {address}: {detail}")]
    SendFailed {
        /// Where it was to go.
        address: String,
        /// What the relay or TLS said (for operators; the portal shows none of it).
        detail: String,
    },
    /// A file step failed (quarantine folders).
    #[error("{what}: {detail}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        detail: String,
    },
    /// The store failed; the daemon's log has the details.
    #[error("{0}")]
    Store(String),
    /// The service itself failed (a task that did not finish).
    #[error("internal error: {0}")]
    Internal(String),
}

/// One refused row of a CSV import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ImportLineError {
    /// The row's kommunkod is not one of the 290.
    #[error("line {line}: {error}")]
    Row {
        /// The line.
        line: usize,
        /// Why.
        error: RegistryError,
    },
    /// A value of the row was refused.
    #[error("line {line} (kommun {code}): {error}")]
    Value {
        /// The line.
        line: usize,
        /// The municipality.
        code: Kommunkod,
        /// Why.
        error: RegistryError,
    },
}
