//! Domain types of a job as writers hand it over: the job id, the kommunkod, the case number and
//! the `job.toml` manifest of the spool contract.
//!
//! Parsing is strict (unknown keys are an error) because a typo in a manifest must stop the job
//! with a reason, not silently drop a copy recipient or a document.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a value given by a writer or an operator is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A kommunkod is four digits.
    #[error("kommunkod must be four digits (e.g. 2480), got {0:?}")]
    Kommunkod(String),
    /// A case number (dossiernummer) is written `xx-xxxxxx`. The value itself is not repeated.
    #[error("case number must be written as two digits, a hyphen and six digits (xx-xxxxxx)")]
    CaseNumber,
    /// A job id as kurir makes them.
    #[error("not a job id: {0:?} (expected e.g. 20261122-141005-3f9a2c1b7e04)")]
    JobId(String),
    /// A document kind outside the two the agency sends.
    #[error("unknown document kind {0:?}: expected \"anvisningsbeslut\" or \"god-man\"")]
    DocumentKind(String),
}

/// A job's identity: created at submission, used in every log line, file name, receipt, letter
/// reference and Message-ID. It carries no personal data, so it can go anywhere.
///
/// Format `YYYYMMDD-HHMMSS-xxxxxxxxxxxx` (UTC time of creation, 48 random bits in hex): sorts
/// by creation time and is safe as a file name. 48 bits keep collisions negligible even for a
/// burst of thousands of jobs in one second (32 bits collided in a benchmark of a million).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

impl JobId {
    /// Makes a new id from the current time and fresh randomness.
    pub fn generate() -> Self {
        static COUNTER: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
        let now = jiff::Timestamp::now();
        let mut random = [0u8; 6];
        // openssl's CSPRNG; if it ever fails, fall back to the clock's nanoseconds and a
        // per-process counter, which still keeps ids of one process apart.
        if openssl::rand::rand_bytes(&mut random).is_err() {
            let nanos = now.subsec_nanosecond().to_be_bytes();
            let count = COUNTER
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .to_be_bytes();
            random = [nanos[0], nanos[1], nanos[2], nanos[3], count[0], count[1]];
        }
        let stamp = now.strftime("%Y%m%d-%H%M%S");
        JobId(format!("{stamp}-{}", crate::digest::hex(&random)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for JobId {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        let b = s.as_bytes();
        let ok = b.len() == 28
            && b[8] == b'-'
            && b[15] == b'-'
            && b[..8].iter().all(u8::is_ascii_digit)
            && b[9..15].iter().all(u8::is_ascii_digit)
            && b[16..]
                .iter()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
        if ok {
            Ok(JobId(s))
        } else {
            Err(ParseError::JobId(s))
        }
    }
}

impl std::str::FromStr for JobId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        JobId::try_from(s.to_string())
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> String {
        id.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A municipality's four-digit code from SCB; the first two digits are the county (län).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Kommunkod([u8; 4]);

impl Kommunkod {
    /// The code as text, e.g. `"2480"`.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("????")
    }
}

impl TryFrom<String> for Kommunkod {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        s.parse()
    }
}

impl std::str::FromStr for Kommunkod {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let b = s.as_bytes();
        if b.len() == 4 && b.iter().all(u8::is_ascii_digit) {
            Ok(Kommunkod([b[0], b[1], b[2], b[3]]))
        } else {
            Err(ParseError::Kommunkod(s.chars().take(16).collect()))
        }
    }
}

impl From<Kommunkod> for String {
    fn from(k: Kommunkod) -> String {
        k.as_str().to_string()
    }
}

impl fmt::Display for Kommunkod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kommunkoder as a history, an alert or a log line names them: `2480, 0180`.
pub fn join_kommunkoder(codes: &[Kommunkod]) -> String {
    codes
        .iter()
        .map(Kommunkod::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The case number (dossiernummer, `xx-xxxxxx`). It identifies a child, so it is personal data:
/// its `Debug` and `Display` print a placeholder, and kurir never stores or logs it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct CaseNumber(String);

impl CaseNumber {
    /// The real value, for the one place that needs it: writing `job.toml`.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CaseNumber {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        s.parse()
    }
}

impl std::str::FromStr for CaseNumber {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let b = s.as_bytes();
        let ok = b.len() == 9
            && b[2] == b'-'
            && b[..2].iter().all(u8::is_ascii_digit)
            && b[3..].iter().all(u8::is_ascii_digit);
        if ok {
            Ok(CaseNumber(s.to_string()))
        } else {
            Err(ParseError::CaseNumber)
        }
    }
}

impl fmt::Debug for CaseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CaseNumber(<redacted>)")
    }
}

/// Which of the two documents a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DocumentKind {
    /// Anvisningsbeslut: the decision assigning the municipality (LMA 3 § andra stycket).
    #[serde(rename = "anvisningsbeslut")]
    Anvisningsbeslut,
    /// Anmälan om behov av god man: notice that the child needs a legal guardian.
    #[serde(rename = "god-man")]
    GodMan,
}

impl DocumentKind {
    /// The spool and file-name spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            DocumentKind::Anvisningsbeslut => "anvisningsbeslut",
            DocumentKind::GodMan => "god-man",
        }
    }

    /// How the document is named to a Swedish reader.
    pub fn swedish_title(&self) -> &'static str {
        match self {
            DocumentKind::Anvisningsbeslut => "Anvisningsbeslut",
            DocumentKind::GodMan => "Anmälan om behov av god man",
        }
    }
}

impl std::str::FromStr for DocumentKind {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "anvisningsbeslut" => Ok(DocumentKind::Anvisningsbeslut),
            "god-man" => Ok(DocumentKind::GodMan),
            other => Err(ParseError::DocumentKind(other.chars().take(32).collect())),
        }
    }
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `job.toml`: what a writer asks kurir to deliver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The assigned municipality (anvisningskommun).
    pub to: Kommunkod,
    /// The case number; checked for form, then dropped.
    pub case: CaseNumber,
    /// Municipalities that get an informational copy, e.g. the arrival municipality.
    #[serde(default)]
    pub copy_to: Vec<Kommunkod>,
    /// The documents, in the order they are to be read.
    #[serde(rename = "document")]
    pub documents: Vec<ManifestDocument>,
    /// The case system's own identifier of this submission: a job whose key kurir has seen
    /// is not sent again (it is answered with the first job). Letters, digits, `.`, `_`, `:`
    /// and `-`, at most 100; never logged (the store keeps its SHA-256 only).
    #[serde(default)]
    pub submission_key: Option<String>,
}

/// Checks a submission key's form.
pub fn check_submission_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 100
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The SHA-256 (hex) under which the store knows a submission key.
pub fn submission_digest(key: &str) -> String {
    crate::digest::sha256_hex(format!("kurir-submission:{key}").as_bytes())
}

/// One `[[document]]` entry of `job.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestDocument {
    /// Which document it is.
    pub kind: DocumentKind,
    /// The file's name inside the job directory.
    pub file: String,
}

/// Why a `job.toml` is not acceptable. Messages never quote the file's content, which may hold
/// personal data: they name the key or the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not TOML, or not the shape of the spool contract.
    #[error("job.toml does not follow the spool contract: {0}")]
    Syntax(String),
    /// No `[[document]]`.
    #[error("job.toml names no document")]
    NoDocuments,
    /// Too many documents.
    #[error("job.toml names {count} documents; at most {max} are accepted")]
    TooManyDocuments {
        /// How many were named.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A file name that could leave the job directory or is otherwise unsafe.
    #[error("document file name #{index} is not allowed: use letters, digits, '.', '-' and '_' only, ending in .pdf, at most 100 characters")]
    UnsafeFileName {
        /// 1-based position of the document.
        index: usize,
    },
    /// The same file named twice.
    #[error("document #{index} names the same file as an earlier document")]
    DuplicateFile {
        /// 1-based position of the document.
        index: usize,
    },
    /// The same municipality twice among recipients.
    #[error("kommunkod {0} appears more than once among `to` and `copy_to`")]
    DuplicateRecipient(Kommunkod),
    /// A submission key of the wrong form.
    #[error("submission_key must be 1 to 100 letters, digits, '.', '_', ':' or '-'")]
    SubmissionKey,
}

impl Manifest {
    /// Parses and checks `job.toml` text.
    pub fn parse(text: &str, max_documents: usize) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = toml::from_str(text)
            .map_err(|e| ManifestError::Syntax(describe_toml_error(&e, text)))?;
        manifest.check(max_documents)?;
        Ok(manifest)
    }

    fn check(&self, max_documents: usize) -> Result<(), ManifestError> {
        if self.documents.is_empty() {
            return Err(ManifestError::NoDocuments);
        }
        if self.documents.len() > max_documents {
            return Err(ManifestError::TooManyDocuments {
                count: self.documents.len(),
                max: max_documents,
            });
        }
        for (i, doc) in self.documents.iter().enumerate() {
            if !is_safe_file_name(&doc.file) {
                return Err(ManifestError::UnsafeFileName { index: i + 1 });
            }
            if self.documents[..i].iter().any(|d| d.file == doc.file) {
                return Err(ManifestError::DuplicateFile { index: i + 1 });
            }
        }
        if self
            .submission_key
            .as_deref()
            .is_some_and(|k| !check_submission_key(k))
        {
            return Err(ManifestError::SubmissionKey);
        }
        let mut seen = vec![self.to];
        for code in &self.copy_to {
            if seen.contains(code) {
                return Err(ManifestError::DuplicateRecipient(*code));
            }
            seen.push(*code);
        }
        Ok(())
    }

    /// All recipients, the assigned municipality first.
    pub fn recipients(&self) -> Vec<(Kommunkod, RecipientRole)> {
        std::iter::once((self.to, RecipientRole::Assigned))
            .chain(self.copy_to.iter().map(|c| (*c, RecipientRole::Copy)))
            .collect()
    }

    /// Writes the manifest as `job.toml` text, the only place the case number is written.
    pub fn to_toml(&self) -> String {
        let mut out = format!("to = \"{}\"\ncase = \"{}\"\n", self.to, self.case.expose());
        if !self.copy_to.is_empty() {
            let list: Vec<String> = self.copy_to.iter().map(|c| format!("\"{c}\"")).collect();
            out.push_str(&format!("copy_to = [{}]\n", list.join(", ")));
        }
        if let Some(key) = &self.submission_key {
            out.push_str(&format!("submission_key = \"{key}\"\n"));
        }
        for doc in &self.documents {
            out.push_str(&format!(
                "\n[[document]]\nkind = \"{}\"\nfile = \"{}\"\n",
                doc.kind, doc.file
            ));
        }
        out
    }
}

/// Why a municipality gets a job's documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecipientRole {
    /// The assigned municipality (anvisningskommun): the one responsible for the child.
    Assigned,
    /// An informational copy (for kännedom), e.g. to the arrival municipality.
    Copy,
}

/// A file name a job may use: no path separators, no leading dot, a plain ASCII set, `.pdf`.
pub fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name.to_ascii_lowercase().ends_with(".pdf")
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-' || c == b'_')
}

/// A TOML error without the source excerpt and without quoted values (either could carry the
/// case number): the rule that was broken and the line it was broken on.
fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let mut message = e.message().trim().to_string();
    if message.starts_with("invalid type") || message.starts_with("invalid value") {
        message = strip_backtick_spans(&message);
    }
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("{message} (line {line})")
        }
        None => message,
    }
}

/// Removes `` `quoted` `` values from a serde message, keeping the words around them.
fn strip_backtick_spans(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for c in message.chars() {
        if c == '`' {
            inside = !inside;
            continue;
        }
        if !inside {
            out.push(c);
        }
    }
    out.replace("  ", " ").replace(" ,", ",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
to = "2480"
case = "12-345678"
copy_to = ["0180"]
[[document]]
kind = "anvisningsbeslut"
file = "beslut.pdf"
[[document]]
kind = "god-man"
file = "godman.pdf"
"#;

    #[test]
    fn parses_the_contract_example() {
        let m = Manifest::parse(GOOD, 10).expect("valid");
        assert_eq!(m.to.as_str(), "2480");
        assert_eq!(m.copy_to.len(), 1);
        assert_eq!(m.documents[1].kind, DocumentKind::GodMan);
        assert_eq!(m.recipients()[1].1, RecipientRole::Copy);
    }

    #[test]
    fn round_trips_through_to_toml() {
        let m = Manifest::parse(GOOD, 10).expect("valid");
        let again = Manifest::parse(&m.to_toml(), 10).expect("round trip");
        assert_eq!(again.to, m.to);
        assert_eq!(again.case, m.case);
        assert_eq!(again.documents.len(), 2);
    }

    #[test]
    fn unknown_key_is_rejected_by_name() {
        let text = GOOD.replace("copy_to", "kopia");
        let err = Manifest::parse(&text, 10).expect_err("unknown key");
        assert!(err.to_string().contains("kopia"), "{err}");
    }

    #[test]
    fn bad_case_number_error_does_not_repeat_the_value() {
        let text = GOOD.replace("12-345678", "12-34567X");
        let err = Manifest::parse(&text, 10).expect_err("bad case");
        let msg = err.to_string();
        assert!(!msg.contains("34567"), "{msg}");
        assert!(msg.contains("xx-xxxxxx"), "{msg}");
    }

    #[test]
    fn wrong_type_error_does_not_quote_the_value() {
        let text = GOOD.replace("\"12-345678\"", "12345678");
        let msg = Manifest::parse(&text, 10)
            .expect_err("wrong type")
            .to_string();
        assert!(!msg.contains("12345678"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn unsafe_file_names_are_rejected() {
        for name in ["../x.pdf", "a/b.pdf", ".hidden.pdf", "x.exe", "", "å.pdf"] {
            assert!(!is_safe_file_name(name), "{name}");
        }
        assert!(is_safe_file_name("Beslut_2024-01.PDF"));
    }

    #[test]
    fn duplicate_recipient_and_file_are_rejected() {
        let text = GOOD.replace("[\"0180\"]", "[\"2480\"]");
        assert!(matches!(
            Manifest::parse(&text, 10),
            Err(ManifestError::DuplicateRecipient(_))
        ));
        let text = GOOD.replace("godman.pdf", "beslut.pdf");
        assert!(matches!(
            Manifest::parse(&text, 10),
            Err(ManifestError::DuplicateFile { index: 2 })
        ));
        assert!(matches!(
            Manifest::parse(GOOD, 1),
            Err(ManifestError::TooManyDocuments { .. })
        ));
    }

    #[test]
    fn job_ids_are_generated_valid_and_distinct() {
        let a = JobId::generate();
        let b = JobId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().parse::<JobId>().expect("parses"), a);
        assert!("2026-11-22".parse::<JobId>().is_err());
    }

    #[test]
    fn a_burst_of_ids_within_a_second_does_not_collide() {
        let ids: std::collections::HashSet<JobId> =
            (0..100_000).map(|_| JobId::generate()).collect();
        assert_eq!(ids.len(), 100_000);
    }

    #[test]
    fn case_number_debug_is_redacted() {
        let c: CaseNumber = "12-345678".parse().expect("valid");
        assert!(!format!("{c:?}").contains("345678"));
        assert!("1-2345678".parse::<CaseNumber>().is_err());
    }
}
