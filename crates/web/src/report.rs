//! Documents kurir lays out itself, such as the receipt for the case file: A4 pages of a
//! title, headings, paragraphs and labelled rows in an embedded font (DejaVu Sans), wrapped
//! with the font's real advance widths so å, ä, ö, long addresses and 64-digit hashes fit.
//! krilla writes the PDF: it subsets and embeds the font and maps every glyph back to its
//! text, so the receipt can be searched and copied (`pdftotext` reads it).

use std::sync::Arc;

use krilla::geom::Point;
use krilla::page::PageSettings;
use krilla::text::{Font, TextDirection};
use krilla::Document;

/// DejaVu Sans, regular and bold (Bitstream Vera licence: `src/pdf/fonts/LICENSE`).
const REGULAR: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");
const BOLD: &[u8] = include_bytes!("fonts/DejaVuSans-Bold.ttf");

/// A4 in points.
const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN_X: f32 = 56.0;
const MARGIN_TOP: f32 = 56.0;
const MARGIN_BOTTOM: f32 = 64.0;
/// The label column of a [`Block::Row`].
const LABEL_W: f32 = 150.0;

/// One piece of a report, in reading order.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// The document's title (once, at the top).
    Title(String),
    /// A section heading.
    Heading(String),
    /// The sentence a reader needs first, under the title (a little larger than text).
    Lead(String),
    /// A paragraph; line breaks in it are kept.
    Text(String),
    /// A label and its value beside it (the value wraps in its column).
    Row(String, String),
    /// Small print (a note under a section).
    Small(String),
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The embedded font could not be read (a build defect).
    #[error("the embedded font cannot be read")]
    Font,
    /// krilla could not write the document.
    #[error("writing the PDF: {0}")]
    Write(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Weight {
    Regular,
    Bold,
}

/// A font for drawing and its metrics for measuring.
struct Face {
    font: Font,
    metrics: ttf_parser::Face<'static>,
}

impl Face {
    fn load(bytes: &'static [u8]) -> Result<Face, ReportError> {
        Ok(Face {
            font: Font::new(Arc::new(bytes.to_vec()).into(), 0).ok_or(ReportError::Font)?,
            metrics: ttf_parser::Face::parse(bytes, 0).map_err(|_| ReportError::Font)?,
        })
    }

    /// The advance width of `text` at `size`, from the font's own tables.
    fn width(&self, text: &str, size: f32) -> f32 {
        let per_unit = size / f32::from(self.metrics.units_per_em());
        text.chars()
            .map(|c| {
                self.metrics
                    .glyph_index(c)
                    .and_then(|g| self.metrics.glyph_hor_advance(g))
                    .or_else(|| {
                        self.metrics
                            .glyph_index('?')
                            .and_then(|g| self.metrics.glyph_hor_advance(g))
                    })
                    .map_or(0.0, f32::from)
            })
            .sum::<f32>()
            * per_unit
    }

    /// `text` broken into lines no wider than `width`: at spaces, and inside a word only when
    /// the word alone is wider (a hash, a long address).
    fn wrap(&self, text: &str, size: f32, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let mut line = String::new();
            for word in paragraph.split_whitespace() {
                let candidate = if line.is_empty() {
                    word.to_string()
                } else {
                    format!("{line} {word}")
                };
                if self.width(&candidate, size) <= width {
                    line = candidate;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                // The word alone: split it where it no longer fits.
                for c in word.chars() {
                    let mut next = line.clone();
                    next.push(c);
                    if self.width(&next, size) > width && !line.is_empty() {
                        lines.push(std::mem::take(&mut line));
                        line.push(c);
                    } else {
                        line = next;
                    }
                }
            }
            lines.push(line);
        }
        lines
    }
}

/// One line placed on a page: where, how, what.
struct Placed {
    x: f32,
    baseline: f32,
    size: f32,
    weight: Weight,
    text: String,
}

/// Lays `blocks` out on A4 pages and writes the PDF, titled `title` (Swedish), with "Sida n av
/// m" at the foot of each page.
pub fn render(title: &str, blocks: &[Block]) -> Result<Vec<u8>, ReportError> {
    let regular = Face::load(REGULAR)?;
    let bold = Face::load(BOLD)?;
    let face = |w: Weight| if w == Weight::Bold { &bold } else { &regular };
    let text_w = PAGE_W - 2.0 * MARGIN_X;
    let bottom = PAGE_H - MARGIN_BOTTOM;

    let mut pages: Vec<Vec<Placed>> = vec![Vec::new()];
    let mut y = MARGIN_TOP;
    // Places lines, breaking the page first when they would not fit.
    let place = |pages: &mut Vec<Vec<Placed>>,
                 y: &mut f32,
                 lines: Vec<(f32, f32, Weight, String)>,
                 before: f32,
                 keep_together: bool| {
        let height: f32 = lines.iter().map(|(_, s, _, _)| s * 1.4).sum::<f32>() + before;
        if keep_together && *y + height > bottom && *y > MARGIN_TOP {
            pages.push(Vec::new());
            *y = MARGIN_TOP;
        }
        *y += before;
        for (x, size, weight, text) in lines {
            if *y + size * 1.4 > bottom {
                pages.push(Vec::new());
                *y = MARGIN_TOP;
            }
            *y += size * 1.4;
            if let Some(page) = pages.last_mut() {
                page.push(Placed {
                    x,
                    baseline: *y - size * 0.35,
                    size,
                    weight,
                    text,
                });
            }
        }
    };
    for block in blocks {
        match block {
            Block::Title(text) => {
                let lines = bold
                    .wrap(text, 16.0, text_w)
                    .into_iter()
                    .map(|l| (MARGIN_X, 16.0, Weight::Bold, l))
                    .collect();
                place(&mut pages, &mut y, lines, 0.0, true);
            }
            Block::Heading(text) => {
                let lines = bold
                    .wrap(text, 12.0, text_w)
                    .into_iter()
                    .map(|l| (MARGIN_X, 12.0, Weight::Bold, l))
                    .collect();
                place(&mut pages, &mut y, lines, 10.0, true);
            }
            Block::Text(text) | Block::Small(text) | Block::Lead(text) => {
                let size = match block {
                    Block::Small(_) => 8.5,
                    Block::Lead(_) => 11.5,
                    _ => 10.0,
                };
                let lines = regular
                    .wrap(text, size, text_w)
                    .into_iter()
                    .map(|l| (MARGIN_X, size, Weight::Regular, l))
                    .collect();
                place(&mut pages, &mut y, lines, 2.0, false);
            }
            Block::Row(label, value) => {
                let labels = bold.wrap(label, 9.0, LABEL_W - 8.0);
                let values = regular.wrap(value, 10.0, text_w - LABEL_W);
                let rows = (0..labels.len().max(values.len()))
                    .map(|i| (labels.get(i).cloned(), values.get(i).cloned()))
                    .collect();
                place_row(&mut pages, &mut y, rows, bottom);
            }
        }
    }

    let mut document = Document::new();
    document.set_metadata(
        krilla::metadata::Metadata::new()
            .title(title.to_string())
            .language("sv".to_string())
            .creator("kurir".to_string()),
    );
    let total = pages.len();
    for (n, placed) in pages.iter().enumerate() {
        let settings = PageSettings::from_wh(PAGE_W, PAGE_H).ok_or(ReportError::Font)?;
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        for p in placed {
            surface.draw_text(
                Point::from_xy(p.x, p.baseline),
                face(p.weight).font.clone(),
                p.size,
                &p.text,
                false,
                TextDirection::Auto,
            );
        }
        let footer = format!("{title} – sida {} av {total}", n + 1);
        surface.draw_text(
            Point::from_xy(MARGIN_X, PAGE_H - MARGIN_BOTTOM / 2.0),
            regular.font.clone(),
            8.0,
            &footer,
            false,
            TextDirection::Auto,
        );
        surface.finish();
        page.finish();
    }
    document
        .finish()
        .map_err(|e| ReportError::Write(format!("{e:?}")))
}

/// Places a row's lines: each line a label part and a value part on one baseline.
fn place_row(
    pages: &mut Vec<Vec<Placed>>,
    y: &mut f32,
    lines: Vec<(Option<String>, Option<String>)>,
    bottom: f32,
) {
    const LINE: f32 = 10.0 * 1.35;
    *y += 1.0;
    for (label, value) in lines {
        if *y + LINE > bottom {
            pages.push(Vec::new());
            *y = MARGIN_TOP;
        }
        *y += LINE;
        let baseline = *y - 3.5;
        let Some(page) = pages.last_mut() else {
            return;
        };
        if let Some(text) = label {
            page.push(Placed {
                x: MARGIN_X,
                baseline,
                size: 9.0,
                weight: Weight::Bold,
                text,
            });
        }
        if let Some(text) = value {
            page.push(Placed {
                x: MARGIN_X + LABEL_W,
                baseline,
                size: 10.0,
                weight: Weight::Regular,
                text,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_hash_wraps_inside_the_value_column_and_swedish_letters_measure() {
        let face = Face::load(REGULAR).expect("font");
        let hash = "a".repeat(64);
        let lines = face.wrap(&hash, 10.0, PAGE_W - 2.0 * MARGIN_X - LABEL_W);
        assert!(lines.len() >= 2, "{lines:?}");
        for line in &lines {
            assert!(face.width(line, 10.0) <= PAGE_W - 2.0 * MARGIN_X - LABEL_W + 0.01);
        }
        assert!(face.width("åäö ÅÄÖ", 10.0) > face.width("aao AAO", 10.0) * 0.9);
        assert_eq!(
            face.wrap("Skolgatan 31A\n901 84 Umeå", 10.0, 400.0),
            vec!["Skolgatan 31A".to_string(), "901 84 Umeå".to_string()]
        );
    }

    #[test]
    fn a_report_is_a_pdf_that_breaks_onto_new_pages() {
        let mut blocks = vec![Block::Title("Kvitto för akten".into())];
        for i in 0..120 {
            blocks.push(Block::Row(
                format!("Rad {i}"),
                "värde med å, ä och ö".into(),
            ));
        }
        let pdf = render("Kvitto", &blocks).expect("pdf");
        assert!(pdf.starts_with(b"%PDF-"));
        let doc = lopdf::Document::load_mem(&pdf).expect("lopdf reads it");
        assert!(doc.get_pages().len() >= 3);
    }
}
