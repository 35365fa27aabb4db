//! Operations and security: systemd notify and hardening, the audit chain, metrics and health,
//! doctor, retention, and the quarantine commands.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pki::{Ca, Usage};
use common::{manifest, pdf, Env};

#[test]
fn the_unit_file_is_hardened_to_at_most_2_0() {
    let unit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/kurir.service");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze is installed (tests/setup)");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no rating:\n{text}"));
    let level: f64 = line
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("a number");
    assert!(level <= 2.0, "{line}");
}

#[test]
fn the_daemon_tells_systemd_it_is_ready_and_pings_the_watchdog() {
    let mut env = Env::new();
    let socket = env.path().join("notify.sock");
    let listener = UnixDatagram::bind(&socket).expect("bind");
    listener
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    env.set_env("NOTIFY_SOCKET", &socket.to_string_lossy())
        .set_env("WATCHDOG_USEC", "300000");
    env.start();
    let (mut ready, mut watchdog, mut status) = (false, false, false);
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while !(ready && watchdog && status) && start.elapsed() < Duration::from_secs(20) {
        if let Ok(n) = listener.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]);
            ready |= msg.lines().any(|l| l == "READY=1");
            watchdog |= msg.lines().any(|l| l == "WATCHDOG=1");
            status |= msg.lines().any(|l| l.starts_with("STATUS="));
        }
    }
    assert!(ready, "no READY=1");
    assert!(watchdog, "no WATCHDOG=1");
    assert!(status, "no STATUS=");
    env.stop();
}

#[test]
fn tampering_with_one_audit_entry_is_found_and_named() {
    let mut env = Env::new();
    env.start();
    env.ok(&[
        "municipality",
        "set",
        "2480",
        "--postal-address",
        "Box 1\\n901 84 Umeå",
        "--contact",
        "Anna Berg, 090-16 10 00, anna@umea-test.example",
        "--phone",
        "090-16 10 00",
    ]);
    let ids: Vec<String> = (0..2).map(|_| env.submit("2480", None)).collect();
    for id in &ids {
        env.wait_receipt(id);
    }
    env.stop();

    let out = env.ok(&["audit", "verify"]);
    let entries: u64 = out
        .trim()
        .strip_prefix("ok, ")
        .and_then(|s| s.strip_suffix(" entries"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(entries >= 7, "registry change + 3 events per job: {out}");

    let export = env.ok(&["audit", "export", "--since", "2020-01-01"]);
    let lines: Vec<serde_json::Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len() as u64, entries);
    assert!(export.contains(&ids[0]) && export.contains("sha256"));
    assert!(!export.contains("Anna Berg"), "a name in the audit export");
    assert!(
        !export.contains(common::CASE),
        "a case number in the audit export"
    );

    // Copy the store, change one entry's words in the copy, and verify the copy.
    let copy = env.path().join("state-copy");
    copy_dir(&env.path().join("state"), &copy);
    {
        let db = sled::open(copy.join("db")).expect("open copy");
        let audit = db.open_tree("audit").expect("tree");
        let key = 3u64.to_be_bytes();
        let bytes = audit.get(key).expect("get").expect("entry 3");
        let mut entry: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        entry["action"] = serde_json::Value::String("nothing to see here".into());
        audit
            .insert(key, serde_json::to_vec(&entry).expect("json"))
            .expect("insert");
        db.flush().expect("flush");
    }
    let out = env
        .kurir()
        .env("KURIR_STORE__DIR", &copy)
        .args(["audit", "verify"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("BROKEN at entry 3"), "{text}");
    // The original is untouched.
    assert!(env.ok(&["audit", "verify"]).starts_with("ok, "));

    // A rewrite that recomputes every link from the changed entry on, and the head, holds
    // together as a chain: only the head's seal, made with the integrity key, gives it away.
    let rewritten = env.path().join("state-rewritten");
    copy_dir(&env.path().join("state"), &rewritten);
    {
        use kurir::store::audit::{entry_hash, AuditEntry};
        let db = sled::open(rewritten.join("db")).expect("open copy");
        let audit = db.open_tree("audit").expect("tree");
        let meta = db.open_tree("meta").expect("tree");
        let mut prev = String::new();
        for seq in 1..=entries {
            let key = seq.to_be_bytes();
            let bytes = audit.get(key).expect("get").expect("entry");
            let mut entry: AuditEntry = serde_json::from_slice(&bytes).expect("entry");
            if seq == 3 {
                entry.action = "nothing to see here".into();
            }
            if seq > 3 {
                entry.prev = prev.clone();
            }
            entry.hash = entry_hash(&entry);
            prev = entry.hash.clone();
            audit
                .insert(key, serde_json::to_vec(&entry).expect("json"))
                .expect("insert");
        }
        let mut head: serde_json::Value =
            serde_json::from_slice(&meta.get(b"audit_head").expect("get").expect("head"))
                .expect("head");
        head["hash"] = serde_json::Value::String(prev);
        meta.insert(b"audit_head", serde_json::to_vec(&head).expect("json"))
            .expect("insert");
        db.flush().expect("flush");
    }
    let out = env
        .kurir()
        .env("KURIR_STORE__DIR", &rewritten)
        .args(["audit", "verify"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a rewritten chain verified: {text}"
    );
    assert!(text.contains("the chain's seal does not match"), "{text}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_type().expect("type").is_file() {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// Parses Prometheus text with the Prometheus project's own parser; returns sample lines as
/// `name{labels} value`, sorted.
fn parse_metrics(text: &str) -> Vec<String> {
    let script =
        "import sys\nfrom prometheus_client.parser import text_string_to_metric_families\n\
        for fam in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in fam.samples:\n\
        \x20       labels = ','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))\n\
        \x20       print(f'{s.name}{{{labels}}} {s.value}')\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("parser");
    assert!(
        out.status.success(),
        "not valid Prometheus text: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

fn sample(lines: &[String], name_and_labels: &str) -> f64 {
    lines
        .iter()
        .find_map(|l| {
            l.strip_prefix(name_and_labels)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

#[test]
fn a_quiet_daemon_reads_its_spool_only_on_its_rescan_timer() {
    let mut env = Env::new();
    env.start();
    let id = env.submit("2480", None);
    env.wait_receipt(&id);
    let scans = |env: &Env| {
        let (_, text) = env.http_get("/metrics");
        sample(&parse_metrics(&text), "kurir_intake_scans_total{}")
    };
    let before = scans(&env);
    assert!(before >= 1.0, "the job was claimed by at least one scan");
    // Nothing arrives for 3 s: the 5 s rescan timer fires at most once, and the watcher's
    // events about intake's own reads of the folder must not start another scan.
    std::thread::sleep(Duration::from_secs(3));
    let quiet = scans(&env) - before;
    assert!(
        quiet <= 3.0,
        "{quiet} scans of incoming/ in 3 quiet seconds: intake wakes itself"
    );
    // A new job still wakes it at once.
    let second = env.submit("2480", None);
    env.wait_receipt(&second);
    assert!(
        scans(&env) > before + quiet,
        "the second job came without a scan"
    );
    env.stop();
}

#[test]
fn doctor_passes_after_the_quick_start_on_a_fresh_clone() {
    let mut env = Env::new();
    // What a fresh clone holds: spool/ with its README, at the umask's 0755.
    let spool = env.spool();
    std::fs::create_dir(&spool).expect("spool");
    std::fs::write(spool.join("README.md"), "# spool/\n").expect("readme");
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let before = env.run(&["doctor"]);
    assert!(
        !before.status.success(),
        "doctor should refuse a world-readable spool"
    );
    // The quick start: `kurir run` on its defaults.
    env.start();
    env.stop();
    let mode = std::fs::metadata(&spool)
        .expect("spool")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700, "the daemon leaves the spool at {mode:04o}");
    assert!(
        env.logs().contains("restricted a folder kurir owns"),
        "the daemon did not say it changed the spool's mode"
    );
    let out = env.run(&["doctor"]);
    assert!(
        out.status.success(),
        "doctor fails after the quick start:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(spool.join("README.md").is_file(), "the README went missing");
}

#[test]
fn metrics_parse_and_move_as_jobs_flow_and_health_is_green() {
    let mut env = Env::new();
    env.set_env("KURIR_SPOOL__SETTLE", "1s");
    env.start();
    let (status, body) = env.http_get("/healthz");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"store_writable\":true"));

    let (_, before) = env.http_get("/metrics");
    let before = parse_metrics(&before);
    let id = env.submit("2480", None);
    env.wait_receipt(&id);
    env.drop_job(
        "broken",
        &manifest("2480", &[("anvisningsbeslut", "b.pdf")]),
        &[("b.pdf", b"garbage")],
    );
    common::wait_for("quarantine", Duration::from_secs(30), || {
        env.receipts().len() == 2
    });

    let (status, text) = env.http_get("/metrics");
    assert_eq!(status, 200);
    let after = parse_metrics(&text);
    let delta = |name: &str| sample(&after, name) - sample(&before, name);
    assert_eq!(
        delta("kurir_jobs_received_total{channel=post}"),
        1.0,
        "{after:#?}"
    );
    assert_eq!(delta("kurir_jobs_delivered_total{channel=post}"), 1.0);
    assert_eq!(delta("kurir_jobs_quarantined_total{}"), 1.0);
    assert_eq!(
        delta("kurir_delivery_latency_seconds_count{channel=post}"),
        1.0
    );
    assert!(after
        .iter()
        .any(|l| l.starts_with("kurir_queue_depth{state=deferred}")));
    assert!(after
        .iter()
        .any(|l| l.starts_with("kurir_oldest_undelivered_age_seconds")));
    assert!(
        !text.contains(&id) && !text.contains(common::CASE),
        "personal or per-job data in labels"
    );
    env.stop();
}

#[test]
fn doctor_flags_an_expired_certificate_a_world_readable_key_and_an_unreachable_relay() {
    let mut env = Env::new();
    env.make_store();
    let ca = Ca::new(&env.path().join("pki"), "kurir test CA");
    let agency = ca.issue(
        "agency",
        Usage::ExpiredEmail("anvisning@kurir-test.example"),
    );
    std::fs::set_permissions(&agency.key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let out = env
        .kurir()
        .env("KURIR_SMTP__HOST", "127.0.0.1")
        .env("KURIR_SMTP__PORT", closed_port.to_string())
        .env("KURIR_SMTP__FROM", "anvisning@kurir-test.example")
        .env("KURIR_SMTP__CA_FILE", &ca.pem)
        .env("KURIR_SMIME__SIGN_CERT", &agency.cert)
        .env("KURIR_SMIME__SIGN_KEY", &agency.key)
        .arg("doctor")
        .output()
        .expect("doctor runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let fails: Vec<&str> = text.lines().filter(|l| l.starts_with("fail")).collect();
    assert!(
        fails
            .iter()
            .any(|l| l.contains("S/MIME signing certificate") && l.contains("expired")),
        "{text}"
    );
    assert!(
        fails
            .iter()
            .any(|l| l.contains("S/MIME signing key") && l.contains("readable by others")),
        "{text}"
    );
    assert!(
        fails
            .iter()
            .any(|l| l.contains(&format!("relay 127.0.0.1:{closed_port}"))),
        "{text}"
    );

    // A healthy post-only installation passes.
    let mut env2 = Env::new();
    env2.start();
    env2.stop();
    let out = env2.run(&["doctor"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn retention_removes_delivered_documents_and_keeps_their_hashes() {
    let mut env = Env::new();
    env.set_env("KURIR_RETENTION__DOCUMENTS_AFTER", "2s");
    env.start();
    let id = env.submit("2480", None);
    let receipt = env.wait_receipt(&id);
    let active = env.spool().join("active").join(&id);
    assert!(active.is_dir());
    common::wait_for("documents purged", Duration::from_secs(30), || {
        !active.exists()
    });
    let status = env.status(&id);
    assert!(common::has_event(
        &status,
        "documents removed from the spool"
    ));
    let hashes = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .expect("documents")
            .iter()
            .map(|d| d["sha256"].as_str().expect("sha").to_string())
            .collect()
    };
    assert_eq!(
        hashes(&status["job"]["documents"]),
        hashes(&receipt["documents"]),
        "hashes kept"
    );
    let audit = env.ok(&["audit", "export", "--since", "2020-01-01"]);
    assert!(
        audit.contains(&hashes(&receipt["documents"])[0]),
        "the audit log keeps the hashes"
    );
    let letter = env
        .spool()
        .join("print")
        .join(receipt["batch"].as_str().expect("batch"))
        .join(receipt["recipients"][0]["letter"].as_str().expect("letter"));
    assert!(
        letter.exists(),
        "letters for the print shop are not the spool's to purge"
    );
    env.stop();
}

#[test]
fn quarantined_jobs_can_be_listed_shown_released_after_correction_and_deleted() {
    let mut env = Env::new();
    env.set_env("KURIR_SPOOL__SETTLE", "1s");
    env.start();
    let good = pdf::beslut("FIXED");
    for name in ["fix-me", "throw-away"] {
        env.drop_job(
            name,
            &manifest("2480", &[("anvisningsbeslut", "b.pdf")]),
            &[("b.pdf", b"%PDF-1.7 broken")],
        );
    }
    common::wait_for("two quarantined", Duration::from_secs(30), || {
        env.receipts().len() == 2
    });
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&env.ok(&["quarantine", "list", "--json"])).expect("json");
    assert_eq!(list.len(), 2);
    let id_of = |dir: &str| {
        list.iter().find(|q| q["dir"] == dir).expect("listed")["job_id"]
            .as_str()
            .expect("id")
            .to_string()
    };
    let (fix, drop) = (id_of("fix-me"), id_of("throw-away"));
    let shown = env.ok(&["quarantine", "show", &fix]);
    assert!(shown.contains("pdf-") && shown.contains("b.pdf"), "{shown}");

    // The operator corrects the document in place and releases the job.
    std::fs::write(env.spool().join("quarantine/fix-me/b.pdf"), &good).expect("fix");
    let refused = env.run(&["quarantine", "release", &fix]);
    assert!(!refused.status.success(), "release without a reason");
    env.ok(&[
        "quarantine",
        "release",
        &fix,
        "--reason",
        "rättat dokument",
        "--operator",
        "ops",
    ]);
    common::wait_for("resubmitted job done", Duration::from_secs(30), || {
        env.receipts()
            .iter()
            .any(|r| r["source"] == format!("released-{fix}") && r["state"] == "print-queued")
    });

    env.ok(&[
        "quarantine",
        "delete",
        &drop,
        "--reason",
        "dubblett",
        "--operator",
        "ops",
    ]);
    assert!(!env.spool().join("quarantine/throw-away").exists());
    let events = env.status(&drop)["events"].to_string();
    assert!(
        events.contains("deleted from quarantine by ops: dubblett"),
        "{events}"
    );
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&env.ok(&["quarantine", "list", "--json"])).expect("json");
    assert!(list.is_empty(), "{list:?}");
    env.stop();
}

#[test]
fn a_daemon_that_cannot_start_says_why_once_and_stops_its_loops() {
    // The ops address is taken: the daemon stops at start, after its loops began. They are
    // told to stop, not left to spin on a dropped shutdown signal (thousands of log lines).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut env = Env::new();
    env.set_env(
        "KURIR_OPS__LISTEN",
        &taken.local_addr().expect("addr").to_string(),
    );
    let out = env.run(&["run"]);
    assert!(!out.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("Address already in use"), "{said}");
    assert!(!said.contains("will look again"), "{said}");
    assert!(
        said.lines().count() < 40,
        "{} lines:\n{said}",
        said.lines().count()
    );
}

#[test]
fn a_store_that_cannot_be_written_stops_the_daemon_to_be_started_again_and_nothing_is_lost() {
    // The store on a small file system of its own, filled to the last byte: sled fails every
    // write from then on, even once space is back. The daemon must not look alive while it
    // records nothing: it stops, failing, for systemd (Restart=on-failure) to start it again.
    let mut env = Env::new();
    let disk = env.path().join("state");
    std::fs::create_dir(&disk).expect("mkdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(&disk)
        .status()
        .expect("mount");
    assert!(
        mounted.success(),
        "mounting a small tmpfs (tests run as root)"
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(disk.clone());
    std::fs::set_permissions(&disk, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    env.start();
    let before = env.submit("2480", None);
    env.wait_receipt(&before);

    // Fill the file system.
    let filled = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", disk.join("fill").display()))
        .stderr(Stdio::null())
        .status()
        .expect("dd");
    assert!(!filled.success(), "dd stops at a full disk");
    let during = env.submit("2480", None);

    let status = env.wait_exit(Duration::from_secs(120)).unwrap_or_else(|| {
        panic!(
            "the daemon kept running on a store it cannot write:\n{}",
            env.log_tail(20)
        )
    });
    assert!(!status.success(), "it stopped as if all were well");
    let logs = env.logs();
    assert!(
        logs.contains("kurir stopped so that the service manager starts it again"),
        "{}",
        env.log_tail(20)
    );

    // Space is back and the service manager starts it again: nothing was lost.
    std::fs::remove_file(disk.join("fill")).expect("free");
    env.start();
    for id in [&before, &during] {
        assert_eq!(env.wait_receipt(id)["state"], "print-queued");
    }
    assert!(env.ok(&["audit", "verify"]).starts_with("ok"));
    env.stop();
}
