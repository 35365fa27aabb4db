//! Synthetic PDFs for tests and examples: real files made with lopdf, no personal data.
#![allow(dead_code)]

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Document, Object, Stream, StringFormat};

/// A PDF with one page per entry of `pages`, each showing its text lines in Helvetica.
pub fn text_pdf(pages: &[&[&str]]) -> Vec<u8> {
    build_text_pdf(pages, true)
}

/// [`text_pdf`] with its streams left uncompressed, so that every byte offset in it means
/// something (where a cut falls: in the page tree, a font, the page's content).
pub fn plain_text_pdf(pages: &[&[&str]]) -> Vec<u8> {
    build_text_pdf(pages, false)
}

fn build_text_pdf(pages: &[&[&str]], compress: bool) -> Vec<u8> {
    let mut doc = Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let font = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font } });
    let mut kids = Vec::new();
    for lines in pages {
        let mut ops = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 12.into()]),
            Operation::new("Td", vec![72.into(), 760.into()]),
            Operation::new("TL", vec![16.into()]),
        ];
        for line in *lines {
            let encoding = lopdf::Encoding::SimpleEncoding(b"WinAnsiEncoding");
            let bytes = Document::encode_text(&encoding, line);
            ops.push(Operation::new(
                "Tj",
                vec![Object::String(bytes, StringFormat::Literal)],
            ));
            ops.push(Operation::new("T*", vec![]));
        }
        ops.push(Operation::new("ET", vec![]));
        let content = Content { operations: ops };
        let content_id = doc.add_object(Stream::new(
            dictionary! {},
            content.encode().expect("content encodes"),
        ));
        let page = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
        });
        kids.push(page.into());
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => count, "Resources" => resources,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    if compress {
        doc.compress();
    }
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("pdf saves");
    out
}

/// A synthetic anvisningsbeslut, marked so tests can find its pages in a letter.
pub fn beslut(marker: &str) -> Vec<u8> {
    text_pdf(&[
        &[
            "ANVISNINGSBESLUT (syntetiskt testdokument)",
            marker,
            "Sida 1",
        ],
        &["ANVISNINGSBESLUT fortsättning", marker, "Sida 2"],
    ])
}

/// A synthetic anmälan om behov av god man.
pub fn god_man(marker: &str) -> Vec<u8> {
    text_pdf(&[&[
        "ANMÄLAN OM BEHOV AV GOD MAN (syntetiskt testdokument)",
        marker,
    ]])
}
