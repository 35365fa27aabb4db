//! Forged delivery reports, tried as whoever has seen a message's return address would: a
//! copy of the final server's `delivered` report changed to `failed`, a report about another
//! mailbox, a DSN that claims a reading, and a thousand changed copies — and real reports whose
//! blocks name our recipient and another mailbox (an alias expanded at the municipality), which
//! are judged block by block, none set aside unseen. The real daemon, the real
//! `kurir inbound`, and the real SMTP test server the job was delivered to.

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

/// The e-mail rig with delivery reports asked for, 2480 registered and proven.
fn reporting_rig() -> common::mail::Rig {
    let mut rig = rig();
    rig.env
        .set_env("KURIR_PROOF__RETURN_PATH", "kurir-reports@agency.test")
        .set_env("KURIR_SPOOL__RESCAN_INTERVAL", "1s");
    rig.env.start();
    register_and_prove(&rig);
    rig
}

/// A decision to 2480, delivered: its id and the return address its reports come back to.
fn delivered(env: &Env) -> (String, String) {
    let id = env.submit("2480", None);
    assert_eq!(env.wait_receipt(&id)["state"], "delivered");
    let return_path = email(env, &id)["accepted"]["return_path"]
        .as_str()
        .expect("a return path")
        .to_string();
    (id, return_path)
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
    let mut rig = reporting_rig();
    let (id, return_path) = delivered(&rig.env);
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
    // The alert is written just after the report is recorded.
    common::wait_for("the conflict's alert", Duration::from_secs(10), || {
        rig.env
            .spool()
            .join(format!("alerts/{id}-conflicting-report-2480.json"))
            .is_file()
    });

    // A report about another mailbox (its token valid): proves nothing about the one the
    // message was sent to, changes nothing — and is kept on the job with an alert, not set
    // aside where nobody looks.
    feed(dsn(
        &envid,
        "someone@elsewhere.example",
        "delivered",
        "X-Other: 1\r\n",
    ));
    common::wait_for(
        "the other mailbox's report kept on the job",
        Duration::from_secs(30),
        || count(&email(&rig.env, &id), "elsewhere") == 1,
    );
    assert_eq!(rig.env.status(&id)["job"]["state"], "delivered");
    common::wait_for("the job's alert", Duration::from_secs(10), || {
        rig.env
            .spool()
            .join(format!(
                "alerts/{id}-report-names-another-address-2480.json"
            ))
            .is_file()
    });

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
    assert_eq!(
        count(&e, "elsewhere"),
        1,
        "another mailbox's report has a budget of its own"
    );
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

/// A delivery report as Exchange writes one when a decision address is a group that expanded
/// at the municipality: a block for the address kurir sent to and one for a member mailbox,
/// each with its own action (no Original-Recipient on the member's).
fn two_block_dsn(envid: &str, ours: (&str, &str, &str), member: (&str, &str, &str)) -> String {
    let block = |(recipient, action, status): (&str, &str, &str)| {
        format!(
            "Final-Recipient: rfc822;{recipient}\r\nAction: {action}\r\nStatus: {status}\r\n\
             Diagnostic-Code: smtp;{status} mailbox status\r\n\
             Remote-MTA: dns;mx.umea-test.example\r\n"
        )
    };
    format!(
        "From: postmaster@umea-test.example\r\nSubject: Undeliverable\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B2\"\r\n\r\n\
         --B2\r\nContent-Type: text/plain\r\n\r\nDelivery has failed to these recipients or \
         groups.\r\n\r\n\
         --B2\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns;mx.umea-test.example\r\nOriginal-Envelope-Id: {envid}\r\n\
         Arrival-Date: Mon, 7 Dec 2026 09:00:00 +0000\r\n\r\n\
         {}\r\n{}\r\n--B2--\r\n",
        block(ours),
        block(member)
    )
}

#[test]
fn a_failure_report_naming_our_recipient_and_another_makes_the_letter_and_alerts_the_job() {
    let mut rig = reporting_rig();

    // The address kurir sent to failed, and a member mailbox of the group failed too: the
    // block about ours makes the letter at once; the other block is kept and alerted.
    let (id, return_path) = delivered(&rig.env);
    let report = two_block_dsn(
        &format!("{id}.2480"),
        (UMEA, "failed", "5.2.2"),
        ("arkiv@umea-test.example", "failed", "5.1.1"),
    );
    let out = rig.env.inbound(&return_path, report.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::wait_for("the letter", Duration::from_secs(30), || {
        letters(&rig.env) == 1
    });
    let status = rig.env.status(&id);
    assert_eq!(
        count(&status["job"]["recipients"][0]["email"], "elsewhere"),
        1
    );
    for kind in ["fell-back", "report-names-another-address"] {
        common::wait_for(kind, Duration::from_secs(10), || {
            rig.env
                .spool()
                .join(format!("alerts/{id}-{kind}-2480.json"))
                .is_file()
        });
    }

    // Only a member mailbox's block: the decision reached the address kurir sent to as far
    // as anyone knows, so no letter — but the token proves the report is about this decision,
    // and a person is told, on the job.
    let (second, return_path) = delivered(&rig.env);
    let report = two_block_dsn(
        &format!("{second}.2480"),
        ("arkiv@umea-test.example", "failed", "5.1.1"),
        ("diarium@umea-test.example", "delayed", "4.4.1"),
    );
    let out = rig.env.inbound(&return_path, report.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::wait_for("kept on the job", Duration::from_secs(30), || {
        count(&email(&rig.env, &second), "elsewhere") == 2
    });
    assert_eq!(rig.env.status(&second)["job"]["state"], "delivered");
    assert_eq!(
        letters(&rig.env),
        1,
        "no letter for another mailbox's failure"
    );
    common::wait_for("the job's alert", Duration::from_secs(10), || {
        rig.env
            .spool()
            .join(format!(
                "alerts/{second}-report-names-another-address-2480.json"
            ))
            .is_file()
    });
    assert!(
        unmatched_reasons(&rig.env).is_empty(),
        "a report about this decision was set aside: {:?}",
        unmatched_reasons(&rig.env)
    );
    rig.env.stop();
}
