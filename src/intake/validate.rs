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

/// Why a job is quarantined, by kind: matched as a value, named by [`RejectionCode::as_str`]
/// in logs, receipts and `reason.txt` (`pdf-damaged`, `symlink`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectionCode {
    /// An entry in `incoming/` that is not a directory.
    NotAJobDirectory,
    /// The job directory cannot be read.
    JobUnreadable,
    /// No `job.toml`.
    ManifestMissing,
    /// `job.toml` cannot be read (too large, a symlink, not a file).
    ManifestUnreadable,
    /// `job.toml` is not UTF-8.
    ManifestNotUtf8,
    /// `job.toml` does not parse or breaks a rule.
    ManifestInvalid,
    /// A recipient is no municipality.
    UnknownKommunkod,
    /// A file `job.toml` does not name.
    UnexpectedFile,
    /// A document is a symbolic link.
    Symlink,
    /// A document is not a regular file.
    NotARegularFile,
    /// A document is over the size limit before it is read.
    DocumentTooLarge,
    /// A document named in `job.toml` is not there.
    DocumentMissing,
    /// A document cannot be read, or changed while it was read.
    DocumentUnreadable,
    /// A document the PDF checks refused.
    Pdf(pdf::PdfError),
}

impl RejectionCode {
    /// The short code, as logs, receipts and `reason.txt` name it.
    pub fn as_str(&self) -> &'static str {
        match self {
            RejectionCode::NotAJobDirectory => "not-a-job-directory",
            RejectionCode::JobUnreadable => "job-unreadable",
            RejectionCode::ManifestMissing => "manifest-missing",
            RejectionCode::ManifestUnreadable => "manifest-unreadable",
            RejectionCode::ManifestNotUtf8 => "manifest-not-utf8",
            RejectionCode::ManifestInvalid => "manifest-invalid",
            RejectionCode::UnknownKommunkod => "unknown-kommunkod",
            RejectionCode::UnexpectedFile => "unexpected-file",
            RejectionCode::Symlink => "symlink",
            RejectionCode::NotARegularFile => "not-a-regular-file",
            RejectionCode::DocumentTooLarge => "pdf-too-large",
            RejectionCode::DocumentMissing => "document-missing",
            RejectionCode::DocumentUnreadable => "document-unreadable",
            RejectionCode::Pdf(e) => e.code(),
        }
    }
}

/// Why a job is quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// What kind of reason.
    pub code: RejectionCode,
    /// One sentence without personal data or file names: for logs, status and receipts.
    pub summary: String,
    /// What a person should know to fix it: may name files in the job.
    pub detail: String,
}

impl Rejection {
    fn new(code: RejectionCode, summary: impl Into<String>, detail: impl Into<String>) -> Self {
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
            RejectionCode::ManifestMissing
                | RejectionCode::ManifestInvalid
                | RejectionCode::ManifestNotUtf8
                | RejectionCode::DocumentMissing
                | RejectionCode::UnexpectedFile
                | RejectionCode::Pdf(
                    pdf::PdfError::Damaged(_) | pdf::PdfError::NotPdf | pdf::PdfError::NoPages
                )
        )
    }

    /// The text of `reason.txt`.
    pub fn reason_text(&self, job_id: &str) -> String {
        reason_text(job_id, self.code.as_str(), &self.summary, &self.detail)
    }
}

/// The text of `reason.txt` for a job quarantined for `code` (also one recovered after a
/// crash, whose code the store kept).
pub fn reason_text(job_id: &str, code: &str, summary: &str, detail: &str) -> String {
    format!(
        "kurir quarantined this job (job id {job_id}).\n\n\
         Reason ({code}): {summary}\n{detail}\n\n\
         What to do: correct the job and submit it again as a new job \
         (build it under spool/tmp/, then rename it into spool/incoming/, or use \
         `kurir submit`). Nothing in this folder was changed or deleted by kurir.\n",
    )
}

/// The rejection for an entry in `incoming/` that is not a directory.
pub fn not_a_directory(kind: &str) -> Rejection {
    Rejection::new(
        RejectionCode::NotAJobDirectory,
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
                RejectionCode::ManifestMissing,
                "the job has no job.toml",
                "Every job directory must contain job.toml (see the spool contract in README).",
            ),
            other => Rejection::new(
                RejectionCode::ManifestUnreadable,
                format!("job.toml {other}"),
                format!("job.toml {other}."),
            ),
        })?;
    let text = String::from_utf8(manifest_bytes).map_err(|_| {
        Rejection::new(
            RejectionCode::ManifestNotUtf8,
            "job.toml is not UTF-8 text",
            "Save job.toml as UTF-8.",
        )
    })?;
    let manifest = Manifest::parse(&text, limits.max_documents).map_err(|e| {
        Rejection::new(RejectionCode::ManifestInvalid, e.to_string(), e.to_string())
    })?;

    for (code, _) in manifest.recipients() {
        seed.require(code).map_err(|e| {
            Rejection::new(
                RejectionCode::UnknownKommunkod,
                e.to_string(),
                e.to_string(),
            )
        })?;
    }

    let named: Vec<&str> = manifest.documents.iter().map(|d| d.file.as_str()).collect();
    let unexpected: Vec<&String> = entries
        .iter()
        .filter(|e| e.as_str() != "job.toml" && !named.contains(&e.as_str()))
        .collect();
    if !unexpected.is_empty() {
        return Err(Rejection::new(
            RejectionCode::UnexpectedFile,
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
                    ReadError::Symlink => RejectionCode::Symlink,
                    ReadError::NotRegular => RejectionCode::NotARegularFile,
                    ReadError::TooLarge { .. } => RejectionCode::DocumentTooLarge,
                    ReadError::Missing => RejectionCode::DocumentMissing,
                    ReadError::Io(_) | ReadError::Changed => RejectionCode::DocumentUnreadable,
                };
                Rejection::new(
                    code,
                    format!("document {index} ({}) {e}", doc.kind),
                    format!("Document {index}, file {:?}, {e}.", doc.file),
                )
            })?;
        let summary = pdf::validate(&bytes, &limits.pdf).map_err(|e| {
            Rejection::new(
                RejectionCode::Pdf(e.clone()),
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
            RejectionCode::JobUnreadable,
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
                RejectionCode::Symlink,
                "the job contains a symbolic link; links are not followed",
                format!("Entry {name:?} is a symbolic link. Copy the file into the job instead."),
            ));
        }
        if !file_type.is_file() {
            return Err(Rejection::new(
                RejectionCode::NotARegularFile,
                "the job contains an entry that is not a regular file",
                format!("Entry {name:?} is a directory, FIFO, socket or device."),
            ));
        }
        names.push(name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_a_writer_still_busy_leaves_may_be_incomplete_and_each_code_keeps_its_name() {
        let rejection = |code| Rejection::new(code, "", "");
        let cut = RejectionCode::Pdf(pdf::PdfError::Damaged("no %%EOF".into()));
        assert!(rejection(cut.clone()).may_be_incomplete());
        assert_eq!(cut.as_str(), "pdf-damaged");
        for hostile in [
            RejectionCode::Pdf(pdf::PdfError::Encrypted),
            RejectionCode::Pdf(pdf::PdfError::Bomb { limit: 1 }),
            RejectionCode::Symlink,
            RejectionCode::UnknownKommunkod,
        ] {
            assert!(
                !rejection(hostile.clone()).may_be_incomplete(),
                "{hostile:?}"
            );
        }
        // A job recovered after a crash is explained with the code the store kept.
        assert!(reason_text("j", "pdf-encrypted", "s", "").contains("Reason (pdf-encrypted): s"));
    }
}
