//! The municipality portal in a real browser: headless Chromium (Debian `chromium`,
//! `chromium-driver`) with the test person's client certificate in its NSS database and the
//! `AutoSelectCertificateForUrls` policy, driven over WebDriver by tests/portal_browser.py.
//! A technician signs in, changes the decision address, sends the code, types the code the
//! real SMTP test server received, and sees the route change to e-mail; axe-core's WCAG 2.1
//! A/AA rules find no violation on any page; screenshots land in target/screenshots/portal/.

mod common;

use std::path::Path;

use common::browser::{assert_no_violations, Browser};
use common::mail::UMEA;
use common::portal::{portal, HSA, PERSON_CA};

#[test]
fn a_technician_proves_the_address_in_chromium_and_every_page_passes_axe() {
    let p = portal();
    let dir = p.rig.env.path();
    let port = p.addr.rsplit(':').next().expect("port").to_string();
    let url = format!("https://localhost:{port}");

    let browser = Browser::signed_in(dir, &p.rig.ca.pem, &p.person, PERSON_CA, &url);
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots/portal");
    let mailbox = p.rig.peer.dir.join("mail");
    let found = browser.run(
        "portal_browser.py",
        &[
            "--url",
            &url,
            "--address",
            UMEA,
            "--hsa-id",
            HSA,
            "--mailbox",
            &mailbox.to_string_lossy(),
        ],
        &screenshots,
        &|| format!("daemon log:\n{}", p.rig.env.log_tail(30)),
    );
    assert_no_violations(&found);
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
