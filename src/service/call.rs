//! Everything an operator, a municipality person, a member of staff or the case system can
//! ask of kurir: one type per call, each with the one type of answer it gets ([`Call`]), so
//! `call(Status { id })` is answered with a job's status or a refusal, never with "something
//! else". [`Command`] is the request on the wire (a call and its name); both ends of the
//! control sockets share these types.

use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::reply::{
    AddressConfirmed, CodeSent, DeskJob as DeskJobView, DeskRow, DraftPreview, GrantsNow,
    ImportSummary, JobList, JobStatus, MunicipalityRow, MunicipalityView, OpenAlert,
    RegistrationChanged, WebStatus,
};
use super::ConnectionReport;
use crate::intake::draft::DraftId;
use crate::job::DocumentKind;
use crate::job::{JobId, Kommunkod};
use crate::ops::backup::Manifest as BackupManifest;
use crate::queue::operator::{ActionDone, QuarantineFolder, QuarantinedJob, Target};
use crate::queue::print_shop::{BatchConfirmed, BatchView};
use crate::queue::shape::QueueShape;
use crate::registry::StaffRole;
use crate::registry::{Changes, RegistryChange, SeedMunicipality, StaffGrant as StaffGrantView};
use crate::store::audit::{AuditEntry, Verdict as AuditVerdict};
use crate::store::state::JobState;

/// A request with the one type of answer it gets. The service's handler for a call returns
/// exactly [`Call::Reply`], and a client reads the answer as that type: a call cannot be
/// answered with another call's reply, on either side.
pub trait Call: Into<Command> + Serialize + DeserializeOwned {
    /// What the service answers.
    type Reply: Serialize + DeserializeOwned;
}

/// Defines each call's type, its answer, and the wire's [`Command`] that carries any of them.
macro_rules! calls {
    ($(
        $(#[$meta:meta])*
        $name:ident { $( $(#[$field_meta:meta])* $field:ident : $ty:ty ),* $(,)? } => $reply:ty;
    )*) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
            pub struct $name {
                $( $(#[$field_meta])* pub $field: $ty, )*
            }

            impl Call for $name {
                type Reply = $reply;
            }

            impl From<$name> for Command {
                fn from(call: $name) -> Command {
                    Command::$name(call)
                }
            }
        )*

        /// One request to the service, as the wire carries it: `{"command": "<name>", …the
        /// call's fields}`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "command", rename_all = "kebab-case")]
        pub enum Command {
            $( $(#[$meta])* $name($name), )*
        }

        impl Command {
            /// Every call's name, as the code spells it.
            pub const ALL: &'static [&'static str] = &[$( stringify!($name) ),*];

            /// This call's name, as the code spells it (for tables and logs).
            pub fn name(&self) -> &'static str {
                match self {
                    $( Command::$name(_) => stringify!($name), )*
                }
            }
        }
    };
}

calls! {
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
    /// Try now, and forget the relay's back-off.
    Retry {
        /// What to retry.
        target: Target,
        /// Why (recorded).
        reason: String,
    } => ActionDone;
    /// Stop until released.
    Hold {
        /// What to hold.
        target: Target,
        /// Why (recorded; required).
        reason: String,
    } => ActionDone;
    /// Let held jobs go on.
    Release {
        /// What to release.
        target: Target,
        /// Why (recorded).
        reason: String,
    } => ActionDone;
    /// Stop a job for good.
    Cancel {
        /// The job.
        id: JobId,
        /// Why (recorded; required).
        reason: String,
    } => ActionDone;
    /// Letters instead of e-mail, now.
    Reroute {
        /// The job.
        id: JobId,
        /// Why (recorded; required).
        reason: String,
    } => ActionDone;
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
    /// Every open alert: what dispatch and operations still have to act on.
    OpenAlerts {} => Vec<OpenAlert>;
    /// Records that a person dealt with a job's open alerts.
    Acknowledge {
        /// The job.
        id: JobId,
        /// What was done (recorded; required).
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
    /// Who the signed-in person is to the desk: their staff role, if any.
    WhoAmI {} => Option<StaffRole>;
    /// Checks a decision exactly as `kurir submit` would and keeps it as the person's draft;
    /// answers how it will go.
    DeskDraft {
        /// The assigned municipality.
        to: Kommunkod,
        /// The case number (`xx-xxxxxx`).
        case: String,
        /// Municipalities that get a copy.
        copy_to: Vec<Kommunkod>,
        /// The documents, in order.
        documents: Vec<Upload>,
    } => Box<DraftPreview>;
    /// Sends the person's draft.
    DeskSend {
        /// The draft.
        draft: DraftId,
    } => JobId;
    /// Recent jobs for the desk, searched and filtered.
    DeskJobs {
        /// Case number, job id, kommunkod or municipality name (empty: all).
        search: String,
        /// Which jobs.
        filter: DeskFilter,
        /// At most this many.
        limit: usize,
    } => Vec<DeskRow>;
    /// One job for the desk: its page, or its receipt for the case file. Recorded as read.
    DeskJob {
        /// The job.
        id: JobId,
        /// Which view.
        view: DeskView,
    } => Box<DeskJobView>;
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
    /// A municipality: built-in facts, registration and the route documents take now.
    MunicipalityShow {
        /// The municipality.
        code: Kommunkod,
    } => Box<MunicipalityView>;
    /// Changes a municipality's registration.
    MunicipalitySet {
        /// The municipality.
        code: Kommunkod,
        /// What to change.
        changes: Changes,
    } => Box<RegistrationChanged>;
    /// Every change to a municipality's registration.
    MunicipalityHistory {
        /// The municipality.
        code: Kommunkod,
    } => Vec<RegistryChange>;
    /// Bulk registration from CSV text.
    MunicipalityImport {
        /// The CSV file's content.
        csv: String,
        /// Only show what would change.
        dry_run: bool,
    } => ImportSummary;
    /// All registrations as CSV text (the import format).
    MunicipalityExport {} => String;
    /// Checks the municipality's mail servers now ("säker anslutning").
    MunicipalityCheck {
        /// The municipality.
        code: Kommunkod,
    } => Box<ConnectionReport>;
    /// Sends a one-time code to the municipality's pending address.
    MunicipalityVerify {
        /// The municipality.
        code: Kommunkod,
    } => CodeSent;
    /// Makes the pending address active with the code it received.
    MunicipalityConfirm {
        /// The municipality.
        code: Kommunkod,
        /// The code from the verification message.
        secret: String,
    } => AddressConfirmed;
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
    /// The municipalities the signed-in person may manage.
    MyMunicipalities {} => Vec<SeedMunicipality>;
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
    /// The portal reports its revocation lists and the CAs its persons come from.
    PortalReport {
        /// Its revocation lists.
        crls: Vec<super::CrlInfo>,
        /// The CAs' subjects.
        issuers: Vec<String>,
    } => Option<WebStatus>;
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

/// A document as the desk uploads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// Which document.
    pub kind: DocumentKind,
    /// The file, base64 on the wire.
    #[serde(with = "base64_bytes")]
    pub bytes: Vec<u8>,
}

/// Which jobs the desk lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DeskFilter {
    /// Every recent job.
    #[default]
    All,
    /// Sent by e-mail, and a delivery report or read notification still awaited.
    AwaitingProof,
    /// An alert is open.
    AlertOpen,
    /// Some recipient gets a letter.
    ByPost,
}

impl DeskFilter {
    /// The filter as the wire names it, for the audit chain.
    pub fn as_str(self) -> &'static str {
        match self {
            DeskFilter::All => "all",
            DeskFilter::AwaitingProof => "awaiting-proof",
            DeskFilter::AlertOpen => "alert-open",
            DeskFilter::ByPost => "by-post",
        }
    }
}

/// Which view of a job the desk asks for (both are recorded as reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeskView {
    /// The job's page.
    Page,
    /// The receipt for the case file.
    Receipt,
}

mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}
