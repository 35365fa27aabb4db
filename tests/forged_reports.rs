//! Forged delivery reports, tried as whoever has seen a message's return address would: a
//! copy of the final server's `delivered` report changed to `failed`, a report about another
//! mailbox, a DSN that claims a reading, and a thousand changed copies. The real daemon, the
//! real `kurir inbound`, and the real SMTP test server the job was delivered to.

mod common;

use std::time::Duration;

use common::mail::{register_and_prove, rig, UMEA};
use common::Env;

/// A delivery report as a relay writes one, for `recipient`, saying `action`; `extra` is put
/// among its headers (to make changed copies).
fn dsn(envid: &str, recipient: &str, action: &str, extra: &str) -> String {
    format!(
        "From: MAILER-DAEMON@relay.agency.test\r\nSubject: Delivery report\r\n{extra}\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B1\"\r\n\r\n\
         --B1\r\nContent-Type: text/plain\r\n\r\nThe mail system.\r\n\r\n\
         --B1\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; relay.agency.test\r\nOriginal-Envelope-Id: {envid}\r\n\r\n\
         Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\n\
         Status: 2.0.0\r\nRemote-MTA: dns; mx.umea-test.example\r\n\r\n--B1--\r\n"
    )
}

fn email(env: &Env, id: &str) -> serde_json::Value {
    env.status(id)["job"]["recipients"][0]["email"].clone()
}

fn count(value: &serde_json::Value, field: &str) -> usize {
    value[field].as_array().map(Vec::len).unwrap_or(0)
}

fn unmatched_reasons(env: &Env) -> Vec<String> {
    std::fs::read_dir(env.spool().join("inbound/unmatched"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".reason"))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn letters(env: &Env) -> usize {
    common::letter_files(&env.spool()).len()
}

#[test]
fn forged_reports_change_nothing_but_the_conflict_and_unmatched_records() {
    let mut rig = rig();
    rig.env
        .set_env("KURIR_PROOF__RETURN_PATH", "kurir-reports@agency.test")
        .set_env("KURIR_SPOOL__RESCAN_INTERVAL", "1s");
    rig.env.start();
    register_and_prove(&rig);
    let id = rig.env.submit("2480", None);
    assert_eq!(rig.env.wait_receipt(&id)["state"], "delivered");
    let return_path = email(&rig.env, &id)["accepted"]["return_path"]
        .as_str()
        .expect("a return path")
        .to_string();
    let envid = format!("{id}.2480");
    let feed = |message: String| {
        let out = rig.env.inbound(&return_path, message.as_bytes());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    // The final server's report: the recipient is confirmed.
    feed(dsn(&envid, UMEA, "delivered", ""));
    common::wait_for("the delivery confirmed", Duration::from_secs(30), || {
        count(&email(&rig.env, &id), "reports") == 1
    });

    // A copy of it changed to `failed`: kept as a conflict; no letter, no change of state.
    feed(dsn(&envid, UMEA, "failed", "X-Forged: 1\r\n"));
    common::wait_for(
        "the forged failure kept as a conflict",
        Duration::from_secs(30),
        || count(&email(&rig.env, &id), "conflicts") == 1,
    );
    let status = rig.env.status(&id);
    assert_eq!(status["job"]["state"], "delivered");
    assert!(status["job"]["recipients"][0]["email"]["rejected"].is_null());
    assert!(
        common::has_event(&status, "conflicting report set aside (failed)"),
        "{status:#}"
    );
    assert_eq!(letters(&rig.env), 0, "a forged failure made a letter");
    let alerts: Vec<String> = std::fs::read_dir(rig.env.spool().join("alerts"))
        .expect("alerts")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        alerts.contains(&format!("{id}-conflicting-report-2480.json")),
        "{alerts:?}"
    );

    // A report about another mailbox: set aside with the reason.
    feed(dsn(
        &envid,
        "someone@elsewhere.example",
        "delivered",
        "X-Other: 1\r\n",
    ));
    common::wait_for(
        "the other recipient's report set aside",
        Duration::from_secs(30),
        || {
            unmatched_reasons(&rig.env)
                .iter()
                .any(|r| r.contains("not the address the message to 2480 was sent to"))
        },
    );

    // A DSN that claims the message was read proves no reading.
    feed(dsn(&envid, UMEA, "displayed", "X-Claim: read\r\n"));
    common::wait_for("the claim recorded", Duration::from_secs(30), || {
        let e = email(&rig.env, &id);
        count(&e, "reports") + count(&e, "conflicts") == 3
    });
    let receipt = rig.env.wait_receipt(&id);
    assert!(
        receipt["recipients"][0]["read_at"].is_null(),
        "a delivery report counted as a reading: {receipt:#}"
    );

    // A thousand changed copies, as the MTA's pipe would store them: at most twenty reports
    // are kept for the recipient, the rest are set aside; nothing else changes.
    let new = rig.env.spool().join("inbound/new");
    let tmp = rig.env.spool().join("inbound/tmp");
    std::fs::create_dir_all(&tmp).expect("tmp");
    for i in 0..1000 {
        let name = format!("20261130T000000.{i:06}-forged{i}.eml");
        let content = format!(
            "Kurir-Envelope-To: {return_path}\r\n{}",
            dsn(&envid, UMEA, "failed", &format!("X-Copy: {i}\r\n"))
        );
        std::fs::write(tmp.join(&name), content).expect("write");
        std::fs::rename(tmp.join(&name), new.join(&name)).expect("rename");
    }
    common::wait_for("every copy taken in", Duration::from_secs(120), || {
        rig.env.assert_alive();
        std::fs::read_dir(&new)
            .map(|d| d.count() == 0)
            .unwrap_or(false)
    });
    let e = email(&rig.env, &id);
    let kept = count(&e, "reports") + count(&e, "conflicts");
    assert_eq!(kept, 20, "reports kept for one recipient: {kept}");
    assert!(
        unmatched_reasons(&rig.env)
            .iter()
            .filter(|r| r.contains("more are set aside"))
            .count()
            >= 980
    );
    assert_eq!(rig.env.status(&id)["job"]["state"], "delivered");
    assert_eq!(letters(&rig.env), 0);
    assert_eq!(
        std::fs::read_dir(rig.env.spool().join("alerts"))
            .expect("alerts")
            .filter_map(|e| e.ok())
            .filter(|e| e
                .file_name()
                .to_string_lossy()
                .contains("conflicting-report"))
            .count(),
        1,
        "one alert for the recipient's conflicts, not one per copy"
    );
    rig.env.stop();
}
