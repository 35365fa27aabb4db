//! The municipality portal's test rig: the daemon with the e-mail rig (verification codes go
//! through the real SMTP test server) and the portal on, a SITHS-like person CA made at test
//! time, 2480 secure and granted to the test person.
#![allow(dead_code)]

use super::mail::{rig, Rig};
use super::pki::{Ca, Identity, Usage};

pub const HSA: &str = "SE2321000016-test1";
pub const PERSON: &str = "Test Teknikersson";

/// The name of the test person CA: Chromium's certificate policy picks the certificate by it.
pub const PERSON_CA: &str = "TEST SITHS e-id Person CA";

pub struct Portal {
    pub rig: Rig,
    pub addr: String,
    pub ca: Ca,
    pub person: Identity,
}

/// A daemon with the e-mail rig (for verification codes) and the portal on, 2480 secure and
/// granted to the test person.
pub fn portal() -> Portal {
    let mut rig = rig();
    let dir = rig.env.path().join("portal-pki");
    let ca = Ca::new(&dir, PERSON_CA);
    let server = rig.ca.issue("portal-server", Usage::Server);
    let person = ca.issue("person", Usage::Person(HSA, PERSON));
    rig.env
        .set_env("KURIR_PORTAL__LISTEN", "127.0.0.1:0")
        .set_env("KURIR_PORTAL__CERT", &server.cert.to_string_lossy())
        .set_env("KURIR_PORTAL__KEY", &server.key.to_string_lossy())
        .set_env("KURIR_PORTAL__CLIENT_CA", &ca.pem.to_string_lossy());
    rig.env.start();
    rig.env.ok(&[
        "municipality",
        "set",
        "2480",
        "--secure",
        "yes",
        "--operator",
        "agency",
    ]);
    rig.env.ok(&[
        "municipality",
        "grant",
        "2480",
        "--hsa-id",
        HSA,
        "--name",
        PERSON,
        "--operator",
        "agency",
    ]);
    let addr = std::fs::read_to_string(rig.env.path().join("state/portal.addr"))
        .expect("portal.addr written");
    Portal {
        rig,
        addr,
        ca,
        person,
    }
}
