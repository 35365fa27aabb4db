//! The print letter: a cover page for a window envelope followed by the job's documents.
//!
//! The cover page is drawn with the PDF standard font Helvetica in WinAnsiEncoding, which has
//! å, ä and ö, so no font file is embedded. The documents are appended unchanged: each one's page
//! tree becomes a subtree of the letter's, so inherited page attributes (media box, resources,
//! rotation) stay exactly as their author made them.

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Dictionary, Document, Object, ObjectId, Stream, StringFormat};

use crate::config::{SenderSettings, WindowSettings};
use crate::job::DocumentKind;
use crate::pdf::{self, PdfError, PdfLimits};

/// Points per millimetre.
const MM: f64 = 72.0 / 25.4;
/// A4 in points.
const PAGE_W: f64 = 595.276;
const PAGE_H: f64 = 841.89;

/// Who the letter is for, as printed in the window.
#[derive(Debug, Clone)]
pub struct Addressee {
    /// First line: the municipality's name.
    pub name: String,
    /// Further lines: department, c/o, street, postnummer and postort.
    pub lines: Vec<String>,
}

/// Everything a cover page says.
#[derive(Debug, Clone)]
pub struct CoverLetter<'a> {
    /// Sender and contact.
    pub sender: &'a SenderSettings,
    /// Window position.
    pub window: &'a WindowSettings,
    /// Recipient.
    pub to: Addressee,
    /// The job id: the letter's only reference.
    pub reference: &'a str,
    /// Date line, `YYYY-MM-DD`.
    pub date: String,
    /// For a copy: the assigned municipality's name.
    pub copy_of: Option<String>,
    /// The enclosed documents with their page counts, in order.
    pub enclosures: Vec<(DocumentKind, u32)>,
}

/// A finished letter.
#[derive(Debug, Clone)]
pub struct Letter {
    /// The PDF.
    pub bytes: Vec<u8>,
    /// Total pages, cover included.
    pub pages: u32,
}

/// Why a letter could not be made. The documents were validated before, so this means a
/// document lopdf accepted once cannot be merged: a defect to look at, not bad input.
#[derive(Debug, thiserror::Error)]
pub enum LetterError {
    /// A document no longer loads.
    #[error("document {index}: {source}")]
    Document {
        /// 1-based position.
        index: usize,
        /// Why.
        source: PdfError,
    },
    /// A document has no page tree root.
    #[error("document {0} has no page tree")]
    NoPageTree(usize),
    /// Writing the PDF failed.
    #[error("writing the letter: {0}")]
    Write(#[from] std::io::Error),
    /// lopdf refused an operation.
    #[error("building the letter: {0}")]
    Pdf(#[from] lopdf::Error),
}

/// Builds the letter: cover page, then each document in order.
pub fn build(
    cover: &CoverLetter<'_>,
    documents: &[&[u8]],
    limits: &PdfLimits,
) -> Result<Letter, LetterError> {
    let mut out = Document::with_version("1.7");
    let pages_id = out.new_object_id();
    let cover_id = add_cover_page(&mut out, pages_id, cover)?;
    let mut kids: Vec<Object> = vec![cover_id.into()];
    let mut count: i64 = 1;

    for (i, bytes) in documents.iter().enumerate() {
        let mut doc = pdf::load(bytes, limits).map_err(|source| LetterError::Document {
            index: i + 1,
            source,
        })?;
        doc.renumber_objects_with(out.max_id + 1);
        let catalog_id = doc
            .trailer
            .get(b"Root")
            .and_then(Object::as_reference)
            .map_err(|_| LetterError::NoPageTree(i + 1))?;
        let root_pages = doc
            .get_dictionary(catalog_id)
            .and_then(|c| c.get(b"Pages"))
            .and_then(Object::as_reference)
            .map_err(|_| LetterError::NoPageTree(i + 1))?;
        let pages = doc.get_pages().len() as i64;
        doc.get_dictionary_mut(root_pages)?.set("Parent", pages_id);
        doc.objects.remove(&catalog_id);
        out.max_id = out.max_id.max(doc.max_id);
        out.objects.extend(doc.objects);
        kids.push(root_pages.into());
        count += pages;
    }

    out.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }),
    );
    let catalog_id = out.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    out.trailer.set("Root", catalog_id);
    let info_id = out.add_object(dictionary! {
        "Producer" => Object::string_literal("kurir"),
        "Title" => Object::string_literal(format!("Ref {}", cover.reference)),
    });
    out.trailer.set("Info", info_id);
    out.prune_objects();
    // Only the cover page's stream is compressed (where it is made): the documents go in as
    // they came. Compressing their streams again bought nothing for already compressed ones
    // and cost most of a letter's CPU for raw images (deflate over every byte).
    let mut bytes = Vec::new();
    out.save_to(&mut bytes)?;
    Ok(Letter {
        bytes,
        pages: u32::try_from(count).unwrap_or(u32::MAX),
    })
}

fn font(base: &str) -> Dictionary {
    dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => base, "Encoding" => "WinAnsiEncoding",
    }
}

fn add_cover_page(
    doc: &mut Document,
    parent: ObjectId,
    cover: &CoverLetter<'_>,
) -> Result<ObjectId, LetterError> {
    let mut text = TextWriter::default();
    let s = cover.sender;
    let left = 20.0 * MM;
    let right_col = 125.0 * MM;
    let top = |mm: f64| PAGE_H - mm * MM;

    // Letterhead and reference block.
    text.line(Font::Bold, 14.0, left, top(20.0), &s.name);
    text.line(Font::Regular, 10.0, left, top(20.0) - 14.0, &s.unit);
    text.line(
        Font::Regular,
        10.0,
        right_col,
        top(20.0),
        &format!("Datum: {}", cover.date),
    );
    text.line(
        Font::Regular,
        10.0,
        right_col,
        top(20.0) - 13.0,
        &format!("Referens: {}", cover.reference),
    );

    // The window: a small return-address line, then the recipient.
    let w = cover.window;
    let field_left = w.left_mm * MM;
    let field_width = w.width_mm * MM;
    let field_top = top(w.top_mm);
    let return_line = format!("{}, {}, {} {}", s.name, s.street, s.postnummer, s.postort);
    text.fitted_line(
        Font::Regular,
        7.0,
        field_left,
        field_top - 9.0,
        field_width,
        &return_line,
    );
    let mut y = field_top - 9.0 - 18.0;
    let lines =
        std::iter::once(cover.to.name.as_str()).chain(cover.to.lines.iter().map(String::as_str));
    for line in lines {
        text.fitted_line(Font::Regular, 10.5, field_left, y, field_width, line);
        y -= 13.0;
    }

    // Body.
    let mut y = top(105.0);
    let body_width = PAGE_W - 2.0 * left;
    text.line(
        Font::Bold,
        12.0,
        left,
        y,
        "Handlingar från Migrationsverket",
    );
    y -= 22.0;
    if let Some(assigned) = &cover.copy_of {
        y = text.paragraph(
            Font::Bold,
            10.5,
            left,
            y,
            body_width,
            &format!("Kopia för kännedom. Anvisad kommun är {assigned}."),
        );
        y -= 8.0;
    }
    y = text.paragraph(Font::Regular, 10.5, left, y, body_width, "Bifogat finns:");
    for (kind, pages) in &cover.enclosures {
        let unit = if *pages == 1 { "sida" } else { "sidor" };
        y = text.paragraph(
            Font::Regular,
            10.5,
            left + 12.0,
            y,
            body_width - 12.0,
            &format!("– {} ({pages} {unit})", kind.swedish_title()),
        );
    }
    y -= 8.0;
    if cover.copy_of.is_none() {
        y = text.paragraph(
            Font::Regular,
            10.5,
            left,
            y,
            body_width,
            "Kommunen har anvisats att ta emot ett ensamkommande barn. Ansvaret övergår till \
             kommunen i samband med anvisningen. Anmälan om behov av god man ska utan dröjsmål \
             lämnas till överförmyndaren.",
        );
        y -= 8.0;
    }
    text.paragraph(
        Font::Regular,
        10.5,
        left,
        y,
        body_width,
        &format!(
            "Frågor besvaras av {} på telefon {} ({}) eller e-post {}. Ange referens {}.",
            s.unit, s.phone, s.phone_hours, s.email, cover.reference
        ),
    );
    text.line(
        Font::Regular,
        8.0,
        left,
        15.0 * MM,
        &format!(
            "{} · {} · {} · {} {}",
            s.name, s.unit, s.street, s.postnummer, s.postort
        ),
    );

    let content = Content {
        operations: text.ops,
    };
    let mut stream = Stream::new(dictionary! {}, content.encode()?);
    stream.compress()?;
    let content_id = doc.add_object(stream);
    let regular = doc.add_object(font("Helvetica"));
    let bold = doc.add_object(font("Helvetica-Bold"));
    let resources = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => regular, "F2" => bold },
    });
    Ok(doc.add_object(dictionary! {
        "Type" => "Page",
        "Parent" => parent,
        "MediaBox" => vec![0.into(), 0.into(), Object::Real(PAGE_W as f32), Object::Real(PAGE_H as f32)],
        "Contents" => content_id,
        "Resources" => resources,
    }))
}

#[derive(Clone, Copy)]
enum Font {
    Regular,
    Bold,
}

impl Font {
    fn resource(self) -> &'static str {
        match self {
            Font::Regular => "F1",
            Font::Bold => "F2",
        }
    }
}

/// Collects text-drawing operations.
#[derive(Default)]
struct TextWriter {
    ops: Vec<Operation>,
}

impl TextWriter {
    fn line(&mut self, font: Font, size: f64, x: f64, y: f64, text: &str) {
        self.ops.push(Operation::new("BT", vec![]));
        self.ops.push(Operation::new(
            "Tf",
            vec![font.resource().into(), Object::Real(size as f32)],
        ));
        self.ops.push(Operation::new(
            "Td",
            vec![Object::Real(x as f32), Object::Real(y as f32)],
        ));
        self.ops.push(Operation::new(
            "Tj",
            vec![Object::String(win_ansi(text), StringFormat::Literal)],
        ));
        self.ops.push(Operation::new("ET", vec![]));
    }

    /// One line that must fit `width`: the font shrinks (down to 7 pt) rather than overflow
    /// the envelope window; beyond that the line is cut.
    fn fitted_line(&mut self, font: Font, size: f64, x: f64, y: f64, width: f64, text: &str) {
        let mut size = size;
        while size > 7.0 && text_width(text, size, font) > width {
            size -= 0.5;
        }
        let mut shown: String = text.to_string();
        while text_width(&shown, size, font) > width && !shown.is_empty() {
            shown.pop();
        }
        self.line(font, size, x, y, &shown);
    }

    /// Word-wrapped text; returns the y below the last line.
    fn paragraph(&mut self, font: Font, size: f64, x: f64, y: f64, width: f64, text: &str) -> f64 {
        let mut y = y;
        let mut current = String::new();
        for word in text.split_whitespace() {
            let candidate = if current.is_empty() {
                word.to_string()
            } else {
                format!("{current} {word}")
            };
            if text_width(&candidate, size, font) > width && !current.is_empty() {
                self.line(font, size, x, y, &current);
                y -= size * 1.35;
                current = word.to_string();
            } else {
                current = candidate;
            }
        }
        if !current.is_empty() {
            self.line(font, size, x, y, &current);
            y -= size * 1.35;
        }
        y
    }
}

/// Text in WinAnsiEncoding; characters it cannot show become `?` rather than vanish.
fn win_ansi(text: &str) -> Vec<u8> {
    let encoding = lopdf::Encoding::SimpleEncoding(b"WinAnsiEncoding");
    let mut out = Vec::with_capacity(text.len());
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let encoded = Document::encode_text(&encoding, c.encode_utf8(&mut buf));
        if encoded.is_empty() {
            out.push(b'?');
        } else {
            out.extend_from_slice(&encoded);
        }
    }
    out
}

/// Helvetica advance widths (per 1000 em) for ASCII 32..=126, from the standard AFM.
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667,
    611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500,
    222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];

fn char_width(c: char) -> u16 {
    match c {
        ' '..='~' => HELVETICA[c as usize - 32],
        'å' | 'ä' | 'é' | 'ü' => 556,
        'ö' => 556,
        'Å' | 'Ä' => 667,
        'Ö' | 'Ü' => 778,
        '–' => 556,
        '·' => 278,
        _ => 600,
    }
}

/// Approximate rendered width in points (bold is about 5 % wider than regular).
fn text_width(text: &str, size: f64, font: Font) -> f64 {
    let units: u32 = text.chars().map(|c| u32::from(char_width(c))).sum();
    let factor = match font {
        Font::Regular => 1.0,
        Font::Bold => 1.06,
    };
    f64::from(units) * size / 1000.0 * factor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swedish_letters_encode_as_single_win_ansi_bytes() {
        assert_eq!(win_ansi("åäöÅÄÖ"), vec![0xe5, 0xe4, 0xf6, 0xc5, 0xc4, 0xd6]);
        assert_eq!(win_ansi("ł"), b"?".to_vec());
    }

    #[test]
    fn letter_has_cover_plus_document_pages() {
        let sender = SenderSettings::default();
        let window = WindowSettings::default();
        let doc = crate::pdf::tests::simple_pdf(None);
        let cover = CoverLetter {
            sender: &sender,
            window: &window,
            to: Addressee {
                name: "Umeå kommun".into(),
                lines: vec!["Skolgatan 31A".into(), "901 84 Umeå".into()],
            },
            reference: "20261122-141005-3f9a2c1b7e04",
            date: "2026-11-22".into(),
            copy_of: None,
            enclosures: vec![
                (DocumentKind::Anvisningsbeslut, 1),
                (DocumentKind::GodMan, 1),
            ],
        };
        let letter = build(&cover, &[&doc, &doc], &crate::pdf::tests::limits()).expect("built");
        assert_eq!(letter.pages, 3);
        let again = Document::load_mem(&letter.bytes).expect("reloads");
        assert_eq!(again.get_pages().len(), 3);
    }
}
