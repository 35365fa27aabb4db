//! Fail-over with the tools operations already run: the OCF resource agent
//! (ops/pacemaker/kurir) passes `ocf-tester` (resource-agents) with the real binary; a second
//! kurir on the same store, started through the agent, is refused with a clear error; and in
//! a one-node Pacemaker cluster started here (`corosync -f`, `pacemakerd`) kurir runs as a
//! resource, is killed with -9 in the middle of a burst, is restarted by Pacemaker, and every
//! job reaches a final state with exactly one letter (0 lost, none twice).
//!
//! Needs root and Debian's pacemaker, corosync and resource-agents (tests/setup). The cluster
//! is this machine's only one: its CIB is cleared before and after.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::postfix::free_port;
use common::Env;

fn agent() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/pacemaker/kurir")
}

/// A settings file with the environment's spool and state and a fixed /healthz port.
fn settings(env: &Env) -> (PathBuf, String) {
    let port = free_port();
    let file = env.path().join("kurir.toml");
    std::fs::write(
        &file,
        format!(
            "[spool]\ndir = \"spool\"\nrescan_interval = \"200ms\"\n[store]\ndir = \"state\"\n\
             [ops]\nlisten = \"127.0.0.1:{port}\"\n[print]\nbatch_max_letters = 7\n"
        ),
    )
    .expect("settings");
    (file, format!("http://127.0.0.1:{port}/healthz"))
}

/// Runs the agent's `action` with these parameters; returns its exit code and output.
fn agent_action(action: &str, params: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(agent());
    cmd.arg(action)
        .env("OCF_ROOT", "/usr/lib/ocf")
        .env("OCF_RESOURCE_INSTANCE", "kurir-test");
    for (k, v) in params {
        cmd.env(format!("OCF_RESKEY_{k}"), v);
    }
    let out = cmd.output().expect("the agent runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_agent_passes_ocf_tester_and_a_second_kurir_on_the_same_store_is_refused() {
    let env = Env::new();
    let (config, healthz) = settings(&env);
    let dir = env.path().to_string_lossy().to_string();
    let params = |pid: &str| {
        vec![
            ("binary", env!("CARGO_BIN_EXE_kurir").to_string()),
            ("config", config.to_string_lossy().to_string()),
            ("user", "root".to_string()),
            ("healthz", healthz.clone()),
            ("logfile", format!("{dir}/agent.log")),
            ("pidfile", format!("{dir}/{pid}")),
        ]
    };
    let mut tester = Command::new("ocf-tester");
    tester.args(["-n", "kurir-test"]);
    for (k, v) in params("tester.pid") {
        tester.arg("-o").arg(format!("{k}={v}"));
    }
    let out = tester
        .arg(agent())
        .output()
        .expect("ocf-tester (resource-agents, tests/setup)");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && said.contains("passed all tests"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let first: Vec<(&str, String)> = params("first.pid");
    let first: Vec<(&str, &str)> = first.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(agent_action("start", &first).0, 0);
    assert_eq!(agent_action("monitor", &first).0, 0);
    // A second resource with the same settings finds the health check answered.
    let same: Vec<(&str, String)> = params("same.pid");
    let same: Vec<(&str, &str)> = same.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, said) = agent_action("start", &same);
    assert_eq!(code, 1, "a second kurir started: {said}");
    assert!(said.contains("answers"), "{said}");
    // With its own health address, the same store: kurir itself refuses to run twice.
    let other_port = free_port();
    let other_config = env.path().join("other.toml");
    let text = std::fs::read_to_string(&config).expect("settings");
    let port = healthz
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/healthz");
    std::fs::write(&other_config, text.replace(port, &other_port.to_string())).expect("write");
    let mut second: Vec<(&str, String)> = params("second.pid");
    second[1].1 = other_config.to_string_lossy().to_string();
    second[3].1 = format!("http://127.0.0.1:{other_port}/healthz");
    let second: Vec<(&str, &str)> = second.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, said) = agent_action("start", &second);
    assert_eq!(code, 1, "a second kurir on the same store started: {said}");
    assert!(
        said.contains("already uses the store"),
        "the refusal does not say why: {said}"
    );
    assert_eq!(agent_action("monitor", &second).0, 7, "OCF_NOT_RUNNING");
    assert_eq!(
        agent_action("monitor", &first).0,
        0,
        "the first kept running"
    );
    assert_eq!(agent_action("stop", &first).0, 0);
    assert_eq!(agent_action("monitor", &first).0, 7);
}

/// corosync and pacemakerd for one node, stopped (and their state cleared) when dropped.
struct Cluster {
    corosync: Child,
    pacemakerd: Child,
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let _ = std::fs::remove_dir_all("/var/lib/pacemaker/cib");
        std::fs::create_dir_all(dir).expect("cluster dir");
        let conf = dir.join("corosync.conf");
        std::fs::write(
            &conf,
            format!(
                "totem {{\n version: 2\n cluster_name: kurirtest\n crypto_cipher: none\n \
                 crypto_hash: none\n transport: knet\n}}\n\
                 nodelist {{\n node {{\n  ring0_addr: 127.0.0.1\n  name: node1\n  nodeid: 1\n }}\n}}\n\
                 quorum {{\n provider: corosync_votequorum\n}}\n\
                 logging {{\n to_logfile: yes\n logfile: {}\n to_syslog: no\n to_stderr: no\n}}\n",
                dir.join("corosync.log").display()
            ),
        )
        .expect("corosync.conf");
        let corosync = Command::new("corosync")
            .arg("-f")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("corosync (tests/setup)");
        std::thread::sleep(Duration::from_secs(2));
        let log = std::fs::File::create(dir.join("pacemaker.log")).expect("log");
        let pacemakerd = Command::new("pacemakerd")
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("pacemakerd (tests/setup)");
        let cluster = Cluster {
            corosync,
            pacemakerd,
        };
        common::wait_for("a DC elected", Duration::from_secs(90), || {
            cluster.status().contains("Current DC: node1")
        });
        for (name, value) in [("stonith-enabled", "false"), ("no-quorum-policy", "ignore")] {
            run(
                "crm_attribute",
                &["--type", "crm_config", "--name", name, "--update", value],
            );
        }
        cluster
    }

    fn status(&self) -> String {
        Command::new("crm_mon")
            .arg("-1")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("crm_resource")
            .args([
                "--resource",
                "kurir",
                "--meta",
                "--set-parameter",
                "target-role",
            ])
            .args(["--parameter-value", "Stopped"])
            .output();
        std::thread::sleep(Duration::from_secs(3));
        // SAFETY: a signal to our own child.
        unsafe {
            libc::kill(self.pacemakerd.id() as i32, libc::SIGTERM);
        }
        let _ = self.pacemakerd.wait();
        // In case it went to the background after all.
        let _ = Command::new("pkill")
            .args(["-TERM", "-x", "pacemakerd"])
            .output();
        for _ in 0..30 {
            let running = Command::new("pgrep")
                .args(["-x", "pacemakerd"])
                .output()
                .is_ok_and(|o| o.status.success());
            if !running {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        let _ = Command::new("corosync-cfgtool").arg("-H").output();
        let _ = self.corosync.wait();
        let _ = std::fs::remove_dir_all("/var/lib/pacemaker/cib");
        let _ = std::fs::remove_dir_all("/usr/lib/ocf/resource.d/kurir");
    }
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().expect(program);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pacemaker_restarts_kurir_killed_in_a_burst_and_no_job_is_lost_or_printed_twice() {
    let env = Env::new();
    let (config, healthz) = settings(&env);
    let dir = env.path().to_path_buf();
    // The agent where the package installs it.
    std::fs::create_dir_all("/usr/lib/ocf/resource.d/kurir").expect("ocf dir");
    std::fs::copy(agent(), "/usr/lib/ocf/resource.d/kurir/kurir").expect("agent");
    let cluster = Cluster::start(&dir.join("cluster"));
    let pidfile = dir.join("kurir.pid");
    let nv = |id: &str, name: &str, value: &str| {
        format!("<nvpair id=\"{id}\" name=\"{name}\" value=\"{value}\"/>")
    };
    let primitive = format!(
        "<primitive id=\"kurir\" class=\"ocf\" provider=\"kurir\" type=\"kurir\">\
         <instance_attributes id=\"kurir-params\">{}{}{}{}{}{}</instance_attributes>\
         <operations><op id=\"kurir-monitor\" name=\"monitor\" interval=\"2s\" timeout=\"20s\"/>\
         <op id=\"kurir-start\" name=\"start\" interval=\"0\" timeout=\"60s\"/>\
         <op id=\"kurir-stop\" name=\"stop\" interval=\"0\" timeout=\"60s\"/></operations>\
         </primitive>",
        nv("p1", "binary", env!("CARGO_BIN_EXE_kurir")),
        nv("p2", "config", &config.to_string_lossy()),
        nv("p3", "user", "root"),
        nv("p4", "healthz", &healthz),
        nv("p5", "logfile", &dir.join("kurir.log").to_string_lossy()),
        nv("p6", "pidfile", &pidfile.to_string_lossy()),
    );
    run(
        "cibadmin",
        &["--create", "--scope", "resources", "--xml-text", &primitive],
    );
    let pid = || {
        std::fs::read_to_string(&pidfile)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    common::wait_for(
        "kurir started by Pacemaker",
        Duration::from_secs(60),
        || cluster.status().contains("Started node1") && !pid().is_empty(),
    );

    // A burst of jobs, and kurir killed with -9 in the middle of it.
    let beslut = common::pdf::beslut("PACEMAKER");
    let manifest = |i: usize| {
        format!(
            "to = \"2480\"\ncase = \"{}\"\n\n[[document]]\nkind = \"anvisningsbeslut\"\nfile = \"b.pdf\"\n",
            common::CASE
        ) + &" ".repeat(i % 2)
    };
    const JOBS: usize = 40;
    let killed = pid();
    for i in 0..JOBS {
        env.drop_job(
            &format!("burst-{i:02}"),
            &manifest(i),
            &[("b.pdf", &beslut)],
        );
        if i == JOBS / 2 {
            run("kill", &["-9", &killed]);
        }
    }
    common::wait_for(
        "a new kurir from Pacemaker",
        Duration::from_secs(90),
        || {
            let now = pid();
            !now.is_empty() && now != killed && cluster.status().contains("Started node1")
        },
    );
    common::wait_for("every job final", Duration::from_secs(120), || {
        env.receipts().len() == JOBS
    });
    let receipts = env.receipts();
    assert!(
        receipts.iter().all(|r| r["state"] == "print-queued"),
        "{receipts:#?}"
    );
    let letters = env.letters();
    assert_eq!(letters, JOBS, "a letter lost or made twice");
    // The monitor saw the failure: `not running`, or, when it looked while the killed
    // process was not yet reaped, `error` (its health check failed).
    let status = cluster.status();
    assert!(
        status.contains("monitor on node1 returned 'not running'")
            || status.contains("monitor on node1 returned 'error'"),
        "Pacemaker did not see the kill: {status}"
    );
    drop(cluster);
    assert!(pid().is_empty() || !Path::new(&format!("/proc/{}", pid())).exists());
}
