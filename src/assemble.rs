//! Every part of kurir, wired once ([`Kurir::build`]): the store, the stages, the deliverers,
//! the alert writer and the service, from the settings and a clock. The daemon runs what this
//! builds (`kurir run` adds its tasks, sockets and signals); the tests drive the same parts in
//! process with simulated time ([`crate::clock::ManualClock`]) instead of copying the wiring.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::{mpsc, Notify};

use crate::clock::Clock;
use crate::config::Settings;
use crate::deliver::mail::Mailer;
use crate::deliver::print::PrintQueue;
use crate::inbound::Inbound;
use crate::intake::validate::JobLimits;
use crate::intake::Intake;
use crate::ops::alert::{Alert, Alerter};
use crate::pdf::PdfLimits;
use crate::queue::{Policy, QueueManager, QueueParts};
use crate::registry::Seed;
use crate::report_token::TokenKey;
use crate::service::{Service, ServiceParts};
use crate::spool::Spool;
use crate::store::Store;
use crate::worktime::WorkingHours;

/// kurir's parts, built and wired, nothing running yet.
pub struct Kurir {
    /// What time it is, for every stage that asks.
    pub clock: Arc<dyn Clock>,
    /// The store (opened, and so locked, by this process).
    pub store: Store,
    /// The spool.
    pub spool: Spool,
    /// The 290 municipalities.
    pub seed: Arc<Seed>,
    /// Protected e-mail, when a relay is configured.
    pub mailer: Option<Arc<Mailer>>,
    /// The alert writer.
    pub alerter: Arc<Alerter>,
    /// Alerts to e-mail to operations, when `[alerts]` asks for it: the daemon's alert mail
    /// task takes them.
    pub alert_mail: Option<mpsc::Receiver<Alert>>,
    /// Intake.
    pub intake: Arc<Intake>,
    /// Wakes the queue manager when intake recorded jobs.
    pub wake_queue: Arc<Notify>,
    /// The queue manager and its deliverers.
    pub queue: QueueManager,
    /// Delivery reports and read notifications coming back, and their deadlines.
    pub inbound: Arc<Inbound>,
    /// The one way anything is asked or changed.
    pub service: Service,
    /// Checks municipalities' mail servers ("säker anslutning").
    pub checker: Arc<crate::connection::Checker>,
    /// Working hours (deadlines count in them).
    pub hours: WorkingHours,
    /// Where the queue's loop proves it is alive.
    pub health: Arc<crate::ops::Health>,
}

impl Kurir {
    /// Opens the store in `[store] dir` and builds every part from `settings`, asking `clock`
    /// the time.
    pub fn build(settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Kurir> {
        let spool = Spool::new(&settings.spool.dir);
        let health = Arc::new(crate::ops::Health::default());
        let store = Store::open(&settings.store.dir).map_err(|e| {
            if e.is_locked() {
                anyhow::anyhow!(
                    "another kurir run already uses the store in {}",
                    settings.store.dir.display()
                )
            } else {
                anyhow::Error::new(e).context(format!(
                    "opening the store in {}",
                    settings.store.dir.display()
                ))
            }
        })?;
        let seed = Arc::new(Seed::builtin().context("loading the built-in municipality list")?);
        let pdf_limits = PdfLimits::from_settings(&settings.spool);
        let job_limits = JobLimits {
            pdf: pdf_limits,
            max_manifest_bytes: settings.spool.max_manifest_bytes,
            max_documents: settings.spool.max_documents,
        };

        let print = PrintQueue::new(
            spool.clone(),
            store.clone(),
            seed.clone(),
            settings.print.clone(),
            settings.sender.clone(),
            pdf_limits,
        );
        let report_key = TokenKey::load_or_create(&settings.store.dir)
            .context("the key of the return addresses for delivery reports ([proof])")?;
        let mailer = if settings.smtp.enabled() {
            let mut mailer = Mailer::new(settings, store.clone(), seed.clone())
                .context("setting up protected e-mail ([smtp], [smime])")?;
            if settings.proof.enabled() {
                mailer.ask_for_reports(report_key.clone(), settings.proof.return_path.clone());
                tracing::info!(return_path = %settings.proof.return_path, "delivery reports and read notifications asked for");
            }
            tracing::info!(relay = %mailer.relay(), "protected e-mail enabled");
            if let Some(expiry) = mailer.signing_certificate_expires_at() {
                metrics::gauge!(crate::ops::names::SIGNING_CERT_EXPIRY).set(expiry as f64);
            }
            Some(Arc::new(mailer))
        } else {
            tracing::info!("no SMTP relay configured: every job goes to the postal print queue");
            None
        };
        let connection_rule = crate::store::ConnectionRule::from_settings(&settings.connection);
        let (alert_mail_tx, alert_mail_rx) = tokio::sync::mpsc::channel(256);
        let alert_email_wanted = settings.alerts.any() && mailer.is_some();
        let alert_email = alert_email_wanted.then(|| alert_mail_tx.clone());
        let alerter = Arc::new(Alerter::new(
            spool.clone(),
            store.clone(),
            seed.clone(),
            alert_email,
        ));
        let wake_queue = Arc::new(Notify::new());
        let intake = Arc::new(Intake::new(
            spool.clone(),
            store.clone(),
            seed.clone(),
            job_limits,
            settings.spool.settle,
            mailer.is_some(),
            connection_rule,
            wake_queue.clone(),
            clock.clone(),
        ));
        let hours = WorkingHours::new(
            &settings.working_hours.time_zone,
            &settings.working_hours.start,
            &settings.working_hours.end,
        )
        .context("[working_hours]")?;
        let hours_for_proof = hours.clone();
        let hours_for_print = hours.clone();
        let policy = Policy::new(&settings.queue, &settings.deadlines, hours);
        let queue = QueueManager::new(
            QueueParts {
                store: store.clone(),
                spool: spool.clone(),
                seed: seed.clone(),
                print,
                mailer: mailer.clone(),
                health: health.clone(),
                clock: clock.clone(),
            },
            policy,
            &settings.queue,
        );
        let inbound = Arc::new(Inbound::new(
            spool.clone(),
            store.clone(),
            report_key,
            settings.proof.clone(),
            hours_for_proof,
            clock.clone(),
        ));
        let (code_key, smime_trust) =
            ServiceParts::keys(settings).context("the registry's keys ([registry], state)")?;
        let checker = Arc::new(
            crate::connection::Checker::new(&settings.connection, &settings.dns)
                .context("the connection check ([connection], [dns])")?,
        );
        let service = Service::new(ServiceParts {
            store: store.clone(),
            seed: seed.clone(),
            spool: spool.clone(),
            mailer: mailer.clone(),
            relay_configured: mailer.is_some(),
            connection_rule,
            checker: Some(checker.clone()),
            connection_expiry_warning: settings.connection.expiry_warning,
            code_ttl: settings.registry.verification_code_ttl,
            daemon: true,
            code_key,
            smime_trust,
            alerter: alerter.clone(),
            sender: settings.sender.clone(),
            working_hours: hours_for_print.clone(),
            print_confirm_within: settings.print.confirm_within,
            read_within: settings.proof.read_within,
            pdf_limits: crate::pdf::PdfLimits::from_settings(&settings.spool),
            state_dir: settings.store.dir.clone(),
        });
        if let Some(mailer) = &mailer {
            mailer.set_on_demand(Arc::new(service.clone()));
        }
        Ok(Kurir {
            clock,
            store,
            spool,
            seed,
            mailer,
            alerter,
            alert_mail: alert_email_wanted.then_some(alert_mail_rx),
            intake,
            wake_queue,
            queue,
            inbound,
            service,
            checker,
            hours: hours_for_print,
            health,
        })
    }
}
