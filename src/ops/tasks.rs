//! The daemon's background tasks, tracked: each spawned under a name, awaited at shutdown, and
//! watched. A task that panics, or that ends while the daemon should still be running, stops
//! the daemon with the task named and an error, so that the service manager starts it afresh —
//! a kurir whose intake or queue loop is gone must not look alive. Built on tokio-util's
//! `TaskTracker` and `CancellationToken`.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a task is expected to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Until the daemon stops: ending sooner is a failure.
    UntilShutdown,
    /// Until its work is done, which may be at once (the watchdog without systemd).
    UntilDone,
}

/// Every background task of one daemon run.
#[derive(Clone, Default)]
pub struct Tasks {
    tracker: TaskTracker,
    /// Cancelled when a task failed: the daemon stops on it.
    failed: CancellationToken,
    /// Why, for the daemon's error: the first task that failed and how.
    why: Arc<Mutex<Option<String>>>,
    /// Cancelled when the daemon begins to stop: tasks that end from then on end as they
    /// should.
    stopping: CancellationToken,
}

/// A task's handle: wait for it (in the order shutdown needs) or stop it.
pub struct Tracked {
    watcher: tokio::task::JoinHandle<()>,
    task: AbortHandle,
}

impl Tracked {
    /// Waits until the task has ended.
    pub async fn ended(self) {
        let _ = self.watcher.await;
    }

    /// Waits at most `grace` for the task to end, then stops it. Whether it ended by itself.
    pub async fn ended_within(self, grace: Duration) -> bool {
        let task = self.task.clone();
        let mut watcher = self.watcher;
        if tokio::time::timeout(grace, &mut watcher).await.is_ok() {
            return true;
        }
        task.abort();
        let _ = watcher.await;
        false
    }
}

impl Tasks {
    /// No tasks yet.
    pub fn new() -> Tasks {
        Tasks::default()
    }

    /// Runs `task` in the background as `name`, watched for `lifetime`.
    pub fn spawn<F>(&self, name: &'static str, lifetime: Lifetime, task: F) -> Tracked
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(task);
        let abort = handle.abort_handle();
        let this = self.clone();
        let watcher = self.tracker.spawn(async move {
            let failure = match handle.await {
                Err(e) if e.is_panic() => Some(format!("the {name} task panicked")),
                Err(_) => None,
                Ok(()) if lifetime == Lifetime::UntilShutdown && !this.stopping.is_cancelled() => {
                    Some(format!(
                        "the {name} task ended while the daemon was running"
                    ))
                }
                Ok(()) => None,
            };
            if let Some(why) = failure {
                tracing::error!(
                    task = name,
                    "{why}; stopping kurir so that it is started afresh"
                );
                this.fail(why);
            }
        });
        Tracked {
            watcher,
            task: abort,
        }
    }

    /// Like [`Tasks::spawn`], for a task that may end with an error: the error fails the
    /// daemon like a panic.
    pub fn spawn_fallible<F, E>(&self, name: &'static str, task: F) -> Tracked
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let this = self.clone();
        self.spawn(name, Lifetime::UntilShutdown, async move {
            if let Err(e) = task.await {
                let why = format!("the {name} task failed: {e}");
                tracing::error!(task = name, error = %e, "{why}; stopping kurir");
                this.fail(why);
            }
        })
    }

    fn fail(&self, why: String) {
        self.why
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(why);
        self.failed.cancel();
    }

    /// Resolves when a task has failed.
    pub async fn failure(&self) {
        self.failed.cancelled().await;
    }

    /// Why the daemon must stop with an error, if a task failed.
    pub fn failed(&self) -> Option<String> {
        self.why.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The daemon begins to stop: tasks that end from now on end as they should.
    pub fn stopping(&self) {
        self.stopping.cancel();
    }

    /// Waits for every task to end, at most `grace`; whether all did.
    pub async fn all_ended(&self, grace: Duration) -> bool {
        self.tracker.close();
        let ended = tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok();
        if !ended {
            tracing::warn!(
                running = self.tracker.len(),
                "background tasks still running at the end of shutdown"
            );
        }
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_or_ends_early_stops_the_daemon_and_is_named() {
        let tasks = Tasks::new();
        tasks.spawn("intake", Lifetime::UntilShutdown, async {
            panic!("test panic");
        });
        tokio::time::timeout(Duration::from_secs(5), tasks.failure())
            .await
            .expect("the failure is seen");
        assert_eq!(tasks.failed().as_deref(), Some("the intake task panicked"));

        let early = Tasks::new();
        early.spawn("queue", Lifetime::UntilShutdown, async {});
        tokio::time::timeout(Duration::from_secs(5), early.failure())
            .await
            .expect("an early end is seen");
        assert!(early.failed().is_some_and(|w| w.contains("queue")));
    }

    #[tokio::test]
    async fn tasks_that_end_at_shutdown_or_when_done_are_no_failure_and_are_awaited() {
        let tasks = Tasks::new();
        tasks.spawn("watchdog", Lifetime::UntilDone, async {});
        let stop = CancellationToken::new();
        let told = stop.clone();
        let loop_task = tasks.spawn("loop", Lifetime::UntilShutdown, async move {
            told.cancelled().await;
        });
        tasks.stopping();
        stop.cancel();
        loop_task.ended().await;
        assert!(tasks.all_ended(Duration::from_secs(5)).await);
        assert_eq!(tasks.failed(), None);
    }

    #[tokio::test]
    async fn a_task_past_its_grace_is_stopped() {
        let tasks = Tasks::new();
        let slow = tasks.spawn(
            "queue",
            Lifetime::UntilShutdown,
            std::future::pending::<()>(),
        );
        tasks.stopping();
        assert!(!slow.ended_within(Duration::from_millis(50)).await);
        assert!(tasks.all_ended(Duration::from_secs(5)).await);
    }
}
