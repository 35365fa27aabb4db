//! The post channel's proof goes on past the print queue: the print shop reads closed batches
//! through its own group and nothing else, confirms a batch printed and posted, and the jobs
//! and receipts say so. And nothing in the spool grows forever: retention removes old alert
//! files, receipts, reports and confirmed batches, while the store keeps their facts.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::Duration;

use common::Env;
use serde_json::Value;

/// A daemon whose print batches close after every letter.
fn printing_env() -> Env {
    let mut env = Env::new();
    env.set_env("KURIR_PRINT__BATCH_MAX_LETTERS", "1");
    env
}

fn batch_of(receipt: &Value) -> String {
    receipt["batch"].as_str().expect("batch").to_string()
}

/// Waits until the batch is closed (READY): the round that made the letter closes it.
fn wait_closed(env: &Env, batch: &str) {
    let ready = env.spool().join("print").join(batch).join("READY");
    common::wait_for("the batch closed", Duration::from_secs(30), || {
        ready.exists()
    });
}

#[test]
fn print_confirm_moves_a_batch_s_jobs_to_printed_and_their_receipts_say_so() {
    let mut env = printing_env();
    env.start();
    let id = env.submit("2480", None);
    let receipt = env.wait_receipt(&id);
    assert_eq!(receipt["state"], "print-queued");
    assert_eq!(receipt["recipients"][0]["printed_at"], Value::Null);
    let batch = batch_of(&receipt);
    wait_closed(&env, &batch);

    let listed = env.ok(&["print", "list"]);
    assert!(
        listed.contains(&batch) && listed.contains("READY, waiting for the print shop"),
        "{listed}"
    );
    let refused = env.run(&["print", "confirm", "20200101-001"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no print batch 20200101-001"));

    let said = env.ok(&[
        "print",
        "confirm",
        &batch,
        "--reason",
        "tryckeriet ringde 14.10",
        "--operator",
        "ops-anna",
    ]);
    assert!(
        said.contains(&format!(
            "print batch {batch} confirmed printed and posted: 1 job(s)"
        )),
        "{said}"
    );
    let status = env.status(&id);
    assert_eq!(status["job"]["state"], "printed");
    assert!(common::has_event(
        &status,
        &format!(
            "print batch {batch} confirmed printed and posted by ops-anna: tryckeriet ringde 14.10"
        )
    ));
    common::wait_for("the receipt says printed", Duration::from_secs(30), || {
        env.receipt(&id).is_some_and(|r| {
            r["state"] == "printed" && r["recipients"][0]["printed_at"].is_string()
        })
    });
    let text = env.ok(&["status", &id]);
    assert!(text.contains("printed and posted 20"), "{text}");

    // Twice is harmless: it says so and changes nothing.
    let again = env.ok(&["print", "confirm", &batch]);
    assert!(
        again.contains("was confirmed before, by ops-anna"),
        "{again}"
    );
    let listed = env.ok(&["print", "list"]);
    assert!(
        listed.contains("printed and posted (confirmed by ops-anna"),
        "{listed}"
    );
    env.stop();
}

#[test]
fn an_open_batch_cannot_be_confirmed() {
    let mut env = Env::new();
    env.start();
    let id = env.submit("2480", None);
    let receipt = env.wait_receipt(&id);
    let batch = batch_of(&receipt);
    let out = env.run(&["print", "confirm", &batch]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is still open"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.status(&id)["job"]["state"], "print-queued");
    env.stop();
}

/// Runs `cmd` as `nobody` in group `nogroup` with no other groups: the print shop's account.
fn as_print_shop(args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
        .args(args)
        .output()
        .expect("setpriv (util-linux)")
}

#[test]
fn the_print_shop_s_group_reads_batches_and_nothing_else_in_the_spool() {
    let mut env = printing_env();
    env.set_env("KURIR_PRINT__GROUP", "nogroup");
    // The test's own folder lets others pass, as /var/spool does.
    std::fs::set_permissions(env.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    env.start();
    let id = env.submit("2480", None);
    let receipt = env.wait_receipt(&id);
    let batch = batch_of(&receipt);
    wait_closed(&env, &batch);
    let nogroup = 65534;
    let print = env.spool().join("print");
    let meta = std::fs::metadata(&print).expect("print");
    assert_eq!(meta.gid(), nogroup);
    assert_eq!(meta.mode() & 0o7777, 0o2750);
    let letter = print
        .join(&batch)
        .join(receipt["recipients"][0]["letter"].as_str().expect("letter"));
    assert_eq!(
        std::fs::metadata(&letter).expect("letter").mode() & 0o777,
        0o640
    );

    let read = as_print_shop(&["cat", &letter.to_string_lossy()]);
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    assert!(read.stdout.starts_with(b"%PDF-"));
    let manifest = as_print_shop(&[
        "cat",
        &print.join(&batch).join("manifest.csv").to_string_lossy(),
    ]);
    assert!(manifest.status.success());
    for closed in [
        env.spool().join("incoming"),
        env.spool().join("active").join(&id),
        env.spool().join("receipts"),
        env.path().join("state"),
    ] {
        let out = as_print_shop(&["ls", &closed.to_string_lossy()]);
        assert!(
            !out.status.success(),
            "the print shop can read {}",
            closed.display()
        );
    }
    let doctor = env.ok(&["doctor"]);
    assert!(
        doctor.contains("others may pass through to the folders of [print] group"),
        "{doctor}"
    );
    env.stop();
}

#[test]
fn retention_removes_old_alerts_receipts_reports_and_batches_and_keeps_their_facts() {
    let mut env = printing_env();
    for key in [
        "KURIR_RETENTION__RECEIPTS_AFTER",
        "KURIR_RETENTION__ALERTS_AFTER",
        "KURIR_RETENTION__REPORTS_AFTER",
        "KURIR_RETENTION__PRINT_AFTER",
    ] {
        env.set_env(key, "2s");
    }
    env.start();
    // A letter in a batch the print shop confirms.
    let id = env.submit("2480", None);
    let receipt = env.wait_receipt(&id);
    let batch = batch_of(&receipt);
    wait_closed(&env, &batch);
    env.ok(&["print", "confirm", &batch]);
    // A bad job: quarantined, with an alert file.
    env.drop_job("trasig", "this is not toml [", &[]);
    let alerts = env.spool().join("alerts");
    common::wait_for("the quarantine alert", Duration::from_secs(30), || {
        std::fs::read_dir(&alerts).is_ok_and(|d| d.count() > 0)
    });
    // A report that matches no job (stored by a pipe that could not check its address).
    let tmp = env.spool().join("inbound/tmp");
    std::fs::create_dir_all(&tmp).expect("tmp");
    std::fs::write(
        tmp.join("20261130T000000.000001-x.eml"),
        "Kurir-Envelope-To: kurir-reports@agency.test\r\nFrom: x@y.test\r\nSubject: hej\r\n\r\nnot a report\r\n",
    )
    .expect("write");
    std::fs::rename(
        tmp.join("20261130T000000.000001-x.eml"),
        env.spool().join("inbound/new/20261130T000000.000001-x.eml"),
    )
    .expect("rename");
    let unmatched = env.spool().join("inbound/unmatched");
    common::wait_for("the report set aside", Duration::from_secs(30), || {
        std::fs::read_dir(&unmatched).is_ok_and(|d| d.count() > 0)
    });

    let empty = |dir: &std::path::Path| std::fs::read_dir(dir).is_ok_and(|d| d.count() == 0);
    let batch_dir = env.spool().join("print").join(&batch);
    common::wait_for("retention", Duration::from_secs(60), || {
        empty(&alerts)
            && empty(&env.spool().join("receipts"))
            && empty(&unmatched)
            && !batch_dir.exists()
    });
    // The facts stay: the job, its letter's hash and the batch's record.
    let status = env.status(&id);
    assert_eq!(status["job"]["state"], "printed");
    assert_eq!(
        status["job"]["recipients"][0]["letter"]["sha256"],
        receipt["recipients"][0]["letter_sha256"]
    );
    let batches: Value = serde_json::from_str(&env.ok(&["print", "list", "--json"])).expect("json");
    let record = batches
        .as_array()
        .expect("batches")
        .iter()
        .find(|b| b["batch"]["id"] == batch.as_str())
        .expect("the batch is still on record");
    assert!(
        record["batch"]["files_removed_at"].is_string(),
        "{record:#}"
    );
    assert!(record["batch"]["confirmed"]["by"].is_string());
    env.stop();
}

#[test]
fn the_print_shop_through_sudo_names_no_settings_file_and_no_other_person() {
    // As sudoers lets the print shop run it: `sudo -u kurir kurir print confirm …`, an
    // unprivileged user acting for another. A settings file of its choice would let it read
    // what kurir may read through the error message; another name would put it in the history.
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret.toml");
    std::fs::write(&secret, "password = \"hunter2\n").expect("write");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let through_sudo = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_kurir"))
            .args(args)
            .current_dir(dir.path())
            .env("SUDO_UID", "1001")
            .env("SUDO_USER", "tryckeriet")
            .output()
            .expect("setpriv")
    };
    let out = through_sudo(&[
        "--config",
        &secret.to_string_lossy(),
        "print",
        "confirm",
        "20261130-001",
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("--config and KURIR_CONFIG are refused"),
        "{said}"
    );
    assert!(!said.contains("hunter2"), "{said}");
    let out = through_sudo(&["print", "confirm", "20261130-001", "--operator", "chefen"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("takes no --operator"), "{said}");
}
