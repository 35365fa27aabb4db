//! The dispatch desk in a real browser: headless Chromium signed in with a caseworker's card,
//! driven by tests/desk_browser.py against the real mail world (the agency's Postfix relay with
//! DSN, the municipality's Postfix). A decision sent through the form (a damaged PDF refused at
//! its field first) is seen accepted, delivered when the real DSN comes back through `kurir
//! inbound`, read after a read notification; a decision nobody reads is listed under Att ringa
//! once its deadline passes, and "Ringt" closes it with the person named in its history. Every
//! page passes axe-core's WCAG 2.1 A/AA rules; screenshots land in target/screenshots/desk/.

mod common;

use std::path::Path;

use common::browser::{assert_no_violations, Browser};
use common::desk::{a_week_passes, desk_rig, DeskRig, STAFF_HSA};
use common::portal::PERSON_CA;

/// A script that runs this environment's kurir (its settings in the environment).
fn kurir_wrapper(rig: &DeskRig) -> std::path::PathBuf {
    let cmd = rig.env.kurir();
    let mut script = String::from("#!/bin/sh\n");
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            script.push_str(&format!(
                "export {}='{}'\n",
                k.to_string_lossy(),
                v.to_string_lossy().replace('\'', "'\\''")
            ));
        }
    }
    script.push_str(&format!(
        "cd '{}' && exec '{}' \"$@\"\n",
        rig.env.path().display(),
        env!("CARGO_BIN_EXE_kurir")
    ));
    let path = rig.env.path().join("kurir-here");
    std::fs::write(&path, script).expect("wrapper");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    path
}

#[test]
fn a_caseworker_sends_follows_and_phones_in_chromium_and_every_page_passes_axe() {
    let mut rig = desk_rig(|env| {
        env.set_env("KURIR_SPOOL__RESCAN_INTERVAL", "1s");
    });
    let dir = rig.env.path().to_path_buf();
    let port = rig
        .served
        .addr
        .rsplit(':')
        .next()
        .expect("port")
        .to_string();
    let url = format!("https://localhost:{port}");
    let browser = Browser::signed_in(&dir, &rig.world.ca.pem, &rig.staff, PERSON_CA, &url);
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots/desk");
    let files = dir.join("upload");
    std::fs::create_dir_all(&files).expect("upload dir");
    let beslut = common::pdf::beslut("BESLUT-MARKER");
    for (name, bytes) in [
        ("beslut.pdf", beslut.clone()),
        ("godman.pdf", common::pdf::god_man("GODMAN-MARKER")),
        ("trasig.pdf", beslut[..beslut.len() / 2].to_vec()),
    ] {
        std::fs::write(files.join(name), bytes).expect("pdf");
    }
    let wrapper = kurir_wrapper(&rig);
    let maildir = rig.world.municipality.dir.join("mail/umea");
    let context = || format!("daemon log:\n{}", rig.env.log_tail(30));

    // A decision nobody will read (sent on the command line), for Att ringa.
    let unread = rig.env.submit("2480", None);
    let found = browser.run(
        "desk_browser.py",
        &[
            "--phase",
            "send",
            "--url",
            &url,
            "--case",
            common::CASE,
            "--decision",
            &files.join("beslut.pdf").to_string_lossy(),
            "--god-man",
            &files.join("godman.pdf").to_string_lossy(),
            "--damaged",
            &files.join("trasig.pdf").to_string_lossy(),
            "--kurir",
            &wrapper.to_string_lossy(),
            "--maildir",
            &maildir.to_string_lossy(),
        ],
        &screenshots,
        &context,
    );
    assert_no_violations(&found);
    assert!(
        found["error_described"]
            .as_str()
            .unwrap_or("")
            .contains("anvisningsbeslut-fel"),
        "{found}"
    );
    assert!(
        found["error_text"]
            .as_str()
            .unwrap_or("")
            .contains("PDF-filen är skadad"),
        "{found}"
    );
    assert!(
        found["route"]
            .as_str()
            .unwrap_or("")
            .contains("Med skyddad e-post till registrator@umea.test"),
        "{found}"
    );
    assert_eq!(found["list_has_job"], true);
    assert_eq!(found["receipt_has_case"], true);
    let sent = found["job"].as_str().expect("the job").to_string();
    let history = rig.env.ok(&["status", &sent]);
    assert!(history.contains("2480: read"), "{history}");

    // The other decision was delivered and nobody read it: a week on, it is a call to make.
    common::wait_for(
        "the unread decision delivered",
        std::time::Duration::from_secs(60),
        || {
            rig.env
                .receipt(&unread)
                .is_some_and(|r| r["recipients"][0]["confirmed"] == "delivered")
        },
    );
    assert!(a_week_passes(&mut rig) >= 1);
    let context = || format!("daemon log:\n{}", rig.env.log_tail(30));
    let calls = browser.run(
        "desk_browser.py",
        &["--phase", "calls", "--url", &url, "--job", &unread],
        &screenshots,
        &context,
    );
    assert_no_violations(&calls);
    assert_eq!(calls["calls_name_phone"], true, "{calls}");
    assert_eq!(calls["closed"], true, "{calls}");
    let status = rig.env.status(&unread);
    assert!(
        common::has_event(&status, &format!("acknowledged by {STAFF_HSA}")),
        "{status:#}"
    );
    for page in [
        "skicka",
        "skicka-fel",
        "granska",
        "utskick-jobb",
        "utskick",
        "kvitto",
        "att-ringa",
    ] {
        assert!(
            screenshots.join(format!("{page}.png")).is_file(),
            "no screenshot of {page}"
        );
    }
    rig.env.assert_alive();
}
