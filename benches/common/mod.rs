//! What both benchmarks build alike: the synthetic documents and the decision message.
#![allow(dead_code)]

use kurir::config::SenderSettings;
use kurir::deliver::mail::compose::{Attachment, DecisionMail, MailFrom};
use kurir::job::{DocumentKind, JobId};
use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Document, Object, Stream, StringFormat};

/// A realistic synthetic PDF of about `size` bytes: text pages plus an embedded image-like
/// stream (no personal data).
pub fn synthetic_pdf(title: &str, size: usize) -> Vec<u8> {
    let mut doc = Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let font = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica", "Encoding" => "WinAnsiEncoding",
    });
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..size.saturating_sub(3000))
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let image = doc.add_object(Stream::new(
        dictionary! {
            "Type" => "XObject", "Subtype" => "Image", "Width" => 100, "Height" => (noise.len() / 300).max(1) as i64,
            "ColorSpace" => "DeviceRGB", "BitsPerComponent" => 8,
        },
        noise,
    ).with_compression(false));
    let resources = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font }, "XObject" => dictionary! { "Im1" => image },
    });
    let mut kids = Vec::new();
    for page in 0..2 {
        let mut ops = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 11.into()]),
            Operation::new("Td", vec![60.into(), 780.into()]),
            Operation::new("TL", vec![14.into()]),
        ];
        for line in 0..40 {
            let text = format!("{title} – syntetisk text, sida {}, rad {line}", page + 1);
            let bytes =
                Document::encode_text(&lopdf::Encoding::SimpleEncoding(b"WinAnsiEncoding"), &text);
            ops.push(Operation::new(
                "Tj",
                vec![Object::String(bytes, StringFormat::Literal)],
            ));
            ops.push(Operation::new("T*", vec![]));
        }
        ops.push(Operation::new("ET", vec![]));
        if page == 1 {
            ops.push(Operation::new("q", vec![]));
            ops.push(Operation::new(
                "cm",
                vec![
                    200.into(),
                    0.into(),
                    0.into(),
                    100.into(),
                    300.into(),
                    100.into(),
                ],
            ));
            ops.push(Operation::new("Do", vec!["Im1".into()]));
            ops.push(Operation::new("Q", vec![]));
        }
        let content = doc.add_object(Stream::new(
            dictionary! {},
            Content { operations: ops }.encode().expect("content"),
        ));
        kids.push(Object::from(doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content, "Resources" => resources,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        })));
    }
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => 2 }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("pdf");
    out
}

/// The message kurir sends for a two-document job (anvisningsbeslut and god man) to one
/// municipality's registrator.
pub fn decision_mail<'a>(
    job_id: &'a JobId,
    beslut: &'a [u8],
    godman: &'a [u8],
    sender: &'a SenderSettings,
) -> DecisionMail<'a> {
    DecisionMail {
        from: MailFrom {
            address: "anvisning@bench.example",
            name: "Migrationsverket",
        },
        to: "registrator@kommun.bench.example",
        kommunkod: "2480".parse().expect("code"),
        job_id,
        copy_of: None,
        notify_to: None,
        documents: vec![
            Attachment {
                kind: DocumentKind::Anvisningsbeslut,
                pages: 2,
                bytes: beslut,
            },
            Attachment {
                kind: DocumentKind::GodMan,
                pages: 2,
                bytes: godman,
            },
        ],
        sender,
    }
}
