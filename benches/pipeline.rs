//! End-to-end benchmark: kurir against a real receiving MTA, side by side with the MTA's own
//! limit. `cargo bench --bench pipeline` (needs root and Postfix: `bench/setup`).
//!
//! 1. a private Postfix on 127.0.0.1 with STARTTLS and a test CA, its queue on tmpfs;
//! 2. baseline: the rate at which it accepts the same messages (same size, same TLS, pooled
//!    connections) from a minimal client (lettre + OpenSSL, 4 connections);
//!    then the signing floor: the same client signing and encrypting every message afresh
//!    before it sends it — what any S/MIME sender can reach on the same cores;
//! 3. burst: `kurir run` on a fresh spool and store, N municipalities with proven addresses and
//!    S/MIME certificates, a burst of 2-document jobs (~40 KB PDFs), signed and encrypted;
//!    then idle: the daemon's CPU over 10 s of quiet after the burst (target < 0.5 % of a core);
//! 4. steady: an offered load of jobs per second, for latency;
//! 5. post: the postal path's rate with no relay;
//! 6. start-up: a store with a long history, then the time to the first delivery.
//!
//! Prints a table and writes `target/bench/pipeline.json`. Sizes come from the environment:
//! KURIR_BENCH_JOBS (5000), KURIR_BENCH_BASELINE_MSGS (3000; the signing floor sends as many),
//! KURIR_BENCH_STEADY_RATE (20), KURIR_BENCH_STEADY_SECS (30), KURIR_BENCH_POST_JOBS (2000),
//! KURIR_BENCH_MUNICIPALITIES (20),
//! KURIR_BENCH_HISTORY (1000000: jobs already in the store for the start-up measurement);
//! KURIR_BENCH_SCHED_BATCH (1: kurir runs under SCHED_BATCH, as its systemd unit runs it; 0:
//! the default policy); KURIR_BENCH_AGENCY_KEY (rsa: the agency signs with RSA-2048; ec: with
//! ECDSA P-256).

mod common;
#[path = "../tests/common/pki.rs"]
mod pki;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use kurir::config::Settings;
use kurir::job::Kommunkod;
use kurir::registry::{Changes, Seed};
use kurir::store::Store;
use serde_json::json;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether kurir runs under SCHED_BATCH, as its systemd unit runs it (the default).
fn sched_batch() -> bool {
    env_usize("KURIR_BENCH_SCHED_BATCH", 1) == 1
}

/// Whether the agency signs with an ECDSA P-256 key instead of RSA-2048 (`KURIR_BENCH_AGENCY_KEY=ec`):
/// what a cheaper signature would change. The default is RSA, as the tests use.
fn agency_key_ec() -> bool {
    std::env::var("KURIR_BENCH_AGENCY_KEY").is_ok_and(|v| v == "ec")
}

/// Registers the municipalities with secure connections and proven addresses, as if each had
/// confirmed its verification code; with `cert_pems` (one per code, in order), also an S/MIME
/// certificate to encrypt to, naming the municipality's address as a receiver checks.
fn prove_municipalities(store: &Store, codes: &[Kommunkod], cert_pems: Option<&[String]>) {
    for (i, code) in codes.iter().enumerate() {
        let cert_pem = cert_pems.and_then(|pems| pems.get(i)).map(String::as_str);
        let mut r = store.registered(*code).expect("registered");
        let now = Timestamp::now();
        r.apply(
            &Changes {
                email: Some(format!("registrator@k{code}.bench.example")),
                secure: Some("yes".into()),
                smime_cert_pem: cert_pem.map(str::to_string),
                ..Changes::default()
            },
            now,
        )
        .expect("registration");
        r.set_code(
            *code,
            "BENCH234",
            now + jiff::SignedDuration::from_hours(1),
            &kurir::registry::CodeKey::from_bytes(&[7; 32]),
        )
        .expect("pending");
        r.confirm(
            *code,
            "BENCH234",
            now,
            &kurir::registry::CodeKey::from_bytes(&[7; 32]),
            kurir::registry::ChangeContext::agency(),
        )
        .expect("proven");
        store
            .register(*code, &r, "bench", &kurir::registry::RegistryAction::Set)
            .expect("register");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

struct Mta {
    dir: PathBuf,
}

impl Mta {
    fn start(dir: &Path, port: u16, cert: &Path, key: &Path) -> Mta {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/postfix.sh");
        let status = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(dir)
            .arg(port.to_string())
            .arg(cert)
            .arg(key)
            .status()
            .expect("bench/postfix.sh runs");
        assert!(
            status.success(),
            "Postfix did not start (root and `bench/setup` needed)"
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Postfix does not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Mta {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for Mta {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/postfix.sh");
        let _ = Command::new("bash")
            .arg(script)
            .arg("stop")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Process facts from /proc.
fn rss_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz.max(1.0)
}

/// Context switches (voluntary and not) of the process's live threads: how often kurir hands
/// the CPU over, a cost the CPU seconds include but do not explain.
fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .map(|t| {
            std::fs::read_to_string(t.path().join("status"))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// Busy CPU seconds of the whole machine (all processes, user + system + interrupts).
fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
    let busy: f64 = fields
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    busy / hz.max(1.0)
}

/// CPU seconds used by this process (the benchmark's own client, in the baseline).
fn own_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id())
}

struct Daemon {
    child: Child,
    state: PathBuf,
}

impl Daemon {
    fn start(work: &Path, envs: &[(String, String)]) -> Daemon {
        let log = std::fs::File::create(work.join("daemon.log")).expect("log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kurir"));
        cmd.current_dir(work)
            .args(["--log-format", "json", "run"])
            .env("KURIR_LOG__FILTER", "warn")
            .env("KURIR_OPS__LISTEN", "127.0.0.1:0")
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        if sched_batch() {
            // As systemd/kurir.service runs it (CPUSchedulingPolicy=batch): kurir's threads
            // do not preempt other work when they wake.
            use std::os::unix::process::CommandExt;
            // SAFETY: sched_setscheduler is async-signal-safe and touches only this child.
            unsafe {
                cmd.pre_exec(|| {
                    let param = libc::sched_param { sched_priority: 0 };
                    if libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().expect("kurir run");
        let state = work.join("state");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::os::unix::net::UnixStream::connect(state.join("kurir.sock")).is_err() {
            assert!(
                Instant::now() < deadline,
                "kurir did not start; see {}",
                work.join("daemon.log").display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Daemon { child, state }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(mut self) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
        let _ = &self.state;
    }
}

/// Writes `count` jobs under spool/tmp, ready to be dropped by renaming.
fn build_jobs(
    spool: &Path,
    prefix: &str,
    count: usize,
    codes: &[Kommunkod],
    beslut: &[u8],
    godman: &[u8],
) -> Vec<String> {
    let tmp = spool.join("tmp");
    std::fs::create_dir_all(&tmp).expect("tmp");
    std::fs::create_dir_all(spool.join("incoming")).expect("incoming");
    (0..count)
        .map(|i| {
            let name = format!("{prefix}-{i:06}");
            let dir = tmp.join(&name);
            std::fs::create_dir_all(&dir).expect("job dir");
            let to = codes[i % codes.len()];
            std::fs::write(
                dir.join("job.toml"),
                format!(
                    "to = \"{to}\"\ncase = \"00-000000\"\n[[document]]\nkind = \"anvisningsbeslut\"\nfile = \"b.pdf\"\n[[document]]\nkind = \"god-man\"\nfile = \"g.pdf\"\n"
                ),
            )
            .expect("job.toml");
            std::fs::write(dir.join("b.pdf"), beslut).expect("pdf");
            std::fs::write(dir.join("g.pdf"), godman).expect("pdf");
            name
        })
        .collect()
}

fn drop_job(spool: &Path, name: &str) -> Timestamp {
    std::fs::rename(
        spool.join("tmp").join(name),
        spool.join("incoming").join(name),
    )
    .expect("drop");
    Timestamp::now()
}

/// Waits until `count` receipts exist; returns them by source name.
fn wait_receipts(
    spool: &Path,
    count: usize,
    limit: Duration,
) -> HashMap<String, serde_json::Value> {
    let dir = spool.join("receipts");
    let start = Instant::now();
    loop {
        let n = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        if n >= count {
            break;
        }
        assert!(
            start.elapsed() < limit,
            "only {n} of {count} receipts after {limit:?}"
        );
        // Coarse on purpose: listing thousands of receipts costs CPU the measured programs
        // share, and the figures come from the receipts' own times, not from this loop's.
        std::thread::sleep(Duration::from_millis(250));
    }
    std::fs::read_dir(&dir)
        .expect("receipts")
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .map(|r| (r["source"].as_str().unwrap_or("").to_string(), r))
        .collect()
}

/// When the job reached its destination: the mail server's acceptance, or the print batch.
fn done_at(receipt: &serde_json::Value) -> Option<Timestamp> {
    if let Some(at) = receipt["recipients"][0]["email"]["accepted"]["at"].as_str() {
        return at.parse().ok();
    }
    receipt["finished_at"].as_str()?.parse().ok()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn latencies_ms(
    drops: &HashMap<String, Timestamp>,
    receipts: &HashMap<String, serde_json::Value>,
) -> Vec<f64> {
    let mut out: Vec<f64> = drops
        .iter()
        .filter_map(|(name, dropped)| {
            let done = done_at(receipts.get(name)?)?;
            Some(done.duration_since(*dropped).as_secs_f64() * 1000.0)
        })
        .collect();
    out.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    out
}

/// Time and CPU of one client phase (baseline or signing floor).
struct ClientRun {
    messages: usize,
    seconds: f64,
    /// CPU of this process: the client.
    client_cpu: f64,
    /// CPU of the whole machine, the client included.
    machine_cpu: f64,
}

impl ClientRun {
    fn per_second(&self) -> f64 {
        self.messages as f64 / self.seconds
    }
    fn client_ms(&self) -> f64 {
        1000.0 * self.client_cpu / self.messages as f64
    }
    /// What the receiving side costs per message: everything busy but the client.
    fn others_ms(&self) -> f64 {
        1000.0 * (self.machine_cpu - self.client_cpu) / self.messages as f64
    }
    fn cores(&self) -> f64 {
        self.machine_cpu / self.seconds
    }
}

/// Sends `messages` messages over 4 pooled connections, each message made by `make` just
/// before it is sent, and measures the phase.
fn send_over_four<F, Fut>(
    runtime: &tokio::runtime::Runtime,
    relay: &Arc<kurir::deliver::mail::smtp::Relay>,
    messages: usize,
    make: F,
) -> ClientRun
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Arc<Vec<u8>>> + Send,
{
    let start = Instant::now();
    let (machine_before, client_before) = (machine_busy_seconds(), own_cpu_seconds());
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..4 {
            let (relay, make) = (relay.clone(), make.clone());
            let n = messages / 4 + usize::from(t < messages % 4);
            tasks.spawn(async move {
                for _ in 0..n {
                    let message = make().await;
                    relay
                        .send("registrator@kommun.bench.example", &message, None)
                        .await
                        .expect("client send");
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    });
    ClientRun {
        messages,
        seconds: start.elapsed().as_secs_f64(),
        client_cpu: own_cpu_seconds() - client_before,
        machine_cpu: machine_busy_seconds() - machine_before,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench` probes benchmarks with --list
    }
    let jobs = env_usize("KURIR_BENCH_JOBS", 5000);
    let baseline_msgs = env_usize("KURIR_BENCH_BASELINE_MSGS", 3000);
    let steady_rate = env_usize("KURIR_BENCH_STEADY_RATE", 20);
    let steady_secs = env_usize("KURIR_BENCH_STEADY_SECS", 30);
    let post_jobs = env_usize("KURIR_BENCH_POST_JOBS", 2000);
    let municipalities = env_usize("KURIR_BENCH_MUNICIPALITIES", 20);

    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let work = target.join("work");
    // The last run's files are deleted after this run's measurements, not before them: on
    // ext4 without a journal (this machine) every file created in the same block group then
    // probes each inode deleted in the last minutes, which would bill kurir's receipts for
    // the benchmark's own cleanup. (Back-to-back runs still pay for the previous run's.)
    let previous = target.join("previous");
    let _ = std::fs::remove_dir_all(&previous);
    let _ = std::fs::rename(&work, &previous);
    std::fs::create_dir_all(&work).expect("work dir");
    let shm = PathBuf::from(format!("/dev/shm/kurir-bench-{}", std::process::id()));

    eprintln!("bench: making the test PKI and documents");
    let ca = pki::Ca::new(&work.join("pki"), "kurir bench CA");
    let server = ca.issue("mta", pki::Usage::Server);
    let agency_usage = pki::Usage::Email("anvisning@bench.example");
    let agency = if agency_key_ec() {
        ca.issue_ec("agency", agency_usage)
    } else {
        ca.issue("agency", agency_usage)
    };
    let muni = ca.issue(
        "kommun",
        pki::Usage::Email("registrator@kommun.bench.example"),
    );
    let beslut = common::synthetic_pdf("ANVISNINGSBESLUT", 40_000);
    let godman = common::synthetic_pdf("ANMÄLAN OM BEHOV AV GOD MAN", 40_000);

    let port = free_port();
    let _mta = Mta::start(&shm, port, &server.cert, &server.key);
    let mut settings = Settings::default();
    settings.smtp.host = "127.0.0.1".into();
    settings.smtp.port = port;
    settings.smtp.ca_file = ca.pem.clone();
    settings.smtp.from = "anvisning@bench.example".into();
    // The bench's municipality is a local MTA without DNS: its hop is not what is measured.
    settings.connection.required = false;
    settings.smime.sign_cert = agency.cert.clone();
    settings.smime.sign_key = agency.key.clone();

    // 2. Baseline: the same message, the same TLS, pooled connections, a minimal client.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let signer =
        kurir::deliver::mail::smime::Signer::load(&agency.cert, &agency.key).expect("signer");
    let cert = kurir::registry::RegisteredCert::accept(
        &std::fs::read_to_string(&muni.cert).expect("pem"),
        kurir::registry::CertPolicy {
            address: Some("registrator@kommun.bench.example"),
            ..Default::default()
        },
    )
    .expect("cert");
    let job_id: kurir::job::JobId = "20260101-000000-000000000000".parse().expect("id");
    let sender = settings.sender.clone();
    let message = kurir::deliver::mail::compose::decision(
        &common::decision_mail(&job_id, &beslut, &godman, &sender),
        &signer,
        Some(&cert),
    )
    .expect("message")
    .bytes;
    let message_kb = message.len() / 1024;
    eprintln!(
        "bench: baseline, then the signing floor, {baseline_msgs} messages of {message_kb} KB each"
    );
    let relay = Arc::new(kurir::deliver::mail::smtp::Relay::new(&settings.smtp).expect("relay"));
    let message = Arc::new(message);
    let baseline = send_over_four(&runtime, &relay, baseline_msgs, move || {
        let message = message.clone();
        async move { message }
    });
    let baseline_rate = baseline.per_second();

    // 2b. The floor of any S/MIME sender here: the same minimal client, but every message is
    // signed and encrypted afresh (on the blocking pool, as kurir does) before it is sent. No
    // files read, no PDF checked, nothing recorded: what kurir's burst can at best approach on
    // these two cores while it signs with the agency's key.
    let (signer, cert) = (Arc::new(signer), Arc::new(cert));
    let documents = Arc::new((beslut.clone(), godman.clone()));
    let floor = send_over_four(&runtime, &relay, baseline_msgs, move || {
        let (signer, cert, documents) = (signer.clone(), cert.clone(), documents.clone());
        let (sender, job_id) = (sender.clone(), job_id.clone());
        async move {
            let composed = tokio::task::spawn_blocking(move || {
                let mail = common::decision_mail(&job_id, &documents.0, &documents.1, &sender);
                kurir::deliver::mail::compose::decision(&mail, &signer, Some(&cert))
            })
            .await
            .expect("compose task")
            .expect("compose");
            Arc::new(composed.bytes)
        }
    });
    let floor_rate = floor.per_second();
    drop(relay);

    // 3. Burst.
    let seed = Seed::builtin().expect("seed");
    let codes: Vec<Kommunkod> = seed.iter().take(municipalities).map(|m| m.code).collect();
    let burst_dir = work.join("burst");
    std::fs::create_dir_all(burst_dir.join("state")).expect("state");
    {
        let store = Store::open(&burst_dir.join("state")).expect("store");
        let pems: Vec<String> = codes
            .iter()
            .map(|code| {
                let address: &'static str =
                    Box::leak(format!("registrator@k{code}.bench.example").into_boxed_str());
                let issued = ca.issue(&format!("kommun-{code}"), pki::Usage::Email(address));
                std::fs::read_to_string(&issued.cert).expect("pem")
            })
            .collect();
        prove_municipalities(&store, &codes, Some(&pems));
        store.flush().expect("flush");
    }
    let kurir_env = |dir: &Path, relay: bool| -> Vec<(String, String)> {
        let mut v = vec![
            (
                "KURIR_SPOOL__DIR".into(),
                dir.join("spool").to_string_lossy().to_string(),
            ),
            (
                "KURIR_STORE__DIR".into(),
                dir.join("state").to_string_lossy().to_string(),
            ),
        ];
        if relay {
            v.extend([
                ("KURIR_SMTP__HOST".into(), "127.0.0.1".into()),
                ("KURIR_SMTP__PORT".into(), port.to_string()),
                (
                    "KURIR_SMTP__CA_FILE".into(),
                    ca.pem.to_string_lossy().to_string(),
                ),
                ("KURIR_SMTP__FROM".into(), "anvisning@bench.example".into()),
                (
                    "KURIR_SMIME__SIGN_CERT".into(),
                    agency.cert.to_string_lossy().to_string(),
                ),
                (
                    "KURIR_SMIME__SIGN_KEY".into(),
                    agency.key.to_string_lossy().to_string(),
                ),
            ]);
        }
        v
    };
    eprintln!("bench: writing {jobs} burst jobs");
    let spool = burst_dir.join("spool");
    let names = build_jobs(&spool, "burst", jobs, &codes, &beslut, &godman);
    let daemon = Daemon::start(&burst_dir, &kurir_env(&burst_dir, true));
    let pid = daemon.pid();
    std::thread::sleep(Duration::from_millis(500));
    let idle_rss_mb = rss_kb(pid, "VmRSS:") as f64 / 1024.0;
    let cpu_before = cpu_seconds(pid);
    let switches_before = context_switches(pid);
    let machine_before = machine_busy_seconds();
    eprintln!("bench: dropping the burst");
    let first_drop = Timestamp::now();
    let mut drops = HashMap::new();
    for name in &names {
        drops.insert(name.clone(), drop_job(&spool, name));
    }
    let receipts = wait_receipts(&spool, jobs, Duration::from_secs(3600));
    let cpu_burst = cpu_seconds(pid) - cpu_before;
    let switches_per_job =
        context_switches(pid).saturating_sub(switches_before) as f64 / jobs as f64;
    let machine_burst = machine_busy_seconds() - machine_before;
    let peak_rss_mb = rss_kb(pid, "VmHWM:") as f64 / 1024.0;
    let delivered = receipts
        .values()
        .filter(|r| r["state"] == "delivered")
        .count();
    let last_done = receipts
        .values()
        .filter_map(done_at)
        .max()
        .unwrap_or(first_drop);
    let burst_secs = last_done.duration_since(first_drop).as_secs_f64();
    let burst_rate = jobs as f64 / burst_secs;
    let burst_lat = latencies_ms(&drops, &receipts);
    let burst_cores = machine_burst / burst_secs;
    let burst_others_ms = 1000.0 * (machine_burst - cpu_burst) / jobs as f64;

    // 3b. Quiet after the burst: a daemon with nothing to do should cost almost nothing.
    const IDLE_SECS: u64 = 10;
    eprintln!("bench: {IDLE_SECS} s of quiet after the burst");
    let idle_cpu_before = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(IDLE_SECS));
    let idle_core_share = (cpu_seconds(pid) - idle_cpu_before) / IDLE_SECS as f64;

    // 4. Steady load on the same daemon.
    let steady_jobs = steady_rate * steady_secs;
    eprintln!("bench: steady load, {steady_rate} jobs/s for {steady_secs} s");
    let steady_names = build_jobs(&spool, "steady", steady_jobs, &codes, &beslut, &godman);
    let mut steady_drops = HashMap::new();
    let interval = Duration::from_secs_f64(1.0 / steady_rate as f64);
    let start = Instant::now();
    for (i, name) in steady_names.iter().enumerate() {
        let due = start + interval * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        steady_drops.insert(name.clone(), drop_job(&spool, name));
    }
    let all = wait_receipts(&spool, jobs + steady_jobs, Duration::from_secs(600));
    let steady_lat = latencies_ms(&steady_drops, &all);
    daemon.stop();

    // 5. The postal path alone.
    eprintln!("bench: post path, {post_jobs} jobs");
    let post_dir = work.join("post");
    let post_spool = post_dir.join("spool");
    let post_names = build_jobs(&post_spool, "post", post_jobs, &codes, &beslut, &godman);
    let daemon = Daemon::start(&post_dir, &kurir_env(&post_dir, false));
    let post_start = Timestamp::now();
    for name in &post_names {
        drop_job(&post_spool, name);
    }
    let post_receipts = wait_receipts(&post_spool, post_jobs, Duration::from_secs(3600));
    let post_last = post_receipts
        .values()
        .filter_map(done_at)
        .max()
        .unwrap_or(post_start);
    let post_rate = post_jobs as f64 / post_last.duration_since(post_start).as_secs_f64();
    daemon.stop();

    // 6. Start-up with a long history: recovery must not scan it.
    let history = env_usize("KURIR_BENCH_HISTORY", 1_000_000);
    eprintln!("bench: start-up with {history} historical jobs in the store");
    let hist_dir = work.join("history");
    std::fs::create_dir_all(hist_dir.join("state")).expect("state");
    {
        let store = Store::open(&hist_dir.join("state")).expect("store");
        prove_municipalities(&store, &codes, None);
        let now = Timestamp::now();
        let mut chunk = Vec::with_capacity(1000);
        for i in 0..history {
            let mut record = kurir::store::state::JobRecord::received(
                kurir::job::JobId::generate(),
                &format!("history-{i}"),
                now,
            );
            record.state = kurir::store::state::JobState::Delivered;
            record.to = Some(codes[i % codes.len()]);
            record.attempts = 1;
            record.receipt_written = true;
            chunk.push((
                record,
                vec![(
                    kurir::store::state::JobState::Delivered,
                    kurir::store::event::EventKind::Note {
                        text: "historical".into(),
                    },
                )],
            ));
            if chunk.len() == 1000 || i + 1 == history {
                store.enqueue_many(&chunk, false).expect("history");
                chunk.clear();
            }
            if i % 50_000 == 49_999 {
                store.flush().expect("flush");
            }
        }
        store.flush().expect("flush");
    }
    // The writer above must be gone (its sled threads finished) before the daemon starts:
    // the measurement is the daemon's start-up, not the bench's own clean-up.
    let settle = Instant::now();
    loop {
        match Store::open(&hist_dir.join("state")) {
            Ok(store) => {
                drop(store);
                break;
            }
            Err(_) if settle.elapsed() < Duration::from_secs(60) => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("history store stays locked: {e}"),
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    let hist_spool = hist_dir.join("spool");
    let first = build_jobs(&hist_spool, "first", 1, &codes, &beslut, &godman);
    let started = Timestamp::now();
    let daemon = Daemon::start(&hist_dir, &kurir_env(&hist_dir, true));
    let socket_after = Timestamp::now().duration_since(started).as_secs_f64() * 1000.0;
    drop_job(&hist_spool, &first[0]);
    let first_receipt = wait_receipts(&hist_spool, 1, Duration::from_secs(120));
    let first_delivery_ms = first_receipt
        .values()
        .filter_map(done_at)
        .next()
        .map(|t| t.duration_since(started).as_secs_f64() * 1000.0)
        .unwrap_or(f64::NAN);
    daemon.stop();

    let sched_name = if sched_batch() {
        "SCHED_BATCH"
    } else {
        "SCHED_OTHER"
    };
    let agency_key = if agency_key_ec() {
        "ECDSA P-256"
    } else {
        "RSA-2048"
    };
    let results = json!({
        "agency_key": agency_key,
        "baseline": {
            "msgs_per_s": baseline_rate, "messages": baseline_msgs, "message_kb": message_kb,
            "mta_cpu_ms_per_msg": baseline.others_ms(), "client_cpu_ms_per_msg": baseline.client_ms(),
            "machine_cores_busy": baseline.cores(),
        },
        "signing_floor": {
            "msgs_per_s": floor_rate, "messages": floor.messages,
            "ratio_to_baseline": floor_rate / baseline_rate,
            "client_cpu_ms_per_msg": floor.client_ms(), "mta_cpu_ms_per_msg": floor.others_ms(),
            "machine_cores_busy": floor.cores(),
        },
        "burst": {
            "jobs": jobs, "delivered_by_email": delivered, "seconds": burst_secs, "jobs_per_s": burst_rate,
            "ratio_to_baseline": burst_rate / baseline_rate,
            "ratio_to_signing_floor": burst_rate / floor_rate,
            "p50_ms": percentile(&burst_lat, 0.5), "p99_ms": percentile(&burst_lat, 0.99),
            "max_ms": burst_lat.last().copied().unwrap_or(0.0),
            "cpu_s_per_job": cpu_burst / jobs as f64,
            "others_cpu_ms_per_job": burst_others_ms, "machine_cores_busy": burst_cores,
            "context_switches_per_job": switches_per_job,
            "kurir_scheduling": sched_name,
        },
        "steady": {
            "offered_jobs_per_s": steady_rate, "jobs": steady_jobs,
            "p50_ms": percentile(&steady_lat, 0.5), "p99_ms": percentile(&steady_lat, 0.99),
            "max_ms": steady_lat.last().copied().unwrap_or(0.0),
        },
        "post": { "jobs": post_jobs, "letters_per_s": post_rate },
        "startup": {
            "historical_jobs": history, "ready_ms": socket_after,
            "first_delivery_ms_after_start": first_delivery_ms,
        },
        "idle": {
            "seconds": IDLE_SECS, "cpu_share_of_a_core": idle_core_share,
            "target_share": 0.005, "met": idle_core_share < 0.005,
        },
        "rss_peak_mb": peak_rss_mb,
        "rss_idle_mb": idle_rss_mb,
        "municipalities": municipalities,
    });
    std::fs::create_dir_all(&target).expect("target/bench");
    std::fs::write(
        target.join("pipeline.json"),
        serde_json::to_vec_pretty(&results).expect("json"),
    )
    .expect("write");
    println!(
        "kurir pipeline benchmark (2 cores; Postfix on tmpfs; S/MIME sign+encrypt on, agency key {agency_key}; kurir {sched_name})"
    );
    println!(
        "  baseline MTA accept rate     {:>9.1} msgs/s  ({} KB messages)",
        baseline_rate, message_kb
    );
    println!(
        "    CPU per message: MTA {:.2} ms, client {:.2} ms; machine busy {:.2} of 2 cores",
        baseline.others_ms(),
        baseline.client_ms(),
        baseline.cores()
    );
    println!(
        "  floor: client signs+encrypts {:>9.1} msgs/s  = {:.0} % of baseline",
        floor_rate,
        100.0 * floor_rate / baseline_rate
    );
    println!(
        "    CPU per message: MTA {:.2} ms, client {:.2} ms; machine busy {:.2} of 2 cores",
        floor.others_ms(),
        floor.client_ms(),
        floor.cores()
    );
    println!(
        "  burst ({jobs} jobs)           {:>9.1} jobs/s  = {:.0} % of baseline, {:.0} % of the floor",
        burst_rate,
        100.0 * burst_rate / baseline_rate,
        100.0 * burst_rate / floor_rate
    );
    println!(
        "    drop→accepted p50/p99/max   {:>7.0} / {:.0} / {:.0} ms",
        percentile(&burst_lat, 0.5),
        percentile(&burst_lat, 0.99),
        burst_lat.last().copied().unwrap_or(0.0)
    );
    println!(
        "    CPU per job: kurir {:.2} ms, MTA and the rest {:.2} ms; machine busy {:.2} of 2 cores",
        1000.0 * cpu_burst / jobs as f64,
        burst_others_ms,
        burst_cores
    );
    println!("    kurir's context switches per job {switches_per_job:.0}");
    println!(
        "  steady {steady_rate} jobs/s p50/p99/max  {:>7.1} / {:.1} / {:.1} ms",
        percentile(&steady_lat, 0.5),
        percentile(&steady_lat, 0.99),
        steady_lat.last().copied().unwrap_or(0.0)
    );
    println!(
        "  post path                    {:>9.1} letters/s",
        post_rate
    );
    println!(
        "  idle CPU, {IDLE_SECS} s after the burst {:>6.2} % of a core (target < 0.5 %)",
        100.0 * idle_core_share
    );
    println!(
        "  RSS idle / peak              {:>7.1} / {:.1} MB",
        idle_rss_mb, peak_rss_mb
    );
    println!(
        "  start-up, {history} old jobs: ready {:.0} ms, first delivery {:.0} ms after start",
        socket_after, first_delivery_ms
    );
    println!("  written to {}", target.join("pipeline.json").display());
    let _ = std::fs::remove_dir_all(&previous);
}
