//! What the service answers: the reply types of the calls ([`super::Call::Reply`]), each a
//! typed value that every surface renders in its own way (tables and JSON on the command line,
//! Swedish pages on the portal and the desk).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::job::Kommunkod;
use crate::registry::route::Route;
use crate::registry::{FieldChange, Grant, Registered, SeedMunicipality};
use crate::state::{Event, JobRecord};

/// An alert still open ([`crate::state::JobRecord::open_alerts`]), with whom to call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenAlert {
    /// The job.
    pub job_id: crate::job::JobId,
    /// What it is about.
    pub kind: crate::state::AlertKind,
    /// Who acts on it.
    pub team: crate::state::Team,
    /// The municipality concerned.
    pub kommunkod: Option<Kommunkod>,
    /// Its name.
    pub municipality: Option<String>,
    /// Its registered telephone number.
    pub phone: Option<String>,
    /// Its contact persons.
    #[serde(default)]
    pub contacts: Vec<crate::registry::Contact>,
    /// When the alert was raised (while its file is kept).
    #[serde(default)]
    pub since: Option<Timestamp>,
    /// The recipient the alert itself names (`kommunkod` above falls back to the assigned
    /// municipality for an alert about the whole job): with `kind`, the alert's mark, which
    /// closes this one alert and no other.
    #[serde(default)]
    pub recipient: Option<Kommunkod>,
    /// The job's case number, for the desk's caller (while its folder is in the spool; only
    /// to a member of staff).
    #[serde(default)]
    pub case: Option<String>,
    /// Where the decision went by e-mail to this municipality, and when the relay accepted
    /// it.
    #[serde(default)]
    pub sent: Option<(String, Timestamp)>,
}

/// How a draft will go, for the desk's confirmation page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DraftPreview {
    /// The draft to send.
    pub draft: crate::draft::DraftId,
    /// The case number, as the person gave it.
    pub case: String,
    /// Each recipient's route, the assigned municipality first.
    pub routes: Vec<RoutePreview>,
    /// The documents, checked.
    pub documents: Vec<crate::draft::DraftDocument>,
}

/// Where one recipient's documents will go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutePreview {
    /// The municipality.
    pub kommunkod: Kommunkod,
    /// Its name.
    pub name: String,
    /// E-mail to which address, or a letter and why.
    pub route: Route,
    /// The municipality is held by operations: the decision waits until released.
    pub held: bool,
    /// kurir's latest check of the municipality's mail servers: its verdict and when.
    #[serde(default)]
    pub checked: Option<(crate::registry::connection::Verdict, jiff::Timestamp)>,
}

/// What proves one recipient got its documents: relay → the municipality's server → read, or
/// the letter and the print shop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProofChain {
    /// The municipality.
    pub kommunkod: Kommunkod,
    /// Its name.
    pub name: String,
    /// Assigned or copy.
    pub role: crate::job::RecipientRole,
    /// E-mail or post (none before routing).
    pub channel: Option<crate::state::Channel>,
    /// The address the message was accepted for.
    pub address: Option<String>,
    /// When the relay accepted it.
    pub accepted_at: Option<Timestamp>,
    /// When the municipality's server reported it delivered.
    pub delivered_at: Option<Timestamp>,
    /// When a server reported it relayed on (weaker proof: the next offers no reports).
    pub relayed_at: Option<Timestamp>,
    /// When a read notification said it was displayed.
    pub read_at: Option<Timestamp>,
    /// While it is not opened: when the alert to phone the municipality comes if it is not
    /// (`[proof] read_within` of working time after the relay accepted it).
    #[serde(default)]
    pub open_by: Option<Timestamp>,
    /// A permanent failure that sent this recipient to post.
    pub rejected: Option<String>,
    /// The print batch of its letter.
    pub batch: Option<String>,
    /// When the print shop confirmed the letter printed and posted.
    pub printed_at: Option<Timestamp>,
}

/// One job in the desk's list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeskRow {
    /// The job.
    pub job_id: crate::job::JobId,
    /// Its case number, while its folder is in the spool.
    pub case: Option<String>,
    /// When kurir took it in.
    pub received_at: Timestamp,
    /// Its state.
    pub state: crate::state::JobState,
    /// Each recipient's proof.
    pub chains: Vec<ProofChain>,
    /// Its open alerts.
    pub open_alerts: Vec<crate::state::AlertKind>,
    /// Who on the desk sent it (as recorded), if it was sent from there.
    #[serde(default)]
    pub sent_by: Option<String>,
}

/// One job for the desk's page and the receipt for the case file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeskJob {
    /// The job.
    pub job: JobRecord,
    /// Every event, oldest first.
    pub events: Vec<Event>,
    /// For each event, the working time (office hours) since the job was taken in, seconds.
    pub working_seconds: Vec<i64>,
    /// Its case number, while its folder is in the spool.
    pub case: Option<String>,
    /// Each recipient's proof.
    pub chains: Vec<ProofChain>,
    /// Its open alerts, with whom to call.
    pub open_alerts: Vec<OpenAlert>,
    /// The job's newest entry in the audit chain: sequence number and hash.
    pub audit_position: Option<(u64, String)>,
    /// Who on the desk sent it (as recorded), if it was sent from there.
    #[serde(default)]
    pub sent_by: Option<String>,
}

/// What a web process (the portal or the desk) reports of itself to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebStatus {
    /// When it reported.
    pub at: Timestamp,
    /// Its revocation lists.
    pub crls: Vec<CrlInfo>,
    /// The CAs its persons' certificates come from (subjects).
    pub issuers: Vec<String>,
}

/// One job and its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    /// The job.
    pub job: JobRecord,
    /// Every event, oldest first.
    pub events: Vec<Event>,
}

/// A municipality in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MunicipalityRow {
    /// The built-in facts.
    pub municipality: SeedMunicipality,
    /// What is registered (without secrets).
    pub registered: Registered,
    /// kurir's latest check of the mail servers its decisions would go to: verdict and when.
    #[serde(default)]
    pub checked: Option<(crate::registry::connection::Verdict, jiff::Timestamp)>,
}

/// One municipality: built-in facts, registration and the route its documents take now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MunicipalityView {
    /// The built-in facts.
    pub municipality: SeedMunicipality,
    /// What is registered (without secrets).
    pub registered: Registered,
    /// The route a document would take now.
    pub route: Route,
    /// Held by an operator: who, why, since when.
    pub hold: Option<crate::registry::HoldNote>,
    /// The latest checks of the mail servers of the domain decisions go to, newest first.
    #[serde(default)]
    pub connection: Vec<crate::registry::connection::ConnectionCheck>,
}

/// A registration after a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationChanged {
    /// The municipality.
    pub kommunkod: Kommunkod,
    /// What changed.
    pub changes: Vec<FieldChange>,
    /// The registration now (without secrets).
    pub registered: Registered,
}

/// What an import changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportSummary {
    /// Nothing was written.
    pub dry_run: bool,
    /// Each municipality that changes.
    pub municipalities: Vec<MunicipalityChanges>,
}

/// One municipality's changes in an import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MunicipalityChanges {
    /// The municipality.
    pub kommunkod: Kommunkod,
    /// What changes.
    pub changes: Vec<FieldChange>,
}

/// A verification code went out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeSent {
    /// The municipality.
    pub kommunkod: Kommunkod,
    /// The pending address it went to.
    pub address: String,
    /// Until when the code is valid.
    pub expires: Timestamp,
    /// The relay's reply.
    pub reply: String,
}

/// A pending address is proven.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressConfirmed {
    /// The municipality.
    pub kommunkod: Kommunkod,
    /// The address in use now (the proven one, or — while it waits for approval — the one
    /// used before, if any).
    pub active_address: Option<String>,
    /// The proven address, when it waits for the agency's approval before it is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting_approval: Option<String>,
}

/// A municipality's grants after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantsNow {
    /// The municipality.
    pub kommunkod: Kommunkod,
    /// Who may manage it on the portal.
    pub grants: Vec<Grant>,
}

/// What one revocation list says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrlInfo {
    /// The file.
    pub file: String,
    /// Its issuer.
    pub issuer: String,
    /// When its issuer promised the next one (Unix seconds), if it did.
    pub next_update: Option<i64>,
}

/// The check of a municipality's mail servers, as `municipality check` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConnectionReport {
    /// The municipality.
    pub kommunkod: Kommunkod,
    /// The address whose domain was checked.
    pub address: String,
    /// The check.
    pub check: crate::registry::connection::ConnectionCheck,
    /// The route documents take now.
    pub route: crate::registry::route::Route,
}
