//! PDF validation: is a document safe to print and to send to a municipality?
//!
//! A document is accepted only if lopdf can parse it, it has pages, it is not encrypted, it
//! carries no active content (JavaScript, launch actions, embedded files, form submission, XFA),
//! and none of its streams inflates past the configured bound. Hostile input must fail here with
//! a reason, never later in a deliverer or in a print shop's RIP.

use lopdf::{Document, LoadOptions, Object};

/// How far validation lets a document go.
#[derive(Debug, Clone, Copy)]
pub struct PdfLimits {
    /// Largest file in bytes.
    pub max_bytes: u64,
    /// Most pages.
    pub max_pages: usize,
    /// Most bytes all streams together may inflate to.
    pub max_decompressed_bytes: u64,
}

impl PdfLimits {
    /// The limits of the `[spool]` settings.
    pub fn from_settings(spool: &crate::config::SpoolSettings) -> Self {
        PdfLimits {
            max_bytes: spool.max_pdf_bytes,
            max_pages: spool.max_pages,
            max_decompressed_bytes: spool.max_decompressed_bytes,
        }
    }
}

/// Why a document is refused. Messages never quote the document's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    /// lopdf could not parse it: damaged, truncated or half-written.
    #[error("the PDF cannot be read (damaged, truncated or still being written): {0}")]
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
    ActiveContent(&'static str),
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

/// What validation learned about an acceptable document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfSummary {
    /// Page count.
    pub pages: u32,
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
}

/// Loads a PDF with the decompression bound in force. Used by validation and by the letter
/// builder, which reads the documents again after they were accepted.
pub fn load(bytes: &[u8], limits: &PdfLimits) -> Result<Document, PdfError> {
    let per_stream = usize::try_from(limits.max_decompressed_bytes).unwrap_or(usize::MAX);
    let options = LoadOptions {
        max_decompressed_size: Some(per_stream),
        ..LoadOptions::default()
    };
    Document::load_mem_with_options(bytes, options).map_err(|e| {
        let text = e.to_string();
        if matches!(
            e,
            lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. })
        ) || (text.contains("limit") && text.contains("bomb"))
        {
            PdfError::Bomb {
                limit: limits.max_decompressed_bytes,
            }
        } else if has_encrypt_entry(bytes) {
            PdfError::Encrypted
        } else {
            PdfError::Damaged(first_line(&text))
        }
    })
}

/// Checks a document against every rule; returns its page count and hash.
pub fn validate(bytes: &[u8], limits: &PdfLimits) -> Result<PdfSummary, PdfError> {
    let size = bytes.len() as u64;
    if size > limits.max_bytes {
        return Err(PdfError::TooLarge {
            size,
            max: limits.max_bytes,
        });
    }
    let head = &bytes[..bytes.len().min(1024)];
    if !head.windows(5).any(|w| w == b"%PDF-") {
        return Err(PdfError::NotPdf);
    }
    let doc = load(bytes, limits)?;
    if doc.is_encrypted() || doc.was_encrypted() || doc.trailer.get(b"Encrypt").is_ok() {
        return Err(PdfError::Encrypted);
    }
    check_active_content(&doc)?;
    check_inflation(&doc, limits.max_decompressed_bytes)?;
    let pages = doc.get_pages().len();
    if pages == 0 {
        return Err(PdfError::NoPages);
    }
    if pages > limits.max_pages {
        return Err(PdfError::TooManyPages {
            pages,
            max: limits.max_pages,
        });
    }
    Ok(PdfSummary {
        pages: u32::try_from(pages).unwrap_or(u32::MAX),
        sha256: sha256_hex(bytes),
    })
}

/// SHA-256 as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let digest = openssl::sha::sha256(bytes);
    // One buffer rather than a String per byte: this runs for every document and message.
    let mut hex = String::with_capacity(2 * digest.len());
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

/// A damaged file may still say it is encrypted; an encrypted one must be reported as such.
fn has_encrypt_entry(bytes: &[u8]) -> bool {
    bytes.windows(8).any(|w| w == b"/Encrypt")
}

fn name_is(obj: Option<&Object>, names: &[&[u8]]) -> bool {
    matches!(obj, Some(Object::Name(n)) if names.contains(&n.as_slice()))
}

/// Looks at every dictionary (including stream dictionaries, dictionaries nested inside others
/// and objects that were inside object streams) for the keys and action types that carry
/// active content.
fn check_active_content(doc: &Document) -> Result<(), PdfError> {
    for object in doc.objects.values() {
        check_object(object, 0)?;
    }
    Ok(())
}

/// Deepest nesting of direct objects followed; deeper structures are refused as damaged.
const MAX_NESTING: usize = 64;

fn check_object(object: &Object, depth: usize) -> Result<(), PdfError> {
    if depth > MAX_NESTING {
        return Err(PdfError::Damaged("objects nested too deeply".into()));
    }
    match object {
        Object::Dictionary(d) => check_dictionary(d, depth),
        Object::Stream(s) => check_dictionary(&s.dict, depth),
        Object::Array(items) => items.iter().try_for_each(|o| check_object(o, depth + 1)),
        _ => Ok(()),
    }
}

fn check_dictionary(dict: &lopdf::Dictionary, depth: usize) -> Result<(), PdfError> {
    if dict.has(b"JS") || dict.has(b"JavaScript") {
        return Err(PdfError::ActiveContent("JavaScript"));
    }
    let action = dict.get(b"S").ok();
    if name_is(action, &[b"JavaScript"]) {
        return Err(PdfError::ActiveContent("JavaScript"));
    }
    if name_is(action, &[b"Launch"]) {
        return Err(PdfError::ActiveContent(
            "a Launch action (starts a program)",
        ));
    }
    if name_is(action, &[b"SubmitForm", b"ImportData"]) {
        return Err(PdfError::ActiveContent("a form submission action"));
    }
    if name_is(action, &[b"GoToE", b"RichMediaExecute", b"Rendition"]) {
        return Err(PdfError::ActiveContent("an embedded-content action"));
    }
    if dict.has(b"EmbeddedFiles")
        || dict.has(b"EF")
        || name_is(dict.get(b"Type").ok(), &[b"EmbeddedFile"])
    {
        return Err(PdfError::ActiveContent("an embedded file"));
    }
    if name_is(
        dict.get(b"Subtype").ok(),
        &[b"RichMedia", b"FileAttachment"],
    ) {
        return Err(PdfError::ActiveContent("an embedded file or rich media"));
    }
    if dict.has(b"XFA") {
        return Err(PdfError::ActiveContent("an XFA form"));
    }
    dict.iter()
        .try_for_each(|(_, value)| check_object(value, depth + 1))
}

/// Filters whose output size we can bound by decoding; image codecs are left to the printer.
const GENERAL_FILTERS: &[&[u8]] = &[
    b"FlateDecode",
    b"Fl",
    b"LZWDecode",
    b"LZW",
    b"ASCIIHexDecode",
    b"AHx",
    b"ASCII85Decode",
    b"A85",
    b"RunLengthDecode",
    b"RL",
];

/// Inflates every generally compressed stream with a shrinking budget, so that no single stream
/// and not all of them together can exceed `max_total` bytes.
fn check_inflation(doc: &Document, max_total: u64) -> Result<(), PdfError> {
    let mut remaining = max_total;
    for object in doc.objects.values() {
        let Object::Stream(stream) = object else {
            continue;
        };
        let filters = stream.filters().unwrap_or_default();
        if filters.is_empty() || !filters.iter().all(|f| GENERAL_FILTERS.contains(&&f[..])) {
            continue;
        }
        let budget = usize::try_from(remaining).unwrap_or(usize::MAX);
        match stream.decompressed_content_with_limit(budget) {
            Ok(content) => {
                remaining = remaining.saturating_sub(content.len() as u64);
            }
            Err(lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded {
                ..
            })) => return Err(PdfError::Bomb { limit: max_total }),
            Err(e) => {
                return Err(PdfError::Damaged(format!(
                    "a compressed stream cannot be decoded: {}",
                    first_line(&e.to_string())
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use lopdf::{dictionary, Stream};

    pub(crate) fn limits() -> PdfLimits {
        PdfLimits {
            max_bytes: 1_000_000,
            max_pages: 50,
            max_decompressed_bytes: 1_000_000,
        }
    }

    #[test]
    fn sha256_is_lower_case_hex_of_the_digest() {
        // FIPS 180-2's example for "abc".
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    /// A one-page PDF; `extra` may add a key to the catalog.
    pub(crate) fn simple_pdf(extra: Option<(&str, Object)>) -> Vec<u8> {
        let mut doc = Document::with_version("1.7");
        let pages_id = doc.new_object_id();
        let content = doc.add_object(Stream::new(dictionary! {}, b"BT ET".to_vec()));
        let page = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        });
        doc.objects.insert(
            pages_id,
            Object::Dictionary(
                dictionary! { "Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1 },
            ),
        );
        let mut catalog = dictionary! { "Type" => "Catalog", "Pages" => pages_id };
        if let Some((k, v)) = extra {
            catalog.set(k, v);
        }
        let catalog_id = doc.add_object(catalog);
        doc.trailer.set("Root", catalog_id);
        let mut out = Vec::new();
        doc.save_to(&mut out).expect("save");
        out
    }

    #[test]
    fn a_plain_pdf_is_accepted() {
        let summary = validate(&simple_pdf(None), &limits()).expect("valid");
        assert_eq!(summary.pages, 1);
        assert_eq!(summary.sha256.len(), 64);
    }

    #[test]
    fn javascript_open_action_is_refused() {
        let js =
            dictionary! { "S" => "JavaScript", "JS" => Object::string_literal("app.alert(1)") };
        let err =
            validate(&simple_pdf(Some(("OpenAction", js.into()))), &limits()).expect_err("refused");
        assert_eq!(err.code(), "pdf-active-content");
    }

    #[test]
    fn launch_action_is_refused() {
        let launch = dictionary! { "S" => "Launch", "F" => Object::string_literal("cmd.exe") };
        let err = validate(&simple_pdf(Some(("OpenAction", launch.into()))), &limits())
            .expect_err("refused");
        assert!(err.to_string().contains("Launch"), "{err}");
    }

    #[test]
    fn embedded_files_are_refused() {
        let names =
            dictionary! { "EmbeddedFiles" => dictionary! { "Names" => Vec::<Object>::new() } };
        let err =
            validate(&simple_pdf(Some(("Names", names.into()))), &limits()).expect_err("refused");
        assert!(err.to_string().contains("embedded file"), "{err}");
    }

    #[test]
    fn garbage_and_truncation_are_refused() {
        assert_eq!(
            validate(b"hello world", &limits()).expect_err("refused"),
            PdfError::NotPdf
        );
        let pdf = simple_pdf(None);
        let half = &pdf[..pdf.len() / 3];
        let err = validate(half, &limits()).expect_err("refused");
        assert!(
            matches!(err, PdfError::Damaged(_) | PdfError::NoPages),
            "{err:?}"
        );
    }

    #[test]
    fn oversize_is_refused_before_parsing() {
        let small = PdfLimits {
            max_bytes: 10,
            ..limits()
        };
        assert!(matches!(
            validate(&simple_pdf(None), &small),
            Err(PdfError::TooLarge { .. })
        ));
    }
}
