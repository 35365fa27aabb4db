//! The inbound channel under stress: hostile messages are set aside with a reason and never
//! stop the daemon; a report stored while the daemon is down (or whose move was interrupted by
//! a crash) is recorded exactly once; and a message nobody confirms or reads raises one alert
//! of each kind, naming the municipality's phone number.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::mail::{register_and_prove, rig};
use common::Env;
use kurir::job::{JobId, Kommunkod};
use kurir::report_token::{TokenKey, KEY_FILE};

/// A delivery report as Postfix writes one, for `envid`, with `action`.
fn dsn(envid: &str, action: &str) -> String {
    format!(
        "From: MAILER-DAEMON@relay.agency.test\r\nSubject: Delivery report\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B1\"\r\n\r\n\
         --B1\r\nContent-Type: text/plain\r\n\r\nThe mail system.\r\n\r\n\
         --B1\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; relay.agency.test\r\nOriginal-Envelope-Id: {envid}\r\n\r\n\
         Final-Recipient: rfc822; registrator@umea-test.example\r\nAction: {action}\r\n\
         Status: 2.0.0\r\nRemote-MTA: dns; mx.umea-test.example\r\n\r\n--B1--\r\n"
    )
}

fn key_of(env: &Env) -> TokenKey {
    TokenKey::from_bytes(&std::fs::read(env.path().join("state").join(KEY_FILE)).expect("key"))
}

fn reasons(env: &Env) -> Vec<String> {
    let dir = env.spool().join("inbound/unmatched");
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".reason"))
                .map(|e| std::fs::read_to_string(e.path()).expect("reason"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn hostile_inbound_messages_are_set_aside_with_a_reason_and_the_daemon_keeps_running() {
    let mut env = Env::new();
    env.set_env("KURIR_PROOF__MAX_INBOUND_BYTES", "20000")
        .set_env("KURIR_SPOOL__RESCAN_INTERVAL", "1s");
    env.start();
    let postal = env.submit("2480", None);
    env.wait_receipt(&postal);
    let key = key_of(&env);
    let code: Kommunkod = "2480".parse().expect("code");
    let valid = |job: &JobId| {
        key.return_path("kurir-reports@agency.test", job, code)
            .expect("token")
    };

    let big = vec![b'x'; 30_000];
    let out = env.inbound(&valid(&JobId::generate()), &big);
    assert_eq!(
        out.status.code(),
        Some(65),
        "an oversize message must be refused for good"
    );

    // An address kurir never gave out — none, or a made-up token — is refused at the pipe
    // (no such recipient) before the message is read: it costs no disk.
    for recipient in [
        "kurir-reports@agency.test",
        "kurir-reports+20261129000000aabbccddeeff24800123456789ab@agency.test",
    ] {
        let out = env.inbound(recipient, &vec![b'x'; 19_000]);
        assert_eq!(
            out.status.code(),
            Some(67),
            "{recipient}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        std::fs::read_dir(env.spool().join("inbound/new")).map_or(0, |d| d.count()),
        0,
        "a message to a made-up address was stored"
    );

    let cases: Vec<(String, Vec<u8>, &str)> = vec![
        (
            valid(&JobId::generate()),
            dsn("x.2480", "delivered").into_bytes(),
            "no job",
        ),
        (
            valid(&postal.parse().expect("id")),
            dsn(&format!("{postal}.2480"), "delivered").into_bytes(),
            "sent no e-mail to 2480",
        ),
        (
            valid(&postal.parse().expect("id")),
            (0..200)
                .map(|i| {
                    format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                })
                .collect::<String>()
                .into_bytes(),
            "too many MIME parts",
        ),
        (
            valid(&postal.parse().expect("id")),
            b"Subject: out of office\r\n\r\nI am away.\r\n".to_vec(),
            "not a delivery report",
        ),
    ];
    for (recipient, message, _) in &cases {
        let out = env.inbound(recipient, message);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    common::wait_for("every message set aside", Duration::from_secs(30), || {
        env.assert_alive();
        reasons(&env).len() == cases.len()
    });
    let all = reasons(&env).join("\n");
    for (_, _, reason) in &cases {
        assert!(all.contains(reason), "no reason {reason:?} among:\n{all}");
    }
    // The daemon still works.
    let after = env.submit("2480", None);
    assert_eq!(env.wait_receipt(&after)["state"], "print-queued");
    let (_, metrics) = env.http_get("/metrics");
    assert!(
        metrics.contains(&format!(
            "kurir_proof_reports_total{{outcome=\"unmatched\"}} {}",
            cases.len()
        )),
        "{metrics}"
    );
    env.stop();
}

#[test]
fn the_pipe_run_by_root_writes_as_the_spool_s_owner() {
    use std::os::unix::fs::MetadataExt;
    let mut env = Env::new();
    env.start();
    let job = env.submit("2480", None);
    env.wait_receipt(&job);
    env.stop();
    // The spool and the store belong to the service's user (here nobody); root runs the pipe
    // by hand.
    let nobody = common::postfix::NOBODY;
    env.give_folders_to(nobody);
    let _ = std::fs::remove_dir_all(env.spool().join("inbound"));
    let key = key_of(&env);
    let code: Kommunkod = "2480".parse().expect("code");
    let to = key
        .return_path("kurir-reports@agency.test", &job.parse().expect("id"), code)
        .expect("token");
    let out = env.inbound(&to, dsn(&format!("{job}.2480"), "delivered").as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for dir in ["inbound", "inbound/tmp", "inbound/new"] {
        let meta = std::fs::metadata(env.spool().join(dir)).expect(dir);
        assert_eq!(meta.uid(), nobody, "{dir} made as root");
    }
    let stored = std::fs::read_dir(env.spool().join("inbound/new"))
        .expect("new")
        .filter_map(|e| e.ok())
        .next()
        .expect("the message");
    assert_eq!(stored.metadata().expect("meta").uid(), nobody);
}

#[test]
fn a_spool_owner_who_plants_a_link_cannot_make_roots_pipe_give_away_a_root_folder() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    // The spool belongs to the service's user (here nobody), who replaces `inbound` by a link
    // to a folder of root's, hoping root's pipe will hand `<it>/tmp` over while it stores.
    let nobody = 65534;
    let spool = env.spool();
    std::fs::create_dir_all(&spool).expect("spool");
    std::os::unix::fs::chown(&spool, Some(nobody), Some(nobody)).expect("chown");
    std::fs::set_permissions(
        env.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let roots = env.path().join("roots");
    std::fs::create_dir_all(roots.join("tmp")).expect("root's folder");
    std::fs::create_dir_all(roots.join("new")).expect("root's folder");
    std::os::unix::fs::symlink(&roots, spool.join("inbound")).expect("link");
    let out = env.inbound(
        "kurir-reports+x@agency.test",
        b"From: a@b\r\nSubject: x\r\n\r\nbody\r\n",
    );
    assert!(!out.status.success(), "stored through the link as root");
    for dir in [&roots, &roots.join("tmp"), &roots.join("new")] {
        let meta = std::fs::metadata(dir).expect("meta");
        assert_eq!(meta.uid(), 0, "{} was given away", dir.display());
    }
    assert_eq!(
        std::fs::read_dir(roots.join("tmp")).expect("tmp").count(),
        0,
        "root wrote into its own folder for the spool's owner"
    );
}

#[test]
fn a_report_stored_while_the_daemon_is_down_is_recorded_exactly_once() {
    let mut rig = rig();
    rig.env
        .set_env("KURIR_PROOF__RETURN_PATH", "kurir-reports@agency.test")
        .set_env("KURIR_SPOOL__RESCAN_INTERVAL", "1s");
    rig.env.start();
    register_and_prove(&rig);
    let id = rig.env.submit("2480", None);
    assert_eq!(rig.env.wait_receipt(&id)["state"], "delivered");
    let status = rig.env.status(&id);
    let return_path = status["job"]["recipients"][0]["email"]["accepted"]["return_path"]
        .as_str()
        .expect("a per-recipient return path was used")
        .to_string();
    rig.env.kill9();

    // The MTA hands over a report while no daemon runs.
    let out = rig.env.inbound(
        &return_path,
        dsn(&format!("{id}.2480"), "delivered").as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rig.env.start();
    let reports = |env: &Env| {
        env.status(&id)["job"]["recipients"][0]["email"]["reports"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
    };
    common::wait_for("the report recorded", Duration::from_secs(30), || {
        reports(&rig.env) == 1
    });
    rig.env.kill9();

    // As if the crash had come after the record and before the move: the file is back.
    let done = rig.env.spool().join("inbound/done");
    let file = std::fs::read_dir(&done)
        .expect("done")
        .filter_map(|e| e.ok())
        .next()
        .expect("the processed report is kept");
    std::fs::copy(
        file.path(),
        rig.env.spool().join("inbound/new").join(file.file_name()),
    )
    .expect("put back");
    rig.env.start();
    common::wait_for("the report taken in again", Duration::from_secs(30), || {
        std::fs::read_dir(rig.env.spool().join("inbound/new"))
            .map(|d| d.count() == 0)
            .unwrap_or(false)
    });
    assert_eq!(reports(&rig.env), 1, "the same report was recorded twice");
    let receipt = rig.env.wait_receipt(&id);
    assert_eq!(
        receipt["recipients"][0]["confirmed"], "delivered",
        "{receipt:#}"
    );

    // A `delayed` report after the delivery report would move the recipient backwards: it is
    // kept as a conflict, an event, and changes no state.
    let out = rig.env.inbound(
        &return_path,
        dsn(&format!("{id}.2480"), "delayed").as_bytes(),
    );
    assert!(out.status.success());
    let conflicts = |env: &Env| {
        env.status(&id)["job"]["recipients"][0]["email"]["conflicts"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
    };
    common::wait_for(
        "the late delay kept as a conflict",
        Duration::from_secs(30),
        || conflicts(&rig.env) == 1,
    );
    assert_eq!(reports(&rig.env), 1);
    let status = rig.env.status(&id);
    assert_eq!(status["job"]["state"], "delivered");
    assert!(
        common::has_event(&status, "2480: conflicting report set aside (delayed)"),
        "{status:#}"
    );

    // This test's SMTP server (aiosmtpd) offers no DSN: the job and doctor say proof ends at
    // the relay.
    assert_eq!(
        status["job"]["recipients"][0]["email"]["accepted"]["dsn_requested"],
        false
    );
    let text = rig.env.ok(&["status", &id]);
    assert!(text.contains("proof ends at the relay"), "{text}");
    let doctor = rig.env.run(&["doctor"]);
    let doctor = String::from_utf8_lossy(&doctor.stdout).to_string();
    assert!(
        doctor.contains("delivery reports") && doctor.contains("does not offer DSN"),
        "{doctor}"
    );
    rig.env.stop();
}

#[test]
fn a_message_nobody_confirms_or_reads_raises_one_alert_of_each_kind_with_the_phone_number() {
    let mut rig = rig();
    rig.env
        .set_env("KURIR_PROOF__RETURN_PATH", "kurir-reports@agency.test")
        .set_env("KURIR_PROOF__CONFIRM_WITHIN", "1h")
        .set_env("KURIR_PROOF__READ_WITHIN", "2h");
    rig.env.start();
    register_and_prove(&rig);
    let id = rig.env.submit("2480", None);
    assert_eq!(rig.env.wait_receipt(&id)["state"], "delivered");
    rig.env.stop();

    // Working time cannot be waited for in a test: the deadline check is asked about a
    // moment two weeks on, against the real store and spool the daemon left.
    let dir = rig.env.path();
    let mut settings = kurir::config::Settings::default();
    settings.spool.dir = dir.join("spool");
    settings.store.dir = dir.join("state");
    settings.proof.return_path = "kurir-reports@agency.test".into();
    // The daemon's own wiring in this process, with a clock the test moves.
    let now = jiff::Timestamp::now();
    let clock = Arc::new(kurir::clock::ManualClock::at(now));
    let kurir = kurir::assemble::Kurir::build(&settings, clock.clone()).expect("kurir");
    let (store, spool, inbound) = (&kurir.store, kurir.spool.clone(), &kurir.inbound);
    assert_eq!(
        inbound.check_deadlines(inbound.now()).expect("check"),
        0,
        "too early"
    );
    clock.advance(jiff::SignedDuration::from_hours(24 * 7));
    let later = inbound.now();
    assert_eq!(store.awaiting_proof().expect("index").len(), 1);
    assert_eq!(inbound.check_deadlines(later).expect("check"), 2);
    // The alert writer's round, as the daemon's task would make it.
    assert_eq!(kurir.alerter.raise_owed().expect("alert writer"), 2);
    assert!(
        store.awaiting_proof().expect("index").is_empty(),
        "a job with both alerts raised stays in the index of jobs awaiting proof"
    );
    assert_eq!(
        inbound.check_deadlines(later).expect("check"),
        0,
        "raised twice"
    );
    let alerts: Vec<String> = std::fs::read_dir(spool.alerts())
        .expect("alerts")
        .filter_map(|e| e.ok())
        .map(|e| std::fs::read_to_string(e.path()).expect("alert"))
        .filter(|a| a.contains(&id))
        .collect();
    let unread = alerts
        .iter()
        .find(|a| a.contains("\"unread\""))
        .expect("an unread alert");
    assert!(
        unread.contains("090-16 10 00") && unread.contains("Phone the municipality"),
        "{unread}"
    );
    assert!(alerts.iter().any(|a| a.contains("\"unconfirmed\"")));
    let events = store.events(&id.parse().expect("id")).expect("events");
    assert!(events.iter().any(|e| e.detail.contains("not read in time")));
}
