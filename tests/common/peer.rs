//! The receiving SMTP server (tests/smtp_peer.py, aiosmtpd) as a child process.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Peer {
    pub dir: PathBuf,
    pub port: u16,
    child: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Peer {
    /// Starts a peer with STARTTLS using `cert`/`key`, or without STARTTLS when `None`.
    pub fn start(dir: &Path, tls: Option<(&Path, &Path)>) -> Peer {
        Peer::start_with(dir, tls, false)
    }

    /// Starts a peer that speaks TLS from the first byte (port 465 style).
    pub fn start_implicit_tls(dir: &Path, cert: &Path, key: &Path) -> Peer {
        Peer::start_with(dir, Some((cert, key)), true)
    }

    fn start_with(dir: &Path, tls: Option<(&Path, &Path)>, implicit: bool) -> Peer {
        std::fs::create_dir_all(dir).expect("peer dir");
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_peer.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script)
            .arg("--dir")
            .arg(dir)
            .arg("--port")
            .arg(port.to_string());
        match tls {
            Some((cert, key)) => {
                cmd.arg("--cert").arg(cert).arg("--key").arg(key);
                if implicit {
                    cmd.arg("--implicit-tls");
                }
            }
            None => {
                cmd.arg("--no-starttls");
            }
        }
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("peer.stderr")).expect("stderr"),
            ))
            .spawn()
            .expect("python3 tests/smtp_peer.py starts (aiosmtpd installed by tests/setup)");
        let peer = Peer {
            dir: dir.to_path_buf(),
            port,
            child,
        };
        super::wait_for("SMTP peer ready", Duration::from_secs(30), || {
            dir.join("ready").exists()
        });
        peer
    }

    /// The server's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("peer.log")).unwrap_or_default()
    }

    /// Log lines starting with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.log().lines().filter(|l| l.starts_with(prefix)).count()
    }

    /// Stored messages, oldest first.
    pub fn messages(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(self.dir.join("mail"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        out.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        out.sort();
        out
    }

    /// Fault injection: `{"address": {"tempfail": K}}` or `{"address": {"reject": true}}`.
    pub fn set_rules(&self, rules: serde_json::Value) {
        let tmp = self.dir.join("rules.json.tmp");
        std::fs::write(&tmp, rules.to_string()).expect("rules");
        std::fs::rename(&tmp, self.dir.join("rules.json")).expect("rules");
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
