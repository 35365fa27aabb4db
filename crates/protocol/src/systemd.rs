//! systemd's notify protocol; every call is a no-op outside systemd (no NOTIFY_SOCKET).

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
