//! Where a municipality's decisions go, judged by the outcome and not by the field typed:
//! steps that each look harmless must each be announced to the address decisions went to and
//! to the contact people, naming where decisions go now; an import and an operator pass the
//! same gate; an approval puts to use only what the operator reviewed. Through the real portal
//! over TLS (the portal as its own process and user), the real SMTP test server's mailbox, and
//! `openssl cms -verify` on every notice.

mod common;

use std::time::Duration;

use common::mail::UMEA;
use common::portal::{portal, Portal};
use common::registration::{
    agency_sets_and_proves, alert_files, approval_digest, change_form, code_sent_to, messages_to,
    post, proven_umea, wait_for_notice, CONTACT,
};

const DECISIONS: &str = "beslut@umea-test.example";
const MALLORY: &str = "mallory@umea-test.example";

/// Umeå with its decision address `beslut@` proven by the agency (and the official address
/// proven before it).
fn umea_with_a_decision_address(p: &Portal) {
    proven_umea(p);
    let env = &p.rig.env;
    agency_sets_and_proves(p, DECISIONS);
    let show = env.ok(&["municipality", "show", "2480"]);
    assert!(
        show.contains(&format!("route now        e-mail to {DECISIONS}")),
        "{show}"
    );
}

#[test]
fn a_redirect_in_three_quiet_steps_is_announced_at_each_step_naming_the_new_address() {
    let p = portal();
    umea_with_a_decision_address(&p);

    // 1. The official address — not in use while a decision address is — becomes a mailbox
    //    of the person's own, inside the municipality's domain.
    assert_eq!(
        change_form(&p, &[("email", MALLORY), ("decision_email", DECISIONS)]),
        303
    );
    for told in [DECISIONS, CONTACT] {
        wait_for_notice(
            &p,
            told,
            &[&format!(
                "Kommunens officiella e-postadress (används för beslut när ingen annan adress \
                 finns):\n  före:  {UMEA}\n  efter: {MALLORY}"
            )],
        );
    }

    // 2. The decision address is emptied: the official one (Mallory's) waits for its code.
    assert_eq!(change_form(&p, &[("email", MALLORY)]), 303);
    for told in [DECISIONS, CONTACT] {
        wait_for_notice(
            &p,
            told,
            &[&format!(
                "Adress som väntar på att bekräftas med kod:\n  före:  –\n  efter: {MALLORY}"
            )],
        );
    }

    // 3. The code goes to Mallory's own mailbox and is typed in: decisions go there now,
    //    and the address they went to and the contact are told so, by name.
    let code = code_sent_to(&p, MALLORY);
    assert_eq!(
        post(&p, "/kommun/2480/bekrafta", &[("kod", &code)]).status,
        303
    );
    for told in [DECISIONS, CONTACT] {
        let notice = wait_for_notice(
            &p,
            told,
            &[&format!(
                "Bekräftad adress som beslut skickas till nu:\n  före:  {DECISIONS}\n  efter: \
                 {MALLORY}"
            )],
        );
        assert!(notice.contains("Test Teknikersson"), "{notice}");
        assert!(notice.contains("ring Migrationsverket"), "{notice}");
    }
    let alerts = alert_files(&p, "registry-2480-registration-changed");
    assert!(!alerts.is_empty(), "the agency is alerted");

    // The next decision goes to the new address — announced, not silent.
    let id = p.rig.env.submit("2480", None);
    assert_eq!(p.rig.env.wait_receipt(&id)["state"], "delivered");
    assert_eq!(
        p.rig.env.status(&id)["job"]["recipients"][0]["email"]["accepted"]["address"],
        MALLORY
    );

    // 4. The phone and the contact people kurir calls when a decision is not opened are
    //    replaced: the old contact is told, naming the new one.
    assert_eq!(
        change_form(
            &p,
            &[
                ("email", MALLORY),
                ("phone", "070-000 00 00"),
                ("contacts", &format!("Mallory Ek, 070-000 00 01, {MALLORY}")),
            ]
        ),
        303
    );
    let notice = wait_for_notice(
        &p,
        CONTACT,
        &["Kontaktpersoner som Migrationsverket ringer:", "Mallory Ek"],
    );
    assert!(
        notice.contains("Telefonnummer som Migrationsverket ringer:\n  före:  090-16 10 00\n  efter: 070-000 00 00"),
        "{notice}"
    );
}

#[test]
fn an_import_and_an_operator_pass_the_same_gate_and_an_address_outside_the_domains_waits() {
    let p = portal();
    proven_umea(&p);
    let env = &p.rig.env;

    // An import that changes the official address: announced to the proven address and the
    // contact, like any other change.
    let csv = env.path().join("registrations.csv");
    std::fs::write(
        &csv,
        format!("kommunkod,email\n2480,{MALLORY}\n").replace("\n", "\r\n"),
    )
    .expect("csv");
    env.ok(&[
        "municipality",
        "import",
        csv.to_str().expect("path"),
        "--operator",
        "agency",
    ]);
    for told in [UMEA, CONTACT] {
        wait_for_notice(
            &p,
            told,
            &[&format!(
                "Adress som väntar på att bekräftas med kod:\n  före:  –\n  efter: {MALLORY}"
            )],
        );
    }

    // An operator's address outside the municipality's domains, proven by its code, waits
    // for an approval like a person's: decisions keep going to the proven address.
    let outside = "beslut@elsewhere.example";
    agency_sets_and_proves(&p, outside);
    let show = env.ok(&["municipality", "show", "2480"]);
    assert!(
        show.contains(&format!("route now        e-mail to {UMEA}")),
        "{show}"
    );
    assert!(
        show.contains(&format!("WAITS FOR APPROVAL  address {outside}")),
        "{show}"
    );
    // The one who asked cannot approve it.
    let refused = env.run(&[
        "municipality",
        "approve",
        "2480",
        "--digest",
        &approval_digest(&p),
        "--operator",
        "agency",
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("another operator must approve it"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let id = env.submit("2480", None);
    assert_eq!(env.wait_receipt(&id)["state"], "delivered");
    assert_eq!(
        env.status(&id)["job"]["recipients"][0]["email"]["accepted"]["address"],
        UMEA
    );
    assert_eq!(
        messages_to(&p, outside).len(),
        1,
        "only the code went there"
    );
}

#[test]
fn an_approval_puts_to_use_only_what_the_operator_reviewed() {
    let p = portal();
    proven_umea(&p);
    let env = &p.rig.env;

    // A person asks for a new postal address: it waits; the operator reviews it.
    assert_eq!(
        change_form(&p, &[("postal_address", "Box 1\n901 84 Umeå")]),
        303
    );
    let reviewed = approval_digest(&p);

    // Before the approval runs, the person proves an address outside the domains: it joins
    // what waits.
    let outside = "beslut@elsewhere.example";
    assert_eq!(
        change_form(
            &p,
            &[
                ("decision_email", outside),
                ("postal_address", "Box 1\n901 84 Umeå")
            ]
        ),
        303
    );
    let code = code_sent_to(&p, outside);
    assert_eq!(
        post(&p, "/kommun/2480/bekrafta", &[("kod", &code)]).status,
        303
    );
    common::wait_for("the address to wait", Duration::from_secs(10), || {
        env.ok(&["municipality", "show", "2480"])
            .contains(&format!("WAITS FOR APPROVAL  address {outside}"))
    });

    // The approval of what was reviewed is refused: nothing is put to use.
    let out = env.run(&[
        "municipality",
        "approve",
        "2480",
        "--digest",
        &reviewed,
        "--operator",
        "agency",
    ]);
    assert!(
        !out.status.success(),
        "an approval of what changed went through"
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("is not what you reviewed"), "{said}");
    let show = env.ok(&["municipality", "show", "2480"]);
    assert!(
        show.contains(&format!("route now        e-mail to {UMEA}")),
        "{show}"
    );

    // Approving what `show` lists now, by its digest, puts both to use, named in the history.
    let now = approval_digest(&p);
    assert_ne!(now, reviewed);
    env.ok(&[
        "municipality",
        "approve",
        "2480",
        "--digest",
        &now,
        "--operator",
        "agency",
    ]);
    let show = env.ok(&["municipality", "show", "2480"]);
    assert!(
        show.contains(&format!("route now        e-mail to {outside}")),
        "{show}"
    );
    let history = env.ok(&["municipality", "history", "2480"]);
    assert!(
        history.contains(&format!(
            "approved what waited for approval (digest {now}): address {outside}; postal address Box 1, 901 84 Umeå"
        )),
        "{history}"
    );
}
