//! Headless Chromium for the portal's pages (Debian `chromium`, `chromium-driver`): a test HOME
//! with an NSS database holding the test CA and one person's card, and the managed policy
//! `AutoSelectCertificateForUrls` that hands that card to the test's URL; the scripts in
//! tests/*.py drive it over WebDriver (selenium) and run axe-core. Needs root (the policy is
//! in /etc/chromium).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use super::pki::Identity;

fn run(program: &str, args: &[&str], home: &Path) {
    let out = Command::new(program)
        .args(args)
        .env("HOME", home)
        .output()
        .unwrap_or_else(|e| panic!("{program} (tests/setup installs it): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A browser profile signed in as one person; the policy is removed when dropped.
pub struct Browser {
    /// The HOME the scripts run with.
    pub home: PathBuf,
    policy: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.policy);
    }
}

impl Browser {
    /// A profile under `dir` that trusts `ca_pem` and signs in at `url` as `person`, whose
    /// card the CA named `issuer_cn` issued.
    pub fn signed_in(
        dir: &Path,
        ca_pem: &Path,
        person: &Identity,
        issuer_cn: &str,
        url: &str,
    ) -> Browser {
        let home = dir.join("home");
        let nssdb = home.join(".pki/nssdb");
        std::fs::create_dir_all(&nssdb).expect("nssdb");
        let db = format!("sql:{}", nssdb.display());
        run("certutil", &["-d", &db, "-N", "--empty-password"], &home);
        run(
            "certutil",
            &[
                "-d",
                &db,
                "-A",
                "-t",
                "C,,",
                "-n",
                "kurir-test-ca",
                "-i",
                &ca_pem.to_string_lossy(),
            ],
            &home,
        );
        let p12 = dir.join("person.p12");
        run(
            "openssl",
            &[
                "pkcs12",
                "-export",
                "-in",
                &person.cert.to_string_lossy(),
                "-inkey",
                &person.key.to_string_lossy(),
                "-out",
                &p12.to_string_lossy(),
                "-passout",
                "pass:test",
                "-name",
                "person",
            ],
            &home,
        );
        run(
            "pk12util",
            &["-d", &db, "-i", &p12.to_string_lossy(), "-W", "test"],
            &home,
        );
        let port = url.rsplit(':').next().unwrap_or("0");
        let policy_dir = Path::new("/etc/chromium/policies/managed");
        std::fs::create_dir_all(policy_dir).expect("policy dir (root)");
        let policy = policy_dir.join(format!("kurir-test-{port}.json"));
        let rule =
            serde_json::json!({ "pattern": url, "filter": { "ISSUER": { "CN": issuer_cn } } });
        std::fs::write(
            &policy,
            serde_json::json!({ "AutoSelectCertificateForUrls": [rule.to_string()] }).to_string(),
        )
        .expect("policy");
        Browser { home, policy }
    }

    /// Runs `script` (under tests/) with `args`, the axe-core source and a screenshot folder
    /// appended; returns the JSON object it prints last.
    pub fn run(
        &self,
        script: &str,
        args: &[&str],
        screenshots: &Path,
        context: &dyn Fn() -> String,
    ) -> serde_json::Value {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let axe = root.join("tests/browser/node_modules/axe-core/axe.min.js");
        assert!(axe.is_file(), "axe-core is installed by tests/setup (npm)");
        let out = Command::new("python3")
            .arg(root.join("tests").join(script))
            .args(args)
            .arg("--axe")
            .arg(&axe)
            .arg("--screenshots")
            .arg(screenshots)
            .env("HOME", &self.home)
            .output()
            .expect("python3");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "the browser run failed:\n{stdout}\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            context()
        );
        serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("the script's JSON")
    }
}

/// Fails naming every page on which axe-core found a WCAG 2.1 A/AA violation.
pub fn assert_no_violations(found: &serde_json::Value) {
    for (page, violations) in found["violations"].as_object().expect("violations") {
        assert_eq!(
            violations.as_array().map(Vec::len),
            Some(0),
            "axe-core finds WCAG 2.1 A/AA violations on {page}: {violations:#}"
        );
    }
}

/// Every page the script read is in Swedish: none of kurir's English history words, and no
/// time in UTC as machines write it, in what a person reads (folded technical details aside).
pub fn assert_swedish(found: &serde_json::Value) {
    for key in ["english", "utc"] {
        let pages = found[key].as_object().expect("the words read");
        assert!(!pages.is_empty(), "no page was read");
        for (page, hits) in pages {
            assert_eq!(
                hits.as_array().map(Vec::len),
                Some(0),
                "{page} shows {key}: {hits}"
            );
        }
    }
}
