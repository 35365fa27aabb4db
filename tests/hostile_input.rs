//! Bad input is quarantined with a reason a person can act on, nothing is deleted, the daemon
//! keeps running, and a good job dropped after the bad ones still completes.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{manifest, pdf, Env};
use lopdf::{dictionary, Document, Object, Stream};

/// A one-page PDF whose catalog carries `extra`, or whose page content is `content`.
fn crafted_pdf(extra: Option<(&str, Object)>, content: Option<Stream>, pages: bool) -> Vec<u8> {
    let mut doc = Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let content_id =
        doc.add_object(content.unwrap_or_else(|| Stream::new(dictionary! {}, b"BT ET".to_vec())));
    let kids: Vec<Object> = if pages {
        vec![doc
            .add_object(dictionary! {
                "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
                "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
            })
            .into()]
    } else {
        vec![]
    };
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }),
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

fn bomb_pdf(inflated: usize) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..inflated / zeros.len() {
        enc.write_all(&zeros).expect("compress");
    }
    let compressed = enc.finish().expect("compress");
    let stream =
        Stream::new(dictionary! { "Filter" => "FlateDecode" }, compressed).with_compression(false);
    crafted_pdf(None, Some(stream), true)
}

fn big_pdf(bytes: usize) -> Vec<u8> {
    let filler: Vec<u8> = (0..bytes).map(|i| b"0123456789abcdef"[i % 16]).collect();
    let mut content = b"BT ET\n%".to_vec();
    content.extend_from_slice(&filler);
    crafted_pdf(
        None,
        Some(Stream::new(dictionary! {}, content).with_compression(false)),
        true,
    )
}

fn qpdf_encrypt(env: &Env, user: &str) -> Vec<u8> {
    let plain = env.path().join("plain.pdf");
    let out = env.path().join(format!("enc-{}.pdf", user.len()));
    std::fs::write(&plain, pdf::beslut("ENC")).expect("write");
    let status = Command::new("qpdf")
        .args(["--encrypt", user, "owner-secret", "256", "--"])
        .arg(&plain)
        .arg(&out)
        .status()
        .expect("qpdf runs");
    assert!(status.success(), "qpdf --encrypt");
    std::fs::read(&out).expect("encrypted pdf")
}

fn one_doc(name: &str, env: &Env, to: &str, bytes: &[u8]) {
    env.drop_job(
        name,
        &manifest(to, &[("anvisningsbeslut", "beslut.pdf")]),
        &[("beslut.pdf", bytes)],
    );
}

fn reason(env: &Env, name: &str) -> String {
    std::fs::read_to_string(env.spool().join("quarantine").join(name).join("reason.txt"))
        .unwrap_or_else(|e| panic!("no reason.txt for {name}: {e}"))
}

fn stage_in_incoming(env: &Env, name: &str) -> std::path::PathBuf {
    let tmp = env.spool().join("tmp").join(name);
    std::fs::create_dir_all(&tmp).expect("tmp");
    tmp
}

fn publish(env: &Env, tmp: &Path, name: &str) {
    std::fs::rename(tmp, env.spool().join("incoming").join(name)).expect("rename");
}

#[test]
fn each_bad_input_is_quarantined_with_a_reason_and_a_later_good_job_completes() {
    let mut env = Env::new();
    env.set_env("KURIR_SPOOL__MAX_PDF_BYTES", "200000")
        .set_env("KURIR_SPOOL__MAX_DECOMPRESSED_BYTES", "20000000")
        .set_env("KURIR_SPOOL__SETTLE", "1s")
        .set_env("KURIR_SPOOL__RESCAN_INTERVAL", "1s");
    env.start();
    let good = pdf::beslut("GOOD");

    // (job directory name, expected reason code)
    let mut expected: Vec<(&str, &str)> = Vec::new();

    one_doc("bad-garbage", &env, "2480", b"this is not a pdf at all");
    expected.push(("bad-garbage", "pdf-not-a-pdf"));

    let half = &good[..good.len() / 2];
    one_doc("bad-truncated", &env, "2480", half);
    expected.push(("bad-truncated", "pdf-"));

    one_doc(
        "bad-encrypted",
        &env,
        "2480",
        &qpdf_encrypt(&env, "user-secret"),
    );
    expected.push(("bad-encrypted", "pdf-encrypted"));
    one_doc(
        "bad-encrypted-owner-only",
        &env,
        "2480",
        &qpdf_encrypt(&env, ""),
    );
    expected.push(("bad-encrypted-owner-only", "pdf-encrypted"));

    let js = dictionary! { "S" => "JavaScript", "JS" => Object::string_literal("app.alert(1)") };
    one_doc(
        "bad-javascript",
        &env,
        "2480",
        &crafted_pdf(Some(("OpenAction", js.into())), None, true),
    );
    expected.push(("bad-javascript", "pdf-active-content"));

    let launch = dictionary! { "S" => "Launch", "F" => Object::string_literal("calc.exe") };
    one_doc(
        "bad-launch",
        &env,
        "2480",
        &crafted_pdf(Some(("OpenAction", launch.into())), None, true),
    );
    expected.push(("bad-launch", "pdf-active-content"));

    let names = dictionary! { "EmbeddedFiles" => dictionary! { "Names" => Vec::<Object>::new() } };
    one_doc(
        "bad-embedded",
        &env,
        "2480",
        &crafted_pdf(Some(("Names", names.into())), None, true),
    );
    expected.push(("bad-embedded", "pdf-active-content"));

    one_doc(
        "bad-zero-pages",
        &env,
        "2480",
        &crafted_pdf(None, None, false),
    );
    expected.push(("bad-zero-pages", "pdf-no-pages"));

    one_doc("bad-oversize", &env, "2480", &big_pdf(300_000));
    expected.push(("bad-oversize", "pdf-too-large"));

    one_doc("bad-bomb", &env, "2480", &bomb_pdf(64 << 20));
    expected.push(("bad-bomb", "pdf-decompression-bomb"));

    one_doc("bad-unknown-kommun", &env, "9999", &good);
    expected.push(("bad-unknown-kommun", "unknown-kommunkod"));

    env.drop_job(
        "bad-unknown-key",
        &format!("{}priority = \"high\"\n", manifest("2480", &[])).replace(
            "priority",
            "[[document]]\nkind = \"anvisningsbeslut\"\nfile = \"beslut.pdf\"\npriority",
        ),
        &[("beslut.pdf", &good)],
    );
    expected.push(("bad-unknown-key", "manifest-invalid"));

    env.drop_job(
        "bad-traversal",
        &manifest("2480", &[("anvisningsbeslut", "../beslut.pdf")]),
        &[("beslut.pdf", &good)],
    );
    expected.push(("bad-traversal", "manifest-invalid"));

    env.drop_job(
        "bad-extra-file",
        &manifest("2480", &[("anvisningsbeslut", "beslut.pdf")]),
        &[("beslut.pdf", &good), ("notes.docx", b"extra")],
    );
    expected.push(("bad-extra-file", "unexpected-file"));

    // A document that is a symbolic link (to a file outside the job).
    let tmp = stage_in_incoming(&env, "bad-symlink");
    std::fs::write(env.path().join("outside.pdf"), &good).expect("write");
    std::fs::write(
        tmp.join("job.toml"),
        manifest("2480", &[("anvisningsbeslut", "beslut.pdf")]),
    )
    .expect("write");
    std::os::unix::fs::symlink(env.path().join("outside.pdf"), tmp.join("beslut.pdf"))
        .expect("symlink");
    publish(&env, &tmp, "bad-symlink");
    expected.push(("bad-symlink", "symlink"));

    // A FIFO where a document should be: reading it must not hang the daemon.
    let tmp = stage_in_incoming(&env, "bad-fifo");
    std::fs::write(
        tmp.join("job.toml"),
        manifest("2480", &[("anvisningsbeslut", "beslut.pdf")]),
    )
    .expect("write");
    let fifo =
        std::ffi::CString::new(tmp.join("beslut.pdf").to_string_lossy().as_bytes()).expect("c");
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    publish(&env, &tmp, "bad-fifo");
    expected.push(("bad-fifo", "not-a-regular-file"));

    // A stray file and a symbolic link directly in incoming/.
    std::fs::write(env.spool().join("incoming/stray.pdf"), &good).expect("write");
    expected.push(("stray.pdf", "not-a-job-directory"));
    std::os::unix::fs::symlink(env.path(), env.spool().join("incoming/bad-dir-link"))
        .expect("symlink");
    expected.push(("bad-dir-link", "not-a-job-directory"));

    // A job directory without job.toml that stays that way past the settle time.
    let tmp = stage_in_incoming(&env, "bad-no-manifest");
    std::fs::write(tmp.join("beslut.pdf"), &good).expect("write");
    publish(&env, &tmp, "bad-no-manifest");
    expected.push(("bad-no-manifest", "manifest-missing"));

    // And finally a good job.
    env.drop_job(
        "good-after-bad",
        &manifest("2480", &[("anvisningsbeslut", "beslut.pdf")]),
        &[("beslut.pdf", &good)],
    );

    common::wait_for("every job finished", Duration::from_secs(60), || {
        env.assert_alive();
        env.receipts().len() > expected.len()
    });

    let receipts = env.receipts();
    let good_receipt = receipts
        .iter()
        .find(|r| r["source"] == "good-after-bad")
        .expect("good job receipt");
    assert_eq!(good_receipt["state"], "print-queued");

    for (name, code) in &expected {
        let text = reason(&env, name);
        assert!(
            text.contains(&format!("Reason ({code}")),
            "{name}: expected {code}, got:\n{text}"
        );
        assert!(
            text.contains("What to do"),
            "{name}: reason.txt gives no action"
        );
        let receipt = receipts
            .iter()
            .find(|r| r["source"] == *name)
            .unwrap_or_else(|| panic!("no receipt for {name}"));
        assert_eq!(receipt["state"], "quarantined", "{name}");
        assert!(
            receipt["quarantine"]["code"]
                .as_str()
                .unwrap_or("")
                .starts_with(code),
            "{name}: {}",
            receipt["quarantine"]
        );
    }
    // Nothing is deleted: the quarantined job still holds what the writer gave.
    let kept = env.spool().join("quarantine/bad-encrypted/beslut.pdf");
    assert!(kept.is_file(), "quarantined document missing");
    assert!(env.spool().join("quarantine/stray.pdf/stray.pdf").is_file());
    assert!(
        std::fs::symlink_metadata(env.spool().join("quarantine/bad-dir-link/bad-dir-link"))
            .expect("link kept")
            .file_type()
            .is_symlink()
    );
    let listing = env.ok(&["list", "--state", "quarantined"]);
    assert!(listing.contains("pdf-encrypted"), "{listing}");
    assert!(!env.logs().contains(common::CASE), "case number in the log");
    env.stop();
}

#[test]
fn a_job_directory_still_being_written_is_not_read_until_it_is_complete() {
    let mut env = Env::new();
    env.set_env("KURIR_SPOOL__SETTLE", "30s")
        .set_env("KURIR_SPOOL__RESCAN_INTERVAL", "200ms");
    env.start();
    // A careless writer creates the directory in incoming/ directly and writes slowly.
    let dir = env.spool().join("incoming/slow-writer");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("beslut.pdf"), pdf::beslut("SLOW")).expect("write");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(dir.is_dir(), "claimed before the writer finished");
    assert!(env.receipts().is_empty());
    std::fs::write(
        dir.join("job.toml"),
        manifest("2480", &[("anvisningsbeslut", "beslut.pdf")]),
    )
    .expect("write");
    common::wait_for("slow job done", Duration::from_secs(30), || {
        env.receipts().iter().any(|r| r["source"] == "slow-writer")
    });
    let receipt = env
        .receipts()
        .into_iter()
        .find(|r| r["source"] == "slow-writer")
        .expect("r");
    assert_eq!(receipt["state"], "print-queued");
}
