//! A municipality's registration driven as its people and the agency drive it — through the
//! real portal over TLS and the command line — and the signed messages it sends (codes,
//! notices of changes) read back from the real SMTP test server's mailbox.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::mail::{verify, UMEA};
use super::portal::{connector, csrf, form, request, Portal};

/// Umeå's contact person, as [`proven_umea`] registers her.
pub const CONTACT: &str = "anna@umea-test.example";

/// The messages the SMTP test server took for `address`, oldest first.
pub fn messages_to(p: &Portal, address: &str) -> Vec<PathBuf> {
    let dir = p.rig.env.path().join("peer/mail");
    p.rig
        .peer
        .log()
        .lines()
        .filter_map(|l| l.strip_prefix("DATA "))
        .filter_map(|rest| rest.split_once(' '))
        .filter(|(_, to)| to.split(',').any(|t| t.eq_ignore_ascii_case(address)))
        .filter_map(|(n, _)| n.parse::<u32>().ok())
        .map(|n| dir.join(format!("{n:05}.eml")))
        .collect()
}

/// The text of a message the agency signed (checked with `openssl cms -verify`).
pub fn signed_text(p: &Portal, message: &Path) -> String {
    let raw = std::fs::read(message).expect("message");
    let (inner, _) = verify(&raw, &p.rig.ca.pem, p.rig.env.path());
    let text = super::mail::parse(&inner)
        .body_text(0)
        .map(|t| t.to_string())
        .unwrap_or_default();
    text
}

/// Waits for a signed message to `address` whose text holds `needle`; returns its text.
pub fn wait_for_message(p: &Portal, address: &str, needle: &str) -> String {
    let mut found = String::new();
    super::wait_for(
        &format!("a message to {address} saying {needle:?}"),
        Duration::from_secs(60),
        || {
            found = messages_to(p, address)
                .iter()
                .map(|m| signed_text(p, m))
                .find(|t| t.contains(needle))
                .unwrap_or_default();
            !found.is_empty()
        },
    );
    found
}

/// The newest verification code sent to `address`.
pub fn code_sent_to(p: &Portal, address: &str) -> String {
    let text = wait_for_message(p, address, "Verifieringskod: ");
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Verifieringskod: "))
        .expect("a code line")
        .trim()
        .to_string()
}

/// Umeå registered by the agency with an official address in its own domain, a contact
/// person, and the address proven.
pub fn proven_umea(p: &Portal) {
    let env = &p.rig.env;
    env.ok(&[
        "municipality",
        "set",
        "2480",
        "--email",
        UMEA,
        "--phone",
        "090-16 10 00",
        "--contact",
        &format!("Anna Berg, 090-16 10 01, {CONTACT}"),
        "--operator",
        "agency",
    ]);
    agency_proves(p, UMEA);
}

/// The agency (operator `agency`) sends Umeå's pending `address` its code, reads it from the
/// mailbox and confirms it.
pub fn agency_proves(p: &Portal, address: &str) {
    let env = &p.rig.env;
    env.ok(&["municipality", "verify", "2480", "--operator", "agency"]);
    let code = code_sent_to(p, address);
    env.ok(&[
        "municipality",
        "confirm",
        "2480",
        &code,
        "--operator",
        "agency",
    ]);
}

/// The agency (operator `agency`) sets Umeå's decision address and proves it.
pub fn agency_sets_and_proves(p: &Portal, address: &str) {
    p.rig.env.ok(&[
        "municipality",
        "set",
        "2480",
        "--decision-email",
        address,
        "--operator",
        "agency",
    ]);
    agency_proves(p, address);
}

/// A post of the municipality page's change form with these values.
pub fn change(p: &Portal, decision_email: &str, postal: &str) -> u16 {
    let me = connector(&p.rig.ca.pem, Some(&p.person));
    let page = request(&p.addr, &me, "GET", "/kommun/2480", &[], "").expect("page");
    let token = csrf(&page.body);
    let reply = request(
        &p.addr,
        &me,
        "POST",
        "/kommun/2480/andra",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form(&[
            ("csrf", &token),
            ("email", UMEA),
            ("decision_email", decision_email),
            ("phone", "090-16 10 00"),
            ("contacts", &format!("Anna Berg, 090-16 10 01, {CONTACT}")),
            ("postal_address", postal),
        ]),
    )
    .expect("answer");
    reply.status
}

pub fn post(p: &Portal, path: &str, fields: &[(&str, &str)]) -> super::portal::Reply {
    let me = connector(&p.rig.ca.pem, Some(&p.person));
    let page = request(&p.addr, &me, "GET", "/kommun/2480", &[], "").expect("page");
    let token = csrf(&page.body);
    let mut all = vec![("csrf", token.as_str())];
    all.extend_from_slice(fields);
    request(
        &p.addr,
        &me,
        "POST",
        path,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form(&all),
    )
    .expect("answer")
}

/// The names of the alert files in the spool whose names begin with `prefix`.
pub fn alert_files(p: &Portal, prefix: &str) -> Vec<String> {
    std::fs::read_dir(p.rig.env.spool().join("alerts"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// The digest `kurir municipality show 2480` prints beside what waits for approval.
pub fn approval_digest(p: &Portal) -> String {
    let show = p.rig.env.ok(&["municipality", "show", "2480"]);
    show.lines()
        .find_map(|l| l.split_once("--digest ").map(|(_, d)| d.trim().to_string()))
        .unwrap_or_else(|| panic!("no digest in:\n{show}"))
}

/// A post of the municipality page's change form: every field as the page shows it now
/// ([`proven_umea`]'s values), with `fields` in place of those they name.
pub fn change_form(p: &Portal, fields: &[(&str, &str)]) -> u16 {
    let contacts = format!("Anna Berg, 090-16 10 01, {CONTACT}");
    let mut values = vec![
        ("email", UMEA),
        ("decision_email", ""),
        ("phone", "090-16 10 00"),
        ("contacts", contacts.as_str()),
        ("postal_address", ""),
    ];
    for (name, value) in fields {
        match values.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => values.push((name, value)),
        }
    }
    post(p, "/kommun/2480/andra", &values).status
}

/// The signed messages to `address` whose text (lines ending in LF) holds every one of
/// `needles`, waiting up to a minute for one; returns its text.
pub fn wait_for_notice(p: &Portal, address: &str, needles: &[&str]) -> String {
    let mut found = String::new();
    super::wait_for(
        &format!("a message to {address} saying {needles:?}"),
        Duration::from_secs(60),
        || {
            found = messages_to(p, address)
                .iter()
                .map(|m| signed_text(p, m).replace("\r\n", "\n"))
                .find(|t| needles.iter().all(|n| t.contains(n)))
                .unwrap_or_default();
            !found.is_empty()
        },
    );
    found
}
