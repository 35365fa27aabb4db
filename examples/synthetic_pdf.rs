//! Writes a synthetic test PDF (no personal data), for trying kurir out:
//! `cargo run --example synthetic_pdf -- beslut.pdf "ANVISNINGSBESLUT test"`.

#[path = "../tests/common/pdf.rs"]
mod pdf;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(path), text) = (args.next(), args.next()) else {
        eprintln!("usage: synthetic_pdf OUT.pdf [TEXT]");
        std::process::exit(2);
    };
    let text = text.unwrap_or_else(|| "Syntetiskt testdokument".into());
    if let Err(e) = std::fs::write(&path, pdf::text_pdf(&[&[text.as_str()]])) {
        eprintln!("writing {path}: {e}");
        std::process::exit(1);
    }
}
