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
//! ```

use std::path::{Path, PathBuf};

use crate::fsutil;
use crate::job::{DocumentKind, JobId, Manifest, ManifestDocument};

/// Paths of the spool's folders.
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
}

/// Why `kurir submit` could not write a job.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// A document could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file given on the command line.
        path: PathBuf,
        /// Why.
        source: fsutil::ReadError,
    },
    /// A document is not acceptable.
    #[error("{path}: {source}")]
    Pdf {
        /// The file given on the command line.
        path: PathBuf,
        /// Why.
        source: crate::intake::pdf::PdfError,
    },
    /// Writing the job failed.
    #[error("writing the job into {dir}: {source}")]
    Write {
        /// The spool folder.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
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
    /// One job's receipt.
    pub fn receipt(&self, id: &JobId) -> PathBuf {
        self.receipts().join(format!("{id}.json"))
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
        ] {
            fsutil::create_private_dir(&dir)?;
            if let Some(mode) = fsutil::restrict_dir(&dir)? {
                tightened.push((dir, mode));
            }
        }
        Ok(tightened)
    }

    /// Writes a job by the spool contract: build under `tmp/`, then one rename into
    /// `incoming/`. Documents are checked first, so a mistake is reported to the person
    /// submitting rather than found later by the daemon. Returns the new job's id.
    pub fn submit(
        &self,
        manifest_base: SubmitRequest,
        limits: &crate::intake::pdf::PdfLimits,
    ) -> Result<JobId, SubmitError> {
        let mut contents = Vec::new();
        for (kind, path) in &manifest_base.documents {
            let bytes = fsutil::read_bounded(path, limits.max_bytes).map_err(|source| {
                SubmitError::Read {
                    path: path.clone(),
                    source,
                }
            })?;
            crate::intake::pdf::validate(&bytes, limits).map_err(|source| SubmitError::Pdf {
                path: path.clone(),
                source,
            })?;
            contents.push((*kind, bytes));
        }
        let id = JobId::generate();
        let write_err = |dir: &Path| {
            let dir = dir.to_path_buf();
            move |source| SubmitError::Write { dir, source }
        };
        fsutil::create_private_dir(&self.tmp()).map_err(write_err(&self.tmp()))?;
        fsutil::create_private_dir(&self.incoming()).map_err(write_err(&self.incoming()))?;
        let build = self.tmp().join(id.as_str());
        fsutil::create_private_dir(&build).map_err(write_err(&build))?;

        // File names say only the kind: the writer's own names may carry personal data.
        let mut documents = Vec::new();
        for (i, (kind, bytes)) in contents.iter().enumerate() {
            let file = format!("{:02}-{}.pdf", i + 1, kind.as_str());
            fsutil::write_new(&build.join(&file), bytes).map_err(write_err(&build))?;
            documents.push(ManifestDocument { kind: *kind, file });
        }
        let manifest = Manifest {
            to: manifest_base.to,
            case: manifest_base.case,
            copy_to: manifest_base.copy_to,
            documents,
        };
        fsutil::write_new(&build.join("job.toml"), manifest.to_toml().as_bytes())
            .map_err(write_err(&build))?;
        fsutil::sync_dir(&build).map_err(write_err(&build))?;
        std::fs::rename(&build, self.incoming().join(id.as_str()))
            .map_err(write_err(&self.incoming()))?;
        fsutil::sync_dir(&self.incoming()).map_err(write_err(&self.incoming()))?;
        Ok(id)
    }
}

/// What `kurir submit` was asked to send.
#[derive(Debug)]
pub struct SubmitRequest {
    /// Assigned municipality.
    pub to: crate::job::Kommunkod,
    /// Case number (written into job.toml only).
    pub case: crate::job::CaseNumber,
    /// Copy recipients.
    pub copy_to: Vec<crate::job::Kommunkod>,
    /// Documents in order.
    pub documents: Vec<(DocumentKind, PathBuf)>,
}
