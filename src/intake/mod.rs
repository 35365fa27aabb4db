//! Intake: claims jobs from `spool/incoming/`, validates them, routes them and records them.
//!
//! Claiming is a rename into `spool/active/<job-id>/`, so a job is owned by exactly one place at
//! any instant. The store is written before anything else happens to a claimed job; after a
//! crash, [`Intake::recover`] finds claimed jobs the store does not know yet and finishes them.
//! A bad job is recorded as quarantined first and then moved, so the move can be completed
//! after a crash too.

pub mod draft;
pub mod route;
pub mod submit;
pub mod validate;
pub mod watch;

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::fsutil;
use crate::intake::route::Route;
use crate::intake::validate::{JobLimits, Rejection};
use crate::job::JobId;
use crate::registry::Seed;
use crate::spool::Spool;
use crate::spool::SOURCE_NOTE;
use crate::store::event::{EventKind, RoutedTo};
use crate::store::state::{JobRecord, JobState, QuarantineInfo, Recipient};
use crate::store::{Store, StoreError};

/// What can stop intake from handling a job (bad input is not an error: it is quarantined).
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The spool could not be read or changed.
    #[error(transparent)]
    Io(#[from] fsutil::FsError),
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> IntakeError + 'a {
    fsutil::io(what, path)
}

/// The extended attribute that carries the writer's name on a claimed job directory; the
/// note file [`SOURCE_NOTE`] is the fallback where the file system has no user attributes.
const SOURCE_XATTR: &str = "user.kurir.source";

/// Remembers the writer's name on the job directory before it is claimed, so that a crash
/// between the claim and the store write does not lose it. Best effort: the id is what
/// matters. An extended attribute costs no new file (no inode, no directory entry); it is
/// set without following a link (a planted link gets nothing).
fn remember_source(dir: &Path, name: &str) {
    if xattr::set(dir, SOURCE_XATTR, name.as_bytes()).is_ok() {
        return;
    }
    // The fallback opens a path inside `dir`: only for a real directory, never a link.
    if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return;
    }
    // create_new and O_NOFOLLOW: never write through a link the writer planted.
    let note = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join(SOURCE_NOTE));
    if let Ok(mut file) = note {
        let _ = std::io::Write::write_all(&mut file, name.as_bytes());
    }
}

/// The writer's name remembered by [`remember_source`], if any.
fn recall_source(dir: &Path) -> Option<String> {
    let bytes = match xattr::get(dir, SOURCE_XATTR) {
        Ok(Some(bytes)) => bytes,
        _ => fsutil::read_bounded(&dir.join(SOURCE_NOTE), 1024).ok()?,
    };
    String::from_utf8(bytes)
        .ok()
        .filter(|s| !s.is_empty() && s.len() <= 1024)
}

/// A validated job and its first events, waiting for its group's transaction.
type QueuedJob = (JobRecord, Vec<(JobState, EventKind)>);

/// What a scan of `incoming/` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanOutcome {
    /// Jobs accepted and queued.
    pub queued: usize,
    /// Jobs quarantined.
    pub quarantined: usize,
    /// Directories left alone because they may still be being written.
    pub waiting: usize,
}

/// The intake stage.
pub struct Intake {
    spool: Spool,
    store: Store,
    seed: Arc<Seed>,
    limits: JobLimits,
    settle: Duration,
    relay_configured: bool,
    connection_rule: crate::store::ConnectionRule,
    /// Wakes the queue as soon as a group of jobs is durably recorded.
    waker: Arc<tokio::sync::Notify>,
    /// When a job is received (its deadlines count from then).
    clock: Arc<dyn crate::clock::Clock>,
}

/// Jobs recorded between two flushes of the store while a scan claims a burst (group commit).
const FLUSH_EVERY: usize = 32;

impl Intake {
    /// Intake over this spool and store, waking the queue through `waker` (given here: no
    /// intake runs without it). A quarantined job's alert is marked in its record, and raised
    /// by the alert writer.
    #[allow(clippy::too_many_arguments)] // each a part intake is built from, named
    pub fn new(
        spool: Spool,
        store: Store,
        seed: Arc<Seed>,
        limits: JobLimits,
        settle: Duration,
        relay_configured: bool,
        connection_rule: crate::store::ConnectionRule,
        waker: Arc<tokio::sync::Notify>,
        clock: Arc<dyn crate::clock::Clock>,
    ) -> Self {
        Intake {
            spool,
            store,
            seed,
            limits,
            settle,
            relay_configured,
            connection_rule,
            waker,
            clock,
        }
    }

    /// Records a group of validated jobs in one transaction, makes it durable and tells the
    /// queue. Lost in a crash before the flush, the claimed jobs are found in `active/`
    /// without a record and read again (`recover`).
    fn commit_group(&self, group: &mut Vec<QueuedJob>) -> Result<(), IntakeError> {
        self.store.enqueue_many(group, false)?;
        for (record, _) in group.drain(..) {
            tracing::info!(job_id = %record.id, channel = record.channel_summary(), "job queued");
        }
        self.store.flush()?;
        self.waker.notify_one();
        Ok(())
    }

    /// Finishes what a crash interrupted: claimed jobs not yet recorded, quarantines not yet
    /// moved, receipts not yet written.
    pub fn recover(&self) -> Result<usize, IntakeError> {
        let mut finished = 0;
        let active = self.spool.active();
        let mut names: Vec<String> = std::fs::read_dir(&active)
            .map_err(io("reading", &active))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        for name in names {
            let Ok(id) = name.parse::<JobId>() else {
                continue;
            };
            if self.store.get(&id)?.is_none() {
                tracing::info!(job_id = %id, "recovering a job claimed before a crash");
                let source = recall_source(&active.join(&name)).unwrap_or_else(|| id.to_string());
                let mut one = Vec::new();
                if self.process_claimed(&id, &source, &mut one)?.is_none() {
                    // Still being written when recovered: it is back in incoming/.
                    continue;
                }
                self.commit_group(&mut one)?;
                finished += 1;
            }
        }
        for record in self.store.pending()? {
            if record.state == JobState::Quarantined {
                self.finish_quarantine(&record, None)?;
                finished += 1;
            }
        }
        Ok(finished)
    }

    /// Claims and handles every job in `incoming/`, oldest name first.
    pub fn scan(&self) -> Result<ScanOutcome, IntakeError> {
        let incoming = self.spool.incoming();
        let mut names: Vec<String> = std::fs::read_dir(&incoming)
            .map_err(io("reading", &incoming))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        let mut outcome = ScanOutcome::default();
        let mut group = Vec::with_capacity(FLUSH_EVERY);
        for name in names {
            let path = incoming.join(&name);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue; // gone since the listing
            };
            if meta.is_dir() && !path.join("job.toml").exists() && self.is_young(&meta) {
                outcome.waiting += 1;
                continue;
            }
            let id = self.choose_id(&name)?;
            if meta.is_dir() {
                remember_source(&path, &name);
            }
            let target = self.spool.active_job(&id);
            match std::fs::rename(&path, &target) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io("claiming", &path)(e)),
            }
            match self.process_claimed(&id, &name, &mut group)? {
                Some(JobState::Quarantined) => outcome.quarantined += 1,
                Some(_) => outcome.queued += 1,
                None => outcome.waiting += 1,
            }
            if group.len() >= FLUSH_EVERY {
                self.commit_group(&mut group)?;
            }
        }
        if !group.is_empty() {
            self.commit_group(&mut group)?;
        }
        Ok(outcome)
    }

    /// The directory or a file in it changed within the settle time.
    fn recently_modified(&self, dir: &Path) -> bool {
        let young = |m: std::fs::Metadata| self.is_young(&m);
        if std::fs::symlink_metadata(dir).map(young).unwrap_or(false) {
            return true;
        }
        std::fs::read_dir(dir)
            .map(|entries| {
                entries.flatten().any(|e| {
                    std::fs::symlink_metadata(e.path())
                        .map(young)
                        .unwrap_or(false)
                })
            })
            .unwrap_or(false)
    }

    /// A directory without job.toml younger than the settle time may still be being written.
    fn is_young(&self, meta: &std::fs::Metadata) -> bool {
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        SystemTime::now()
            .duration_since(modified)
            .map(|age| age < self.settle)
            .unwrap_or(true)
    }

    /// `kurir submit` names the directory by the job id it printed; keep it. Any other name
    /// gets a fresh id.
    fn choose_id(&self, name: &str) -> Result<JobId, IntakeError> {
        if let Ok(id) = name.parse::<JobId>() {
            if self.store.get(&id)?.is_none() && !self.spool.active_job(&id).exists() {
                return Ok(id);
            }
        }
        Ok(JobId::generate())
    }

    /// Validates and routes a claimed job; returns the state it is recorded in, or `None` if
    /// it looked half-written and went back to `incoming/` to be read later. A quarantined job
    /// is recorded at once; a queued one is added to `group`, which the caller records.
    fn process_claimed(
        &self,
        id: &JobId,
        source: &str,
        group: &mut Vec<QueuedJob>,
    ) -> Result<Option<JobState>, IntakeError> {
        let dir = self.spool.active_job(id);
        let now = self.clock.now();
        let meta = std::fs::symlink_metadata(&dir).map_err(io("inspecting", &dir))?;
        let verdict = if meta.file_type().is_symlink() {
            Err(validate::not_a_directory("symbolic link"))
        } else if !meta.is_dir() {
            Err(validate::not_a_directory("file or special file"))
        } else {
            validate::validate_job(&dir, &self.seed, &self.limits)
        };
        // A writer that ignores the tmp-then-rename rule may still be writing: a job that
        // fails as incomplete while its files are fresh goes back to wait out the settle time.
        if let Err(rejection) = &verdict {
            if rejection.may_be_incomplete() && meta.is_dir() && self.recently_modified(&dir) {
                let back = self.spool.incoming().join(source);
                if !source.contains('/') && !back.exists() && std::fs::rename(&dir, &back).is_ok() {
                    tracing::debug!(job_id = %id, "job looks half-written; left for a later scan");
                    return Ok(None);
                }
            }
        }
        let mut record = JobRecord::received(id.clone(), source, now);
        match verdict {
            Ok(job) => {
                record.to = job.recipients.first().map(|(code, _)| *code);
                record.documents = job.documents;
                record.submission = job.submission.clone();
                if let Some(first) = self.first_with(job.submission.as_deref(), group)? {
                    return Ok(Some(self.duplicate(record, first, group)?));
                }
                let mut routes = Vec::new();
                for (code, role) in job.recipients {
                    let registered = self.store.registered(code)?;
                    let chosen = route::route_registered(
                        &self.store,
                        &registered,
                        self.relay_configured,
                        self.connection_rule,
                    )?;
                    routes.push(RoutedTo {
                        kommunkod: code,
                        channel: chosen.channel(),
                        post_reason: match &chosen {
                            Route::Email { .. } => None,
                            Route::Post { reason } => Some(*reason),
                        },
                    });
                    record.recipients.push(Recipient {
                        kommunkod: code,
                        role,
                        channel: Some(chosen.channel()),
                        letter: None,
                        email: None,
                    });
                }
                record.queue(now);
                let pages: u32 = record.documents.iter().map(|d| d.pages).sum();
                let documents = record.documents.len();
                group.push((
                    record,
                    vec![
                        (
                            JobState::Received,
                            EventKind::Claimed {
                                documents,
                                pages: Some(pages),
                            },
                        ),
                        (JobState::Queued, EventKind::Routed { routes }),
                    ],
                ));
                Ok(Some(JobState::Queued))
            }
            Err(rejection) => {
                let dir_name = self.quarantine_name(source, id);
                // Marked in the record, so the alert is raised once even across a crash.
                record.quarantine(QuarantineInfo {
                    code: rejection.code.as_str().to_string(),
                    summary: rejection.summary.clone(),
                    dir: dir_name,
                });
                self.store.enqueue(
                    &record,
                    &[(
                        JobState::Quarantined,
                        EventKind::Quarantined {
                            code: rejection.code.as_str().to_string(),
                            summary: rejection.summary.clone(),
                        },
                    )],
                )?;
                tracing::warn!(job_id = %id, reason = rejection.code.as_str(), "job quarantined");
                self.finish_quarantine(&record, Some(&rejection))?;

                Ok(Some(JobState::Quarantined))
            }
        }
    }

    /// The job that had this submission key first: one of this group's, or one the store
    /// knows (also from before a restore).
    fn first_with(
        &self,
        digest: Option<&str>,
        group: &[QueuedJob],
    ) -> Result<Option<JobId>, IntakeError> {
        let Some(digest) = digest else {
            return Ok(None);
        };
        let in_group = group
            .iter()
            .find(|(r, _)| r.submission.as_deref() == Some(digest) && r.duplicate_of.is_none())
            .map(|(r, _)| r.id.clone());
        match in_group {
            Some(id) => Ok(Some(id)),
            None => Ok(self.store.submission(digest)?),
        }
    }

    /// Records a submission the case system made before as a job that is not sent: it names
    /// the first job, whose receipt says what happened (at most one delivery per key).
    fn duplicate(
        &self,
        mut record: JobRecord,
        first: JobId,
        group: &mut Vec<QueuedJob>,
    ) -> Result<JobState, IntakeError> {
        let first_state = self
            .store
            .get(&first)?
            .map(|job| job.state.as_str().to_string());
        let documents = record.documents.len();
        record.duplicate_of = Some(first.clone());
        record.cancel();
        tracing::info!(job_id = %record.id, duplicate_of = %first, "a submission kurir had before: not sent again");
        group.push((
            record,
            vec![
                (
                    JobState::Received,
                    EventKind::Claimed {
                        documents,
                        pages: None,
                    },
                ),
                (
                    JobState::Cancelled,
                    EventKind::Duplicate { first, first_state },
                ),
            ],
        ));
        Ok(JobState::Cancelled)
    }

    /// `quarantine/<source>/`, or `<source>.<job-id>` if that name is taken or unusable.
    fn quarantine_name(&self, source: &str, id: &JobId) -> String {
        let usable = !source.is_empty()
            && source.len() <= 100
            && !source.starts_with('.')
            && !source.contains('/');
        if usable && !self.spool.quarantine().join(source).exists() {
            source.to_string()
        } else if usable {
            format!("{source}.{id}")
        } else {
            id.to_string()
        }
    }

    /// Moves a quarantined job out of `active/` (if it is still there), writes `reason.txt`
    /// and the receipt. Safe to run again after a crash.
    fn finish_quarantine(
        &self,
        record: &JobRecord,
        rejection: Option<&Rejection>,
    ) -> Result<(), IntakeError> {
        let Some(info) = &record.quarantine else {
            return Ok(());
        };
        let qdir = self.spool.quarantine().join(&info.dir);
        let active = self.spool.active_job(&record.id);
        let moving = std::fs::symlink_metadata(&active).ok();
        // `reason.txt` is written before the folder moves: the receipt writer waits for the
        // move, and whoever reads the receipt finds the reason beside the job at once.
        let reason_dir = match &moving {
            Some(meta) if meta.is_dir() => active.clone(),
            Some(_) => {
                fsutil::create_private_dir(&qdir).map_err(io("quarantining", &qdir))?;
                qdir.clone()
            }
            None => qdir.clone(),
        };
        let reason_name = if reason_dir.join("reason.txt").exists() && rejection.is_some() {
            "reason.kurir.txt"
        } else {
            "reason.txt"
        };
        let reason_path = reason_dir.join(reason_name);
        if !reason_path.exists() || rejection.is_some() {
            let text = match rejection {
                Some(r) => r.reason_text(record.id.as_str()),
                None => validate::reason_text(record.id.as_str(), &info.code, &info.summary, ""),
            };
            if reason_dir.is_dir() {
                fsutil::write_atomic(&reason_path, text.as_bytes())
                    .map_err(io("writing reason", &reason_path))?;
            }
        }
        if let Some(meta) = moving {
            if meta.is_dir() {
                std::fs::rename(&active, &qdir).map_err(io("quarantining", &active))?;
            } else {
                // A stray file, link or FIFO: keep it, unchanged, inside a folder of its own.
                let keep = qdir.join(if record.source.contains('/') {
                    record.id.as_str()
                } else {
                    record.source.as_str()
                });
                std::fs::rename(&active, &keep).map_err(io("quarantining", &active))?;
            }
            fsutil::sync_dir(&self.spool.quarantine()).map_err(io("syncing", &qdir))?;
        }
        // Its receipt may be written now (the receipt writer waits for the folder's move).
        self.store.wake_receipt_writer();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writers_name_is_recalled_after_the_claim_rename() {
        let dir = tempfile::tempdir().expect("tempdir");
        let job = dir.path().join("drop-17");
        std::fs::create_dir(&job).expect("job dir");
        remember_source(&job, "drop-17");
        let claimed = dir.path().join("claimed");
        std::fs::rename(&job, &claimed).expect("claim");
        assert_eq!(recall_source(&claimed).as_deref(), Some("drop-17"));
        let unmarked = dir.path().join("unmarked");
        std::fs::create_dir(&unmarked).expect("dir");
        assert_eq!(recall_source(&unmarked), None);
    }

    #[test]
    fn a_planted_link_gets_no_source_mark_through_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("elsewhere");
        std::fs::create_dir(&target).expect("dir");
        let link = dir.path().join("drop-18");
        std::os::unix::fs::symlink(&target, &link).expect("link");
        remember_source(&link, "drop-18");
        assert_eq!(recall_source(&target), None, "written through the link");
    }
}
