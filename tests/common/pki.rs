//! A throw-away PKI made at test time with OpenSSL: a CA, a server certificate for 127.0.0.1,
//! the agency's S/MIME signing identity and municipality certificates (valid, expired, or
//! without the e-mail protection usage).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509NameBuilder, X509};

/// A certificate and key written as PEM files.
#[derive(Clone, Debug)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// SHA-256 of the certificate's DER, hex.
    pub sha256: String,
}

/// What a leaf certificate is for.
pub enum Usage {
    Server,
    Email(&'static str),
    EmailWithoutProtectionPurpose(&'static str),
    ExpiredEmail(&'static str),
    /// A SITHS-like person certificate: HSA-id in the subject's serialNumber, name in CN.
    Person(&'static str, &'static str),
    /// The same, expired.
    ExpiredPerson(&'static str, &'static str),
    /// An e-mail certificate that expires in this many days.
    EmailExpiringIn(&'static str, u32),
    /// A mail server's certificate for these DNS names.
    ServerNamed(&'static [&'static str]),
    /// The same, expired.
    ExpiredServerNamed(&'static [&'static str]),
}

#[derive(Clone)]
pub struct Ca {
    cert: X509,
    key: PKey<Private>,
    pub pem: PathBuf,
    dir: PathBuf,
}

fn key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey")
}

fn serial() -> Asn1Integer {
    let mut bn = BigNum::new().expect("bn");
    bn.rand(64, openssl::bn::MsbOption::MAYBE_ZERO, false)
        .expect("rand");
    bn.to_asn1_integer().expect("serial")
}

impl Ca {
    pub fn new(dir: &Path, name: &str) -> Ca {
        std::fs::create_dir_all(dir).expect("pki dir");
        let key = key();
        let mut subject = X509NameBuilder::new().expect("name");
        subject.append_entry_by_text("CN", name).expect("cn");
        let subject = subject.build();
        let mut b = X509::builder().expect("builder");
        b.set_version(2).expect("v3");
        b.set_serial_number(&serial()).expect("serial");
        b.set_subject_name(&subject).expect("subject");
        b.set_issuer_name(&subject).expect("issuer");
        b.set_pubkey(&key).expect("pubkey");
        b.set_not_before(&Asn1Time::days_from_now(0).expect("t"))
            .expect("nb");
        b.set_not_after(&Asn1Time::days_from_now(100).expect("t"))
            .expect("na");
        b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc"))
            .expect("ext");
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .expect("ku"),
        )
        .expect("ext");
        b.sign(&key, MessageDigest::sha256()).expect("sign");
        let cert = b.build();
        let pem = dir.join(format!("{name}.pem").replace(' ', "-"));
        std::fs::write(&pem, cert.to_pem().expect("pem")).expect("write ca");
        Ca {
            cert,
            key,
            pem,
            dir: dir.to_path_buf(),
        }
    }

    pub fn issue(&self, file_name: &str, usage: Usage) -> Identity {
        self.issue_for(file_name, usage, key())
    }

    /// Like [`Ca::issue`] with an ECDSA P-256 key instead of RSA-2048: the benchmark measures
    /// what a cheaper signature would change.
    pub fn issue_ec(&self, file_name: &str, usage: Usage) -> Identity {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("curve");
        let key = PKey::from_ec_key(EcKey::generate(&group).expect("ec key")).expect("pkey");
        self.issue_for(file_name, usage, key)
    }

    fn issue_for(&self, file_name: &str, usage: Usage, key: PKey<Private>) -> Identity {
        let mut name = X509NameBuilder::new().expect("name");
        match usage {
            Usage::Person(hsa_id, person) | Usage::ExpiredPerson(hsa_id, person) => {
                name.append_entry_by_text("CN", person).expect("cn");
                name.append_entry_by_text("serialNumber", hsa_id)
                    .expect("serialNumber");
            }
            _ => name.append_entry_by_text("CN", file_name).expect("cn"),
        }
        name.append_entry_by_text("O", "kurir test").expect("o");
        let name = name.build();
        let mut b = X509::builder().expect("builder");
        b.set_version(2).expect("v3");
        b.set_serial_number(&serial()).expect("serial");
        b.set_subject_name(&name).expect("subject");
        b.set_issuer_name(self.cert.subject_name()).expect("issuer");
        b.set_pubkey(&key).expect("pubkey");
        let (from, to) = match usage {
            Usage::ExpiredEmail(_) | Usage::ExpiredPerson(..) | Usage::ExpiredServerNamed(_) => (
                Asn1Time::from_unix(1_600_000_000).expect("t"),
                Asn1Time::from_unix(1_600_086_400).expect("t"),
            ),
            Usage::EmailExpiringIn(_, days) => (
                Asn1Time::days_from_now(0).expect("t"),
                Asn1Time::days_from_now(days).expect("t"),
            ),
            _ => (
                Asn1Time::days_from_now(0).expect("t"),
                Asn1Time::days_from_now(90).expect("t"),
            ),
        };
        b.set_not_before(&from).expect("nb");
        b.set_not_after(&to).expect("na");
        let ctx = b.x509v3_context(Some(&self.cert), None);
        let mut exts = Vec::new();
        match usage {
            Usage::Server => {
                exts.push(
                    SubjectAlternativeName::new()
                        .ip("127.0.0.1")
                        .dns("localhost")
                        .build(&ctx)
                        .expect("san"),
                );
                exts.push(ExtendedKeyUsage::new().server_auth().build().expect("eku"));
                exts.push(
                    KeyUsage::new()
                        .digital_signature()
                        .key_encipherment()
                        .build()
                        .expect("ku"),
                );
            }
            Usage::Email(addr) | Usage::ExpiredEmail(addr) | Usage::EmailExpiringIn(addr, _) => {
                exts.push(
                    SubjectAlternativeName::new()
                        .email(addr)
                        .build(&ctx)
                        .expect("san"),
                );
                exts.push(
                    ExtendedKeyUsage::new()
                        .email_protection()
                        .build()
                        .expect("eku"),
                );
                exts.push(
                    KeyUsage::new()
                        .digital_signature()
                        .key_encipherment()
                        .non_repudiation()
                        .build()
                        .expect("ku"),
                );
            }
            Usage::ServerNamed(names) | Usage::ExpiredServerNamed(names) => {
                let mut san = SubjectAlternativeName::new();
                for name in names {
                    san.dns(name);
                }
                exts.push(san.build(&ctx).expect("san"));
                exts.push(ExtendedKeyUsage::new().server_auth().build().expect("eku"));
                exts.push(
                    KeyUsage::new()
                        .digital_signature()
                        .key_encipherment()
                        .build()
                        .expect("ku"),
                );
            }
            Usage::Person(..) | Usage::ExpiredPerson(..) => {
                exts.push(ExtendedKeyUsage::new().client_auth().build().expect("eku"));
                exts.push(KeyUsage::new().digital_signature().build().expect("ku"));
            }
            Usage::EmailWithoutProtectionPurpose(addr) => {
                exts.push(
                    SubjectAlternativeName::new()
                        .email(addr)
                        .build(&ctx)
                        .expect("san"),
                );
                exts.push(ExtendedKeyUsage::new().server_auth().build().expect("eku"));
            }
        }
        for e in exts {
            b.append_extension(e).expect("ext");
        }
        b.sign(&self.key, MessageDigest::sha256()).expect("sign");
        let cert = b.build();
        let cert_path = self.dir.join(format!("{file_name}.pem"));
        let key_path = self.dir.join(format!("{file_name}.key"));
        std::fs::write(&cert_path, cert.to_pem().expect("pem")).expect("write cert");
        std::fs::write(&key_path, key.private_key_to_pem_pkcs8().expect("key pem"))
            .expect("write key");
        let der = cert.to_der().expect("der");
        Identity {
            cert: cert_path,
            key: key_path,
            sha256: openssl::sha::sha256(&der)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        }
    }

    /// A certificate revocation list signed by this CA that revokes `revoked`, made with the
    /// openssl CLI's `ca` command (as a CA operator would). `next_update` in the past makes
    /// a stale list. Written to `out`.
    pub fn crl(&self, out: &Path, revoked: &[&Identity], stale: bool) -> PathBuf {
        let work = self.dir.join(format!("crl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).expect("crl dir");
        let key = work.join("ca.key");
        std::fs::write(&key, self.key.private_key_to_pem_pkcs8().expect("key")).expect("key");
        std::fs::write(work.join("index.txt"), "").expect("index");
        std::fs::write(work.join("crlnumber"), "1000\n").expect("crlnumber");
        let cnf = work.join("ca.cnf");
        std::fs::write(
            &cnf,
            format!(
                "[ca]\ndefault_ca=d\n[d]\ndatabase={}\ncrlnumber={}\ndefault_md=sha256\n\
                 default_crl_days=30\n",
                work.join("index.txt").display(),
                work.join("crlnumber").display()
            ),
        )
        .expect("cnf");
        let openssl = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .arg("ca")
                .args(["-batch", "-config"])
                .arg(&cnf)
                .arg("-keyfile")
                .arg(&key)
                .arg("-cert")
                .arg(&self.pem)
                .args(args)
                .output()
                .expect("openssl ca runs");
            assert!(
                out.status.success(),
                "openssl ca {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        for who in revoked {
            openssl(&["-revoke", &who.cert.to_string_lossy()]);
        }
        let tmp = out.with_extension("tmp");
        let mut args = vec!["-gencrl", "-out", tmp.to_str().expect("path")];
        if stale {
            args.extend([
                "-crl_lastupdate",
                "20200101000000Z",
                "-crl_nextupdate",
                "20200102000000Z",
            ]);
        }
        openssl(&args);
        // Replaced in one step, as an operator's fetch would.
        std::fs::rename(&tmp, out).expect("rename");
        let _ = std::fs::remove_dir_all(&work);
        out.to_path_buf()
    }
}

/// A self-signed server certificate for `host` (no CA vouches for it), written as
/// `<file_name>.pem` and `.key` in `dir`; with the SHA-256 of its public key (a DANE-EE TLSA
/// record's data).
pub fn self_signed_server(dir: &Path, file_name: &str, host: &str) -> (Identity, String) {
    let key = key();
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", host).expect("cn");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("v3");
    b.set_serial_number(&serial()).expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("t"))
        .expect("nb");
    b.set_not_after(&Asn1Time::days_from_now(90).expect("t"))
        .expect("na");
    let san = SubjectAlternativeName::new()
        .dns(host)
        .build(&b.x509v3_context(None, None))
        .expect("san");
    b.append_extension(san).expect("ext");
    b.sign(&key, MessageDigest::sha256()).expect("sign");
    let cert = b.build();
    let cert_path = dir.join(format!("{file_name}.pem"));
    let key_path = dir.join(format!("{file_name}.key"));
    std::fs::write(&cert_path, cert.to_pem().expect("pem")).expect("write cert");
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().expect("key pem")).expect("key");
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let spki = key.public_key_to_der().expect("spki");
    (
        Identity {
            cert: cert_path,
            key: key_path,
            sha256: hex(&openssl::sha::sha256(&cert.to_der().expect("der"))),
        },
        hex(&openssl::sha::sha256(&spki)),
    )
}

/// SHA-256 of a certificate file's public key (SubjectPublicKeyInfo), hex: a TLSA 3 1 1 record.
pub fn spki_sha256(cert: &Path) -> String {
    let pem = std::fs::read(cert).expect("cert");
    let cert = X509::from_pem(&pem).expect("pem");
    let spki = cert
        .public_key()
        .expect("key")
        .public_key_to_der()
        .expect("spki");
    openssl::sha::sha256(&spki)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
