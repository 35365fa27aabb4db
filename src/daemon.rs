//! `kurir run`: wires the stages together and runs them until SIGTERM or SIGINT.
//!
//! Start-up order matters: the store is opened (and so locked) first, then interrupted work is
//! finished (open print batch reconciled, claimed jobs recovered), and only then does intake
//! look at new jobs. Shutdown stops intake and the queue between jobs and flushes the store.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::{watch, Notify};

use crate::assemble::Kurir;
use crate::config::{Settings, WebDoor};
use crate::deliver::mail::Mailer;
use crate::fsutil;
use crate::ops::tasks::{Lifetime, Tasks};
use crate::queue::QueueManager;
use crate::service::protocol::{self, Door};
use crate::spool::Spool;
use crate::store::Store;

/// Runs the daemon until a termination signal.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    // Installed first, so that a SIGTERM during start-up is a clean stop, not a kill.
    let signals = Signals::install()?;
    crate::ops::systemd::status("starting: opening the store and recovering");
    fsutil::set_group_access(settings.spool.group_access);
    let metrics = crate::ops::metrics_handle();
    if metrics.is_none() {
        tracing::warn!("the metrics recorder could not be installed; /metrics will be empty");
    }
    let spool = Spool::new(&settings.spool.dir);
    let tightened = spool
        .ensure()
        .with_context(|| format!("creating the spool in {}", spool.root().display()))?;
    share_print_folder(&spool, &settings.print.group)?;
    open_to_writers(&spool, &settings.spool.submit_group)?;
    fsutil::create_private_dir(&settings.store.dir).with_context(|| {
        format!(
            "creating the state directory {}",
            settings.store.dir.display()
        )
    })?;
    let state_dir = &settings.store.dir;
    let state_tightened = fsutil::restrict_dir(state_dir)
        .with_context(|| format!("restricting the state directory {}", state_dir.display()))?
        .map(|mode| (state_dir.clone(), mode));
    for (dir, mode) in tightened.into_iter().chain(state_tightened) {
        tracing::info!(
            folder = %dir.display(),
            was = format!("{mode:04o}"),
            "restricted a folder kurir owns to its private mode"
        );
    }
    let Kurir {
        store,
        seed,
        mailer,
        alerter,
        alert_mail,
        intake,
        wake_queue,
        queue,
        inbound,
        service,
        checker,
        hours,
        health,
        ..
    } = Kurir::build(&settings, Arc::new(crate::clock::SystemClock))?;
    store.observe(Arc::new(crate::ops::JobMetrics));
    // Every background task from here on is tracked, awaited at shutdown and watched: one
    // that panics or ends early stops the daemon with an error, to be started afresh.
    let tasks = Tasks::new();

    // Finish what an earlier run left half-done before taking new work.
    let (queue, recovered) = {
        let intake = intake.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<(QueueManager, usize)> {
            let m = queue
                .recover()
                .context("recovering the print batch and jobs interrupted while sending")?;
            let n = intake.recover().context("recovering interrupted jobs")?;
            Ok((queue, n + m))
        })
        .await
        .context("recovery task")??
    };
    if recovered > 0 {
        tracing::info!(
            jobs = recovered,
            "finished work interrupted by an earlier stop"
        );
    }
    // Alerts recorded but not raised before a stop are raised now (each exactly once); the
    // alert writer raises the rest as they are marked.
    let alerts_recovered = {
        let alerter = alerter.clone();
        tokio::task::spawn_blocking(move || alerter.raise_owed())
            .await
            .context("alert recovery task")?
            .context("raising alerts an earlier stop left recorded")?
    };
    if alerts_recovered > 0 {
        tracing::info!(
            alerts = alerts_recovered,
            "raised alerts an earlier stop had recorded"
        );
    }

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // Whatever way this function ends — a start-up step that fails after the loops began
    // (the ops address in use, say) included — the loops are told to stop: a dropped sender
    // alone would make every `changed()` return at once, and their loops spin.
    let shutdown_tx = StopOnDrop(shutdown_tx);
    if let (Some(mailer), Some(alert_mail)) = (mailer.clone(), alert_mail) {
        tasks.spawn(
            "alert mail",
            Lifetime::UntilShutdown,
            mail_alerts(
                mailer,
                settings.alerts.clone(),
                alert_mail,
                shutdown_rx.clone(),
            ),
        );
    }
    // The receipt writer stops last: after the queue has finished the jobs in hand.
    let (receipts_tx, receipts_rx) = watch::channel(false);
    let wake_intake = Arc::new(Notify::new());
    let _watcher =
        crate::intake::watch::watch_incoming(&spool, wake_intake.clone(), health.clone())?;
    let wake_inbound = Arc::new(Notify::new());
    let _inbound_watcher = crate::intake::watch::watch_folder(
        spool.inbound_new(),
        wake_inbound.clone(),
        health.clone(),
    )?;
    let inbound_task = tasks.spawn(
        "inbound",
        Lifetime::UntilShutdown,
        crate::inbound::run_loop(
            inbound,
            wake_inbound,
            settings.spool.rescan_interval,
            shutdown_rx.clone(),
        ),
    );

    let ops_task = if settings.ops.listen.is_empty() {
        None
    } else {
        let listen: std::net::SocketAddr = settings.ops.listen.parse().context("[ops] listen")?;
        let listener = crate::ops::bind(listen, &settings.store.dir.join("ops.addr"))
            .await
            .with_context(|| format!("[ops] listen {listen}"))?;
        Some(tasks.spawn_fallible(
            "metrics endpoint",
            crate::ops::serve(
                listener,
                store.clone(),
                spool.clone(),
                settings.store.dir.clone(),
                health.clone(),
                shutdown_rx.clone(),
            ),
        ))
    };
    let operator_socket = crate::cli::control::socket_path(&settings.store.dir);
    let operator_listener = protocol::bind(&operator_socket, 0o600)
        .with_context(|| format!("the control socket {}", operator_socket.display()))?;
    let control_task = tasks.spawn(
        "operator socket",
        Lifetime::UntilShutdown,
        protocol::serve(
            operator_listener,
            Door::Operator {
                own_uid: fsutil::own_uid(),
            },
            service.clone(),
            shutdown_rx.clone(),
        ),
    );
    let mut web_tasks = Vec::new();
    let mut web_sockets = Vec::new();
    let doors = web_doors(&settings, &operator_socket)?;
    for (door, socket, uid) in doors {
        // Open to the folder's group only when the program has a user of its own.
        let mode = if uid.is_some() { 0o660 } else { 0o600 };
        let listener = protocol::bind(&socket, mode)
            .with_context(|| format!("the {} socket {}", door.section(), socket.display()))?;
        web_sockets.push(socket);
        let door = match door {
            WebDoor::Portal => Door::Portal { portal_uid: uid },
            WebDoor::Desk => Door::Desk { desk_uid: uid },
        };
        web_tasks.push(tasks.spawn(
            "web door socket",
            Lifetime::UntilShutdown,
            protocol::serve(listener, door, service.clone(), shutdown_rx.clone()),
        ));
    }
    // Not required, the checks decide nothing: `municipality check` still runs on demand.
    if mailer.is_some() && settings.connection.required {
        tasks.spawn(
            "connection checks",
            Lifetime::UntilShutdown,
            service.clone().check_connections(
                checker.clone(),
                settings.connection.interval,
                shutdown_rx.clone(),
            ),
        );
    }
    if !settings.connection.policy_socket.as_os_str().is_empty() {
        let path = &settings.connection.policy_socket;
        // Postfix's smtp(8) processes (user postfix) connect: what they learn is which TLS
        // policy applies to a municipality's domain, nothing more.
        let listener = protocol::bind(path, 0o666)
            .with_context(|| format!("[connection] policy_socket {}", path.display()))?;
        tracing::info!(socket = %path.display(), "answering the relay's TLS policy lookups");
        // Root (postmap -q) and the relay's own user (its smtp processes).
        let mut clients = vec![0];
        clients.extend(fsutil::user_id("postfix"));
        tasks.spawn(
            "TLS policy socket",
            Lifetime::UntilShutdown,
            crate::connection::policy::serve(listener, store.clone(), clients, shutdown_rx.clone()),
        );
    }
    tasks.spawn(
        "registry notices",
        Lifetime::UntilShutdown,
        service.notify(mailer.clone(), shutdown_rx.clone()),
    );
    let alert_task = tasks.spawn(
        "alert writer",
        Lifetime::UntilShutdown,
        crate::ops::alert::run(alerter.clone(), receipts_rx.clone()),
    );
    let receipt_task = tasks.spawn(
        "receipt writer",
        Lifetime::UntilShutdown,
        crate::receipt::run(spool.clone(), store.clone(), seed.clone(), receipts_rx),
    );

    let queue_task = tasks.spawn(
        "queue",
        Lifetime::UntilShutdown,
        queue.run(wake_queue.clone(), shutdown_rx.clone()),
    );

    let intake_task = tasks.spawn(
        "intake",
        Lifetime::UntilShutdown,
        crate::intake::watch::intake_loop(
            intake,
            wake_intake,
            wake_queue,
            settings.spool.rescan_interval,
            shutdown_rx.clone(),
        ),
    );

    // Without systemd's watchdog there is nothing to ping: the task ends at once.
    tasks.spawn(
        "watchdog",
        Lifetime::UntilDone,
        crate::ops::watchdog(health.clone(), shutdown_rx.clone()),
    );
    tasks.spawn(
        "print shop watch",
        Lifetime::UntilShutdown,
        crate::queue::print_shop::watch(
            store.clone(),
            alerter.clone(),
            hours.clone(),
            jiff::SignedDuration::try_from(settings.print.confirm_within)
                .unwrap_or(jiff::SignedDuration::from_hours(8)),
            shutdown_rx.clone(),
        ),
    );
    tasks.spawn(
        "retention",
        Lifetime::UntilShutdown,
        retention_loop(
            store.clone(),
            spool.clone(),
            settings.retention.clone(),
            shutdown_rx.clone(),
        ),
    );

    tracing::info!(
        spool = %spool.root().display(),
        state = %settings.store.dir.display(),
        "kurir running"
    );
    crate::ops::systemd::ready("running: intake and delivery started");
    let stop = tokio::select! {
        () = signals.wait() => Stop::Asked,
        lost = store_lost(store.clone()) => Stop::StoreLost(lost),
        () = tasks.failure() => Stop::TaskFailed,
    };
    crate::ops::systemd::stopping();
    tracing::info!("shutting down: intake stops, work in progress finishes");
    tasks.stopping();
    let _ = shutdown_tx.0.send(true);
    intake_task.ended().await;
    inbound_task.ended().await;
    // SMTP sessions in flight may finish within the grace period; after it they are dropped
    // and their jobs, still `sending`, are tried again at the next start.
    let grace = settings.queue.shutdown_grace;
    if !queue_task.ended_within(grace).await {
        tracing::warn!(grace = ?grace, "deliveries in flight did not finish in time; stopped them");
    }
    if let Some(task) = ops_task {
        task.ended().await;
    }
    for task in std::iter::once(control_task).chain(web_tasks) {
        task.ended().await;
    }
    for socket in std::iter::once(&operator_socket).chain(&web_sockets) {
        let _ = std::fs::remove_file(socket);
    }
    let _ = receipts_tx.send(true);
    receipt_task.ended().await;
    alert_task.ended().await;
    // Every other task (checks, notices, watches, retention) ends on the same signal.
    tasks.all_ended(grace).await;
    if let Some(why) = tasks.failed() {
        anyhow::bail!("{why}: kurir stopped so that the service manager starts it again");
    }
    if let Stop::StoreLost(lost) = stop {
        // Nothing more can be recorded: whatever could not be written is taken up again at
        // the next start, from the spool and the journal, as after a crash.
        anyhow::bail!(
            "the store in {} could not be written for {} s ({lost}): kurir stopped so that the \
             service manager starts it again (systemd: Restart=on-failure)",
            settings.store.dir.display(),
            STORE_GIVE_UP.as_secs()
        );
    }
    store.flush().context("flushing the store")?;
    tracing::info!("stopped");
    Ok(())
}

/// How often the store is proved writable while the daemon runs.
const STORE_PROBE: std::time::Duration = std::time::Duration::from_secs(10);
/// How long the store may stay unwritable before kurir stops to be started again.
const STORE_GIVE_UP: std::time::Duration = std::time::Duration::from_secs(30);

/// Resolves when the store has failed every write for [`STORE_GIVE_UP`]: sled, once it has met
/// a full disk, fails every write after it even when space is back, and only a new process
/// opens it afresh. A daemon that records nothing must not look alive (its queue loop still
/// comes round, so the watchdog alone would never tell).
async fn store_lost(store: Store) -> String {
    let mut failing_since: Option<std::time::Instant> = None;
    loop {
        tokio::time::sleep(STORE_PROBE).await;
        let probe = store.clone();
        let result = tokio::task::spawn_blocking(move || probe.check_writable()).await;
        match result {
            Ok(Ok(())) => {
                if failing_since.take().is_some() {
                    tracing::info!("the store can be written again");
                }
            }
            Ok(Err(e)) => {
                let since = *failing_since.get_or_insert_with(std::time::Instant::now);
                tracing::error!(error = %e, failing_for = ?since.elapsed(), "the store cannot be written");
                if since.elapsed() >= STORE_GIVE_UP {
                    return e.to_string();
                }
            }
            Err(e) => return format!("the store's probe failed: {e}"),
        }
    }
}

/// Runs retention ([`crate::ops::retention`]) at start, then a few times per shortest period
/// (at most hourly).
async fn retention_loop(
    store: Store,
    spool: Spool,
    settings: crate::config::RetentionSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    let shortest = [
        settings.documents_after,
        settings.reports_after,
        settings.receipts_after,
        settings.alerts_after,
        settings.print_after,
        crate::spool::DRAFT_LIFETIME,
    ]
    .into_iter()
    .min()
    .unwrap_or(settings.documents_after);
    // Look a few times per retention period, at least every second, at most every hour.
    let every = (shortest / 4).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(3600),
    );
    loop {
        let (store2, spool2) = (store.clone(), spool.clone());
        let cutoffs = crate::ops::retention::Cutoffs::of(&settings, jiff::Timestamp::now());
        match tokio::task::spawn_blocking(move || {
            crate::ops::retention::run_once(&store2, &spool2, cutoffs)
        })
        .await
        {
            Ok(Ok(removed)) => {
                if removed != crate::ops::retention::Removed::default() {
                    tracing::info!(
                        documents = removed.documents,
                        reports = removed.reports,
                        receipts = removed.receipts,
                        alerts = removed.alerts,
                        print_batches = removed.batches,
                        drafts = removed.drafts,
                        "removed from the spool after the retention period"
                    );
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "retention failed; will try again"),
            Err(e) => tracing::error!(error = %e, "retention task failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// E-mails alerts to the team each is for, one at a time, best effort: the alert file is the
/// record.
async fn mail_alerts(
    mailer: Arc<Mailer>,
    addresses: crate::config::AlertSettings,
    mut alerts: tokio::sync::mpsc::Receiver<crate::ops::alert::Alert>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let alert = tokio::select! {
            alert = alerts.recv() => alert,
            // The alert files are the record; mail is best effort and ends with the daemon.
            _ = shutdown.changed() => None,
        };
        let Some(alert) = alert else {
            return;
        };
        let for_dispatch = alert.team == crate::store::state::Team::Dispatch;
        let Some(to) = addresses.address_for(for_dispatch) else {
            continue;
        };
        let (subject, body) = crate::ops::alert::email_text(&alert);
        if let Err(e) = mailer.send_notice(to, subject, body).await {
            let job = alert
                .job_id
                .as_ref()
                .map(|j| j.to_string())
                .unwrap_or_default();
            tracing::error!(job_id = %job, error = %e, "alert e-mail could not be sent");
        }
    }
}

/// SIGTERM and SIGINT, caught from the moment the daemon starts.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Opens `spool/print/` to the print shop's group (`[print] group`), and lets that group pass
/// through the spool's root to it (mode o+x on the root: no listing, and every other folder
/// stays closed by its own mode).
fn share_print_folder(spool: &Spool, group: &str) -> anyhow::Result<()> {
    if group.is_empty() {
        return Ok(());
    }
    let gid = fsutil::group_id(group)
        .ok_or_else(|| anyhow::anyhow!("[print] group {group:?}: no such group on this machine"))?;
    fsutil::share_with_group(&spool.print(), gid)
        .with_context(|| format!("opening {} to group {group}", spool.print().display()))?;
    let_pass_through(spool, group)?;
    tracing::info!(group, folder = %spool.print().display(), "print batches readable by the print shop's group");
    Ok(())
}

/// Lets the members of `group` (`[spool] submit_group`) write jobs and nothing else:
/// `tmp/` and `incoming/` become 3770 in that group, the spool's root passable (0701) but not
/// listable. kurir's own user must be in the group to read what its members write.
fn open_to_writers(spool: &Spool, group: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if group.is_empty() {
        return Ok(());
    }
    let gid = fsutil::group_id(group).ok_or_else(|| {
        anyhow::anyhow!("[spool] submit_group {group:?}: no such group on this machine")
    })?;
    if !fsutil::in_group(gid) {
        anyhow::bail!(
            "[spool] submit_group {group:?}: kurir's user is not a member, so it could not read \
             the jobs the group's members write (`usermod -aG {group} <kurir's user>`, then \
             start kurir again)"
        );
    }
    // 3770: setgid (what members make is the group's) and sticky (a member renames or
    // removes only its own entries: not another's job, nor the desk's drafts).
    for dir in [spool.tmp(), spool.incoming()] {
        std::os::unix::fs::lchown(&dir, None, Some(gid))
            .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o3770)))
            .with_context(|| format!("opening {} to group {group}", dir.display()))?;
    }
    let_pass_through(spool, group)?;
    tracing::info!(
        group,
        "jobs may be written by the submit group's members, and nothing else"
    );
    Ok(())
}

/// Makes the spool's root passable (others' x, 0701) but not listable: the print shop's and
/// the writers' groups reach their own folders in it and see nothing else.
fn let_pass_through(spool: &Spool, group: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let root = spool.root();
    let mode = std::fs::metadata(root)
        .with_context(|| format!("reading {}", root.display()))?
        .permissions()
        .mode();
    std::fs::set_permissions(
        root,
        std::fs::Permissions::from_mode((mode & 0o7777) | 0o001),
    )
    .with_context(|| format!("letting group {group} pass through {}", root.display()))
}

/// Each web door's socket and user id, refused when the doors could not tell the portal from
/// the desk: the same user id (under any names), root or the daemon's own user for either, or
/// one socket for two doors.
fn web_doors(
    settings: &Settings,
    operator_socket: &std::path::Path,
) -> anyhow::Result<Vec<(WebDoor, std::path::PathBuf, Option<u32>)>> {
    let mut doors = Vec::new();
    for door in [WebDoor::Portal, WebDoor::Desk] {
        let web = match door {
            WebDoor::Portal => &settings.portal,
            WebDoor::Desk => &settings.desk,
        };
        let uid = web_user(door, &web.user)?;
        if uid.is_some_and(|uid| uid == 0 || uid == fsutil::own_uid()) {
            anyhow::bail!(
                "[{}] user {:?} is root or the daemon's own user: the web program must run as a \
                 user of its own, or it could reach the store and the operator socket",
                door.section(),
                web.user
            );
        }
        doors.push((door, web.socket_path(door, &settings.store.dir), uid));
    }
    if let [(_, portal_socket, portal_uid), (_, desk_socket, desk_uid)] = doors.as_slice() {
        if portal_uid.is_some() && portal_uid == desk_uid {
            anyhow::bail!(
                "[portal] user and [desk] user are the same user id: the desk's socket must \
                 refuse the portal's user, or a compromised portal could send decisions"
            );
        }
        if portal_socket == desk_socket
            || portal_socket == operator_socket
            || desk_socket == operator_socket
        {
            anyhow::bail!(
                "[portal] socket and [desk] socket must be two sockets of their own, apart from \
                 the operator socket {}",
                operator_socket.display()
            );
        }
    }
    Ok(doors)
}

/// The user id of `[portal] user` or `[desk] user`, if one is named.
fn web_user(door: WebDoor, name: &str) -> anyhow::Result<Option<u32>> {
    if name.is_empty() {
        return Ok(None);
    }
    fsutil::user_id(name).map(Some).ok_or_else(|| {
        anyhow::anyhow!(
            "[{}] user {name:?}: no such user on this machine",
            door.section()
        )
    })
}

/// Why the daemon stops.
enum Stop {
    /// SIGTERM or SIGINT.
    Asked,
    /// The store could not be written for long (why).
    StoreLost(String),
    /// A background task panicked or ended early ([`Tasks::failed`] says which).
    TaskFailed,
}

/// A shutdown sender that says "stop" when it goes, however the daemon's start ends.
struct StopOnDrop(watch::Sender<bool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doors(portal: (&str, &str), desk: (&str, &str)) -> anyhow::Result<()> {
        let mut settings = Settings::default();
        settings.store.dir = "/nonexistent/state".into();
        (settings.portal.user, settings.portal.socket) = (portal.0.into(), portal.1.into());
        (settings.desk.user, settings.desk.socket) = (desk.0.into(), desk.1.into());
        web_doors(
            &settings,
            std::path::Path::new("/nonexistent/state/kurir.sock"),
        )
        .map(drop)
    }

    #[test]
    fn web_doors_that_could_not_tell_the_portal_from_the_desk_are_refused() {
        // Root, for either door: it could reach everything.
        let root = doors(("", ""), ("root", "")).expect_err("root refused");
        assert!(root.to_string().contains("[desk] user"), "{root}");
        // One socket for both doors, or a door on the operator's socket.
        let shared = doors(("", "/run/x.sock"), ("", "/run/x.sock")).expect_err("shared");
        assert!(shared.to_string().contains("two sockets"), "{shared}");
        let operator = doors(("", "/nonexistent/state/kurir.sock"), ("", ""))
            .expect_err("the operator's socket");
        assert!(
            operator.to_string().contains("operator socket"),
            "{operator}"
        );
        // The quick start: no users named, each door its own socket in the state directory.
        doors(("", ""), ("", "")).expect("the quick start");
    }
}
