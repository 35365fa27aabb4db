//! A mail world on loopback with real servers: a private Postfix as the agency's relay (DSN on,
//! TLS required, reports piped back to `kurir inbound` by the shipped master.cf lines) and a
//! second private Postfix as the municipalities' mail server, for umea.test (delivers to a
//! Maildir and reports `delivered`), nodsn.test (a listener that offers no DSN: the relay
//! reports `relayed`) and refusing.test (refuses: Postfix's own bounce comes back).
#![allow(dead_code)]

use super::pki::{Ca, Identity, Usage};
use super::postfix::{chown, free_port, Instance, Postfix, NOBODY};
use std::path::PathBuf;

use super::Env;
use kurir::job::Kommunkod;
use kurir::registry::Changes;
use kurir::store::Store;

pub const AGENCY: &str = "anvisning@agency.test";
pub const REPORTS: &str = "kurir-reports@agency.test";

/// The two Postfix instances and the certificates.
pub struct MailWorld {
    /// The test CA (servers and the agency's signing certificate).
    pub ca: Ca,
    /// The agency's S/MIME identity.
    pub agency: Identity,
    /// The agency's relay.
    pub relay: Postfix,
    /// The municipalities' server.
    pub municipality: Postfix,
    /// The settings file the relay's pipe runs `kurir inbound` with (it names the spool).
    pub pipe_config: PathBuf,
    /// The relay's SMTP port.
    pub relay_port: u16,
}

/// Lets the relay's pipe (an unprivileged user) write the inbound folders of `env`'s spool, and
/// points it there.
pub fn pipe_into(world: &MailWorld, env: &Env) {
    open_inbound(env, &world.pipe_config);
}

pub fn open_inbound(env: &Env, pipe_config: &std::path::Path) {
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
    std::fs::set_permissions(
        env.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .expect("chmod");
    std::fs::write(
        pipe_config,
        format!("[spool]\ndir = \"{}\"\n", spool.display()),
    )
    .expect("pipe config");
    // The pipe reads its settings as that user.
    std::fs::set_permissions(
        pipe_config,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .expect("chmod");
}

/// Registers a municipality with a proven secure address, phone and contacts, straight in the
/// store (the daemon is not running yet).
pub fn prove(store: &Store, code: &str, address: &str) {
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
        .register(code, &r, "test", &kurir::registry::RegistryAction::Set)
        .expect("register");
}

/// A read notification as Thunderbird composes one.
pub fn thunderbird_mdn(return_path: &str, message_id: &str, mailbox: &str) -> String {
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
pub fn shipped_pipe(kurir_bin: &str, config: &std::path::Path) -> String {
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

/// Starts the mail world for `env` (before its daemon starts): the servers, the spool folders
/// the pipe writes (owned by its unprivileged user), 2480, 0180 and 2584 proven in the store,
/// and the daemon's settings pointed at the relay with reports asked for.
pub fn start(env: &mut Env) -> MailWorld {
    let dir = env.path().to_path_buf();
    // The MTA's pipe runs `kurir inbound` as an unprivileged user: it must reach the spool's
    // inbound folders (in production the pipe and the daemon are the same user, `kurir`).
    let pipe_config = dir.join("pipe.toml");
    open_inbound(env, &pipe_config);
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
            resolv_conf: None,
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
            resolv_conf: None,
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
    let world = MailWorld {
        ca,
        agency,
        relay,
        municipality,
        pipe_config,
        relay_port,
    };
    world.configure(env);
    world
}

impl MailWorld {
    /// Points a daemon's settings at the relay, with the agency's signing identity and reports
    /// asked for (the restored machine of a backup test gets the same).
    pub fn configure(&self, env: &mut Env) {
        env.set_env("KURIR_SMTP__HOST", "127.0.0.1")
            .set_env("KURIR_SMTP__PORT", &self.relay_port.to_string())
            .set_env("KURIR_SMTP__CA_FILE", &self.ca.pem.to_string_lossy())
            .set_env("KURIR_SMTP__FROM", AGENCY)
            .set_env("KURIR_SMTP__TIMEOUT", "30s")
            .set_env(
                "KURIR_SMIME__SIGN_CERT",
                &self.agency.cert.to_string_lossy(),
            )
            .set_env("KURIR_SMIME__SIGN_KEY", &self.agency.key.to_string_lossy())
            .set_env("KURIR_PROOF__RETURN_PATH", REPORTS)
            .set_env("KURIR_SPOOL__RESCAN_INTERVAL", "1s");
    }
}
