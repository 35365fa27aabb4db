//! The municipality portal in a real browser: headless Chromium (Debian `chromium`,
//! `chromium-driver`) with the test person's client certificate in its NSS database and the
//! `AutoSelectCertificateForUrls` policy, driven over WebDriver by tests/portal_browser.py.
//! A technician signs in, changes the decision address, sends the code, types the code the
//! real SMTP test server received, and sees the route change to e-mail; axe-core's WCAG 2.1
//! A/AA rules find no violation on any page; screenshots land in target/screenshots/portal/.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::mail::UMEA;
use common::portal::{portal, HSA, PERSON_CA};

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

/// Chromium's managed policy for this test's URL; removed when dropped.
struct Policy(PathBuf);
impl Drop for Policy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_technician_proves_the_address_in_chromium_and_every_page_passes_axe() {
    let p = portal();
    let dir = p.rig.env.path();
    let port = p.addr.rsplit(':').next().expect("port").to_string();
    let url = format!("https://localhost:{port}");

    // The person's certificate and the server's CA in a fresh NSS database of a test HOME.
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
            &p.rig.ca.pem.to_string_lossy(),
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
            &p.person.cert.to_string_lossy(),
            "-inkey",
            &p.person.key.to_string_lossy(),
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
    let policy_dir = Path::new("/etc/chromium/policies/managed");
    std::fs::create_dir_all(policy_dir).expect("policy dir (root)");
    let policy_file = policy_dir.join(format!("kurir-test-{port}.json"));
    let rule = serde_json::json!({
        "pattern": url,
        "filter": { "ISSUER": { "CN": PERSON_CA } }
    });
    std::fs::write(
        &policy_file,
        serde_json::json!({ "AutoSelectCertificateForUrls": [rule.to_string()] }).to_string(),
    )
    .expect("policy");
    let _policy = Policy(policy_file);

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let axe = root.join("tests/browser/node_modules/axe-core/axe.min.js");
    assert!(axe.is_file(), "axe-core is installed by tests/setup (npm)");
    let screenshots = root.join("target/screenshots/portal");
    let out = Command::new("python3")
        .arg(root.join("tests/portal_browser.py"))
        .args(["--url", &url, "--address", UMEA, "--hsa-id", HSA])
        .arg("--mailbox")
        .arg(p.rig.peer.dir.join("mail"))
        .arg("--axe")
        .arg(&axe)
        .arg("--screenshots")
        .arg(&screenshots)
        .env("HOME", &home)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "the browser run failed:\n{stdout}\n{}\ndaemon log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        p.rig.env.log_tail(30)
    );
    let found: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("the script's JSON");
    for (page, violations) in found["violations"].as_object().expect("violations") {
        assert_eq!(
            violations.as_array().map(Vec::len),
            Some(0),
            "axe-core finds WCAG 2.1 A/AA violations on {page}: {violations:#}"
        );
    }
    assert_eq!(found["pages"].as_array().map(Vec::len), Some(7), "{found}");
    assert!(
        found["route"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("Med skyddad e-post till {UMEA}")),
        "{found}"
    );
    assert_eq!(found["history_has_hsa_id"], true);
    assert_eq!(found["first_tab"], "Hoppa till huvudinnehållet");
    assert!(found["error_described"]
        .as_str()
        .unwrap_or("")
        .contains("phone-fel"));
    assert_eq!(found["error_invalid"], "true");
    for page in ["start", "kommun", "bevisad", "tillganglighet"] {
        assert!(
            screenshots.join(format!("{page}.png")).is_file(),
            "no screenshot of {page}"
        );
    }
    p.rig.env.assert_alive();
}
