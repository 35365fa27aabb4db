//! A store made by kurir 0.1.0 (the fixture `tests/fixtures/store-0.1.0.tar.gz`, written by the
//! 0.1.0 binary: delivered with delivery and read reports, relayed with an unread alert, failed
//! after acceptance with a letter and its alert, a letter without an address, a quarantined
//! job, a grant and a held municipality) is read and migrated when this release opens it, and
//! the daemon carries on with it.

mod common;

use std::process::Command;

use common::Env;
use serde_json::Value;

const KIRUNA: &str = "20261130-102004-115c3e4b0ee2";
const UMEA: &str = "20261130-102004-e404474718e0";
const STOCKHOLM: &str = "20261130-102004-3ae8344138b3";

/// An environment holding the 0.1.0 store and spool.
fn old_store() -> Env {
    let env = Env::new();
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-0.1.0.tar.gz");
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(&fixture)
        .arg("-C")
        .arg(env.path())
        .output()
        .expect("tar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env
}

fn alerts(status: &Value) -> Vec<Value> {
    status["job"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_store_made_by_0_1_0_is_migrated_on_open_and_every_job_keeps_its_history() {
    let mut env = old_store();
    // Opened by a command (no daemon runs): migrated then.
    let jobs = env.list(100);
    assert_eq!(jobs.len(), 5, "{jobs:#?}");
    let states: Vec<&str> = jobs.iter().filter_map(|j| j["state"].as_str()).collect();
    for state in ["quarantined", "print-queued", "delivered"] {
        assert!(states.contains(&state), "{states:?}");
    }
    {
        let store = kurir::store::Store::open(&env.path().join("state")).expect("store");
        assert_eq!(store.format().expect("format"), 2, "not migrated");
    }

    // 0.1.0's alert strings are typed marks now, naming the municipality where they did.
    let kiruna = env.status(KIRUNA);
    assert_eq!(kiruna["job"]["state"], "print-queued");
    assert_eq!(
        alerts(&kiruna),
        vec![serde_json::json!({ "kind": "fell-back", "kommunkod": "2584" })],
        "{kiruna:#}"
    );
    let stockholm = env.status(STOCKHOLM);
    assert!(
        alerts(&stockholm).contains(&serde_json::json!({ "kind": "unread", "kommunkod": "0180" })),
        "{stockholm:#}"
    );
    // Report kinds and attempt outcomes keep their names.
    let umea = env.status(UMEA);
    let email = &umea["job"]["recipients"][0]["email"];
    let kinds: Vec<&str> = email["reports"]
        .as_array()
        .expect("reports")
        .iter()
        .filter_map(|r| r["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["delivered", "displayed"], "{email:#}");
    assert_eq!(email["attempts"][0]["outcome"], "accepted");
    let text = env.ok(&["status", UMEA]);
    assert!(
        text.contains("confirmed: delivered") && text.contains("read at"),
        "{text}"
    );
    let list = env.ok(&["list"]);
    assert!(
        list.contains("read:2480") && list.contains("failed:2584") && list.contains("relayed:0180"),
        "{list}"
    );
    // The audit chain is untouched by the migration.
    let verified = env.ok(&["audit", "verify"]);
    assert!(verified.starts_with("ok, 26 entries"), "{verified}");
    // The hold and the grant 0.1.0 registered still hold.
    let shown = env.ok(&["municipality", "show", "2480"]);
    assert!(shown.contains("SE2321000016-test1"), "{shown}");
    assert!(env.ok(&["queue"]).contains("held: kommun 1280"));

    // The daemon carries on with the migrated store.
    env.start();
    let id = env.submit("0114", None);
    assert_eq!(env.wait_receipt(&id)["state"], "print-queued");
    assert_eq!(env.status(KIRUNA)["job"]["state"], "print-queued");
    env.stop();
    let verified = env.ok(&["audit", "verify"]);
    assert!(verified.starts_with("ok, "), "{verified}");
}
