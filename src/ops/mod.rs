//! Operations: Prometheus metrics and a health check on loopback, and systemd's notify
//! protocol (READY after recovery, STATUS lines, WATCHDOG pings from the queue's own loop).
//!
//! Metric labels are channels, states, reply classes and kommunkoder — never personal data.

pub mod alert;
pub mod backup;
pub use kurir_protocol::{logging, systemd};
pub mod retention;
pub mod tasks;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use jiff::Timestamp;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::watch;

use crate::spool::Spool;
use crate::store::state::{JobRecord, JobState};
use crate::store::Store;

/// Names of kurir's metrics, in one place.
pub mod names {
    /// Jobs claimed and queued, by channel.
    pub const RECEIVED: &str = "kurir_jobs_received_total";
    /// Jobs that reached their destination (accepted by the mail server or in a print
    /// batch), by channel.
    pub const DELIVERED: &str = "kurir_jobs_delivered_total";
    /// Deferrals, by channel.
    pub const DEFERRED: &str = "kurir_jobs_deferred_total";
    /// Fallbacks from e-mail to post.
    pub const FALLEN_BACK: &str = "kurir_jobs_fallen_back_total";
    /// Jobs given up.
    pub const FAILED: &str = "kurir_jobs_failed_total";
    /// Jobs quarantined.
    pub const QUARANTINED: &str = "kurir_jobs_quarantined_total";
    /// SMTP outcomes by class (2xx, 4xx, 5xx, unknown, connection, tls).
    pub const SMTP_REPLIES: &str = "kurir_smtp_replies_total";
    /// TLS failures (handshake, verification, no STARTTLS, pin).
    pub const TLS_FAILURES: &str = "kurir_tls_failures_total";
    /// Seconds from intake to acceptance (e-mail) or print batch (post), by channel.
    pub const LATENCY: &str = "kurir_delivery_latency_seconds";
    /// Unfinished jobs by state.
    pub const QUEUE_DEPTH: &str = "kurir_queue_depth";
    /// Age of the oldest unfinished job that is not held on purpose.
    pub const OLDEST_AGE: &str = "kurir_oldest_undelivered_age_seconds";
    /// Alerts whose cause still holds and that no person acknowledged, by `kind`: what the
    /// alerting rules fire on for as long as it lasts.
    pub const ALERTS_OPEN: &str = "kurir_alerts_open";
    /// Bytes of files in each spool folder, by `folder`.
    pub const SPOOL_BYTES: &str = "kurir_spool_bytes";
    /// Bytes free on the file system of the spool and of the state, by `folder`.
    pub const FS_FREE: &str = "kurir_filesystem_free_bytes";
    /// Size of the file system of the spool and of the state, by `folder`.
    pub const FS_SIZE: &str = "kurir_filesystem_size_bytes";
    /// Delivery reports that matched no job, kept in `spool/inbound/unmatched/`.
    pub const INBOUND_UNMATCHED: &str = "kurir_inbound_unmatched";
    /// Closed print batches the print shop has not confirmed printed and posted.
    pub const PRINT_UNCONFIRMED: &str = "kurir_print_batches_unconfirmed";
    /// Working time (office hours) the oldest unconfirmed closed batch has waited.
    pub const PRINT_OLDEST_WAIT: &str = "kurir_print_oldest_unconfirmed_working_seconds";
    /// `[print] confirm_within`, in working seconds: the alert's threshold, set by kurir.
    pub const PRINT_CONFIRM_LIMIT: &str = "kurir_print_confirm_limit_working_seconds";
    /// The earliest expiry of a municipality's registered S/MIME certificate (Unix seconds).
    pub const MUNICIPALITY_CERT_EXPIRY: &str =
        "kurir_municipality_certificate_earliest_expiry_timestamp_seconds";
    /// Print batches not yet closed.
    pub const BATCHES_OPEN: &str = "kurir_print_batches_open";
    /// Consecutive failures of the relay.
    pub const RELAY_FAILURES: &str = "kurir_relay_consecutive_failures";
    /// Reads of `incoming/` by intake: a quiet daemon should add only its rescan timer's.
    pub const INTAKE_SCANS: &str = "kurir_intake_scans_total";
    /// Alerts raised, by kind (`deferred-too-long`, `fell-back`, `failed`, `quarantined`,
    /// `unconfirmed`, `unread`): each is something a person must act on.
    pub const ALERTS: &str = "kurir_alerts_total";
    /// 1 when every check of `/healthz` passes, else 0.
    pub const HEALTHY: &str = "kurir_healthy";
    /// Each check of `/healthz`, 1 or 0, by `check`.
    pub const HEALTH_CHECK: &str = "kurir_health_check";
    /// When the agency's S/MIME signing certificate expires (Unix seconds).
    pub const SIGNING_CERT_EXPIRY: &str = "kurir_signing_certificate_expiry_timestamp_seconds";
    /// Quarantined jobs waiting in `spool/quarantine/` for a person.
    pub const QUARANTINE_WAITING: &str = "kurir_quarantine_waiting";
    /// When each of the portal's revocation lists promised its next (Unix seconds), by `crl`.
    pub const PORTAL_CRL_NEXT_UPDATE: &str = "kurir_portal_crl_next_update_timestamp_seconds";
    /// When the portal last reported to the daemon (Unix seconds).
    pub const PORTAL_REPORTED: &str = "kurir_portal_last_report_timestamp_seconds";
    /// Registrations with a change that waits for an operator's approval.
    pub const AWAITING_APPROVAL: &str = "kurir_registrations_awaiting_approval";
    /// Notices to municipalities not yet sent.
    pub const NOTICES_WAITING: &str = "kurir_notices_waiting";
    /// 1 while the latest check of a municipality's mail servers passed, 0 while it failed,
    /// by kommunkod (municipalities with an e-mail route only).
    pub const CONNECTION_PASSED: &str = "kurir_connection_check_passed";
    /// When a municipality's mail servers were last checked, by kommunkod.
    pub const CONNECTION_CHECKED: &str = "kurir_connection_check_timestamp_seconds";
    /// When the first of a municipality's mail server certificates expires, by kommunkod.
    pub const CONNECTION_CERT_EXPIRY: &str =
        "kurir_connection_certificate_expiry_timestamp_seconds";
}

/// Installs the Prometheus recorder once per process; later calls return the same handle.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                900.0, 3600.0, 14_400.0, 86_400.0,
            ];
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(names::LATENCY.into()),
                    &buckets,
                )
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
}

/// Counts every job the store records: handed to [`Store::observe`] by the daemon.
pub struct JobMetrics;

impl crate::store::JobObserver for JobMetrics {
    fn recorded(&self, job: &JobRecord, previous: Option<JobState>) {
        job_recorded(job, previous);
    }
}

/// Counts a job event and, for a finished job, its latency.
fn job_recorded(job: &JobRecord, previous: Option<JobState>) {
    let channel = job.channel_summary();
    let entered = |s: JobState| job.state == s && previous != Some(s);
    if previous.is_none() {
        if job.state == JobState::Quarantined {
            metrics::counter!(names::QUARANTINED).increment(1);
        } else {
            metrics::counter!(names::RECEIVED, "channel" => channel).increment(1);
        }
        return;
    }
    if entered(JobState::Deferred) {
        metrics::counter!(names::DEFERRED, "channel" => channel).increment(1);
    }
    if entered(JobState::FallenBack) {
        metrics::counter!(names::FALLEN_BACK).increment(1);
    }
    if entered(JobState::Failed) {
        metrics::counter!(names::FAILED).increment(1);
    }
    if entered(JobState::Delivered) || entered(JobState::PrintQueued) {
        metrics::counter!(names::DELIVERED, "channel" => channel).increment(1);
        let seconds = job.updated_at.duration_since(job.received_at).as_secs_f64();
        metrics::histogram!(names::LATENCY, "channel" => channel).record(seconds.max(0.0));
    }
}

/// Counts one SMTP outcome.
pub fn smtp_outcome(class: &'static str, tls_failure: bool) {
    metrics::counter!(names::SMTP_REPLIES, "class" => class).increment(1);
    if tls_failure {
        metrics::counter!(names::TLS_FAILURES).increment(1);
    }
}

/// What `/healthz` checks, shared with the parts that know.
#[derive(Debug)]
pub struct Health {
    /// The file watcher is running and has reported no fatal error.
    pub watcher_alive: AtomicBool,
    /// When the queue's loop last came round (ms since the epoch): the watchdog's evidence.
    pub queue_heartbeat: AtomicI64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            watcher_alive: AtomicBool::new(true),
            queue_heartbeat: AtomicI64::new(Timestamp::now().as_millisecond()),
        }
    }
}

impl Health {
    /// The queue's loop is alive.
    pub fn beat(&self) {
        self.queue_heartbeat
            .store(Timestamp::now().as_millisecond(), Ordering::Relaxed);
    }

    fn heartbeat_age(&self) -> Duration {
        let ms = Timestamp::now().as_millisecond() - self.queue_heartbeat.load(Ordering::Relaxed);
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }
}

#[derive(Clone)]
struct Ctx {
    store: Store,
    spool: Spool,
    state_dir: std::path::PathBuf,
    health: Arc<Health>,
    metrics: Option<PrometheusHandle>,
}

/// Binds the metrics and health listener and writes the bound address to `addr_file` (useful
/// with port 0), before the daemon says it is ready.
pub async fn bind(
    listen: SocketAddr,
    addr_file: &std::path::Path,
) -> std::io::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    crate::fsutil::write_atomic(addr_file, bound.to_string().as_bytes())?;
    tracing::info!(listen = %bound, "metrics and health on /metrics and /healthz");
    Ok(listener)
}

/// Serves `/metrics` and `/healthz` until shutdown, through the same accept loop and HTTP
/// timeouts as every other listener ([`crate::net`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Store,
    spool: Spool,
    state_dir: std::path::PathBuf,
    health: Arc<Health>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let ctx = Ctx {
        store,
        spool,
        state_dir,
        health,
        metrics: metrics_handle(),
    };
    let app = Router::new()
        .route("/metrics", get(metrics_endpoint))
        .route("/healthz", get(health_endpoint))
        .with_state(ctx);
    let limits = crate::net::Limits {
        connections: 32,
        per_client: 16,
        grace: Duration::from_secs(5),
    };
    let timeouts = crate::net::HttpTimeouts {
        header_read: Duration::from_secs(10),
        lifetime: Duration::from_secs(120),
        grace: Duration::from_secs(5),
    };
    crate::net::serve(
        listener,
        limits,
        shutdown,
        "metrics",
        move |tcp, _, shutdown| {
            let app = app.clone();
            async move {
                let service = hyper::service::service_fn(
                    move |req: axum::http::Request<hyper::body::Incoming>| {
                        tower::ServiceExt::oneshot(app.clone(), req.map(axum::body::Body::new))
                    },
                );
                crate::net::serve_http(tcp, service, timeouts, shutdown).await;
            }
        },
    )
    .await;
    Ok(())
}

async fn metrics_endpoint(State(ctx): State<Ctx>) -> (StatusCode, String) {
    let Some(handle) = ctx.metrics.clone() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable\n".into(),
        );
    };
    let store = ctx.store.clone();
    let spool = ctx.spool.clone();
    let state_dir = ctx.state_dir.clone();
    let gauges = tokio::task::spawn_blocking(move || {
        spool_gauges(&spool, &state_dir);
        update_gauges(&store)
    })
    .await;
    if let Ok(Err(e)) = gauges {
        tracing::warn!(error = %e, "queue gauges could not be computed");
    }
    let checks = health_checks(&ctx).await;
    for (check, ok) in &checks {
        metrics::gauge!(names::HEALTH_CHECK, "check" => *check).set(f64::from(u8::from(*ok)));
    }
    let healthy = checks.iter().all(|(_, ok)| *ok);
    metrics::gauge!(names::HEALTHY).set(f64::from(u8::from(healthy)));
    (StatusCode::OK, handle.render())
}

/// What waits for a person in the spool (quarantined jobs, reports that matched no job), how
/// much each folder holds, and the space left where the spool and the state live.
fn spool_gauges(spool: &Spool, state_dir: &std::path::Path) {
    let count = |dir: std::path::PathBuf, dirs: bool| {
        std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir() == dirs)
                    .count()
            })
            .unwrap_or(0)
    };
    metrics::gauge!(names::QUARANTINE_WAITING).set(count(spool.quarantine(), true) as f64);
    let unmatched = std::fs::read_dir(spool.inbound_unmatched())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| !e.file_name().to_string_lossy().ends_with(".reason"))
                .filter(|e| e.path().is_file())
                .count()
        })
        .unwrap_or(0);
    metrics::gauge!(names::INBOUND_UNMATCHED).set(unmatched as f64);
    for (folder, dir) in [("spool", spool.root()), ("state", state_dir)] {
        if let Some(space) = crate::fsutil::space(dir) {
            metrics::gauge!(names::FS_FREE, "folder" => folder).set(space.free as f64);
            metrics::gauge!(names::FS_SIZE, "folder" => folder).set(space.size as f64);
        }
    }
    spool_bytes(spool);
}

/// Bytes per spool folder: walked at most once a minute, however often Prometheus scrapes.
fn spool_bytes(spool: &Spool) {
    static LAST: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    {
        let Ok(mut last) = LAST.lock() else {
            return;
        };
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
            return;
        }
        *last = Some(std::time::Instant::now());
    }
    for (folder, dir) in [
        ("incoming", spool.incoming()),
        ("active", spool.active()),
        ("quarantine", spool.quarantine()),
        ("print", spool.print()),
        ("receipts", spool.receipts()),
        ("alerts", spool.alerts()),
        ("inbound", spool.root().join("inbound")),
    ] {
        metrics::gauge!(names::SPOOL_BYTES, "folder" => folder)
            .set(crate::fsutil::tree_bytes(&dir) as f64);
    }
}

/// Gauges computed from the store at scrape time.
fn update_gauges(store: &Store) -> Result<(), crate::store::StoreError> {
    let now = Timestamp::now();
    let mut depth: std::collections::BTreeMap<&'static str, f64> = [
        JobState::Received,
        JobState::Queued,
        JobState::Sending,
        JobState::Deferred,
        JobState::FallenBack,
        JobState::Held,
    ]
    .iter()
    .map(|s| (s.as_str(), 0.0))
    .collect();
    let mut oldest = 0.0f64;
    for job in store.pending()?.iter().filter(|j| !j.state.is_final()) {
        *depth.entry(job.state.as_str()).or_default() += 1.0;
        // A job held on purpose is not stuck: an operator knows of it.
        if job.state != JobState::Held {
            oldest = oldest.max(now.duration_since(job.received_at).as_secs_f64());
        }
    }
    let mut open: std::collections::BTreeMap<&'static str, f64> =
        crate::store::state::AlertKind::ALL
            .iter()
            .map(|k| (k.as_str(), 0.0))
            .collect();
    for (_, mark) in store.open_alerts()? {
        *open.entry(mark.kind.as_str()).or_default() += 1.0;
    }
    for (kind, n) in open {
        metrics::gauge!(names::ALERTS_OPEN, "kind" => kind).set(n);
    }
    for (state, n) in depth {
        metrics::gauge!(names::QUEUE_DEPTH, "state" => state).set(n);
    }
    metrics::gauge!(names::OLDEST_AGE).set(oldest);
    let open = if store.open_batch()?.is_some() {
        1.0
    } else {
        0.0
    };
    metrics::gauge!(names::BATCHES_OPEN).set(open);
    metrics::gauge!(names::RELAY_FAILURES).set(f64::from(store.relay_health()?.failures));
    let registered = store.all_registered()?;
    let waiting = registered
        .iter()
        .filter(|(_, r)| r.awaiting_approval.is_some())
        .count();
    metrics::gauge!(names::AWAITING_APPROVAL).set(waiting as f64);
    let earliest = registered
        .iter()
        .filter_map(|(_, r)| r.smime_cert.as_ref())
        .filter_map(|c| c.expires_at_unix())
        .min();
    if let Some(earliest) = earliest {
        metrics::gauge!(names::MUNICIPALITY_CERT_EXPIRY).set(earliest as f64);
    }
    metrics::gauge!(names::NOTICES_WAITING).set(store.waiting_notices()? as f64);
    Ok(())
}

/// The checks `/healthz` answers with, in order; also exported as gauges.
async fn health_checks(ctx: &Ctx) -> [(&'static str, bool); 4] {
    let store = ctx.store.clone();
    let store_ok = tokio::task::spawn_blocking(move || store.check_writable())
        .await
        .map(|r| r.is_ok())
        .unwrap_or(false);
    [
        ("store_writable", store_ok),
        (
            "spool_readable",
            std::fs::read_dir(ctx.spool.incoming()).is_ok(),
        ),
        (
            "watcher_alive",
            ctx.health.watcher_alive.load(Ordering::Relaxed),
        ),
        (
            "queue_alive",
            ctx.health.heartbeat_age() < Duration::from_secs(120),
        ),
    ]
}

async fn health_endpoint(State(ctx): State<Ctx>) -> (StatusCode, String) {
    let checks = health_checks(&ctx).await;
    let fields: Vec<String> = checks
        .iter()
        .map(|(check, ok)| format!("\"{check}\":{ok}"))
        .collect();
    let body = format!("{{{}}}\n", fields.join(","));
    if checks.iter().all(|(_, ok)| *ok) {
        (StatusCode::OK, body)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
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
