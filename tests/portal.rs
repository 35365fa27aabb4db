//! The municipality portal over real TLS with client certificates made by a test CA at test
//! time: who gets a page and who does not, what a signed-in technician can change, and how the
//! change is recorded. (The browser and accessibility checks are in tests/portal_browser.rs.)

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use common::mail::{code_from_peer, UMEA};
use common::pki::{Ca, Usage};
use common::portal::{connector, csrf, form, portal, request, HSA, PERSON};

#[test]
fn no_page_without_a_granted_certificate_from_the_configured_ca() {
    let p = portal();
    let trust = &p.rig.ca.pem;
    // No certificate, one from another CA, an expired one: the handshake fails.
    let other_ca = Ca::new(&p.rig.env.path().join("other-pki"), "Another CA");
    let stranger = other_ca.issue("stranger", Usage::Person(HSA, PERSON));
    let expired = p.ca.issue("expired", Usage::ExpiredPerson(HSA, PERSON));
    for (what, id) in [
        ("no certificate", None),
        ("another CA", Some(&stranger)),
        ("an expired certificate", Some(&expired)),
    ] {
        let answer = request(&p.addr, &connector(trust, id), "GET", "/", &[], "");
        assert!(
            answer.is_err(),
            "{what} got a page: {}",
            answer.map(|r| r.body).unwrap_or_default()
        );
    }
    let me = connector(trust, Some(&p.person));
    let start = request(&p.addr, &me, "GET", "/", &[], "").expect("signed in");
    assert_eq!(start.status, 200);
    assert!(
        start.body.contains("Umeå kommun") && start.body.contains(HSA),
        "{}",
        start.body
    );
    for header in [
        "content-security-policy: default-src 'none'",
        "x-content-type-options: nosniff",
        "cache-control: no-store",
        "referrer-policy: same-origin",
        "strict-transport-security: max-age=",
    ] {
        assert!(
            start.head.contains(header),
            "missing {header}:\n{}",
            start.head
        );
    }
    // Another municipality: refused with a plain explanation.
    let other = request(&p.addr, &me, "GET", "/kommun/0180", &[], "").expect("answer");
    assert_eq!(other.status, 403);
    assert!(other.body.contains("har inte behörighet"), "{}", other.body);
    let page = request(&p.addr, &me, "GET", "/kommun/2480", &[], "").expect("page");
    assert_eq!(page.status, 200);
    let token = csrf(&page.body);
    let post = |headers: &[(&str, &str)], body: String| {
        request(
            &p.addr,
            &me,
            "POST",
            "/kommun/2480/andra",
            &[
                &[("Content-Type", "application/x-www-form-urlencoded")],
                headers,
            ]
            .concat(),
            &body,
        )
        .unwrap_or_else(|e| panic!("post with {headers:?}: {e}"))
    };
    let fields = |token: &str| {
        form(&[
            ("csrf", token),
            ("email", ""),
            ("decision_email", "angripare@example.org"),
            ("phone", ""),
            ("contacts", ""),
            ("postal_address", ""),
        ])
    };
    // No token, and a post from another site with a valid token: refused, nothing changes.
    assert_eq!(post(&[], fields("")).status, 403);
    let origin = format!("https://{}", p.addr);
    assert_eq!(
        post(&[("Sec-Fetch-Site", "cross-site")], fields(&token)).status,
        403
    );
    assert_eq!(
        post(&[("Origin", "https://evil.example")], fields(&token)).status,
        403
    );
    let show = p.rig.env.ok(&["municipality", "show", "2480"]);
    assert!(
        !show.contains("angripare"),
        "a refused post changed the registration:\n{show}"
    );
    // The same post from the page itself is taken.
    let taken = post(
        &[("Origin", &origin), ("Sec-Fetch-Site", "same-origin")],
        fields(&token),
    );
    assert_eq!(taken.status, 303, "{}", taken.body);
    p.rig.env.assert_alive();
}

#[test]
fn a_technician_changes_and_proves_the_address_and_the_history_names_them() {
    let p = portal();
    let me = connector(&p.rig.ca.pem, Some(&p.person));
    let get = |path: &str| request(&p.addr, &me, "GET", path, &[], "").expect("page");
    let post = |path: &str, body: String| {
        request(
            &p.addr,
            &me,
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &body,
        )
        .expect("answer")
    };
    let token = csrf(&get("/kommun/2480").body);
    // A bad phone number is refused at its field.
    let bad = post(
        "/kommun/2480/andra",
        form(&[
            ("csrf", &token),
            ("email", ""),
            ("decision_email", UMEA),
            ("phone", "ring mig"),
            ("contacts", ""),
            ("postal_address", ""),
        ]),
    );
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("id=\"phone-fel\"") && bad.body.contains("aria-invalid=\"true\""));
    let saved = post(
        "/kommun/2480/andra",
        form(&[
            ("csrf", &token),
            ("email", ""),
            ("decision_email", UMEA),
            ("phone", "090-16 10 00"),
            (
                "contacts",
                "Anna Berg, 090-16 10 01, anna@umea-test.example",
            ),
            ("postal_address", "Skolgatan 31A\n901 84 Umeå"),
        ]),
    );
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = get("/kommun/2480").body;
    assert!(
        page.contains("kod skickad") || page.contains("ingen kod skickad"),
        "{page}"
    );
    assert!(
        page.contains("Med post"),
        "the route changed before the proof:\n{page}"
    );

    // Saving a new address sends its code at once: step 2 is only to type it.
    assert!(
        saved.head.contains("meddelande=sparat-kod-skickad"),
        "{}",
        saved.head
    );
    let code = code_from_peer(&p.rig, None);
    // Five wrong codes void the code.
    let mut last = String::new();
    for _ in 0..5 {
        let wrong = post(
            "/kommun/2480/bekrafta",
            form(&[("csrf", &token), ("kod", "FEL-KOD")]),
        );
        assert_eq!(wrong.status, 422);
        last = wrong.body;
    }
    assert!(last.contains("För många"), "{last}");
    let voided = post(
        "/kommun/2480/bekrafta",
        form(&[("csrf", &token), ("kod", &code)]),
    );
    assert_eq!(
        voided.status, 422,
        "the right code still worked after five wrong ones"
    );
    // A new code, typed right.
    assert_eq!(
        post("/kommun/2480/skicka-kod", form(&[("csrf", &token)])).status,
        303
    );
    let code = code_from_peer(&p.rig, None);
    let confirmed = post(
        "/kommun/2480/bekrafta",
        form(&[("csrf", &token), ("kod", &code)]),
    );
    assert_eq!(confirmed.status, 303, "{}", confirmed.body);
    // The municipality's S/MIME certificate, uploaded as DER (checked as the CLI checks it).
    let der = openssl::x509::X509::from_pem(&std::fs::read(&p.rig.muni.cert).expect("cert"))
        .and_then(|c| c.to_der())
        .expect("der");
    let upload = |bytes: &[u8]| {
        let boundary = "kurirtestboundary";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{token}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"certifikat\"; filename=\"umea.der\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        // The request helper sends text; a DER certificate is binary, so send it raw here.
        let tcp = TcpStream::connect(&p.addr).expect("connect");
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
    };
    let refused = upload(b"not a certificate");
    assert!(
        refused.starts_with("HTTP/1.0 422"),
        "{}",
        &refused[..refused.len().min(300)]
    );
    let stored = upload(&der);
    assert!(
        stored.starts_with("HTTP/1.0 303"),
        "{}",
        &stored[..stored.len().min(2000)]
    );
    let show = p.rig.env.ok(&["municipality", "show", "2480"]);
    assert!(
        show.contains(&p.rig.muni.sha256),
        "the certificate was not registered:\n{show}"
    );

    let page = get("/kommun/2480?meddelande=bekraftad").body;
    assert!(
        page.contains(&format!("Med skyddad e-post till {UMEA}")),
        "the route did not change to e-mail:\n{page}"
    );
    assert!(
        page.contains(HSA),
        "the history on the page lacks the HSA-id"
    );
    let history = p.rig.env.ok(&["municipality", "history", "2480"]);
    assert!(
        history.contains(&format!("{HSA} ({PERSON}) via portal")),
        "{history}"
    );
    let audit = p.rig.env.ok(&["audit", "export", "--since", "2020-01-01"]);
    assert!(audit.contains(HSA), "the audit chain lacks the HSA-id");
    p.rig.env.assert_alive();
}

/// Sends one raw request line to a control socket as the portal's user (a portal process that
/// lies) and returns the daemon's answer line.
fn forged(socket: &Path, line: &str) -> String {
    common::portal::speak_as(common::portal::Door::Portal, socket, line)
        .unwrap_or_else(|e| panic!("the portal's user could not reach its socket: {e}"))
}

#[test]
fn the_portal_runs_without_the_store_or_the_key_and_the_daemon_refuses_what_it_forges() {
    let p = portal();
    let dir = p.rig.env.path().to_path_buf();
    // The portal process runs as its own user, as kurir-portal.service runs it.
    let status = std::fs::read_to_string(format!("/proc/{}/status", p.pid())).expect("status");
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .expect("Uid line");
    assert!(
        uid.split_whitespace().all(|u| u == "65534"),
        "the portal runs as {uid}"
    );
    // That user can read neither the agency's signing key nor the store.
    for (what, path) in [
        ("the signing key", p.rig.agency.key.clone()),
        ("the store", dir.join("state/db/db")),
        ("the spool", dir.join("spool/active")),
    ] {
        let can = common::portal::as_portal_user("test")
            .arg("-r")
            .arg(&path)
            .status()
            .expect("test");
        assert!(!can.success(), "the portal's user can read {what}");
    }
    let own = common::portal::as_portal_user(env!("CARGO_BIN_EXE_kurir"))
        .current_dir(&dir)
        .args(["list"])
        .output()
        .expect("kurir list");
    assert!(
        !own.status.success(),
        "the portal's user opened the store: {}",
        String::from_utf8_lossy(&own.stdout)
    );

    // A portal that lies: a person without a grant, an operator's command, a field only the
    // agency sets, an operator speaking through the portal's door. All refused by the daemon.
    let person = format!(r#"{{"person":{{"hsa_id":"{HSA}","name":"{PERSON}"}}}}"#);
    let ask = |principal: &str, command: &str| {
        forged(
            &p.socket,
            &format!(r#"{{"protocol":4,"principal":{principal},"command":{command}}}"#),
        )
    };
    let other = ask(&person, r#"{"command":"MunicipalityShow","code":"0180"}"#);
    assert!(other.contains("no-grant"), "{other}");
    let set = r#"{"command":"MunicipalitySet","code":"2480","changes":{"decision_email":"angripare@example.org"}}"#;
    let operator = ask(r#"{"operator":"mallory"}"#, set);
    assert!(operator.contains("not-permitted"), "{operator}");
    let hold = ask(
        &person,
        r#"{"command":"Hold","target":{"municipality":"2480"},"reason":"x"}"#,
    );
    assert!(hold.contains("not-permitted"), "{hold}");
    let insecure = ask(
        &person,
        r#"{"command":"MunicipalitySet","code":"2480","changes":{"secure":"no"}}"#,
    );
    assert!(insecure.contains("not-permitted"), "{insecure}");
    let stranger = ask(
        r#"{"person":{"hsa_id":"SE2321000016-other9","name":"Mallory"}}"#,
        set,
    );
    assert!(stranger.contains("no-grant"), "{stranger}");
    // A process of another user gets no answer on the portal's socket at all.
    let root = std::os::unix::net::UnixStream::connect(&p.socket).and_then(|mut s| {
        s.write_all(format!("{{\"protocol\":4,\"principal\":{person},\"command\":{{\"command\":\"MyMunicipalities\"}}}}\n").as_bytes())?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer)
    });
    assert!(
        root.as_deref().unwrap_or("").is_empty(),
        "another user was answered: {root:?}"
    );
    let show = p.rig.env.ok(&["municipality", "show", "2480"]);
    assert!(
        !show.contains("angripare") && show.contains("secure           yes"),
        "a forged request changed the registration:\n{show}"
    );
    // The same person through the portal itself still gets the page.
    let me = connector(&p.rig.ca.pem, Some(&p.person));
    let page = request(&p.addr, &me, "GET", "/kommun/2480", &[], "").expect("page");
    assert_eq!(page.status, 200);
}

#[test]
fn the_portal_asks_to_try_again_while_the_daemon_restarts() {
    let mut p = portal();
    let me = connector(&p.rig.ca.pem, Some(&p.person));
    let get =
        |p: &common::portal::Portal| request(&p.addr, &me, "GET", "/", &[], "").expect("answer");
    assert_eq!(get(&p).status, 200);
    p.rig.env.stop();
    let waiting = get(&p);
    assert_eq!(waiting.status, 503, "{}", waiting.body);
    assert!(
        waiting.body.contains("Försök igen om en stund") && waiting.body.contains("lang=\"sv\""),
        "{}",
        waiting.body
    );
    p.rig.env.start();
    let back = get(&p);
    assert_eq!(back.status, 200, "{}", back.body);
    assert!(back.body.contains("Umeå kommun"), "{}", back.body);
}

#[test]
fn municipality_it_check_their_own_mail_server_and_read_what_to_fix_in_swedish() {
    // A resolver that refuses at once: the check fails, fast, on DNS.
    let p = common::portal::portal_with(|env, _, _| {
        env.set_env("KURIR_DNS__NAMESERVERS", "127.0.0.1:9");
    });
    // Nothing proven yet: no server is knocked on for an address someone merely typed.
    let early = common::registration::post(&p, "/kommun/2480/kontrollera", &[]);
    assert_eq!(early.status, 422, "{}", early.body);
    assert!(
        early.body.contains("ingen bekräftad adress"),
        "{}",
        early.body
    );

    common::registration::proven_umea(&p);
    let checked = common::registration::post(&p, "/kommun/2480/kontrollera", &[]);
    assert_eq!(checked.status, 303, "{}", checked.body);
    let me = connector(&p.rig.ca.pem, Some(&p.person));
    let page = request(
        &p.addr,
        &me,
        "GET",
        "/kommun/2480?meddelande=kontrollerad",
        &[],
        "",
    )
    .expect("page");
    for said in [
        "Er e-postserver är kontrollerad",
        "Inte godkänd",
        "domänen umea-test.example",
        "Namnet umea-test.example kunde inte slås upp i DNS",
    ] {
        assert!(page.body.contains(said), "{said:?} missing:\n{}", page.body);
    }
    // The operators' English stays on the command line.
    assert!(!page.body.contains("lookup of"), "{}", page.body);
    let shown = p.rig.env.ok(&["municipality", "show", "2480"]);
    assert!(
        shown.contains("connection       FAILED for umea-test.example"),
        "{shown}"
    );
}
