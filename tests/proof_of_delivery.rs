//! Proof of delivery with real servers on loopback: kurir sends through a private Postfix
//! acting as the agency's relay (DSN on, TLS to the next hop) to a second private Postfix
//! acting as the municipality's mail server; the reports come back through the relay's
//! `pipe(8)` to `kurir inbound`, and the daemon pins each on its job and recipient.
//!
//! - Umeå (umea.test): the final server delivers to a Maildir and reports `delivered`.
//! - Stockholm (nodsn.test): the final server's listener offers no DSN; the relay reports
//!   `relayed`, shown as weaker proof.
//! - Kiruna (refusing.test): the relay accepts, then the next hop refuses; Postfix's own bounce
//!   comes back, the letter is made at once and the alert names the municipality.
//!
//! Then a read notification composed as Thunderbird composes one, and a forged one.

mod common;

use std::time::Duration;

use common::mailworld::{self, thunderbird_mdn};
use common::{has_event, Env};

fn recipient<'a>(status: &'a serde_json::Value, code: &str) -> &'a serde_json::Value {
    status["job"]["recipients"]
        .as_array()
        .expect("recipients")
        .iter()
        .find(|r| r["kommunkod"] == code)
        .expect("recipient")
}

#[test]
fn reports_from_real_mail_servers_confirm_fail_over_to_post_and_mark_read() {
    let mut env = Env::new();
    let world = mailworld::start(&mut env);
    let (relay, municipality) = (&world.relay, &world.municipality);
    let spool = env.spool();
    env.start();

    let umea = env.submit("2480", None);
    let stockholm = env.submit("0180", None);
    let kiruna = env.submit("2584", None);
    // Kiruna's failure report may already have come back and sent it to post.
    env.wait_receipt(&kiruna);
    for id in [&umea, &stockholm] {
        let receipt = env.wait_receipt(id);
        assert_eq!(
            receipt["state"],
            "delivered",
            "{id}: {:#}\nrelay log:\n{}",
            receipt["events"],
            relay.log()
        );
    }

    // The message as the municipality's server stored it asks for a read notification at the
    // same per-recipient address its envelope sender (Return-Path) carries.
    let mut stored = Vec::new();
    common::wait_for(
        "the message in Umeå's mailbox",
        Duration::from_secs(60),
        || {
            stored = municipality.maildir("umea");
            !stored.is_empty()
        },
    );
    let raw = String::from_utf8_lossy(&std::fs::read(&stored[0]).expect("read")).to_string();
    let header = |name: &str| {
        raw.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(|v| v.trim().trim_matches(['<', '>']).to_string())
    };
    let return_path = header("Return-Path").expect("Return-Path");
    assert!(
        return_path.starts_with("kurir-reports+") && return_path.ends_with("@agency.test"),
        "{return_path}"
    );
    assert_eq!(
        header("Disposition-Notification-To").as_deref(),
        Some(return_path.as_str())
    );

    let proof_of = |id: &str, code: &str, kind: &str| {
        let mut last = serde_json::Value::Null;
        let found = (0..300).any(|_| {
            last = env.status(id);
            let hit = recipient(&last, code)["email"]["reports"]
                .as_array()
                .is_some_and(|rs| rs.iter().any(|r| r["kind"] == kind));
            if !hit {
                std::thread::sleep(Duration::from_millis(200));
            }
            hit
        });
        let unmatched: Vec<String> = std::fs::read_dir(spool.join("inbound/unmatched"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".reason"))
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            found,
            "no {kind} report for {code}: {last:#}\nunmatched: {unmatched:?}\nrelay log:\n{}\nfinal log:\n{}\ndaemon log:\n{}",
            relay.log(),
            municipality.log(),
            env.log_tail(40)
        );
        last
    };
    let confirmed = proof_of(&umea, "2480", "delivered");
    assert!(
        has_event(&confirmed, "2480: delivery confirmed by"),
        "{confirmed:#}"
    );
    // The receipt is written again once the report is recorded (by the receipt writer, a
    // moment later).
    let mut receipt = serde_json::Value::Null;
    common::wait_for(
        "the receipt says delivered",
        Duration::from_secs(30),
        || {
            receipt = env.receipt(&umea).unwrap_or_default();
            receipt["recipients"][0]["confirmed"] == "delivered"
        },
    );
    let report = &receipt["recipients"][0]["reports"][0];
    assert_eq!(report["status"], "2.0.0");
    assert!(report["arrival_date"].is_string(), "{report}");
    assert_eq!(report["final_recipient"], "registrator@umea.test");
    assert_eq!(report["sha256"].as_str().map(str::len), Some(64));

    let relayed = proof_of(&stockholm, "0180", "relayed");
    assert!(has_event(&relayed, "weaker proof"), "{relayed:#}");

    let failed = proof_of(&kiruna, "2584", "failed");
    assert!(has_event(&failed, "falling back to post"), "{failed:#}");
    let receipt = {
        let mut r = serde_json::Value::Null;
        common::wait_for("Kiruna's letter", Duration::from_secs(30), || {
            r = env.receipt(&kiruna).unwrap_or_default();
            r["state"] == "print-queued"
        });
        r
    };
    assert!(
        receipt["recipients"][0]["letter"].is_string(),
        "{receipt:#}"
    );
    assert!(receipt["recipients"][0]["email"]["rejected"]
        .as_str()
        .unwrap_or("")
        .contains("5.1.1"));
    let alert = std::fs::read_dir(spool.join("alerts"))
        .expect("alerts")
        .filter_map(|e| e.ok())
        .map(|e| std::fs::read_to_string(e.path()).expect("alert"))
        .find(|a| a.contains(&kiruna) && a.contains("fell-back"))
        .expect("an alert about Kiruna's failed delivery");
    assert!(
        alert.contains("Kiruna") && alert.contains("0980-123 45"),
        "the alert does not name the municipality and its phone: {alert}"
    );

    // A read notification, as Thunderbird sends it, through `kurir inbound`.
    let message_id = recipient(&confirmed, "2480")["email"]["message_id"]
        .as_str()
        .expect("message id")
        .to_string();
    let mdn = thunderbird_mdn(&return_path, &message_id, "registrator@umea.test");
    let out = env.inbound(&return_path, mdn.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = proof_of(&umea, "2480", "displayed");
    assert!(has_event(&read, "2480: read"), "{read:#}");
    common::wait_for("the receipt says read", Duration::from_secs(30), || {
        env.receipt(&umea)
            .is_some_and(|r| r["recipients"][0]["read_at"].is_string())
    });
    let list = env.ok(&["list"]);
    assert!(
        list.contains("read:2480") && list.contains("relayed:0180"),
        "{list}"
    );

    // A forged report: the same notification to an address whose token's MAC is wrong.
    let mut forged_address = return_path.clone();
    let at = forged_address.find('@').expect("@");
    forged_address.replace_range(at - 4..at, "0000");
    let forged = thunderbird_mdn(&forged_address, &message_id, "registrator@umea.test")
        .replace("displayed", "deleted");
    // Where the pipe can read the report key (here root runs it), it refuses the address at
    // once (EX_NOUSER) ...
    let out = env.inbound(&forged_address, forged.as_bytes());
    assert_eq!(
        out.status.code(),
        Some(67),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ... and where it cannot (a relay's pipe user without the key), the message is stored
    // and the daemon, which can, sets it aside.
    kurir::inbound::store_message(
        &kurir::spool::Spool::new(&spool),
        forged.as_bytes(),
        Some(&forged_address),
        1 << 20,
        None,
    )
    .expect("stored as a pipe without the key stores it");
    common::wait_for(
        "the forged report set aside",
        Duration::from_secs(30),
        || {
            std::fs::read_dir(spool.join("inbound/unmatched"))
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .any(|e| e.file_name().to_string_lossy().ends_with(".reason"))
                })
                .unwrap_or(false)
        },
    );
    let after = env.status(&umea);
    let reports = recipient(&after, "2480")["email"]["reports"]
        .as_array()
        .expect("reports")
        .clone();
    assert!(
        reports.iter().all(|r| r["kind"] != "deleted"),
        "a forged report changed the job: {reports:#?}"
    );

    let (_, metrics) = env.http_get("/metrics");
    for outcome in [
        "confirmed",
        "relayed",
        "failed_after_acceptance",
        "read",
        "unmatched",
    ] {
        assert!(
            metrics.contains(&format!(
                "kurir_proof_reports_total{{outcome=\"{outcome}\"}}"
            )),
            "{outcome} not counted:\n{metrics}"
        );
    }
    assert!(!env.logs().contains(common::CASE), "case number in the log");
    env.stop();
    drop(world);
}
