//! Every change of where a municipality's decisions go is announced: to the previously proven
//! address and to every contact person, by a notice the agency signs, saying what changed
//! (before → after), when, by whom, and whom to phone if it was not them — and to the agency
//! by an alert. The person who makes the change cannot turn it off: the notice is queued in
//! the same store transaction as the change ([`crate::store::Store::register_notifying`]).

use jiff::Timestamp;

use crate::config::SenderSettings;
use crate::job::Kommunkod;
use crate::registry::Registered;
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

fn postal(r: Option<&crate::registry::PostalAddress>) -> String {
    r.map_or_else(|| "–".to_string(), |a| a.lines().join(", "))
}

fn certificate(r: &Registered) -> String {
    r.smime_cert.as_ref().map_or_else(
        || "–".to_string(),
        |c| {
            format!(
                "{} (SHA-256 {}…)",
                c.subject,
                &c.sha256[..16.min(c.sha256.len())]
            )
        },
    )
}

/// What changed of where decisions go, between two registrations.
pub(super) fn routing_changes(before: &Registered, after: &Registered) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut line = |what, b: String, a: String| {
        if b != a {
            lines.push(Line {
                what,
                before: b,
                after: a,
            });
        }
    };
    line(
        "Adress för beslut",
        shown(before.decision_email.as_deref()),
        shown(after.decision_email.as_deref()),
    );
    // The official address is where decisions go when no specific one is registered.
    if before.decision_email.is_none() || after.decision_email.is_none() {
        line(
            "Kommunens officiella e-postadress (används för beslut)",
            shown(before.official_email.as_deref()),
            shown(after.official_email.as_deref()),
        );
    }
    line(
        "Bevisad adress som tar emot beslut",
        shown(before.active_address.as_deref()),
        shown(after.active_address.as_deref()),
    );
    line(
        "Adress som väntar på Migrationsverkets godkännande",
        shown(
            before
                .awaiting_approval
                .as_ref()
                .and_then(|a| a.address.as_deref()),
        ),
        shown(
            after
                .awaiting_approval
                .as_ref()
                .and_then(|a| a.address.as_deref()),
        ),
    );
    line(
        "S/MIME-certifikat som beslut krypteras till",
        certificate(before),
        certificate(after),
    );
    line(
        "Postadress för brev",
        postal(before.postal_address.as_ref()),
        postal(after.postal_address.as_ref()),
    );
    line(
        "Postadress som väntar på Migrationsverkets godkännande",
        postal(
            before
                .awaiting_approval
                .as_ref()
                .and_then(|a| a.postal_address.as_ref()),
        ),
        postal(
            after
                .awaiting_approval
                .as_ref()
                .and_then(|a| a.postal_address.as_ref()),
        ),
    );
    lines
}

/// Who made a change, in Swedish.
fn who(principal: &Principal) -> String {
    match principal {
        Principal::Person(p) => format!(
            "{} (HSA-id {}) på Migrationsverkets webbsida för kommuner",
            p.name, p.hsa_id
        ),
        Principal::Operator(name) => format!("Migrationsverket (handläggare {name})"),
        Principal::Portal => "Migrationsverkets webbsida för kommuner".into(),
    }
}

/// Who is told: the previously proven address and the contact persons the municipality had
/// before the change (so whoever replaces them cannot silence the notice).
fn recipients(before: &Registered) -> Vec<String> {
    let mut to: Vec<String> = Vec::new();
    let candidates = before
        .active_address
        .iter()
        .cloned()
        .chain(before.contacts.iter().map(|c| c.email.clone()));
    for address in candidates {
        if !to.iter().any(|t| t.eq_ignore_ascii_case(&address)) {
            to.push(address);
        }
    }
    to
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
    let to = recipients(before);
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
         Migrationsverket. Det går till kommunens tidigare bevisade adress och till dess \
         kontaktpersoner som de var före ändringen.\r\n",
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
    let to = recipients(registered);
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
