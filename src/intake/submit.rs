//! `kurir submit`: the writer's side of the spool contract. It checks the documents first
//! (with the same validation intake applies, so a mistake is reported to the person
//! submitting rather than found later by the daemon), builds the job under `spool/tmp/` and
//! renames it into `spool/incoming/` in one step. No daemon is needed: the spool is the
//! interface.

use std::path::{Path, PathBuf};

use crate::fsutil;
use crate::job::{DocumentKind, JobId, Manifest, ManifestDocument};
use crate::pdf::{self, PdfLimits};
use crate::spool::Spool;

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
        source: pdf::PdfError,
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

/// Writes a job by the spool contract: build under `tmp/`, then one rename into
/// `incoming/`. Documents are checked first, so a mistake is reported to the person
/// submitting rather than found later by the daemon. Returns the new job's id.
pub fn submit(
    spool: &Spool,
    manifest_base: SubmitRequest,
    limits: &PdfLimits,
) -> Result<JobId, SubmitError> {
    let job = read_and_check(manifest_base, limits)?;
    write(spool, &job)
}

/// Reads every document and checks it as intake will: what the person submitting is told
/// at once. Done as the caller (root reads what root may read).
pub fn read_and_check(
    manifest_base: SubmitRequest,
    limits: &PdfLimits,
) -> Result<JobContents, SubmitError> {
    let mut contents = Vec::new();
    for (kind, path) in &manifest_base.documents {
        let bytes =
            fsutil::read_bounded(path, limits.max_bytes).map_err(|source| SubmitError::Read {
                path: path.clone(),
                source,
            })?;
        pdf::validate(&bytes, limits).map_err(|source| SubmitError::Pdf {
            path: path.clone(),
            source,
        })?;
        contents.push((*kind, bytes));
    }
    Ok(JobContents {
        to: manifest_base.to,
        case: manifest_base.case,
        copy_to: manifest_base.copy_to,
        documents: contents,
        submission_key: manifest_base.submission_key,
    })
}

/// Builds the job under `tmp/` and hands it over into `incoming/`, as this process's user:
/// root's command line has the spool's owner do it (`kurir as-owner`), so that root never
/// follows a path in a folder another user controls.
pub fn write(spool: &Spool, job: &JobContents) -> Result<JobId, SubmitError> {
    let id = JobId::generate();
    let build = spool.tmp().join(id.as_str());
    write_job(spool, &build, job).map_err(|source| SubmitError::Write {
        dir: build.clone(),
        source,
    })?;
    hand_over(spool, &build, &id).map_err(|source| SubmitError::Write {
        dir: spool.incoming(),
        source,
    })?;
    Ok(id)
}

/// A job's contents, documents read and checked: what a writer hands over.
#[derive(Debug)]
pub struct JobContents {
    /// Assigned municipality.
    pub to: crate::job::Kommunkod,
    /// Case number (written into job.toml only).
    pub case: crate::job::CaseNumber,
    /// Copy recipients.
    pub copy_to: Vec<crate::job::Kommunkod>,
    /// Documents in order, with their bytes.
    pub documents: Vec<(DocumentKind, Vec<u8>)>,
    /// The case system's own identifier of the submission, if it gives one.
    pub submission_key: Option<String>,
}

/// Writes the job's folder `build` (under `tmp/`): each document, named after its kind only
/// (the writer's own names may carry personal data), and `job.toml`, all durable.
pub(crate) fn write_job(spool: &Spool, build: &Path, job: &JobContents) -> std::io::Result<()> {
    fsutil::create_private_dir(&spool.tmp())?;
    fsutil::create_private_dir(build)?;
    // In a spool the submit group writes (`[spool] submit_group`: tmp/ is group-writable), a
    // member's job must be readable, and movable, by kurir's user through that group.
    let shared = {
        use std::os::unix::fs::MetadataExt;
        let tmp = std::fs::metadata(spool.tmp())?;
        tmp.mode() & 0o020 != 0 && tmp.uid() != fsutil::own_euid()
    };
    let open = |path: &Path, mode: u32| -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        if shared {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
        Ok(())
    };
    open(build, 0o2770)?;
    let mut documents = Vec::new();
    for (i, (kind, bytes)) in job.documents.iter().enumerate() {
        let file = format!("{:02}-{}.pdf", i + 1, kind.as_str());
        fsutil::write_new(&build.join(&file), bytes)?;
        open(&build.join(&file), 0o640)?;
        documents.push(ManifestDocument { kind: *kind, file });
    }
    let manifest = Manifest {
        to: job.to,
        case: job.case.clone(),
        copy_to: job.copy_to.clone(),
        documents,
        submission_key: job.submission_key.clone(),
    };
    fsutil::write_new(&build.join("job.toml"), manifest.to_toml().as_bytes())?;
    open(&build.join("job.toml"), 0o640)?;
    fsutil::sync_dir(build)
}

/// Hands a built job folder over: one rename into `incoming/<id>` (the Maildir rule), made
/// durable.
pub(crate) fn hand_over(spool: &Spool, build: &Path, id: &JobId) -> std::io::Result<()> {
    fsutil::create_private_dir(&spool.incoming())?;
    std::fs::rename(build, spool.incoming().join(id.as_str()))?;
    fsutil::sync_dir(&spool.incoming())
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
    /// The case system's own identifier of the submission, if it gives one.
    pub submission_key: Option<String>,
}
