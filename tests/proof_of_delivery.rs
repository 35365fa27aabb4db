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

use common::pki::{Ca, Usage};
use common::postfix::{chown, free_port, Instance, Postfix, NOBODY};
use common::{has_event, Env};
use kurir::job::Kommunkod;
use kurir::registry::Changes;
use kurir::store::Store;

const AGENCY: &str = "anvisning@agency.test";
const REPORTS: &str = "kurir-reports@agency.test";

/// Registers a municipality with a proven secure address, phone and contacts, straight in the
/// store (the daemon is not running yet).
fn prove(store: &Store, code: &str, address: &str) {
    let code: Kommunkod = code.parse().expect("code");
    let mut r = store.registered(code).expect("registered");
    let now = jiff::Timestamp::now();
    r.apply(
        &Changes {
            email: Some(address.into()),
            secure: Some("yes".into()),
            phone: Some("0980-123 45".into()),
            contacts: Some(vec!["Karin Test, 0980-123 46, karin@refusing.test".into()]),
            ..Changes::default()
        },
        now,
    )
    .expect("registration");
    r.set_code(
        code,
        "TEST2345",
        now + jiff::SignedDuration::from_hours(1),
        &kurir::registry::CodeKey::from_bytes(&[7; 32]),
    )
    .expect("pending");
    r.confirm(
        code,
        "TEST2345",
        now,
        &kurir::registry::CodeKey::from_bytes(&[7; 32]),
        kurir::registry::ChangeContext::agency(),
    )
    .expect("proven");
    store
        .register(code, &r, "test", "proven for the test")
        .expect("register");
}

/// A read notification as Thunderbird composes one.
fn thunderbird_mdn(return_path: &str, message_id: &str, mailbox: &str) -> String {
    format!(
        "Return-Path: <{mailbox}>\r\nMessage-ID: <mdn-1@umea.test>\r\n\
         Date: Sun, 29 Nov 2026 10:15:00 +0100\r\nMIME-Version: 1.0\r\n\
         User-Agent: Mozilla Thunderbird\r\nFrom: Registrator <{mailbox}>\r\n\
         To: {return_path}\r\nSubject: =?UTF-8?Q?L=C3=A4st=3A_Beslut_om_anvisning?=\r\n\
         Content-Type: multipart/report; report-type=disposition-notification;\r\n\
         \tboundary=\"------------mdn-boundary\"\r\n\r\n\
         This is a multi-part message in MIME format.\r\n\
         --------------mdn-boundary\r\nContent-Type: text/plain; charset=UTF-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n\
         Detta är ett mottagningsbevis för e-postmeddelandet du skickade till {mailbox}.\r\n\r\n\
         --------------mdn-boundary\r\nContent-Type: message/disposition-notification; name=\"MDNPart2.txt\"\r\n\
         Content-Disposition: inline\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\
         Reporting-UA: umea.test; Mozilla Thunderbird\r\n\
         Final-Recipient: rfc822;{mailbox}\r\n\
         Original-Message-ID: <{message_id}>\r\n\
         Disposition: manual-action/MDN-sent-manually; displayed\r\n\r\n\
         --------------mdn-boundary\r\nContent-Type: text/rfc822-headers; name=\"MDNPart3.txt\"\r\n\
         Content-Transfer-Encoding: 7bit\r\nContent-Disposition: inline\r\n\r\n\
         Subject: Beslut om anvisning\r\n\r\n--------------mdn-boundary--\r\n"
    )
}

/// config/postfix/master.cf as shipped, pointed at this build, this test's configuration and
/// an unprivileged user.
fn shipped_pipe(kurir_bin: &str, config: &std::path::Path) -> String {
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/postfix/master.cf"),
    )
    .expect("config/postfix/master.cf");
    let lines: String = shipped
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(lines.contains("/usr/bin/kurir") && lines.contains("user=kurir"));
    lines
        .replace("/usr/bin/kurir", kurir_bin)
        .replace("/etc/kurir/kurir.toml", &config.to_string_lossy())
        .replace("user=kurir", "user=nobody")
}

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
    let dir = env.path().to_path_buf();
    // The MTA's pipe runs `kurir inbound` as an unprivileged user: it must reach the spool's
    // inbound folders (in production the pipe and the daemon are the same user, `kurir`).
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o711))
        .expect("chmod");
    let spool = env.spool();
    for d in [
        spool.clone(),
        spool.join("inbound"),
        spool.join("inbound/tmp"),
        spool.join("inbound/new"),
    ] {
        std::fs::create_dir_all(&d).expect("spool dir");
        chown(&d, NOBODY);
    }
    let pki = dir.join("pki");
    let ca = Ca::new(&pki, "kurir proof test CA");
    let server = ca.issue("server", Usage::Server);
    let agency = ca.issue("agency", Usage::Email(AGENCY));

    let relay_port = free_port();
    let final_port = free_port();
    let nodsn_port = free_port();
    let mta = dir.join("mta");
    std::fs::create_dir_all(mta.join("final/mail")).expect("mail dir");
    chown(&mta.join("final/mail"), NOBODY);
    let pipe_config = dir.join("pipe.toml");
    std::fs::write(
        &pipe_config,
        format!("[spool]\ndir = \"{}\"\n", spool.display()),
    )
    .expect("pipe config");
    std::fs::set_permissions(
        &pipe_config,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .expect("chmod");
    let kurir_bin = env!("CARGO_BIN_EXE_kurir");

    let municipality = Postfix::start(
        &mta,
        Instance {
            name: "final",
            main: format!(
                "myhostname = mx.umea.test\n\
                 virtual_mailbox_domains = umea.test nodsn.test refusing.test\n\
                 virtual_mailbox_base = {mail}\nvirtual_mailbox_maps = texthash:{etc}/mailboxes\n\
                 virtual_uid_maps = static:{NOBODY}\nvirtual_gid_maps = static:{NOBODY}\n\
                 smtpd_tls_security_level = may\nsmtp_tls_security_level = may\n\
                 smtpd_relay_restrictions = permit_mynetworks, reject\n\
                 smtpd_recipient_restrictions = check_recipient_access texthash:{etc}/refuse\n",
                mail = mta.join("final/mail").display(),
                etc = mta.join("final/etc").display()
            ),
            listeners: vec![
                (final_port, ""),
                (nodsn_port, "-o smtpd_discard_ehlo_keywords=dsn"),
            ],
            master: String::new(),
            transport: format!("agency.test smtp:[127.0.0.1]:{relay_port}\n"),
            files: vec![
                (
                    "refuse",
                    "refusing.test REJECT 5.1.1 mailbox unavailable\n".into(),
                ),
                (
                    "mailboxes",
                    "@umea.test umea/\n@nodsn.test nodsn/\n@refusing.test refusing/\n".into(),
                ),
            ],
            cert: &server.cert,
            key: &server.key,
        },
    );
    let relay = Postfix::start(
        &mta,
        Instance {
            name: "relay",
            main: "myhostname = relay.agency.test\n\
                   relay_domains = umea.test nodsn.test refusing.test agency.test\n\
                   smtpd_tls_security_level = encrypt\nsmtp_tls_security_level = encrypt\n\
                   smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n\
                   kurir_destination_recipient_limit = 1\n"
                .into(),
            listeners: vec![(relay_port, "")],
            // The shipped master.cf lines, with the test's binary, config and user.
            master: shipped_pipe(kurir_bin, &pipe_config),
            transport: format!(
                "umea.test smtp:[127.0.0.1]:{final_port}\n\
                 nodsn.test smtp:[127.0.0.1]:{nodsn_port}\n\
                 refusing.test smtp:[127.0.0.1]:{final_port}\n\
                 agency.test kurir:\n"
            ),
            files: Vec::new(),
            cert: &server.cert,
            key: &server.key,
        },
    );

    {
        std::fs::create_dir_all(dir.join("state")).expect("state");
        let store = Store::open(&dir.join("state")).expect("store");
        prove(&store, "2480", "registrator@umea.test");
        prove(&store, "0180", "registrator@nodsn.test");
        prove(&store, "2584", "registrator@refusing.test");
        store.flush().expect("flush");
    }
    env.set_env("KURIR_SMTP__HOST", "127.0.0.1")
        .set_env("KURIR_SMTP__PORT", &relay_port.to_string())
        .set_env("KURIR_SMTP__CA_FILE", &ca.pem.to_string_lossy())
        .set_env("KURIR_SMTP__FROM", AGENCY)
        .set_env("KURIR_SMTP__TIMEOUT", "30s")
        .set_env("KURIR_SMIME__SIGN_CERT", &agency.cert.to_string_lossy())
        .set_env("KURIR_SMIME__SIGN_KEY", &agency.key.to_string_lossy())
        .set_env("KURIR_PROOF__RETURN_PATH", REPORTS)
        .set_env("KURIR_SPOOL__RESCAN_INTERVAL", "1s");
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
    let receipt = env.wait_receipt(&umea);
    assert_eq!(
        receipt["recipients"][0]["confirmed"], "delivered",
        "{receipt:#}"
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
    let out = env.inbound(&forged_address, forged.as_bytes());
    assert!(out.status.success());
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
    drop(relay);
    drop(municipality);
}
