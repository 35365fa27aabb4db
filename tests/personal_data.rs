//! No personal data outside the documents: jobs whose case numbers and PDF text carry marker
//! strings go through every path — post, e-mail, permanent failure with fallback, quarantine —
//! and the markers must appear in no log line, subject or header, file name, metric, alert,
//! receipt, manifest, status output or audit export.

mod common;

use std::path::Path;
use std::time::Duration;

use common::mail::{register_and_prove, rig, UMEA};
use common::{manifest, pdf, Env};
use serde_json::json;

const CASE_MARKER: &str = "97-531864";
const NAME_MARKER: &str = "MARKERNAMN Ahmed Karimi";
const BIRTH_MARKER: &str = "MARKERFODD 2009-04-17";

fn marked_pdf() -> Vec<u8> {
    pdf::text_pdf(&[&[
        "ANVISNINGSBESLUT (syntetiskt testdokument)",
        NAME_MARKER,
        BIRTH_MARKER,
        CASE_MARKER,
    ]])
}

fn job_toml(to: &str) -> String {
    manifest(to, &[("anvisningsbeslut", "beslut.pdf")]).replace(common::CASE, CASE_MARKER)
}

fn all_file_names(dir: &Path, out: &mut Vec<String>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            out.push(e.path().to_string_lossy().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                all_file_names(&e.path(), out);
            }
        }
    }
}

fn files_text(dir: &Path, suffix: &str) -> String {
    let mut names = Vec::new();
    all_file_names(dir, &mut names);
    names
        .iter()
        .filter(|n| n.ends_with(suffix))
        .filter_map(|n| std::fs::read_to_string(n).ok())
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_clean(what: &str, text: &str) {
    for marker in [
        CASE_MARKER,
        "531864",
        NAME_MARKER,
        "Karimi",
        BIRTH_MARKER,
        "2009-04-17",
    ] {
        assert!(!text.contains(marker), "{marker:?} found in {what}");
    }
}

#[test]
fn marker_strings_appear_only_inside_the_documents() {
    let mut rig = rig();
    rig.env
        .set_env("KURIR_SPOOL__SETTLE", "1s")
        .set_env("KURIR_QUEUE__RETRY_INTERVALS", "1s")
        .set_env("KURIR_ALERTS__EMAIL", "ops@kurir-test.example")
        .set_env("KURIR_DEADLINES__WARN_AFTER", "1s");
    rig.env.start();
    register_and_prove(&rig);
    let doc = marked_pdf();

    // Post, e-mail (signed and encrypted), then a permanent failure that falls back to post.
    rig.env
        .drop_job("job-post", &job_toml("0180"), &[("beslut.pdf", &doc)]);
    rig.env
        .drop_job("job-mail", &job_toml("2480"), &[("beslut.pdf", &doc)]);
    common::wait_for("post and mail done", Duration::from_secs(60), || {
        rig.env.receipts().len() == 2
    });
    rig.peer.set_rules(json!({ UMEA: { "reject": true } }));
    rig.env
        .drop_job("job-fallback", &job_toml("2480"), &[("beslut.pdf", &doc)]);
    // Quarantine: a broken document that carries the markers, and an unknown key.
    let mut broken = b"%PDF-1.7\n".to_vec();
    broken.extend_from_slice(NAME_MARKER.as_bytes());
    rig.env
        .drop_job("job-broken", &job_toml("2480"), &[("beslut.pdf", &broken)]);
    let bad_manifest = job_toml("2480") + "child_name = \"Ahmed Karimi\"\n";
    rig.env
        .drop_job("job-badkey", &bad_manifest, &[("beslut.pdf", &doc)]);
    common::wait_for("every job finished", Duration::from_secs(60), || {
        rig.env.receipts().len() == 5
    });
    common::wait_for("alert e-mails sent", Duration::from_secs(30), || {
        rig.peer
            .log()
            .lines()
            .filter(|l| l.starts_with("DATA ") && l.ends_with("ops@kurir-test.example"))
            .count()
            >= 3
    });

    let spool = rig.env.spool();
    let states: Vec<String> = rig
        .env
        .receipts()
        .iter()
        .map(|r| r["state"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        states.iter().filter(|s| *s == "quarantined").count(),
        2,
        "{states:?}"
    );
    assert!(states.contains(&"delivered".to_string()), "{states:?}");

    assert_clean("the daemon's log", &rig.env.logs());
    let mut names = Vec::new();
    all_file_names(rig.env.path(), &mut names);
    assert_clean("file names", &names.join("\n"));
    assert_clean("alerts", &files_text(&spool.join("alerts"), ".json"));
    assert_clean("receipts", &files_text(&spool.join("receipts"), ".json"));
    assert_clean("print manifests", &files_text(&spool.join("print"), ".csv"));
    let (_, metrics) = rig.env.http_get("/metrics");
    assert_clean("metrics", &metrics);
    assert_clean("kurir list", &rig.env.ok(&["list", "--json"]));
    for r in rig.env.receipts() {
        assert_clean(
            "kurir status",
            &rig.env
                .ok(&["status", r["job_id"].as_str().expect("id"), "--json"]),
        );
    }
    assert_clean(
        "audit export",
        &rig.env.ok(&["audit", "export", "--since", "2020-01-01"]),
    );
    assert_clean("the SMTP server's log", &rig.peer.log());
    for message in rig.peer.messages() {
        let raw = std::fs::read(&message).expect("read");
        let text = String::from_utf8_lossy(&raw);
        let headers = text.split("\r\n\r\n").next().unwrap_or("");
        assert_clean("e-mail headers", headers);
        let parsed = mail_parser::MessageParser::default()
            .parse(&raw)
            .expect("mime");
        assert_clean("e-mail subject", parsed.subject().unwrap_or(""));
        if parsed
            .to()
            .is_some_and(|t| t.first().and_then(|a| a.address()) == Some("ops@kurir-test.example"))
        {
            assert_clean("an alert e-mail", &text);
        }
    }
    rig.env.stop();
}

#[test]
fn a_reason_holding_a_case_number_or_a_personal_identity_number_is_refused() {
    let mut env = Env::new();
    env.start();
    let id = env.submit("2480", None);
    env.wait_receipt(&id);
    for reason in ["fel kommun, se 12-345678", "barnet 811218-9876 har flyttat"] {
        let out = env.run(&["cancel", &id, "--reason", reason]);
        assert!(!out.status.success(), "{reason:?} was taken");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("cannot be redacted"), "{said}");
        let status = env.ok(&["status", &id, "--json"]);
        assert!(!status.contains(reason), "{status}");
    }
    let export = env.ok(&["audit", "export", "--since", "2020-01-01"]);
    assert!(
        !export.contains("12-345678") && !export.contains("811218"),
        "{export}"
    );
    env.stop();
}
