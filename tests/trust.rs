//! Trust, tried as an attacker would: a card that redirects a municipality's decisions, a
//! certificate that is not what it says, a revoked card, a client that connects and waits.
//! Real TLS with client certificates made at test time, the real SMTP test server, the portal
//! as its own process under its own user. (Forged delivery reports: tests/forged_reports.rs.)

mod common;

use std::time::{Duration, Instant};

use common::mail::UMEA;
use common::pki::{Ca, Usage};
use common::portal::{connector, csrf, portal, request, Portal, HSA, PERSON};

use common::registration::{
    alert_files, approval_digest, change, code_sent_to, messages_to, post, proven_umea,
    wait_for_notice, CONTACT,
};

#[test]
fn a_changed_decision_address_is_announced_and_one_outside_the_domains_waits_for_approval() {
    let p = portal();
    proven_umea(&p);

    // A card holder changes the decision address: the old proven address and the contact
    // person are told, in a notice the agency signs, and the agency gets an alert.
    assert_eq!(change(&p, "beslut@umea-test.example", ""), 303);
    for address in [UMEA, CONTACT] {
        let notice = wait_for_notice(
            &p,
            address,
            &["Adress för beslut", "efter: beslut@umea-test.example"],
        );
        for expected in [
            "beslut@umea-test.example",
            "före:",
            HSA,
            PERSON,
            "ring Migrationsverket",
            "010-485 52 11",
        ] {
            assert!(notice.contains(expected), "{expected:?} missing:\n{notice}");
        }
    }
    common::wait_for("the agency's alert", Duration::from_secs(10), || {
        !alert_files(&p, "registry-2480-registration-changed").is_empty()
    });
    let history = p.rig.env.ok(&["municipality", "history", "2480"]);
    assert!(
        history.contains(&format!("notice of the change to: {UMEA}, {CONTACT}")),
        "{history}"
    );

    // An address in another domain can be proven but is not used until the agency approves.
    let outside = "beslut@elsewhere.example";
    assert_eq!(change(&p, outside, ""), 303);
    let code = code_sent_to(&p, outside);
    let confirmed = post(&p, "/kommun/2480/bekrafta", &[("kod", &code)]);
    assert_eq!(confirmed.status, 303);
    assert!(
        confirmed.head.contains("meddelande=bekraftad-vantar"),
        "{}",
        confirmed.head
    );
    let show = p.rig.env.ok(&["municipality", "show", "2480"]);
    assert!(
        show.contains(&format!("route now        e-mail to {UMEA}")),
        "{show}"
    );
    assert!(
        show.contains(&format!("WAITS FOR APPROVAL  address {outside}")),
        "{show}"
    );
    assert!(!alert_files(&p, "registry-2480-approval-waiting").is_empty());
    let doctor = String::from_utf8_lossy(&p.rig.env.run(&["doctor"]).stdout).to_string();
    assert!(doctor.contains("waits for approval"), "{doctor}");
    let list = p.rig.env.ok(&["municipality", "list", "--secure"]);
    assert!(list.contains("WAITING"), "{list}");
    let (_, metrics) = p.rig.env.http_get("/metrics");
    assert!(
        metrics.contains("kurir_registrations_awaiting_approval 1"),
        "{metrics}"
    );

    // Decisions keep going to the proven address.
    let id = p.rig.env.submit("2480", None);
    assert_eq!(p.rig.env.wait_receipt(&id)["state"], "delivered");
    let status = p.rig.env.status(&id);
    assert_eq!(
        status["job"]["recipients"][0]["email"]["accepted"]["address"],
        UMEA
    );
    assert!(
        messages_to(&p, outside).len() == 1,
        "only the code went there"
    );

    // A postal address changed on the portal waits too.
    assert_eq!(change(&p, outside, "Box 1\n901 84 Umeå"), 303);
    let show = p.rig.env.ok(&["municipality", "show", "2480"]);
    assert!(
        show.contains("WAITS FOR APPROVAL  postal address Box 1, 901 84 Umeå")
            && show.contains("postal address   - (letters go to the registry office)"),
        "{show}"
    );

    // The agency approves: the address and the postal address are used from now on.
    p.rig.env.ok(&[
        "municipality",
        "approve",
        "2480",
        "--digest",
        &approval_digest(&p),
        "--operator",
        "agency",
    ]);
    let show = p.rig.env.ok(&["municipality", "show", "2480"]);
    assert!(
        show.contains(&format!("route now        e-mail to {outside}")),
        "{show}"
    );
    assert!(
        show.contains("postal address   Box 1, 901 84 Umeå"),
        "{show}"
    );
}

/// Uploads `bytes` as the certificate on the portal; returns the raw HTTP answer.
fn upload(p: &Portal, bytes: &[u8]) -> String {
    use std::io::{Read, Write};
    let me = connector(&p.rig.ca.pem, Some(&p.person));
    let page = request(&p.addr, &me, "GET", "/kommun/2480", &[], "").expect("page");
    let token = csrf(&page.body);
    let boundary = "kurirtrustboundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{token}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"certifikat\"; filename=\"c.pem\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let tcp = std::net::TcpStream::connect(&p.addr).expect("connect");
    let mut tls = me.connect("localhost", tcp).expect("tls");
    let head = format!(
        "POST /kommun/2480/certifikat HTTP/1.0\r\nHost: {}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        p.addr,
        body.len()
    );
    tls.write_all(head.as_bytes()).expect("head");
    tls.write_all(&body).expect("body");
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw).to_string()
}

#[test]
fn certificates_a_receiver_would_refuse_are_refused_and_a_private_key_is_never_stored() {
    let p = portal();
    proven_umea(&p);
    let dir = p.rig.env.path().to_path_buf();
    let rogue = Ca::new(&dir.join("rogue-pki"), "Rogue CA");
    let self_made = rogue.issue("self-made", Usage::Email(UMEA));
    let elsewhere = p
        .rig
        .ca
        .issue("elsewhere", Usage::Email("registrator@elsewhere.example"));

    // On the command line: another CA, another address.
    for (cert, expected) in [
        (&self_made.cert, "not issued by a CA the agency trusts"),
        (&elsewhere.cert, &format!("it is not for {UMEA}") as &str),
    ] {
        let out = p.rig.env.run(&[
            "municipality",
            "set",
            "2480",
            "--smime-cert",
            &cert.to_string_lossy(),
        ]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{err}");
    }
    // On the portal: the same, in Swedish.
    let refused = upload(&p, &std::fs::read(&self_made.cert).expect("cert"));
    assert!(refused.starts_with("HTTP/1.0 422"), "{refused}");
    assert!(
        refused.contains("inte utfärdat av en utfärdare"),
        "{refused}"
    );
    let refused = upload(&p, &std::fs::read(&elsewhere.cert).expect("cert"));
    assert!(refused.contains("gäller inte adressen"), "{refused}");

    // The municipality's own certificate, with its private key pasted in: refused, the key
    // named as exposed, and nothing of it stored anywhere.
    let mut with_key = std::fs::read(&p.rig.muni.cert).expect("cert");
    with_key.extend(std::fs::read(&p.rig.muni.key).expect("key"));
    let refused = upload(&p, &with_key);
    assert!(refused.starts_with("HTTP/1.0 422"), "{refused}");
    assert!(
        refused.contains("privat nyckel") && refused.contains("bytas ut"),
        "{refused}"
    );
    let show = p.rig.env.ok(&["municipality", "show", "2480", "--json"]);
    assert!(show.contains("\"smime_cert\": null"), "{show}");
    let history = p.rig.env.ok(&["municipality", "history", "2480", "--json"]);
    let audit = p.rig.env.ok(&["audit", "export", "--since", "2020-01-01"]);
    for (what, text) in [("history", &history), ("audit", &audit)] {
        assert!(!text.contains("PRIVATE KEY"), "a private key in the {what}");
    }
    // The certificate alone is taken, and stored as the parsed certificate encoded again.
    let taken = upload(&p, &std::fs::read(&p.rig.muni.cert).expect("cert"));
    assert!(taken.starts_with("HTTP/1.0 303"), "{taken}");
    let show: serde_json::Value =
        serde_json::from_str(&p.rig.env.ok(&["municipality", "show", "2480", "--json"]))
            .expect("json");
    assert_eq!(
        show["registered"]["smime_cert"]["sha256"],
        p.rig.muni.sha256
    );
}

#[test]
fn a_revoked_card_is_refused_and_a_new_revocation_list_takes_effect_without_a_restart() {
    // The portal's revocation list, made at test time by the person CA with the openssl CLI:
    // first revoking nobody.
    let dir = tempfile::tempdir().expect("dir");
    let crl = dir.path().join("siths.crl");
    let p = common::portal::portal_with(|env, ca, _person| {
        ca.crl(&crl, &[], false);
        std::os::unix::fs::chown(dir.path(), Some(common::postfix::NOBODY), None).expect("chown");
        std::os::unix::fs::chown(&crl, Some(common::postfix::NOBODY), None).expect("chown");
        let config = env.path().join("crl.toml");
        std::fs::write(
            &config,
            format!("[portal]\ncrl = [\"{}\"]\n", crl.display()),
        )
        .expect("config");
        std::os::unix::fs::chown(&config, Some(common::postfix::NOBODY), None).expect("chown");
        env.set_env("KURIR_CONFIG", &config.to_string_lossy());
    });
    let me = connector(&p.rig.ca.pem, Some(&p.person));
    let page = request(&p.addr, &me, "GET", "/", &[], "").expect("signed in");
    assert_eq!(page.status, 200);
    // The card is reported lost: a new list, put in place while the portal runs.
    p.ca.crl(&crl, &[&p.person], false);
    let started = Instant::now();
    common::wait_for("the revoked card refused", Duration::from_secs(30), || {
        request(&p.addr, &me, "GET", "/", &[], "").is_err()
    });
    eprintln!("revocation took effect after {:?}", started.elapsed());
    // A list past its nextUpdate is named by doctor.
    p.ca.crl(&crl, &[&p.person], true);
    common::wait_for(
        "doctor names the stale list",
        Duration::from_secs(30),
        || {
            String::from_utf8_lossy(&p.rig.env.run(&["doctor"]).stdout)
                .contains("past its nextUpdate")
        },
    );
    let (_, metrics) = p.rig.env.http_get("/metrics");
    // Under the door that reported it: one web process cannot speak for the other's lists.
    assert!(
        metrics.lines().any(|l| {
            l.starts_with("kurir_portal_crl_next_update_timestamp_seconds{")
                && l.contains(r#"door="portal""#)
                && l.contains("crl=")
        }),
        "{metrics}"
    );
}

#[test]
fn a_person_may_ask_for_three_codes_an_hour() {
    let p = portal();
    proven_umea(&p);
    // Saving the new address sent the first.
    assert_eq!(change(&p, "beslut@umea-test.example", ""), 303);
    for _ in 0..2 {
        assert_eq!(post(&p, "/kommun/2480/skicka-kod", &[]).status, 303);
    }
    let fourth = post(&p, "/kommun/2480/skicka-kod", &[]);
    assert_eq!(fourth.status, 429, "{}", fourth.body);
    assert!(
        fourth.body.contains("Flera koder har redan skickats"),
        "{}",
        fourth.body
    );
    // The relay's and TLS's words never reach the refusal.
    let refusal = fourth
        .body
        .split("role=\"alert\"")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .expect("the refusal on the page");
    assert!(
        refusal.contains("Flera koder") && !refusal.contains("relay") && !refusal.contains("TLS"),
        "{refusal}"
    );
}

/// Opens `n` connections from `source` to the portal and leaves them idle; with `card`, each
/// completes its TLS handshake first (a holder of a valid card who sends nothing).
fn idle_connections(
    p: &Portal,
    source: &str,
    n: usize,
    card: Option<&common::pki::Identity>,
) -> Vec<Box<dyn std::any::Any>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let addr: std::net::SocketAddr = p.addr.parse().expect("addr");
    let mut held: Vec<Box<dyn std::any::Any>> = Vec::new();
    for _ in 0..n {
        let stream = runtime.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4().ok()?;
            socket.bind(format!("{source}:0").parse().ok()?).ok()?;
            socket.connect(addr).await.ok()
        });
        let Some(stream) = stream.and_then(|s| s.into_std().ok()) else {
            continue;
        };
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        match card {
            None => held.push(Box::new(stream)),
            Some(card) => {
                if let Ok(tls) = connector(&p.rig.ca.pem, Some(card)).connect("localhost", stream) {
                    held.push(Box::new(tls));
                }
            }
        }
    }
    held
}

#[test]
fn two_hundred_and_fifty_six_idle_connections_from_eight_networks_keep_no_granted_person_out() {
    let p = portal();
    let me = connector(&p.rig.ca.pem, Some(&p.person));
    // Eight addresses in eight /24s, 32 connections each, that never start their handshake:
    // together as many as the whole portal once served.
    let held: Vec<_> = (0..8)
        .map(|n| idle_connections(&p, &format!("127.0.{}.1", 10 + n), 32, None))
        .collect();
    assert_eq!(held.iter().map(Vec::len).sum::<usize>(), 256);
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let page = request(&p.addr, &me, "GET", "/kommun/2480", &[], "").expect("the page");
    assert_eq!(page.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the granted person waited {:?}",
        started.elapsed()
    );
    drop(held);
}

#[test]
fn one_client_holding_seventy_idle_connections_keeps_no_granted_person_out() {
    let p = portal();
    let me = connector(&p.rig.ca.pem, Some(&p.person));
    let stranger = p.ca.issue(
        "stranger",
        Usage::Person("SE2321000016-stranger", "Ingen Behörighet"),
    );
    // Other networks (127.0.2.1 and 127.0.3.1 are this machine too, in other /24s): 70 bare
    // connections, and 70 with a valid card that never send a request.
    let bare = idle_connections(&p, "127.0.2.1", 70, None);
    let carded = idle_connections(&p, "127.0.3.1", 70, Some(&stranger));
    assert!(
        !bare.is_empty() && !carded.is_empty(),
        "bare {}, carded {}",
        bare.len(),
        carded.len()
    );
    let started = Instant::now();
    let page = request(&p.addr, &me, "GET", "/kommun/2480", &[], "").expect("the page");
    assert_eq!(page.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the granted person waited {:?}",
        started.elapsed()
    );
    drop((bare, carded));
    // The same from the person's own address: the idle ones hold at most their share, and
    // only until the idle timeout.
    let bare = idle_connections(&p, "127.0.0.1", 70, None);
    let started = Instant::now();
    let mut got = None;
    common::wait_for(
        "the page despite the idle client",
        Duration::from_secs(20),
        || {
            got = request(&p.addr, &me, "GET", "/kommun/2480", &[], "").ok();
            got.as_ref().is_some_and(|r| r.status == 200)
        },
    );
    assert!(
        started.elapsed() < common::portal::IDLE_TIMEOUT + Duration::from_secs(5),
        "kept out for {:?}",
        started.elapsed()
    );
    drop(bare);
}

#[test]
fn a_certificate_about_to_expire_is_announced_to_the_municipality_and_the_agency() {
    let mut rig = common::mail::rig();
    let soon = rig.ca.issue("umea-soon", Usage::EmailExpiringIn(UMEA, 5));
    rig.env.start();
    rig.env.ok(&[
        "municipality",
        "set",
        "2480",
        "--email",
        UMEA,
        "--secure",
        "yes",
        "--contact",
        &format!("Anna Berg, 090-16 10 01, {CONTACT}"),
        "--smime-cert",
        &soon.cert.to_string_lossy(),
    ]);
    rig.env.ok(&["municipality", "verify", "2480"]);
    let code = common::mail::code_from_peer(&rig, Some(&soon));
    rig.env.ok(&["municipality", "confirm", "2480", &code]);
    // The notifier looks at certificates at its start: a restart makes it look now.
    rig.env.stop();
    rig.env.start();
    let told = |address: &str| {
        rig.peer
            .log()
            .lines()
            .filter(|l| l.starts_with("DATA ") && l.ends_with(address))
            .count()
    };
    // Umeå's proven address gets its code, then the expiry notice; the contact also got the
    // notices of the registration's changes.
    common::wait_for("the expiry notices", Duration::from_secs(60), || {
        told(UMEA) >= 2 && told(CONTACT) >= 1
    });
    std::thread::sleep(Duration::from_secs(1));
    let contact_told = told(CONTACT);
    let alerts: Vec<String> = std::fs::read_dir(rig.env.spool().join("alerts"))
        .expect("alerts")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        alerts
            .iter()
            .any(|a| a.starts_with("registry-2480-certificate-expiring")),
        "{alerts:?}"
    );
    // Once: a later look sends nothing more.
    rig.env.stop();
    rig.env.start();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(told(CONTACT), contact_told, "the notice went twice");
    assert_eq!(told(UMEA), 2, "the notice went twice");
    rig.env.stop();
}

#[test]
fn a_report_key_others_may_read_stops_the_daemon_with_what_to_do() {
    let mut env = common::Env::new();
    env.start();
    env.stop();
    let key = env.path().join("state/proof.key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    let out = env.kurir().args(["run"]).output().expect("kurir run");
    assert!(
        !out.status.success(),
        "the daemon started with an exposed key"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("proof.key is readable by others (mode 0644)") && err.contains("chmod 600"),
        "{err}"
    );
}
