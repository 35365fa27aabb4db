//! The municipality portal's test rig, run as the package runs it: the daemon with the e-mail
//! rig (verification codes go through the real SMTP test server), and `kurir portal` as its own
//! process under another user (`nobody`) that can reach only the daemon's portal socket — not
//! the store, the spool or the signing key. A SITHS-like person CA made at test time; 2480
//! secure and granted to the test person. Needs root (to start a process as another user).
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use super::mail::{rig, Rig};
use super::pki::{Ca, Identity, Usage};
use super::postfix::{chown, free_port, NOBODY};
use super::{wait_for, Env};

pub const HSA: &str = "SE2321000016-test1";
pub const PERSON: &str = "Test Teknikersson";

/// The name of the test person CA: Chromium's certificate policy picks the certificate by it.
pub const PERSON_CA: &str = "TEST SITHS e-id Person CA";

/// The portal's user in the tests (the package's is `kurir-portal`).
pub const PORTAL_USER: &str = "nobody";
/// Its group.
pub const PORTAL_GROUP: &str = "nogroup";

pub struct Portal {
    pub rig: Rig,
    pub addr: String,
    pub ca: Ca,
    pub person: Identity,
    /// The daemon's portal socket.
    pub socket: PathBuf,
    process: Option<Child>,
    log: PathBuf,
}

impl Portal {
    /// The portal process's id.
    pub fn pid(&self) -> u32 {
        self.process
            .as_ref()
            .map(Child::id)
            .expect("portal running")
    }

    /// What the portal logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A command run as the portal's user, the way systemd's `User=` would start it.
pub fn as_portal_user(program: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        &format!("--reuid={PORTAL_USER}"),
        &format!("--regid={PORTAL_GROUP}"),
        "--clear-groups",
        "--",
        program,
    ]);
    cmd
}

/// A daemon with the e-mail rig, 2480 secure and granted to the test person, and `kurir
/// portal` running as another user.
pub fn portal() -> Portal {
    let mut rig = rig();
    let dir = rig.env.path().to_path_buf();
    // The portal's user may pass through the test folder, not read it; the agency's signing
    // key and the store stay the daemon's alone.
    chmod(&dir, 0o711);
    chmod(&dir.join("pki"), 0o700);
    let ca = Ca::new(&dir.join("portal-pki"), PERSON_CA);
    let server = rig.ca.issue("portal-server", Usage::Server);
    let person = ca.issue("person", Usage::Person(HSA, PERSON));
    // What the package puts in /etc/kurir/portal/: readable by the portal's user.
    let etc = dir.join("portal-etc");
    std::fs::create_dir_all(&etc).expect("portal etc");
    for (from, to) in [
        (&server.cert, "server.pem"),
        (&server.key, "server.key"),
        (&ca.pem, "client-ca.pem"),
    ] {
        std::fs::copy(from, etc.join(to)).expect("copy");
        chown(&etc.join(to), NOBODY);
    }
    chown(&etc, NOBODY);
    // What the package's tmpfiles line makes: /run/kurir, group of the portal, setgid, so the
    // daemon's socket in it belongs to that group.
    let run = dir.join("run");
    std::fs::create_dir_all(&run).expect("run dir");
    std::os::unix::fs::chown(&run, Some(0), Some(NOBODY)).expect("chown run");
    chmod(&run, 0o2750);
    let socket = run.join("portal.sock");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    rig.env
        .set_env("KURIR_PORTAL__LISTEN", &addr)
        .set_env(
            "KURIR_PORTAL__CERT",
            &etc.join("server.pem").to_string_lossy(),
        )
        .set_env(
            "KURIR_PORTAL__KEY",
            &etc.join("server.key").to_string_lossy(),
        )
        .set_env(
            "KURIR_PORTAL__CLIENT_CA",
            &etc.join("client-ca.pem").to_string_lossy(),
        )
        .set_env("KURIR_PORTAL__SOCKET", &socket.to_string_lossy())
        .set_env("KURIR_PORTAL__USER", PORTAL_USER)
        // The CAs the agency trusts for municipalities' e-mail: the test CA.
        .set_env("KURIR_REGISTRY__SMIME_CA", &rig.ca.pem.to_string_lossy());
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
    // Umeå's own mail domain: a decision address in it is used once proven.
    rig.env.ok(&[
        "municipality",
        "domains",
        "2480",
        "add",
        "umea-test.example",
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
        "--issuer",
        &format!("CN={PERSON_CA}"),
        "--operator",
        "agency",
    ]);
    let log = dir.join("portal.log");
    let process = start_portal(&rig.env, &log);
    wait_for("the portal to listen", Duration::from_secs(30), || {
        std::net::TcpStream::connect(&addr).is_ok()
    });
    Portal {
        rig,
        addr,
        ca,
        person,
        socket,
        process: Some(process),
        log,
    }
}

/// `kurir portal` as the portal's user, with the environment's settings.
fn start_portal(env: &Env, log: &Path) -> Child {
    let file = std::fs::File::create(log).expect("portal log");
    let template = env.kurir();
    let mut cmd = as_portal_user(env!("CARGO_BIN_EXE_kurir"));
    cmd.current_dir(env.path());
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.args(["--log-format", "json", "portal"])
        .stdout(Stdio::from(file.try_clone().expect("clone")))
        .stderr(Stdio::from(file))
        .spawn()
        .expect("kurir portal starts")
}
