//! Delivery you can count on: faults injected by a real SMTP server (aiosmtpd) end in the right
//! state with the right number of attempts — counted in the server's own log — operator
//! commands work against a running daemon and leave their reason in the history, and SIGTERM
//! lets a session in flight finish.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::mail::{register_and_prove, rig, Rig, UMEA};
use serde_json::{json, Value};

/// A rig whose retries come quickly, proven for 2480, with `rules` at the server.
fn faulty(rules: Value, timeout: &str) -> Rig {
    let mut rig = rig();
    rig.env
        .set_env("KURIR_QUEUE__RETRY_INTERVALS", "1s")
        .set_env("KURIR_QUEUE__JITTER", "0")
        .set_env("KURIR_SMTP__TIMEOUT", timeout);
    rig.env.start();
    register_and_prove(&rig);
    rig.peer.set_rules(json!({ UMEA: rules }));
    rig
}

fn outcomes(receipt: &Value) -> Vec<String> {
    receipt["recipients"][0]["email"]["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["outcome"].as_str().expect("outcome").to_string())
        .collect()
}

/// Message-IDs of everything the server stored, with how often each arrived.
fn stored_message_ids(rig: &Rig) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    for path in rig.peer.messages() {
        let raw = std::fs::read(&path).expect("read");
        let text = String::from_utf8_lossy(&raw);
        if let Some(line) = text
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
        {
            *ids.entry(line[11..].trim().to_string()).or_default() += 1;
        }
    }
    ids
}

#[test]
fn a_421_twice_then_250_is_delivered_on_the_third_attempt() {
    let mut rig = faulty(json!({ "tempfail": 2, "code": 421 }), "5s");
    let before = (rig.peer.count("RCPT"), rig.peer.count("DATA "));
    let id = rig.env.submit("2480", None);
    let receipt = rig.env.wait_receipt(&id);
    assert_eq!(receipt["state"], "delivered");
    assert_eq!(outcomes(&receipt), ["deferred", "deferred", "accepted"]);
    assert_eq!(rig.peer.count("RCPT") - before.0, 3, "{}", rig.peer.log());
    assert_eq!(rig.peer.count("DATA ") - before.1, 1);
    rig.env.stop();
}

#[test]
fn a_550_is_one_attempt_and_a_letter() {
    let mut rig = rig();
    rig.env
        .set_env("KURIR_QUEUE__RETRY_INTERVALS", "1s")
        .set_env("KURIR_ALERTS__EMAIL", "ops@kurir-test.example");
    rig.env.start();
    register_and_prove(&rig);
    rig.peer.set_rules(json!({ UMEA: { "reject": true } }));
    let rcpt = format!("RCPT {UMEA}");
    let before = rig.peer.count(&rcpt);
    let id = rig.env.submit("2480", None);
    let receipt = rig.env.wait_receipt(&id);
    assert_eq!(receipt["state"], "print-queued");
    assert_eq!(outcomes(&receipt), ["rejected"]);
    assert_eq!(rig.peer.count(&rcpt) - before, 1);
    let stored_for_umea = rig
        .peer
        .log()
        .lines()
        .filter(|l| l.starts_with("DATA ") && l.ends_with(UMEA))
        .count();
    assert_eq!(
        stored_for_umea, 1,
        "only the verification message; no DATA after a 550"
    );
    let alerts: Vec<_> = std::fs::read_dir(rig.env.spool().join("alerts"))
        .expect("alerts")
        .collect();
    assert!(!alerts.is_empty(), "a fallback raises an alert");
    common::wait_for(
        "alert e-mail to operations",
        Duration::from_secs(30),
        || {
            rig.peer
                .log()
                .lines()
                .any(|l| l.starts_with("DATA ") && l.ends_with("ops@kurir-test.example"))
        },
    );
    let logs = rig.env.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("\"alert\":\"fell-back\"") && l.contains(&id)),
        "no WARN line with an alert field"
    );
    rig.env.stop();
}

#[test]
fn a_reply_slower_than_the_timeout_is_delivery_unknown_then_resent_with_the_same_message_id() {
    let mut rig = faulty(json!({ "delay": 4, "times": 1 }), "1s");
    let id = rig.env.submit("2480", None);
    let receipt = rig.env.wait_receipt(&id);
    assert_eq!(receipt["state"], "delivered");
    assert_eq!(outcomes(&receipt), ["unknown", "accepted"]);
    let status = rig.env.status(&id);
    assert_eq!(status["job"]["unknown_deliveries"], 1);
    let message_id = format!(
        "<{}>",
        receipt["recipients"][0]["email"]["message_id"]
            .as_str()
            .expect("mid")
    );
    assert_eq!(
        stored_message_ids(&rig).get(&message_id),
        Some(&2),
        "the server kept both copies"
    );
    rig.env.stop();
}

#[test]
fn a_connection_dropped_mid_data_is_tried_again_and_delivered_once() {
    let mut rig = faulty(json!({ "drop_mid_data": 1 }), "5s");
    let id = rig.env.submit("2480", None);
    let receipt = rig.env.wait_receipt(&id);
    assert_eq!(receipt["state"], "delivered");
    let o = outcomes(&receipt);
    assert_eq!(o.len(), 2, "{o:?}");
    assert_eq!(o[1], "accepted");
    assert_eq!(rig.peer.count("DROP-MID-DATA"), 1);
    let message_id = format!(
        "<{}>",
        receipt["recipients"][0]["email"]["message_id"]
            .as_str()
            .expect("mid")
    );
    assert_eq!(
        stored_message_ids(&rig).get(&message_id),
        Some(&1),
        "stored exactly once"
    );
    rig.env.stop();
}

#[test]
fn a_connection_dropped_after_data_is_delivery_unknown_and_the_duplicate_keeps_its_message_id() {
    let mut rig = faulty(json!({ "drop_after_data": 1 }), "5s");
    let id = rig.env.submit("2480", None);
    let receipt = rig.env.wait_receipt(&id);
    assert_eq!(receipt["state"], "delivered");
    assert_eq!(outcomes(&receipt), ["unknown", "accepted"]);
    let message_id = format!(
        "<{}>",
        receipt["recipients"][0]["email"]["message_id"]
            .as_str()
            .expect("mid")
    );
    assert_eq!(stored_message_ids(&rig).get(&message_id), Some(&2));
    assert_eq!(rig.env.status(&id)["job"]["unknown_deliveries"], 1);
    rig.env.stop();
}

fn events(rig: &Rig, id: &str) -> Vec<String> {
    rig.env.status(id)["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["state"].as_str().unwrap_or(""),
                e["detail"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn state(rig: &Rig, id: &str) -> String {
    rig.env.status(id)["job"]["state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn operator_commands_work_against_a_running_daemon_and_record_their_reason() {
    let mut rig = rig();
    rig.env
        .set_env("KURIR_QUEUE__RETRY_INTERVALS", "1h")
        .set_env("KURIR_SMTP__TIMEOUT", "5s");
    rig.env.start();
    register_and_prove(&rig);
    rig.peer.set_rules(json!({ UMEA: { "tempfail": 1000 } }));
    let a = rig.env.submit("2480", None);
    let b = rig.env.submit("2480", None);
    for id in [&a, &b] {
        common::wait_for("deferred", Duration::from_secs(30), || {
            state(&rig, id) == "deferred"
        });
    }

    let shape: Value = serde_json::from_str(&rig.env.ok(&["queue", "--json"])).expect("json");
    assert_eq!(shape["by_municipality"][0]["kommunkod"], "2480");
    assert_eq!(shape["total"][0], 2, "{shape:#}");
    let table = rig.env.ok(&["queue"]);
    assert!(
        table.contains("TOTAL") && table.contains("2480 Umeå kommun"),
        "{table}"
    );

    rig.env.ok(&[
        "hold",
        &a,
        "--reason",
        "kommunen byter e-postserver",
        "--operator",
        "ops-anna",
    ]);
    assert_eq!(state(&rig, &a), "held");
    assert!(events(&rig, &a)
        .iter()
        .any(|e| e == "held held by ops-anna: kommunen byter e-postserver"));

    let rcpts = rig.peer.count("RCPT");
    rig.env.ok(&["retry", &b, "--operator", "ops-anna"]);
    common::wait_for("a new attempt", Duration::from_secs(30), || {
        rig.peer.count("RCPT") > rcpts
    });
    assert!(events(&rig, &b)
        .iter()
        .any(|e| e.contains("retry requested by ops-anna")));

    rig.env
        .ok(&["release", &a, "--reason", "klart", "--operator", "ops-anna"]);
    assert!(events(&rig, &a)
        .iter()
        .any(|e| e.contains("released by ops-anna: klart")));

    // A municipality on hold holds its waiting jobs and any that arrive.
    common::wait_for("a deferred again", Duration::from_secs(30), || {
        state(&rig, &a) == "deferred"
    });
    rig.env
        .ok(&["hold", "--to", "2480", "--reason", "avbrott hos kommunen"]);
    assert_eq!(state(&rig, &a), "held");
    let shown = rig.env.ok(&["municipality", "show", "2480"]);
    assert!(
        shown.contains("route now        none: held"),
        "a held municipality's route: {shown}"
    );
    let c = rig.env.submit("2480", None);
    common::wait_for("new job held", Duration::from_secs(30), || {
        state(&rig, &c) == "held"
    });
    rig.env
        .ok(&["release", "--to", "2480", "--reason", "avbrottet är över"]);
    assert_ne!(state(&rig, &c), "held");

    // `kurir flush` tries every waiting job now, as `postqueue -f` does.
    for id in [&a, &b, &c] {
        common::wait_for("waiting again", Duration::from_secs(30), || {
            state(&rig, id) == "deferred"
        });
    }
    let rcpts = rig.peer.count("RCPT");
    let flushed = rig.env.ok(&["flush", "--reason", "servern är tillbaka"]);
    assert!(flushed.contains("retry: 3 job(s)"), "{flushed}");
    common::wait_for("all three tried again", Duration::from_secs(30), || {
        rig.peer.count("RCPT") >= rcpts + 3
    });
    for id in [&a, &b, &c] {
        assert!(events(&rig, id)
            .iter()
            .any(|e| e.contains("retry requested by") && e.contains("servern är tillbaka")));
    }

    let refused = rig.env.run(&["cancel", &b]);
    assert!(!refused.status.success(), "cancel without a reason");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--reason"));
    common::wait_for("b waiting", Duration::from_secs(30), || {
        state(&rig, &b) == "deferred"
    });
    rig.env.ok(&[
        "cancel",
        &b,
        "--reason",
        "dubblett av ett annat ärende",
        "--operator",
        "ops-bo",
    ]);
    let receipt = rig.env.wait_receipt(&b);
    assert_eq!(receipt["state"], "cancelled");
    assert!(events(&rig, &b)
        .iter()
        .any(|e| e == "cancelled cancelled by ops-bo: dubblett av ett annat ärende"));

    common::wait_for("a waiting", Duration::from_secs(30), || {
        state(&rig, &a) == "deferred"
    });
    rig.env.ok(&[
        "reroute",
        &a,
        "--to-post",
        "--reason",
        "brådskande, skicka brev",
    ]);
    let receipt = rig.env.wait_receipt(&a);
    assert_eq!(receipt["state"], "print-queued");
    assert!(receipt["recipients"][0]["letter"].is_string());
    assert!(events(&rig, &a)
        .iter()
        .any(|e| e.contains("rerouted to post by")));
    rig.env.stop();
}

#[test]
fn sigterm_lets_a_session_in_flight_finish_and_nothing_is_sent_twice() {
    let mut rig = faulty(json!({ "delay": 2, "times": 1 }), "10s");
    let before = rig.peer.count("DATA ");
    let id = rig.env.submit("2480", None);
    common::wait_for("message in flight", Duration::from_secs(30), || {
        rig.peer.count("DELAY") == 1
    });
    rig.env.stop(); // SIGTERM; asserts a clean exit
    let status = rig.env.status(&id);
    assert_eq!(status["job"]["state"], "delivered", "{status:#}");
    rig.env.start();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        rig.peer.count("DATA ") - before,
        1,
        "one decision, nothing resent"
    );
    rig.env.stop();
}

#[test]
fn a_failing_relay_makes_every_job_wait_instead_of_hammering_it() {
    let mut rig = rig();
    rig.env.start();
    register_and_prove(&rig);
    rig.env.stop();
    let plain = common::peer::Peer::start(&rig.env.path().join("plain"), None);
    rig.env
        .set_env("KURIR_SMTP__PORT", &plain.port.to_string())
        .set_env("KURIR_QUEUE__RETRY_INTERVALS", "1m")
        .set_env("KURIR_QUEUE__JITTER", "0");
    rig.env.start();
    let first = rig.env.submit("2480", None);
    common::wait_for("first attempt fails", Duration::from_secs(30), || {
        state(&rig, &first) == "deferred"
    });
    let connections = plain.count("EHLO");
    assert_eq!(connections, 1, "{}", plain.log());

    // A new job for the same relay is not tried while the relay is known to fail.
    let second = rig.env.submit("2480", None);
    common::wait_for("second job deferred", Duration::from_secs(30), || {
        state(&rig, &second) == "deferred"
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        plain.count("EHLO"),
        connections,
        "the failing relay was tried again:\n{}",
        plain.log()
    );
    let shape: Value = serde_json::from_str(&rig.env.ok(&["queue", "--json"])).expect("json");
    assert_eq!(shape["relay"]["failures"], 1, "{shape:#}");
    assert!(shape["relay"]["last_error"]
        .as_str()
        .unwrap_or("")
        .contains("STARTTLS"));

    // An operator's retry forgets the back-off and tries at once.
    rig.env.ok(&["retry", "--to", "2480"]);
    common::wait_for("tried again", Duration::from_secs(30), || {
        plain.count("EHLO") > connections
    });
    rig.env.stop();
}
