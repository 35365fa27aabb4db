//! The spool: the directory tree that is kurir's interface to the people and systems around it.
//!
//! ```text
//! spool/tmp/<name>/          writers build a job here ...
//! spool/incoming/<name>/     ... and rename it here in one step (the Maildir rule)
//! spool/active/<job-id>/     claimed by the daemon; documents stay until retention ends
//! spool/quarantine/<name>/   bad input, untouched, with reason.txt
//! spool/print/<batch-id>/    letters and manifest.csv for the print shop; READY when closed
//! spool/receipts/<job-id>.json   what happened, for the case system
//! spool/alerts/<time>-<job-id>-<kind>.json   what a person must act on
//! spool/inbound/{tmp,new}/   delivery reports and read notifications from `kurir inbound`
//! spool/inbound/done/        ... recorded on their jobs; inbound/unmatched/ with .reason
//! ```

use std::path::{Path, PathBuf};

use crate::fsutil;
use crate::job::JobId;

/// The file in a claimed job that holds the name the writer gave the job directory (where
/// the file system keeps no extended attributes). Intake writes it; validation and the
/// operator's quarantine release know it is kurir's own and not the writer's.
pub const SOURCE_NOTE: &str = ".kurir-source";

/// A dispatch desk draft's folder in `tmp/` begins with this ([`crate::intake::draft`]).
pub const DRAFT_PREFIX: &str = "draft-";
/// How long an unsent draft is kept: it is sent no more after this, and retention removes it.
pub const DRAFT_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);

/// An entry in `incoming/` the daemon has not taken in yet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Waiting {
    /// The folder's name as its writer gave it (a job id when `kurir submit` wrote it).
    pub name: String,
    /// When it was put there (its modification time).
    pub since: jiff::Timestamp,
}

/// Paths of the spool's folders.
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
}

impl Spool {
    /// A spool rooted at `root` (not yet created).
    pub fn new(root: impl Into<PathBuf>) -> Spool {
        Spool { root: root.into() }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Where writers build jobs.
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    /// Where finished jobs are renamed to.
    pub fn incoming(&self) -> PathBuf {
        self.root.join("incoming")
    }
    /// Claimed jobs, by job id.
    pub fn active(&self) -> PathBuf {
        self.root.join("active")
    }
    /// One claimed job.
    pub fn active_job(&self, id: &JobId) -> PathBuf {
        self.active().join(id.as_str())
    }
    /// Whether a job with this id lies in the spool: dropped into `incoming/` under its id (as
    /// `kurir submit` names it) or claimed into `active/`. Asked when the store has no record of
    /// it yet, so that a status query right after `submit` says "not taken in yet" instead of
    /// "no such job".
    pub fn holds(&self, id: &JobId) -> bool {
        self.incoming().join(id.as_str()).exists() || self.active_job(id).exists()
    }
    /// What lies in `incoming/` now, oldest first: jobs dropped and not yet taken in (by a
    /// daemon that is busy, or not running). Entries are not opened or followed.
    pub fn waiting(&self) -> std::io::Result<Vec<Waiting>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(self.incoming()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue; // taken in while we looked
            };
            let since = meta
                .modified()
                .ok()
                .and_then(|t| jiff::Timestamp::try_from(t).ok())
                .unwrap_or_else(jiff::Timestamp::now);
            out.push(Waiting {
                name: entry.file_name().to_string_lossy().into_owned(),
                since,
            });
        }
        out.sort_by_key(|w| w.since);
        Ok(out)
    }
    /// Bad input.
    pub fn quarantine(&self) -> PathBuf {
        self.root.join("quarantine")
    }
    /// Print batches.
    pub fn print(&self) -> PathBuf {
        self.root.join("print")
    }
    /// Receipts.
    pub fn receipts(&self) -> PathBuf {
        self.root.join("receipts")
    }
    /// Alerts for operations.
    pub fn alerts(&self) -> PathBuf {
        self.root.join("alerts")
    }
    /// Where `kurir inbound` builds a message before renaming it into `inbound/new/`.
    pub fn inbound_tmp(&self) -> PathBuf {
        self.root.join("inbound/tmp")
    }
    /// Delivery reports and read notifications waiting for the daemon.
    pub fn inbound_new(&self) -> PathBuf {
        self.root.join("inbound/new")
    }
    /// Reports the daemon has recorded on their jobs (kept as evidence).
    pub fn inbound_done(&self) -> PathBuf {
        self.root.join("inbound/done")
    }
    /// Inbound messages that match no job, each with a `.reason` file.
    pub fn inbound_unmatched(&self) -> PathBuf {
        self.root.join("inbound/unmatched")
    }
    /// One job's receipt.
    pub fn receipt(&self, id: &JobId) -> PathBuf {
        self.receipts().join(format!("{id}.json"))
    }

    /// The dispatch desk's draft folders in `tmp/`, each with whether it has outlived
    /// [`DRAFT_LIFETIME`].
    pub fn drafts(&self) -> Vec<(PathBuf, bool)> {
        let Ok(entries) = std::fs::read_dir(self.tmp()) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(DRAFT_PREFIX))
            .map(|entry| {
                let path = entry.path();
                let old = draft_lapsed(&path);
                (path, old)
            })
            .collect()
    }

    /// Removes drafts older than [`DRAFT_LIFETIME`]; returns how many. Retention calls it.
    pub fn sweep_drafts(&self) -> usize {
        self.drafts()
            .into_iter()
            .filter(|(dir, old)| {
                // Claimed by a rename first: a send racing the sweep either hands over the
                // whole folder or finds it gone, never one emptied under it.
                let swept = dir.with_file_name(format!(
                    "swept-{}",
                    dir.file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default()
                ));
                *old && std::fs::rename(dir, &swept).is_ok()
                    && std::fs::remove_dir_all(&swept).is_ok()
            })
            .count()
    }

    /// Creates every folder (mode 0700, 0750 with group access) and takes away any wider
    /// access the root or a folder already had. Returns the folders it tightened, with the
    /// mode each had, for the caller to log.
    pub fn ensure(&self) -> std::io::Result<Vec<(PathBuf, u32)>> {
        let mut tightened = Vec::new();
        for dir in [
            self.root.clone(),
            self.tmp(),
            self.incoming(),
            self.active(),
            self.quarantine(),
            self.print(),
            self.receipts(),
            self.alerts(),
            self.root.join("inbound"),
            self.inbound_tmp(),
            self.inbound_new(),
            self.inbound_done(),
            self.inbound_unmatched(),
        ] {
            fsutil::create_private_dir(&dir)?;
            if let Some(mode) = fsutil::restrict_dir(&dir)? {
                tightened.push((dir, mode));
            }
        }
        Ok(tightened)
    }
}

/// Whether the draft in `dir` has outlived [`DRAFT_LIFETIME`] (it is sent no more).
pub fn draft_lapsed(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > DRAFT_LIFETIME)
}
