//! Deadlines in simulated time: kurir built in this process by the daemon's own wiring
//! ([`Kurir::build`]) with a clock the test sets; intake takes jobs in when the clock says and
//! the queue manager's `round(now)` is called with the instants that matter — no sleeping for
//! hours. The parts are real: the store, the spool, the deliverers, and a real SMTP server
//! that answers 451 to every attempt.

mod common;

use std::sync::Arc;

use common::peer::Peer;
use common::pki::{Ca, Usage};
use common::{manifest, pdf};
use jiff::{civil::DateTime, tz::TimeZone, Timestamp};
use kurir::assemble::Kurir;
use kurir::clock::ManualClock;
use kurir::config::Settings;
use kurir::job::{JobId, Kommunkod};
use kurir::registry::Changes;
use kurir::spool::Spool;
use kurir::store::state::JobState;
use serde_json::json;

const UMEA: &str = "registrator@umea-test.example";

fn stockholm(s: &str) -> Timestamp {
    let dt: DateTime = s.parse().expect("datetime");
    dt.to_zoned(TimeZone::get("Europe/Stockholm").expect("tz"))
        .expect("zoned")
        .timestamp()
}

struct World {
    _dir: tempfile::TempDir,
    _peer: Peer,
    /// Simulated time: when jobs are received.
    clock: Arc<ManualClock>,
    kurir: Kurir,
}

/// A complete kurir in this process (the daemon's own wiring, [`Kurir::build`]) with
/// simulated time, e-mail to 2480 proven and always answered by 451.
fn world(adjust: impl FnOnce(&mut Settings)) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let ca = Ca::new(&root.join("pki"), "kurir test CA");
    let server = ca.issue("server", Usage::Server);
    let agency = ca.issue("agency", Usage::Email("anvisning@kurir-test.example"));
    let peer = Peer::start(&root.join("peer"), Some((&server.cert, &server.key)));
    peer.set_rules(json!({ UMEA: { "tempfail": 1_000_000 } }));

    let mut settings = Settings::default();
    settings.spool.dir = root.join("spool");
    settings.store.dir = root.join("state");
    settings.smtp.host = "127.0.0.1".into();
    settings.smtp.port = peer.port;
    settings.smtp.ca_file = ca.pem.clone();
    // The peer is a local server without DNS: its hop is not what these tests test.
    settings.connection.required = false;
    settings.smtp.from = "anvisning@kurir-test.example".into();
    settings.smime.sign_cert = agency.cert.clone();
    settings.smime.sign_key = agency.key.clone();
    settings.queue.jitter = 0.0;
    adjust(&mut settings);

    Spool::new(&settings.spool.dir).ensure().expect("spool");
    let clock = Arc::new(ManualClock::at(Timestamp::now()));
    let kurir = Kurir::build(&settings, clock.clone()).expect("kurir");
    let store = &kurir.store;
    let code: Kommunkod = "2480".parse().expect("code");
    let mut reg = store.registered(code).expect("registered");
    reg.apply(
        &Changes {
            email: Some(UMEA.into()),
            secure: Some("yes".into()),
            phone: Some("090-16 10 00".into()),
            ..Changes::default()
        },
        Timestamp::now(),
    )
    .expect("valid");
    reg.set_code(
        code,
        "ABCD2345",
        Timestamp::now() + jiff::SignedDuration::from_hours(1),
        &kurir::registry::CodeKey::from_bytes(&[7; 32]),
    )
    .expect("pending");
    reg.confirm(
        code,
        "ABCD2345",
        Timestamp::now(),
        &kurir::registry::CodeKey::from_bytes(&[7; 32]),
        kurir::registry::ChangeContext::agency(),
    )
    .expect("confirmed");
    store
        .register(code, &reg, "test", &kurir::registry::RegistryAction::Set)
        .expect("register");
    World {
        _dir: dir,
        _peer: peer,
        clock,
        kurir,
    }
}

impl World {
    /// Drops a job and lets intake take it in at `at` (simulated time).
    fn job_received_at(&self, at: Timestamp) -> JobId {
        self.clock.set(at);
        let name = format!("job-{}", at.as_second());
        let tmp = self.kurir.spool.tmp().join(&name);
        std::fs::create_dir_all(&tmp).expect("tmp");
        std::fs::write(
            tmp.join("job.toml"),
            manifest(
                "2480",
                &[("anvisningsbeslut", "b.pdf"), ("god-man", "g.pdf")],
            ),
        )
        .expect("manifest");
        std::fs::write(tmp.join("b.pdf"), pdf::beslut("DEADLINE")).expect("pdf");
        std::fs::write(tmp.join("g.pdf"), pdf::god_man("DEADLINE")).expect("pdf");
        std::fs::rename(&tmp, self.kurir.spool.incoming().join(&name)).expect("rename");
        let outcome = self.kurir.intake.scan().expect("scan");
        assert_eq!(outcome.queued, 1);
        let job = self
            .kurir
            .store
            .list(&[JobState::Queued], 10)
            .expect("list")
            .into_iter()
            .find(|j| j.source == name)
            .expect("queued job");
        assert_eq!(job.received_at, at, "received when the clock said");
        job.id
    }

    fn state(&self, id: &JobId) -> JobState {
        self.kurir.store.get(id).expect("get").expect("job").state
    }

    /// The alert files of `kind`, after the alert writer's round (the daemon's task).
    fn alerts(&self, kind: &str) -> usize {
        self.kurir.alerter.raise_owed().expect("alert writer");
        std::fs::read_dir(self.kurir.spool.alerts())
            .expect("alerts")
            .filter_map(|e| e.ok())
            .filter(|e| {
                // `<job>-<kind>.json`, or `<job>-<kind>-<kommunkod>.json` for one recipient.
                let name = e.file_name().to_string_lossy().to_string();
                let stem = name.trim_end_matches(".json");
                let stem = stem
                    .rsplit_once('-')
                    .filter(|(_, code)| code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit()))
                    .map_or(stem, |(rest, _)| rest);
                stem.ends_with(&format!("-{kind}"))
            })
            .count()
    }
}

fn run(round: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(round);
}

#[test]
fn e_mail_gives_way_to_post_after_four_working_hours_across_a_weekend() {
    let w = world(|_| {});
    let t0 = stockholm("2026-11-20 15:00"); // a Friday
    let id = w.job_received_at(t0);
    run(async {
        w.kurir.queue.round(t0).await.expect("round");
        assert_eq!(w.state(&id), JobState::Deferred);
        assert_eq!(w.alerts("deferred-too-long"), 0);

        w.kurir
            .queue
            .round(stockholm("2026-11-20 15:16"))
            .await
            .expect("round");
        assert_eq!(w.state(&id), JobState::Deferred);
        assert_eq!(
            w.alerts("deferred-too-long"),
            1,
            "15 working minutes: alert"
        );

        // Saturday and Sunday do not count: only 2 of the 4 working hours have passed.
        w.kurir
            .queue
            .round(stockholm("2026-11-22 12:00"))
            .await
            .expect("round");
        assert_eq!(w.state(&id), JobState::Deferred);
        w.kurir
            .queue
            .round(stockholm("2026-11-23 09:59"))
            .await
            .expect("round");
        assert_eq!(w.state(&id), JobState::Deferred);
        assert_eq!(w.alerts("fell-back"), 0);

        w.kurir
            .queue
            .round(stockholm("2026-11-23 10:00"))
            .await
            .expect("round");
        assert_eq!(
            w.state(&id),
            JobState::PrintQueued,
            "letters after 4 working hours"
        );
        assert_eq!(w.alerts("fell-back"), 1);
        assert_eq!(w.alerts("deferred-too-long"), 1, "each alert once");
    });
    let job = w.kurir.store.get(&id).expect("get").expect("job");
    assert!(job.recipients[0].letter.is_some());
    assert!(
        job.recipients[0]
            .email
            .as_ref()
            .expect("email")
            .attempts
            .len()
            >= 4
    );
}

#[test]
fn easter_holidays_do_not_count_as_working_time() {
    let w = world(|_| {});
    let t0 = stockholm("2026-04-02 16:00"); // Thursday before långfredagen
    let id = w.job_received_at(t0);
    run(async {
        w.kurir.queue.round(t0).await.expect("round");
        // Annandag påsk (Monday) is a holiday: 1 working hour has passed, not 4.
        w.kurir
            .queue
            .round(stockholm("2026-04-06 12:00"))
            .await
            .expect("round");
        assert_eq!(w.state(&id), JobState::Deferred);
        w.kurir
            .queue
            .round(stockholm("2026-04-07 10:59"))
            .await
            .expect("round");
        assert_eq!(w.state(&id), JobState::Deferred);
        w.kurir
            .queue
            .round(stockholm("2026-04-07 11:00"))
            .await
            .expect("round");
        assert_eq!(w.state(&id), JobState::PrintQueued);
    });
}

#[test]
fn a_job_that_cannot_be_delivered_expires_as_failed_with_an_alert() {
    let w = world(|s| {
        let never = std::time::Duration::from_secs(10_000 * 3600);
        s.deadlines.anvisningsbeslut.fallback_after = never;
        s.deadlines.god_man.fallback_after = never;
    });
    let t0 = stockholm("2026-11-23 09:00");
    let id = w.job_received_at(t0);
    run(async {
        w.kurir.queue.round(t0).await.expect("round");
        w.kurir
            .queue
            .round(stockholm("2026-11-28 08:59"))
            .await
            .expect("round");
        assert_eq!(w.state(&id), JobState::Deferred);
        w.kurir
            .queue
            .round(stockholm("2026-11-28 09:00"))
            .await
            .expect("round");
        assert_eq!(w.state(&id), JobState::Failed, "five days: give up");
    });
    assert_eq!(w.alerts("failed"), 1);
    let receipt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.kurir.spool.receipt(&id)).expect("receipt"))
            .expect("json");
    assert_eq!(receipt["state"], "failed");
    let alert_file = std::fs::read_dir(w.kurir.spool.alerts())
        .expect("alerts")
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().ends_with("-failed.json"))
        .expect("alert file");
    let alert: serde_json::Value =
        serde_json::from_slice(&std::fs::read(alert_file.path()).expect("read")).expect("json");
    assert_eq!(alert["kommunkod"], "2480");
    assert_eq!(alert["phone"], "090-16 10 00");
    assert_eq!(alert["job_id"], id.as_str());
    assert!(!alert["action"].as_str().unwrap_or("").is_empty());
}
