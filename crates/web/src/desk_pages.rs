//! The dispatch desk's pages (Bosättningsenheten): send a decision, the recent jobs with their
//! proof, one job's page, the calls to make, and the receipt for the case file. Server-rendered
//! HTML in Swedish, no JavaScript, every field labelled and every error at its field.

use jiff::Timestamp;
use maud::{html, Markup};

use super::pages::{layout, Area, Frame};
use super::words;
use kurir_protocol::registry::route::Route;
use kurir_protocol::reply::{DeskJob, DeskRow, DraftPreview, OpenAlert, ProofChain};
use kurir_protocol::state::Channel;

/// What the desk's pages need besides the frame: whether the person may send decisions.
#[derive(Clone, Copy)]
pub struct Desk {
    /// A caseworker (handläggare): sends decisions.
    pub sends: bool,
    /// Operations (drift): holds and releases.
    pub holds: bool,
}

/// A time as people read it: Swedish local time to the minute.
pub fn when(at: Timestamp) -> String {
    let zone = jiff::tz::TimeZone::get("Europe/Stockholm").unwrap_or(jiff::tz::TimeZone::UTC);
    at.to_zoned(zone).strftime("%Y-%m-%d %H:%M").to_string()
}

/// Working time as hours and minutes.
pub fn working(seconds: i64) -> String {
    let minutes = seconds.max(0) / 60;
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, m) => format!("{h} h {m} min"),
    }
}

fn page(title: &str, desk: Desk, frame: &Frame<'_>, body: Markup) -> Markup {
    layout(title, Area::Desk { sends: desk.sends }, Some(frame), body)
}

fn csrf(frame: &Frame<'_>) -> Markup {
    html! { input type="hidden" name="csrf" value=(frame.csrf); }
}

/// The send form's values, as typed.
#[derive(Default, Clone)]
pub struct SendFields {
    /// The assigned municipality, as typed (name or kommunkod).
    pub kommun: String,
    /// The case number.
    pub arende: String,
    /// The copy's municipality, as typed.
    pub kopia: String,
}

/// An error to show, and the field it concerns.
pub struct FieldError {
    /// The field's id.
    pub field: &'static str,
    /// What is wrong, in Swedish.
    pub text: String,
}

fn described(error: Option<&FieldError>, id: &str) -> (Option<String>, String) {
    match error {
        Some(e) if e.field == id => (Some(e.text.clone()), format!("{id}-hint {id}-fel")),
        _ => (None, format!("{id}-hint")),
    }
}

/// Skicka beslut: the form.
pub fn send_form(
    frame: &Frame<'_>,
    desk: Desk,
    municipalities: &[(String, String)],
    fields: &SendFields,
    error: Option<&FieldError>,
) -> Markup {
    let field = |id: &'static str, label: &str, hint: &str, value: &str, list: bool| {
        let (e, by) = described(error, id);
        html! {
            label for=(id) { (label) }
            p class="hint" id={ (id) "-hint" } { (hint) }
            @if let Some(e) = &e { p class="error" id={ (id) "-fel" } { "Fel: " (e) } }
            input type="text" id=(id) name=(id) value=(value) aria-describedby=(by)
                list=[list.then_some("kommuner")] autocomplete="off"
                aria-invalid=[e.as_ref().map(|_| "true")];
        }
    };
    let file = |id: &'static str, label: &str, hint: &str| {
        let (e, by) = described(error, id);
        html! {
            label for=(id) { (label) }
            p class="hint" id={ (id) "-hint" } { (hint) }
            @if let Some(e) = &e { p class="error" id={ (id) "-fel" } { "Fel: " (e) } }
            input type="file" id=(id) name=(id) accept=".pdf,application/pdf" aria-describedby=(by)
                aria-invalid=[e.as_ref().map(|_| "true")];
        }
    };
    page(
        "Skicka beslut",
        desk,
        frame,
        html! {
            h1 { "Skicka beslut" }
            @if error.is_some() {
                p class="error" role="alert" { "Något i formuläret behöver rättas; se fältet nedan." }
            }
            p { "Fyll i och ladda upp handlingarna. Innan något skickas visas hur beslutet går till kommunen." }
            form method="post" action="/expedition/skicka/granska" enctype="multipart/form-data" {
                (csrf(frame))
                datalist id="kommuner" {
                    @for (code, name) in municipalities { option value={ (name) " (" (code) ")" } {} }
                }
                (field("kommun", "Anvisningskommun", "Kommunens namn eller kommunkod, t.ex. Umeå eller 2480.", &fields.kommun, true))
                (field("arende", "Ärendenummer", "Skrivs som två siffror, bindestreck och sex siffror: xx-xxxxxx.", &fields.arende, false))
                (file("anvisningsbeslut", "Anvisningsbeslut (PDF)", "Beslutet om anvisning, som PDF."))
                (file("godman", "Anmälan om behov av god man (PDF, om den finns)", "Lämna tomt om ingen anmälan skickas."))
                (field("kopia", "Kopia till ankomstkommun (om någon)", "Lämna tomt om ingen kopia ska skickas.", &fields.kopia, true))
                button type="submit" { "Granska" }
            }
        },
    )
}

fn route_words(
    route: &Route,
    held: bool,
    checked: Option<(kurir_protocol::registry::connection::Verdict, Timestamp)>,
) -> String {
    let mut text = words::route(route);
    if let Some((verdict, at)) = checked {
        text.push_str(&format!(
            " Kommunens e-postserver kontrollerad {}: {}.",
            when(at),
            words::verdict(verdict).to_lowercase()
        ));
    }
    if held {
        text.push_str(" Kommunen är pausad av driften: beslutet väntar tills den släpps.");
    }
    text
}

/// The confirmation before anything is sent: where each recipient's documents go and why.
pub fn confirm(frame: &Frame<'_>, desk: Desk, preview: &DraftPreview) -> Markup {
    page(
        "Granska och skicka",
        desk,
        frame,
        html! {
            h1 { "Granska och skicka" }
            p { "Ärende " strong { (preview.case) } ". Så här går beslutet:" }
            table {
                caption { "Mottagare och väg" }
                thead { tr { th scope="col" { "Kommun" } th scope="col" { "Väg" } } }
                tbody {
                    @for (i, r) in preview.routes.iter().enumerate() {
                        tr {
                            td { (r.name) " (" (r.kommunkod) ")" @if i > 0 { " – kopia" } }
                            td { (route_words(&r.route, r.held, r.checked)) }
                        }
                    }
                }
            }
            table {
                caption { "Handlingar" }
                thead { tr { th scope="col" { "Handling" } th scope="col" { "Sidor" } th scope="col" { "SHA-256" } } }
                tbody {
                    @for d in &preview.documents {
                        tr { td { (words::document(d.kind)) } td { (d.pages) } td class="hash" { (d.sha256) } }
                    }
                }
            }
            form method="post" action="/expedition/skicka/bekrafta" {
                (csrf(frame))
                input type="hidden" name="utkast" value=(preview.draft.as_str());
                button type="submit" { "Skicka beslutet" }
            }
            p { a href="/expedition/skicka" { "Ändra (börja om)" } }
        },
    )
}

/// One recipient's proof in a few words: relay → server → read, or the letter.
fn chain(c: &ProofChain) -> Markup {
    let step = |done: Option<Timestamp>, label: &str| match done {
        Some(at) => html! { span class="ok" { "✓ " (label) " " (when(at)) } },
        None => html! { span class="wait" { "– " (label) } },
    };
    html! {
        @match c.channel {
            Some(Channel::Email) if c.batch.is_none() => {
                (step(c.accepted_at, "mottaget av reläet")) " → "
                @if c.relayed_at.is_some() && c.delivered_at.is_none() {
                    (step(c.relayed_at, "vidareskickat (svagare bevis)"))
                } @else {
                    (step(c.delivered_at, "levererat"))
                }
                " → " (step(c.read_at, "läst"))
            },
            Some(_) | None if c.batch.is_some() => {
                "brev i utskriftsbatch " (c.batch.as_deref().unwrap_or("")) " → "
                (step(c.printed_at, "utskrivet och postat"))
                @if let Some(r) = &c.rejected { " (e-post nekades: " span lang="en" { (r) } ")" }
            },
            _ => { span class="wait" { "inte skickat än" } },
        }
    }
}

/// Utskick: today's and recent jobs, searchable and filtered.
pub fn jobs(
    frame: &Frame<'_>,
    desk: Desk,
    rows: &[DeskRow],
    search: &str,
    filter: &str,
    notice: Option<&str>,
) -> Markup {
    let option = |value: &str, label: &str| {
        html! { option value=(value) selected[filter == value] { (label) } }
    };
    page(
        "Utskick",
        desk,
        frame,
        html! {
            h1 { "Utskick" }
            @if let Some(n) = notice { p class="notice" role="status" { (n) } }
            form method="get" action="/expedition/utskick" class="noprint" {
                label for="sok" { "Sök" }
                p class="hint" id="sok-hint" { "Ärendenummer, jobb-id, kommunkod eller kommunens namn." }
                input type="search" id="sok" name="sok" value=(search) aria-describedby="sok-hint";
                label for="visa" { "Visa" }
                select id="visa" name="visa" {
                    (option("alla", "Alla"))
                    (option("vantar-pa-bevis", "Väntar på bevis"))
                    (option("larm", "Med öppet larm"))
                    (option("post", "Med post"))
                }
                button type="submit" { "Sök" }
            }
            table {
                caption { "Senaste utskick, nyast först (" (rows.len()) ")" }
                thead { tr {
                    th scope="col" { "Mottaget" } th scope="col" { "Ärende" } th scope="col" { "Utskick" }
                    th scope="col" { "Tillstånd" } th scope="col" { "Bevis per mottagare" } th scope="col" { "Larm" }
                } }
                tbody {
                    @for r in rows {
                        tr {
                            td { (when(r.received_at)) }
                            td { (r.case.as_deref().unwrap_or("–")) }
                            td { a href={ "/expedition/utskick/" (r.job_id.as_str()) } { (r.job_id.as_str()) } }
                            td class="state" { (words::state(r.state)) }
                            td {
                                @for c in &r.chains {
                                    p { (c.name) ": " (chain(c)) }
                                }
                            }
                            td {
                                @for k in &r.open_alerts { p class="bad" { (kurir_protocol::kinds::rubrik(*k)) } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// Which actions a job's page offers, as (path word, label).
pub fn actions(desk: Desk) -> Vec<(&'static str, &'static str)> {
    let mut out = vec![
        ("skicka-igen", "Skicka igen nu"),
        ("med-post", "Skicka med post i stället"),
    ];
    if desk.holds {
        out.push(("pausa", "Pausa"));
        out.push(("fortsatt", "Låt fortsätta"));
    }
    out.push(("stoppa", "Stoppa utskicket"));
    out
}

/// The job's page.
pub fn job(frame: &Frame<'_>, desk: Desk, j: &DeskJob, notice: Option<(bool, String)>) -> Markup {
    let id = j.job.id.as_str();
    page(
        &format!("Utskick {id}"),
        desk,
        frame,
        html! {
            h1 { "Utskick " (id) }
            @if let Some((ok, text)) = &notice {
                @if *ok { p class="notice" role="status" { (text) } } @else { p class="error" role="alert" { (text) } }
            }
            p { "Ärende " strong { (j.case.as_deref().unwrap_or("(uppgiften är gallrad)")) } ". Tillstånd: " span class="state" { (words::state(j.job.state)) } "." }
            p class="actions noprint" {
                a href={ "/expedition/utskick/" (id) "/kvitto" } { "Kvitto för akten" }
                a href={ "/expedition/utskick/" (id) "/kvitto.pdf" } { "Kvittot som PDF" }
            }
            @if !j.open_alerts.is_empty() {
                section aria-labelledby="rubrik-larm" {
                    h2 id="rubrik-larm" { "Öppna larm" }
                    ul { @for a in &j.open_alerts {
                        li { (kurir_protocol::kinds::rubrik(a.kind)) ". "
                            @if let Some(p) = &a.phone { "Ring " (a.municipality.as_deref().unwrap_or("kommunen")) " på " (p) ". " }
                            a href="/expedition/att-ringa" { "Att ringa" } }
                    } }
                }
            }
            section aria-labelledby="rubrik-bevis" {
                h2 id="rubrik-bevis" { "Mottagare och bevis" }
                table {
                    caption { "Per mottagare" }
                    thead { tr { th scope="col" { "Kommun" } th scope="col" { "Adress" } th scope="col" { "Bevis" } } }
                    tbody { @for c in &j.chains {
                        tr { td { (c.name) " (" (c.kommunkod) ")" } td { (c.address.as_deref().unwrap_or("–")) } td { (chain(c)) } }
                    } }
                }
            }
            section aria-labelledby="rubrik-handlingar" {
                h2 id="rubrik-handlingar" { "Handlingar" }
                table {
                    caption { "Handlingar och deras SHA-256" }
                    thead { tr { th scope="col" { "Handling" } th scope="col" { "Sidor" } th scope="col" { "SHA-256" } } }
                    tbody { @for d in &j.job.documents {
                        tr { td { (words::document(d.kind)) } td { (d.pages) } td class="hash" { (d.sha256) } }
                    } }
                }
            }
            section aria-labelledby="rubrik-atgard" class="noprint" {
                h2 id="rubrik-atgard" { "Åtgärder" }
                p { "Varje åtgärd kräver ett skäl och sparas med ditt HSA-id." }
                ul { @for (word, label) in actions(desk) {
                    li { a href={ "/expedition/utskick/" (id) "/" (word) } { (label) } }
                } }
            }
            section aria-labelledby="rubrik-tidslinje" {
                h2 id="rubrik-tidslinje" { "Tidslinje" }
                table {
                    caption { "Varje händelse; arbetstid räknas från mottagandet" }
                    thead { tr { th scope="col" { "Tid" } th scope="col" { "Arbetstid" } th scope="col" { "Händelse" } th scope="col" { "Uppgift" } } }
                    tbody { @for (i, e) in j.events.iter().enumerate() {
                        tr {
                            td { (when(e.at)) }
                            td { (working(j.working_seconds.get(i).copied().unwrap_or(0))) }
                            td { (words::state(e.state)) }
                            @match &e.what {
                                Some(what) => td { (words::event(what, &when)) },
                                // Written before kurir worded its history as values.
                                None => td lang="en" { (e.detail) },
                            }
                        }
                    } }
                }
            }
        },
    )
}

/// The confirmation of one action, with its reason.
pub fn action_form(
    frame: &Frame<'_>,
    desk: Desk,
    id: &str,
    word: &str,
    label: &str,
    error: Option<&str>,
) -> Markup {
    page(
        label,
        desk,
        frame,
        html! {
            h1 { (label) }
            p { "Utskick " (id) "." }
            form method="post" action={ "/expedition/utskick/" (id) "/" (word) } {
                (csrf(frame))
                label for="skal" { "Skäl" }
                p class="hint" id="skal-hint" { "Sparas i utskickets historik och i revisionskedjan." }
                @if let Some(e) = error { p class="error" id="skal-fel" { "Fel: " (e) } }
                textarea id="skal" name="skal" rows="3" required
                    aria-describedby=(if error.is_some() { "skal-hint skal-fel" } else { "skal-hint" }) {}
                button type="submit" { "Bekräfta: " (label) }
            }
            p { a href={ "/expedition/utskick/" (id) } { "Tillbaka utan att göra något" } }
        },
    )
}

/// Att ringa: the open alerts that need a phone call, oldest first.
pub fn calls(frame: &Frame<'_>, desk: Desk, alerts: &[OpenAlert], notice: Option<&str>) -> Markup {
    page(
        "Att ringa",
        desk,
        frame,
        html! {
            h1 { "Att ringa" }
            @if let Some(n) = notice { p class="notice" role="status" { (n) } }
            @if alerts.is_empty() {
                p { "Inga kommuner behöver ringas just nu." }
            }
            @for (i, a) in alerts.iter().enumerate() {
                section aria-labelledby={ "larm-" (i) } {
                    h2 id={ "larm-" (i) } {
                        (a.municipality.as_deref().unwrap_or("Kommun")) ": " (kurir_protocol::kinds::rubrik(a.kind))
                    }
                    p {
                        "Utskick " a href={ "/expedition/utskick/" (a.job_id.as_str()) } { (a.job_id.as_str()) }
                        @if let Some(since) = a.since { ", larmet sedan " (when(since)) }
                        "."
                    }
                    p { "Telefon: " strong { (a.phone.as_deref().unwrap_or("inget registrerat")) } }
                    @if !a.contacts.is_empty() {
                        ul { @for c in &a.contacts { li { (c.name) ", " (c.phone) ", " (c.email) } } }
                    }
                    form method="post" action={ "/expedition/att-ringa/" (a.job_id.as_str()) } {
                        (csrf(frame))
                        label for={ "anteckning-" (i) } { "Anteckning om samtalet" }
                        textarea id={ "anteckning-" (i) } name="anteckning" rows="2" required {}
                        button type="submit" { "Ringt – stäng larmet" }
                    }
                }
            }
        },
    )
}

/// The receipt for the case file, printable from the browser.
pub fn receipt(frame: &Frame<'_>, desk: Desk, blocks: &[crate::report::Block]) -> Markup {
    use crate::report::Block;
    page(
        "Kvitto för akten",
        desk,
        frame,
        html! {
            p class="noprint" { "Skriv ut sidan, eller " a href="kvitto.pdf" { "ladda ned kvittot som PDF" } "." }
            @for b in blocks {
                @match b {
                    Block::Title(t) => { h1 { (t) } },
                    Block::Heading(t) => { h2 { (t) } },
                    Block::Text(t) => { p class="hash" { (t) } },
                    Block::Small(t) => { p class="hint" { (t) } },
                    Block::Row(l, v) => { p { strong { (l) ": " } (v) } },
                }
            }
        },
    )
}
