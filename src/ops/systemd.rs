//! systemd's notify protocol; every call is a no-op outside systemd (no NOTIFY_SOCKET).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Health;

/// Start-up is finished: recovery done, intake about to start.
pub fn ready(status: &str) {
    let _ = sd_notify::notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(status),
    ]);
}

/// A status line for `systemctl status`.
pub fn status(status: &str) {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(status)]);
}

/// Shutting down.
pub fn stopping() {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
}

/// Pings the watchdog at half its interval — but only while the queue's loop is alive, so
/// a hung daemon is restarted by systemd rather than kept alive by a timer.
pub async fn watchdog(health: Arc<Health>, mut shutdown: watch::Receiver<bool>) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let tick = (interval / 2).max(Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.changed() => return,
        }
        if health.heartbeat_age() < interval {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        } else {
            tracing::error!("queue loop has not come round; withholding the watchdog ping");
        }
    }
}
