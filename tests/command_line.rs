//! The command line behaves like a Unix tool an operator can trust: it reads the settings it
//! is pointed at (or the installed ones), never answers from a store it made up, ends quietly
//! when its reader goes away, refuses codes that name no municipality, and says each error once.

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use common::Env;

#[test]
fn a_command_run_where_there_is_no_store_says_where_it_looked_and_makes_none() {
    let env = Env::new();
    for args in [
        vec!["list"],
        vec!["audit", "verify"],
        vec!["municipality", "show", "2480"],
    ] {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let said = String::from_utf8_lossy(&out.stderr);
        let state = env.path().join("state");
        assert!(
            said.contains(&format!("no kurir store in {}", state.display())),
            "{args:?}: {said}"
        );
        assert!(said.contains("--config /etc/kurir/kurir.toml"), "{said}");
        assert!(!state.join("db").exists(), "{args:?} made a store");
    }
    let doctor = env.run(&["doctor"]);
    assert_eq!(doctor.status.code(), Some(1), "doctor passes with no store");
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("fail  store: no kurir store")),
        "{text}"
    );
}

#[test]
fn relative_paths_in_a_settings_file_are_taken_from_its_folder() {
    let env = Env::new();
    let etc = env.path().join("etc");
    std::fs::create_dir_all(&etc).expect("mkdir");
    let settings = etc.join("kurir.toml");
    std::fs::write(
        &settings,
        "[spool]\ndir = \"../var/spool\"\n[store]\ndir = \"../var/state\"\n",
    )
    .expect("settings");
    // The daemon runs in the environment's folder; its paths come from etc/.
    let mut daemon = env
        .kurir()
        .env("KURIR_CONFIG", &settings)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("daemon");
    let socket = env.path().join("var/state/kurir.sock");
    common::wait_for(
        "the daemon's socket under var/",
        Duration::from_secs(30),
        || socket.exists(),
    );
    assert!(!env.path().join("state").exists() && !env.path().join("spool").exists());
    // Another folder, the same settings: the same store.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let doctor = env
        .kurir()
        .env("KURIR_CONFIG", &settings)
        .current_dir(elsewhere.path())
        .arg("doctor")
        .output()
        .expect("doctor");
    let _ = daemon.kill();
    let _ = daemon.wait();
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        text.contains(&format!("loaded from {}", settings.display())),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "ok    store: {}",
            etc.join("../var/state/db").display()
        )),
        "{text}"
    );
}

#[test]
fn output_into_a_pipe_closed_early_ends_quietly() {
    let mut env = Env::new();
    env.make_store();
    let mut child = env
        .kurir()
        .args(["municipality", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kurir runs");
    // The reader goes away before the first line, as `| head -0` would.
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    let status = child.wait().expect("exits");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn a_kommunkod_that_names_no_municipality_is_refused_by_every_command() {
    let mut env = Env::new();
    env.make_store();
    for args in [
        vec!["hold", "--to", "9999", "--reason", "x"],
        vec!["retry", "--to", "0000"],
        vec!["municipality", "show", "9999"],
        vec![
            "municipality",
            "grant",
            "9999",
            "--hsa-id",
            "SE2321000016-1234",
        ],
    ] {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?} accepted");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("not one of the 290"), "{args:?}: {said}");
    }
    let queue = env.ok(&["queue"]);
    assert!(!queue.contains("9999"), "{queue}");
}

#[test]
fn list_shows_what_waits_in_incoming_and_that_no_daemon_takes_it_in() {
    let mut env = Env::new();
    env.make_store();
    let id = env.submit("2480", None);
    let list = env.ok(&["list"]);
    assert!(list.contains("-- 0 job(s)"), "{list}");
    assert!(
        list.contains("1 waiting in spool/incoming/ (NO DAEMON RUNS"),
        "{list}"
    );
    assert!(list.contains(&id), "{list}");

    env.start();
    env.wait_receipt(&id);
    let unfinished = env.ok(&["list", "--state", "unfinished"]);
    assert!(unfinished.contains("-- 0 job(s)"), "{unfinished}");
    let several = env.ok(&["list", "--state", "held,print-queued", "--state", "failed"]);
    assert!(several.contains("-- 1 job(s)"), "{several}");
    assert!(!several.contains("waiting in spool/incoming/"), "{several}");
}

#[test]
fn times_are_swedish_local_time_to_the_second_or_utc_on_request() {
    let mut env = Env::new();
    env.start();
    let id = env.submit("2480", None);
    env.wait_receipt(&id);
    let local = env.ok(&["status", &id]);
    let utc = env.ok(&["status", &id, "--utc"]);
    let first_time = |text: &str| -> String {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("20") && l.contains("received"))
            .unwrap_or_else(|| panic!("no history line: {text}"))
            .trim_start()
            .to_string();
        line.split("  ").next().unwrap_or("").to_string()
    };
    let (local, utc) = (first_time(&local), first_time(&utc));
    // 2026-11-30 12:47:35 / 2026-11-30 11:47:35Z: seconds, no fraction, no `T`.
    assert_eq!(local.len(), 19, "{local}");
    assert_eq!(utc.len(), 20, "{utc}");
    assert!(utc.ends_with('Z') && !local.contains('.'), "{local} {utc}");
    let at = |text: &str| {
        jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", text.trim_end_matches('Z'))
            .expect("a time")
    };
    let zone = jiff::tz::TimeZone::get("Europe/Stockholm").expect("zone");
    let as_utc = at(&utc).to_zoned(jiff::tz::TimeZone::UTC).expect("utc");
    assert_eq!(
        as_utc.with_time_zone(zone).datetime(),
        at(&local),
        "local {local} is not utc {utc} in Sweden"
    );
}

#[test]
fn an_error_says_its_cause_once() {
    let mut env = Env::new();
    env.make_store();
    let out = env.run(&[
        "submit",
        "--to",
        "2480",
        "--case",
        common::CASE,
        "--anvisningsbeslut",
        "nope.pdf",
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(said.matches("does not exist").count(), 1, "{said}");
}

#[test]
fn secrets_handed_over_as_systemd_credentials_replace_the_settings() {
    let env = Env::new();
    let credentials = env.path().join("credentials");
    std::fs::create_dir_all(&credentials).expect("mkdir");
    // As `LoadCredential=kurir:/etc/kurir/credentials` hands over a folder's files.
    let key = credentials.join("kurir_smime-sign-key");
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").expect("key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).expect("chmod");
    std::fs::write(credentials.join("kurir_smtp-password"), "hemligt\n").expect("password");
    let doctor = env
        .kurir()
        .env("CREDENTIALS_DIRECTORY", &credentials)
        .env("KURIR_SMTP__HOST", "127.0.0.1")
        .env("KURIR_SMTP__FROM", "anvisning@kurir-test.example")
        .env("KURIR_SMIME__SIGN_KEY", "/nowhere/agency-sign.key")
        .arg("doctor")
        .output()
        .expect("doctor");
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        text.contains(&format!("S/MIME signing key: {} mode 0400", key.display())),
        "{text}"
    );
    assert!(!text.contains("/nowhere/"), "{text}");
}

/// `kurir submit` of one synthetic decision to Umeå, as this test's user (root).
fn submit_one(env: &Env, marker: &str) -> std::process::Output {
    let pdf = env.path().join(format!("{marker}.pdf"));
    std::fs::write(&pdf, common::pdf::beslut(marker)).expect("pdf");
    env.run(&[
        "submit",
        "--to",
        "2480",
        "--case",
        "12-345678",
        "--anvisningsbeslut",
        pdf.to_str().expect("path"),
    ])
}

/// Every file and folder under `dir` that does not belong to `uid`.
fn not_owned_by(dir: &std::path::Path, uid: u32, out: &mut Vec<String>) {
    use std::os::unix::fs::MetadataExt;
    for entry in std::fs::read_dir(dir)
        .expect("readable")
        .filter_map(|e| e.ok())
    {
        let meta = entry.path().symlink_metadata().expect("meta");
        if meta.uid() != uid {
            out.push(entry.path().display().to_string());
        }
        if meta.is_dir() {
            not_owned_by(&entry.path(), uid, out);
        }
    }
}

#[test]
fn root_without_a_daemon_answers_and_submits_as_the_store_s_owner_and_leaves_nothing_of_roots() {
    use std::os::unix::fs::MetadataExt;
    let mut env = Env::new();
    env.start();
    let job = env.submit("2480", None);
    env.wait_receipt(&job);
    env.stop();
    // The store and spool belong to the service's user (here nobody); root runs commands by
    // hand while the daemon is stopped.
    let nobody = common::postfix::NOBODY;
    env.give_folders_to(nobody);
    // Answered from the store, by a process of the store's owner: a read and a write.
    let status = env.ok(&["status", &job]);
    assert!(status.contains(&job), "{status}");
    env.ok(&["municipality", "set", "2480", "--phone", "090-16 10 00"]);
    // Read by root, written into the spool by its owner's process.
    let out = submit_one(&env, "ROOT");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).to_string();
    let submitted = env.spool().join("incoming").join(id.trim());
    assert_eq!(submitted.metadata().expect("submitted").uid(), nobody);
    let mut roots = Vec::new();
    not_owned_by(&env.path().join("state"), nobody, &mut roots);
    not_owned_by(&env.spool(), nobody, &mut roots);
    assert!(roots.is_empty(), "left to root: {roots:?}");
}

#[test]
fn a_spool_owner_who_links_tmp_elsewhere_cannot_make_roots_submit_write_there() {
    let env = Env::new();
    // The spool belongs to the service's user (here nobody), who points `tmp` at a folder of
    // root's, hoping `sudo kurir submit` builds the job there as root.
    let nobody = 65534;
    let spool = env.spool();
    std::fs::create_dir_all(spool.join("incoming")).expect("spool");
    for path in [spool.clone(), spool.join("incoming")] {
        std::os::unix::fs::chown(&path, Some(nobody), Some(nobody)).expect("chown");
    }
    std::fs::set_permissions(env.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let roots = env.path().join("roots");
    std::fs::create_dir_all(&roots).expect("root's folder");
    std::os::unix::fs::symlink(&roots, spool.join("tmp")).expect("link");
    let out = submit_one(&env, "LINK");
    assert!(
        !out.status.success(),
        "the job was written through the link"
    );
    assert_eq!(
        std::fs::read_dir(&roots).expect("roots").count(),
        0,
        "root's folder got a job"
    );
}
