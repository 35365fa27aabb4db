//! Protected e-mail end to end against a real receiving SMTP server (aiosmtpd) on 127.0.0.1
//! with STARTTLS and a test CA made at test time; S/MIME checked with the `openssl` CLI.

mod common;

use std::path::Path;
use std::time::Duration;

use common::mail::{code_from_peer, decrypt, parse, register_and_prove, rig, verify, UMEA};
use common::peer::Peer;
use common::pki::{Ca, Identity, Usage};
use common::Env;
use mail_parser::MimeHeaders;
use serde_json::json;

#[test]
fn a_decision_is_delivered_signed_and_encrypted_over_verified_tls() {
    let mut rig = rig();
    rig.env.start();

    // A registered but unproven address is not used: the job goes by post.
    rig.env.ok(&[
        "municipality",
        "set",
        "2480",
        "--email",
        UMEA,
        "--secure",
        "yes",
        "--smime-cert",
        &rig.muni.cert.to_string_lossy(),
    ]);
    let early = rig.env.submit("2480", None);
    assert_eq!(rig.env.wait_receipt(&early)["channel"], "post");
    assert_eq!(rig.peer.count("MAIL"), 0, "a pending address was used");

    rig.env.ok(&["municipality", "verify", "2480"]);
    let code = code_from_peer(&rig, Some(&rig.muni));
    let wrong = rig
        .env
        .run(&["municipality", "confirm", "2480", "WRONG234"]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong verification code"));
    rig.env.ok(&["municipality", "confirm", "2480", &code]);
    let again = rig.env.run(&["municipality", "confirm", "2480", &code]);
    assert!(!again.status.success(), "a code is single use");

    let id = rig.env.submit("2480", None);
    let receipt = rig.env.wait_receipt(&id);
    assert_eq!(receipt["state"], "delivered", "{receipt:#}");
    assert_eq!(receipt["channel"], "email");
    let r = &receipt["recipients"][0];
    assert_eq!(r["address"], UMEA);
    let proof = &r["email"]["accepted"];
    assert!(
        proof["reply"]
            .as_str()
            .expect("reply")
            .contains("queued as Q"),
        "{proof}"
    );
    assert!(
        proof["tls_version"]
            .as_str()
            .expect("tls")
            .starts_with("TLSv1."),
        "{proof}"
    );
    assert!(!proof["tls_cipher"].as_str().expect("cipher").is_empty());
    let server_cert = std::fs::read_to_string(rig.env.path().join("pki/server.pem")).expect("pem");
    let server_der = openssl::x509::X509::from_pem(server_cert.as_bytes())
        .expect("x509")
        .to_der()
        .expect("der");
    assert_eq!(
        proof["server_cert_sha256"],
        kurir::digest::sha256_hex(&server_der).as_str()
    );
    assert_eq!(proof["encrypted"], true);
    assert_eq!(proof["encrypted_to_sha256"], rig.muni.sha256.as_str());
    assert_eq!(proof["signed_by_sha256"], rig.agency.sha256.as_str());
    let message_id = r["email"]["message_id"].as_str().expect("message id");
    assert!(message_id.starts_with(&id), "{message_id}");

    // What arrived: minimal headers, no case number, encrypted to the municipality and the
    // agency, signed by the agency, carrying the PDFs byte for byte.
    let stored = rig.peer.messages().pop().expect("stored message");
    let raw = std::fs::read(&stored).expect("read");
    let head = String::from_utf8_lossy(&raw[..raw.len().min(2000)]).to_string();
    assert!(
        head.contains("application/pkcs7-mime") && head.contains("enveloped-data"),
        "{head}"
    );
    assert!(head.contains(&format!("<{message_id}>")), "{head}");
    assert_eq!(
        proof["message_sha256"],
        kurir::digest::sha256_hex(&raw).as_str(),
        "the receipt's digest is of the message the server stored"
    );
    assert!(
        !String::from_utf8_lossy(&raw).contains(common::CASE),
        "case number in the message"
    );
    let subject = parse(&raw).subject().expect("subject").to_string();
    assert_eq!(subject, format!("Beslut om anvisning – ref {id}"));

    let agency_copy = decrypt(&stored, &rig.agency);
    let signed = decrypt(&stored, &rig.muni);
    assert_eq!(agency_copy, signed, "the agency can read its sent copy");
    let (inner, signer) = verify(&signed, &rig.ca.pem, rig.env.path());
    let agency_pem = std::fs::read_to_string(&rig.agency.cert).expect("agency pem");
    assert_eq!(
        signer.trim(),
        agency_pem.trim(),
        "signed by the agency certificate"
    );
    let inner = parse(&inner);
    let attachments: Vec<_> = inner.attachments().collect();
    assert_eq!(attachments.len(), 2);
    assert_eq!(
        attachments[0].attachment_name(),
        Some(format!("anvisningsbeslut-{id}.pdf").as_str())
    );
    assert_eq!(
        attachments[0].contents(),
        common::pdf::beslut("BESLUT-MARKER").as_slice()
    );
    assert_eq!(
        attachments[1].contents(),
        common::pdf::god_man("GODMAN-MARKER").as_slice()
    );
    let body = inner.body_text(0).expect("body").to_string();
    assert!(
        body.contains("Anmälan om behov av god man") && body.contains(&id),
        "{body}"
    );

    assert_eq!(rig.peer.count("DATA-COMMAND tls=no"), 0, "DATA before TLS");
    if let Ok(dir) = std::env::var("KURIR_TEST_KEEP") {
        let _ = std::fs::copy(&stored, Path::new(&dir).join("decision.eml"));
        let _ = std::fs::write(Path::new(&dir).join("peer.log"), rig.peer.log());
        let _ = std::fs::write(Path::new(&dir).join("inner.txt"), &body);
    }
    assert!(!rig.env.logs().contains(common::CASE));
    rig.env.stop();
}

#[test]
fn an_untrusted_server_certificate_means_nothing_is_sent_and_the_job_waits() {
    let mut rig = rig();
    rig.env.start();
    register_and_prove(&rig);
    rig.env.stop();

    // The same relay address now answers with a certificate from a CA kurir does not trust.
    let rogue_ca = Ca::new(&rig.env.path().join("rogue"), "rogue CA");
    let rogue_server = rogue_ca.issue("rogue-server", Usage::Server);
    let rogue = Peer::start(
        &rig.env.path().join("rogue-peer"),
        Some((&rogue_server.cert, &rogue_server.key)),
    );
    rig.env.set_env("KURIR_SMTP__PORT", &rogue.port.to_string());
    rig.env.start();
    let id = rig.env.submit("2480", None);
    common::wait_for("a deferred attempt", Duration::from_secs(30), || {
        common::has_event(&rig.env.status(&id), "certificate verification failed")
    });
    let status = rig.env.status(&id);
    assert!(
        matches!(
            status["job"]["state"].as_str(),
            Some("deferred" | "sending")
        ),
        "{status:#}"
    );
    assert!(
        rig.env.receipt(&id).is_none(),
        "no final state without delivery"
    );
    assert!(
        rogue.count("STARTTLS") >= 1,
        "kurir never tried TLS:\n{}",
        rogue.log()
    );
    assert_eq!(
        rogue.count("MAIL"),
        0,
        "MAIL sent to an untrusted server:\n{}",
        rogue.log()
    );
    assert_eq!(
        rogue.count("DATA"),
        0,
        "DATA sent to an untrusted server:\n{}",
        rogue.log()
    );
    rig.env.stop();
}

#[test]
fn a_server_without_starttls_gets_nothing_and_the_job_waits() {
    let mut rig = rig();
    rig.env.start();
    register_and_prove(&rig);
    rig.env.stop();

    let plain = Peer::start(&rig.env.path().join("plain-peer"), None);
    rig.env.set_env("KURIR_SMTP__PORT", &plain.port.to_string());
    rig.env.start();
    let id = rig.env.submit("2480", None);
    common::wait_for("a deferred attempt", Duration::from_secs(30), || {
        common::has_event(&rig.env.status(&id), "offers no STARTTLS")
    });
    assert!(
        plain.count("EHLO") >= 1,
        "kurir never connected:\n{}",
        plain.log()
    );
    assert_eq!(
        plain.count("MAIL"),
        0,
        "MAIL sent without TLS:\n{}",
        plain.log()
    );
    assert_eq!(
        plain.count("DATA"),
        0,
        "DATA sent without TLS:\n{}",
        plain.log()
    );
    assert!(rig.env.receipt(&id).is_none());
    rig.env.stop();
}

#[test]
fn a_temporary_failure_is_deferred_then_delivered_on_a_later_attempt() {
    let mut rig = rig();
    rig.env.start();
    register_and_prove(&rig);
    rig.peer.set_rules(json!({ UMEA: { "tempfail": 1 } }));
    let before = rig.peer.count("RCPT");
    let id = rig.env.submit("2480", None);
    let receipt = rig.env.wait_receipt(&id);
    assert_eq!(receipt["state"], "delivered", "{receipt:#}");
    let attempts = receipt["recipients"][0]["email"]["attempts"]
        .as_array()
        .expect("attempts");
    let outcomes: Vec<&str> = attempts
        .iter()
        .map(|a| a["outcome"].as_str().expect("o"))
        .collect();
    assert_eq!(outcomes, ["deferred", "accepted"], "{receipt:#}");
    assert!(attempts[0]["reply"]
        .as_str()
        .expect("reply")
        .contains("451"));
    let states: Vec<String> = receipt["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["state"].as_str().expect("s").to_string())
        .collect();
    assert!(states.contains(&"deferred".to_string()), "{states:?}");
    assert_eq!(rig.peer.count("RCPT") - before, 2, "{}", rig.peer.log());
    rig.env.stop();
}

#[test]
fn a_permanent_rejection_falls_back_to_a_print_letter() {
    let mut rig = rig();
    rig.env.start();
    register_and_prove(&rig);
    rig.peer.set_rules(json!({ UMEA: { "reject": true } }));
    let id = rig.env.submit("2480", None);
    let receipt = rig.env.wait_receipt(&id);
    assert_eq!(receipt["state"], "print-queued", "{receipt:#}");
    let r = &receipt["recipients"][0];
    assert_eq!(r["fell_back_to_post"], true);
    assert!(r["email"]["rejected"]
        .as_str()
        .expect("rejected")
        .contains("550"));
    let letter = rig
        .env
        .spool()
        .join("print")
        .join(r["batch"].as_str().expect("batch"))
        .join(r["letter"].as_str().expect("letter"));
    assert!(common::qpdf_ok(&letter));
    let states: Vec<&str> = receipt["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["state"].as_str().expect("s"))
        .collect();
    assert!(states.contains(&"fallen-back"), "{states:?}");
    rig.env.stop();
}

#[test]
fn the_registry_survives_a_restart_and_history_shows_each_change() {
    let mut rig = rig();
    rig.env.start();
    register_and_prove(&rig);
    rig.env.ok(&[
        "municipality",
        "set",
        "2480",
        "--decision-email",
        "beslut@umea-test.example",
        "--operator",
        "it-umea",
    ]);
    rig.env.stop();
    rig.env.start();
    let show: serde_json::Value =
        serde_json::from_str(&rig.env.ok(&["municipality", "show", "2480", "--json"]))
            .expect("json");
    let r = &show["registered"];
    assert_eq!(r["active_address"], UMEA, "the proven address stays in use");
    assert_eq!(r["pending"]["address"], "beslut@umea-test.example");
    assert_eq!(r["contacts"][0]["name"], "Anna Berg");
    assert_eq!(show["route"], format!("e-mail to {UMEA}"));
    let history: Vec<serde_json::Value> =
        serde_json::from_str(&rig.env.ok(&["municipality", "history", "2480", "--json"]))
            .expect("json");
    let whats: Vec<(&str, &str)> = history
        .iter()
        .map(|h| {
            (
                h["operator"].as_str().expect("op"),
                h["what"].as_str().expect("what"),
            )
        })
        .collect();
    assert_eq!(whats.len(), 4, "{whats:?}");
    assert_eq!(whats[0], ("it-umea", "set"));
    assert!(
        whats[1].1.starts_with("verification code sent"),
        "{whats:?}"
    );
    assert!(whats[2].1.contains("confirmed"), "{whats:?}");
    assert_eq!(
        history[3]["before"]["decision_email"],
        serde_json::Value::Null
    );
    assert_eq!(
        history[3]["after"]["decision_email"],
        "beslut@umea-test.example"
    );
    let text = rig.env.ok(&["municipality", "history", "2480"]);
    assert!(
        text.contains("decision_email: - -> beslut@umea-test.example"),
        "{text}"
    );
    rig.env.stop();
}

#[test]
fn bad_registrations_are_refused_with_a_clear_message() {
    let mut env = Env::new();
    env.make_store();
    let ca = Ca::new(&env.path().join("pki"), "kurir test CA");
    let expired = ca.issue("expired", Usage::ExpiredEmail(UMEA));
    let server_only = ca.issue("server-only", Usage::EmailWithoutProtectionPurpose(UMEA));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--email".into(), "not-an-address".into()],
            "not a valid e-mail address",
        ),
        (
            vec!["--smime-cert".into(), expired.cert.to_string_lossy().into()],
            "expired",
        ),
        (
            vec![
                "--smime-cert".into(),
                server_only.cert.to_string_lossy().into(),
            ],
            "e-mail protection",
        ),
        (vec!["--tls-pin".into(), "1234".into()], "SHA-256"),
        (
            vec!["--contact".into(), "Anna Berg".into()],
            "Name, phone, e-mail",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["municipality".to_string(), "set".into(), "2480".into()];
        all.extend(args.clone());
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = env.run(&refs);
        assert!(!out.status.success(), "{args:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let out = env.run(&["municipality", "show", "9999"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown kommunkod 9999"));
    let out = env.run(&["municipality", "confirm", "2480", "ABCD2345"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no address waiting"));
    let history = env.ok(&["municipality", "history", "2480", "--json"]);
    assert_eq!(history.trim(), "[]", "a refused change must leave no trace");
}

#[test]
fn import_shows_a_dry_run_first_and_export_gives_the_same_back() {
    let mut env = Env::new();
    env.make_store();
    let csv = "kommunkod,email,secure,phone,contacts,postal_address\n\
               2480,registrator@umea-test.example,yes,090-16 10 00,\"Anna Berg, 090-16 10 00, anna@umea-test.example\",Skolgatan 31A\\n901 84 Umeå\n\
               2584,kommun@kiruna-test.example,no,0980-700 00,,\n";
    std::fs::write(env.path().join("reg.csv"), csv).expect("write");
    let dry = env.ok(&["municipality", "import", "reg.csv", "--dry-run"]);
    assert!(
        dry.contains("2480: official_email: - -> registrator@umea-test.example"),
        "{dry}"
    );
    assert!(
        dry.contains("dry run: 2 municipalities would change"),
        "{dry}"
    );
    assert_eq!(
        env.ok(&["municipality", "history", "2480", "--json"])
            .trim(),
        "[]"
    );

    env.ok(&["municipality", "import", "reg.csv", "--operator", "bulk"]);
    let export = env.ok(&["municipality", "export"]);
    assert!(
        export.contains("2480,registrator@umea-test.example,,yes,090-16 10 00"),
        "{export}"
    );
    assert!(export.contains("Skolgatan 31A\\n901 84 Umeå"), "{export}");
    let list = env.ok(&["municipality", "list", "--secure"]);
    assert!(list.contains("2480") && !list.contains("2584"), "{list}");

    // A file with one bad row changes nothing.
    std::fs::write(
        env.path().join("bad.csv"),
        "kommunkod,email\n0180,ok@sthlm-test.example\n0181,broken\n",
    )
    .expect("write");
    let out = env.run(&["municipality", "import", "bad.csv"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 3"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        env.ok(&["municipality", "history", "0180", "--json"])
            .trim(),
        "[]"
    );
}

#[test]
fn a_registered_tls_pin_is_checked_before_anything_is_sent() {
    let mut rig = rig();
    rig.env.start();
    register_and_prove(&rig);
    let server = std::fs::read_to_string(rig.env.path().join("pki/server.pem")).expect("pem");
    let der = openssl::x509::X509::from_pem(server.as_bytes())
        .expect("x509")
        .to_der()
        .expect("der");
    let right = kurir::digest::sha256_hex(&der);

    rig.env
        .ok(&["municipality", "set", "2480", "--tls-pin", &right]);
    let ok = rig.env.submit("2480", None);
    assert_eq!(rig.env.wait_receipt(&ok)["state"], "delivered");

    rig.env
        .ok(&["municipality", "set", "2480", "--tls-pin", &"ab".repeat(32)]);
    // The new pin is announced to the municipality; count from after that.
    rig.env.notices_settled();
    let mails_before = rig.peer.count("MAIL");
    let pinned = rig.env.submit("2480", None);
    common::wait_for("a deferred attempt", Duration::from_secs(30), || {
        common::has_event(
            &rig.env.status(&pinned),
            "does not match the registered TLS pin",
        )
    });
    assert_eq!(
        rig.peer.count("MAIL"),
        mails_before,
        "sent despite a pin mismatch"
    );
    assert!(rig.env.receipt(&pinned).is_none());
    rig.env.stop();
}

#[test]
fn tls_from_the_first_byte_works_as_well_as_starttls() {
    let mut rig = rig();
    rig.env.start();
    register_and_prove(&rig);
    rig.env.stop();
    let server = Identity {
        cert: rig.env.path().join("pki/server.pem"),
        key: rig.env.path().join("pki/server.key"),
        sha256: String::new(),
    };
    let wrapped =
        Peer::start_implicit_tls(&rig.env.path().join("peer465"), &server.cert, &server.key);
    rig.env
        .set_env("KURIR_SMTP__PORT", &wrapped.port.to_string())
        .set_env("KURIR_SMTP__TLS", "wrapper");
    rig.env.start();
    let id = rig.env.submit("2480", None);
    let receipt = rig.env.wait_receipt(&id);
    assert_eq!(receipt["state"], "delivered", "{receipt:#}");
    assert_eq!(wrapped.count("STARTTLS"), 0);
    assert_eq!(
        wrapped.count("DATA-COMMAND tls=yes"),
        1,
        "{}",
        wrapped.log()
    );
    rig.env.stop();
}

#[test]
fn a_copy_goes_by_the_copy_recipients_own_route() {
    let mut rig = rig();
    rig.env.start();
    register_and_prove(&rig);
    // 0180 has no secure connection: its copy is a letter; 2480 gets e-mail.
    let id = rig.env.submit("2480", Some("0180"));
    let receipt = rig.env.wait_receipt(&id);
    assert_eq!(receipt["state"], "delivered", "{receipt:#}");
    assert_eq!(receipt["channel"], "mixed");
    let recipients = receipt["recipients"].as_array().expect("recipients");
    assert_eq!(recipients[0]["channel"], "email");
    assert_eq!(recipients[1]["kommunkod"], "0180");
    assert_eq!(recipients[1]["channel"], "post");
    assert!(recipients[1]["letter"].is_string());
    rig.env.stop();
}
