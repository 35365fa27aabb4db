//! Backup and restore: what survives the loss of the machine.
//!
//! A backup is a folder: the store as it stood at one instant with its journal applied (every
//! tree, one JSON line per entry: jobs and their histories, the registry and its history, the
//! audit chain, the indexes), the keys in the state folder (the report token key that proves
//! delivery reports, the code key), the documents of every job not finished yet, and
//! `manifest.json` with each file's SHA-256 (also as `SHA256SUMS`, for `sha256sum -c`), and
//! `SEAL`: an HMAC of both under the store's integrity key ([`crate::store::seal`]), which is
//! never in a backup. The sums find accidents; the seal finds a person who changed a copy and
//! recomputed them: verifying and restoring need the key, kept apart from the backups.
//! The running daemon takes it while jobs keep flowing ([`crate::store::Store::snapshot`]);
//! with the daemon stopped the command line takes it itself. Only its owner can read it.
//!
//! A restore makes a new store from a backup on a fresh machine (never over a live store),
//! puts back the keys and the unfinished jobs' documents, and records itself in the audit
//! chain. Jobs that were being sent at the backup's instant are tried again when the daemon
//! starts, with the same Message-ID: at most one duplicate each, as after a crash.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::fsutil;
use crate::spool::Spool;
use crate::store::audit::{AuditKind, Draft};
use crate::store::seal::{self, IntegrityKey};
use crate::store::state::JobState;
use crate::store::{Store, StoreError, TreeEntries};

/// What a backup's manifest says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `kurir-backup`.
    pub kind: String,
    /// The backup format.
    pub format: u32,
    /// The kurir that took it.
    pub kurir: String,
    /// When the snapshot was taken: the moment the backup holds.
    pub taken_at: Timestamp,
    /// Jobs in it.
    pub jobs: usize,
    /// The newest audit entry in it: sequence number and hash.
    pub audit_head: Option<(u64, String)>,
    /// Each file (relative path) with its SHA-256 and size.
    pub files: BTreeMap<String, FileSum>,
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    /// SHA-256, hex.
    pub sha256: String,
    /// Bytes.
    pub bytes: u64,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restored {
    /// The moment the backup holds.
    pub taken_at: Timestamp,
    /// Jobs restored.
    pub jobs: usize,
    /// Jobs that were being sent at that moment: tried again at start (at most one duplicate).
    pub in_flight: usize,
    /// Where a stopped store that `--force` replaced was moved.
    pub replaced: Option<PathBuf>,
    /// Where documents of jobs the restored store does not know (jobs of the replaced store,
    /// taken in after the backup) were moved, and how many jobs' folders: a person resubmits
    /// them.
    pub documents_aside: Option<(PathBuf, usize)>,
}

/// Why a backup or restore could not be done.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The destination holds something already.
    #[error("{0} exists already: a backup goes into a new folder")]
    Exists(PathBuf),
    /// Not a backup, or a damaged one.
    #[error("{path} is not a sound kurir backup: {problem}")]
    Unsound {
        /// The backup.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Another backup is being written by this daemon.
    #[error("a backup is being written already; try again when it is done")]
    Busy,
    /// A store is there already and `--force` was not given.
    #[error(
        "{0} holds a store already; restore onto a fresh machine, or stop the daemon and give \
         --force to move that store aside"
    )]
    StoreExists(PathBuf),
}

/// The backup format: 3 is sealed ([`SEAL_FILE`]); 2 wrote every tree, empty ones too, and
/// 1 (the first 0.2.0 builds) only trees with entries. Backups before 3 carry no seal and are
/// refused: nothing proves they are what the agency wrote.
const FORMAT: u32 = 3;

/// The file that seals `manifest.json` and `SHA256SUMS`.
const SEAL_FILE: &str = "SEAL";

/// What the integrity key seals here.
const SEAL_PURPOSE: &str = "kurir backup manifest";

fn sealed_bytes(manifest_json: &[u8], sums: &[u8]) -> Vec<u8> {
    let mut bytes = manifest_json.to_vec();
    bytes.push(0);
    bytes.extend_from_slice(sums);
    bytes
}

/// Trees every store has, so every backup: one without them is damaged.
const CORE_TREES: [&str; 5] = ["jobs", "events", "audit", "meta", "registry"];

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One entry of a tree file.
#[derive(Serialize, Deserialize)]
struct Entry {
    k: String,
    v: String,
}

/// Only one backup is written at a time: a second one would double the load for nothing.
static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Writes a backup of `store` (and the keys in `state_dir`, the unfinished jobs' documents in
/// `spool`) into the new folder `dest`. The folder appears whole or not at all.
///
/// The store is read into memory at one instant (writers wait only for that), then written
/// out: a slow destination never holds up the daemon.
pub fn write(
    store: &Store,
    spool: &Spool,
    state_dir: &Path,
    dest: &Path,
) -> Result<Manifest, BackupError> {
    let _writing = match WRITING.try_lock() {
        Ok(guard) => guard,
        // A backup that panicked left nothing of its own behind but its partial folder.
        Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return Err(BackupError::Busy),
    };
    if dest.exists() {
        return Err(BackupError::Exists(dest.to_path_buf()));
    }
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "backup".into());
    // Our own name: another writer's partial folder (a cron job on another host, say) is
    // never ours to delete.
    let partial = dest.with_file_name(format!(
        ".{name}.partial-{}-{}",
        std::process::id(),
        Timestamp::now().as_nanosecond()
    ));
    remove_stale_partials(dest, &name);
    let result = write_into(store, spool, state_dir, &partial, dest);
    if result.is_err() && partial.exists() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    result
}

/// Removes what backups to the same name left when their process died (killed, or the machine
/// lost power): partial folders of a process that runs no more, older than a day.
fn remove_stale_partials(dest: &Path, name: &str) {
    let Some(parent) = dest.parent() else { return };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let prefix = format!(".{name}.partial-");
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = file
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        let alive = Path::new("/proc").join(pid).exists();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(24 * 3600));
        if !alive && old && std::fs::remove_dir_all(entry.path()).is_ok() {
            tracing::info!(folder = %entry.path().display(), "removed a dead backup's partial folder");
        }
    }
}

fn write_into(
    store: &Store,
    spool: &Spool,
    state_dir: &Path,
    partial: &Path,
    dest: &Path,
) -> Result<Manifest, BackupError> {
    // Private whatever the group setting: a backup holds every decision's history.
    create_private(&partial.join("store"))?;
    let (info, trees) = store.snapshot()?;
    let unfinished = Store::unfinished_in(&trees)?;
    let engine = base64::engine::general_purpose::STANDARD;
    for (tree, entries) in &trees {
        let path = partial
            .join("store")
            .join(format!("{}.jsonl", tree_file(tree)));
        let mut writer = std::io::BufWriter::new(private_file(&path).map_err(io(&path))?);
        for (key, value) in entries {
            let line = serde_json::to_string(&Entry {
                k: engine.encode(key),
                v: engine.encode(value),
            })
            .map_err(|e| BackupError::Io {
                path: path.clone(),
                source: std::io::Error::other(e),
            })?;
            writeln!(writer, "{line}").map_err(io(&path))?;
        }
        writer
            .into_inner()
            .map_err(|e| BackupError::Io {
                path: path.clone(),
                source: e.into_error(),
            })?
            .sync_all()
            .map_err(io(&path))?;
    }
    drop(trees);
    // The keys: the report token key proves reports for jobs sent before the backup.
    create_private(&partial.join("keys"))?;
    for entry in std::fs::read_dir(state_dir).map_err(io(state_dir))? {
        let entry = entry.map_err(io(state_dir))?;
        let name = entry.file_name().to_string_lossy().to_string();
        // The integrity key stays behind: a backup sealed with the key it carries would prove
        // nothing.
        if name.ends_with(".key") && name != seal::KEY_FILE && entry.path().is_file() {
            copy_private(&entry.path(), &partial.join("keys").join(&name))?;
        }
    }
    // The documents of every job not finished at the snapshot's instant: still to be sent.
    // (One that finished since may have had its documents archived: it needs them no more.)
    for id in &unfinished {
        let from = spool.active_job(id);
        if from.is_dir() {
            let to = partial.join("spool/active").join(id.as_str());
            create_private(&to)?;
            for entry in std::fs::read_dir(&from).map_err(io(&from))? {
                let entry = entry.map_err(io(&from))?;
                let meta = std::fs::symlink_metadata(entry.path()).map_err(io(&from))?;
                if meta.is_file() {
                    copy_private(&entry.path(), &to.join(entry.file_name()))?;
                }
            }
        }
    }
    let mut files = BTreeMap::new();
    sum_files(partial, partial, &mut files)?;
    let manifest = Manifest {
        kind: "kurir-backup".into(),
        format: FORMAT,
        kurir: env!("CARGO_PKG_VERSION").into(),
        taken_at: info.taken_at,
        jobs: info.jobs,
        audit_head: info.audit_head,
        files,
    };
    let sums: String = manifest
        .files
        .iter()
        .map(|(path, sum)| format!("{}  {path}\n", sum.sha256))
        .collect();
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Unsound {
        path: dest.to_path_buf(),
        problem: e.to_string(),
    })?;
    write_private(&partial.join("manifest.json"), &json)?;
    write_private(&partial.join("SHA256SUMS"), sums.as_bytes())?;
    let sealed = store
        .integrity_key()
        .seal(SEAL_PURPOSE, &sealed_bytes(&json, sums.as_bytes()));
    write_private(&partial.join(SEAL_FILE), format!("{sealed}\n").as_bytes())?;
    fsutil::sync_dir(partial).map_err(io(partial))?;
    std::fs::rename(partial, dest).map_err(io(dest))?;
    if let Some(parent) = dest.parent() {
        let _ = fsutil::sync_dir(parent);
    }
    Ok(manifest)
}

/// A tree's file name: its name with anything but letters, digits and `_` as `-`.
fn tree_file(tree: &str) -> String {
    tree.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn create_private(dir: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))
}

fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let mut file = private_file(path).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

fn copy_private(from: &Path, to: &Path) -> Result<(), BackupError> {
    let bytes = std::fs::read(from).map_err(io(from))?;
    write_private(to, &bytes)
}

/// Every file under `dir`, relative to `root`, with its SHA-256.
fn sum_files(
    root: &Path,
    dir: &Path,
    out: &mut BTreeMap<String, FileSum>,
) -> Result<(), BackupError> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        if meta.is_dir() {
            sum_files(root, &path, out)?;
        } else if meta.is_file() {
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            let relative = path
                .strip_prefix(root)
                .map(|p| p.to_string_lossy().to_string())
                .unwrap_or_default();
            if relative == "manifest.json" || relative == "SHA256SUMS" || relative == SEAL_FILE {
                continue;
            }
            out.insert(
                relative,
                FileSum {
                    sha256: crate::digest::sha256_hex(&bytes),
                    bytes: meta.len(),
                },
            );
        }
    }
    Ok(())
}

/// Checks a backup without the daemon: the seal of its manifest under `key` (the integrity key
/// of the store it was taken from), every file's SHA-256, nothing missing or added, every tree
/// line readable. Returns the manifest.
pub fn verify(src: &Path, key: &IntegrityKey) -> Result<Manifest, BackupError> {
    let unsound = |problem: String| BackupError::Unsound {
        path: src.to_path_buf(),
        problem,
    };
    let bytes = std::fs::read(src.join("manifest.json")).map_err(io(&src.join("manifest.json")))?;
    let sums = std::fs::read(src.join("SHA256SUMS")).map_err(io(&src.join("SHA256SUMS")))?;
    let found_seal = std::fs::read_to_string(src.join(SEAL_FILE)).unwrap_or_default();
    if !key.opens(
        SEAL_PURPOSE,
        &sealed_bytes(&bytes, &sums),
        found_seal.trim(),
    ) {
        return Err(unsound(if found_seal.is_empty() {
            "it has no SEAL: it was made before backups were sealed (kurir 0.2.0) or SEAL was \
             removed; nothing in it can be trusted as the agency's"
                .into()
        } else {
            "its manifest is not sealed by this integrity key: it was changed by someone \
             without the key, or it was taken on a store with another key (give that store's \
             key with --key)"
                .into()
        }));
    }
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| unsound(format!("manifest.json: {e}")))?;
    if manifest.kind != "kurir-backup" || !(1..=FORMAT).contains(&manifest.format) {
        return Err(unsound(format!(
            "manifest.json is {} format {}, not kurir-backup format 1 to {FORMAT}",
            manifest.kind, manifest.format
        )));
    }
    let mut found = BTreeMap::new();
    sum_files(src, src, &mut found)?;
    for (path, sum) in &manifest.files {
        match found.get(path) {
            None => return Err(unsound(format!("{path} is missing"))),
            Some(actual) if actual.sha256 != sum.sha256 => {
                return Err(unsound(format!("{path} does not match its SHA-256")))
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = found.keys().find(|p| !manifest.files.contains_key(*p)) {
        return Err(unsound(format!("{extra} is not in the manifest")));
    }
    // A backup that lost a whole tree (and the manifest with it) would still add up: the
    // trees every store has must be there.
    for tree in CORE_TREES.iter().filter(|_| manifest.format >= 2) {
        let path = format!("store/{tree}.jsonl");
        if !manifest.files.contains_key(&path) {
            return Err(unsound(format!("{path} is missing from the manifest")));
        }
    }
    for path in manifest.files.keys().filter(|p| p.starts_with("store/")) {
        let entries = read_tree(&src.join(path)).map_err(|e| unsound(format!("{path}: {e}")))?;
        if path == "store/jobs.jsonl" {
            let guard = crate::store::DOWNGRADE_GUARD.as_bytes();
            let jobs = entries
                .iter()
                .filter(|(k, _)| k.as_slice() != guard)
                .count();
            if jobs != manifest.jobs {
                return Err(unsound(format!(
                    "store/jobs.jsonl holds {jobs} jobs, the manifest says {}",
                    manifest.jobs
                )));
            }
        }
    }
    Ok(manifest)
}

fn read_tree(path: &Path) -> Result<TreeEntries, String> {
    parse_tree(&std::fs::read(path).map_err(|e| e.to_string())?)
}

fn parse_tree(bytes: &[u8]) -> Result<TreeEntries, String> {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::new();
    for line in bytes.lines() {
        let line = line.map_err(|e| e.to_string())?;
        let entry: Entry = serde_json::from_str(&line).map_err(|e| e.to_string())?;
        out.push((
            engine.decode(entry.k).map_err(|e| e.to_string())?,
            engine.decode(entry.v).map_err(|e| e.to_string())?,
        ));
    }
    Ok(out)
}

/// Restores the backup in `src` into `state_dir` and `spool` (no daemon may run on them).
/// A store there already is refused, or with `force` moved aside. The audit chain goes on
/// from the backup's last entry, and records the restore.
pub fn restore(
    src: &Path,
    state_dir: &Path,
    spool: &Spool,
    key: &IntegrityKey,
    force: bool,
    operator: &str,
) -> Result<Restored, BackupError> {
    let manifest = verify(src, key)?;
    let mut replaced = None;
    if state_dir.join("db").exists() {
        if !force {
            return Err(BackupError::StoreExists(state_dir.to_path_buf()));
        }
        let aside = state_dir.with_file_name(format!(
            "{}.replaced-{}",
            state_dir
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| "state".into()),
            Timestamp::now().strftime("%Y%m%dT%H%M%S")
        ));
        std::fs::rename(state_dir, &aside).map_err(io(state_dir))?;
        replaced = Some(aside);
    }
    create_private(state_dir)?;
    // The key that opened the backup seals the restored chain: beside the store (unless
    // systemd hands it over as a credential), before the store opens.
    let key_path = IntegrityKey::location(state_dir);
    if key_path.starts_with(state_dir) {
        key.install(&key_path).map_err(io(&key_path))?;
    }
    // Every file is read once, checked against the sealed manifest as read, and used from
    // that one reading: a copy changed between the check above and now is not restored.
    let sound = |path: &str| -> Result<Vec<u8>, BackupError> {
        let file = src.join(path);
        let bytes = std::fs::read(&file).map_err(io(&file))?;
        match manifest.files.get(path) {
            Some(sum) if crate::digest::sha256_hex(&bytes) == sum.sha256 => Ok(bytes),
            _ => Err(BackupError::Unsound {
                path: src.to_path_buf(),
                problem: format!("{path} changed while it was being restored"),
            }),
        }
    };
    let mut trees = Vec::new();
    for path in manifest.files.keys().filter(|p| p.starts_with("store/")) {
        let tree = path
            .trim_start_matches("store/")
            .trim_end_matches(".jsonl")
            .to_string();
        let entries = parse_tree(&sound(path)?).map_err(|problem| BackupError::Unsound {
            path: src.to_path_buf(),
            problem,
        })?;
        trees.push((tree, entries));
    }
    let store = Store::from_snapshot(state_dir, trees)?;
    // The restored chain must verify under the key that opened the backup.
    match store.verify_audit()? {
        crate::store::audit::Verdict::Ok { .. } => {}
        crate::store::audit::Verdict::Broken { seq, problem } => {
            return Err(BackupError::Unsound {
                path: src.to_path_buf(),
                problem: format!("its audit chain breaks at entry {seq}: {problem}"),
            })
        }
    }
    for path in manifest.files.keys().filter(|p| p.starts_with("keys/")) {
        let name = path.trim_start_matches("keys/");
        // The integrity key never comes from a backup.
        if name == seal::KEY_FILE || name.contains('/') {
            continue;
        }
        write_private(&state_dir.join(name), &sound(path)?)?;
    }
    for path in manifest
        .files
        .keys()
        .filter(|p| p.starts_with("spool/active/"))
    {
        let to = spool
            .active()
            .join(path.trim_start_matches("spool/active/"));
        if to.exists() {
            continue;
        }
        if let Some(dir) = to.parent() {
            create_private(dir)?;
        }
        write_private(&to, &sound(path)?)?;
    }
    let documents_aside = if replaced.is_some() {
        set_aside_unknown(&store, spool)?
    } else {
        None
    };
    let in_flight = store
        .pending()?
        .iter()
        .filter(|j| j.state == JobState::Sending)
        .count();
    store.audit_operator(Draft {
        kind: AuditKind::Operator,
        job_id: None,
        kommunkod: None,
        state: None,
        operator: Some(operator.to_string()),
        action: format!(
            "restored from a backup taken at {} (audit entry {})",
            manifest.taken_at,
            manifest.audit_head.as_ref().map_or(0, |(seq, _)| *seq)
        ),
        data: serde_json::json!({ "jobs": manifest.jobs, "in_flight": in_flight }),
    })?;
    store.flush()?;
    Ok(Restored {
        taken_at: manifest.taken_at,
        jobs: manifest.jobs,
        in_flight,
        replaced,
        documents_aside,
    })
}

/// Moves job folders in `spool/active/` that `store` has no job for into
/// `spool/active.replaced-<time>/`: the daemon would otherwise never look at them, and the
/// decisions in them were never sent as far as the restored store knows.
fn set_aside_unknown(
    store: &Store,
    spool: &Spool,
) -> Result<Option<(PathBuf, usize)>, BackupError> {
    let active = spool.active();
    let Ok(entries) = std::fs::read_dir(&active) else {
        return Ok(None);
    };
    let aside = active.with_file_name(format!(
        "active.replaced-{}",
        Timestamp::now().strftime("%Y%m%dT%H%M%S")
    ));
    let mut moved = 0;
    for entry in entries {
        let entry = entry.map_err(io(&active))?;
        let known = match entry
            .file_name()
            .to_string_lossy()
            .parse::<crate::job::JobId>()
        {
            Ok(id) => store.get(&id)?.is_some(),
            Err(_) => false,
        };
        if known {
            continue;
        }
        create_private(&aside)?;
        std::fs::rename(entry.path(), aside.join(entry.file_name())).map_err(io(&entry.path()))?;
        moved += 1;
    }
    Ok((moved > 0).then_some((aside, moved)))
}
