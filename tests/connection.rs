//! "Säker anslutning" measured: kurir checks municipalities' real mail servers (Postfix on port
//! 25 of loopback addresses), found through real DNS (NSD serving a zone signed with
//! ldns-signzone, Unbound validating it), agrees with Postfix's own `posttls-finger` on each,
//! routes by the verdict, and tells a real Postfix relay the TLS policy (socketmap) so that the
//! relay delivers to the good server, refuses the bad ones (never in clear), and a decision
//! whose server was replaced comes back as a letter.

mod common;

use std::process::Command;
use std::time::Duration;

use common::dnsworld::{domain, mx_host, DnsWorld, Server, DOMAINS};
use common::mailworld::{open_inbound, prove, shipped_pipe, AGENCY, REPORTS};
use common::pki::Usage;
use common::postfix::{free_port, Instance, Postfix};
use common::{wait_for, Env};
use serde_json::Value;

/// A municipality per test domain, in the order of [`DOMAINS`].
const CODES: [&str; 10] = [
    "2480", "0180", "1480", "1280", "0380", "0580", "1880", "2281", "2584", "0680",
];

fn code_of(name: &str) -> &'static str {
    let i = DOMAINS
        .iter()
        .position(|(n, _, _)| *n == name)
        .expect("a test domain");
    CODES[i]
}

/// Points kurir's connection check at the world: its resolver, its CA, checks required.
fn use_world(env: &mut Env, world: &DnsWorld) {
    env.set_env("KURIR_CONNECTION__REQUIRED", "true")
        .set_env("KURIR_DNS__NAMESERVERS", &world.resolver)
        .set_env("KURIR_CONNECTION__CA_FILE", &world.ca.pem.to_string_lossy())
        .set_env("KURIR_CONNECTION__TIMEOUT", "10s");
}

/// The agency's sender and signing identity, from the world's CA.
fn use_agency(env: &mut Env, world: &DnsWorld) {
    let agency = world.ca.issue("agency", Usage::Email(AGENCY));
    env.set_env("KURIR_SMTP__FROM", AGENCY)
        .set_env("KURIR_SMTP__CA_FILE", &world.ca.pem.to_string_lossy())
        .set_env("KURIR_SMIME__SIGN_CERT", &agency.cert.to_string_lossy())
        .set_env("KURIR_SMIME__SIGN_KEY", &agency.key.to_string_lossy())
        .set_env("KURIR_SPOOL__RESCAN_INTERVAL", "1s");
}

/// Waits until the daemon's own rounds have checked each named domain, with these verdicts.
fn daemon_checked(env: &Env, expected: &[(&str, &str)]) {
    let verdict = |code: &str| -> Option<String> {
        let view: Value =
            serde_json::from_str(&env.ok(&["municipality", "show", code, "--json"])).ok()?;
        view["connection"][0]["verdict"].as_str().map(String::from)
    };
    for (name, want) in expected {
        wait_for(
            &format!("the daemon's check of {name}"),
            Duration::from_secs(120),
            || verdict(code_of(name)).as_deref() == Some(*want),
        );
    }
}

/// Every test municipality proven at `registrator@<its domain>`, in the store.
fn register_all(env: &Env) {
    std::fs::create_dir_all(env.path().join("state")).expect("state");
    let store = kurir::store::Store::open(&env.path().join("state")).expect("store");
    for (i, (name, _, _)) in DOMAINS.iter().enumerate() {
        prove(&store, CODES[i], &format!("registrator@{}", domain(name)));
    }
    store.flush().expect("flush");
}

fn check(env: &Env, code: &str) -> (bool, Value) {
    let out = env.run(&["municipality", "check", code, "--json"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "check {code}: {e}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

fn problem_kinds(report: &Value) -> Vec<String> {
    report["check"]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["kind"].as_str().expect("kind").to_string())
        .collect()
}

#[test]
fn kurirs_verdict_on_each_real_server_agrees_with_posttls_finger_and_decides_the_route() {
    let mut env = Env::new();
    let world = DnsWorld::start(env.path(), 31);
    use_world(&mut env, &world);
    // A relay is configured (so e-mail is possible at all); none runs: this test checks.
    use_agency(&mut env, &world);
    env.set_env("KURIR_SMTP__HOST", "127.0.0.1");
    register_all(&env);

    let expected: [(&str, Option<&str>); 10] = [
        ("bra", None),
        ("utgangen", Some("certificate-expired")),
        ("felnamn", Some("name-mismatch")),
        ("egen", Some("untrusted")),
        ("klartext", Some("no-start-tls")),
        ("dane", None),
        ("danefel", Some("dane-mismatch")),
        ("sts", None),
        ("stsfel", Some("not-in-mta-sts-policy")),
        ("bytt", None),
    ];
    for (name, problem) in expected {
        let code = code_of(name);
        let (passed, report) = check(&env, code);
        let c = &report["check"];
        assert_eq!(c["domain"], domain(name));
        assert_eq!(c["mx"][0]["host"], mx_host(name), "{name}: {c}");
        assert_eq!(
            passed,
            problem.is_none(),
            "{name}: exit status says the verdict: {c}"
        );
        assert_eq!(
            c["verdict"],
            if problem.is_none() {
                "passed"
            } else {
                "failed"
            },
            "{name}: {c}"
        );
        assert_eq!(
            problem_kinds(&report),
            problem.into_iter().map(String::from).collect::<Vec<_>>(),
            "{name}: {c}"
        );
        assert_eq!(c["mx_validated"], true, "{name}: the zone is signed: {c}");
        let (_, last, server) = DOMAINS
            .iter()
            .find(|(n, _, _)| *n == name)
            .copied()
            .expect("d");
        let mx = &c["mx"][0];
        // Postfix's own probe of the same server, by the same rules.
        match server {
            Server::DaneMatching | Server::DaneNotMatching => {
                let finger = world.posttls_finger_dane(&domain(name));
                let postfix_verified = finger.contains("Verified TLS connection established");
                assert_eq!(
                    postfix_verified,
                    mx["dane"] == "matched",
                    "{name}: posttls-finger -l dane said:\n{finger}\nkurir: {mx}"
                );
            }
            _ => {
                let finger = world.posttls_finger_secure(last, &mx_host(name));
                let postfix_verified = finger.contains("Verified TLS connection established");
                let kurir_verified = mx["tls"]["pkix_verified"] == true;
                assert_eq!(
                    postfix_verified, kurir_verified,
                    "{name}: posttls-finger -l secure said:\n{finger}\nkurir: {mx}"
                );
            }
        }
        if let Some(tls) = mx["tls"].as_object() {
            assert!(
                tls["version"] == "TLSv1.3" || tls["version"] == "TLSv1.2",
                "{tls:?}"
            );
            assert_eq!(tls["cert_sha256"].as_str().map(str::len), Some(64));
        }
        // The route follows the verdict.
        let view: Value = serde_json::from_str(&env.ok(&["municipality", "show", code, "--json"]))
            .expect("show json");
        let route = view["route"].as_str().expect("route");
        if problem.is_none() {
            assert_eq!(route, format!("e-mail to registrator@{}", domain(name)));
        } else {
            assert!(
                route.starts_with("post (the check of the municipality's mail servers failed"),
                "{name}: {route}"
            );
        }
    }
    // What MTA-STS and DANE were.
    let (_, sts) = check(&env, code_of("sts"));
    assert_eq!(
        sts["check"]["mta_sts"]["policy"]["mode"], "enforce",
        "{sts}"
    );
    assert_eq!(sts["check"]["mta_sts"]["policy"]["covers_every_mx"], true);
    let (_, dane) = check(&env, code_of("dane"));
    assert_eq!(dane["check"]["mx"][0]["dane"], "matched");
    assert_eq!(
        dane["check"]["mx"][0]["tls"]["pkix_verified"], false,
        "self-signed"
    );

    // An operator reads it without JSON; the history keeps every check.
    let shown = env.ok(&["municipality", "show", code_of("klartext")]);
    assert!(
        shown.contains("connection       FAILED for klartext.kommun.test"),
        "{shown}"
    );
    assert!(shown.contains("offers no STARTTLS"), "{shown}");
    let said = env.run(&["municipality", "check", code_of("utgangen")]);
    assert_eq!(said.status.code(), Some(1));
    let said = String::from_utf8_lossy(&said.stdout);
    assert!(said.contains("the certificate expired"), "{said}");

    // A municipality whose address has not been checked goes by post until it is.
    let view: Value =
        serde_json::from_str(&env.ok(&["municipality", "show", "0781", "--json"])).expect("json");
    assert!(view["connection"].as_array().is_some_and(|a| a.is_empty()));
}

/// The agency's relay: the shipped main.cf and master.cf lines, DNS through the world's
/// validating resolver, the test CA as its roots, one delivery attempt (a refusal bounces at
/// once), reports piped back to `kurir inbound`.
fn start_relay(env: &Env, world: &DnsWorld, socket: &std::path::Path) -> (Postfix, u16) {
    let shipped = |name: &str| -> String {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("config/postfix")
                .join(name),
        )
        .unwrap_or_else(|e| panic!("config/postfix/{name}: {e}"))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| format!("{l}\n"))
        .collect()
    };
    let etc = env.path().join("relay-mta/relay/etc");
    let main = shipped("main.cf").replace(
        "hash:/etc/postfix/kurir_senders",
        &format!("texthash:{}/kurir_senders", etc.display()),
    );
    assert!(
        main.contains("sender_dependent_default_transport_maps"),
        "{main}"
    );
    let senders = shipped("kurir_senders").replace("agency.example", "agency.test");
    let pipe_config = env.path().join("pipe.toml");
    open_inbound(env, &pipe_config);
    // The shipped master.cf lines: the pipe (this build, an unprivileged user) and kurir-tls
    // (the test's socket, the test CA as its roots).
    let master = shipped_pipe(env!("CARGO_BIN_EXE_kurir"), &pipe_config);
    assert!(
        master.contains("socketmap:unix:/run/kurir-tls/policy.sock:tlspolicy"),
        "{master}"
    );
    let master = master
        .replace("/run/kurir-tls/policy.sock", &socket.to_string_lossy())
        .replace(
            "smtp_tls_CAfile=/etc/ssl/certs/ca-certificates.crt",
            &format!("smtp_tls_CAfile={}", world.ca.pem.display()),
        );
    let server = world.ca.issue("relay", Usage::Server);
    let port = free_port();
    let relay = Postfix::start(
        &env.path().join("relay-mta"),
        Instance {
            name: "relay",
            // Its own mail is opportunistic (`may`): kurir's lines must not change that. The
            // municipalities are not its relay_domains: mail to them is the outside world's.
            main: format!(
                "myhostname = relay.agency.test\n\
                 relay_domains = agency.test\n\
                 smtpd_tls_security_level = encrypt\n\
                 smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n\
                 smtp_tls_security_level = may\nsmtp_tls_loglevel = 1\n\
                 maximal_queue_lifetime = 0\nbounce_queue_lifetime = 0\n\
                 {main}"
            ),
            listeners: vec![(port, "")],
            master,
            transport: "agency.test kurir:\n".into(),
            files: vec![("kurir_senders", senders)],
            cert: &server.cert,
            key: &server.key,
            resolv_conf: Some(&world.resolv_conf),
        },
    );
    (relay, port)
}

fn policy_lookup(relay: &Postfix, socket: &std::path::Path, key: &str) -> Option<String> {
    let out = Command::new("postmap")
        .env("MAIL_CONFIG", relay.dir.join("etc"))
        .arg("-q")
        .arg(key)
        .arg(format!("socketmap:unix:{}:tlspolicy", socket.display()))
        .output()
        .expect("postmap");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim().is_empty(), "postmap: {stderr}");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Hands a message to the relay as its local `sendmail` does.
fn hand_to_relay(relay: &Postfix, from: &str, to: &str) {
    let mut sendmail = Command::new("sendmail")
        .arg("-C")
        .arg(relay.dir.join("etc"))
        .args(["-f", from, to])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sendmail");
    {
        use std::io::Write;
        sendmail
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"Subject: test\r\n\r\nnot a decision\r\n")
            .expect("write");
    }
    assert!(sendmail.wait().expect("sendmail").success());
}

/// Waits for `cond`, showing the relay's log if it does not come.
fn wait_showing(relay: &Postfix, what: &str, mut cond: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < until {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "timed out waiting for {what}; the relay's log:\n{}",
        relay.log()
    );
}

fn maildir(world: &DnsWorld, name: &str) -> usize {
    std::fs::read_dir(world.mx.dir.join("mail").join(name).join("new"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn the_relay_takes_kurirs_policy_delivers_only_to_verified_servers_and_a_replaced_server_means_a_letter(
) {
    let mut env = Env::new();
    let world = DnsWorld::start(env.path(), 32);
    use_world(&mut env, &world);
    let socket = env.path().join("tls-policy.sock");
    let (relay, relay_port) = start_relay(&env, &world, &socket);
    use_agency(&mut env, &world);
    env.set_env("KURIR_SMTP__HOST", "127.0.0.1")
        .set_env("KURIR_SMTP__PORT", &relay_port.to_string())
        .set_env("KURIR_PROOF__RETURN_PATH", REPORTS)
        .set_env("KURIR_CONNECTION__POLICY_SOCKET", &socket.to_string_lossy());
    register_all(&env);
    env.start();

    // The daemon checks every municipality with an e-mail route on its own.
    daemon_checked(
        &env,
        &[
            ("bytt", "passed"),
            ("dane", "passed"),
            ("klartext", "failed"),
        ],
    );
    // The failure is an alert to operations, and the municipality is told what to fix.
    let alerts: Vec<String> = std::fs::read_dir(env.spool().join("alerts"))
        .expect("alerts")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        alerts.iter().any(|a| a.starts_with(&format!(
            "registry-{}-connection-failed-",
            code_of("klartext")
        ))),
        "{alerts:?}"
    );
    let history = env.ok(&["municipality", "history", code_of("klartext")]);
    assert!(
        history.contains("connection check failed: the municipality was told what to fix"),
        "{history}"
    );

    // Postfix's own client asks kurir's socketmap.
    assert_eq!(
        policy_lookup(&relay, &socket, &domain("bytt")).as_deref(),
        Some("secure match=mx.bytt.kommun.test")
    );
    assert_eq!(
        policy_lookup(&relay, &socket, &domain("dane")).as_deref(),
        Some("dane-only")
    );
    assert_eq!(
        policy_lookup(&relay, &socket, &domain("klartext")).as_deref(),
        Some("secure"),
        "a failed check vouches for no MX name"
    );
    assert_eq!(
        policy_lookup(&relay, &socket, "example.org"),
        None,
        "other mail: not found"
    );
    // Another local user is not the relay: no answer, and it holds no connection.
    let stranger = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "postmap",
        ])
        .env("MAIL_CONFIG", relay.dir.join("etc"))
        .arg("-q")
        .arg(domain("bytt"))
        .arg(format!("socketmap:unix:{}:tlspolicy", socket.display()))
        .output()
        .expect("setpriv postmap");
    assert!(
        !String::from_utf8_lossy(&stranger.stdout).contains("secure"),
        "{}",
        String::from_utf8_lossy(&stranger.stdout)
    );

    // Through the relay to the verified server, and to the DANE one.
    let first = env.submit(code_of("bytt"), None);
    let receipt = env.wait_receipt(&first);
    assert_eq!(receipt["channel"], "email", "{receipt}");
    let dane_job = env.submit(code_of("dane"), None);
    env.wait_receipt(&dane_job);
    wait_showing(&relay, "both delivered by the relay", || {
        maildir(&world, "bytt") == 1 && maildir(&world, "dane") == 1
    });
    let log = relay.log();
    assert!(
        log.contains("Verified TLS connection established to mx.bytt.kommun.test"),
        "{log}"
    );
    assert!(
        log.contains("Verified TLS connection established to mx.dane.kommun.test"),
        "{log}"
    );

    // A decision for the failed one goes by post at once.
    let klartext_job = env.submit(code_of("klartext"), None);
    let receipt = env.wait_receipt(&klartext_job);
    assert_eq!(receipt["channel"], "post", "{receipt}");

    // Whatever of kurir's reaches the relay for it anyway is never sent in clear.
    hand_to_relay(
        &relay,
        AGENCY,
        &format!("registrator@{}", domain("klartext")),
    );
    wait_showing(&relay, "the relay refuses klartext", || {
        relay
            .log()
            .contains("TLS is required, but was not offered by host mx.klartext.kommun.test")
    });
    assert_eq!(maildir(&world, "klartext"), 0);
    // The relay's other mail keeps the relay's own settings (here: opportunistic TLS).
    hand_to_relay(
        &relay,
        "postmaster@agency.test",
        &format!("registrator@{}", domain("klartext")),
    );
    wait_showing(&relay, "other mail delivered as before", || {
        maildir(&world, "klartext") == 1
    });

    // The municipality's server is replaced: the relay refuses it, and the decision that was
    // on its way comes back as a letter.
    world.replace_bytt();
    let second = env.submit(code_of("bytt"), None);
    wait_showing(&relay, "the refused decision became a letter", || {
        env.receipt(&second).is_some_and(|r| {
            r["state"] == "print-queued" && r["recipients"][0]["letter"].is_string()
        })
    });
    assert_eq!(
        maildir(&world, "bytt"),
        1,
        "nothing reached the replaced server"
    );
    let log = relay.log();
    assert!(
        log.contains("Server certificate not trusted")
            || log.contains("certificate verification failed"),
        "{log}"
    );
    env.stop();
}

#[test]
fn in_direct_mode_kurir_delivers_to_the_verified_mx_itself_and_the_receipt_names_the_final_hop() {
    let mut env = Env::new();
    let world = DnsWorld::start(env.path(), 33);
    use_world(&mut env, &world);
    use_agency(&mut env, &world);
    env.set_env("KURIR_SMTP__MODE", "direct");
    register_all(&env);
    env.start();
    daemon_checked(
        &env,
        &[("bra", "passed"), ("dane", "passed"), ("egen", "failed")],
    );

    // By PKIX: the certificate's chain and the MX's name.
    let id = env.submit(code_of("bra"), None);
    let receipt = env.wait_receipt(&id);
    assert_eq!(receipt["state"], "delivered", "{receipt:#}");
    let accepted = &receipt["recipients"][0]["email"]["accepted"];
    assert_eq!(
        accepted["final_hop"]["mx"], "mx.bra.kommun.test",
        "{accepted:#}"
    );
    assert_eq!(accepted["final_hop"]["address"], world.ip(11));
    assert_eq!(accepted["final_hop"]["dane"], false);
    assert_eq!(accepted["server_cert_sha256"], world.good_sha256.as_str());
    assert!(accepted["tls_version"]
        .as_str()
        .is_some_and(|v| v.starts_with("TLSv1.")));

    // By DANE: the self-signed certificate its TLSA record vouches for.
    let id = env.submit(code_of("dane"), None);
    let receipt = env.wait_receipt(&id);
    assert_eq!(receipt["state"], "delivered", "{receipt:#}");
    let accepted = &receipt["recipients"][0]["email"]["accepted"];
    assert_eq!(accepted["final_hop"]["mx"], "mx.dane.kommun.test");
    assert_eq!(accepted["final_hop"]["dane"], true, "{accepted:#}");
    assert_eq!(accepted["server_cert_sha256"], world.dane_sha256.as_str());

    // Not verified: a letter, never an unverified hop.
    let id = env.submit(code_of("egen"), None);
    let receipt = env.wait_receipt(&id);
    assert_eq!(receipt["channel"], "post", "{receipt:#}");

    wait_for(
        "both messages in the servers' mailboxes",
        Duration::from_secs(30),
        || maildir(&world, "bra") == 1 && maildir(&world, "dane") == 1,
    );
    assert_eq!(maildir(&world, "egen"), 0);
    env.stop();
}
