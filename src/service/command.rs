//! Everything an operator, a municipality person or the case system can ask of kurir, as one
//! typed enum that both ends of the control socket share.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::intake::draft::DraftId;
use crate::job::DocumentKind;
use crate::job::{JobId, Kommunkod};
use crate::queue::operator::Target;
use crate::registry::{Changes, StaffRole};
use crate::store::state::JobState;

/// One request to the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Command {
    /// One job with its history.
    Status {
        /// The job.
        id: JobId,
    },
    /// Newest jobs, optionally in some states only.
    List {
        /// Only these states (all when empty).
        states: Vec<JobState>,
        /// At most this many.
        limit: usize,
    },
    /// The queue's shape: unfinished jobs by state, age and municipality.
    Queue,
    /// Try now, and forget the relay's back-off.
    Retry {
        /// What to retry.
        target: Target,
        /// Why (recorded).
        reason: String,
    },
    /// Stop until released.
    Hold {
        /// What to hold.
        target: Target,
        /// Why (recorded; required).
        reason: String,
    },
    /// Let held jobs go on.
    Release {
        /// What to release.
        target: Target,
        /// Why (recorded).
        reason: String,
    },
    /// Stop a job for good.
    Cancel {
        /// The job.
        id: JobId,
        /// Why (recorded; required).
        reason: String,
    },
    /// Letters instead of e-mail, now.
    Reroute {
        /// The job.
        id: JobId,
        /// Why (recorded; required).
        reason: String,
    },
    /// Quarantined jobs still in the quarantine folder.
    QuarantineList,
    /// One quarantined job: reason and files.
    QuarantineShow {
        /// The job.
        id: JobId,
    },
    /// Puts a corrected quarantined job back into `incoming/`.
    QuarantineRelease {
        /// The job.
        id: JobId,
        /// Why (recorded; required).
        reason: String,
    },
    /// Deletes a quarantined job's folder.
    QuarantineDelete {
        /// The job.
        id: JobId,
        /// Why (recorded; required).
        reason: String,
    },
    /// Every open alert: what dispatch and operations still have to act on.
    OpenAlerts,
    /// Records that a person dealt with a job's open alerts.
    Acknowledge {
        /// The job.
        id: JobId,
        /// What was done (recorded; required).
        reason: String,
    },
    /// Print batches, newest first, with how long closed ones wait for the print shop.
    PrintBatches,
    /// Records the print shop's word that a closed batch was printed and posted.
    PrintConfirm {
        /// The batch id (its folder under `spool/print/`).
        batch: String,
        /// A note (recorded; optional).
        reason: String,
    },
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
    },
    /// Takes a staff member's desk access away.
    StaffRevoke {
        /// Their HSA-id.
        hsa_id: String,
    },
    /// Everyone with desk access.
    StaffList,
    /// Who the signed-in person is to the desk: their staff role, if any.
    WhoAmI,
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
    },
    /// Sends the person's draft.
    DeskSend {
        /// The draft.
        draft: DraftId,
    },
    /// Recent jobs for the desk, searched and filtered.
    DeskJobs {
        /// Case number, job id, kommunkod or municipality name (empty: all).
        search: String,
        /// Which jobs.
        filter: DeskFilter,
        /// At most this many.
        limit: usize,
    },
    /// One job for the desk: its page, or its receipt for the case file. Recorded as read.
    DeskJob {
        /// The job.
        id: JobId,
        /// Which view.
        view: DeskView,
    },
    /// Writes a backup of the store as it stands now (jobs keep flowing) into a new folder.
    Backup {
        /// The new folder (absolute: the daemon writes it).
        dest: std::path::PathBuf,
    },
    /// The job that first had a submission key (by its SHA-256), if any.
    SubmissionLookup {
        /// [`crate::job::submission_digest`] of the key.
        digest: String,
    },
    /// Walks the audit chain.
    AuditVerify,
    /// Audit entries from an instant on.
    AuditExport {
        /// From when.
        since: Timestamp,
    },
    /// All municipalities with their registration.
    MunicipalityList {
        /// Only those with a secure connection.
        secure_only: bool,
    },
    /// A municipality: built-in facts, registration and the route documents take now.
    MunicipalityShow {
        /// The municipality.
        code: Kommunkod,
    },
    /// Changes a municipality's registration.
    MunicipalitySet {
        /// The municipality.
        code: Kommunkod,
        /// What to change.
        changes: Changes,
    },
    /// Every change to a municipality's registration.
    MunicipalityHistory {
        /// The municipality.
        code: Kommunkod,
    },
    /// Bulk registration from CSV text.
    MunicipalityImport {
        /// The CSV file's content.
        csv: String,
        /// Only show what would change.
        dry_run: bool,
    },
    /// All registrations as CSV text (the import format).
    MunicipalityExport,
    /// Checks the municipality's mail servers now ("säker anslutning").
    MunicipalityCheck {
        /// The municipality.
        code: Kommunkod,
    },
    /// Sends a one-time code to the municipality's pending address.
    MunicipalityVerify {
        /// The municipality.
        code: Kommunkod,
    },
    /// Makes the pending address active with the code it received.
    MunicipalityConfirm {
        /// The municipality.
        code: Kommunkod,
        /// The code from the verification message.
        secret: String,
    },
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
    },
    /// Withdraws a grant.
    MunicipalityRevoke {
        /// The municipality.
        code: Kommunkod,
        /// The person's HSA-id.
        hsa_id: String,
    },
    /// The municipalities the signed-in person may manage.
    MyMunicipalities,
    /// Puts to use what a person changed that waits for the agency's approval.
    MunicipalityApprove {
        /// The municipality.
        code: Kommunkod,
        /// The digest of what the operator reviewed (`show` prints it); approval fails if
        /// what waits is anything else. Absent (an older client): nothing matches it.
        #[serde(default)]
        digest: String,
    },
    /// Refuses what waits for approval: none of it is used.
    MunicipalityRefuse {
        /// The municipality.
        code: Kommunkod,
        /// Why (recorded).
        reason: String,
    },
    /// The portal reports its revocation lists and the CAs its persons come from.
    PortalReport {
        /// Its revocation lists.
        crls: Vec<super::CrlInfo>,
        /// The CAs' subjects.
        issuers: Vec<String>,
    },
    /// What the portal last reported (for `doctor`).
    PortalStatus,
    /// What the desk last reported of itself.
    DeskStatus,
    /// Changes the municipality's mail domains (addresses outside them wait for approval).
    MunicipalityDomains {
        /// The municipality.
        code: Kommunkod,
        /// Domains to add.
        add: Vec<String>,
        /// Domains to remove.
        remove: Vec<String>,
    },
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
