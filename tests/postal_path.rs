//! The backbone end to end on embedded defaults: submit → daemon → print letter, manifest row,
//! receipt and status, checked with qpdf, pdftotext and pdfinfo.

mod common;

use std::time::Instant;

use common::{Env, CASE};

#[test]
fn help_lists_the_main_commands() {
    let env = Env::new();
    let help = env.ok(&["--help"]);
    for cmd in ["run", "submit", "status", "list"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(cmd)),
            "--help lacks {cmd}:\n{help}"
        );
    }
}

#[test]
fn submitted_job_becomes_a_print_letter_with_manifest_row_receipt_and_history() {
    let mut env = Env::new();
    env.start();
    env.ok(&[
        "municipality",
        "set",
        "2480",
        "--postal-address",
        "Skolgatan 31A\\n901 84 Umeå",
        "--operator",
        "test",
    ]);

    let submitted = Instant::now();
    let id = env.submit("2480", None);
    let receipt = env.wait_receipt(&id);
    eprintln!("drop to receipt: {:?}", submitted.elapsed());

    assert_eq!(receipt["state"], "print-queued");
    assert_eq!(receipt["channel"], "post");
    assert_eq!(receipt["address_missing"], false);
    let docs = receipt["documents"].as_array().expect("documents");
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["kind"], "anvisningsbeslut");
    assert_eq!(docs[0]["pages"], 2);
    assert_eq!(docs[1]["kind"], "god-man");
    let expected_hash = kurir::digest::sha256_hex(&common::pdf::beslut("BESLUT-MARKER"));
    assert_eq!(docs[0]["sha256"], expected_hash.as_str());

    let batch = receipt["batch"].as_str().expect("batch id");
    let letter_name = receipt["recipients"][0]["letter"].as_str().expect("letter");
    let letter = env.spool().join("print").join(batch).join(letter_name);
    assert!(common::qpdf_ok(&letter), "qpdf --check rejects the letter");
    assert_eq!(common::pdf_pages(&letter), 4, "cover + 2 + 1 pages");

    let cover = common::pdftotext(&letter, 1, 1);
    for expected in [
        "Umeå kommun",
        "Skolgatan 31A",
        "901 84 Umeå",
        "Migrationsverket",
        &id,
    ] {
        assert!(
            cover.contains(expected),
            "cover lacks {expected:?}:\n{cover}"
        );
    }
    assert!(!cover.contains(CASE), "case number printed on the cover");
    let rest = common::pdftotext(&letter, 2, 4);
    let beslut_at = rest
        .find("ANVISNINGSBESLUT")
        .expect("decision pages follow");
    let godman_at = rest
        .find("ANMÄLAN OM BEHOV AV GOD MAN")
        .expect("god man page follows");
    assert!(beslut_at < godman_at, "documents out of order");

    let rows = common::manifest_rows(&env.spool());
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["job_id"], id);
    assert_eq!(row["kommunkod"], "2480");
    assert_eq!(row["namn"], "Umeå kommun");
    assert_eq!(row["adress"], "Skolgatan 31A");
    assert_eq!(row["postnummer"], "901 84");
    assert_eq!(row["postort"], "Umeå");
    assert_eq!(row["pages"], "4");
    assert_eq!(row["address_missing"], "no");
    assert_eq!(
        row["sha256"],
        kurir::digest::sha256_hex(&std::fs::read(&letter).expect("letter"))
    );

    // status and list go through the running daemon's control socket.
    let status = env.status(&id);
    assert_eq!(status["job"]["state"], "print-queued");
    let states: Vec<&str> = status["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["received", "queued", "print-queued"]);
    let text = env.ok(&["status", &id]);
    assert!(
        text.contains("print-queued") && text.contains(batch),
        "{text}"
    );
    let table = env.ok(&["list"]);
    assert!(table.contains(&id) && table.contains("post"), "{table}");

    env.stop();
    // Without a daemon the commands open the store themselves.
    assert_eq!(env.status(&id)["job"]["state"], "print-queued");
    assert!(
        !env.logs().contains(CASE),
        "case number in the daemon's log"
    );
}

#[test]
fn unregistered_address_goes_to_the_registry_office_and_is_flagged() {
    let mut env = Env::new();
    env.start();
    let id = env.submit("2584", Some("0180"));
    let receipt = env.wait_receipt(&id);
    assert_eq!(receipt["address_missing"], true);
    let recipients = receipt["recipients"].as_array().expect("recipients");
    assert_eq!(recipients.len(), 2, "assigned municipality and copy");

    let rows = common::manifest_rows(&env.spool());
    assert_eq!(rows.len(), 2);
    let kiruna = rows
        .iter()
        .find(|r| r["kommunkod"] == "2584")
        .expect("2584 row");
    assert_eq!(kiruna["namn"], "Kiruna kommun, Registrator");
    assert_eq!(kiruna["address_missing"], "yes");

    let copy = env
        .spool()
        .join("print")
        .join(recipients[1]["batch"].as_str().expect("batch"))
        .join(recipients[1]["letter"].as_str().expect("letter"));
    let cover = common::pdftotext(&copy, 1, 1);
    assert!(
        cover.contains("Stockholms kommun") && cover.contains("Registrator"),
        "{cover}"
    );
    assert!(cover.contains("Kopia för kännedom"), "{cover}");
    let listing = env.ok(&["list"]);
    assert!(listing.contains("address-missing"), "{listing}");
}

#[test]
fn job_dropped_while_the_daemon_is_down_is_picked_up_at_start() {
    let mut env = Env::new();
    let id = env.submit("2480", None);
    assert!(env.spool().join("incoming").join(&id).is_dir());
    env.start();
    let receipt = env.wait_receipt(&id);
    assert_eq!(receipt["state"], "print-queued");
    assert_eq!(receipt["job_id"], id.as_str());
}

#[test]
fn a_job_not_taken_in_yet_is_named_so_by_status_and_operator_commands() {
    let mut env = Env::new();
    env.make_store();
    let id = env.submit("2480", None);
    for args in [
        vec!["status", id.as_str()],
        vec!["cancel", id.as_str(), "--reason", "fel kommun"],
    ] {
        let out = env.run(&args);
        assert!(!out.status.success(), "{args:?}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains("received, not taken in yet"),
            "{args:?}: {said}"
        );
        assert!(!said.contains("no job"), "{args:?}: {said}");
    }
    let out = env.run(&["status", "20260101-000000-000000000000"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no job with id"));
    env.start();
    let status = env.status(&id);
    assert_eq!(status["job"]["id"], id.as_str());
    env.stop();
}

#[test]
fn a_batch_closes_with_a_ready_marker_when_full() {
    let mut env = Env::new();
    env.set_env("KURIR_PRINT__BATCH_MAX_LETTERS", "2");
    env.start();
    let ids: Vec<String> = (0..3).map(|_| env.submit("2480", None)).collect();
    for id in &ids {
        env.wait_receipt(id);
    }
    let print = env.spool().join("print");
    let mut batches: Vec<_> = std::fs::read_dir(&print)
        .expect("print dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    batches.sort();
    assert_eq!(batches.len(), 2, "a second batch after the first filled up");
    let ready = std::fs::read_to_string(batches[0].join("READY")).expect("first batch closed");
    assert!(ready.contains("letters=2"), "{ready}");
    assert!(
        !batches[1].join("READY").exists(),
        "second batch still open"
    );
    assert_eq!(common::manifest_rows(&env.spool()).len(), 3);
}

#[test]
fn bad_configuration_stops_start_up_naming_key_and_file() {
    let env = Env::new();
    let path = env.path().join("kurir.toml");
    std::fs::write(&path, "[spool]\nmax_pdf_bytes = \"large\"\n").expect("write");
    let out = env.run(&["--config", "kurir.toml", "run"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("max_pdf_bytes") && err.contains("kurir.toml"),
        "{err}"
    );
}

#[test]
fn environment_overrides_the_spool_directory() {
    let mut env = Env::new();
    env.set_env("KURIR_SPOOL__DIR", "other-spool");
    env.start();
    assert!(env.path().join("other-spool/incoming").is_dir());
    assert!(!env.spool().exists());
    env.stop();
}

#[test]
fn submit_refuses_unknown_kommunkod_and_missing_files_before_writing() {
    let env = Env::new();
    std::fs::write(env.path().join("b.pdf"), common::pdf::beslut("X")).expect("write");
    let out = env.run(&[
        "submit",
        "--to",
        "9999",
        "--case",
        CASE,
        "--anvisningsbeslut",
        "b.pdf",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown kommunkod 9999"));
    let out = env.run(&[
        "submit",
        "--to",
        "2480",
        "--case",
        CASE,
        "--anvisningsbeslut",
        "nope.pdf",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    std::fs::write(env.path().join("x.pdf"), b"not a pdf").expect("write");
    let out = env.run(&[
        "submit",
        "--to",
        "2480",
        "--case",
        CASE,
        "--anvisningsbeslut",
        "x.pdf",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a PDF"));
    let incoming = env.spool().join("incoming");
    let written = std::fs::read_dir(&incoming).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        written, 0,
        "nothing may be written for a refused submission"
    );
}

#[test]
fn a_resubmission_written_straight_into_the_spool_names_the_first_job_and_is_not_printed_again() {
    let mut env = Env::new();
    env.start();
    let beslut = common::pdf::beslut("RESUBMIT");
    let manifest = format!(
        "to = \"2480\"\ncase = \"{CASE}\"\nsubmission_key = \"arende-4711:1\"\n\n\
         [[document]]\nkind = \"anvisningsbeslut\"\nfile = \"b.pdf\"\n"
    );
    // Twice in one scan, and once more later: one job is printed.
    env.drop_job("forsta", &manifest, &[("b.pdf", &beslut)]);
    env.drop_job("andra", &manifest, &[("b.pdf", &beslut)]);
    let mut receipts = Vec::new();
    common::wait_for("two receipts", std::time::Duration::from_secs(30), || {
        receipts = env.receipts();
        receipts.len() == 2
    });
    env.drop_job("tredje", &manifest, &[("b.pdf", &beslut)]);
    common::wait_for("three receipts", std::time::Duration::from_secs(30), || {
        receipts = env.receipts();
        receipts.len() == 3
    });
    let first: Vec<&serde_json::Value> = receipts
        .iter()
        .filter(|r| r["duplicate_of"].is_null())
        .collect();
    assert_eq!(first.len(), 1, "{receipts:#?}");
    assert_eq!(first[0]["state"], "print-queued");
    for dup in receipts.iter().filter(|r| !r["duplicate_of"].is_null()) {
        assert_eq!(dup["duplicate_of"], first[0]["job_id"]);
        assert_eq!(dup["state"], "cancelled");
        assert!(dup["batch"].is_null(), "a duplicate was printed: {dup:#}");
    }
    let letters = env.letters();
    assert_eq!(letters, 1, "one letter for one submission");
    assert!(
        !env.logs().contains("arende-4711"),
        "the submission key in the log"
    );
}
