//! Tests of the PDF checks, and the small PDFs other modules' tests build on.

use super::*;
use lopdf::{dictionary, Stream};

pub(crate) fn limits() -> PdfLimits {
    PdfLimits {
        max_bytes: 1_000_000,
        max_pages: 50,
        max_decompressed_bytes: 1_000_000,
    }
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
    let js = dictionary! { "S" => "JavaScript", "JS" => Object::string_literal("app.alert(1)") };
    let err =
        validate(&simple_pdf(Some(("OpenAction", js.into()))), &limits()).expect_err("refused");
    assert_eq!(err.code(), "pdf-active-content");
}

#[test]
fn launch_action_is_refused() {
    let launch = dictionary! { "S" => "Launch", "F" => Object::string_literal("cmd.exe") };
    let err =
        validate(&simple_pdf(Some(("OpenAction", launch.into()))), &limits()).expect_err("refused");
    assert!(err.to_string().contains("Launch"), "{err}");
}

#[test]
fn embedded_files_are_refused() {
    let names = dictionary! { "EmbeddedFiles" => dictionary! { "Names" => Vec::<Object>::new() } };
    let err = validate(&simple_pdf(Some(("Names", names.into()))), &limits()).expect_err("refused");
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

/// A one-page PDF written out by hand, uncompressed, with a classic cross-reference table:
/// the shape of the file in which a cut after 300 bytes went out as a stub page.
pub(crate) fn hand_written_pdf() -> Vec<u8> {
    let content = "BT /F1 24 Tf 72 720 Td (ANVISNINGSBESLUT syntetiskt testdokument) Tj ET\n\
                       BT /F1 12 Tf 72 690 Td (Sida 1 av 1) Tj ET";
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [5 0 R] /Count 1 >>".to_string(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
        format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len() + 1
        ),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] \
             /Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>"
            .to_string(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn damaged(bytes: &[u8]) -> String {
    match validate(bytes, &limits()) {
        Err(PdfError::Damaged(why)) => why,
        other => panic!("expected a damaged PDF, got {other:?}"),
    }
}

#[test]
fn the_hand_written_pdf_is_accepted_whole() {
    let summary = validate(&hand_written_pdf(), &limits()).expect("valid");
    assert_eq!(summary.pages, 1);
}

#[test]
fn the_first_300_bytes_of_a_one_page_pdf_are_refused_as_cut_off() {
    let pdf = hand_written_pdf();
    let why = damaged(&pdf[..300]);
    assert!(why.contains("cut off"), "{why}");
    let err = validate(&pdf[..300], &limits()).expect_err("refused");
    assert!(err.to_string().starts_with("damaged PDF: "), "{err}");
}

#[test]
fn a_pdf_cut_anywhere_is_refused() {
    for pdf in [hand_written_pdf(), simple_pdf(None)] {
        for percent in [10, 50, 90, 99] {
            let cut = pdf.len() * percent / 100;
            damaged(&pdf[..cut]);
        }
    }
}

#[test]
fn trailing_white_space_after_eof_is_allowed_and_a_missing_eof_line_is_not() {
    let mut pdf = hand_written_pdf();
    pdf.extend_from_slice(b"\r\n \0\n");
    assert!(validate(&pdf, &limits()).is_ok());
    let whole = hand_written_pdf();
    let without_eof = &whole[..whole.len() - b"%%EOF\n".len()];
    assert!(damaged(without_eof).contains("%%EOF"));
}

#[test]
fn a_lost_cross_reference_table_is_refused_even_though_lopdf_can_rebuild_it() {
    let pdf = hand_written_pdf();
    let text = String::from_utf8(pdf).expect("ascii");
    let xref = text.find("xref\n0 6").expect("xref");
    let broken = format!("{}%%EOF\n", &text[..xref]);
    assert!(damaged(broken.as_bytes()).contains("cross-reference"));
}

#[test]
fn a_page_tree_whose_count_lies_is_refused() {
    let pdf = String::from_utf8(hand_written_pdf()).expect("ascii");
    // Same length, so the cross-reference table stays right.
    let lying = pdf.replace("/Count 1 ", "/Count 2 ");
    let why = damaged(lying.as_bytes());
    assert!(
        why.contains("says it holds 2 page(s) but 1 are there"),
        "{why}"
    );
}

#[test]
fn a_page_tree_naming_a_missing_page_is_refused() {
    let pdf = String::from_utf8(hand_written_pdf()).expect("ascii");
    let missing = pdf.replace("/Kids [5 0 R]", "/Kids [9 0 R]");
    let why = damaged(missing.as_bytes());
    assert!(why.contains("page 1 is missing"), "{why}");
}

#[test]
fn a_page_whose_content_is_missing_or_undecodable_is_refused() {
    let pdf = String::from_utf8(hand_written_pdf()).expect("ascii");
    let missing = pdf.replace("/Contents 4 0 R", "/Contents 8 0 R");
    assert!(damaged(missing.as_bytes()).contains("content of page 1"));
    // The stream claims to be compressed but is plain text.
    let corrupt = pdf.replacen(" >>\nstream", " /Filter /FlateDecode >>\nstream", 1);
    assert_ne!(corrupt, pdf, "the stream's dictionary was found");
    let corrupt = fix_xref(&corrupt);
    assert!(damaged(corrupt.as_bytes()).contains("cannot be decoded"));
}

/// Rewrites the cross-reference table of a hand-written PDF after an edit moved objects.
fn fix_xref(pdf: &str) -> String {
    let body_end = pdf.find("xref\n").expect("xref");
    let body = &pdf[..body_end];
    let mut offsets = Vec::new();
    for n in 1.. {
        match body.find(&format!("\n{n} 0 obj")) {
            Some(at) => offsets.push(at + 1),
            None => break,
        }
    }
    let mut out = body.to_string();
    out.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        offsets.len() + 1
    ));
    for offset in &offsets {
        out.push_str(&format!("{offset:010} 00000 n \n"));
    }
    out.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{body_end}\n%%EOF\n",
        offsets.len() + 1
    ));
    out
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
