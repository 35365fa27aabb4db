//! The municipality portal in a real browser: headless Chromium (Debian `chromium`,
//! `chromium-driver`) with the test person's client certificate in its NSS database and the
//! `AutoSelectCertificateForUrls` policy, driven over WebDriver by tests/portal_browser.py.
//! A technician signs in, changes the decision address (saving sends the code, and step 2
//! leads the page), types the code the real SMTP test server received, and sees the route
//! change to e-mail and the change in the history in words; axe-core's WCAG 2.1 A/AA rules
//! find no violation on any page, and no page shows English history words or a raw UTC time;
//! screenshots land in target/screenshots/portal/.

mod common;

use std::path::Path;

use common::browser::{assert_no_violations, assert_swedish, Browser};
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
    assert_swedish(&found);
    assert_eq!(found["pages"].as_array().map(Vec::len), Some(8), "{found}");
    let text = |key: &str| found[key].as_str().unwrap_or("").to_string();
    // Saving a new address sent its code: step 2 leads the page and says what happens when.
    assert_eq!(
        text("first_heading"),
        "Steg 2 av 2: skriv in koden",
        "{found}"
    );
    for words in [
        "En kod är skickad till",
        "används först när den är bekräftad",
        "tidigare adress och kontaktpersoner",
    ] {
        assert!(text("step_two").contains(words), "{found}");
    }
    // One line per change, saying what changed to what and by whom, in local time.
    for words in [
        "Särskild adress för beslut satt till",
        "Telefon",
        "Kod för att bekräfta adressen skickad till",
        "bekräftad med koden",
        common::portal::PERSON,
    ] {
        assert!(
            text("history").contains(words),
            "the history lacks {words:?}: {found}"
        );
    }
    assert!(
        text("unknown_title").starts_with("Kommunen finns inte"),
        "{found}"
    );
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
    for page in ["start", "kommun", "steg-2", "bekraftad", "tillganglighet"] {
        assert!(
            screenshots.join(format!("{page}.png")).is_file(),
            "no screenshot of {page}"
        );
    }
    p.rig.env.assert_alive();
}
