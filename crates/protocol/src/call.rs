//! What the web doors may ask of kurir, one type per call, each with the one type of answer
//! it gets ([`Call`]): `call(DeskJob { id, view })` is answered with that job or a refusal,
//! never with "something else". The command line's own calls are defined with the same
//! [`calls!`](crate::calls) in the daemon (`kurir::service::call`), which also holds the wire's
//! `Command` naming every call.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::action::{ActionDone, Target};
use crate::draft::{DraftId, DraftOutcome};
use crate::job::{DocumentKind, JobId, Kommunkod};
use crate::kinds::AlertMark;
use crate::registry::{Changes, RegistryChange, SeedMunicipality, StaffRole};
use crate::reply::{
    AddressConfirmed, CodeSent, ConnectionReport, CrlInfo, DeskJob as DeskJobView, DeskRow,
    MunicipalityView, OpenAlert, RegistrationChanged, WebStatus,
};

/// A request with the one type of answer it gets. The service's handler for a call returns
/// exactly [`Call::Reply`], and a client reads the answer as that type: a call cannot be
/// answered with another call's reply, on either side.
pub trait Call: Serialize + DeserializeOwned {
    /// The call's name on the wire (`{"command": NAME, …its fields}`): its type's name.
    const NAME: &'static str;
    /// What the service answers.
    type Reply: Serialize + DeserializeOwned;
}

/// Defines each call's type and its answer: a struct with public fields and its [`Call`]
/// impl, named on the wire by the type's name.
#[macro_export]
macro_rules! calls {
    ($(
        $(#[$meta:meta])*
        $name:ident { $( $(#[$field_meta:meta])* $field:ident : $ty:ty ),* $(,)? } => $reply:ty;
    )*) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
            pub struct $name {
                $( $(#[$field_meta])* pub $field: $ty, )*
            }

            impl $crate::call::Call for $name {
                const NAME: &'static str = stringify!($name);
                type Reply = $reply;
            }
        )*
    };
}

calls! {
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
    /// Every open alert: what dispatch and operations still have to act on.
    OpenAlerts {} => Vec<OpenAlert>;
    /// Records that a person dealt with a job's open alerts.
    Acknowledge {
        /// The job.
        id: JobId,
        /// What was done (recorded; required).
        reason: String,
        /// Only this alert (the desk closes the one call that was made: the copy
        /// municipality's answer does not close the assigned one's); `None`: every alert the
        /// person may close.
        #[serde(default)]
        alert: Option<AlertMark>,
    } => ActionDone;
    /// Records a phone call about a job's open alerts that reached nobody: the alerts stay
    /// open, the note goes into the job's history.
    CallNoAnswer {
        /// The job.
        id: JobId,
        /// What was tried (recorded; required).
        reason: String,
        /// The call that was tried: an open alert of the job that asks dispatch to phone.
        alert: AlertMark,
    } => ActionDone;
    /// How many decisions the desk's caseworkers should phone about now (the menu's count).
    CallCount {} => usize;
    /// Who the signed-in person is to the desk: their staff role, if any.
    WhoAmI {} => Option<StaffRole>;
    /// Checks a decision exactly as `kurir submit` would and keeps it as the person's draft,
    /// answering how it will go; or answers everything that must be fixed first, keeping the
    /// documents that passed so that the person need not choose them again.
    DeskDraft {
        /// The assigned municipality (`None`: what the person typed names none; the rest is
        /// checked all the same).
        to: Option<Kommunkod>,
        /// The case number (`xx-xxxxxx`).
        case: String,
        /// Municipalities that get a copy.
        copy_to: Vec<Kommunkod>,
        /// The documents chosen now, in order.
        documents: Vec<Upload>,
        /// Documents kept from the person's last try, used for each kind not chosen again.
        #[serde(default)]
        kept: Option<DraftId>,
        /// The form has problems the desk found itself: check and keep, but draft nothing.
        #[serde(default)]
        incomplete: bool,
        /// Kinds the person no longer wants sent: what was kept of them is not used.
        #[serde(default)]
        without: Vec<DocumentKind>,
    } => DraftOutcome;
    /// One document of the person's draft, to open on the review page.
    DeskDraftDocument {
        /// The draft.
        draft: DraftId,
        /// Which document.
        kind: DocumentKind,
    } => DraftFile;
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
    /// The municipalities the signed-in person may manage.
    MyMunicipalities {} => Vec<SeedMunicipality>;
    /// The portal reports its revocation lists and the CAs its persons come from.
    PortalReport {
        /// Its revocation lists.
        crls: Vec<CrlInfo>,
        /// The CAs' subjects.
        issuers: Vec<String>,
    } => Option<WebStatus>;
}

/// The most a decision's upload to the desk may weigh (both PDFs and the form); the desk's
/// socket takes a request of this much in base64 and more.
pub const DESK_UPLOAD_BYTES: usize = 40 * 1024 * 1024;

/// A document as the desk uploads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// Which document.
    pub kind: DocumentKind,
    /// The file, base64 on the wire.
    #[serde(with = "base64_bytes")]
    pub bytes: Vec<u8>,
    /// The file's name on the person's computer, shown back to them on the review page.
    #[serde(default)]
    pub name: String,
}

/// A document of a draft, for the person to open before they send it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftFile {
    /// The PDF, base64 on the wire.
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

/// Bytes as base64 text in JSON (`#[serde(with = "…::base64_bytes")]`): documents on the wire.
pub mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `bytes` as base64.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// Reads base64 into bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}
