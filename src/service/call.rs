//! Everything an operator, a municipality person, a member of staff or the case system can
//! ask of kurir: the web doors' calls ([`kurir_protocol::call`], re-exported here), the
//! command line's own calls, and [`Command`], the request on the wire that carries any of them.

use jiff::Timestamp;

pub use kurir_protocol::call::*;

use super::reply::{
    GrantsNow, ImportSummary, JobList, JobStatus, MunicipalityRow, RegistrationChanged, WebStatus,
};
use crate::job::{JobId, Kommunkod};
use crate::ops::backup::Manifest as BackupManifest;
use crate::queue::operator::{ActionDone, QuarantineFolder, QuarantinedJob};
use crate::queue::print_shop::{BatchConfirmed, BatchView};
use crate::queue::shape::QueueShape;
use crate::registry::{StaffGrant as StaffGrantView, StaffRole};
use crate::store::audit::{AuditEntry, Verdict as AuditVerdict};
use crate::store::state::JobState;

kurir_protocol::calls! {
    /// One job with its history.
    Status {
        /// The job.
        id: JobId,
    } => Box<JobStatus>;
    /// Newest jobs, optionally in some states only.
    List {
        /// Only these states (all when empty).
        states: Vec<JobState>,
        /// At most this many.
        limit: usize,
    } => JobList;
    /// The queue's shape: unfinished jobs by state, age and municipality.
    Queue {} => Box<QueueShape>;
    /// Quarantined jobs still in the quarantine folder.
    QuarantineList {} => Vec<QuarantinedJob>;
    /// One quarantined job: reason and files.
    QuarantineShow {
        /// The job.
        id: JobId,
    } => Box<QuarantineFolder>;
    /// Puts a corrected quarantined job back into `incoming/`.
    QuarantineRelease {
        /// The job.
        id: JobId,
        /// Why (recorded; required).
        reason: String,
    } => ActionDone;
    /// Deletes a quarantined job's folder.
    QuarantineDelete {
        /// The job.
        id: JobId,
        /// Why (recorded; required).
        reason: String,
    } => ActionDone;
    /// Print batches, newest first, with how long closed ones wait for the print shop.
    PrintBatches {} => Vec<BatchView>;
    /// Records the print shop's word that a closed batch was printed and posted.
    PrintConfirm {
        /// The batch id (its folder under `spool/print/`).
        batch: String,
        /// A note (recorded; optional).
        reason: String,
    } => BatchConfirmed;
    /// Lets a member of the agency's staff use the dispatch desk.
    StaffGrant {
        /// Their HSA-id.
        hsa_id: String,
        /// Their name.
        name: String,
        /// What they may do.
        role: StaffRole,
        /// The CA that issues their card (default: the one CA the portal trusts).
        issuer: Option<String>,
    } => Vec<StaffGrantView>;
    /// Takes a staff member's desk access away.
    StaffRevoke {
        /// Their HSA-id.
        hsa_id: String,
    } => Vec<StaffGrantView>;
    /// Everyone with desk access.
    StaffList {} => Vec<StaffGrantView>;
    /// Writes a backup of the store as it stands now (jobs keep flowing) into a new folder.
    Backup {
        /// The new folder (absolute: the daemon writes it).
        dest: std::path::PathBuf,
    } => Box<BackupManifest>;
    /// The job that first had a submission key (by its SHA-256), if any.
    SubmissionLookup {
        /// [`crate::job::submission_digest`] of the key.
        digest: String,
    } => Option<(JobId, JobState)>;
    /// Walks the audit chain.
    AuditVerify {} => AuditVerdict;
    /// Audit entries from an instant on.
    AuditExport {
        /// From when.
        since: Timestamp,
    } => Vec<AuditEntry>;
    /// All municipalities with their registration.
    MunicipalityList {
        /// Only those with a secure connection.
        secure_only: bool,
    } => Vec<MunicipalityRow>;
    /// Bulk registration from CSV text.
    MunicipalityImport {
        /// The CSV file's content.
        csv: String,
        /// Only show what would change.
        dry_run: bool,
    } => ImportSummary;
    /// All registrations as CSV text (the import format).
    MunicipalityExport {} => String;
    /// Lets a person (by HSA-id and issuing CA) manage the municipality's registration on
    /// the portal.
    MunicipalityGrant {
        /// The municipality.
        code: Kommunkod,
        /// The person's HSA-id.
        hsa_id: String,
        /// The person's name.
        name: Option<String>,
        /// The issuing CA's subject; `None`: the one CA the portal reported.
        #[serde(default)]
        issuer: Option<String>,
    } => GrantsNow;
    /// Withdraws a grant.
    MunicipalityRevoke {
        /// The municipality.
        code: Kommunkod,
        /// The person's HSA-id.
        hsa_id: String,
    } => GrantsNow;
    /// Puts to use what a person changed that waits for the agency's approval.
    MunicipalityApprove {
        /// The municipality.
        code: Kommunkod,
        /// The digest of what the operator reviewed (`show` prints it); approval fails if
        /// what waits is anything else. Absent (an older client): nothing matches it.
        #[serde(default)]
        digest: String,
    } => Box<RegistrationChanged>;
    /// Refuses what waits for approval: none of it is used.
    MunicipalityRefuse {
        /// The municipality.
        code: Kommunkod,
        /// Why (recorded).
        reason: String,
    } => Box<RegistrationChanged>;
    /// What the portal last reported (for `doctor`).
    PortalStatus {} => Option<WebStatus>;
    /// What the desk last reported of itself.
    DeskStatus {} => Option<WebStatus>;
    /// Changes the municipality's mail domains (addresses outside them wait for approval).
    MunicipalityDomains {
        /// The municipality.
        code: Kommunkod,
        /// Domains to add.
        add: Vec<String>,
        /// Domains to remove.
        remove: Vec<String>,
    } => Box<RegistrationChanged>;
}

/// Defines the wire's [`Command`]: one variant per call, tagged by the call's name.
macro_rules! commands {
    ($( $name:ident ),* $(,)?) => {
        /// One request to the service, as the wire carries it: `{"command": "<name>", …the
        /// call's fields}`, the name being the call's type ([`Call::NAME`]).
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "command")]
        pub enum Command {
            $( #[doc = concat!("[`", stringify!($name), "`]")] $name($name), )*
        }

        $(
            impl From<$name> for Command {
                fn from(call: $name) -> Command {
                    Command::$name(call)
                }
            }
        )*

        impl Command {
            /// Every call's name, as the code spells it.
            pub const ALL: &'static [&'static str] = &[$( <$name as Call>::NAME ),*];

            /// This call's name, as the code and the wire spell it (for tables and logs).
            pub fn name(&self) -> &'static str {
                match self {
                    $( Command::$name(_) => <$name as Call>::NAME, )*
                }
            }
        }
    };
}

commands! {
    Status,
    List,
    Queue,
    Retry,
    Hold,
    Release,
    Cancel,
    Reroute,
    QuarantineList,
    QuarantineShow,
    QuarantineRelease,
    QuarantineDelete,
    OpenAlerts,
    Acknowledge,
    CallNoAnswer,
    CallCount,
    PrintBatches,
    PrintConfirm,
    StaffGrant,
    StaffRevoke,
    StaffList,
    WhoAmI,
    DeskDraft,
    DeskDraftDocument,
    DeskSend,
    DeskJobs,
    DeskJob,
    Backup,
    SubmissionLookup,
    AuditVerify,
    AuditExport,
    MunicipalityList,
    MunicipalityShow,
    MunicipalitySet,
    MunicipalityHistory,
    MunicipalityImport,
    MunicipalityExport,
    MunicipalityCheck,
    MunicipalityVerify,
    MunicipalityConfirm,
    MunicipalityGrant,
    MunicipalityRevoke,
    MyMunicipalities,
    MunicipalityApprove,
    MunicipalityRefuse,
    PortalReport,
    PortalStatus,
    DeskStatus,
    MunicipalityDomains,
}
