//! What a report may do to a recipient: only move it forward. The stages of proof are
//! accepted by the relay → relayed (weaker) → delivered by the final server → read; a failure
//! or a delay can only come before delivery. A report that would move a recipient backwards —
//! a failure after a delivery report, a second read notification, a changed copy of a report
//! already taken — is a conflict: recorded, and an alert to the agency, never a letter nor a
//! change of state. A pure function, so every rule is a row in a table test.

use crate::store::state::{EmailDelivery, ReportKind};

/// Most reports (taken and conflicting) kept per recipient; more go to `inbound/unmatched/`.
pub const MAX_REPORTS_PER_RECIPIENT: usize = 20;

/// What a report does to a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// It moves the recipient forward: recorded and acted on (a failure makes a letter).
    Forward,
    /// It tells something without moving anything (a delay, a deletion before reading, …).
    Note,
    /// It would move the recipient backwards: recorded as a conflict and alerted, not acted on.
    Conflict,
}

/// What the recipient's reports so far prove.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Proven {
    relayed: bool,
    delivered: bool,
    read: bool,
    failed: bool,
}

fn proven(email: &EmailDelivery) -> Proven {
    let has = |k: ReportKind| email.reports.iter().any(|r| r.kind == k);
    Proven {
        relayed: has(ReportKind::Relayed),
        delivered: has(ReportKind::Delivered),
        read: has(ReportKind::Displayed),
        failed: email.rejected.is_some() || has(ReportKind::Failed),
    }
}

/// What a report of `kind` does to the recipient whose delivery is `email`.
pub fn step(email: &EmailDelivery, kind: ReportKind) -> Step {
    let p = proven(email);
    let reached = p.delivered || p.read;
    match kind {
        ReportKind::Relayed if !p.relayed && !reached && !p.failed => Step::Forward,
        ReportKind::Delivered if !reached && !p.failed => Step::Forward,
        ReportKind::Displayed if !p.read && !p.failed => Step::Forward,
        ReportKind::Failed if !reached && !p.failed => Step::Forward,
        ReportKind::Delayed if !reached && !p.failed => Step::Note,
        ReportKind::Expanded
        | ReportKind::Deleted
        | ReportKind::Dispatched
        | ReportKind::Processed
        | ReportKind::Other
            if !p.read =>
        {
            Step::Note
        }
        _ => Step::Conflict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::state::ProofReport;

    fn report(kind: ReportKind) -> ProofReport {
        ProofReport {
            at: jiff::Timestamp::now(),
            kind,
            status: String::new(),
            diagnostic: None,
            reporting: None,
            remote_mta: None,
            arrival_date: None,
            final_recipient: None,
            sha256: String::new(),
        }
    }

    fn after(kinds: &[ReportKind]) -> EmailDelivery {
        EmailDelivery {
            message_id: String::new(),
            attempts: Vec::new(),
            accepted: None,
            rejected: None,
            reports: kinds.iter().map(|k| report(*k)).collect(),
            conflicts: Vec::new(),
            elsewhere: Vec::new(),
        }
    }

    #[test]
    fn reports_only_move_a_recipient_forward() {
        use ReportKind::*;
        use Step::*;
        let table: &[(&[ReportKind], ReportKind, Step)] = &[
            (&[], Relayed, Forward),
            (&[], Delivered, Forward),
            (&[], Displayed, Forward),
            (&[], Failed, Forward),
            (&[], Delayed, Note),
            (&[Relayed], Delivered, Forward),
            (&[Relayed], Failed, Forward),
            (&[Relayed], Relayed, Conflict),
            (&[Delivered], Displayed, Forward),
            (&[Delivered], Failed, Conflict),
            (&[Delivered], Delayed, Conflict),
            (&[Delivered], Relayed, Conflict),
            (&[Delivered], Delivered, Conflict),
            (&[Delivered, Displayed], Displayed, Conflict),
            (&[Delivered, Displayed], Failed, Conflict),
            (&[Displayed], Delivered, Conflict),
            (&[Displayed], Deleted, Conflict),
            (&[Delivered], Deleted, Note),
            (&[Failed], Failed, Conflict),
            (&[Failed], Delivered, Conflict),
        ];
        for (before, kind, expected) in table {
            assert_eq!(
                step(&after(before), *kind),
                *expected,
                "{kind} after {before:?}"
            );
        }
    }
}
