//! Validation of a claimed job directory: the manifest, the recipients and every document.
//!
//! The result is either a [`ValidJob`] or a [`Rejection`] whose `summary` is safe to log and
//! whose `detail` (which may name files) goes only into `reason.txt` next to the job.

use std::path::Path;

use crate::fsutil::{self, ReadError};
use crate::job::{Kommunkod, Manifest, RecipientRole};
use crate::pdf::{self, PdfLimits};
use crate::registry::Seed;
use crate::store::state::DocumentRecord;

/// Limits on a job as a whole.
#[derive(Debug, Clone, Copy)]
pub struct JobLimits {
    /// Per-document limits.
    pub pdf: PdfLimits,
    /// Largest `job.toml`.
    pub max_manifest_bytes: u64,
    /// Most documents.
    pub max_documents: usize,
}

/// A job that may be delivered.
#[derive(Debug, Clone)]
pub struct ValidJob {
    /// Recipients, the assigned municipality first.
    pub recipients: Vec<(Kommunkod, RecipientRole)>,
    /// Documents in order.
    pub documents: Vec<DocumentRecord>,
    /// The SHA-256 of the case system's submission key, if it gave one.
    pub submission: Option<String>,
}

/// Why a job is quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Short machine-readable reason.
    pub code: &'static str,
    /// One sentence without personal data or file names: for logs, status and receipts.
    pub summary: String,
    /// What a person should know to fix it: may name files in the job.
    pub detail: String,
}

impl Rejection {
    fn new(code: &'static str, summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Rejection {
            code,
            summary: summary.into(),
            detail: detail.into(),
        }
    }

    /// The failure could be a writer that has not finished (a missing or truncated file),
    /// rather than bad input.
    pub fn may_be_incomplete(&self) -> bool {
        matches!(
            self.code,
            "manifest-missing"
                | "manifest-invalid"
                | "manifest-not-utf8"
                | "document-missing"
                | "pdf-damaged"
                | "pdf-not-a-pdf"
                | "pdf-no-pages"
                | "unexpected-file"
        )
    }

    /// The text of `reason.txt`.
    pub fn reason_text(&self, job_id: &str) -> String {
        format!(
            "kurir quarantined this job (job id {job_id}).\n\n\
             Reason ({code}): {summary}\n{detail}\n\n\
             What to do: correct the job and submit it again as a new job \
             (build it under spool/tmp/, then rename it into spool/incoming/, or use \
             `kurir submit`). Nothing in this folder was changed or deleted by kurir.\n",
            code = self.code,
            summary = self.summary,
            detail = self.detail,
        )
    }
}

/// The rejection for an entry in `incoming/` that is not a directory.
pub fn not_a_directory(kind: &str) -> Rejection {
    Rejection::new(
        "not-a-job-directory",
        format!("the spool entry is a {kind}, not a job directory"),
        "A job is a directory holding job.toml and the PDF files it names.",
    )
}

/// Checks a claimed job directory.
pub fn validate_job(dir: &Path, seed: &Seed, limits: &JobLimits) -> Result<ValidJob, Rejection> {
    let entries = list_entries(dir)?;

    let manifest_bytes = fsutil::read_bounded(&dir.join("job.toml"), limits.max_manifest_bytes)
        .map_err(|e| match e {
            ReadError::Missing => Rejection::new(
                "manifest-missing",
                "the job has no job.toml",
                "Every job directory must contain job.toml (see the spool contract in README).",
            ),
            other => Rejection::new(
                "manifest-unreadable",
                format!("job.toml {other}"),
                format!("job.toml {other}."),
            ),
        })?;
    let text = String::from_utf8(manifest_bytes).map_err(|_| {
        Rejection::new(
            "manifest-not-utf8",
            "job.toml is not UTF-8 text",
            "Save job.toml as UTF-8.",
        )
    })?;
    let manifest = Manifest::parse(&text, limits.max_documents)
        .map_err(|e| Rejection::new("manifest-invalid", e.to_string(), e.to_string()))?;

    for (code, _) in manifest.recipients() {
        seed.require(code)
            .map_err(|e| Rejection::new("unknown-kommunkod", e.to_string(), e.to_string()))?;
    }

    let named: Vec<&str> = manifest.documents.iter().map(|d| d.file.as_str()).collect();
    let unexpected: Vec<&String> = entries
        .iter()
        .filter(|e| e.as_str() != "job.toml" && !named.contains(&e.as_str()))
        .collect();
    if !unexpected.is_empty() {
        return Err(Rejection::new(
            "unexpected-file",
            format!(
                "the job holds {} file(s) that job.toml does not name",
                unexpected.len()
            ),
            format!(
                "Files not named in job.toml: {}. Name every document in job.toml or remove \
                 the file, so that nothing is silently left undelivered.",
                unexpected
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }

    let mut documents = Vec::new();
    for (i, doc) in manifest.documents.iter().enumerate() {
        let index = i + 1;
        let bytes =
            fsutil::read_bounded(&dir.join(&doc.file), limits.pdf.max_bytes).map_err(|e| {
                let code = match e {
                    ReadError::Symlink => "symlink",
                    ReadError::NotRegular => "not-a-regular-file",
                    ReadError::TooLarge { .. } => "pdf-too-large",
                    ReadError::Missing => "document-missing",
                    ReadError::Io(_) | ReadError::Changed => "document-unreadable",
                };
                Rejection::new(
                    code,
                    format!("document {index} ({}) {e}", doc.kind),
                    format!("Document {index}, file {:?}, {e}.", doc.file),
                )
            })?;
        let summary = pdf::validate(&bytes, &limits.pdf).map_err(|e| {
            Rejection::new(
                e.code(),
                format!("document {index} ({}): {e}", doc.kind),
                format!("Document {index}, file {:?}: {e}.", doc.file),
            )
        })?;
        documents.push(DocumentRecord {
            kind: doc.kind,
            file: doc.file.clone(),
            pages: summary.pages,
            bytes: bytes.len() as u64,
            sha256: summary.sha256,
        });
    }

    Ok(ValidJob {
        recipients: manifest.recipients(),
        documents,
        submission: manifest
            .submission_key
            .as_deref()
            .map(crate::job::submission_digest),
    })
}

/// Names of the entries of a job directory; links and anything but regular files are refused.
fn list_entries(dir: &Path) -> Result<Vec<String>, Rejection> {
    let unreadable = |e: std::io::Error| {
        Rejection::new(
            "job-unreadable",
            format!("the job directory cannot be read: {e}"),
            format!("The job directory cannot be read: {e}."),
        )
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name == crate::spool::SOURCE_NOTE {
            continue;
        }
        let file_type = entry.file_type().map_err(unreadable)?;
        if file_type.is_symlink() {
            return Err(Rejection::new(
                "symlink",
                "the job contains a symbolic link; links are not followed",
                format!("Entry {name:?} is a symbolic link. Copy the file into the job instead."),
            ));
        }
        if !file_type.is_file() {
            return Err(Rejection::new(
                "not-a-regular-file",
                "the job contains an entry that is not a regular file",
                format!("Entry {name:?} is a directory, FIFO, socket or device."),
            ));
        }
        names.push(name);
    }
    Ok(names)
}
