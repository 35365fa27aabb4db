//! `kurir backup` and `kurir restore`: what survives the loss of the machine
//! ([`crate::ops::backup`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::cli::out::{say, when};
use crate::cli::Daemon;
use crate::service::call;
use crate::spool::Spool;
use crate::store::seal::IntegrityKey;

/// `kurir backup DEST`: the running daemon (or, stopped, this command) writes a backup; with
/// `verify`, checks one instead.
pub fn backup(
    daemon: &Daemon<'_>,
    dest: PathBuf,
    verify: bool,
    key: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    if verify {
        let key = integrity_key(&daemon.settings().store.dir, key)?;
        let manifest = crate::ops::backup::verify(&dest, &key)?;
        say!(
            "{}: sound; {} job(s) as of {}, {} file(s), audit entry {}, taken by kurir {}",
            dest.display(),
            manifest.jobs,
            when(manifest.taken_at),
            manifest.files.len(),
            manifest.audit_head.as_ref().map_or(0, |(seq, _)| *seq),
            manifest.kurir
        );
        return Ok(ExitCode::SUCCESS);
    }
    let dest = std::path::absolute(&dest).with_context(|| format!("{}", dest.display()))?;
    let reply = daemon.ask(None, call::Backup { dest: dest.clone() })?;
    let manifest = reply;
    say!(
        "backup of {} job(s) as of {} in {} ({} file(s); check it with `kurir backup --verify {}`)",
        manifest.jobs,
        when(manifest.taken_at),
        dest.display(),
        manifest.files.len(),
        dest.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The integrity key that opens a backup: the one named, else this machine's (never a new
/// one: a key made now opens nothing).
/// The integrity key a backup is checked with: the one named, else the store's.
pub fn integrity_key(
    state_dir: &std::path::Path,
    named: Option<PathBuf>,
) -> anyhow::Result<IntegrityKey> {
    let path = named.unwrap_or_else(|| IntegrityKey::location(state_dir));
    IntegrityKey::existing(&path).with_context(|| {
        format!(
            "a backup is checked with the integrity key of the store it was taken from, and \
             there is none at {}: give it with --key FILE (the `{}` kept apart from the \
             backups)",
            path.display(),
            crate::store::seal::KEY_FILE
        )
    })
}

/// `kurir restore SRC`: makes the store from a backup, with no daemon running.
pub fn restore(
    daemon: &Daemon<'_>,
    src: PathBuf,
    force: bool,
    key: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let settings = daemon.settings();
    let state = &settings.store.dir;
    let socket = crate::cli::control::socket_path(state);
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        bail!(
            "a daemon runs on {} (its socket {} answers): stop it first (`systemctl stop kurir`)",
            state.display(),
            socket.display()
        );
    }
    // Root has the store's owner (the daemon's user) restore it: root follows no path in
    // the daemon's folders. A key named with --key root reads and hands over; the store's
    // own key the owner's process reads itself.
    let owner = crate::fsutil::Owner::of(state)
        .with_context(|| format!("reading the owner of {}", state.display()))?;
    let operator = crate::cli::os_user();
    if let Some(owner) = owner {
        let key = match key {
            Some(path) => Some(
                integrity_key(&daemon.settings().store.dir, Some(path))?
                    .bytes()
                    .to_vec(),
            ),
            None => None,
        };
        let task = crate::cli::as_owner::Task::Restore {
            src: std::path::absolute(&src).unwrap_or(src),
            force,
            key,
            operator,
        };
        return Ok(crate::cli::as_owner::run(owner, settings, &task, false)?.0);
    }
    let key = integrity_key(&daemon.settings().store.dir, key)?;
    restore_here(settings, src, force, key, &operator)
}

/// Restores `src` into the state directory, as this process's user, and says what it did.
pub fn restore_here(
    settings: &crate::config::Settings,
    src: PathBuf,
    force: bool,
    key: IntegrityKey,
    operator: &str,
) -> anyhow::Result<ExitCode> {
    let state = &settings.store.dir;
    let restored = crate::ops::backup::restore(
        &src,
        state,
        &Spool::new(&settings.spool.dir),
        &key,
        force,
        operator,
    )?;
    if let Some(aside) = &restored.replaced {
        say!("the store that was there is kept in {}", aside.display());
    }
    if let Some((aside, count)) = &restored.documents_aside {
        say!(
            "{count} job folder(s) in the spool belong to no job of the restored store (taken \
             in after the backup): moved to {}; some may have been delivered since: check each \
             with `kurir status` against the replaced store before resubmitting it",
            aside.display()
        );
    }
    say!(
        "restored {} job(s) as they stood at {} into {}",
        restored.jobs,
        when(restored.taken_at),
        state.display()
    );
    if restored.in_flight > 0 {
        say!(
            "{} job(s) were being sent at that moment: they are tried again when the daemon \
             starts, with the same Message-ID (at most one duplicate each)",
            restored.in_flight
        );
    }
    say!("start the daemon (`systemctl start kurir`), then `kurir doctor`");
    Ok(ExitCode::SUCCESS)
}
