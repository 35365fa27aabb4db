//! Test harness: a real `kurir` binary in a temporary working directory, real files, real
//! qpdf and pdftotext. Nothing here fakes kurir's behaviour.
#![allow(dead_code)]

pub mod browser;
pub mod desk;
pub mod dnsworld;
pub mod mail;
pub mod mailworld;
pub mod pdf;
pub mod peer;
pub mod pki;
pub mod portal;
pub mod postfix;
pub mod registration;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The case number used in tests: synthetic, and searched for in logs to prove it never leaks.
pub const CASE: &str = "99-876543";

/// A working directory with its own spool and state, and at most one daemon.
pub struct Env {
    pub dir: tempfile::TempDir,
    daemon: Option<Child>,
    env: Vec<(String, String)>,
    log_seq: u32,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("tempdir"),
            daemon: None,
            // Tests run in parallel: every daemon takes a free port for /metrics. And no test
            // reads an installed /etc/kurir/kurir.toml (the package test installs one).
            env: vec![
                ("KURIR_OPS__LISTEN".into(), "127.0.0.1:0".into()),
                ("KURIR_CONFIG".into(), "none".into()),
                // The mail tests' municipalities live on 127.0.0.1 behind a test relay, with
                // no DNS of their own: their hop is not what they test. tests/connection.rs
                // checks real MX servers, and sets this back to the shipped `true`.
                ("KURIR_CONNECTION__REQUIRED".into(), "false".into()),
            ],
            log_seq: 0,
        }
    }

    /// The address the daemon serves /metrics and /healthz on.
    pub fn ops_addr(&self) -> String {
        std::fs::read_to_string(self.path().join("state/ops.addr")).expect("ops.addr written")
    }

    /// Waits until the daemon has sent every notice it queued (a registration's change is
    /// announced by mail in the background): tests that count messages start after it.
    pub fn notices_settled(&self) {
        wait_for("the notices sent", Duration::from_secs(60), || {
            let (_, metrics) = self.http_get("/metrics");
            metrics.lines().any(|l| l == "kurir_notices_waiting 0")
        });
    }

    /// An HTTP GET on the daemon's ops endpoint; returns (status, body).
    pub fn http_get(&self, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.ops_addr()).expect("connect");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response");
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// Sets an environment variable for every kurir started from now on.
    pub fn set_env(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn spool(&self) -> PathBuf {
        self.path().join("spool")
    }

    /// A `kurir` command in this environment.
    pub fn kurir(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kurir"));
        cmd.current_dir(self.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("KURIR_") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Gives the spool and the store, with everything in them, to `uid`, and lets that user
    /// pass through this folder: the daemon's folders as the package leaves them to its user,
    /// for a test that runs kurir as root beside them.
    pub fn give_folders_to(&self, uid: u32) {
        use std::os::unix::fs::PermissionsExt;
        let mut all = vec![self.path().join("state"), self.spool()];
        while let Some(path) = all.pop() {
            std::os::unix::fs::lchown(&path, Some(uid), Some(uid)).expect("chown");
            if path.is_dir() && !path.is_symlink() {
                all.extend(
                    std::fs::read_dir(&path)
                        .expect("dir")
                        .filter_map(|e| e.ok())
                        .map(|e| e.path()),
                );
            }
        }
        std::fs::set_permissions(self.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }

    /// Runs kurir with `args` and returns its output (whatever the exit status).
    pub fn run(&self, args: &[&str]) -> Output {
        self.kurir().args(args).output().expect("kurir runs")
    }

    /// Runs kurir and insists on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kurir {args:?} failed: {}\n{}\nthe daemon's last log lines:\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout),
            self.log_tail(30)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Starts `kurir run` (JSON logs to a file) and waits until its control socket answers.
    pub fn start(&mut self) {
        assert!(self.daemon.is_none(), "daemon already running");
        self.log_seq += 1;
        let log = std::fs::File::create(self.path().join(format!("daemon-{}.log", self.log_seq)))
            .expect("log file");
        let child = self
            .kurir()
            .args(["--log-format", "json", "run"])
            .stdout(Stdio::from(log.try_clone().expect("clone")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("daemon starts");
        self.daemon = Some(child);
        let socket = self.path().join("state/kurir.sock");
        wait_for("daemon control socket", Duration::from_secs(30), || {
            self.assert_alive();
            socket.exists() && std::os::unix::net::UnixStream::connect(&socket).is_ok()
        });
    }

    /// Panics if the daemon has exited.
    pub fn assert_alive(&self) {
        if let Some(child) = &self.daemon {
            // try_wait needs &mut; check /proc instead.
            let pid = child.id();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.split(") ").nth(1).and_then(|s| s.chars().next());
            assert!(
                matches!(state, Some(c) if c != 'Z' && c != 'X'),
                "daemon exited; log:\n{}",
                self.logs()
            );
        }
    }

    /// Lets the daemon make its store and stops it again: only `kurir run` makes a store, and
    /// commands run before it refuse to answer from none.
    pub fn make_store(&mut self) {
        self.start();
        self.stop();
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            child.kill().expect("kill -9");
            child.wait().expect("reaped");
        }
    }

    /// Waits up to `limit` for the daemon to end by itself; its exit status, or `None` if it
    /// still runs (then it is left running).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(child) = self.daemon.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.daemon = None;
                    return Some(status);
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let pid = child.id() as i32;
            // SAFETY: sending a signal to our own child process.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            let status = child.wait().expect("daemon exits");
            assert!(
                status.success(),
                "daemon exit status {status}\n{}",
                self.logs()
            );
        }
    }

    /// The last `n` lines the daemon logged, to say why a command it answered failed.
    pub fn log_tail(&self, n: usize) -> String {
        let logs = self.logs();
        let lines: Vec<&str> = logs.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Everything every daemon of this environment logged.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for i in 1..=self.log_seq {
            all.push_str(
                &std::fs::read_to_string(self.path().join(format!("daemon-{i}.log")))
                    .unwrap_or_default(),
            );
        }
        all
    }

    /// `kurir inbound --recipient R` as the MTA's pipe runs it, `message` on standard input.
    pub fn inbound(&self, recipient: &str, message: &[u8]) -> Output {
        use std::io::Write;
        let mut child = self
            .kurir()
            .args(["inbound", "--recipient", recipient])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kurir inbound");
        // The child may refuse (too large) before reading everything.
        let _ = child.stdin.take().expect("stdin").write_all(message);
        child.wait_with_output().expect("inbound exits")
    }

    /// Writes two synthetic documents and submits them with `kurir submit`; returns the job id.
    pub fn submit(&self, to: &str, copy_to: Option<&str>) -> String {
        let b = self.path().join("in-beslut.pdf");
        let g = self.path().join("in-godman.pdf");
        std::fs::write(&b, pdf::beslut("BESLUT-MARKER")).expect("write");
        std::fs::write(&g, pdf::god_man("GODMAN-MARKER")).expect("write");
        let mut args = vec![
            "submit",
            "--to",
            to,
            "--case",
            CASE,
            "--anvisningsbeslut",
            "in-beslut.pdf",
            "--god-man",
            "in-godman.pdf",
        ];
        if let Some(c) = copy_to {
            args.extend(["--copy-to", c]);
        }
        self.ok(&args).trim().to_string()
    }

    /// The letter PDFs in every print batch.
    pub fn letters(&self) -> usize {
        std::fs::read_dir(self.spool().join("print"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .flat_map(|b| std::fs::read_dir(b.path()).into_iter().flatten())
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".pdf"))
            .count()
    }

    /// Drops a job the way any writer may: build under tmp/, rename into incoming/.
    pub fn drop_job(&self, name: &str, manifest: &str, files: &[(&str, &[u8])]) {
        let tmp = self.spool().join("tmp").join(name);
        std::fs::create_dir_all(&tmp).expect("tmp dir");
        std::fs::create_dir_all(self.spool().join("incoming")).expect("incoming");
        std::fs::write(tmp.join("job.toml"), manifest).expect("manifest");
        for (file, bytes) in files {
            std::fs::write(tmp.join(file), bytes).expect("file");
        }
        std::fs::rename(&tmp, self.spool().join("incoming").join(name)).expect("rename");
    }

    /// `kurir status ID --json`, once the daemon has taken the job in (a job just submitted may
    /// still lie in the spool: `status` says so, and this waits).
    pub fn status(&self, id: &str) -> Value {
        let args = ["status", id, "--json"];
        let mut answer = None;
        wait_for(&format!("{id} taken in"), Duration::from_secs(30), || {
            let out = self.run(&args);
            if out.status.success() {
                answer = Some(String::from_utf8_lossy(&out.stdout).to_string());
                return true;
            }
            // Any other failure is reported by `ok` below, with the daemon's log.
            !String::from_utf8_lossy(&out.stderr).contains(kurir::cli::control::NOT_TAKEN_IN)
        });
        let answer = answer.unwrap_or_else(|| self.ok(&args));
        serde_json::from_str(&answer).expect("status json")
    }

    /// `kurir list --json --limit N`.
    pub fn list(&self, limit: usize) -> Vec<Value> {
        let out = self.ok(&["list", "--json", "--limit", &limit.to_string()]);
        serde_json::from_str(&out).expect("list json")
    }

    /// The receipt of a job, once written.
    pub fn receipt(&self, id: &str) -> Option<Value> {
        let path = self.spool().join("receipts").join(format!("{id}.json"));
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Waits for a job's receipt.
    pub fn wait_receipt(&self, id: &str) -> Value {
        let mut found = None;
        wait_for(&format!("receipt of {id}"), Duration::from_secs(30), || {
            self.assert_alive();
            found = self.receipt(id);
            found.is_some()
        });
        found.expect("receipt")
    }

    /// All receipts on disk.
    pub fn receipts(&self) -> Vec<Value> {
        let Ok(dir) = std::fs::read_dir(self.spool().join("receipts")) else {
            return vec![];
        };
        dir.filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter_map(|t| serde_json::from_str(&t).ok())
            .collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether the job's history (from [`Env::status`]) has an event whose detail contains `text`.
pub fn has_event(status: &Value, text: &str) -> bool {
    status["events"]
        .as_array()
        .expect("events")
        .iter()
        .any(|e| e["detail"].as_str().unwrap_or("").contains(text))
}

/// Polls `cond` every 20 ms until it holds; panics with `what` after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The manifest for a two-document job.
pub fn manifest(to: &str, files: &[(&str, &str)]) -> String {
    let mut text = format!("to = \"{to}\"\ncase = \"{CASE}\"\n");
    for (kind, file) in files {
        text.push_str(&format!(
            "[[document]]\nkind = \"{kind}\"\nfile = \"{file}\"\n"
        ));
    }
    text
}

/// `qpdf --check` passes.
pub fn qpdf_ok(path: &Path) -> bool {
    let out = Command::new("qpdf")
        .arg("--check")
        .arg(path)
        .output()
        .expect("qpdf is installed (tests/setup)");
    out.status.success()
}

/// Text of pages `first..=last` by pdftotext.
pub fn pdftotext(path: &Path, first: u32, last: u32) -> String {
    let out = Command::new("pdftotext")
        .args(["-f", &first.to_string(), "-l", &last.to_string(), "-layout"])
        .arg(path)
        .arg("-")
        .output()
        .expect("pdftotext is installed (tests/setup)");
    assert!(out.status.success(), "pdftotext failed");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Page count by pdfinfo.
pub fn pdf_pages(path: &Path) -> u32 {
    let out = Command::new("pdfinfo").arg(path).output().expect("pdfinfo");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("pdfinfo reports pages")
}

/// Rows of every manifest.csv under spool/print, as maps of column → value.
pub fn manifest_rows(spool: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut rows = Vec::new();
    let Ok(batches) = std::fs::read_dir(spool.join("print")) else {
        return rows;
    };
    for batch in batches.filter_map(|e| e.ok()) {
        let path = batch.path().join("manifest.csv");
        let Ok(mut reader) = csv::Reader::from_path(&path) else {
            continue;
        };
        let headers = reader.headers().expect("headers").clone();
        for record in reader.records() {
            let record = record.expect("row");
            rows.push(
                headers
                    .iter()
                    .zip(record.iter())
                    .map(|(h, v)| (h.to_string(), v.to_string()))
                    .collect(),
            );
        }
    }
    rows
}

/// Every letter PDF under spool/print, by file name.
pub fn letter_files(spool: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(batches) = std::fs::read_dir(spool.join("print")) else {
        return out;
    };
    for batch in batches.filter_map(|e| e.ok()) {
        for file in std::fs::read_dir(batch.path())
            .expect("batch")
            .filter_map(|e| e.ok())
        {
            let name = file.file_name().to_string_lossy().to_string();
            if name.ends_with(".pdf") && !name.starts_with('.') {
                out.push(file.path());
            }
        }
    }
    out.sort();
    out
}
