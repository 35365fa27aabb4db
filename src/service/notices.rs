//! The notifier: sends the notices the store holds — changes of where decisions go, and
//! certificates about to expire — signed by the agency, each to everyone it names, retrying
//! with growing waits until all have it; and once an hour queues the expiry notices of
//! registered certificates (30 and 7 days ahead), with an alert to the agency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

use crate::deliver::mail::Mailer;
use crate::ops::alert::AlertKind;
use crate::registry::CertNotice;

use super::{announce, Core, Principal, Service};

/// How often the notifier looks when nothing woke it.
const POLL: Duration = Duration::from_secs(30);
/// How often certificates are looked at for their expiry.
const EXPIRY_CHECK: Duration = Duration::from_secs(3600);
/// Days before a certificate's expiry that a notice goes, latest last.
const EXPIRY_NOTICES: [u32; 2] = [30, 7];

/// The wait before the next attempt at a notice, after `attempts` failed ones.
fn backoff(attempts: u32) -> SignedDuration {
    let minutes = [1, 5, 15, 60];
    let i = usize::try_from(attempts.saturating_sub(1)).unwrap_or(usize::MAX);
    SignedDuration::from_mins(*minutes.get(i).unwrap_or(&60))
}

impl Service {
    /// Runs the notifier until shutdown. Without a relay, notices wait (and say so in the log)
    /// until one is configured.
    pub async fn notify(self, mailer: Option<Arc<Mailer>>, mut shutdown: watch::Receiver<bool>) {
        let wanted = self.core.store.notices_wanted();
        let mut expiry_checked: Option<Instant> = None;
        let mut warned = false;
        loop {
            if *shutdown.borrow() {
                return;
            }
            if expiry_checked.is_none_or(|t| t.elapsed() >= EXPIRY_CHECK) {
                expiry_checked = Some(Instant::now());
                let core = self.core.clone();
                match tokio::task::spawn_blocking(move || {
                    core.queue_expiry_notices(Timestamp::now())
                })
                .await
                {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "certificate expiry check failed"),
                    Err(e) => tracing::error!(error = %e, "certificate expiry task failed"),
                }
            }
            let store = self.core.store.clone();
            let due = match tokio::task::spawn_blocking(move || store.due_notices(Timestamp::now()))
                .await
            {
                Ok(Ok(due)) => due,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "notices could not be read");
                    Vec::new()
                }
                Err(e) => {
                    tracing::error!(error = %e, "notice task failed");
                    Vec::new()
                }
            };
            match (&mailer, due.is_empty()) {
                (_, true) => {}
                (None, false) => {
                    if !warned {
                        tracing::warn!(notices = due.len(), "notices to municipalities wait: no SMTP relay is configured ([smtp] host)");
                        warned = true;
                    }
                }
                (Some(mailer), false) => {
                    for (seq, notice) in due {
                        self.send_one(mailer, seq, notice).await;
                    }
                }
            }
            tokio::select! {
                _ = wanted.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn send_one(&self, mailer: &Mailer, seq: u64, mut notice: crate::store::Notice) {
        for address in notice.unsent() {
            match mailer
                .send_notice(&address, notice.subject.clone(), notice.body.clone())
                .await
            {
                Ok(_) => notice.sent.push(address),
                Err(e) => {
                    tracing::warn!(kommunkod = %notice.kommunkod, error = %e, "a notice to a municipality could not be sent; it is tried again");
                    notice.last_error = Some(e);
                }
            }
        }
        let store = self.core.store.clone();
        let result = tokio::task::spawn_blocking(move || {
            if notice.unsent().is_empty() {
                tracing::info!(kommunkod = %notice.kommunkod, recipients = notice.sent.len(), "notice sent");
                store.finish_notice(seq, &notice)
            } else {
                notice.attempts += 1;
                notice.next_attempt = Timestamp::now() + backoff(notice.attempts);
                store.update_notice(seq, &notice)
            }
        })
        .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "a notice's progress could not be recorded"),
            Err(e) => tracing::error!(error = %e, "notice task failed"),
        }
    }
}

impl Core {
    /// Queues the expiry notices registered certificates are due for (blocking). Returns how
    /// many it queued.
    fn queue_expiry_notices(&self, now: Timestamp) -> Result<usize, super::ServiceError> {
        let _guard = self.registry_lock.lock().unwrap_or_else(|p| p.into_inner());
        let today = openssl::asn1::Asn1Time::days_from_now(0).ok();
        let mut queued = 0;
        for (code, registered) in self.store.all_registered()? {
            let Some(cert) = registered.smime_cert.as_ref() else {
                continue;
            };
            let (Some(today), Ok(x509)) = (&today, cert.x509()) else {
                continue;
            };
            let Ok(left) = today.diff(x509.not_after()) else {
                continue;
            };
            let days_left = left.days;
            let Some(threshold) = EXPIRY_NOTICES
                .iter()
                .copied()
                .filter(|t| days_left <= i32::try_from(*t).unwrap_or(i32::MAX))
                .min()
            else {
                continue;
            };
            let sent = |days: u32| {
                registered
                    .cert_notices
                    .iter()
                    .any(|n| n.sha256 == cert.sha256 && n.days == days)
            };
            if sent(threshold) {
                continue;
            }
            let name = self
                .seed
                .get(code)
                .map(|m| m.name.clone())
                .unwrap_or_else(|| format!("kommun {code}"));
            let mut after = registered.clone();
            // The nearer notice stands for the farther ones not yet sent.
            for days in EXPIRY_NOTICES.iter().copied().filter(|d| *d >= threshold) {
                if !sent(days) {
                    after.cert_notices.push(CertNotice {
                        sha256: cert.sha256.clone(),
                        days,
                    });
                }
            }
            let notices: Vec<_> =
                announce::expiry_notice(code, &name, &registered, threshold, &self.sender, now)
                    .into_iter()
                    .collect();
            self.record_change(
                code,
                (&registered, &after),
                &Principal::Operator("kurir".into()),
                crate::registry::RegistryAction::CertificateExpiryNotice { days: threshold },
                notices,
            )?;
            let alert = self.alerter.about_registration(
                AlertKind::CertificateExpiring,
                code,
                format!(
                    "the S/MIME certificate of kommun {code} expires on {} ({days_left} days left)",
                    cert.not_after
                ),
                "the municipality was told; decisions go encrypted to it until it expires".into(),
            );
            self.alerter.raise(alert);
            queued += 1;
        }
        Ok(queued)
    }
}
