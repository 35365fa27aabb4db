//! Private Postfix instances on 127.0.0.1 for the proof-of-delivery tests: the agency's relay
//! (DSN on, TLS to the next hop, reports piped to `kurir inbound`) and a municipality's mail
//! server (delivers to a Maildir; a second listener without DSN). Each has its own
//! configuration, queue and data directories and never touches the system's Postfix.
//! Needs root (Postfix's master runs as root and drops privileges) and the postfix package
//! (tests/setup installs it).
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The unprivileged user Postfix delivers as (mailboxes, the pipe to `kurir inbound`).
pub const NOBODY: u32 = 65534;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// One running private instance; stopped when dropped.
pub struct Postfix {
    pub dir: PathBuf,
}

/// What makes an instance: `main.cf` lines besides the common ones, SMTP listeners (port and
/// `-o` options), extra `master.cf` lines, and a transport table.
pub struct Instance<'a> {
    pub name: &'a str,
    pub main: String,
    pub listeners: Vec<(u16, &'a str)>,
    pub master: String,
    pub transport: String,
    /// More files for `etc/` (lookup tables), by name.
    pub files: Vec<(&'a str, String)>,
    pub cert: &'a Path,
    pub key: &'a Path,
    /// Run in a mount namespace of its own where this file is /etc/resolv.conf: the instance's
    /// DNS lookups (MX, TLSA) then go to the test's resolver.
    pub resolv_conf: Option<&'a Path>,
}

pub fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).expect("chown");
}

/// The smallest queue of a Unix datagram socket Postfix's logging is safe with. Each instance
/// logs through postlogd's datagram socket (`maillog_file`); with the kernel's default of 10
/// (a machine without systemd, which raises it to 512), a burst of log records fills it, and
/// postlogd, logging a word of its own to the same socket, waits on itself for good.
const LOG_QUEUE: u32 = 512;

fn enough_log_queue() {
    let path = "/proc/sys/net/unix/max_dgram_qlen";
    let now: u32 = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if now < LOG_QUEUE {
        let _ = std::fs::write(path, LOG_QUEUE.to_string());
    }
}

impl Postfix {
    pub fn start(base: &Path, inst: Instance<'_>) -> Postfix {
        enough_log_queue();
        let dir = base.join(inst.name);
        let etc = dir.join("etc");
        for d in ["etc", "queue", "data"] {
            std::fs::create_dir_all(dir.join(d)).expect("postfix dir");
        }
        // Postfix checks that the path to its queue is owned by root and not writable by others.
        for d in [base, &dir] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let postfix_uid = nix_uid("postfix");
        std::os::unix::fs::chown(dir.join("data"), Some(postfix_uid), None).expect("chown data");
        std::fs::copy(inst.cert, etc.join("server.pem")).expect("cert");
        std::fs::copy(inst.key, etc.join("server.key")).expect("key");
        std::fs::set_permissions(
            etc.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod key");
        let stock = std::fs::read_to_string("/etc/postfix/master.cf").expect("master.cf");
        let mut master: String = stock
            .lines()
            .filter(|l| !l.starts_with("smtp ") || !l.contains(" inet "))
            .map(|l| match inst.resolv_conf {
                // The relay's smtp processes look up MX and TLSA through the namespace's
                // resolv.conf and reach kurir's socketmap: not from a chroot.
                Some(_) => unchrooted(l),
                None => l.to_string(),
            })
            .map(|l| format!("{l}\n"))
            .collect();
        for (port, options) in &inst.listeners {
            master.push_str(&format!(
                "127.0.0.1:{port} inet n - n - - smtpd {options}\n"
            ));
        }
        master.push_str(&inst.master);
        std::fs::write(etc.join("master.cf"), master).expect("master.cf");
        std::fs::write(etc.join("transport"), &inst.transport).expect("transport");
        for (name, content) in &inst.files {
            std::fs::write(etc.join(name), content).expect("table");
        }
        let d = dir.display();
        let main = format!(
            "compatibility_level = 3.6\n\
             config_directory = {d}/etc\nqueue_directory = {d}/queue\ndata_directory = {d}/data\n\
             mail_owner = postfix\nsetgid_group = postdrop\n\
             inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nmynetworks = 127.0.0.0/8\n\
             mydestination =\nlocal_recipient_maps =\nalias_maps =\nalias_database =\n\
             smtpd_tls_cert_file = {d}/etc/server.pem\nsmtpd_tls_key_file = {d}/etc/server.key\n\
             smtpd_tls_received_header = yes\n\
             transport_maps = texthash:{d}/etc/transport\n\
             maillog_file = {d}/maillog\nmaillog_file_prefixes = {d}\n\
             shlib_directory = /usr/lib/postfix\nmeta_directory = /etc/postfix\n\
             queue_run_delay = 1s\nminimal_backoff_time = 1s\nmaximal_backoff_time = 2s\n\
             smtp_connect_timeout = 5s\nbiff = no\n{}",
            inst.main
        );
        std::fs::write(etc.join("main.cf"), main).expect("main.cf");
        let conf = etc.to_string_lossy().to_string();
        let _ = Command::new("postfix")
            .args(["-c", &conf, "set-permissions"])
            .output();
        let out = match inst.resolv_conf {
            None => Command::new("postfix")
                .args(["-c", &conf, "start"])
                .output(),
            Some(resolv) => Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(format!(
                    "mount --bind '{}' /etc/resolv.conf && exec postfix -c '{conf}' start",
                    resolv.display()
                ))
                .output(),
        }
        .expect("postfix is installed (tests/setup) and this runs as root");
        assert!(
            out.status.success(),
            "postfix {} did not start: {}{}",
            inst.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let pf = Postfix { dir };
        for (port, _) in &inst.listeners {
            super::wait_for(
                &format!("postfix {} on port {port}", inst.name),
                Duration::from_secs(30),
                || std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok(),
            );
        }
        pf
    }

    /// Runs `postconf -e SETTING` on this instance and reloads it.
    pub fn set(&self, setting: &str) {
        let conf = self.dir.join("etc").to_string_lossy().to_string();
        for args in [
            vec!["postconf", "-c", &conf, "-e", setting],
            vec!["postfix", "-c", &conf, "reload"],
        ] {
            let out = Command::new(args[0])
                .args(&args[1..])
                .output()
                .expect("postfix tools");
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Delivers what waits in the queue now (`postqueue -f`).
    pub fn flush(&self) {
        let conf = self.dir.join("etc").to_string_lossy().to_string();
        let out = Command::new("postqueue")
            .args(["-c", &conf, "-f"])
            .output()
            .expect("postqueue");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }

    /// Messages delivered into `mail/<box>/new/`.
    pub fn maildir(&self, mailbox: &str) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("mail").join(mailbox).join("new")) else {
            return Vec::new();
        };
        let mut out: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        out.sort();
        out
    }
}

impl Drop for Postfix {
    /// `postfix stop`, and if that has not ended in 30 s, the master killed: a test never
    /// hangs on a server it started.
    fn drop(&mut self) {
        let conf = self.dir.join("etc");
        let stop = Command::new("postfix")
            .arg("-c")
            .arg(conf)
            .arg("stop")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Ok(mut stop) = stop {
            let until = std::time::Instant::now() + Duration::from_secs(30);
            while std::time::Instant::now() < until {
                if let Ok(Some(_)) = stop.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = stop.kill();
            let _ = stop.wait();
        }
        let pid = std::fs::read_to_string(self.dir.join("queue/pid/master.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        if let Some(pid) = pid {
            // The processes the master started, then the master.
            let _ = Command::new("pkill")
                .args(["-KILL", "-P", &pid.to_string()])
                .status();
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// A master.cf service line with its chroot column set to `n`.
fn unchrooted(line: &str) -> String {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if line.starts_with(|c: char| c.is_whitespace() || c == '#') || fields.len() < 8 {
        return line.to_string();
    }
    let mut fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
    fields[4] = "n".into();
    fields.join(" ")
}

/// The uid of a system user.
fn nix_uid(user: &str) -> u32 {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    passwd
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some(user)).then(|| f.nth(1)?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no user {user}"))
}
