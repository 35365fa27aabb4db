//! Drafts as the desk and the daemon speak of them: a draft's id, what it holds, and why one
//! could not be made or sent. The drafts themselves live in the daemon's spool
//! (`kurir::intake::draft`); the desk keeps nothing.

use serde::{Deserialize, Serialize};

use crate::job::DocumentKind;
use crate::pdf::PdfError;

/// Unsent drafts one person may have at a time: each holds up to a desk upload of PDFs in the
/// spool, and a person checks one decision at a time.
pub const MAX_DRAFTS_PER_PERSON: usize = 5;

/// A draft's id: 32 hex digits, random, and nothing else (it names a folder).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DraftId(String);

impl DraftId {
    /// A new random id.
    pub fn generate() -> Result<DraftId, DraftError> {
        let mut bytes = [0u8; 16];
        openssl::rand::rand_bytes(&mut bytes).map_err(|e| DraftError::Write(e.to_string()))?;
        Ok(DraftId(crate::digest::hex(&bytes)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DraftId {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        if text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(DraftId(text.to_ascii_lowercase()))
        } else {
            Err("a draft id is 32 hex digits".into())
        }
    }
}

impl From<DraftId> for String {
    fn from(id: DraftId) -> String {
        id.0
    }
}

/// Why a draft could not be made or sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "kebab-case")]
pub enum DraftError {
    /// A document was refused, as `kurir submit` would refuse it.
    #[error("{kind}: {problem}")]
    Document {
        /// Which document.
        kind: DocumentKind,
        /// Why.
        problem: PdfError,
    },
    /// No anvisningsbeslut: a decision needs one.
    #[error("the anvisningsbeslut is missing")]
    NoDecision,
    /// The draft is gone: sent already, swept, or never there.
    #[error("the draft is gone (sent already, or older than an hour)")]
    Gone,
    /// The draft belongs to someone else.
    #[error("the draft belongs to someone else")]
    NotYours,
    /// The person has [`MAX_DRAFTS_PER_PERSON`] unsent drafts already.
    #[error("{MAX_DRAFTS_PER_PERSON} unsent drafts already: send or let them lapse (an hour)")]
    TooMany,
    /// The spool could not be written.
    #[error("writing the draft: {0}")]
    Write(String),
}

/// What the desk's check of a decision found: ready to send, or what must be fixed first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DraftOutcome {
    /// Checked and kept as a draft: how it will go.
    Ready(Box<crate::reply::DraftPreview>),
    /// Everything that must be fixed, and the documents that passed, kept.
    NeedsFixing(DraftFixes),
}

/// What must be fixed before a decision can be drafted, and what was kept meanwhile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DraftFixes {
    /// Every problem found, in the form's order.
    pub problems: Vec<DraftProblem>,
    /// The documents that passed, kept for the next try (`None`: none passed).
    pub kept: Option<DraftId>,
    /// What is kept.
    pub documents: Vec<DraftDocument>,
}

/// One thing that keeps a decision from being drafted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "problem")]
pub enum DraftProblem {
    /// No municipality was named (or none that exists).
    Municipality,
    /// The case number is not `xx-xxxxxx`.
    CaseNumber,
    /// A copy cannot go to the assigned municipality itself.
    CopyToAssigned,
    /// No anvisningsbeslut was chosen.
    NoDecision,
    /// A document was refused, as `kurir submit` would refuse it.
    Document {
        /// Which document.
        kind: DocumentKind,
        /// Why.
        reason: PdfError,
    },
}

/// What a draft holds, for the confirmation page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftDocument {
    /// Which document.
    pub kind: DocumentKind,
    /// Pages.
    pub pages: u32,
    /// SHA-256 of the file.
    pub sha256: String,
    /// The file's name as the person uploaded it (shown back to them; empty if none).
    #[serde(default)]
    pub name: String,
}
