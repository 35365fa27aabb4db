//! The connection check as the service runs it: `municipality check` (an operator, or a
//! municipality's own IT on the portal) and the daemon's round of every municipality with an
//! e-mail route (each domain whose check is due: none yet, a passing one older than
//! `[connection] interval`, a failing one older than an hour). Each check is recorded with its
//! history; what it means for the municipalities whose decisions go to that domain follows
//! here: the metrics, an alert and a notice to the municipality when a check fails where the
//! last one passed (what to fix, in Swedish), and an alert when a server's certificate expires
//! within `[connection] expiry_warning`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

use crate::connection::Checker;
use crate::job::Kommunkod;
use crate::ops::alert::AlertKind;
use crate::registry::connection::{domain_of, ConnectionCheck, Verdict};
use crate::registry::Registered;
use crate::store::Notice;

use super::ConnectionReport;
use super::{call, Core, Principal, Service, ServiceError};

/// How often the daemon looks for checks that are due.
const ROUND: Duration = Duration::from_secs(60);
/// A failing check is repeated after this long (the municipality may have fixed it).
const FAILED_AGAIN_AFTER: SignedDuration = SignedDuration::from_hours(1);
/// A check asked for less than this long after the last one answers with the last one (a
/// portal user pressing the button again does not make kurir knock on a server again).
const ASKED_AGAIN_WITHIN: SignedDuration = SignedDuration::from_secs(60);

/// The address whose mail servers decide a municipality's route: the proven (and, outside its
/// domains, approved) one decisions go to. An address merely typed on the portal is not
/// checked: kurir knocks on no server a portal user names before the address is proven.
pub fn address_to_check(registered: &Registered) -> Option<&str> {
    registered.active_address.as_deref()
}

impl Service {
    /// `municipality check`: checks now (or returns a check made in the last minute).
    pub(super) async fn check_connection(
        &self,
        principal: Principal,
        code: Kommunkod,
    ) -> Result<Box<ConnectionReport>, ServiceError> {
        let core = self.core.clone();
        let checker = core.checker.clone().ok_or(ServiceError::NoChecker)?;
        let (address, domain, recent) = tokio::task::spawn_blocking(move || {
            super::access::check(&core, &principal, &call::MunicipalityCheck { code }.into())?;
            let registered = core.store.registered(code)?;
            let address = address_to_check(&registered)
                .ok_or(ServiceError::NothingToCheck(code))?
                .to_string();
            let domain = domain_of(&address).ok_or(ServiceError::NothingToCheck(code))?;
            let recent = core
                .store
                .latest_check(&domain)?
                .filter(|c| Timestamp::now().duration_since(c.checked_at) < ASKED_AGAIN_WITHIN);
            Ok::<_, ServiceError>((address, domain, recent))
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))??;
        let check = match recent {
            Some(check) => check,
            None => {
                let _checking = self
                    .core
                    .begin_check(&domain)
                    .ok_or(ServiceError::CheckRunning(domain.clone()))?;
                let check = checker.check(&domain).await;
                let core = self.core.clone();
                let kept = check.clone();
                tokio::task::spawn_blocking(move || core.checked(&kept))
                    .await
                    .map_err(|e| ServiceError::Internal(e.to_string()))??;
                check
            }
        };
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || {
            let registered = core.store.registered(code)?;
            let route = crate::intake::route::route_registered(
                &core.store,
                &registered,
                core.relay_configured,
                core.connection_rule,
            )?;
            Ok(Box::new(ConnectionReport {
                kommunkod: code,
                address,
                check,
                route,
            }))
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?
    }

    /// The daemon's rounds: every minute, checks each domain whose check is due, one at a time.
    pub async fn check_connections(
        self,
        checker: Arc<Checker>,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let interval = SignedDuration::try_from(interval).unwrap_or(SignedDuration::from_hours(24));
        loop {
            let core = self.core.clone();
            let due = tokio::task::spawn_blocking(move || core.domains_due(interval))
                .await
                .unwrap_or_else(|e| Err(ServiceError::Internal(e.to_string())));
            match due {
                Ok(domains) => {
                    for domain in domains {
                        if *shutdown.borrow() {
                            return;
                        }
                        let Some(_checking) = self.core.begin_check(&domain) else {
                            continue;
                        };
                        let check = tokio::select! {
                            check = checker.check(&domain) => check,
                            _ = shutdown.changed() => return,
                        };
                        let core = self.core.clone();
                        match tokio::task::spawn_blocking(move || core.checked(&check)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => {
                                tracing::error!(error = %e, "a connection check could not be recorded")
                            }
                            Err(e) => tracing::error!(error = %e, "connection check task failed"),
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "connection checks: the registry could not be read")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(ROUND) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Direct mode: the mailer has a domain checked, here, before it sends where no recent passing
/// check covers the recipient (the check is recorded and its consequences follow as for any).
impl crate::deliver::mail::OnDemandCheck for Service {
    fn check_domain<'a>(
        &'a self,
        domain: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<ConnectionCheck>> + Send + 'a>>
    {
        Box::pin(async move {
            let checker = self.core.checker.clone()?;
            let _checking = self.core.begin_check(domain)?;
            let check = checker.check(domain).await;
            let core = self.core.clone();
            let kept = check.clone();
            match tokio::task::spawn_blocking(move || core.checked(&kept)).await {
                Ok(Ok(())) => Some(check),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "a connection check could not be recorded");
                    None
                }
                Err(_) => None,
            }
        })
    }
}

/// Marks a domain as being checked while it lives: at most one check per domain at a time.
struct Checking<'a> {
    core: &'a Core,
    domain: String,
}

impl Drop for Checking<'_> {
    fn drop(&mut self) {
        self.core
            .checking
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.domain);
    }
}

impl Core {
    /// Claims `domain` for a check; `None` while another check of it runs.
    fn begin_check(&self, domain: &str) -> Option<Checking<'_>> {
        let mut checking = self.checking.lock().unwrap_or_else(|p| p.into_inner());
        checking.insert(domain.to_string()).then(|| Checking {
            core: self,
            domain: domain.to_string(),
        })
    }

    /// The verdict and time of the latest check of the mail servers `registered`'s decisions
    /// go to, for lists and previews.
    pub(super) fn last_checked(
        &self,
        registered: &Registered,
    ) -> Result<Option<(Verdict, Timestamp)>, ServiceError> {
        Ok(match address_to_check(registered).and_then(domain_of) {
            Some(domain) => self
                .store
                .latest_check(&domain)?
                .map(|c| (c.verdict, c.checked_at)),
            None => None,
        })
    }

    /// The municipalities with an e-mail route (the agency agreed a secure connection and an
    /// address is set), by the domain their decisions go to.
    fn by_domain(&self) -> Result<BTreeMap<String, Vec<(Kommunkod, Registered)>>, ServiceError> {
        let mut by_domain: BTreeMap<String, Vec<(Kommunkod, Registered)>> = BTreeMap::new();
        for (code, registered) in self.store.all_registered()? {
            if !registered.secure_connection {
                continue;
            }
            if let Some(domain) = address_to_check(&registered).and_then(domain_of) {
                by_domain
                    .entry(domain)
                    .or_default()
                    .push((code, registered));
            }
        }
        Ok(by_domain)
    }

    /// The domains whose check is due now.
    fn domains_due(&self, interval: SignedDuration) -> Result<Vec<String>, ServiceError> {
        let now = Timestamp::now();
        let mut due = Vec::new();
        for domain in self.by_domain()?.into_keys() {
            let wanted = match self.store.latest_check(&domain)? {
                None => true,
                Some(c) if c.verdict == Verdict::Failed => {
                    now.duration_since(c.checked_at) >= FAILED_AGAIN_AFTER.min(interval)
                }
                Some(c) => now.duration_since(c.checked_at) >= interval,
            };
            if wanted {
                due.push(domain);
            }
        }
        Ok(due)
    }

    /// Records a check, then what it means for each municipality whose decisions go to its
    /// domain.
    fn checked(&self, check: &ConnectionCheck) -> Result<(), ServiceError> {
        let previous = self.store.latest_check(&check.domain)?;
        self.store.record_check(check)?;
        tracing::info!(
            domain = %check.domain,
            verdict = ?check.verdict,
            problems = check.problems.len(),
            "mail servers checked"
        );
        let now = Timestamp::now();
        let newly_failed = check.verdict == Verdict::Failed
            && previous
                .as_ref()
                .is_none_or(|p| p.verdict == Verdict::Passed);
        let codes = self.by_domain()?.remove(&check.domain).unwrap_or_default();
        for (code, registered) in codes {
            let label = code.to_string();
            metrics::gauge!(crate::ops::names::CONNECTION_PASSED, "kommunkod" => label.clone())
                .set(if check.verdict == Verdict::Passed {
                    1.0
                } else {
                    0.0
                });
            metrics::gauge!(crate::ops::names::CONNECTION_CHECKED, "kommunkod" => label.clone())
                .set(check.checked_at.as_second() as f64);
            if let Some(expiry) = check.first_expiry() {
                metrics::gauge!(crate::ops::names::CONNECTION_CERT_EXPIRY, "kommunkod" => label)
                    .set(expiry.as_second() as f64);
                self.warn_of_expiry(code, check, expiry, now);
            }
            if newly_failed && self.connection_rule.required {
                self.tell_of_failure(code, &registered, check, now)?;
            }
        }
        Ok(())
    }

    /// Alerts when a server certificate expires within `[connection] expiry_warning`: before
    /// any decision bounces.
    fn warn_of_expiry(
        &self,
        code: Kommunkod,
        check: &ConnectionCheck,
        expiry: Timestamp,
        now: Timestamp,
    ) {
        let left = expiry.duration_since(now);
        if left > self.connection_expiry_warning || check.verdict == Verdict::Failed {
            return;
        }
        let host = check
            .mx
            .iter()
            .find(|m| m.tls.as_ref().is_some_and(|t| t.not_after == expiry))
            .map(|m| m.host.clone())
            .unwrap_or_default();
        let alert = self.alerter.about_registration(
            AlertKind::ServerCertificateExpiring,
            code,
            format!(
                "the certificate of {host}, a mail server of kommun {code}, expires {expiry} ({} days left)",
                left.as_hours() / 24
            ),
            "when it expires the check fails and decisions go by post until it is renewed".into(),
        );
        self.alerter.raise(alert);
    }

    /// A check failed where the last passed (or none ran): operations are alerted and the
    /// municipality is told what to fix.
    fn tell_of_failure(
        &self,
        code: Kommunkod,
        registered: &Registered,
        check: &ConnectionCheck,
        now: Timestamp,
    ) -> Result<(), ServiceError> {
        let why: Vec<String> = check.problems.iter().map(|p| p.describe()).collect();
        let alert = self.alerter.about_registration(
            AlertKind::ConnectionFailed,
            code,
            format!(
                "the check of {}'s mail servers failed: {}",
                check.domain,
                why.join("; ")
            ),
            "decisions go by post until a check passes; the municipality was told what to fix"
                .into(),
        );
        self.alerter.raise(alert);
        let to = Registered::to_be_told(registered, registered);
        if to.is_empty() {
            return Ok(());
        }
        let name = self
            .seed
            .get(code)
            .map(|m| m.name.clone())
            .unwrap_or_else(|| format!("kommun {code}"));
        let fixes: String = check
            .problems
            .iter()
            .map(|p| format!("- {}\r\n", p.att_rätta()))
            .collect();
        let body = format!(
            "Till {name} ({code})\r\n\r\nDen {} kontrollerade Migrationsverket e-postservrarna \
             för domänen {} och kunde inte verifiera en säker anslutning. Tills en kontroll går \
             igenom skickas beslut om anvisning till er med post.\r\n\r\nDetta behöver \
             rättas:\r\n{fixes}\r\nMigrationsverket kontrollerar igen inom en timme. Ni ser \
             resultatet på webbsidan för kommuner.\r\n\r\nFrågor: Migrationsverket, {}, {} ({}), \
             {}.\r\n",
            super::announce::swedish_time(check.checked_at),
            check.domain,
            self.sender.unit,
            self.sender.phone,
            self.sender.phone_hours,
            self.sender.email
        );
        let notice = Notice {
            kommunkod: code,
            to,
            subject: format!("Säker anslutning till er e-postserver saknas – {name}"),
            body,
            at: now,
            sent: Vec::new(),
            attempts: 0,
            next_attempt: now,
            last_error: None,
        };
        self.record_change(
            code,
            (registered, registered),
            &Principal::Operator("kurir".into()),
            crate::registry::RegistryAction::ConnectionCheckFailed,
            vec![notice],
        )
    }
}
