//! PDF validation: is a document safe to print and to send to a municipality? (The receipt
//! the desk lays out itself is the web programs' own: `kurir_web::report`.)
//!
//! A document is accepted only if it is complete (it ends with `%%EOF` and its cross-reference
//! data resolves without being rebuilt), every leaf of its page tree is a real page whose
//! content decodes, the tree's `/Count` agrees with what it holds, it is not encrypted, it
//! carries no active content (JavaScript, launch actions, embedded files, form submission, XFA),
//! and none of its streams inflates past the configured bound. Hostile or damaged input must
//! fail here with a reason, never later in a deliverer or in a print shop's RIP: a decision
//! that arrives as an empty page is as bad as one that never arrives.

use lopdf::{Document, LoadOptions, Object};

pub use kurir_protocol::pdf::{ActiveContent, PdfError};

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
    let doc = Document::load_mem_with_options(bytes, options).map_err(|e| {
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
            PdfError::Damaged(format!("it cannot be read ({})", first_line(&text)))
        }
    })?;
    // lopdf rebuilds a lost cross-reference table by scanning for objects, silently; what it
    // finds that way may lack pages or hold an older revision. Such a file is damaged.
    if doc.xref_recovery == Some(lopdf::xref::XrefRecovery::Reconstructed) {
        return Err(PdfError::Damaged(
            "its cross-reference table is missing or broken, so parts of it may be lost \
             (the file is truncated or damaged)"
                .into(),
        ));
    }
    Ok(doc)
}

/// PDF white space (ISO 32000-1, 7.2.2), which may follow the final `%%EOF`.
fn is_pdf_whitespace(b: u8) -> bool {
    matches!(b, b'\0' | b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// A complete PDF ends with `%%EOF`: a file that does not was cut off or is still being
/// written, whatever a lenient parser makes of it.
fn check_complete(bytes: &[u8]) -> Result<(), PdfError> {
    let end = bytes
        .iter()
        .rposition(|&b| !is_pdf_whitespace(b))
        .map_or(0, |last| last + 1);
    if bytes[..end].ends_with(b"%%EOF") {
        Ok(())
    } else {
        Err(PdfError::Damaged(
            "the file is cut off: it does not end with %%EOF (truncated, or still being \
             written)"
                .into(),
        ))
    }
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
    if let Err(damaged) = check_complete(bytes) {
        // A cut-off encrypted file is still best reported as encrypted.
        return Err(if has_encrypt_entry(bytes) {
            PdfError::Encrypted
        } else {
            damaged
        });
    }
    let doc = load(bytes, limits)?;
    if doc.is_encrypted() || doc.was_encrypted() || doc.trailer.get(b"Encrypt").is_ok() {
        return Err(PdfError::Encrypted);
    }
    check_active_content(&doc)?;
    check_inflation(&doc, limits.max_decompressed_bytes)?;
    let pages = count_pages(&doc, limits.max_pages)?;
    Ok(PdfSummary {
        pages: u32::try_from(pages).unwrap_or(u32::MAX),
        sha256: crate::digest::sha256_hex(bytes),
    })
}

/// Deepest page tree followed; real documents nest a few levels.
const MAX_TREE_DEPTH: usize = 32;

/// Counts the pages by walking the page tree from the catalog, the way a viewer or a printer
/// finds them: every leaf must be a `/Page` whose content streams are in the file, and every
/// node's `/Count` must agree with the leaves below it. Stops past `max_pages`.
fn count_pages(doc: &Document, max_pages: usize) -> Result<usize, PdfError> {
    let damaged = |what: String| PdfError::Damaged(what);
    let root = doc
        .catalog()
        .ok()
        .and_then(|catalog| catalog.get(b"Pages").ok())
        .and_then(|pages| pages.as_reference().ok())
        .ok_or_else(|| damaged("it has no page tree (the catalog names no pages)".into()))?;
    let mut walk = PageWalk {
        doc,
        max_pages,
        pages: 0,
        seen: std::collections::BTreeSet::new(),
    };
    walk.node(root, 0)?;
    if walk.pages == 0 {
        return Err(PdfError::NoPages);
    }
    Ok(walk.pages)
}

/// State of one walk of a page tree.
struct PageWalk<'a> {
    doc: &'a Document,
    max_pages: usize,
    pages: usize,
    seen: std::collections::BTreeSet<lopdf::ObjectId>,
}

impl PageWalk<'_> {
    /// Walks the node `id`; returns the number of pages below it.
    fn node(&mut self, id: lopdf::ObjectId, depth: usize) -> Result<usize, PdfError> {
        let page_no = self.pages + 1;
        if depth > MAX_TREE_DEPTH || !self.seen.insert(id) {
            return Err(PdfError::Damaged(
                "its page tree loops back on itself or is nested too deeply".into(),
            ));
        }
        let dict = match self.doc.get_object(id) {
            Ok(Object::Dictionary(dict)) => dict,
            Ok(_) => {
                return Err(PdfError::Damaged(format!(
                    "page {page_no} is not a page (the page tree points at another kind of object)"
                )))
            }
            Err(_) => {
                return Err(PdfError::Damaged(format!(
                "page {page_no} is missing: the page tree names an object that is not in the file"
            )))
            }
        };
        let kind = dict.get(b"Type").ok().and_then(|t| t.as_name().ok());
        let kids = dict.get(b"Kids").ok();
        match (kind, kids) {
            (Some(b"Pages"), Some(kids)) | (None, Some(kids)) => {
                let kids = kids.as_array().map_err(|_| {
                    PdfError::Damaged("its page tree is broken (/Kids is not a list)".into())
                })?;
                let mut below = 0;
                for kid in kids {
                    let kid = kid.as_reference().map_err(|_| {
                        PdfError::Damaged(format!(
                            "page {} is broken: the page tree holds something that is not a \
                             reference to a page",
                            self.pages + 1
                        ))
                    })?;
                    below += self.node(kid, depth + 1)?;
                }
                let count = dict.get(b"Count").ok().and_then(|c| c.as_i64().ok());
                if count != i64::try_from(below).ok() {
                    return Err(PdfError::Damaged(format!(
                        "its page tree says it holds {} page(s) but {below} are there",
                        count.map_or_else(|| "no number of".to_string(), |c| c.to_string())
                    )));
                }
                Ok(below)
            }
            (Some(b"Page"), _) | (None, None) => {
                self.page(dict, page_no)?;
                self.pages += 1;
                if self.pages > self.max_pages {
                    return Err(PdfError::TooManyPages {
                        pages: self.pages,
                        max: self.max_pages,
                    });
                }
                Ok(1)
            }
            _ => Err(PdfError::Damaged(format!(
                "page {page_no} is not a page (the page tree points at another kind of object)"
            ))),
        }
    }

    /// A page's content streams must be in the file and use only the general filters, which
    /// [`check_inflation`] has decoded within the budget. A page without content is blank,
    /// which is allowed.
    fn page(&self, page: &lopdf::Dictionary, page_no: usize) -> Result<(), PdfError> {
        let Ok(contents) = page.get(b"Contents") else {
            return Ok(());
        };
        let refs: Vec<&Object> = match contents {
            Object::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for content in refs {
            let stream = match content {
                Object::Reference(id) => self.doc.get_object(*id).ok(),
                direct => Some(direct),
            };
            let Some(Object::Stream(stream)) = stream else {
                return Err(PdfError::Damaged(format!(
                    "the content of page {page_no} is missing from the file"
                )));
            };
            let filters = stream.filters().unwrap_or_default();
            if !filters.iter().all(|f| GENERAL_FILTERS.contains(&&f[..])) {
                return Err(PdfError::Damaged(format!(
                    "the content of page {page_no} is stored in a form that cannot be decoded"
                )));
            }
        }
        Ok(())
    }
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
        return Err(PdfError::ActiveContent(ActiveContent::JavaScript));
    }
    let action = dict.get(b"S").ok();
    if name_is(action, &[b"JavaScript"]) {
        return Err(PdfError::ActiveContent(ActiveContent::JavaScript));
    }
    if name_is(action, &[b"Launch"]) {
        return Err(PdfError::ActiveContent(ActiveContent::Launch));
    }
    if name_is(action, &[b"SubmitForm", b"ImportData"]) {
        return Err(PdfError::ActiveContent(ActiveContent::FormSubmission));
    }
    if name_is(action, &[b"GoToE", b"RichMediaExecute", b"Rendition"]) {
        return Err(PdfError::ActiveContent(
            ActiveContent::EmbeddedContentAction,
        ));
    }
    if dict.has(b"EmbeddedFiles")
        || dict.has(b"EF")
        || name_is(dict.get(b"Type").ok(), &[b"EmbeddedFile"])
    {
        return Err(PdfError::ActiveContent(ActiveContent::EmbeddedFile));
    }
    if name_is(
        dict.get(b"Subtype").ok(),
        &[b"RichMedia", b"FileAttachment"],
    ) {
        return Err(PdfError::ActiveContent(ActiveContent::RichMedia));
    }
    if dict.has(b"XFA") {
        return Err(PdfError::ActiveContent(ActiveContent::XfaForm));
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
        // lopdf decodes a corrupt Flate stream leniently, as whatever came out before the
        // error (often nothing: a blank page). The common single-Flate stream is counted
        // through flate2 directly, which reports the corruption, without keeping the output.
        if filters.len() == 1 && matches!(filters[0], b"FlateDecode" | b"Fl") {
            remaining =
                remaining.saturating_sub(inflate_strictly(&stream.content, remaining, max_total)?);
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

/// Inflates a zlib stream into nothing, counting its bytes: refuses it when it is corrupt or
/// cut short, or when it inflates past `budget` (what is left of `max_total`).
fn inflate_strictly(compressed: &[u8], budget: u64, max_total: u64) -> Result<u64, PdfError> {
    let decoder = flate2::read::ZlibDecoder::new(compressed);
    let mut bounded = std::io::Read::take(decoder, budget.saturating_add(1));
    match std::io::copy(&mut bounded, &mut std::io::sink()) {
        Ok(n) if n > budget => Err(PdfError::Bomb { limit: max_total }),
        Ok(n) => Ok(n),
        Err(e) => Err(PdfError::Damaged(format!(
            "a compressed stream cannot be decoded: {}",
            first_line(&e.to_string())
        ))),
    }
}

#[cfg(test)]
pub(crate) mod tests;
