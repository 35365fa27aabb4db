//! The protected-e-mail rig shared by e-mail tests: a CA made at test time, the agency's
//! signing identity, a municipality certificate, a real receiving SMTP server, and kurir
//! configured to use them; plus the openssl CLI checks.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};

use super::peer::Peer;
use super::pki::{Ca, Identity, Usage};
use super::Env;

pub const FROM: &str = "anvisning@kurir-test.example";
pub const UMEA: &str = "registrator@umea-test.example";

/// Everything a protected-e-mail test needs: a CA, the agency's identity, a municipality
/// certificate, a receiving server, and kurir configured to use them.
pub struct Rig {
    pub env: Env,
    pub ca: Ca,
    pub agency: Identity,
    pub muni: Identity,
    pub peer: Peer,
}

pub fn rig() -> Rig {
    let mut env = Env::new();
    let pki = env.path().join("pki");
    let ca = Ca::new(&pki, "kurir test CA");
    let server = ca.issue("server", Usage::Server);
    let agency = ca.issue("agency", Usage::Email(FROM));
    let muni = ca.issue("umea", Usage::Email(UMEA));
    let peer = Peer::start(&env.path().join("peer"), Some((&server.cert, &server.key)));
    point_kurir_at(&mut env, &peer, &ca.pem, &agency);
    Rig {
        env,
        ca,
        agency,
        muni,
        peer,
    }
}

pub fn point_kurir_at(env: &mut Env, peer: &Peer, ca_pem: &Path, agency: &Identity) {
    env.set_env("KURIR_SMTP__HOST", "127.0.0.1")
        .set_env("KURIR_SMTP__PORT", &peer.port.to_string())
        .set_env("KURIR_SMTP__CA_FILE", &ca_pem.to_string_lossy())
        .set_env("KURIR_SMTP__FROM", FROM)
        // Generous: `municipality verify` waits for its mail synchronously, and a loaded CI
        // machine (every test file's daemons and peers on 2 cores) can stall the peer for
        // seconds. Tests about timeouts set their own.
        .set_env("KURIR_SMTP__TIMEOUT", "30s")
        .set_env("KURIR_QUEUE__RETRY_INTERVALS", "1s")
        .set_env("KURIR_SMIME__SIGN_CERT", &agency.cert.to_string_lossy())
        .set_env("KURIR_SMIME__SIGN_KEY", &agency.key.to_string_lossy());
}

/// `openssl cms -decrypt` with a recipient's certificate and key.
pub fn decrypt(message: &Path, who: &Identity) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(["cms", "-decrypt", "-in"])
        .arg(message)
        .arg("-recip")
        .arg(&who.cert)
        .arg("-inkey")
        .arg(&who.key)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl cms -decrypt: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `openssl cms -verify` against the test CA; returns the signed content and the signer's
/// certificate (PEM).
pub fn verify(signed: &[u8], ca: &Path, dir: &Path) -> (Vec<u8>, String) {
    let input = dir.join("signed.eml");
    let signer = dir.join("signer.pem");
    std::fs::write(&input, signed).expect("write");
    let out = Command::new("openssl")
        .args(["cms", "-verify", "-in"])
        .arg(&input)
        .arg("-CAfile")
        .arg(ca)
        .arg("-signer")
        .arg(&signer)
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl cms -verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.stdout, std::fs::read_to_string(signer).expect("signer"))
}

pub fn parse(bytes: &[u8]) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default()
        .parse(bytes)
        .expect("MIME parses")
}

/// Reads the verification code out of the newest message at the peer that holds one (a notice
/// of the change may arrive after it), waiting up to a minute for it.
pub fn code_from_peer(rig: &Rig, encrypted_to: Option<&Identity>) -> String {
    let code_in = |message: &std::path::Path| {
        let raw = std::fs::read(message).ok()?;
        let signed = match encrypted_to {
            Some(who) => decrypt(message, who),
            None => raw,
        };
        let (inner, _) = verify(&signed, &rig.ca.pem, rig.env.path());
        let text = parse(&inner).body_text(0)?.to_string();
        text.lines()
            .find_map(|l| l.trim().strip_prefix("Verifieringskod: "))
            .map(|code| code.trim().to_string())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(code) = rig.peer.messages().iter().rev().find_map(|m| code_in(m)) {
            return code;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no message with a line `Verifieringskod: <code>` arrived"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Registers 2480 with an address, a certificate and a secure connection, and proves it.
pub fn register_and_prove(rig: &Rig) {
    let env = &rig.env;
    env.ok(&[
        "municipality",
        "set",
        "2480",
        "--email",
        UMEA,
        "--secure",
        "yes",
        "--smime-cert",
        &rig.muni.cert.to_string_lossy(),
        "--contact",
        "Anna Berg, 090-16 10 00, anna@umea-test.example",
        "--phone",
        "090-16 10 00",
        "--operator",
        "it-umea",
    ]);
    // The registration is announced to its new contact by mail: the code is the newest
    // message once that has gone, and the tests count messages from a quiet start.
    env.notices_settled();
    env.ok(&["municipality", "verify", "2480", "--operator", "ops"]);
    let code = code_from_peer(rig, Some(&rig.muni));
    env.ok(&[
        "municipality",
        "confirm",
        "2480",
        &code,
        "--operator",
        "ops",
    ]);
    env.notices_settled();
}
