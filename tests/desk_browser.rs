//! The dispatch desk in a real browser: headless Chromium signed in with a caseworker's card,
//! driven by tests/desk_browser.py against the real mail world (the agency's Postfix relay with
//! DSN, the municipality's Postfix). A decision sent through the form (two problems listed at
//! once first, the file that passed kept) is seen sent, delivered when the real DSN comes back
//! through `kurir inbound`, opened after a read notification; a decision nobody opens is listed
//! under Att ringa once its deadline passes, with what to say, and a call nobody answers keeps
//! it while one that reaches the municipality closes it. Every page passes axe-core's WCAG 2.1
//! A/AA rules and reads in Swedish — no English from kurir's histories, no raw UTC time;
//! screenshots land in target/screenshots/desk/.

mod common;

use std::path::Path;

use common::browser::{assert_no_violations, assert_swedish, Browser};
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
    assert_swedish(&found);
    let text = |key: &str| found[key].as_str().unwrap_or("").to_string();
    // Every problem at once, each a link to its field; the file that passed is kept.
    assert_eq!(
        found["summary_links"],
        serde_json::json!(["anvisningsbeslut", "arende"])
    );
    assert!(
        text("error_described").contains("anvisningsbeslut-fel"),
        "{found}"
    );
    assert!(
        text("error_text").contains("PDF-filen är skadad"),
        "{found}"
    );
    assert!(text("god_man_kept").contains("godman.pdf"), "{found}");
    // The review names the files it will send, each with a link to open it.
    assert!(
        text("route").contains("Med skyddad e-post till registrator@umea.test"),
        "{found}"
    );
    for name in ["beslut.pdf", "godman.pdf"] {
        assert!(text("review_files").contains(name), "{found}");
    }
    assert_eq!(found["review_opens"], 2, "{found}");
    // The job's page leads with its status in words, and offers nothing a finished job
    // cannot do.
    assert!(
        text("status_delivered")
            .contains("Beslutet har kommit fram till kommunen men är inte öppnat än"),
        "{found}"
    );
    assert!(
        text("status_opened").contains("Klart: beslutet har kommit fram och är öppnat"),
        "{found}"
    );
    assert!(
        text("actions_on_finished").contains("Inga åtgärder behövs")
            && !text("actions_on_finished").contains("Skicka igen"),
        "{found}"
    );
    assert_eq!(found["notice_after_reload"], false, "{found}");
    assert_eq!(found["list_links_case"], true, "{found}");
    assert_eq!(found["list_sent_by"], true, "{found}");
    assert_eq!(found["receipt_has_case"], true);
    // The receipt opens with who sent it, when it reached the server and when it was opened.
    let lead = text("receipt_lead");
    for words in [
        "Hanna Handläggare (SE2021000001-hand1), Bosättningsenheten skickade beslutet",
        "nådde kommunens e-postserver",
        "öppnades",
    ] {
        assert!(lead.contains(words), "{lead}");
    }
    assert_eq!(found["refusal_frame"], true, "{found}");
    assert!(
        text("refusal_title").starts_with("Utskicket finns inte"),
        "{found}"
    );
    for part in [
        "Hur tillgänglig är webbplatsen?",
        "delvis förenlig",
        "Innehåll som inte är tillgängligt",
        "Hur vi testat webbplatsen",
        "Redogörelsen uppdaterades senast",
    ] {
        assert!(
            text("statement").contains(part),
            "the statement lacks {part:?}"
        );
    }
    let sent = found["job"].as_str().expect("the job").to_string();
    let history = rig.env.ok(&["status", &sent]);
    assert!(history.contains("2480: read"), "{history}");

    // The other decision was delivered and nobody read it: a week on, it is a call to make.
    // (Sent as the mail world started: a hop that deferred it — kurir's or a Postfix's — is
    // asked to try again now rather than waiting out its back-off.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let mut polls = 0u32;
    while !rig
        .env
        .receipt(&unread)
        .is_some_and(|r| r["recipients"][0]["confirmed"] == "delivered")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the unread decision was not delivered:\n{}\ndaemon log:\n{}",
            String::from_utf8_lossy(&rig.env.run(&["status", &unread]).stdout),
            rig.env.log_tail(40)
        );
        polls += 1;
        if polls % 20 == 0 {
            let _ = rig
                .env
                .run(&["flush", "--reason", "the test asks for it now"]);
            rig.world.relay.flush();
            rig.world.municipality.flush();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(a_week_passes(&mut rig) >= 1);
    let context = || format!("daemon log:\n{}", rig.env.log_tail(30));
    let calls = browser.run(
        "desk_browser.py",
        &[
            "--phase",
            "calls",
            "--url",
            &url,
            "--job",
            &unread,
            "--case",
            common::CASE,
        ],
        &screenshots,
        &context,
    );
    assert_no_violations(&calls);
    assert_swedish(&calls);
    let said = |key: &str| calls[key].as_str().unwrap_or("").to_string();
    assert_eq!(calls["calls_name_phone"], true, "{calls}");
    assert_eq!(calls["calls_case"], true, "{calls}");
    for words in [
        "Att säga",
        "Det har inte öppnats",
        "Kommunen vet om beslutet",
        "Inget svar",
    ] {
        assert!(said("calls_what_to_say").contains(words), "{calls}");
    }
    assert!(said("menu").contains("Att ringa (1 samtal)"), "{calls}");
    assert_eq!(calls["kept_after_no_answer"], true, "{calls}");
    assert_eq!(calls["closed"], true, "{calls}");
    assert!(!said("menu_after").contains("samtal)"), "{calls}");
    assert!(said("timeline").contains("Ringt utan svar"), "{calls}");
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
