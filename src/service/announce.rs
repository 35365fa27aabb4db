//! Every change of where a municipality's decisions go is announced: to the previously proven
//! address and to every contact person, by a notice the agency signs, saying what changed
//! (before → after), when, by whom, and whom to phone if it was not them — and to the agency
//! by an alert. The person who makes the change cannot turn it off: the notice is queued in
//! the same store transaction as the change ([`crate::store::Store::register_notifying`]).

use jiff::Timestamp;

use crate::config::SenderSettings;
use crate::job::Kommunkod;
use crate::registry::{DecisionRoute, Registered};
use crate::store::Notice;

use super::Principal;

/// One changed fact, in Swedish: what, before, after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Line {
    what: &'static str,
    before: String,
    after: String,
}

fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "–".to_string(), str::to_string)
}

fn lines_of(value: Option<&Vec<String>>) -> String {
    value.map_or_else(|| "–".to_string(), |lines| lines.join(", "))
}

fn listed(items: Vec<String>) -> String {
    if items.is_empty() {
        "–".to_string()
    } else {
        items.join("; ")
    }
}

/// One part of a route, as the notice shows it.
type RoutePart = fn(&DecisionRoute) -> String;

/// What changed of where decisions go, between two registrations: every part of the
/// [`crate::registry::DecisionRoute`] that differs, in Swedish, whichever field was typed.
pub(super) fn routing_changes(before: &Registered, after: &Registered) -> Vec<Line> {
    let (b, a) = (before.decision_route(), after.decision_route());
    let parts: [(&'static str, RoutePart); 14] = [
        ("Bekräftad adress som beslut skickas till nu", |r| {
            shown(r.address.as_deref())
        }),
        ("Säker anslutning", |r| {
            if r.secure_connection { "ja" } else { "nej" }.to_string()
        }),
        ("S/MIME-certifikat som beslut krypteras till", |r| {
            r.certificate.as_ref().map_or_else(
                || "–".to_string(),
                |(subject, sha256)| {
                    format!("{subject} (SHA-256 {}…)", &sha256[..16.min(sha256.len())])
                },
            )
        }),
        (
            "Fäst certifikat för kommunens e-postserver (SHA-256)",
            |r| shown(r.tls_pin.as_deref()),
        ),
        ("Postadress för brev", |r| {
            lines_of(r.postal_address.as_ref())
        }),
        ("Telefonnummer som Migrationsverket ringer", |r| {
            shown(r.phone.as_deref())
        }),
        ("Kontaktpersoner som Migrationsverket ringer", |r| {
            listed(
                r.contacts
                    .iter()
                    .map(|(name, phone, email)| format!("{name}, {phone}, {email}"))
                    .collect(),
            )
        }),
        (
            "Adress för beslut (används när den är bekräftad)",
            |r| shown(r.requested.as_deref()),
        ),
        (
            "Kommunens officiella e-postadress (används för beslut när ingen annan adress finns)",
            |r| shown(r.official.as_deref()),
        ),
        ("Adress som väntar på att bekräftas med kod", |r| {
            shown(r.awaiting_proof.as_deref())
        }),
        (
            "Adress som väntar på Migrationsverkets godkännande",
            |r| shown(r.awaiting_approval.as_deref()),
        ),
        (
            "Postadress som väntar på Migrationsverkets godkännande",
            |r| lines_of(r.postal_awaiting_approval.as_ref()),
        ),
        ("Kommunens e-postdomäner", |r| listed(r.domains.clone())),
        ("Personer som får ändra registreringen", |r| {
            listed(
                r.granted
                    .iter()
                    .map(|(hsa, name, issuer)| {
                        let who = if name.is_empty() {
                            hsa.clone()
                        } else {
                            format!("{name} ({hsa})")
                        };
                        if issuer.is_empty() {
                            who
                        } else {
                            format!("{who}, kort från {issuer}")
                        }
                    })
                    .collect(),
            )
        }),
    ];
    parts
        .iter()
        .filter_map(|(what, show)| {
            let (before, after) = (show(&b), show(&a));
            (before != after).then_some(Line {
                what,
                before,
                after,
            })
        })
        .collect()
}

/// Who made a change, in Swedish.
fn who(principal: &Principal) -> String {
    match principal {
        Principal::Person(p) => format!(
            "{} (HSA-id {}) på Migrationsverkets webbsida för kommuner",
            p.name, p.hsa_id
        ),
        Principal::Staff(p) => format!("{} (HSA-id {}) på Migrationsverket", p.name, p.hsa_id),
        Principal::Operator(name) => format!("Migrationsverket (handläggare {name})"),
        Principal::Portal => "Migrationsverkets webbsida för kommuner".into(),
        Principal::Desk => "Migrationsverkets expedition".into(),
    }
}

/// A Swedish date and time, Stockholm time, to the minute.
pub(super) fn swedish_time(at: Timestamp) -> String {
    match jiff::tz::TimeZone::get("Europe/Stockholm") {
        Ok(tz) => at.to_zoned(tz).strftime("%Y-%m-%d %H:%M").to_string(),
        Err(_) => at.to_string(),
    }
}

/// A change of a registration, as the service records it.
pub(super) struct Change<'a> {
    /// The municipality.
    pub(super) code: Kommunkod,
    /// Its name.
    pub(super) name: &'a str,
    /// The registration before.
    pub(super) before: &'a Registered,
    /// And after.
    pub(super) after: &'a Registered,
    /// Who made it.
    pub(super) principal: &'a Principal,
    /// When.
    pub(super) at: Timestamp,
}

/// The notice of `lines` to the municipality's people; `None` when there is nobody to tell.
pub(super) fn change_notice(
    change: &Change<'_>,
    lines: &[Line],
    sender: &SenderSettings,
) -> Option<Notice> {
    let Change {
        code,
        name,
        before,
        after,
        principal,
        at,
    } = *change;
    let to = Registered::to_be_told(before, after);
    if to.is_empty() || lines.is_empty() {
        return None;
    }
    let mut body = format!(
        "Till {name} ({code})\r\n\r\nMigrationsverket har registrerat en ändring av vart beslut \
         om anvisning och anmälan om behov av god man till kommunen skickas.\r\n\r\n"
    );
    for l in lines {
        body.push_str(&format!(
            "{}:\r\n  före:  {}\r\n  efter: {}\r\n",
            l.what, l.before, l.after
        ));
    }
    body.push_str(&format!(
        "\r\nÄndrad: {} (svensk tid)\r\nAv: {}\r\n",
        swedish_time(at),
        who(principal)
    ));
    if after.awaiting_approval.is_some() {
        body.push_str(
            "\r\nEn ny adress utanför kommunens e-postdomäner, eller en ny postadress, används \
             först när Migrationsverket har godkänt den.\r\n",
        );
    }
    body.push_str(&format!(
        "\r\nOm ingen hos er gjorde ändringen: ring Migrationsverket, {}, på {} ({}), eller \
         skriv till {}, så att inga beslut skickas fel.\r\n\r\nMeddelandet är signerat av \
         Migrationsverket. Det går till den adress som beslut skickades till före ändringen \
         och till kommunens kontaktpersoner, både de tidigare och de nya.\r\n",
        sender.unit, sender.phone, sender.phone_hours, sender.email
    ));
    Some(Notice {
        kommunkod: code,
        to,
        subject: format!("Ändring av vart beslut om anvisning skickas – {name}"),
        body,
        at,
        sent: Vec::new(),
        attempts: 0,
        next_attempt: at,
        last_error: None,
    })
}

/// The notice that the registered certificate expires in `days` days or fewer.
pub(super) fn expiry_notice(
    code: Kommunkod,
    name: &str,
    registered: &Registered,
    days: u32,
    sender: &SenderSettings,
    at: Timestamp,
) -> Option<Notice> {
    let cert = registered.smime_cert.as_ref()?;
    let to = Registered::to_be_told(registered, registered);
    if to.is_empty() {
        return None;
    }
    let body = format!(
        "Till {name} ({code})\r\n\r\nDet S/MIME-certifikat som Migrationsverket krypterar beslut \
         om anvisning till er med slutar gälla inom {days} dagar: {} (gäller till {}).\r\n\r\n\
         Skicka det nya certifikatet till Migrationsverket, eller ladda upp det på webbsidan för \
         kommuner, innan det gamla slutar gälla.\r\n\r\nFrågor: Migrationsverket, {}, {} ({}), \
         {}.\r\n",
        cert.subject, cert.not_after, sender.unit, sender.phone, sender.phone_hours, sender.email
    );
    Some(Notice {
        kommunkod: code,
        to,
        subject: format!("S/MIME-certifikatet slutar snart gälla – {name}"),
        body,
        at,
        sent: Vec::new(),
        attempts: 0,
        next_attempt: at,
        last_error: None,
    })
}

/// The lines in English, for the agency's alert.
pub(super) fn alert_text(lines: &[Line]) -> String {
    lines
        .iter()
        .map(|l| format!("{}: {} -> {}", l.what, l.before, l.after))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Contact, PendingAddress};

    const PROVEN: &str = "beslut@umea.example";
    const OFFICIAL: &str = "registrator@umea.example";
    const MALLORY: &str = "mallory@umea.example";

    fn contact(name: &str, email: &str) -> Contact {
        Contact {
            name: name.into(),
            phone: "090-16 10 01".into(),
            email: email.into(),
        }
    }

    fn registered() -> Registered {
        Registered {
            official_email: Some(OFFICIAL.into()),
            decision_email: Some(PROVEN.into()),
            secure_connection: true,
            phone: Some("090-16 10 00".into()),
            contacts: vec![contact("Anna Berg", "anna@umea.example")],
            active_address: Some(PROVEN.into()),
            domains: vec!["umea.example".into()],
            ..Registered::default()
        }
    }

    fn line<'a>(lines: &'a [Line], what: &str) -> Option<&'a Line> {
        lines.iter().find(|l| l.what.starts_with(what))
    }

    #[test]
    fn each_step_of_a_quiet_redirect_changes_the_route_and_names_the_new_address() {
        let start = registered();
        // 1. The official address, not in use while a decision address is, becomes Mallory's.
        let mut step1 = start.clone();
        step1.official_email = Some(MALLORY.into());
        let lines = routing_changes(&start, &step1);
        let official = line(&lines, "Kommunens officiella").expect("announced");
        assert_eq!(
            (official.before.as_str(), official.after.as_str()),
            (OFFICIAL, MALLORY)
        );

        // 2. The decision address is emptied: the official one is heading to be proven.
        let mut step2 = step1.clone();
        step2.decision_email = None;
        step2.pending = Some(PendingAddress {
            address: MALLORY.into(),
            since: jiff::Timestamp::UNIX_EPOCH,
            code_sha256: None,
            code_mac: None,
            code_expires: None,
            failed_attempts: 0,
        });
        let lines = routing_changes(&step1, &step2);
        assert_eq!(
            line(&lines, "Adress som väntar på att bekräftas").map(|l| l.after.as_str()),
            Some(MALLORY)
        );
        assert_eq!(
            line(&lines, "Adress för beslut").map(|l| l.after.as_str()),
            Some(MALLORY)
        );

        // 3. Proving it moves the next decision there: announced, naming it.
        let mut step3 = step2.clone();
        step3.pending = None;
        step3.active_address = Some(MALLORY.into());
        let lines = routing_changes(&step2, &step3);
        let now = line(&lines, "Bekräftad adress").expect("announced");
        assert_eq!((now.before.as_str(), now.after.as_str()), (PROVEN, MALLORY));
    }

    #[test]
    fn the_phone_and_the_contacts_kurir_calls_are_part_of_the_route() {
        let start = registered();
        let mut changed = start.clone();
        changed.phone = Some("070-000 00 00".into());
        changed.contacts = vec![contact("Mallory", MALLORY)];
        let lines = routing_changes(&start, &changed);
        assert!(line(&lines, "Telefonnummer").is_some(), "{lines:?}");
        let contacts = line(&lines, "Kontaktpersoner").expect("announced");
        assert!(contacts.before.contains("anna@umea.example"));
        assert!(contacts.after.contains(MALLORY));
        // The old contact is told, and the new one too.
        let told = Registered::to_be_told(&start, &changed);
        assert_eq!(told, vec![PROVEN, "anna@umea.example", MALLORY]);
    }

    #[test]
    fn emptying_the_registration_first_does_not_leave_the_next_step_unannounced() {
        // Step 1: everything emptied at once (announced: "→ –").
        let start = registered();
        let mut emptied = Registered {
            domains: start.domains.clone(),
            secure_connection: true,
            ..Registered::default()
        };
        emptied.remember_who_knows(&start);
        assert_eq!(
            Registered::to_be_told(&start, &emptied),
            vec![PROVEN, "anna@umea.example"]
        );
        // Step 2: a new address set: nobody knows the registration now, so the people who
        // had it last are told.
        let mut set = emptied.clone();
        set.decision_email = Some(MALLORY.into());
        set.remember_who_knows(&emptied);
        assert!(!routing_changes(&emptied, &set).is_empty());
        assert_eq!(
            Registered::to_be_told(&emptied, &set),
            vec![PROVEN, "anna@umea.example"]
        );
        // Step 3: proven: still told.
        let mut proven = set.clone();
        proven.active_address = Some(MALLORY.into());
        assert_eq!(
            Registered::to_be_told(&set, &proven),
            vec![PROVEN, "anna@umea.example"]
        );
    }

    #[test]
    fn what_does_not_move_decisions_is_not_announced() {
        let start = registered();
        let mut counted = start.clone();
        counted.codes_sent.push(jiff::Timestamp::UNIX_EPOCH);
        assert!(routing_changes(&start, &counted).is_empty());
        assert!(routing_changes(&start, &start.clone()).is_empty());
    }
}
