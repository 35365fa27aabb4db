//! The municipality portal's test rig, run as the package runs it: the daemon with the e-mail
//! rig (verification codes go through the real SMTP test server), and `kurir-portal` as its own
//! process under another user (`nobody`) that can reach only the daemon's portal socket — not
//! the store, the spool or the signing key. A SITHS-like person CA made at test time; 2480
//! secure and granted to the test person. Needs root (to start a process as another user).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;

use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
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
/// The desk's user in the tests (the package's is `kurir-desk`): another user than the
/// portal's, as installed, so the desk's socket can refuse the portal.
pub const DESK_USER: &str = "www-data";
/// Its group.
pub const DESK_GROUP: &str = "www-data";

/// Which web program: the municipality portal or the agency's dispatch desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Portal,
    Desk,
}

impl Door {
    /// Its short name (files, folders, the socket).
    pub fn subcommand(self) -> &'static str {
        match self {
            Door::Portal => "portal",
            Door::Desk => "desk",
        }
    }

    /// The program that serves it, built beside `kurir` (`tests/run` builds the workspace's
    /// programs before it tests).
    pub fn program(self) -> PathBuf {
        let name = match self {
            Door::Portal => "kurir-portal",
            Door::Desk => "kurir-desk",
        };
        let path = Path::new(env!("CARGO_BIN_EXE_kurir")).with_file_name(name);
        assert!(
            path.is_file(),
            "{} is not built: tests/run builds it (`cargo build --workspace --bins`)",
            path.display()
        );
        path
    }

    /// Its OS user and group.
    pub fn user(self) -> (&'static str, &'static str) {
        match self {
            Door::Portal => (PORTAL_USER, PORTAL_GROUP),
            Door::Desk => (DESK_USER, DESK_GROUP),
        }
    }

    fn uid(self) -> u32 {
        match self {
            Door::Portal => NOBODY,
            Door::Desk => 33,
        }
    }

    /// Its settings' prefix in the environment.
    fn env(self) -> &'static str {
        match self {
            Door::Portal => "KURIR_PORTAL__",
            Door::Desk => "KURIR_DESK__",
        }
    }
}

pub struct Portal {
    pub rig: Rig,
    served: Served,
}

impl std::ops::Deref for Portal {
    type Target = Served;
    fn deref(&self) -> &Served {
        &self.served
    }
}

/// `kurir-portal` running as its own user for a test environment.
pub struct Served {
    pub addr: String,
    /// The person CA (the SITHS stand-in).
    pub ca: Ca,
    /// The test person's card.
    pub person: Identity,
    /// The daemon's portal socket.
    pub socket: PathBuf,
    process: Option<Child>,
    log: PathBuf,
}

impl Served {
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

impl Drop for Served {
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
    as_user(Door::Portal, program)
}

/// A command run as `door`'s user, the way systemd's `User=` would start it.
pub fn as_user(door: Door, program: &str) -> std::process::Command {
    let (user, group) = door.user();
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        &format!("--reuid={user}"),
        &format!("--regid={group}"),
        "--clear-groups",
        "--",
        program,
    ]);
    cmd
}

/// One request line spoken to a daemon socket by `door`'s user, as a compromised web process
/// could: the answer line, or why the socket could not be reached.
pub fn speak_as(door: Door, socket: &Path, line: &str) -> Result<String, String> {
    let script = "import socket, sys\n\
                  s = socket.socket(socket.AF_UNIX)\n\
                  s.connect(sys.argv[1])\n\
                  s.sendall(sys.argv[2].encode() + b'\\n')\n\
                  print(s.makefile().readline(), end='')\n";
    // Debian's python (a pyenv under /root is not the web user's to run).
    let out = as_user(door, "/usr/bin/python3")
        .args(["-c", script])
        .arg(socket)
        .arg(line)
        .output()
        .expect("python3");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// How long a connection may sit idle before the portal closes it (its header-read timeout).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A daemon with the e-mail rig, 2480 secure and granted to the test person, and `kurir
/// portal` running as another user.
pub fn portal() -> Portal {
    portal_with(|_, _, _| {})
}

/// [`portal`], with `setup` run on the environment, the person CA and the person's card
/// before anything starts (to add settings).
pub fn portal_with(setup: impl FnOnce(&mut Env, &Ca, &Identity)) -> Portal {
    let mut rig = rig();
    let prepared = prepare(&mut rig.env, &rig.ca);
    setup(&mut rig.env, &prepared.ca, &prepared.person);
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
    grant_municipality(&rig.env, "2480", HSA, PERSON);
    let served = launch(&rig.env, prepared);
    Portal { rig, served }
}

/// Grants the test person (of the test person CA) municipality `code`.
pub fn grant_municipality(env: &Env, code: &str, hsa_id: &str, name: &str) {
    env.ok(&[
        "municipality",
        "grant",
        code,
        "--hsa-id",
        hsa_id,
        "--name",
        name,
        "--issuer",
        &format!("CN={PERSON_CA}"),
        "--operator",
        "agency",
    ]);
}

/// What [`prepare`] made: the portal's address, person CA, the test person and its socket.
pub struct Prepared {
    addr: String,
    ca: Ca,
    person: Identity,
    socket: PathBuf,
    door: Door,
}

impl Prepared {
    /// The person CA, to issue more cards.
    pub fn ca(&self) -> &Ca {
        &self.ca
    }
}

/// Before the daemon starts: the portal's server certificate (from `tls_ca`), a person CA and
/// the test person's card, the folders the package makes, and the settings of both processes.
pub fn prepare(env: &mut Env, tls_ca: &Ca) -> Prepared {
    let dir = env.path().to_path_buf();
    // The portal's user may pass through the test folder, not read it; the agency's signing
    // key and the store stay the daemon's alone.
    chmod(&dir, 0o711);
    if dir.join("pki").is_dir() {
        chmod(&dir.join("pki"), 0o700);
    }
    let ca = Ca::new(&dir.join("portal-pki"), PERSON_CA);
    let person = ca.issue("person", Usage::Person(HSA, PERSON));
    let addr = addr_for_door();
    let socket = serve_door(env, tls_ca, &ca.pem, Door::Portal, &addr);
    // The CAs the agency trusts for municipalities' e-mail: the test CA.
    env.set_env("KURIR_REGISTRY__SMIME_CA", &tls_ca.pem.to_string_lossy());
    Prepared {
        addr,
        ca,
        person,
        socket,
        door: Door::Portal,
    }
}

/// A free loopback address for a web program.
fn addr_for_door() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// Settings of `door`'s program, as the package lays them out: its server certificate (from
/// `tls_ca`) and the person CA in its own folder readable by its user only, and its socket in
/// a folder of its group (setgid, so the daemon's socket belongs to that group). Returns the
/// socket.
fn serve_door(env: &mut Env, tls_ca: &Ca, person_ca: &Path, door: Door, addr: &str) -> PathBuf {
    let dir = env.path().to_path_buf();
    let (user, _) = door.user();
    let etc = dir.join(format!("{}-etc", door.subcommand()));
    std::fs::create_dir_all(&etc).expect("etc");
    let server = tls_ca.issue(&format!("{}-server", door.subcommand()), Usage::Server);
    for (from, to) in [
        (&server.cert, "server.pem"),
        (&server.key, "server.key"),
        (&person_ca.to_path_buf(), "client-ca.pem"),
    ] {
        std::fs::copy(from, etc.join(to)).expect("copy");
        chown(&etc.join(to), door.uid());
    }
    chown(&etc, door.uid());
    chmod(&etc, 0o700);
    let run = dir.join(format!("run-{}", door.subcommand()));
    std::fs::create_dir_all(&run).expect("run dir");
    std::os::unix::fs::chown(&run, Some(0), Some(door.uid())).expect("chown run");
    chmod(&run, 0o2750);
    let socket = run.join(format!("{}.sock", door.subcommand()));
    let env_name = |key: &str| format!("{}{key}", door.env());
    env.set_env(&env_name("LISTEN"), addr)
        .set_env(&env_name("CERT"), &etc.join("server.pem").to_string_lossy())
        .set_env(&env_name("KEY"), &etc.join("server.key").to_string_lossy())
        .set_env(
            &env_name("CLIENT_CA"),
            &etc.join("client-ca.pem").to_string_lossy(),
        )
        .set_env(&env_name("SOCKET"), &socket.to_string_lossy())
        .set_env(&env_name("USER"), user);
    socket
}

/// Before the daemon starts, after [`prepare`]: the desk's settings, for staff cards of the
/// same person CA (SITHS issues both).
pub fn prepare_desk(env: &mut Env, tls_ca: &Ca, portal: &Prepared) -> Prepared {
    let addr = addr_for_door();
    let socket = serve_door(env, tls_ca, &portal.ca.pem, Door::Desk, &addr);
    Prepared {
        addr,
        ca: portal.ca.clone(),
        person: portal.person.clone(),
        socket,
        door: Door::Desk,
    }
}

/// Starts `kurir-portal` or `kurir-desk` (the daemon runs) and waits until it listens.
pub fn launch(env: &Env, prepared: Prepared) -> Served {
    let log = env
        .path()
        .join(format!("{}.log", prepared.door.subcommand()));
    let process = start_web(env, prepared.door, &log);
    wait_for("the web program to listen", Duration::from_secs(30), || {
        std::net::TcpStream::connect(&prepared.addr).is_ok()
    });
    Served {
        addr: prepared.addr,
        ca: prepared.ca,
        person: prepared.person,
        socket: prepared.socket,
        process: Some(process),
        log,
    }
}

/// `kurir-portal` or `kurir-desk` as its user, with the environment's settings.
fn start_web(env: &Env, door: Door, log: &Path) -> Child {
    let file = std::fs::File::create(log).expect("web log");
    let template = env.kurir();
    let program = door.program();
    let mut cmd = as_user(door, program.to_str().expect("program path"));
    cmd.current_dir(env.path());
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.args(["--log-format", "json"])
        .stdout(Stdio::from(file.try_clone().expect("clone")))
        .stderr(Stdio::from(file))
        .spawn()
        .expect("kurir portal/desk starts")
}

/// An HTTP answer from the portal.
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

pub fn connector(ca: &Path, identity: Option<&Identity>) -> SslConnector {
    let mut b = SslConnector::builder(SslMethod::tls_client()).expect("connector");
    b.set_ca_file(ca).expect("ca");
    b.set_verify(SslVerifyMode::PEER);
    if let Some(id) = identity {
        b.set_certificate_file(&id.cert, SslFiletype::PEM)
            .expect("client cert");
        b.set_private_key_file(&id.key, SslFiletype::PEM)
            .expect("client key");
    }
    b.build()
}

/// One HTTP/1.0 request over TLS; `Err` when the TLS handshake or the exchange fails.
pub fn request(
    addr: &str,
    connector: &SslConnector,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Reply, String> {
    let (status, head, body) =
        request_raw(addr, connector, method, path, headers, body.as_bytes())?;
    Ok(Reply {
        status,
        head,
        body: String::from_utf8_lossy(&body).to_string(),
    })
}

/// [`request`] with any body, answering the status, the head (lower case) and the body's bytes.
pub fn request_raw(
    addr: &str,
    connector: &SslConnector,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String, Vec<u8>), String> {
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect("localhost", tcp)
        .map_err(|e| format!("handshake: {e}"))?;
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    tls.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    tls.write_all(body).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw)
        .map_err(|e| format!("reading: {e}"))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no HTTP answer: {:?}", String::from_utf8_lossy(&raw)))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    Ok((status, head.to_ascii_lowercase(), raw[split + 4..].to_vec()))
}

/// A multipart/form-data body of `fields` and `files` (name, file name, bytes), with its
/// content type.
pub fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "kurir-test-boundary-7f3a";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (name, file, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                 Content-Type: application/pdf\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The form token on a page.
pub fn csrf(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a form token on the page")
        .to_string()
}
