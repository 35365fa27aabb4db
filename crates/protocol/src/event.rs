//! What happened to a job, as a value: each step of its history is an [`EventKind`] with the
//! facts of that step, never a sentence. Each surface words it itself — the command line and
//! the audit chain in English ([`std::fmt::Display`], the words kurir has always written), the
//! dispatch desk in Swedish. No personal data: kommunkoder, job ids, servers' replies and
//! reasons operators gave (refused when they hold a case or identity number).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::kinds::{AlertKind, ReportKind};
use super::state::Channel;
use crate::job::{join_kommunkoder as list, JobId, Kommunkod};
use crate::registry::route::PostReason;

/// One step of a job's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EventKind {
    /// Intake claimed the job and its documents passed validation.
    Claimed {
        /// How many documents.
        documents: usize,
        /// Their pages in all (none counted for a duplicate).
        pages: Option<u32>,
    },
    /// Each recipient's route was chosen.
    Routed {
        /// Per recipient, the assigned municipality first.
        routes: Vec<RoutedTo>,
    },
    /// The same submission as an earlier job: not sent again.
    Duplicate {
        /// The first job with the submission key.
        first: JobId,
        /// Its state when this one came (`None`: taken in in the same group).
        first_state: Option<String>,
    },
    /// The job was refused at intake and kept in quarantine.
    Quarantined {
        /// The reason's code (`bad-pdf`, `unknown-kommunkod`, …).
        code: String,
        /// What was wrong, for the operator.
        summary: String,
    },
    /// The assigned municipality is held by operations.
    MunicipalityHeld {
        /// The municipality.
        kommunkod: Kommunkod,
    },
    /// An e-mail attempt began.
    Sending {
        /// Through which relay (or server).
        relay: String,
    },
    /// The relay (or the municipality's server) accepted the message.
    Accepted {
        /// The recipient.
        kommunkod: Kommunkod,
        /// Who accepted it.
        relay: String,
        /// Over which TLS version.
        tls_version: String,
        /// Its reply.
        reply: String,
    },
    /// An attempt did not succeed and is tried again.
    AttemptDeferred {
        /// The recipient.
        kommunkod: Kommunkod,
        /// What the server said, or why there was no answer.
        reason: String,
    },
    /// Whether the message arrived is unknown (the connection dropped after DATA): it is sent
    /// again with the same Message-ID.
    DeliveryUnknown {
        /// The recipient.
        kommunkod: Kommunkod,
        /// What happened.
        reason: String,
    },
    /// The server refused the message for good: the recipient gets a letter.
    Rejected {
        /// The recipient.
        kommunkod: Kommunkod,
        /// The server's reply.
        reply: String,
    },
    /// No route by e-mail any more (the registration changed): the recipient gets a letter.
    NoRoute {
        /// The recipient.
        kommunkod: Kommunkod,
        /// Why.
        reason: String,
    },
    /// The message could not be composed (signing, encryption): tried again.
    ComposeFailed {
        /// The recipient.
        kommunkod: Kommunkod,
        /// Why.
        reason: String,
    },
    /// E-mail is tried again later.
    Deferred {
        /// The recipients still waiting for e-mail.
        waiting: Vec<Kommunkod>,
        /// When.
        next: Timestamp,
        /// From when letters go instead if e-mail has not succeeded (absent before 0.3).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fallback_at: Option<Timestamp>,
    },
    /// Recipients still waiting for e-mail get letters instead.
    FellBack {
        /// Why.
        why: FallBack,
        /// Who.
        to: Vec<Kommunkod>,
    },
    /// Letters were made in a print batch.
    Letters {
        /// How many.
        count: usize,
        /// The batch.
        batch: String,
        /// A recipient had no postal address: its letter goes to the registry office.
        address_missing: bool,
    },
    /// Every recipient has its documents (or its letter).
    Settled,
    /// Not delivered in time: kurir gives up.
    Expired {
        /// The recipients not reached.
        waiting: Vec<Kommunkod>,
    },
    /// The daemon stopped while the job was being sent: it is tried again.
    InterruptedWhileSending,
    /// Handling the job failed inside kurir: tried again shortly.
    HandlingFailed {
        /// The error.
        error: String,
    },
    /// An operator (or a member of staff on the desk) acted on the job.
    ByPerson {
        /// What was done.
        action: PersonAction,
        /// Who (as recorded: operator name, or HSA-id and name).
        by: String,
        /// Why, as they gave it (may be empty).
        reason: String,
    },
    /// The print shop confirmed the letters of a batch printed and posted.
    Printed {
        /// The batch.
        batch: String,
        /// Who confirmed.
        by: String,
        /// Their note (may be empty).
        note: String,
    },
    /// Delivery reports or read notifications about one recipient's message came back.
    Reports {
        /// The recipient.
        kommunkod: Kommunkod,
        /// The reports that were taken.
        taken: Vec<ReportSeen>,
        /// A failure after acceptance sent the recipient to post.
        fell_back: bool,
        /// Reports about another mailbox than the one the message was sent to (kept, a person
        /// is told).
        elsewhere: Vec<ReportKind>,
        /// Reports set aside because they would move the recipient backwards.
        conflicts: Vec<ReportKind>,
    },
    /// No delivery report confirmed the message in time: an alert was raised.
    NotConfirmedInTime {
        /// The recipient.
        kommunkod: Kommunkod,
        /// The working time it had, seconds (absent before 0.3).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within_secs: Option<u64>,
    },
    /// No read notification came in time: an alert was raised.
    NotReadInTime {
        /// The recipient.
        kommunkod: Kommunkod,
        /// The working time it had, seconds (absent before 0.3).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within_secs: Option<u64>,
    },
    /// The documents were removed from the spool after the retention period.
    DocumentsRemoved,
    /// Words given by a test or a migration, not by the flow.
    Note {
        /// The words.
        text: String,
    },
}

/// One recipient's route, as intake chose it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutedTo {
    /// The municipality.
    pub kommunkod: Kommunkod,
    /// E-mail or post.
    pub channel: Channel,
    /// Why post, when post.
    pub post_reason: Option<PostReason>,
}

/// Why e-mail gave way to letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FallBack {
    /// No SMTP relay is configured any more.
    NoRelay,
    /// E-mail did not succeed before the fallback deadline.
    Deadline,
}

/// What a person did to a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum PersonAction {
    /// Asked for another attempt now.
    RetryRequested,
    /// Held it.
    Held,
    /// Released it.
    Released,
    /// Closed its open alerts of these kinds.
    Acknowledged {
        /// The alerts closed.
        alerts: Vec<AlertKind>,
    },
    /// Cancelled it.
    Cancelled,
    /// Sent it by post instead of e-mail.
    ReroutedToPost,
    /// Put the quarantined job back into `incoming/` under this name.
    ReleasedFromQuarantine {
        /// The folder's new name.
        name: String,
    },
    /// Deleted the quarantined job's folder.
    DeletedFromQuarantine,
    /// Phoned the municipality about an open alert and reached nobody: the alert stays open.
    CalledNoAnswer,
}

/// One report as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSeen {
    /// What it says.
    pub kind: ReportKind,
    /// The server that reported (`Reporting-MTA`), if named.
    pub by: Option<String>,
    /// Its status code.
    pub status: String,
    /// Its diagnostic, if any.
    pub diagnostic: Option<String>,
    /// The mailbox a read notification names, if any.
    pub final_recipient: Option<String>,
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use EventKind::*;
        match self {
            Claimed {
                documents,
                pages: Some(pages),
            } => write!(
                f,
                "claimed and validated: {documents} document(s), {pages} page(s) in all"
            ),
            Claimed { pages: None, .. } => f.write_str("claimed and validated"),
            Routed { routes } => {
                let each: Vec<String> = routes
                    .iter()
                    .map(|r| match (r.channel, r.post_reason) {
                        (Channel::Post, Some(reason)) => {
                            format!("{}: post ({})", r.kommunkod, reason.describe())
                        }
                        (Channel::Post, None) => format!("{}: post", r.kommunkod),
                        (Channel::Email, _) => format!("{}: email", r.kommunkod),
                    })
                    .collect();
                write!(f, "routed: {}", each.join(", "))
            }
            Duplicate { first, first_state } => write!(
                f,
                "not sent: the same submission as job {first} ({}); that job's receipt says \
                 what became of it",
                first_state.as_deref().unwrap_or("taken in with it")
            ),
            Quarantined { code, summary } => write!(f, "quarantined ({code}): {summary}"),
            MunicipalityHeld { kommunkod } => write!(f, "held: kommun {kommunkod} is on hold"),
            Sending { relay } => write!(f, "sending through {relay}"),
            Accepted {
                kommunkod,
                relay,
                tls_version,
                reply,
            } => write!(
                f,
                "{kommunkod}: e-mail accepted by {relay} over {tls_version}: {reply}"
            ),
            AttemptDeferred { kommunkod, reason } => {
                write!(f, "{kommunkod}: e-mail deferred: {reason}")
            }
            DeliveryUnknown { kommunkod, reason } => write!(
                f,
                "{kommunkod}: delivery unknown, will resend with the same Message-ID: {reason}"
            ),
            Rejected { kommunkod, reply } => write!(
                f,
                "{kommunkod}: e-mail rejected permanently ({reply}); falling back to post"
            ),
            NoRoute { kommunkod, reason } => {
                write!(f, "{kommunkod}: {reason}; falling back to post")
            }
            ComposeFailed { kommunkod, reason } => {
                write!(f, "{kommunkod}: message could not be composed: {reason}")
            }
            Deferred { waiting, next, .. } => write!(
                f,
                "deferred: e-mail to {} is tried again at {next}",
                list(waiting)
            ),
            FellBack { why, to } => write!(f, "{why}: falling back to post for {}", list(to)),
            Letters {
                count,
                batch,
                address_missing,
            } => write!(
                f,
                "{count} letter(s) in print batch {batch}{}",
                if *address_missing {
                    "; address missing: sent to the registry office"
                } else {
                    ""
                }
            ),
            Settled => f.write_str("all recipients have their documents"),
            Expired { waiting } => write!(
                f,
                "expired: not delivered to {} in time; giving up",
                list(waiting)
            ),
            InterruptedWhileSending => f.write_str("interrupted while sending; will try again"),
            HandlingFailed { error } => write!(f, "handling failed: {error}; retrying"),
            ByPerson { action, by, reason } => {
                match action {
                    PersonAction::RetryRequested => f.write_str("retry requested")?,
                    PersonAction::Held => f.write_str("held")?,
                    PersonAction::Released => f.write_str("released")?,
                    PersonAction::Acknowledged { alerts } => {
                        let kinds: Vec<&str> = alerts.iter().map(|k| k.as_str()).collect();
                        write!(f, "alert {} acknowledged", kinds.join(", "))?
                    }
                    PersonAction::Cancelled => f.write_str("cancelled")?,
                    PersonAction::ReroutedToPost => f.write_str("rerouted to post")?,
                    PersonAction::ReleasedFromQuarantine { name } => {
                        write!(f, "released from quarantine as incoming/{name}")?
                    }
                    PersonAction::CalledNoAnswer => f.write_str("called, no answer")?,
                    PersonAction::DeletedFromQuarantine => {
                        f.write_str("deleted from quarantine")?
                    }
                }
                write!(f, " by {by}")?;
                if !reason.trim().is_empty() {
                    write!(f, ": {}", reason.trim())?;
                }
                Ok(())
            }
            Printed { batch, by, note } => {
                write!(
                    f,
                    "printed: print batch {batch} confirmed printed and posted by {by}"
                )?;
                if !note.trim().is_empty() {
                    write!(f, ": {}", note.trim())?;
                }
                Ok(())
            }
            Reports {
                kommunkod,
                taken,
                fell_back,
                elsewhere,
                conflicts,
            } => {
                let parts: Vec<String> = taken.iter().map(ReportSeen::describe).collect();
                write!(f, "{kommunkod}: {}", parts.join("; "))?;
                if *fell_back {
                    f.write_str("; falling back to post")?;
                }
                if !elsewhere.is_empty() {
                    let kinds: Vec<&str> = elsewhere.iter().map(|k| k.as_str()).collect();
                    write!(
                        f,
                        "; report about another mailbox than the one the message was sent to \
                         ({}): kept, a person is told",
                        kinds.join(", ")
                    )?;
                }
                if !conflicts.is_empty() {
                    let kinds: Vec<&str> = conflicts.iter().map(|k| k.as_str()).collect();
                    write!(
                        f,
                        "{}conflicting report set aside ({}): it would move the recipient \
                         backwards; nothing changes",
                        if taken.is_empty() { "" } else { "; " },
                        kinds.join(", ")
                    )?;
                }
                Ok(())
            }
            NotConfirmedInTime { kommunkod, .. } => write!(
                f,
                "{kommunkod}: not confirmed by a delivery report in time; alert raised"
            ),
            NotReadInTime { kommunkod, .. } => {
                write!(f, "{kommunkod}: not read in time; alert raised")
            }
            DocumentsRemoved => f.write_str(
                "documents removed from the spool after the retention period; their SHA-256 \
                 stay in the receipt and the audit log",
            ),
            Note { text } => f.write_str(text),
        }
    }
}

impl std::fmt::Display for FallBack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FallBack::NoRelay => "no SMTP relay is configured any more",
            FallBack::Deadline => "e-mail did not succeed before the fallback deadline",
        })
    }
}

impl ReportSeen {
    /// The report in the history's English words.
    fn describe(&self) -> String {
        let by = self.by.as_deref().unwrap_or("unknown server");
        let status = &self.status;
        match self.kind {
            ReportKind::Delivered => format!("delivery confirmed by {by} ({status})"),
            ReportKind::Relayed => format!(
                "relayed by {by} ({status}) to a server that offers no delivery reports: weaker \
                 proof"
            ),
            ReportKind::Failed => format!(
                "delivery failed after acceptance, reported by {by}: {status} {}",
                self.diagnostic.as_deref().unwrap_or("")
            ),
            ReportKind::Delayed => format!("delivery delayed, reported by {by} ({status})"),
            ReportKind::Displayed => format!(
                "read: displayed at {}",
                self.final_recipient
                    .as_deref()
                    .unwrap_or("the recipient's mailbox")
            ),
            other => format!("report: {other} ({status})"),
        }
    }
}

impl From<&crate::state::ProofReport> for ReportSeen {
    fn from(r: &crate::state::ProofReport) -> ReportSeen {
        ReportSeen {
            kind: r.kind,
            by: r.reporting.clone(),
            status: r.status.to_string(),
            diagnostic: r.diagnostic.clone(),
            final_recipient: r.final_recipient.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code() -> Kommunkod {
        "2480".parse().expect("kommunkod")
    }

    /// The English words are the ones kurir wrote before its events were values: scripts,
    /// runbooks and the audit chain keep reading the same.
    #[test]
    fn the_history_keeps_its_english_words() {
        let cases = [
            (
                EventKind::Claimed {
                    documents: 2,
                    pages: Some(3),
                },
                "claimed and validated: 2 document(s), 3 page(s) in all",
            ),
            (
                EventKind::Routed {
                    routes: vec![
                        RoutedTo {
                            kommunkod: code(),
                            channel: Channel::Email,
                            post_reason: None,
                        },
                        RoutedTo {
                            kommunkod: "0180".parse().expect("kommunkod"),
                            channel: Channel::Post,
                            post_reason: Some(PostReason::NoSecureConnection),
                        },
                    ],
                },
                "routed: 2480: email, 0180: post (municipality has no secure connection)",
            ),
            (
                EventKind::ByPerson {
                    action: PersonAction::Cancelled,
                    by: "drift".into(),
                    reason: " fel kommun ".into(),
                },
                "cancelled by drift: fel kommun",
            ),
            (
                EventKind::FellBack {
                    why: FallBack::Deadline,
                    to: vec![code()],
                },
                "e-mail did not succeed before the fallback deadline: falling back to post for 2480",
            ),
            (
                EventKind::Reports {
                    kommunkod: code(),
                    taken: vec![ReportSeen {
                        kind: ReportKind::Displayed,
                        by: None,
                        status: String::new(),
                        diagnostic: None,
                        final_recipient: Some("registrator@kommun.test".into()),
                    }],
                    fell_back: false,
                    elsewhere: vec![],
                    conflicts: vec![ReportKind::Failed],
                },
                "2480: read: displayed at registrator@kommun.test; conflicting report set aside \
                 (failed): it would move the recipient backwards; nothing changes",
            ),
        ];
        for (what, words) in cases {
            assert_eq!(what.to_string(), words);
            let json = serde_json::to_string(&what).unwrap_or_default();
            let back: EventKind = serde_json::from_str(&json).expect("round trip");
            assert_eq!(back, what, "{json}");
        }
    }

    /// An event written before 0.3 has only its words, and is still read.
    #[test]
    fn an_event_from_before_its_kind_was_kept_is_read_with_its_words() {
        let old =
            r#"{"at":"2026-01-01T00:00:00Z","state":"queued","detail":"routed: 2480: email"}"#;
        let event: crate::state::Event = serde_json::from_str(old).expect("old event");
        assert_eq!(event.what, None);
        assert_eq!(event.detail, "routed: 2480: email");
    }
}
