//! A document that is cut off or damaged is refused with a reason a case officer can act on,
//! before it can go out as a blank page under a cover that promises a decision; documents
//! written by real PDF producers still pass and print whole.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{manifest, pdf, Env, CASE};
use lopdf::{dictionary, Document, Object, Stream};

/// A one-page decision, uncompressed: the shape of the file that once went out as a stub.
fn one_page_decision() -> Vec<u8> {
    pdf::plain_text_pdf(&[&["ANVISNINGSBESLUT (syntetiskt testdokument)", "DAMAGE-TEST"]])
}

/// Loads `bytes`, lets `edit` change the document, and saves it again with a correct
/// cross-reference table: damage that only the page tree or a stream shows.
fn edited(bytes: &[u8], edit: impl FnOnce(&mut Document)) -> Vec<u8> {
    let mut doc = Document::load_mem(bytes).expect("test PDF loads");
    edit(&mut doc);
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("save");
    out
}

fn page_tree_root(doc: &Document) -> lopdf::ObjectId {
    doc.catalog()
        .expect("catalog")
        .get(b"Pages")
        .and_then(Object::as_reference)
        .expect("pages")
}

/// The damaged documents, each with a phrase its reason must contain.
fn damaged_documents() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let whole = one_page_decision();
    let cut = |percent: usize| whole[..whole.len() * percent / 100].to_vec();
    let eof_line = whole
        .windows(5)
        .rposition(|w| w == b"%%EOF")
        .expect("%%EOF");
    let count_lies = edited(&whole, |doc| {
        let root = page_tree_root(doc);
        doc.get_dictionary_mut(root)
            .expect("page tree")
            .set("Count", 2);
    });
    let missing_page = edited(&whole, |doc| {
        let page = doc.page_iter().next().expect("a page");
        doc.objects.remove(&page);
    });
    let corrupt_content = edited(&whole, |doc| {
        let page = doc.page_iter().next().expect("a page");
        let content = doc
            .get_dictionary(page)
            .and_then(|p| p.get(b"Contents"))
            .and_then(Object::as_reference)
            .expect("content");
        let mut garbage = Stream::new(
            dictionary! { "Filter" => "FlateDecode" },
            b"x\x9c this is not deflate data at all".to_vec(),
        );
        garbage.allows_compression = false;
        doc.objects.insert(content, Object::Stream(garbage));
    });
    vec![
        ("cut-300-bytes", whole[..300].to_vec(), "cut off"),
        ("cut-10-percent", cut(10), "cut off"),
        ("cut-50-percent", cut(50), "cut off"),
        ("cut-90-percent", cut(90), "cut off"),
        ("no-eof-line", whole[..eof_line].to_vec(), "%%EOF"),
        (
            "count-lies",
            count_lies,
            "says it holds 2 page(s) but 1 are there",
        ),
        ("missing-page", missing_page, "page 1 is missing"),
        ("corrupt-content", corrupt_content, "cannot be decoded"),
    ]
}

fn reason(env: &Env, name: &str) -> String {
    std::fs::read_to_string(env.spool().join("quarantine").join(name).join("reason.txt"))
        .unwrap_or_else(|e| panic!("no reason.txt for {name}: {e}"))
}

#[test]
fn cut_off_and_damaged_documents_are_quarantined_with_a_reason_naming_the_document() {
    let mut env = Env::new();
    env.set_env("KURIR_SPOOL__SETTLE", "1s")
        .set_env("KURIR_SPOOL__RESCAN_INTERVAL", "1s");
    env.start();
    let good = pdf::beslut("GOOD");
    let cases = damaged_documents();
    for (name, bytes, _) in &cases {
        // The damaged file is the second document, so the reason must say which one.
        env.drop_job(
            name,
            &manifest(
                "2480",
                &[
                    ("anvisningsbeslut", "beslut.pdf"),
                    ("god-man", "godman.pdf"),
                ],
            ),
            &[("beslut.pdf", &good), ("godman.pdf", bytes)],
        );
    }
    env.drop_job(
        "good-after-damaged",
        &manifest("2480", &[("anvisningsbeslut", "beslut.pdf")]),
        &[("beslut.pdf", &good)],
    );
    common::wait_for("every job finished", Duration::from_secs(60), || {
        env.assert_alive();
        env.receipts().len() > cases.len()
    });
    let receipts = env.receipts();
    for (name, _, phrase) in &cases {
        let receipt = receipts
            .iter()
            .find(|r| r["source"] == *name)
            .unwrap_or_else(|| panic!("no receipt for {name}"));
        assert_eq!(receipt["state"], "quarantined", "{name}: {receipt}");
        assert_eq!(receipt["quarantine"]["code"], "pdf-damaged", "{name}");
        let summary = receipt["quarantine"]["summary"].as_str().unwrap_or("");
        assert!(
            summary.contains("document 2 (god-man): damaged PDF: "),
            "{name}: {summary}"
        );
        let text = reason(&env, name);
        assert!(
            text.contains("Reason (pdf-damaged)") && text.contains("file \"godman.pdf\""),
            "{name}:\n{text}"
        );
        assert!(
            text.contains(phrase),
            "{name}: expected {phrase:?} in\n{text}"
        );
    }
    let good_receipt = receipts
        .iter()
        .find(|r| r["source"] == "good-after-damaged")
        .expect("good job receipt");
    assert_eq!(good_receipt["state"], "print-queued");
    // Only the good job became a letter: no stub page went to the print shop.
    assert_eq!(common::letter_files(&env.spool()).len(), 1);
    assert!(!env.logs().contains(CASE), "case number in the log");
    env.stop();
}

#[test]
fn submit_refuses_a_cut_off_document_before_writing_the_job() {
    let env = Env::new();
    let whole = one_page_decision();
    std::fs::write(env.path().join("cut.pdf"), &whole[..300]).expect("write");
    let out = env.run(&[
        "submit",
        "--to",
        "2480",
        "--case",
        CASE,
        "--anvisningsbeslut",
        "cut.pdf",
    ]);
    assert!(!out.status.success(), "a cut-off document was submitted");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cut.pdf") && stderr.contains("damaged PDF: the file is cut off"),
        "{stderr}"
    );
    let written = std::fs::read_dir(env.spool().join("incoming"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        written, 0,
        "nothing may be written for a refused submission"
    );
}

/// Runs a producer; panics with its output if it fails.
fn produce(program: &str, args: &[&str], dir: &Path) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} is installed (tests/setup): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn documents_from_real_pdf_producers_pass_and_print_whole() {
    let mut env = Env::new();
    env.start();
    let dir = env.path().to_path_buf();
    std::fs::write(dir.join("lopdf.pdf"), pdf::beslut("PRODUCER-MARKER")).expect("write");
    // Ghostscript, from PostScript, the way many print and scan pipelines make PDFs.
    std::fs::write(
        dir.join("decision.ps"),
        "%!PS\n/Helvetica findfont 14 scalefont setfont\n\
         72 720 moveto (ANVISNINGSBESLUT) show 72 700 moveto (PRODUCER-MARKER) show showpage\n\
         72 720 moveto (Sida 2 PRODUCER-MARKER) show showpage\n",
    )
    .expect("write");
    produce("ps2pdf", &["decision.ps", "ghostscript.pdf"], &dir);
    // Cairo (through poppler), and qpdf's rewrites: object streams, linearized, QDF.
    produce("pdftocairo", &["-pdf", "lopdf.pdf", "cairo.pdf"], &dir);
    produce(
        "qpdf",
        &["--object-streams=generate", "lopdf.pdf", "objstm.pdf"],
        &dir,
    );
    produce(
        "qpdf",
        &["--linearize", "ghostscript.pdf", "linear.pdf"],
        &dir,
    );
    produce("qpdf", &["--qdf", "cairo.pdf", "qdf.pdf"], &dir);
    for file in [
        "ghostscript.pdf",
        "cairo.pdf",
        "objstm.pdf",
        "linear.pdf",
        "qdf.pdf",
    ] {
        let path = dir.join(file);
        let pages = common::pdf_pages(&path);
        let id = env.ok(&[
            "submit",
            "--to",
            "2480",
            "--case",
            CASE,
            "--anvisningsbeslut",
            file,
        ]);
        let receipt = env.wait_receipt(id.trim());
        assert_eq!(receipt["state"], "print-queued", "{file}: {receipt}");
        assert_eq!(receipt["documents"][0]["pages"], pages, "{file}");
        let batch = receipt["batch"].as_str().expect("batch");
        let letter_name = receipt["recipients"][0]["letter"].as_str().expect("letter");
        let letter = env.spool().join("print").join(batch).join(letter_name);
        assert!(
            common::qpdf_ok(&letter),
            "{file}: qpdf --check rejects the letter"
        );
        assert_eq!(
            common::pdf_pages(&letter),
            1 + pages,
            "{file}: cover + pages"
        );
        let text = common::pdftotext(&letter, 2, 1 + pages);
        assert!(
            text.contains("PRODUCER-MARKER"),
            "{file}: the document's text is lost"
        );
    }
    env.stop();
}
