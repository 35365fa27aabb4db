//! The kinds a job's record names — what came of an attempt, what a report said, which alert
//! was raised — as enums, never strings compared by text. Each keeps the name it had as a
//! string in kurir 0.1.0, so records of that release read as they are.

use serde::{Deserialize, Serialize};

use crate::job::{JobId, Kommunkod};

/// What came of one e-mail attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttemptOutcome {
    /// The server accepted the message (`250`).
    Accepted,
    /// Try again later: a 4xx, a connection or TLS failure, or a message not composed.
    Deferred,
    /// A 5xx: this address will not take it.
    Rejected,
    /// The connection broke after the message was sent: it may have been delivered.
    Unknown,
    /// The routing rule no longer gave e-mail.
    NoRoute,
}

/// What a delivery report or read notification says about one message. A DSN's `Action`
/// (RFC 3464) counts only from a `message/delivery-status` part, an MDN's disposition type
/// (RFC 8098) only from a `message/disposition-notification` part; anything else is
/// [`ReportKind::Other`] and proves nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportKind {
    /// DSN: the final server put it in the mailbox.
    Delivered,
    /// DSN: passed on to a server that offers no reports.
    Relayed,
    /// DSN: delivery failed.
    Failed,
    /// DSN: still trying.
    Delayed,
    /// DSN: delivered to a list, which passed it on.
    Expanded,
    /// MDN: the message was displayed.
    Displayed,
    /// MDN: deleted unread.
    Deleted,
    /// MDN: sent on without being displayed.
    Dispatched,
    /// MDN: processed without being displayed.
    Processed,
    /// Anything else.
    Other,
}

impl ReportKind {
    const NAMES: [(ReportKind, &'static str); 9] = [
        (ReportKind::Delivered, "delivered"),
        (ReportKind::Relayed, "relayed"),
        (ReportKind::Failed, "failed"),
        (ReportKind::Delayed, "delayed"),
        (ReportKind::Expanded, "expanded"),
        (ReportKind::Displayed, "displayed"),
        (ReportKind::Deleted, "deleted"),
        (ReportKind::Dispatched, "dispatched"),
        (ReportKind::Processed, "processed"),
    ];

    /// The protocol's word for it (`other` for anything unknown).
    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("other", |(_, n)| n)
    }

    fn named(name: &str) -> ReportKind {
        Self::NAMES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name.trim()))
            .map_or(ReportKind::Other, |(k, _)| *k)
    }

    /// A DSN's `Action` field: only the five DSN actions count.
    pub fn from_dsn_action(action: &str) -> ReportKind {
        match Self::named(action) {
            k @ (ReportKind::Delivered
            | ReportKind::Relayed
            | ReportKind::Failed
            | ReportKind::Delayed
            | ReportKind::Expanded) => k,
            _ => ReportKind::Other,
        }
    }

    /// An MDN's disposition type: only the four MDN dispositions count.
    pub fn from_mdn_disposition(disposition_type: &str) -> ReportKind {
        match Self::named(disposition_type) {
            k @ (ReportKind::Displayed
            | ReportKind::Deleted
            | ReportKind::Dispatched
            | ReportKind::Processed) => k,
            _ => ReportKind::Other,
        }
    }
}

impl std::fmt::Display for ReportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ReportKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReportKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok(ReportKind::named(&name))
    }
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    /// Still not delivered after `[deadlines] warn_after` of working time.
    DeferredTooLong,
    /// E-mail gave way to post (deadline passed, permanent rejection or operator).
    FellBack,
    /// kurir gave up.
    Failed,
    /// Bad input was quarantined.
    Quarantined,
    /// No delivery report confirmed an accepted message within `[proof] confirm_within`.
    Unconfirmed,
    /// No read notification came within `[proof] read_within`.
    Unread,
    /// A report contradicted what earlier reports proved (it was kept, not acted on).
    ConflictingReport,
    /// A report about this decision (its token proves it) names an address kurir did not send
    /// to: an alias or forward at the municipality, a failure of one of its mailboxes.
    ReportNamesAnotherAddress,
    /// Where a municipality's decisions go was changed (announced to the municipality).
    RegistrationChanged,
    /// A change made on the portal waits for an operator's approval.
    ApprovalWaiting,
    /// A municipality's S/MIME certificate expires soon.
    CertificateExpiring,
    /// A closed print batch was not confirmed printed and posted within `[print]
    /// confirm_within` of working time.
    PrintNotConfirmed,
    /// kurir's check of a municipality's mail servers failed: its decisions go by post.
    ConnectionFailed,
    /// A municipality's mail server certificate expires within `[connection] expiry_warning`.
    ServerCertificateExpiring,
}

impl AlertKind {
    /// Every kind.
    pub const ALL: [AlertKind; 14] = [
        AlertKind::DeferredTooLong,
        AlertKind::FellBack,
        AlertKind::Failed,
        AlertKind::Quarantined,
        AlertKind::Unconfirmed,
        AlertKind::Unread,
        AlertKind::ConflictingReport,
        AlertKind::ReportNamesAnotherAddress,
        AlertKind::RegistrationChanged,
        AlertKind::ApprovalWaiting,
        AlertKind::CertificateExpiring,
        AlertKind::PrintNotConfirmed,
        AlertKind::ConnectionFailed,
        AlertKind::ServerCertificateExpiring,
    ];

    /// The kebab-case name, used in file names, log fields and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::DeferredTooLong => "deferred-too-long",
            AlertKind::FellBack => "fell-back",
            AlertKind::Failed => "failed",
            AlertKind::Quarantined => "quarantined",
            AlertKind::Unconfirmed => "unconfirmed",
            AlertKind::Unread => "unread",
            AlertKind::ConflictingReport => "conflicting-report",
            AlertKind::ReportNamesAnotherAddress => "report-names-another-address",
            AlertKind::RegistrationChanged => "registration-changed",
            AlertKind::ApprovalWaiting => "approval-waiting",
            AlertKind::CertificateExpiring => "certificate-expiring",
            AlertKind::PrintNotConfirmed => "print-not-confirmed",
            AlertKind::ConnectionFailed => "connection-failed",
            AlertKind::ServerCertificateExpiring => "server-certificate-expiring",
        }
    }

    /// Who acts on an alert of this kind: dispatch phones municipalities and owns the
    /// documents; operations own the machine, the registry and trust.
    pub fn team(self) -> Team {
        match self {
            AlertKind::DeferredTooLong
            | AlertKind::FellBack
            | AlertKind::Failed
            | AlertKind::Quarantined
            | AlertKind::Unconfirmed
            | AlertKind::Unread
            | AlertKind::ReportNamesAnotherAddress => Team::Dispatch,
            AlertKind::ConflictingReport
            | AlertKind::RegistrationChanged
            | AlertKind::ApprovalWaiting
            | AlertKind::CertificateExpiring
            | AlertKind::PrintNotConfirmed
            | AlertKind::ConnectionFailed
            | AlertKind::ServerCertificateExpiring => Team::Ops,
        }
    }

    /// The alerting rule (`ops/prometheus/kurir.rules.yml`) that fires while alerts of this
    /// kind are open; also the runbook section (`docs/runbook.md`) that says what to do.
    pub fn rule(self) -> &'static str {
        match self {
            AlertKind::DeferredTooLong => "KurirJobUndeliveredPastWarning",
            AlertKind::FellBack => "KurirFellBackToPost",
            AlertKind::Failed => "KurirJobFailed",
            AlertKind::Quarantined => "KurirQuarantineWaiting",
            AlertKind::Unconfirmed => "KurirDeliveryUnconfirmed",
            AlertKind::Unread => "KurirDecisionUnread",
            AlertKind::ConflictingReport => "KurirConflictingReport",
            AlertKind::ReportNamesAnotherAddress => "KurirReportNamesAnotherAddress",
            AlertKind::RegistrationChanged => "KurirRegistrationChanged",
            AlertKind::ApprovalWaiting => "KurirApprovalWaiting",
            AlertKind::CertificateExpiring => "KurirMunicipalityCertificateExpiring",
            AlertKind::PrintNotConfirmed => "KurirPrintBatchNotConfirmed",
            AlertKind::ConnectionFailed => "KurirConnectionCheckFailed",
            AlertKind::ServerCertificateExpiring => "KurirMunicipalityServerCertificateExpiring",
        }
    }

    /// An alert of this kind asks dispatch to phone the municipality (the desk's Att ringa):
    /// dispatch's alerts, but for a quarantined submission, which is fixed, not phoned about.
    pub fn is_a_call(self) -> bool {
        self.team() == Team::Dispatch && self != AlertKind::Quarantined
    }

    /// The kind named `name` (as [`AlertKind::as_str`] gives it).
    pub fn named(name: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Who acts on an alert: the `team` label of the alerting rules and where alert e-mails go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Team {
    /// Dispatch staff at Bosättningsenheten: they phone the municipality.
    Dispatch,
    /// Operations: the machine, the relay, the registry, trust.
    Ops,
}

impl Team {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Team::Dispatch => "dispatch",
            Team::Ops => "ops",
        }
    }
}

/// An alert already raised for a job, so that each is raised once: its kind and, where it
/// concerns one recipient, the municipality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct AlertMark {
    /// What the alert was about.
    pub kind: AlertKind,
    /// The recipient it concerned, if one.
    pub kommunkod: Option<Kommunkod>,
}

impl AlertMark {
    /// An alert about the job as a whole.
    pub fn job(kind: AlertKind) -> AlertMark {
        AlertMark {
            kind,
            kommunkod: None,
        }
    }

    /// An alert about one recipient.
    pub fn recipient(kind: AlertKind, code: Kommunkod) -> AlertMark {
        AlertMark {
            kind,
            kommunkod: Some(code),
        }
    }

    /// This mark of job `id` as a key of the store's open-alert index: `id NUL kind NUL code`.
    pub fn index_key(self, id: &JobId) -> Vec<u8> {
        let code = self.kommunkod.map(|k| k.to_string()).unwrap_or_default();
        format!("{id}\0{}\0{code}", self.kind.as_str()).into_bytes()
    }

    /// The job and mark an open-alert index key names; `None` for a key of another shape.
    pub fn from_index_key(key: &[u8]) -> Option<(JobId, AlertMark)> {
        let text = std::str::from_utf8(key).ok()?;
        let mut parts = text.split('\0');
        let id: JobId = parts.next()?.parse().ok()?;
        let kind = AlertKind::named(parts.next()?)?;
        let kommunkod = match parts.next()? {
            "" => None,
            code => Some(code.parse().ok()?),
        };
        Some((id, AlertMark { kind, kommunkod }))
    }
}

impl<'de> Deserialize<'de> for AlertMark {
    /// Reads the mark as this release writes it, or as 0.1.0 wrote it: a string `kind` or
    /// `kind:kommunkod`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Mark {
                kind: AlertKind,
                kommunkod: Option<Kommunkod>,
            },
            Legacy(String),
        }
        match Stored::deserialize(d)? {
            Stored::Mark { kind, kommunkod } => Ok(AlertMark { kind, kommunkod }),
            Stored::Legacy(text) => {
                let (kind, code) = match text.split_once(':') {
                    Some((kind, code)) => (kind, Some(code)),
                    None => (text.as_str(), None),
                };
                let kind = AlertKind::named(kind).ok_or_else(|| {
                    serde::de::Error::custom(format!("unknown alert kind {kind:?}"))
                })?;
                let kommunkod = code
                    .map(str::parse::<Kommunkod>)
                    .transpose()
                    .map_err(serde::de::Error::custom)?;
                Ok(AlertMark { kind, kommunkod })
            }
        }
    }
}

/// What an alert is about, in Swedish: the e-mail's subject line and the desk's heading (no
/// personal data).
pub fn rubrik(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::DeferredTooLong => "beslutet är ännu inte levererat",
        AlertKind::FellBack => "beslutet går med post i stället för e-post",
        AlertKind::Failed => "beslutet kunde inte levereras",
        AlertKind::Quarantined => "en inlämning ligger i karantän",
        AlertKind::Unconfirmed => "ingen leveransrapport bekräftar beslutet",
        AlertKind::Unread => "beslutet har inte öppnats, ring kommunen nu",
        AlertKind::ConflictingReport => "en leveransrapport motsäger tidigare rapporter",
        AlertKind::ReportNamesAnotherAddress => {
            "en leveransrapport om beslutet nämner en annan adress"
        }
        AlertKind::RegistrationChanged => "kommunens mottagaradress har ändrats",
        AlertKind::ApprovalWaiting => "en ändring från portalen väntar på godkännande",
        AlertKind::CertificateExpiring => "kommunens S/MIME-certifikat går snart ut",
        AlertKind::PrintNotConfirmed => "tryckeriet har inte bekräftat en utskriftsbatch",
        AlertKind::ConnectionFailed => "kommunens e-postserver klarar inte säker anslutning",
        AlertKind::ServerCertificateExpiring => {
            "certifikatet för kommunens e-postserver går snart ut"
        }
    }
}
