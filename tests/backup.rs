//! Surviving the loss of the machine, with the real mail world (the agency's Postfix relay with
//! DSN, the municipality's Postfix): a backup taken while a burst flows, restored on "another
//! machine" (other settings, other folders), keeps every job of the backup with its history;
//! the audit chain verifies across the restore and records it; the restored report key still
//! matches a real DSN the relay delivers after the restore; and a case system that resubmits
//! with its submission keys, before and after the restore, gets nothing sent twice (counted
//! in the municipality's mailbox); only jobs unfinished at the backup's moment may be sent
//! again, once.

mod common;

use std::time::Duration;

use common::mailworld::{self, MailWorld};
use common::Env;

fn messages(world: &MailWorld) -> usize {
    world.municipality.maildir("umea").len()
}

/// The municipality's count once the relay has passed on what it holds: unchanged for three
/// seconds (at most a minute).
fn settled_messages(world: &MailWorld) -> usize {
    let started = std::time::Instant::now();
    let (mut last, mut since) = (messages(world), std::time::Instant::now());
    while since.elapsed() < Duration::from_secs(3) && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(250));
        let now = messages(world);
        if now != last {
            (last, since) = (now, std::time::Instant::now());
        }
    }
    last
}

fn submit_with_key(env: &Env, key: &str) -> (String, String) {
    let b = env.path().join("in-beslut.pdf");
    if !b.exists() {
        std::fs::write(&b, common::pdf::beslut("BESLUT-MARKER")).expect("write");
    }
    let out = env.run(&[
        "submit",
        "--to",
        "2480",
        "--case",
        common::CASE,
        "--anvisningsbeslut",
        "in-beslut.pdf",
        "--submission-key",
        key,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn delivered(env: &Env, id: &str) -> bool {
    env.receipt(id).is_some_and(|r| r["state"] == "delivered")
}

#[test]
fn a_backup_taken_during_a_burst_restores_on_another_machine_with_its_jobs_proof_and_keys() {
    let mut a = Env::new();
    let world = mailworld::start(&mut a);
    // Reports wait at the relay (as they would while the agency's machine is down), so the
    // restored machine is the one that takes them in.
    world.relay.set("defer_transports = kurir");
    a.start();

    // A burst, with a backup in the middle of it.
    let backup = a.path().join("backups/nightly");
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(submit_with_key(&a, &format!("case-system:{i}")).0);
        if i == 5 {
            let said = a.ok(&["backup", &backup.to_string_lossy()]);
            assert!(said.contains("backup of"), "{said}");
        }
    }
    for id in &ids {
        common::wait_for("the burst delivered", Duration::from_secs(60), || {
            delivered(&a, id)
        });
    }
    // Accepted by the relay is not yet in the municipality's mailbox: wait for the relay to
    // pass them on, then count.
    common::wait_for(
        "the relay passed the burst on",
        Duration::from_secs(60),
        || messages(&world) >= ids.len(),
    );
    let sent = messages(&world);
    assert_eq!(sent, ids.len(), "one message per job");
    // Resubmitting on the same machine sends nothing.
    let (again, note) = submit_with_key(&a, "case-system:3");
    assert_eq!(again, ids[3], "{note}");
    assert!(note.contains("not sent again"), "{note}");

    let verified = a.ok(&["backup", "--verify", &backup.to_string_lossy()]);
    assert!(verified.contains("sound"), "{verified}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(backup.join("store"))
            .expect("store folder")
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "a backup readable by others");
    a.stop();

    // The integrity key that seals the backup is not in it: it is kept apart.
    assert!(
        !backup.join("keys/integrity.key").exists(),
        "the key in its own backup"
    );
    assert!(backup.join("keys/proof.key").is_file());
    let key = a.path().join("state/integrity.key");

    // Another machine: its own settings and folders, the same relay. Without the key the
    // backup cannot be told from a forgery, and is not restored.
    let mut b = Env::new();
    world.configure(&mut b);
    let unkeyed = b.run(&["restore", &backup.to_string_lossy()]);
    assert!(!unkeyed.status.success());
    assert!(
        String::from_utf8_lossy(&unkeyed.stderr).contains("give it with --key FILE"),
        "{}",
        String::from_utf8_lossy(&unkeyed.stderr)
    );
    let restored = b.ok(&[
        "restore",
        "--key",
        &key.to_string_lossy(),
        &backup.to_string_lossy(),
    ]);
    assert!(restored.contains("restored"), "{restored}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).expect("manifest"))
            .expect("json");
    let in_backup = manifest["jobs"].as_u64().expect("jobs") as usize;
    assert!(in_backup >= 1 && in_backup <= ids.len(), "{manifest}");
    // A store there now: a second restore is refused.
    let again = b.run(&[
        "restore",
        "--key",
        &key.to_string_lossy(),
        &backup.to_string_lossy(),
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("holds a store already"));
    // Jobs not finished at the backup's moment are sent again by this machine: the rule after
    // a loss (the old machine may have sent them since), at most one duplicate each.
    let unfinished = b.ok(&["list", "--state", "unfinished", "--json"]);
    let unfinished = serde_json::from_str::<serde_json::Value>(&unfinished)
        .expect("json")
        .as_array()
        .map_or(0, Vec::len);
    mailworld::pipe_into(&world, &b);
    b.start();
    let known: Vec<&String> = ids
        .iter()
        .filter(|id| b.run(&["status", id]).status.success())
        .collect();
    assert_eq!(
        known.len(),
        in_backup,
        "every job of the backup, and only those"
    );
    for id in &known {
        let status = b.status(id);
        assert!(
            common::has_event(&status, "claimed and validated"),
            "{id} lost its history: {status:#}"
        );
    }
    let audit = b.ok(&["audit", "verify"]);
    assert!(audit.starts_with("ok"), "{audit}");
    let export = b.ok(&["audit", "export", "--since", "2020-01-01"]);
    assert!(
        export.contains("restored from a backup taken at"),
        "{export}"
    );

    // The relay delivers the reports it held to the restored machine: matched by the key
    // that came with the backup.
    world.relay.set("defer_transports =");
    world.relay.flush();
    let first = known[0].clone();
    common::wait_for(
        "a real DSN matched after the restore",
        Duration::from_secs(60),
        || {
            b.status(&first)["job"]["recipients"][0]["email"]["reports"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["kind"] == "delivered"))
        },
    );

    for id in &known {
        common::wait_for("the restored jobs settled", Duration::from_secs(60), || {
            delivered(&b, id)
        });
    }
    let settled = settled_messages(&world);
    assert!(
        settled - sent <= unfinished,
        "{} sent again, but only {unfinished} were unfinished in the backup",
        settled - sent
    );

    // The case system resubmits what it has no final receipt for: nothing goes out twice.
    for id in &known {
        let i = ids.iter().position(|x| x == *id).expect("submitted");
        let (answer, note) = submit_with_key(&b, &format!("case-system:{i}"));
        assert_eq!(&answer, *id, "{note}");
    }
    assert_eq!(
        settled_messages(&world),
        settled,
        "a resubmission was sent again"
    );
    b.stop();
}

#[test]
fn restore_refuses_a_live_store_moves_a_stopped_one_and_unknown_documents_aside_and_verify_finds_a_cut_or_tampered_backup(
) {
    let mut env = Env::new();
    env.start();
    let id = env.submit("2480", None);
    env.wait_receipt(&id);
    env.stop();
    // With the daemon stopped, the command takes the backup itself.
    let backup = env.path().join("backup");
    env.ok(&["backup", &backup.to_string_lossy()]);
    let exists = env.run(&["backup", &backup.to_string_lossy()]);
    assert!(String::from_utf8_lossy(&exists.stderr).contains("exists already"));

    env.start();
    let live = env.run(&["restore", &backup.to_string_lossy(), "--force"]);
    assert!(!live.status.success());
    assert!(
        String::from_utf8_lossy(&live.stderr).contains("a daemon runs on"),
        "{}",
        String::from_utf8_lossy(&live.stderr)
    );
    env.stop();
    // A job the replaced store took in after the backup: its documents must not be left where
    // nobody looks.
    let after = env
        .spool()
        .join("active")
        .join("20261130-120000-0a0b0c0d0e0f");
    std::fs::create_dir_all(&after).expect("mkdir");
    std::fs::write(
        after.join("anvisningsbeslut.pdf"),
        common::pdf::beslut("LATE"),
    )
    .expect("pdf");
    let forced = env.ok(&["restore", &backup.to_string_lossy(), "--force"]);
    assert!(
        forced.contains("the store that was there is kept in"),
        "{forced}"
    );
    assert!(forced.contains("1 job folder(s)"), "{forced}");
    assert!(!after.exists());
    let aside = std::fs::read_dir(env.spool())
        .expect("spool")
        .filter_map(|e| e.ok())
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("active.replaced-")
        })
        .expect("the folder set aside")
        .path();
    assert!(aside
        .join("20261130-120000-0a0b0c0d0e0f/anvisningsbeslut.pdf")
        .is_file());
    env.start();
    assert_eq!(env.status(&id)["job"]["state"], "print-queued");
    env.stop();

    // A backup that lost a whole tree, manifest and sums rewritten to match, is refused.
    let cut = env.path().join("backup-cut");
    std::fs::create_dir(&cut).expect("mkdir");
    let copy = std::process::Command::new("cp")
        .args([
            "-a",
            &format!("{}/.", backup.display()),
            &cut.to_string_lossy(),
        ])
        .status()
        .expect("cp");
    assert!(copy.success());
    std::fs::remove_file(cut.join("store/events.jsonl")).expect("rm");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cut.join("manifest.json")).expect("read"))
            .expect("json");
    manifest["files"]
        .as_object_mut()
        .expect("files")
        .remove("store/events.jsonl");
    std::fs::write(cut.join("manifest.json"), manifest.to_string()).expect("write");
    let out = env.run(&["backup", "--verify", &cut.to_string_lossy()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not sealed by this integrity key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A person who changes where a municipality's decisions go in a copy, and recomputes
    // every sum, still cannot seal it: verify and restore refuse it.
    let forged = env.path().join("backup-forged");
    std::fs::create_dir(&forged).expect("mkdir");
    assert!(std::process::Command::new("cp")
        .args([
            "-a",
            &format!("{}/.", backup.display()),
            &forged.to_string_lossy()
        ])
        .status()
        .expect("cp")
        .success());
    redirect_in_backup(&forged, "2480", "thief@elsewhere.example");
    for args in [
        vec!["backup", "--verify", forged.to_str().expect("path")],
        vec!["restore", "--force", forged.to_str().expect("path")],
    ] {
        let out = env.run(&args);
        assert!(!out.status.success(), "{args:?} took a forged backup");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not sealed by this integrity key"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    env.start();
    let show = env.ok(&["municipality", "show", "2480"]);
    assert!(!show.contains("thief@"), "{show}");
    env.stop();

    // One changed byte and the backup is refused.
    let tree = std::fs::read_dir(backup.join("store"))
        .expect("store")
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("jobs"))
        .expect("the jobs tree")
        .path();
    let mut bytes = std::fs::read(&tree).expect("read");
    bytes[10] ^= 1;
    std::fs::write(&tree, bytes).expect("write");
    let out = env.run(&["backup", "--verify", &backup.to_string_lossy()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not match its SHA-256"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Rewrites municipality `code`'s registration in a backup so that decisions go to `address`,
/// and recomputes every SHA-256 in `manifest.json` and `SHA256SUMS`: what a person with a
/// copy of the backup, and without the integrity key, can do.
fn redirect_in_backup(backup: &std::path::Path, code: &str, address: &str) {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let tree = backup.join("store/registry.jsonl");
    let text = std::fs::read_to_string(&tree).expect("registry tree");
    let mut lines = Vec::new();
    let mut changed = false;
    for line in text.lines() {
        let mut entry: serde_json::Value = serde_json::from_str(line).expect("line");
        let key = engine.decode(entry["k"].as_str().expect("k")).expect("b64");
        if key == code.as_bytes() {
            let value = engine.decode(entry["v"].as_str().expect("v")).expect("b64");
            let mut registered: serde_json::Value = serde_json::from_slice(&value).expect("json");
            registered["active_address"] = address.into();
            registered["secure_connection"] = true.into();
            entry["v"] = engine
                .encode(serde_json::to_vec(&registered).expect("json"))
                .into();
            changed = true;
        }
        lines.push(entry.to_string());
    }
    if !changed {
        let registered =
            serde_json::json!({"v": 2, "active_address": address, "secure_connection": true});
        lines.push(
            serde_json::json!({"k": engine.encode(code), "v": engine.encode(registered.to_string())})
                .to_string(),
        );
    }
    std::fs::write(&tree, lines.join("\n") + "\n").expect("write");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).expect("read"))
            .expect("json");
    let mut sums = String::new();
    for (path, sum) in manifest["files"].as_object_mut().expect("files") {
        let bytes = std::fs::read(backup.join(path)).expect("file");
        let sha = openssl::sha::sha256(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        sum["sha256"] = sha.clone().into();
        sum["bytes"] = (bytes.len() as u64).into();
        sums.push_str(&format!("{sha}  {path}\n"));
    }
    std::fs::write(
        backup.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).expect("json"),
    )
    .expect("write");
    std::fs::write(backup.join("SHA256SUMS"), sums).expect("write");
}
