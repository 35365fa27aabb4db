#![warn(missing_docs)]
//! The municipality portal: `kurir-portal`, a process of its own, where municipality IT sign in
//! with the SITHS certificate on their card (a TLS client certificate, [`tls`]) and manage
//! their municipality's registration themselves — addresses, phone, contacts, postal address,
//! S/MIME certificate, and the proof of a new address by a mailed code.
//!
//! Least privilege, as Postfix keeps what faces the network apart: the portal holds no store,
//! no spool and no signing key. Everything it shows or changes it asks of the daemon's service
//! through the portal socket ([`backend`]), on behalf of the signed-in person; the daemon takes
//! from that socket only what a person may ask and checks the person's grants itself. While
//! the daemon restarts, the portal still answers, with a Swedish "try again shortly" page.
//!
//! Web security: HTTPS only with a verified client certificate; a form token bound to the
//! person on every post and cross-site posts refused (the browser sends the certificate on its
//! own, like a cookie); a strict Content-Security-Policy, `nosniff`, `no-store`,
//! `Referrer-Policy: same-origin`, HSTS; bodies bounded; handshake, header-read, request and
//! connection-life timeouts, and connection limits per address and per person ([`server`]).
//! The dispatch desk of Bosättningsenheten (`/expedition/`), for the agency's own staff with a
//! desk grant ([`desk`], [`desk_pages`], [`receipt`]), is built from the same parts and served
//! by a program of its own.
//! Files: `config` (its settings), `server` (TLS and HTTP), `backend` (the daemon's socket),
//! `routes` and `pages` (the portal), `desk`, `desk_send`, `desk_pages`, `receipt` and
//! `report` (the desk), `words` (Swedish).
//!
//! Two programs link this library: `kurir-portal` serves only the portal's pages and
//! `kurir-desk` only the desk's, each as its own user through its own socket door. Neither links
//! the daemon's crate: no store, no spool, no PDF parser, no signing code
//! (`tests/architecture.rs` reads the dependency tree).

pub mod backend;
pub mod config;
pub mod desk;
pub mod desk_pages;
pub mod desk_send;
pub mod pages;
pub mod receipt;
pub mod report;
pub mod routes;
pub mod server;
pub mod tls;
pub mod words;

pub use desk_send::DESK_UPLOAD_BYTES;

use std::sync::Arc;

use anyhow::Context;

use config::WebConfig;
use kurir_protocol::config::WebDoor;
use kurir_protocol::registry::Seed;

/// `kurir-portal` and `kurir-desk`: reads the settings, sets up logging, and serves `door` on
/// its `listen` until SIGTERM or SIGINT. What each program's `main` does.
pub fn main(door: WebDoor) -> std::process::ExitCode {
    match start(door) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kurir-{}: {e:#}", door.section());
            std::process::ExitCode::FAILURE
        }
    }
}

/// The command line of a web program: where its settings are, and the log's shape.
#[derive(Debug, clap::Parser)]
#[command(
    version,
    about = "kurir's web door: the municipality portal (kurir-portal) or the dispatch desk (kurir-desk); see kurir.toml(5), [portal] and [desk]"
)]
struct Args {
    /// The settings file (default: none, the built-in defaults and KURIR_* variables).
    #[arg(long, env = "KURIR_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// `human` or `json` (default: `[log] format`).
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<String>,
}

fn start(door: WebDoor) -> anyhow::Result<()> {
    use clap::Parser;
    let args = Args::parse();
    let file = args
        .config
        .filter(|f| f.as_os_str() != kurir_protocol::config::NO_FILE);
    let config = WebConfig::load(file.as_deref(), door)?;
    let format = match args.log_format.as_deref() {
        None => config.log.format,
        Some("human") => kurir_protocol::config::LogFormat::Human,
        Some("json") => kurir_protocol::config::LogFormat::Json,
        Some(other) => anyhow::bail!("--log-format {other:?}: human or json"),
    };
    kurir_protocol::logging::init(format, &config.log.filter, true);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(config, door))
}

/// Serves `door` on its `listen` until SIGTERM or SIGINT.
pub async fn run(settings: WebConfig, door: WebDoor) -> anyhow::Result<()> {
    let (web, section, env) = match door {
        WebDoor::Portal => (&settings.portal, "[portal]", "KURIR_PORTAL__LISTEN"),
        WebDoor::Desk => (&settings.desk, "[desk]", "KURIR_DESK__LISTEN"),
    };
    if !web.enabled() {
        anyhow::bail!(
            "{section} listen is empty: set the address it serves on (e.g. \
             {env}=0.0.0.0:8443), with {section} cert, key and client_ca"
        );
    }
    let trust = Arc::new(tls::Trust::new(web).with_context(|| format!("{section} certificates"))?);
    let listen: std::net::SocketAddr = web
        .listen
        .parse()
        .with_context(|| format!("{section} listen"))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("{section} listen {listen}"))?;
    let socket = web.socket_path(door, &settings.store.dir);
    let seed = Seed::builtin().context("loading the built-in municipality list")?;
    let backend = backend::Backend::new(socket.clone(), door);
    let state = Arc::new(routes::Portal::new(
        backend.clone(),
        seed,
        settings.sender.clone(),
    ));
    warn_if_privileged(&settings);
    let serving = match door {
        WebDoor::Portal => "serving the municipality portal",
        WebDoor::Desk => "serving the dispatch desk",
    };
    tracing::info!(
        listen = %listener.local_addr().with_context(|| format!("{section} listen"))?,
        daemon = %socket.display(),
        "{serving} on HTTPS with client certificates"
    );
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(watch_trust(trust.clone(), backend, shutdown_rx.clone()));
    let server = tokio::spawn(server::serve(listener, trust, state, shutdown_rx));
    kurir_protocol::systemd::ready(serving);
    wait_for_signal().await?;
    kurir_protocol::systemd::stopping();
    let _ = shutdown_tx.send(true);
    let _ = server.await;
    tracing::info!("{} stopped", door.section());
    Ok(())
}

/// How often the revocation lists are looked at, and the portal reports to the daemon.
const TRUST_CHECK: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads the revocation lists again when they change, warns of one past its nextUpdate, and
/// tells the daemon (for its metrics, `doctor`, and the CA a new grant is bound to).
async fn watch_trust(
    trust: Arc<tls::Trust>,
    backend: backend::Backend,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut last_report: Option<std::time::Instant> = None;
    loop {
        let changed = {
            let trust = trust.clone();
            tokio::task::spawn_blocking(move || trust.reload_if_changed())
                .await
                .unwrap_or(false)
        };
        if changed || last_report.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(60))
        {
            let crls = tls::crl_info(trust.crl_files()).unwrap_or_default();
            let now = jiff::Timestamp::now().as_second();
            for crl in &crls {
                if crl.next_update.is_some_and(|next| next < now) {
                    tracing::warn!(crl = %crl.file, "portal: a revocation list is past its nextUpdate: fetch the new one");
                }
            }
            let issuers = tls::issuers(trust.client_ca()).unwrap_or_default();
            if backend.report(crls, issuers).await {
                last_report = Some(std::time::Instant::now());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TRUST_CHECK) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The portal is meant to run as a user that can read neither the store nor the signing key;
/// it says so when it can.
fn warn_if_privileged(settings: &WebConfig) {
    let readable = |path: &std::path::Path| std::fs::File::open(path).is_ok();
    let key = &settings.smime.sign_key;
    if !key.as_os_str().is_empty() && readable(key) {
        tracing::warn!(key = %key.display(), "the portal can read the agency's signing key: run it as its own user (kurir-portal.service does)");
    }
    if std::fs::read_dir(settings.store.dir.join("db")).is_ok() {
        tracing::warn!(store = %settings.store.dir.display(), "the portal can read the store: run it as its own user (kurir-portal.service does)");
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
