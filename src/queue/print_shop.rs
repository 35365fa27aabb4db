//! The print shop's side of the postal channel: closed batches it must print and post, its
//! confirmation (`kurir print confirm BATCH`), and the alert when a closed batch waits too
//! long for it — counted in working time, so a batch closed on a Friday evening does not page
//! anyone over the weekend.
//!
//! A confirmation is recorded on the batch first, then on each of its jobs (`printed`, with
//! the time on each letter, which the receipts show). Confirming again is harmless and
//! finishes what a crash between the two left undone.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::job::JobId;
use crate::store::event::EventKind;
use crate::store::state::JobRecord;
use crate::store::{BatchConfirmation, BatchRecord, Store, StoreError};
use crate::worktime::WorkingHours;

use super::operator::Actor;

/// Why a batch could not be confirmed.
#[derive(Debug, thiserror::Error)]
pub enum PrintShopError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No batch has this id.
    #[error("no print batch {0}")]
    NoBatch(String),
    /// The batch is still open: letters may still go into it.
    #[error("print batch {0} is still open: it closes (READY) when full or at the end of the day")]
    StillOpen(String),
}

/// A batch as the print shop and operations see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchView {
    /// The batch.
    pub batch: BatchRecord,
    /// Working time since it closed, while it waits for confirmation.
    pub waiting: Option<SignedDuration>,
    /// It has waited longer than `[print] confirm_within`.
    pub overdue: bool,
}

/// What a confirmation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchConfirmed {
    /// The batch.
    pub batch: String,
    /// The confirmation recorded (the earlier one, if it was confirmed before).
    pub confirmation: BatchConfirmation,
    /// It had been confirmed before.
    pub already: bool,
    /// The jobs whose letters were marked printed now.
    pub jobs: Vec<JobId>,
}

/// Records the print shop's word that every letter in `batch` was printed and posted, and
/// marks the letters and their jobs (`print-queued` → `printed`).
pub fn confirm(
    store: &Store,
    batch: &str,
    actor: &Actor,
) -> Result<BatchConfirmed, PrintShopError> {
    let confirmation = BatchConfirmation {
        by: actor.operator.clone(),
        at: Timestamp::now(),
    };
    let before = store
        .confirm_batch(batch, &confirmation)?
        .ok_or_else(|| PrintShopError::NoBatch(batch.to_string()))?;
    if before.closed_at.is_none() {
        return Err(PrintShopError::StillOpen(batch.to_string()));
    }
    let (confirmation, already) = match before.confirmed {
        Some(earlier) => (earlier, true),
        None => (confirmation, false),
    };
    let jobs = mark_printed(store, batch, &confirmation, &actor.reason)?;
    Ok(BatchConfirmed {
        batch: batch.to_string(),
        confirmation,
        already,
        jobs,
    })
}

/// After a start: finishes every confirmation a crash interrupted (batch confirmed, some of
/// its jobs not yet marked). Returns how many jobs it marked.
pub fn recover(store: &Store) -> Result<usize, StoreError> {
    let mut marked = 0;
    for batch in store.batches()? {
        if let Some(confirmation) = &batch.confirmed {
            marked += mark_printed(store, &batch.id, confirmation, "")?.len();
        }
    }
    Ok(marked)
}

/// Marks each letter of `batch` printed and each job whose letters are all printed
/// `printed`; returns the jobs it changed.
fn mark_printed(
    store: &Store,
    batch: &str,
    confirmation: &BatchConfirmation,
    reason: &str,
) -> Result<Vec<JobId>, StoreError> {
    let mut ids: Vec<JobId> = store
        .letters(batch)?
        .into_iter()
        .map(|l| l.job_id)
        .collect();
    ids.dedup();
    let mut changed = Vec::new();
    for id in ids {
        let Some(job) = store.get(&id)? else {
            continue;
        };
        let unmarked = |r: &JobRecord| {
            r.recipients.iter().any(|rec| {
                rec.letter
                    .as_ref()
                    .is_some_and(|l| l.batch == batch && l.printed_at.is_none())
            })
        };
        if !unmarked(&job) {
            continue;
        }
        let what = EventKind::Printed {
            batch: batch.to_string(),
            by: confirmation.by.clone(),
            note: reason.trim().to_string(),
        };
        let at = confirmation.at;
        store.transition(&id, &[job.state], &what, &[], |r| {
            for rec in &mut r.recipients {
                if let Some(letter) = rec.letter.as_mut().filter(|l| l.batch == batch) {
                    letter.printed_at.get_or_insert(at);
                }
            }
            r.confirm_printed();
        })?;
        changed.push(id);
    }
    Ok(changed)
}

/// Every batch, newest first, with how long each closed, unconfirmed one has waited in
/// working time and whether that is longer than `limit`.
pub fn batches(
    store: &Store,
    hours: &WorkingHours,
    limit: SignedDuration,
    now: Timestamp,
) -> Result<Vec<BatchView>, StoreError> {
    let mut out: Vec<BatchView> = store
        .batches()?
        .into_iter()
        .map(|batch| {
            let waiting = match (&batch.closed_at, &batch.confirmed) {
                (Some(closed), None) => Some(hours.between(*closed, now)),
                _ => None,
            };
            BatchView {
                overdue: waiting.is_some_and(|w| w > limit),
                waiting,
                batch,
            }
        })
        .collect();
    out.reverse();
    Ok(out)
}

/// Raises one alert for each closed batch that has waited longer than `limit` of working
/// time for the print shop's confirmation, and sets the print shop's gauges. Returns how many
/// batches are overdue.
pub fn check(
    store: &Store,
    alerter: &crate::ops::alert::Alerter,
    hours: &WorkingHours,
    limit: SignedDuration,
    now: Timestamp,
) -> Result<usize, StoreError> {
    use crate::ops::names;
    use crate::store::state::AlertKind;
    let views = batches(store, hours, limit, now)?;
    let waiting: Vec<SignedDuration> = views.iter().filter_map(|v| v.waiting).collect();
    metrics::gauge!(names::PRINT_UNCONFIRMED).set(waiting.len() as f64);
    let oldest = waiting.iter().max().copied().unwrap_or_default();
    metrics::gauge!(names::PRINT_OLDEST_WAIT).set(oldest.as_secs_f64());
    metrics::gauge!(names::PRINT_CONFIRM_LIMIT).set(limit.as_secs_f64());
    let overdue: Vec<&BatchView> = views.iter().filter(|v| v.overdue).collect();
    for view in &overdue {
        let b = &view.batch;
        let alert = alerter.about_batch(
            AlertKind::PrintNotConfirmed,
            &b.id,
            format!(
                "print batch {} ({} letters) was not confirmed printed and posted within {} \
                 of working time after it closed",
                b.id,
                b.letters,
                jiff::fmt::friendly::SpanPrinter::new().duration_to_string(&limit)
            ),
            "the batch stays in spool/print/ until it is confirmed".into(),
        );
        alerter.raise(alert);
    }
    Ok(overdue.len())
}

/// Watches the print shop until shutdown: at start finishes confirmations a crash
/// interrupted, then every minute updates its gauges and alerts on batches that wait too long.
pub async fn watch(
    store: Store,
    alerter: std::sync::Arc<crate::ops::alert::Alerter>,
    hours: WorkingHours,
    limit: SignedDuration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let recovering = store.clone();
    match tokio::task::spawn_blocking(move || recover(&recovering)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(
            jobs = n,
            "finished print confirmations a restart interrupted"
        ),
        Ok(Err(e)) => tracing::error!(error = %e, "print confirmations could not be finished"),
        Err(e) => tracing::error!(error = %e, "print confirmation task failed"),
    }
    loop {
        let (store2, alerter2, hours2) = (store.clone(), alerter.clone(), hours.clone());
        let checked = tokio::task::spawn_blocking(move || {
            check(&store2, &alerter2, &hours2, limit, Timestamp::now())
        })
        .await;
        match checked {
            Ok(Err(e)) => tracing::error!(error = %e, "print batches could not be checked"),
            Err(e) => tracing::error!(error = %e, "print batch check failed"),
            Ok(Ok(_)) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        let zone = jiff::tz::TimeZone::get("Europe/Stockholm").expect("zone");
        text.parse::<jiff::civil::DateTime>()
            .expect("time")
            .to_zoned(zone)
            .expect("zoned")
            .timestamp()
    }

    fn closed(day: &str, time: Timestamp) -> BatchRecord {
        BatchRecord {
            id: format!("{}-001", day.replace('-', "")),
            day: day.into(),
            opened_at: time,
            letters: 3,
            closed_at: Some(time),
            confirmed: None,
            files_removed_at: None,
        }
    }

    /// A batch closed at midnight on a Friday has waited no working time at all on Sunday
    /// evening, and one working day on Monday at five.
    #[test]
    fn a_batch_closed_on_friday_night_waits_no_working_time_over_the_weekend() {
        let hours = WorkingHours::swedish_default().expect("hours");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        // Friday 2026-11-27 23:59:59, closed as the day ends.
        let batch = closed("2026-11-27", at("2026-11-27T23:59:59"));
        store.open_new_batch(&batch).expect("batch");
        store
            .close_batch(&batch.id, at("2026-11-27T23:59:59"))
            .expect("close");
        let limit = SignedDuration::from_hours(8);
        let sunday = batches(&store, &hours, limit, at("2026-11-29T22:00:00")).expect("views");
        assert_eq!(sunday[0].waiting, Some(SignedDuration::ZERO));
        assert!(!sunday[0].overdue);
        let monday_noon = batches(&store, &hours, limit, at("2026-11-30T12:00:00")).expect("views");
        assert_eq!(monday_noon[0].waiting, Some(SignedDuration::from_hours(4)));
        assert!(!monday_noon[0].overdue);
        let monday_evening =
            batches(&store, &hours, limit, at("2026-11-30T17:30:00")).expect("views");
        assert_eq!(
            monday_evening[0].waiting,
            Some(SignedDuration::from_hours(9))
        );
        assert!(monday_evening[0].overdue);
    }

    #[test]
    fn an_open_batch_cannot_be_confirmed_and_an_unknown_one_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let mut batch = closed("2026-11-30", Timestamp::now());
        batch.closed_at = None;
        store.open_new_batch(&batch).expect("batch");
        let actor = Actor {
            operator: "tryckeriet".into(),
            reason: String::new(),
        };
        assert!(matches!(
            confirm(&store, &batch.id, &actor),
            Err(PrintShopError::StillOpen(_))
        ));
        assert!(matches!(
            confirm(&store, "20260101-001", &actor),
            Err(PrintShopError::NoBatch(_))
        ));
        assert!(store
            .batch(&batch.id)
            .expect("read")
            .expect("batch")
            .confirmed
            .is_none());
    }
}
