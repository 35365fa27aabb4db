//! The dispatch desk over HTTPS with SITHS-like client certificates, against real servers: a
//! caseworker sends a decision through the form (a damaged PDF refused at its field), sees it
//! accepted by the agency's Postfix relay, delivered when the real DSN comes back through
//! `kurir inbound`, read after a read notification; downloads the receipt for the case file
//! and `pdftotext` finds the case number, both documents' SHA-256 and "levererat". An unread
//! decision is listed under Att ringa; "Ringt" closes it, names the person and is never raised
//! again. A municipality person gets 403 on every desk page, the caseworker on municipality
//! pages; posts need the form token. The desk is its own program, user and socket: a
//! compromised portal can send no decision. (The pages in Chromium, with axe-core:
//! desk_browser.rs.)

mod common;

use std::time::Duration;

use common::desk::{a_week_passes, desk_rig, DeskRig, STAFF_HSA, STAFF_NAME};
use common::portal::{connector, csrf, form, multipart, request, request_raw};
use common::portal::{speak_as, Door};
use openssl::ssl::SslConnector;

struct Client<'a> {
    rig: &'a DeskRig,
    tls: SslConnector,
}

impl Client<'_> {
    fn get(&self, path: &str) -> common::portal::Reply {
        request(&self.rig.served.addr, &self.tls, "GET", path, &[], "").expect("GET")
    }

    fn post(&self, path: &str, fields: &[(&str, &str)]) -> common::portal::Reply {
        request(
            &self.rig.served.addr,
            &self.tls,
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &form(fields),
        )
        .expect("POST")
    }

    fn upload(
        &self,
        fields: &[(&str, &str)],
        files: &[(&str, &str, &[u8])],
    ) -> (u16, String, String) {
        let (content_type, body) = multipart(fields, files);
        let (status, head, body) = request_raw(
            &self.rig.served.addr,
            &self.tls,
            "POST",
            "/expedition/skicka/granska",
            &[("Content-Type", &content_type)],
            &body,
        )
        .expect("upload");
        (status, head, String::from_utf8_lossy(&body).to_string())
    }
}

fn staff(rig: &DeskRig) -> Client<'_> {
    Client {
        rig,
        tls: connector(&rig.world.ca.pem, Some(&rig.staff)),
    }
}

fn location(head: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix("location: "))
        .expect("a redirect")
        .trim()
        .to_string()
}

/// Sends a decision to Umeå through the form; returns the new job's id.
fn send_decision(client: &Client<'_>) -> String {
    let token = csrf(&client.get("/expedition/skicka").body);
    let beslut = common::pdf::beslut("BESLUT-MARKER");
    let god_man = common::pdf::god_man("GODMAN-MARKER");
    let (status, _, page) = client.upload(
        &[
            ("csrf", &token),
            ("kommun", "Umeå kommun (2480)"),
            ("arende", common::CASE),
        ],
        &[
            ("anvisningsbeslut", "beslut.pdf", &beslut),
            ("godman", "godman.pdf", &god_man),
        ],
    );
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Med skyddad e-post till registrator@umea.test."),
        "the confirmation does not say how it goes: {page}"
    );
    let draft = page
        .split("name=\"utkast\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the draft")
        .to_string();
    let sent = client.post(
        "/expedition/skicka/bekrafta",
        &[("csrf", &token), ("utkast", &draft)],
    );
    assert_eq!(sent.status, 303, "{}", sent.body);
    let to = location(&sent.head);
    let id = to
        .strip_prefix("/expedition/utskick/")
        .and_then(|r| r.split('?').next())
        .expect("the job's page")
        .to_string();
    // Twice is refused: the draft went with the first.
    let again = client.post(
        "/expedition/skicka/bekrafta",
        &[("csrf", &token), ("utkast", &draft)],
    );
    assert_eq!(again.status, 410, "{}", again.body);
    id
}

/// Waits until the job's page shows `text`.
fn page_shows(client: &Client<'_>, id: &str, text: &str) -> String {
    let mut page = String::new();
    common::wait_for(
        &format!("{text} on the job's page"),
        Duration::from_secs(60),
        || {
            page = client.get(&format!("/expedition/utskick/{id}")).body;
            page.contains(text)
        },
    );
    page
}

#[test]
fn a_caseworker_sends_a_decision_follows_it_to_read_and_takes_the_receipt_for_the_case_file() {
    let rig = desk_rig(|env| {
        env.set_env("KURIR_SPOOL__RESCAN_INTERVAL", "1s");
    });
    let client = staff(&rig);

    // A damaged decision is refused at its field, in Swedish, and nothing is kept.
    let token = csrf(&client.get("/expedition/skicka").body);
    let beslut = common::pdf::beslut("BESLUT-MARKER");
    let (status, _, page) = client.upload(
        &[
            ("csrf", &token),
            ("kommun", "2480"),
            ("arende", common::CASE),
        ],
        &[(
            "anvisningsbeslut",
            "beslut.pdf",
            &beslut[..beslut.len() / 2],
        )],
    );
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("id=\"anvisningsbeslut-fel\""), "{page}");
    assert!(page.contains("PDF-filen är skadad"), "{page}");
    assert!(page.contains("aria-invalid=\"true\""), "{page}");

    let id = send_decision(&client);
    page_shows(&client, &id, "✓ skickat");
    let page = page_shows(&client, &id, "✓ levererat");
    assert!(
        page.contains(common::CASE),
        "the case number is on the page"
    );
    // The timeline reads in Swedish: each step worded by the desk from what happened, none in
    // the history's English words.
    for words in [
        "Mottaget och kontrollerat: 2 handlingar",
        "Väg: kommun 2480 med skyddad e-post.",
        "Kommun 2480: Migrationsverkets e-postserver tog emot e-posten",
        "Kommun 2480: levererat till kommunens e-postserver.",
    ] {
        assert!(
            page.contains(words),
            "the timeline lacks {words:?}:\n{page}"
        );
    }
    for english in [
        "claimed and validated",
        "routed:",
        "sending through",
        "accepted by",
    ] {
        assert!(!page.contains(english), "English on the desk: {english:?}");
    }

    // The read notification, as the municipality's mail client sends it, through the pipe.
    // (Umeå's mailbox also holds the signed notice of the grant the rig made.)
    let status = rig.env.status(&id);
    let message_id = status["job"]["recipients"][0]["email"]["message_id"]
        .as_str()
        .expect("message id")
        .to_string();
    let stored = {
        let mut found = None;
        common::wait_for(
            "the decision in Umeå's mailbox",
            Duration::from_secs(60),
            || {
                found = rig
                    .world
                    .municipality
                    .maildir("umea")
                    .iter()
                    .filter_map(|m| std::fs::read(m).ok())
                    .map(|m| String::from_utf8_lossy(&m).to_string())
                    .find(|m| m.contains(message_id.trim_matches(['<', '>'])));
                found.is_some()
            },
        );
        found.unwrap_or_default()
    };
    let return_path = stored
        .lines()
        .find_map(|l| l.strip_prefix("Return-Path: "))
        .map(|v| v.trim().trim_matches(['<', '>']).to_string())
        .expect("Return-Path");
    let mdn =
        common::mailworld::thunderbird_mdn(&return_path, &message_id, "registrator@umea.test");
    assert!(rig
        .env
        .inbound(&return_path, mdn.as_bytes())
        .status
        .success());
    page_shows(&client, &id, "✓ öppnat");

    let list = client
        .get(&format!(
            "/expedition/utskick?sok={}&visa=alla",
            common::CASE
        ))
        .body;
    assert!(
        list.contains(&id),
        "searching by case number finds it: {list}"
    );
    let none = client.get("/expedition/utskick?sok=99-999999").body;
    assert!(!none.contains(&id));

    // The receipt for the case file, as a PDF laid out with an embedded font.
    let (status, head, pdf) = request_raw(
        &rig.served.addr,
        &client.tls,
        "GET",
        &format!("/expedition/utskick/{id}/kvitto.pdf"),
        &[],
        b"",
    )
    .expect("receipt");
    assert_eq!(status, 200);
    assert!(head.contains("content-type: application/pdf"), "{head}");
    let file = rig.env.path().join("kvitto.pdf");
    std::fs::write(&file, &pdf).expect("write");
    assert!(common::qpdf_ok(&file), "qpdf --check rejects the receipt");
    let text = common::pdftotext(&file, 1, 9);
    let docs = status_documents(&rig, &id);
    // It opens with who sent it, when it reached the municipality's server and when it was
    // opened; the servers' own words and the fingerprints follow under their own heading.
    let lead = text.split("Dossiernummer").next().unwrap_or_default();
    for needle in [
        "Hanna Handläggare (SE2021000001-hand1), Bosättningsenheten skickade",
        "nådde kommunens e-postserver",
        "öppnades",
    ] {
        assert!(
            lead.contains(needle),
            "the receipt's first sentence lacks {needle}:\n{text}"
        );
    }
    let technical = text
        .split_once("Tekniska uppgifter")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no technical part:\n{text}"));
    for needle in [common::CASE, "Umeå kommun", "Öppnat"] {
        assert!(text.contains(needle), "the receipt lacks {needle}:\n{text}");
    }
    for needle in [docs[0].as_str(), docs[1].as_str(), "250 2.0.0"] {
        assert!(
            technical.contains(needle),
            "the technical part lacks {needle}:\n{text}"
        );
    }
    let fonts = std::process::Command::new("pdffonts")
        .arg(&file)
        .output()
        .expect("pdffonts (poppler-utils)");
    let fonts = String::from_utf8_lossy(&fonts.stdout).to_string();
    assert!(
        fonts.contains("DejaVuSans") && fonts.lines().skip(2).all(|l| l.contains(" yes ")),
        "the font is not embedded:\n{fonts}"
    );

    // Every read of the job on the desk is in the audit chain, with the person.
    let audit = rig.env.ok(&["audit", "export", "--since", "2020-01-01"]);
    let views = audit
        .lines()
        .filter(|l| l.contains("viewed on the dispatch desk") && l.contains(STAFF_HSA))
        .count();
    assert!(views >= 3, "page and receipt views not recorded:\n{audit}");
    assert!(audit.contains("decision sent from the dispatch desk"));
    // So is every search, with the jobs it showed: the chain says who found which job, and
    // holds no case number (not even a digest of one, which would be found by trying them all).
    let searched = audit
        .lines()
        .filter(|l| l.contains("the job list (all) viewed on the dispatch desk"))
        .find(|l| l.contains("\"searched\":true"))
        .unwrap_or_else(|| panic!("the search by case number is not recorded:\n{audit}"));
    assert!(
        searched.contains(STAFF_HSA) && searched.contains(&id),
        "{searched}"
    );
    assert!(
        !audit.contains(common::CASE),
        "a case number in the audit chain:\n{audit}"
    );
    let digest = sha256_hex(common::CASE);
    assert!(
        !audit.contains(&digest),
        "a case number's digest in the audit chain"
    );
}

fn sha256_hex(text: &str) -> String {
    openssl::sha::sha256(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn status_documents(rig: &DeskRig, id: &str) -> Vec<String> {
    rig.env.status(id)["job"]["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .map(|d| d["sha256"].as_str().expect("sha").to_string())
        .collect()
}

#[test]
fn an_unread_decision_is_listed_to_phone_and_ringt_closes_it_for_good_naming_the_person() {
    let mut rig = desk_rig(|env| {
        env.set_env("KURIR_SPOOL__RESCAN_INTERVAL", "1s");
    });
    let id = send_decision(&staff(&rig));
    page_shows(&staff(&rig), &id, "✓ levererat");
    assert!(a_week_passes(&mut rig) >= 1, "no deadline passed");
    let client = staff(&rig);

    let calls = client.get("/expedition/att-ringa").body;
    assert!(
        calls.contains("Umeå kommun: beslutet har inte öppnats, ring kommunen nu"),
        "{calls}"
    );
    assert!(
        calls.contains("0980-123 45") && calls.contains("Karin Test"),
        "{calls}"
    );
    let token = csrf(&calls);
    // A note that names the child's case number would be kept for good where nothing can be
    // redacted: refused, saying why, and the call stays on the list.
    let refused = client.post(
        &format!("/expedition/att-ringa/{id}"),
        &[
            ("csrf", &token),
            ("anteckning", "Pratade om 12-345678"),
            ("larm", "unread"),
            ("mottagare", "2480"),
        ],
    );
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("ser ut att innehålla ett dossiernummer"),
        "{}",
        refused.body
    );
    // A note longer than a history keeps is refused, saying how long it may be.
    let long = "Ringde växeln. ".repeat(80);
    let too_long = client.post(
        &format!("/expedition/att-ringa/{id}"),
        &[
            ("csrf", &token),
            ("anteckning", &long),
            ("utfall", "inget-svar"),
            ("larm", "unread"),
            ("mottagare", "2480"),
        ],
    );
    assert_eq!(too_long.status, 422, "{}", too_long.body);
    assert!(
        too_long.body.contains("högst 1000 tecken"),
        "{}",
        too_long.body
    );
    assert!(staff(&rig).get("/expedition/att-ringa").body.contains(&id));
    // Nobody answered: the try is noted in the job's history and the call stays listed.
    let tried = client.post(
        &format!("/expedition/att-ringa/{id}"),
        &[
            ("csrf", &token),
            ("anteckning", "Växeln svarade inte"),
            ("utfall", "inget-svar"),
            ("larm", "unread"),
            ("mottagare", "2480"),
        ],
    );
    assert_eq!(tried.status, 303, "{}", tried.body);
    let calls = client
        .get("/expedition/att-ringa?meddelande=inget-svar")
        .body;
    assert!(
        calls.contains(&id),
        "closed by a call nobody answered: {calls}"
    );
    assert!(calls.contains("Larmet är kvar"), "{calls}");
    assert!(
        common::has_event(
            &rig.env.status(&id),
            &format!("called, no answer by {STAFF_HSA} (Hanna Handläggare) via desk: Växeln svarade inte")
        ),
        "the unanswered call is not in the history"
    );
    let done = client.post(
        &format!("/expedition/att-ringa/{id}"),
        &[
            ("csrf", &token),
            ("anteckning", "Registraturen läser beslutet nu"),
            ("utfall", "vet"),
            ("larm", "unread"),
            ("mottagare", "2480"),
        ],
    );
    assert_eq!(done.status, 303, "{}", done.body);
    let calls = client.get("/expedition/att-ringa").body;
    assert!(!calls.contains(&id), "still listed after Ringt: {calls}");

    let status = rig.env.status(&id);
    assert!(
        common::has_event(
            &status,
            &format!("acknowledged by {STAFF_HSA} (Hanna Handläggare) via desk: ringt: kommunen vet om beslutet; Registraturen läser beslutet nu")
        ),
        "{status:#}"
    );
    let (_, metrics) = rig.env.http_get("/metrics");
    assert!(
        metrics.contains("kurir_alerts_open{kind=\"unread\"} 0"),
        "{metrics}"
    );
    // Never raised again: not at the next deadline check, not after a restart.
    let folder = rig.env.spool().join("alerts");
    let alerts = || std::fs::read_dir(&folder).map_or(0, |d| d.count());
    let before = alerts();
    assert_eq!(a_week_passes(&mut rig), 0, "raised again");
    assert_eq!(alerts(), before);
    let calls = staff(&rig).get("/expedition/att-ringa").body;
    assert!(!calls.contains(&id), "{calls}");
}

#[test]
fn each_grant_opens_only_its_own_pages_and_posts_need_the_form_token() {
    let rig = desk_rig(|_| {});
    let muni = Client {
        rig: &rig,
        tls: connector(&rig.world.ca.pem, Some(&rig.served.person)),
    };
    let id = rig.env.submit("2480", None);
    for path in [
        "/expedition/skicka".to_string(),
        "/expedition/utskick".into(),
        "/expedition/att-ringa".into(),
        format!("/expedition/utskick/{id}"),
        format!("/expedition/utskick/{id}/kvitto"),
        format!("/expedition/utskick/{id}/kvitto.pdf"),
        format!("/expedition/utskick/{id}/stoppa"),
    ] {
        let reply = muni.get(&path);
        assert_eq!(reply.status, 403, "a municipality person reached {path}");
    }
    // The municipality person's own form token, from the portal where they work.
    let on_portal = |tls: &SslConnector, path: &str| {
        request(&rig.portal.addr, tls, "GET", path, &[], "").expect("portal")
    };
    let token = csrf(&on_portal(&muni.tls, "/kommun/2480").body);
    let (status, _, _) = muni.upload(
        &[
            ("csrf", &token),
            ("kommun", "2480"),
            ("arende", common::CASE),
        ],
        &[("anvisningsbeslut", "b.pdf", &common::pdf::beslut("X"))],
    );
    assert_eq!(status, 403, "a municipality person sent a decision");
    let acted = muni.post(
        &format!("/expedition/utskick/{id}/stoppa"),
        &[("csrf", &token), ("skal", "prov")],
    );
    assert_eq!(acted.status, 403);
    assert_ne!(rig.env.status(&id)["job"]["state"], "cancelled");
    let audit = rig.env.ok(&["audit", "export", "--since", "2020-01-01"]);
    assert!(!audit.contains("viewed on the dispatch desk"), "{audit}");

    // The caseworker has the desk and nothing of Umeå's registration: the desk serves no
    // registration pages, and the portal gives them none.
    let client = staff(&rig);
    assert_eq!(client.get("/kommun/2480").status, 404);
    assert_eq!(on_portal(&client.tls, "/kommun/2480").status, 403);
    let start = client.get("/");
    assert!(
        start
            .head
            .to_ascii_lowercase()
            .contains("location: /expedition/utskick"),
        "{}",
        start.head
    );
    // A post without the person's own form token, or from another site, does nothing.
    let forged = client.post(
        &format!("/expedition/utskick/{id}/stoppa"),
        &[("csrf", &token), ("skal", "prov")],
    );
    assert_eq!(forged.status, 403, "another person's token was taken");
    let cross = request(
        &rig.served.addr,
        &client.tls,
        "POST",
        &format!("/expedition/utskick/{id}/stoppa"),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Sec-Fetch-Site", "cross-site"),
            ("Origin", "https://evil.example"),
        ],
        &form(&[
            ("csrf", &csrf(&client.get("/expedition/skicka").body)),
            ("skal", "prov"),
        ]),
    )
    .expect("post");
    assert_eq!(cross.status, 403, "a cross-site post was taken");
    assert_ne!(rig.env.status(&id)["job"]["state"], "cancelled");

    // Operations (drift) follow decisions but send none.
    rig.env.ok(&[
        "staff",
        "grant",
        "--hsa-id",
        STAFF_HSA,
        "--name",
        "Hanna Handläggare",
        "--role",
        "drift",
        "--issuer",
        &format!("CN={}", common::portal::PERSON_CA),
    ]);
    assert_eq!(client.get("/expedition/skicka").status, 403);
    assert_eq!(client.get("/expedition/utskick").status, 200);
    rig.env.ok(&["staff", "revoke", "--hsa-id", STAFF_HSA]);
    assert_eq!(client.get("/expedition/utskick").status, 403);
    let listed = rig.env.ok(&["staff", "list"]);
    assert!(listed.contains("-- 0 person(s)"), "{listed}");
}

/// The "viewed" entries the audit chain holds for job `id`.
fn views_of(rig: &DeskRig, id: &str) -> usize {
    rig.env
        .ok(&["audit", "export", "--since", "2020-01-01"])
        .lines()
        .filter(|l| l.contains(id) && l.contains("viewed on the dispatch desk"))
        .count()
}

#[test]
fn reads_another_site_asks_for_are_refused_and_a_persons_readings_of_a_job_coalesce() {
    let rig = desk_rig(|_| {});
    let client = staff(&rig);
    let id = send_decision(&client);
    let page = format!("/expedition/utskick/{id}");
    let before = views_of(&rig, &id);

    // Another site's page makes the caseworker's browser fetch the job's page (an image tag,
    // two hundred times): each is refused before it is read, and nothing enters the chain.
    for _ in 0..200 {
        let reply = request(
            &rig.served.addr,
            &client.tls,
            "GET",
            &page,
            &[
                ("Sec-Fetch-Site", "cross-site"),
                ("Sec-Fetch-Mode", "no-cors"),
                ("Sec-Fetch-Dest", "image"),
            ],
            "",
        )
        .expect("answer");
        assert_eq!(reply.status, 403);
        assert!(!reply.body.contains(common::CASE), "the page was shown");
    }
    // A link followed from another site: a page with the same link, to open from here.
    let followed = request(
        &rig.served.addr,
        &client.tls,
        "GET",
        &page,
        &[
            ("Sec-Fetch-Site", "cross-site"),
            ("Sec-Fetch-Mode", "navigate"),
            ("Sec-Fetch-Dest", "document"),
        ],
        "",
    )
    .expect("answer");
    assert_eq!(followed.status, 403);
    assert!(
        followed.body.contains(&format!("href=\"{page}\"")),
        "{}",
        followed.body
    );
    assert_eq!(views_of(&rig, &id), before, "a refused read was recorded");

    // Read from the desk itself, twenty times over: one reading in the chain.
    for _ in 0..20 {
        let reply = request(
            &rig.served.addr,
            &client.tls,
            "GET",
            &page,
            &[("Sec-Fetch-Site", "same-origin")],
            "",
        )
        .expect("answer");
        assert_eq!(reply.status, 200);
    }
    assert_eq!(views_of(&rig, &id), before + 1, "readings not coalesced");
}

/// The value of the hidden field `name` on `page`.
fn hidden(page: &str, name: &str) -> Option<String> {
    page.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .map(str::to_string)
}

#[test]
fn the_send_form_shows_every_problem_at_once_and_keeps_the_files_that_passed() {
    let rig = desk_rig(|_| {});
    let client = staff(&rig);
    let token = csrf(&client.get("/expedition/skicka").body);
    let beslut = common::pdf::beslut("BESLUT-MARKER");
    let god_man = common::pdf::god_man("GODMAN-MARKER");

    // Three things wrong at once: each at its field and all in one list at the top, each a
    // link to its field; the decision that passed is kept, by its name.
    let (status, _, page) = client.upload(
        &[
            ("csrf", &token),
            ("kommun", "Atlantis"),
            ("arende", "12345678"),
        ],
        &[
            ("anvisningsbeslut", "Beslut 2026-12-07.pdf", &beslut),
            ("godman", "godman.pdf", &god_man[..god_man.len() / 2]),
        ],
    );
    assert_eq!(status, 422, "{page}");
    let summary = page
        .split("class=\"error-summary\"")
        .nth(1)
        .and_then(|r| r.split("</div>").next())
        .unwrap_or_else(|| panic!("no list of problems:\n{page}"));
    for field in ["kommun", "arende", "godman"] {
        assert!(
            summary.contains(&format!("href=\"#{field}\"")),
            "{field} is not in the list:\n{summary}"
        );
        assert!(
            page.contains(&format!("id=\"{field}-fel\"")),
            "{field}: {page}"
        );
    }
    assert!(summary.contains("3 saker behöver rättas"), "{summary}");
    assert!(
        !page.contains("id=\"anvisningsbeslut-fel\""),
        "the good decision was refused"
    );
    assert!(
        page.contains("Vald och kontrollerad: <strong>Beslut 2026-12-07.pdf</strong>"),
        "{page}"
    );
    let kept = hidden(&page, "behall").expect("the kept files' id");

    // Fixed, without choosing the decision again: the review names both files and opens each.
    let (status, _, page) = client.upload(
        &[
            ("csrf", &token),
            ("behall", &kept),
            ("kommun", "Umeå"),
            ("arende", common::CASE),
        ],
        &[("godman", "godman.pdf", &god_man)],
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Granska och skicka"), "{page}");
    for name in ["Beslut 2026-12-07.pdf", "godman.pdf"] {
        assert!(
            page.contains(name),
            "the review does not name {name}:\n{page}"
        );
    }
    let draft = hidden(&page, "utkast").expect("the draft");
    let path = format!("/expedition/skicka/utkast/{draft}/anvisningsbeslut.pdf");
    assert!(
        page.contains(&path),
        "no link to open the decision:\n{page}"
    );
    let (status, head, pdf) =
        request_raw(&rig.served.addr, &client.tls, "GET", &path, &[], b"").expect("the PDF");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-type: application/pdf"), "{head}");
    assert_eq!(pdf, beslut, "the decision to open is not the one chosen");
    // The kept files were used once: their id makes no second draft.
    let (_, _, again) = client.upload(
        &[
            ("csrf", &token),
            ("behall", &kept),
            ("kommun", "Umeå"),
            ("arende", common::CASE),
        ],
        &[],
    );
    assert!(again.contains("id=\"anvisningsbeslut-fel\""), "{again}");
    // A god man notice kept by mistake can be left out without starting over.
    let (status, _, page) = client.upload(
        &[("csrf", &token), ("kommun", "Umeå"), ("arende", "fel")],
        &[
            ("anvisningsbeslut", "beslut.pdf", &beslut),
            ("godman", "fel-godman.pdf", &god_man),
        ],
    );
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("name=\"utan-godman\""), "{page}");
    let both = hidden(&page, "behall").expect("both kept");
    let (status, _, page) = client.upload(
        &[
            ("csrf", &token),
            ("behall", &both),
            ("kommun", "Umeå"),
            ("arende", common::CASE),
            ("utan-godman", "ja"),
        ],
        &[],
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("beslut.pdf"), "{page}");
    assert!(
        !page.contains("fel-godman.pdf"),
        "the notice left out went along: {page}"
    );
    // A card without a caseworker's grant cannot open the draft's documents (another
    // caseworker's is refused by the draft's owner: `intake::draft`'s tests).
    let other = connector(&rig.world.ca.pem, Some(&rig.served.person));
    let (status, _, body) =
        request_raw(&rig.served.addr, &other, "GET", &path, &[], b"").expect("answer");
    assert_ne!(status, 200, "another card opened the draft");
    assert!(
        !body.windows(8).any(|w| w == b"%PDF-1.7"),
        "the PDF went to another card"
    );
}

#[test]
fn a_compromised_portal_can_send_no_decision_list_no_case_and_cancel_no_job() {
    let rig = desk_rig(|_| {});
    let id = rig.env.submit("2480", None);
    let staff = format!(
        r#"{{"hsa_id":"{STAFF_HSA}","name":"{STAFF_NAME}","issuer":"CN={}"}}"#,
        common::portal::PERSON_CA
    );
    let line = |principal: String, command: &str| {
        format!(r#"{{"protocol":4,"principal":{principal},"command":{command}}}"#)
    };
    // A decision as the desk sends it (refused before its PDF is looked at).
    let pdf = openssl::base64::encode_block(b"%PDF-1.7 forged");
    let draft = format!(
        r#"{{"command":"DeskDraft","to":"2480","case":"{}","copy_to":[],"documents":[{{"kind":"anvisningsbeslut","bytes":"{pdf}","name":"beslut.pdf"}}]}}"#,
        common::CASE
    );
    let list = r#"{"command":"DeskJobs","search":"","filter":"all","limit":10}"#;
    let cancel = format!(r#"{{"command":"Cancel","id":"{id}","reason":"prov"}}"#);
    // The portal's process, speaking its own socket: as a member of staff (the caseworker's
    // HSA-id, read off any card), or as a person with that HSA-id. Refused every time: the
    // portal's door takes no staff and no desk command.
    for principal in [
        format!(r#"{{"staff":{staff}}}"#),
        format!(r#"{{"person":{staff}}}"#),
    ] {
        for command in [draft.as_str(), list, cancel.as_str()] {
            let answer = speak_as(
                Door::Portal,
                &rig.portal.socket,
                &line(principal.clone(), command),
            )
            .expect("the portal reaches its own socket");
            assert!(
                answer.contains("not-permitted"),
                "the portal's socket answered {principal} {command}: {answer}"
            );
        }
    }
    // The desk's socket is not the portal user's to reach: its folder is the desk's group's,
    // and the daemon answers there only the desk's user.
    let reached = speak_as(
        Door::Portal,
        &rig.served.socket,
        &line(format!(r#"{{"staff":{staff}}}"#), list),
    );
    assert!(
        reached
            .as_ref()
            .is_err_and(|e| e.contains("Permission denied")),
        "the portal's user reached the desk's socket: {reached:?}"
    );
    let root = std::os::unix::net::UnixStream::connect(&rig.served.socket).and_then(|mut s| {
        use std::io::{Read, Write};
        s.write_all(format!("{}\n", line(format!(r#"{{"staff":{staff}}}"#), list)).as_bytes())?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer)
    });
    assert!(
        root.as_deref().unwrap_or("").is_empty(),
        "another user than the desk's was answered: {root:?}"
    );
    assert_ne!(rig.env.status(&id)["job"]["state"], "cancelled");
    // The desk's own user, for its signed-in caseworker, is answered.
    let desk = speak_as(
        Door::Desk,
        &rig.served.socket,
        &line(format!(r#"{{"staff":{staff}}}"#), list),
    )
    .expect("the desk reaches its socket");
    assert!(desk.contains(&id), "{desk}");
}
