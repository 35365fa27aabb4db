//! Operations' alerting rules and dashboard proven against Prometheus itself (Debian's
//! `prometheus` and `promtool`, on loopback): the rules pass `promtool check` and their unit
//! tests (every alert firing and not firing); then a real Prometheus scrapes a running kurir
//! while jobs flow, loads the rules, and answers every rule expression and every dashboard
//! query — and the queries that describe flowing jobs return data.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::postfix::free_port;
use common::Env;
use serde_json::Value;

fn ops(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ops").join(file)
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool is installed (tests/setup: Debian prometheus)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn the_alerting_rules_pass_promtool_and_their_unit_tests() {
    let rules = ops("prometheus/kurir.rules.yml");
    let checked = promtool(&["check", "rules", &rules.to_string_lossy()]);
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", alert_names().len())),
        "{checked}"
    );
    let tested = promtool(&[
        "test",
        "rules",
        &ops("prometheus/kurir.rules.test.yml").to_string_lossy(),
    ]);
    assert!(tested.contains("SUCCESS"), "{tested}");
    // Every alert has a case that fires and one that stays quiet.
    let tests = std::fs::read_to_string(ops("prometheus/kurir.rules.test.yml")).expect("tests");
    for alert in alert_names() {
        assert!(
            tests.contains(&format!("# {alert}: fires")),
            "{alert} has no firing case"
        );
        assert!(
            tests.contains(&format!("# {alert}: stays quiet")),
            "{alert} has no quiet case"
        );
    }
}

/// A GitHub-style anchor of a Markdown heading: lower case, spaces to dashes, other
/// punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_rule_names_its_team_and_a_runbook_section_that_exists_with_installed_paths() {
    let runbook =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/runbook.md"))
            .expect("docs/runbook.md");
    let sections: Vec<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(anchor)
        .collect();
    let rules = std::fs::read_to_string(ops("prometheus/kurir.rules.yml")).expect("rules");
    // The rules, one block per alert.
    let blocks: Vec<&str> = rules.split("- alert: ").skip(1).collect();
    assert_eq!(blocks.len(), alert_names().len());
    for block in blocks {
        let name = block.lines().next().unwrap_or("").trim();
        let url = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("runbook_url: "))
            .unwrap_or_else(|| panic!("{name} has no runbook_url"))
            .trim_matches('"');
        let (file, section) = url.split_once('#').expect("a section");
        assert_eq!(file, "file:///usr/share/doc/kurir/runbook.md", "{name}");
        assert!(
            sections.iter().any(|s| s == section),
            "{name}: the runbook has no section #{section}"
        );
        assert_eq!(
            section,
            anchor(name),
            "{name} links another alert's section"
        );
        let team = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("team: "))
            .unwrap_or_else(|| panic!("{name} has no team"));
        assert!(["dispatch", "ops"].contains(&team), "{name}: team {team}");
        // The team kurir's own alert of this rule goes to (e-mails, `kurir alerts`); rules of
        // no alert kind are operations'.
        let expected = kurir::store::state::AlertKind::ALL
            .into_iter()
            .find(|k| k.rule() == name)
            .map_or("ops", |k| k.team().as_str());
        assert_eq!(team, expected, "{name}");
        // Operators read these texts on the installed machine: its paths, not the source tree's.
        for checkout_path in [" spool/", "`spool/", " certs/", "`certs/"] {
            assert!(
                !block.contains(checkout_path),
                "{name} names {checkout_path}"
            );
        }
    }
    // Every section a rule does not link is still reached from one (no orphaned advice).
    for kind in kurir::store::state::AlertKind::ALL {
        assert!(
            alert_names().iter().any(|a| a == kind.rule()),
            "alert kind {kind:?} names the rule {}, which does not exist",
            kind.rule()
        );
    }
    for section in &sections {
        assert!(
            alert_names().iter().any(|a| anchor(a) == *section),
            "runbook section #{section} belongs to no rule"
        );
    }
}

#[test]
fn the_alertmanager_example_routes_each_team_to_its_receiver() {
    let config = ops("alertmanager/kurir.yml");
    let config = config.to_string_lossy();
    let amtool = |args: &[&str]| {
        let out = Command::new("amtool")
            .args(args)
            .output()
            .expect("amtool is installed (tests/setup: Debian prometheus-alertmanager)");
        assert!(
            out.status.success(),
            "amtool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    amtool(&["check-config", &config]);
    for (labels, receiver) in [
        (["team=dispatch", "severity=page"], "dispatch"),
        (["team=dispatch", "severity=ticket"], "dispatch"),
        (["team=ops", "severity=page"], "ops-pager"),
        (["team=ops", "severity=ticket"], "ops-queue"),
    ] {
        let mut args = vec!["config", "routes", "test", "--config.file"];
        args.push(&config);
        args.extend(labels);
        assert_eq!(amtool(&args), receiver, "{labels:?}");
    }
}

fn alert_names() -> Vec<String> {
    std::fs::read_to_string(ops("prometheus/kurir.rules.yml"))
        .expect("rules")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(str::to_string)
        .collect()
}

fn rule_expressions() -> Vec<String> {
    std::fs::read_to_string(ops("prometheus/kurir.rules.yml"))
        .expect("rules")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr: "))
        .map(str::to_string)
        .collect()
}

fn dashboard_queries() -> Vec<String> {
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(ops("grafana/kurir.json")).expect("json"))
            .expect("the dashboard is JSON");
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("expr").to_string())
        .collect()
}

/// Percent-encodes a query for a URL.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn get(addr: &str, path: &str) -> Option<Value> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(
        stream,
        // HTTP/1.0: the whole body at once, never chunked.
        "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

fn query(addr: &str, expr: &str) -> Value {
    get(addr, &format!("/api/v1/query?query={}", encode(expr)))
        .unwrap_or_else(|| panic!("Prometheus did not answer {expr}"))
}

struct Prometheus(Child);
impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_real_prometheus_scrapes_kurir_and_answers_every_rule_and_dashboard_query() {
    let mut env = Env::new();
    env.set_env("KURIR_SPOOL__RESCAN_INTERVAL", "1s");
    env.start();
    let dir = env.path().join("prometheus");
    std::fs::create_dir_all(&dir).expect("dir");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: kurir\n    static_configs:\n      - targets: ['{}']\n",
            ops("prometheus/kurir.rules.yml").display(),
            env.ops_addr()
        ),
    )
    .expect("config");
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("prometheus is installed (tests/setup: Debian prometheus)");
    let _prometheus = Prometheus(child);
    let prom_log = || std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    common::wait_for("Prometheus ready", Duration::from_secs(60), || {
        get(&addr, "/api/v1/status/buildinfo").is_some()
    });

    // Jobs flow while Prometheus scrapes.
    for _ in 0..6 {
        let id = env.submit("2480", None);
        env.wait_receipt(&id);
        std::thread::sleep(Duration::from_millis(700));
    }
    let mut last = Value::Null;
    let flowing = [
        "kurir_jobs_delivered_total",
        "kurir_jobs_received_total",
        "kurir_delivery_latency_seconds_bucket",
        "kurir_queue_depth",
        "kurir_oldest_undelivered_age_seconds",
        "kurir_healthy",
    ];
    for expr in dashboard_queries() {
        let must_have_data = flowing.iter().any(|m| expr.contains(m));
        let ok = (0..60).any(|_| {
            last = query(&addr, &expr);
            let answered = last["status"] == "success";
            let has_data = last["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty());
            if answered && (has_data || !must_have_data) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(500));
            false
        });
        assert!(
            ok,
            "dashboard query {expr} (data expected: {must_have_data}): {last}\n{}",
            prom_log()
        );
    }
    for expr in rule_expressions() {
        let answer = query(&addr, &expr);
        assert_eq!(answer["status"], "success", "rule {expr}: {answer}");
    }
    let up = query(&addr, "up{job=\"kurir\"}");
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
    let rules = get(&addr, "/api/v1/rules").expect("rules");
    let loaded: Vec<Value> = rules["data"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(loaded.len(), alert_names().len(), "{rules}");
    for rule in loaded {
        assert_eq!(rule["health"], "ok", "{rule}");
    }
    // A healthy daemon with flowing jobs fires nothing.
    let firing = get(&addr, "/api/v1/alerts").expect("alerts");
    let firing: Vec<&Value> = firing["data"]["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["state"] == "firing")
        .collect();
    assert!(
        firing.is_empty(),
        "alerts fire on a healthy daemon: {firing:?}"
    );
    env.stop();
}
