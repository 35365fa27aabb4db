//! Why a document is refused: the PDF validator's verdicts (in the core's `pdf` module), as
//! values every surface words itself — the command line in English, the desk in Swedish.

/// Active content a decision must not carry, by kind (each surface words it).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error,
)]
#[serde(rename_all = "kebab-case")]
pub enum ActiveContent {
    /// JavaScript.
    #[error("JavaScript")]
    JavaScript,
    /// A Launch action.
    #[error("a Launch action (starts a program)")]
    Launch,
    /// A form submission or data import action.
    #[error("a form submission action")]
    FormSubmission,
    /// An action that opens embedded content.
    #[error("an embedded-content action")]
    EmbeddedContentAction,
    /// An embedded file.
    #[error("an embedded file")]
    EmbeddedFile,
    /// An embedded file or rich media annotation.
    #[error("an embedded file or rich media")]
    RichMedia,
    /// An XFA form.
    #[error("an XFA form")]
    XfaForm,
}

/// Why a document is refused. Messages never quote the document's content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[serde(rename_all = "kebab-case")]
pub enum PdfError {
    /// Over the size limit.
    #[error("the file is {size} bytes; at most {max} bytes are accepted")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Does not start like a PDF.
    #[error("the file is not a PDF (it does not start with %PDF-)")]
    NotPdf,
    /// Damaged, truncated or half-written: lopdf could not parse it, had to repair it, or
    /// what it read is not a complete, renderable document. The text says what is wrong in
    /// words a case officer understands.
    #[error("damaged PDF: {0}")]
    Damaged(String),
    /// Encrypted or password-protected.
    #[error(
        "the PDF is encrypted or password-protected; send it unencrypted (the channel protects it)"
    )]
    Encrypted,
    /// No pages.
    #[error("the PDF has no pages")]
    NoPages,
    /// Too many pages.
    #[error("the PDF has {pages} pages; at most {max} are accepted")]
    TooManyPages {
        /// Its page count.
        pages: usize,
        /// The limit.
        max: usize,
    },
    /// Active content that a reader could execute or that could smuggle files.
    #[error("the PDF contains {0}, which is not allowed in a decision; export it again as plain PDF (PDF/A)")]
    ActiveContent(ActiveContent),
    /// A stream inflates past the bound: a decompression bomb or an absurd document.
    #[error(
        "the PDF's compressed content inflates to more than {limit} bytes (decompression bomb?)"
    )]
    Bomb {
        /// The bound that was hit.
        limit: u64,
    },
}

impl PdfError {
    /// Short machine-readable reason for logs, status and receipts.
    pub fn code(&self) -> &'static str {
        match self {
            PdfError::TooLarge { .. } => "pdf-too-large",
            PdfError::NotPdf => "pdf-not-a-pdf",
            PdfError::Damaged(_) => "pdf-damaged",
            PdfError::Encrypted => "pdf-encrypted",
            PdfError::NoPages => "pdf-no-pages",
            PdfError::TooManyPages { .. } => "pdf-too-many-pages",
            PdfError::ActiveContent(_) => "pdf-active-content",
            PdfError::Bomb { .. } => "pdf-decompression-bomb",
        }
    }
}
