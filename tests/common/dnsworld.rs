//! Municipalities' mail servers on loopback, found through real DNS: NSD serves the zone
//! `kommun.test`, signed at test time with `ldns-signzone` (MX, A, TLSA, `_mta-sts` TXT);
//! Unbound is the validating resolver, with the zone's key as its trust anchor; one private
//! Postfix listens on port 25 of a loopback address per MX, each with its own certificate (or
//! none); `openssl s_server -WWW` serves the MTA-STS policies over HTTPS on port 443.
//!
//! Each world takes the addresses 127.0.B.x for its block B, so that two tests can each have
//! one at once. Needs root and the packages of tests/setup (nsd, unbound, ldnsutils, postfix).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::pki::{self, Ca, Identity, Usage};
use super::postfix::{chown, Instance, Postfix, NOBODY};

/// The zone every test domain lives in.
pub const ZONE: &str = "kommun.test";

/// One municipality's mail domain in the world and what its server is like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// A certificate from the test CA naming the MX.
    Good,
    /// The same, expired.
    Expired,
    /// From the test CA, but naming another host.
    WrongName,
    /// Self-signed, no TLSA.
    SelfSigned,
    /// No STARTTLS at all.
    NoStartTls,
    /// Self-signed, with a DNSSEC-signed TLSA 3 1 1 record that matches.
    DaneMatching,
    /// From the test CA, with a TLSA 3 1 1 record that does not match.
    DaneNotMatching,
    /// A good server whose domain publishes an MTA-STS policy (enforce) that lists its MX.
    MtaStsListed,
    /// A good server whose domain's MTA-STS policy (enforce) does not list its MX.
    MtaStsUnlisted,
    /// A good server that a test may later replace with a self-signed one.
    Replaceable,
}

/// The domains, their last address octet and their server.
pub const DOMAINS: [(&str, u8, Server); 10] = [
    ("bra", 11, Server::Good),
    ("utgangen", 12, Server::Expired),
    ("felnamn", 13, Server::WrongName),
    ("egen", 14, Server::SelfSigned),
    ("klartext", 15, Server::NoStartTls),
    ("dane", 16, Server::DaneMatching),
    ("danefel", 17, Server::DaneNotMatching),
    ("sts", 18, Server::MtaStsListed),
    ("stsfel", 19, Server::MtaStsUnlisted),
    ("bytt", 20, Server::Replaceable),
];

/// The running world.
pub struct DnsWorld {
    /// The folder everything lives in.
    pub dir: PathBuf,
    /// 127.0.B.x.
    pub block: u8,
    /// The test CA (the MX certificates and the policy hosts).
    pub ca: Ca,
    /// The resolver, `address:53`.
    pub resolver: String,
    /// A resolv.conf naming the resolver (for Postfix and posttls-finger in a namespace).
    pub resolv_conf: PathBuf,
    /// The MX servers.
    pub mx: Postfix,
    /// The self-signed identity `bytt`'s server is switched to by [`DnsWorld::replace_bytt`].
    pub bytt_replacement: Identity,
    /// SHA-256 of the good servers' certificate, and of `dane`'s.
    pub good_sha256: String,
    pub dane_sha256: String,
    children: Vec<Child>,
}

/// The full name of a test domain.
pub fn domain(name: &str) -> String {
    format!("{name}.{ZONE}")
}

/// The MX host of a test domain.
pub fn mx_host(name: &str) -> String {
    format!("mx.{name}.{ZONE}")
}

fn run(what: &str, cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (tests/setup installs it)"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

impl DnsWorld {
    /// Starts the world for block `block` (1–250) under `dir`.
    pub fn start(dir: &Path, block: u8) -> DnsWorld {
        let dir = dir.join("dnsworld");
        std::fs::create_dir_all(&dir).expect("dnsworld dir");
        let ip = |last: u8| format!("127.0.{block}.{last}");
        let pki_dir = dir.join("pki");
        let ca = Ca::new(&pki_dir, "kurir connection test CA");
        let good = ca.issue(
            "good",
            Usage::ServerNamed(&[
                "mx.bra.kommun.test",
                "mx.sts.kommun.test",
                "mx.stsfel.kommun.test",
                "mx.bytt.kommun.test",
            ]),
        );
        let expired = ca.issue(
            "expired",
            Usage::ExpiredServerNamed(&["mx.utgangen.kommun.test"]),
        );
        let wrong = ca.issue("wrong", Usage::ServerNamed(&["annan.kommun.test"]));
        let (own, _) = pki::self_signed_server(&pki_dir, "own", "mx.egen.kommun.test");
        let (dane, dane_spki) = pki::self_signed_server(&pki_dir, "dane", "mx.dane.kommun.test");
        let danefel = ca.issue("danefel", Usage::ServerNamed(&["mx.danefel.kommun.test"]));
        let (bytt_replacement, _) =
            pki::self_signed_server(&pki_dir, "bytt-replacement", "mx.bytt.kommun.test");
        let sts_host = ca.issue(
            "mta-sts",
            Usage::ServerNamed(&["mta-sts.sts.kommun.test", "mta-sts.stsfel.kommun.test"]),
        );
        // bytt's files are its own, so that a test can swap them.
        let bytt_cert = pki_dir.join("bytt.pem");
        let bytt_key = pki_dir.join("bytt.key");
        std::fs::copy(&good.cert, &bytt_cert).expect("bytt cert");
        std::fs::copy(&good.key, &bytt_key).expect("bytt key");

        // The zone, signed.
        let mut zone = format!(
            "$ORIGIN {ZONE}.\n$TTL 300\n\
             @ IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 900 604800 300\n\
             @ IN NS ns.{ZONE}.\nns IN A {}\n",
            ip(54)
        );
        for (name, last, server) in DOMAINS {
            zone.push_str(&format!(
                "{name} IN MX 10 mx.{name}\nmx.{name} IN A {}\n",
                ip(last)
            ));
            match server {
                Server::DaneMatching => {
                    zone.push_str(&format!("_25._tcp.mx.{name} IN TLSA 3 1 1 {dane_spki}\n"))
                }
                Server::DaneNotMatching => zone.push_str(&format!(
                    "_25._tcp.mx.{name} IN TLSA 3 1 1 {}\n",
                    pki::spki_sha256(&good.cert)
                )),
                Server::MtaStsListed | Server::MtaStsUnlisted => zone.push_str(&format!(
                    "_mta-sts.{name} IN TXT \"v=STSv1; id=20261207T1\"\n\
                     mta-sts.{name} IN A {}\n",
                    ip(if server == Server::MtaStsListed {
                        80
                    } else {
                        81
                    })
                )),
                _ => {}
            }
        }
        let nsd_dir = dir.join("nsd");
        std::fs::create_dir_all(&nsd_dir).expect("nsd dir");
        let zone_file = nsd_dir.join("kommun.test.zone");
        std::fs::write(&zone_file, zone).expect("zone");
        let keygen = |ksk: bool| {
            let mut cmd = Command::new("ldns-keygen");
            cmd.current_dir(&nsd_dir).args(["-a", "ECDSAP256SHA256"]);
            if ksk {
                cmd.arg("-k");
            }
            run("ldns-keygen", cmd.arg(ZONE)).trim().to_string()
        };
        let ksk = keygen(true);
        let zsk = keygen(false);
        run(
            "ldns-signzone",
            Command::new("ldns-signzone")
                .current_dir(&nsd_dir)
                .arg("kommun.test.zone")
                .arg(&ksk)
                .arg(&zsk),
        );
        let anchor = nsd_dir.join(format!("{ksk}.ds"));
        assert!(anchor.exists(), "ldns-keygen -k wrote {}", anchor.display());

        let mut children = Vec::new();
        std::fs::write(
            nsd_dir.join("nsd.conf"),
            format!(
                "server:\n  ip-address: {ns}\n  port: 53\n  username: \"\"\n  chroot: \"\"\n\
                 \x20 zonesdir: \"{d}\"\n  pidfile: \"{d}/nsd.pid\"\n  database: \"\"\n\
                 \x20 xfrdfile: \"{d}/xfrd.state\"\n  zonelistfile: \"{d}/zone.list\"\n\
                 \x20 xfrdir: \"{d}\"\n  logfile: \"{d}/nsd.log\"\n  server-count: 1\n\
                 \x20 verbosity: 1\n\
                 remote-control:\n  control-enable: no\n\
                 zone:\n  name: {ZONE}\n  zonefile: kommun.test.zone.signed\n",
                ns = ip(54),
                d = nsd_dir.display()
            ),
        )
        .expect("nsd.conf");
        children.push(
            Command::new("nsd")
                .args(["-d", "-c"])
                .arg(nsd_dir.join("nsd.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nsd (tests/setup installs it)"),
        );
        let unbound_dir = dir.join("unbound");
        std::fs::create_dir_all(&unbound_dir).expect("unbound dir");
        std::fs::write(
            unbound_dir.join("unbound.conf"),
            format!(
                "server:\n  interface: {r}\n  port: 53\n  do-daemonize: no\n  username: \"\"\n\
                 \x20 chroot: \"\"\n  directory: \"{d}\"\n  pidfile: \"{d}/unbound.pid\"\n\
                 \x20 use-syslog: no\n  logfile: \"{d}/unbound.log\"\n  verbosity: 1\n\
                 \x20 access-control: 127.0.0.0/8 allow\n  do-not-query-localhost: no\n\
                 \x20 do-ip6: no\n  module-config: \"validator iterator\"\n\
                 \x20 trust-anchor-file: \"{a}\"\n  local-zone: \"test.\" nodefault\n\
                 \x20 domain-insecure: \"agency.test\"\n  val-log-level: 2\n\
                 remote-control:\n  control-enable: no\n\
                 stub-zone:\n  name: \"{ZONE}\"\n  stub-addr: {ns}@53\n",
                r = ip(53),
                ns = ip(54),
                d = unbound_dir.display(),
                a = anchor.display()
            ),
        )
        .expect("unbound.conf");
        children.push(
            Command::new("unbound")
                .args(["-d", "-c"])
                .arg(unbound_dir.join("unbound.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("unbound (tests/setup installs it)"),
        );
        let resolv_conf = dir.join("resolv.conf");
        // glibc passes the AD flag on only with trust-ad (Postfix's DANE needs it).
        std::fs::write(
            &resolv_conf,
            format!("nameserver {}\noptions trust-ad edns0\n", ip(53)),
        )
        .expect("resolv.conf");

        // The MTA-STS policy hosts.
        for (last, listed) in [(80u8, "mx.sts.kommun.test"), (81, "mx.sts.kommun.test")] {
            let root = dir.join(format!("mta-sts-{last}"));
            std::fs::create_dir_all(root.join(".well-known")).expect("policy dir");
            std::fs::write(
                root.join(".well-known/mta-sts.txt"),
                format!("version: STSv1\r\nmode: enforce\r\nmx: {listed}\r\nmax_age: 86400\r\n"),
            )
            .expect("policy");
            children.push(
                Command::new("openssl")
                    .current_dir(&root)
                    .args(["s_server", "-quiet", "-WWW", "-accept"])
                    .arg(format!("{}:443", ip(last)))
                    .arg("-cert")
                    .arg(&sts_host.cert)
                    .arg("-key")
                    .arg(&sts_host.key)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("openssl s_server"),
            );
        }

        // One Postfix, a listener per MX on its own address, each with its certificate.
        let mta = dir.join("mta");
        std::fs::create_dir_all(mta.join("mx/mail")).expect("mail dir");
        chown(&mta.join("mx/mail"), NOBODY);
        let mut master = String::new();
        for (name, last, server) in DOMAINS {
            let (cert, key) = match server {
                Server::Good | Server::MtaStsListed | Server::MtaStsUnlisted => {
                    (good.cert.clone(), good.key.clone())
                }
                Server::Expired => (expired.cert.clone(), expired.key.clone()),
                Server::WrongName => (wrong.cert.clone(), wrong.key.clone()),
                Server::SelfSigned => (own.cert.clone(), own.key.clone()),
                Server::NoStartTls => (good.cert.clone(), good.key.clone()),
                Server::DaneMatching => (dane.cert.clone(), dane.key.clone()),
                Server::DaneNotMatching => (danefel.cert.clone(), danefel.key.clone()),
                Server::Replaceable => (bytt_cert.clone(), bytt_key.clone()),
            };
            let tls = if server == Server::NoStartTls {
                "-o smtpd_tls_security_level=none".to_string()
            } else {
                format!(
                    "-o smtpd_tls_security_level=may -o smtpd_tls_cert_file={} -o smtpd_tls_key_file={}",
                    cert.display(),
                    key.display()
                )
            };
            master.push_str(&format!(
                "{}:25 inet n - n - - smtpd -o myhostname=mx.{name}.{ZONE} {tls}\n",
                ip(last)
            ));
        }
        let domains: Vec<String> = DOMAINS.iter().map(|(n, _, _)| domain(n)).collect();
        let mailboxes: String = DOMAINS
            .iter()
            .map(|(n, _, _)| format!("@{} {n}/\n", domain(n)))
            .collect();
        let mx = Postfix::start(
            &mta,
            Instance {
                name: "mx",
                main: format!(
                    "myhostname = mx.{ZONE}\ninet_interfaces = all\n\
                     virtual_mailbox_domains = {}\n\
                     virtual_mailbox_base = {mail}\nvirtual_mailbox_maps = texthash:{etc}/mailboxes\n\
                     virtual_uid_maps = static:{NOBODY}\nvirtual_gid_maps = static:{NOBODY}\n\
                     smtpd_relay_restrictions = permit_mynetworks, reject\n",
                    domains.join(" "),
                    mail = mta.join("mx/mail").display(),
                    etc = mta.join("mx/etc").display()
                ),
                listeners: Vec::new(),
                master,
                transport: String::new(),
                files: vec![("mailboxes", mailboxes)],
                cert: &good.cert,
                key: &good.key,
                resolv_conf: None,
            },
        );
        let world = DnsWorld {
            dir: dir.clone(),
            block,
            ca,
            resolver: format!("{}:53", ip(53)),
            resolv_conf,
            mx,
            bytt_replacement,
            good_sha256: good.sha256.clone(),
            dane_sha256: dane.sha256.clone(),
            children,
        };
        for (_, last, _) in DOMAINS {
            super::wait_for("the MX listeners", Duration::from_secs(30), || {
                std::net::TcpStream::connect((ip(last).as_str(), 25)).is_ok()
            });
        }
        super::wait_for("the resolver answers", Duration::from_secs(30), || {
            world.dig(&format!("mx.bra.{ZONE}"), "A").contains(&ip(11))
        });
        world
    }

    /// `127.0.B.last`.
    pub fn ip(&self, last: u8) -> String {
        format!("127.0.{}.{last}", self.block)
    }

    /// Asks the resolver with ldns' drill (DNSSEC on): its answer, as text.
    pub fn dig(&self, name: &str, kind: &str) -> String {
        let out = Command::new("drill")
            .args(["-D", name, kind, &format!("@{}", self.ip(53))])
            .output()
            .expect("drill (ldnsutils)");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Replaces `bytt`'s certificate with a self-signed one (the municipality's server was
    /// replaced, or someone sits in its place) and reloads the servers.
    pub fn replace_bytt(&self) {
        let pki = self.dir.join("pki");
        std::fs::copy(&self.bytt_replacement.cert, pki.join("bytt.pem")).expect("swap cert");
        std::fs::copy(&self.bytt_replacement.key, pki.join("bytt.key")).expect("swap key");
        let conf = self.mx.dir.join("etc").to_string_lossy().to_string();
        run(
            "postfix reload",
            Command::new("postfix").args(["-c", &conf, "reload"]),
        );
    }

    /// What `posttls-finger` (Postfix's own TLS probe) says of one server: `-l secure` against
    /// the test CA, matching the MX name, at its address (no DNS).
    pub fn posttls_finger_secure(&self, last: u8, host: &str) -> String {
        let out = Command::new("posttls-finger")
            .env("MAIL_CONFIG", self.mx.dir.join("etc"))
            .args(["-c", "-l", "secure", "-F"])
            .arg(&self.ca.pem)
            .arg(format!("[{}]:25", self.ip(last)))
            .arg(host)
            .output()
            .expect("posttls-finger (postfix)");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// What `posttls-finger -l dane` says of a domain, resolving MX and TLSA through the
    /// world's validating resolver (in a mount namespace where it is /etc/resolv.conf).
    pub fn posttls_finger_dane(&self, domain: &str) -> String {
        let out = Command::new("unshare")
            .env("MAIL_CONFIG", self.mx.dir.join("etc"))
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount --bind '{}' /etc/resolv.conf && exec posttls-finger -c -l dane -F '{}' '{domain}'",
                self.resolv_conf.display(),
                self.ca.pem.display()
            ))
            .output()
            .expect("unshare, posttls-finger");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

impl Drop for DnsWorld {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
