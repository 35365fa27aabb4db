//! Watching `incoming/` and running intake: the file watcher is a hint that wakes intake at
//! once, the rescan timer the safety net that finds whatever a lost event would have hidden.
//! Intake wakes only on what can mean a new job, never on its own reads of the folder.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::{watch, Notify};

use crate::intake::Intake;
use crate::spool::Spool;

/// Claims new jobs whenever the watcher or the rescan timer says so.
pub async fn intake_loop(
    intake: Arc<Intake>,
    wake: Arc<Notify>,
    wake_queue: Arc<Notify>,
    rescan: std::time::Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut recover_next = false;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let worker = intake.clone();
        let again = recover_next;
        let result = tokio::task::spawn_blocking(move || {
            if again {
                worker.recover()?;
            }
            worker.scan()
        })
        .await;
        metrics::counter!(crate::ops::names::INTAKE_SCANS).increment(1);
        let mut pause = None;
        match result {
            Ok(Ok(outcome)) => {
                recover_next = false;
                if outcome.queued > 0 {
                    wake_queue.notify_one();
                }
                // A half-written job that went back to `incoming/` wakes the watcher by that
                // very rename: wait a little before reading it again, not at once in a loop.
                if outcome.waiting > 0 {
                    pause = Some(HALF_WRITTEN_PAUSE);
                }
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "intake failed; will look again");
                recover_next = true;
            }
            Err(e) => {
                tracing::error!(error = %e, "intake task panicked; will look again");
                recover_next = true;
            }
        }
        if let Some(pause) = pause {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(rescan) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// The least time between two scans while a job in `incoming/` looks half-written.
const HALF_WRITTEN_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// Watches `incoming/` so that a new job is claimed at once. Events are only hints: intake
/// always rescans the folder, so a lost or coalesced event costs at most one rescan interval.
pub fn watch_incoming(
    spool: &Spool,
    wake: Arc<Notify>,
    health: Arc<crate::ops::Health>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    watch_folder(spool.incoming(), wake, health)
}

/// Watches one spool folder and wakes its stage on what can mean something new arrived
/// (also used for `inbound/new/`). A folder that disappears marks the watcher dead in the
/// health check.
pub fn watch_folder(
    folder: std::path::PathBuf,
    wake: Arc<Notify>,
    health: Arc<crate::ops::Health>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    let watched = folder.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match &event {
            Err(e) => {
                tracing::warn!(error = %e, "file watcher reported an error; rescanning");
                // Events after an error are hints at best; the folder itself must still be there.
                if !watched.is_dir() {
                    health
                        .watcher_alive
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                }
                wake.notify_one();
            }
            Ok(event) if may_mean_a_new_job(event) => wake.notify_one(),
            // Opening, reading and closing the folder (the stage's own scan does all three) and
            // metadata changes bring nothing new: waking on them made each scan trigger the next.
            Ok(_) => {}
        }
    })
    .context("starting the file watcher")?;
    watcher
        .watch(&folder, notify::RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", folder.display()))?;
    Ok(watcher)
}

/// Whether a watcher event on `incoming/` can mean that a job arrived: a directory created or
/// renamed into the folder, a file written there (a writer that ignores the rename rule), or
/// the watcher's own signal that it lost events and the folder must be read again. Access
/// events (open, read, close) never do: intake's scan makes them itself.
fn may_mean_a_new_job(event: &notify::Event) -> bool {
    use notify::event::{EventKind, ModifyKind, RenameMode};
    if event.need_rescan() {
        return true;
    }
    match event.kind {
        EventKind::Create(_) | EventKind::Any | EventKind::Other => true,
        // Renamed out of the folder (intake's own claim): nothing new is there.
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => false,
        EventKind::Modify(ModifyKind::Name(_) | ModifyKind::Data(_) | ModifyKind::Any) => true,
        EventKind::Modify(ModifyKind::Metadata(_) | ModifyKind::Other) => false,
        EventKind::Access(_) | EventKind::Remove(_) => false,
    }
}
