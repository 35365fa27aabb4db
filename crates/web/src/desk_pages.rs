//! The dispatch desk's pages (Bosättningsenheten): send a decision, the recent jobs with their
//! proof, one job's page, the calls to make, and the receipt for the case file. Server-rendered
//! HTML in Swedish, no JavaScript, every field labelled and every error at its field, in the
//! desk's own frame ([`Area::Desk`]).

use jiff::Timestamp;
use maud::{html, Markup};

use super::pages::{layout, Area, Frame};
use super::words::{self, when, DOSSIERNUMMER};
use kurir_protocol::action::Action;
use kurir_protocol::registry::route::Route;
use kurir_protocol::reply::{DeskJob, DeskRow, DraftPreview, OpenAlert, ProofChain};
use kurir_protocol::state::{Channel, JobState};

/// What the desk's pages need besides the frame: the person's role, and the calls waiting.
#[derive(Clone, Copy)]
pub struct Desk {
    /// A caseworker (handläggare): sends decisions.
    pub sends: bool,
    /// Operations (drift): holds and releases.
    pub holds: bool,
    /// Decisions to phone about now (the menu's count).
    pub calls: usize,
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
    layout(
        title,
        Area::Desk {
            sends: desk.sends,
            calls: Some(desk.calls),
        },
        Some(frame),
        body,
    )
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

/// Documents kept from the last try of the send form (checked, waiting in the daemon's spool
/// under `id`): not chosen again, they are used as they are.
#[derive(Default)]
pub struct Kept {
    /// The kept documents' id, sent back with the form.
    pub id: Option<String>,
    /// What is kept.
    pub documents: Vec<kurir_protocol::draft::DraftDocument>,
}

fn described(errors: &[FieldError], id: &str) -> (Option<String>, String) {
    match errors.iter().find(|e| e.field == id) {
        Some(e) => (Some(e.text.clone()), format!("{id}-hint {id}-fel")),
        None => (None, format!("{id}-hint")),
    }
}

/// What must be fixed, at the top of a form: each problem a link to its field.
pub fn error_summary(errors: &[(&str, String)]) -> Markup {
    html! {
        @if !errors.is_empty() {
            div class="error-summary" role="alert" aria-labelledby="fel-rubrik" tabindex="-1" {
                h2 id="fel-rubrik" {
                    @if errors.len() == 1 { "1 sak behöver rättas" } @else { (errors.len()) " saker behöver rättas" }
                }
                ul { @for (field, text) in errors { li { a href={ "#" (field) } { (text) } } } }
            }
        }
    }
}

/// Skicka beslut: the form, with every problem of the last try at once.
pub fn send_form(
    frame: &Frame<'_>,
    desk: Desk,
    municipalities: &[(String, String)],
    fields: &SendFields,
    errors: &[FieldError],
    kept: &Kept,
) -> Markup {
    let field = |id: &'static str, label: &str, hint: &str, value: &str, list: bool| {
        let (e, by) = described(errors, id);
        html! {
            label for=(id) { (label) }
            p class="hint" id={ (id) "-hint" } { (hint) }
            @if let Some(e) = &e { p class="error" id={ (id) "-fel" } { "Fel: " (e) } }
            input type="text" id=(id) name=(id) value=(value) aria-describedby=(by)
                list=[list.then_some("kommuner")] autocomplete="off"
                aria-invalid=[e.as_ref().map(|_| "true")];
        }
    };
    let file = |id: &'static str, label: &str, hint: &str, kind| {
        let (e, by) = described(errors, id);
        let held = kept.documents.iter().find(|d| d.kind == kind);
        let by = match held {
            Some(_) => format!("{id}-vald {by}"),
            None => by,
        };
        html! {
            label for=(id) { (label) }
            @if let Some(d) = held {
                p class="notice" id={ (id) "-vald" } {
                    "Vald och kontrollerad: " strong { @if d.name.is_empty() { "(namnlös fil)" } @else { (d.name) } }
                    ", " (d.pages) @if d.pages == 1 { " sida" } @else { " sidor" } ". Välj en annan fil bara om du vill byta den."
                }
            }
            p class="hint" id={ (id) "-hint" } { (hint) }
            @if let Some(e) = &e { p class="error" id={ (id) "-fel" } { "Fel: " (e) } }
            input type="file" id=(id) name=(id) accept=".pdf,application/pdf" aria-describedby=(by)
                aria-invalid=[e.as_ref().map(|_| "true")];
            @if held.is_some() && kind == kurir_protocol::job::DocumentKind::GodMan {
                label class="inline" {
                    input type="checkbox" name="utan-godman" value="ja";
                    " Skicka ingen anmälan om behov av god man (ta bort den valda filen)"
                }
            }
        }
    };
    let summary: Vec<(&str, String)> = errors.iter().map(|e| (e.field, e.text.clone())).collect();
    page(
        if errors.is_empty() {
            "Skicka beslut"
        } else {
            "Rätta och skicka beslut"
        },
        desk,
        frame,
        html! {
            h1 { "Skicka beslut" }
            (error_summary(&summary))
            @if !errors.is_empty() {
                p { "Filer som gick igenom kontrollen är kvar; du behöver inte välja dem igen. "
                    a href="/expedition/skicka" { "Börja om med ett tomt formulär" } }
            }
            p { "Fyll i och välj handlingarna. Innan något skickas visas hur beslutet går till kommunen, och du kan öppna filerna." }
            form method="post" action="/expedition/skicka/granska" enctype="multipart/form-data" {
                (csrf(frame))
                @if let Some(id) = &kept.id { input type="hidden" name="behall" value=(id); }
                datalist id="kommuner" {
                    @for (code, name) in municipalities { option value={ (name) " (" (code) ")" } {} }
                }
                (field("kommun", "Anvisningskommun", "Kommunens namn eller kommunkod, t.ex. Umeå eller 2480.", &fields.kommun, true))
                (field("arende", DOSSIERNUMMER, &format!("Två siffror, bindestreck och sex siffror, t.ex. {}.", super::desk_send::CASE_EXAMPLE), &fields.arende, false))
                (file("anvisningsbeslut", "Anvisningsbeslut (PDF)", "Beslutet om anvisning, som PDF.", kurir_protocol::job::DocumentKind::Anvisningsbeslut))
                (file("godman", "Anmälan om behov av god man (PDF, om den finns)", "Lämna tomt om ingen anmälan skickas.", kurir_protocol::job::DocumentKind::GodMan))
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

/// The path of a draft's document, for the person to open before sending.
pub fn draft_document_path(draft: &str, kind: kurir_protocol::job::DocumentKind) -> String {
    format!("/expedition/skicka/utkast/{draft}/{}.pdf", kind.as_str())
}

/// The confirmation before anything is sent: where each recipient's documents go and why,
/// and the files as the person chose them, each to open.
pub fn confirm(frame: &Frame<'_>, desk: Desk, preview: &DraftPreview) -> Markup {
    page(
        "Granska och skicka",
        desk,
        frame,
        html! {
            h1 { "Granska och skicka" }
            p { (DOSSIERNUMMER) " " strong { (preview.case) } ". Kontrollera vart beslutet går och öppna filerna innan du skickar." }
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
                thead { tr { th scope="col" { "Handling" } th scope="col" { "Fil" } th scope="col" { "Sidor" } th scope="col" { "Öppna" } } }
                tbody {
                    @for d in &preview.documents {
                        tr {
                            td { (words::document(d.kind)) }
                            td { @if d.name.is_empty() { "(namnlös fil)" } @else { (d.name) } }
                            td { (d.pages) }
                            td { a href=(draft_document_path(preview.draft.as_str(), d.kind)) { "Öppna " (words::document(d.kind).to_lowercase()) " (PDF)" } }
                        }
                    }
                }
            }
            details {
                summary { "Tekniska uppgifter" }
                ul { @for d in &preview.documents {
                    li { (words::document(d.kind)) ": SHA-256 " span class="hash" { (d.sha256) } }
                } }
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

/// A step of the proof that has happened, with its time, or the words that say it has not.
fn step(done: Option<Timestamp>, label: &str, not_yet: &str) -> Markup {
    match done {
        Some(at) => html! { span class="ok step" { "✓ " (label) " " (when(at)) } },
        None => html! { span class="wait step" { (not_yet) } },
    }
}

/// One recipient's proof in words: sent → delivered → opened, or the letter.
fn chain(c: &ProofChain) -> Markup {
    html! {
        @match c.channel {
            Some(Channel::Email) if c.batch.is_none() => {
                (step(c.accepted_at, "skickat", "inte skickat än")) " → "
                @if c.relayed_at.is_some() && c.delivered_at.is_none() {
                    (step(c.relayed_at, "vidareskickat (svagare leveransbevis)", ""))
                } @else {
                    (step(c.delivered_at, "levererat", "inte levererat än"))
                }
                " → " (step(c.read_at, "öppnat", "inte öppnat än"))
                @if let Some(by) = c.open_by {
                    span class="wait" { " (larm " (when(by)) " om det inte öppnas)" }
                }
            },
            Some(_) | None if c.batch.is_some() => {
                "brev i utskriftsbatch " (c.batch.as_deref().unwrap_or("")) " → "
                (step(c.printed_at, "utskrivet och postat", "inte bekräftat av tryckeriet än"))
                @if c.rejected.is_some() { " (kommunens e-postserver tog inte emot e-posten)" }
            },
            _ => { span class="wait" { "inte skickat än" } },
        }
    }
}

/// The random tail of a job id: what tells two jobs of one second apart.
fn short_id(id: &str) -> &str {
    id.rsplit('-').next().unwrap_or(id)
}

/// What a job's link says: its case number, or (once retention removed it) its id.
fn job_link(id: &str, case: Option<&str>) -> Markup {
    html! {
        a href={ "/expedition/utskick/" (id) } {
            @match case {
                Some(case) => { (case) },
                None => { "utskick …" (short_id(id)) },
            }
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
                p class="hint" id="sok-hint" { (DOSSIERNUMMER) ", kommunkod eller kommunens namn." }
                input type="search" id="sok" name="sok" value=(search) aria-describedby="sok-hint";
                label for="visa" { "Visa" }
                select id="visa" name="visa" {
                    (option("alla", "Alla"))
                    (option("vantar-pa-bevis", "Väntar på leveransbevis"))
                    (option("larm", "Med öppet larm"))
                    (option("post", "Med post"))
                }
                button type="submit" { "Sök" }
            }
            table {
                caption { "Senaste utskick, nyast först (" (rows.len()) ")" }
                thead { tr {
                    th scope="col" { (DOSSIERNUMMER) } th scope="col" { "Mottaget" } th scope="col" { "Skickat av" }
                    th scope="col" { "Status" } th scope="col" { "Leveransbevis per mottagare" } th scope="col" { "Larm" }
                } }
                tbody {
                    @for r in rows {
                        tr {
                            th scope="row" { (job_link(r.job_id.as_str(), r.case.as_deref())) }
                            td class="when" { (when(r.received_at)) }
                            td { (sent_by(r.sent_by.as_deref())) }
                            td class="state" { (status_word(r.state, &r.chains)) }
                            td {
                                @for c in &r.chains {
                                    p { (c.name) ": " (chain(c)) }
                                }
                            }
                            td {
                                @if r.open_alerts.is_empty() { "inget" }
                                @for k in &r.open_alerts { p class="bad" { (kurir_protocol::kinds::rubrik(*k)) } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// Who sent a job: the caseworker on the desk, else the case system or the command line.
pub fn sent_by(recorded: Option<&str>) -> String {
    match recorded {
        Some(who) => words::who(who),
        None => NOT_FROM_THE_DESK.into(),
    }
}

/// Who sent a job that did not come from the desk.
pub const NOT_FROM_THE_DESK: &str = "ärendesystemet eller kommandoraden";

/// The actions the desk offers a person, as (path word, action, label).
pub fn actions(desk: Desk) -> Vec<(&'static str, Action, &'static str)> {
    let mut out = vec![
        ("skicka-igen", Action::Retry, "Skicka igen nu"),
        ("med-post", Action::Reroute, "Skicka med post i stället"),
    ];
    if desk.holds {
        out.push(("pausa", Action::Hold, "Pausa"));
        out.push(("fortsatt", Action::Release, "Låt fortsätta"));
    }
    out.push(("stoppa", Action::Cancel, "Stoppa utskicket"));
    out
}

/// How far every recipient's proof has come: (all delivered, all opened); a printed letter
/// counts as both.
fn proof_of(chains: &[ProofChain]) -> (bool, bool) {
    let all = |f: &dyn Fn(&ProofChain) -> bool| !chains.is_empty() && chains.iter().all(f);
    let opened = all(&|c| c.read_at.is_some() || c.printed_at.is_some());
    let delivered =
        all(&|c| c.delivered_at.is_some() || c.relayed_at.is_some() || c.printed_at.is_some());
    (delivered, opened)
}

/// A job's status in a word, as the desk shows it: its state, and once sent by e-mail, how
/// far the proof has come (levererat, öppnat).
pub fn status_word(state: JobState, chains: &[ProofChain]) -> &'static str {
    match (state, proof_of(chains)) {
        (JobState::Delivered, (_, true)) => "öppnat",
        (JobState::Delivered, (true, false)) => "levererat",
        (state, _) => words::state(state),
    }
}

/// The job's status in one sentence, for the head of its page.
fn status_sentence(j: &DeskJob) -> String {
    let state = j.job.state;
    let (delivered, opened) = proof_of(&j.chains);
    match state {
        JobState::Received | JobState::Queued | JobState::Sending => {
            "Beslutet är mottaget och skickas nu.".into()
        }
        JobState::Deferred => {
            "E-posten har inte kommit fram än; kurir försöker igen av sig själv.".into()
        }
        JobState::Held => "Utskicket är pausat av driften.".into(),
        JobState::FallenBack | JobState::PrintQueued => {
            "Handlingarna går med post: brevet ligger i utskriftskön.".into()
        }
        JobState::Printed => "Brevet är utskrivet och postat.".into(),
        JobState::Delivered if opened => "Klart: beslutet har kommit fram och är öppnat.".into(),
        JobState::Delivered if delivered => {
            "Beslutet har kommit fram till kommunen men är inte öppnat än.".into()
        }
        JobState::Delivered => {
            "Beslutet är skickat; leveransbeviset från kommunens server har inte kommit än.".into()
        }
        JobState::Failed => "Beslutet kunde inte levereras. Se larmet nedan.".into(),
        JobState::Cancelled => "Utskicket är stoppat; inget mer skickas.".into(),
        JobState::Quarantined => {
            "Inlämningen var felaktig och har inte skickats (karantän).".into()
        }
    }
}

/// The job's page: its live status first, then what needs doing, proof, documents, actions
/// its state allows, and the timeline.
pub fn job(frame: &Frame<'_>, desk: Desk, j: &DeskJob, notice: Option<(bool, String)>) -> Markup {
    let id = j.job.id.as_str();
    let case = j.case.as_deref();
    let title = match case {
        Some(case) => format!("{DOSSIERNUMMER} {case}"),
        None => format!("Utskick …{}", short_id(id)),
    };
    let allowed: Vec<_> = actions(desk)
        .into_iter()
        .filter(|(_, action, _)| j.job.allows(*action))
        .collect();
    page(
        &title,
        desk,
        frame,
        html! {
            h1 { (title) }
            @if let Some((ok, text)) = &notice {
                @if *ok { p class="notice" role="status" { (text) } } @else { p class="error" role="alert" { (text) } }
            }
            p class="lead" { strong { "Status: " (status_word(j.job.state, &j.chains)) ". " } (status_sentence(j)) }
            p { "Mottaget " (when(j.job.received_at)) ". Ladda om sidan för att se det senaste." }
            p class="actions noprint" {
                a href={ "/expedition/utskick/" (id) "/kvitto" } { "Kvitto för akten" }
                a href={ "/expedition/utskick/" (id) "/kvitto.pdf" } { "Kvittot som PDF" }
            }
            @if !j.open_alerts.is_empty() {
                section aria-labelledby="rubrik-larm" {
                    h2 id="rubrik-larm" { "Öppna larm" }
                    ul { @for a in &j.open_alerts {
                        li { (capitalized(kurir_protocol::kinds::rubrik(a.kind))) ". "
                            @if let Some(p) = &a.phone { "Ring " (a.municipality.as_deref().unwrap_or("kommunen")) " på " (p) ". " }
                            @if a.kind.is_a_call() { a href="/expedition/att-ringa" { "Till Att ringa" } } }
                    } }
                }
            }
            section aria-labelledby="rubrik-bevis" {
                h2 id="rubrik-bevis" { "Mottagare och leveransbevis" }
                table {
                    caption { "Per mottagare" }
                    thead { tr { th scope="col" { "Kommun" } th scope="col" { "Adress" } th scope="col" { "Leveransbevis" } } }
                    tbody { @for c in &j.chains {
                        tr { td { (c.name) " (" (c.kommunkod) ")" } td { (c.address.as_deref().unwrap_or("–")) } td { (chain(c)) } }
                    } }
                }
            }
            section aria-labelledby="rubrik-handlingar" {
                h2 id="rubrik-handlingar" { "Handlingar" }
                table {
                    caption { "Handlingar" }
                    thead { tr { th scope="col" { "Handling" } th scope="col" { "Sidor" } } }
                    tbody { @for d in &j.job.documents {
                        tr { td { (words::document(d.kind)) } td { (d.pages) } }
                    } }
                }
            }
            section aria-labelledby="rubrik-atgard" class="noprint" {
                h2 id="rubrik-atgard" { "Åtgärder" }
                @if allowed.is_empty() && j.open_alerts.is_empty() {
                    p { "Inga åtgärder behövs: " (status_word(j.job.state, &j.chains)) "." }
                } @else if allowed.is_empty() {
                    p { "Inga åtgärder här; se det öppna larmet ovan." }
                } @else {
                    p { "Varje åtgärd kräver ett skäl och sparas med ditt namn." }
                    ul { @for (word, _, label) in &allowed {
                        li { a href={ "/expedition/utskick/" (id) "/" (word) } { (label) } }
                    } }
                }
            }
            section aria-labelledby="rubrik-tidslinje" {
                h2 id="rubrik-tidslinje" { "Tidslinje" }
                table {
                    caption { "Varje händelse; arbetstid räknas från mottagandet" }
                    thead { tr { th scope="col" { "Tid" } th scope="col" { "Arbetstid" } th scope="col" { "Steg" } th scope="col" { "Händelse" } } }
                    tbody { @for (i, e) in j.events.iter().enumerate() {
                        tr {
                            td class="when" { (when(e.at)) }
                            td { (working(j.working_seconds.get(i).copied().unwrap_or(0))) }
                            td { (words::state(e.state)) }
                            @match &e.what {
                                // Written before kurir worded its history as values (or words a
                                // migration gave): kept as it was, under its own heading.
                                None | Some(kurir_protocol::event::EventKind::Note { .. }) => td {
                                    "Händelse från en äldre version av kurir."
                                    details { summary { "Tekniska uppgifter" } p lang="en" { (e.detail) } }
                                },
                                Some(what) => td { (words::event(what, &when)) },
                            }
                        }
                    } }
                }
            }
        },
    )
}

/// `text` with its first letter in upper case.
pub fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
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
            form method="post" action={ "/expedition/utskick/" (id) "/" (word) } {
                (csrf(frame))
                label for="skal" { "Skäl" }
                p class="hint" id="skal-hint" { "Sparas i utskickets historik och i revisionskedjan. Skriv inte dossiernummer eller personnummer." }
                @if let Some(e) = error { p class="error" id="skal-fel" { "Fel: " (e) } }
                textarea id="skal" name="skal" rows="3" required
                    aria-describedby=(if error.is_some() { "skal-hint skal-fel" } else { "skal-hint" })
                    aria-invalid=[error.map(|_| "true")] {}
                button type="submit" { "Bekräfta: " (label) }
            }
            p { a href={ "/expedition/utskick/" (id) } { "Tillbaka utan att göra något" } }
        },
    )
}

/// What the caller says, by the alert's kind: the decision, where it went, and what the
/// municipality should do now.
fn what_to_say(a: &OpenAlert) -> String {
    use kurir_protocol::state::AlertKind;
    let sent = match &a.sent {
        Some((address, at)) => format!(
            "Migrationsverket skickade ett beslut om anvisning med skyddad e-post till {address} {}.",
            when(*at)
        ),
        None => "Migrationsverket har skickat ett beslut om anvisning till kommunen.".into(),
    };
    let ask = match a.kind {
        AlertKind::Unread => {
            "Det har inte öppnats. Be registraturen öppna meddelandet i dag: ansvaret för barnet \
             går över till kommunen nu."
        }
        AlertKind::Unconfirmed => {
            "Kommunens e-postserver har inte bekräftat att det kom fram. Fråga om det finns i \
             brevlådan; om inte, säg att det kommer med post."
        }
        AlertKind::DeferredTooLong => {
            "Kommunens e-postserver tar inte emot det. Be dem kontrollera att e-post från \
             Migrationsverket kommer fram; annars kommer beslutet med post."
        }
        AlertKind::FellBack => {
            "Det kommer med post i stället för e-post. Be dem hålla utkik efter brevet."
        }
        AlertKind::Failed => {
            "Det kunde inte levereras. Kom överens om hur kommunen får handlingarna i dag."
        }
        AlertKind::ReportNamesAnotherAddress => {
            "Kommunens server skickade det vidare till en annan adress. Fråga vem som har \
             beslutet och att det är rätt mottagare."
        }
        _ => "Fråga om kommunen har fått beslutet.",
    };
    format!("{sent} {ask}")
}

/// Att ringa: the open alerts that need a phone call, oldest first, each with what to say
/// and the two ways a call ends.
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
                section aria-labelledby={ "larm-" (i) } class="call" {
                    h2 id={ "larm-" (i) } {
                        (a.municipality.as_deref().unwrap_or("Kommun")) ": " (kurir_protocol::kinds::rubrik(a.kind))
                    }
                    p {
                        (DOSSIERNUMMER) " " (job_link(a.job_id.as_str(), a.case.as_deref()))
                        @if let Some(since) = a.since { ". Larmet kom " (when(since)) }
                        "."
                    }
                    p { "Telefon: " strong { (a.phone.as_deref().unwrap_or("inget registrerat")) } }
                    @if !a.contacts.is_empty() {
                        p { "Kontaktpersoner:" }
                        ul { @for c in &a.contacts { li { (c.name) ", " (c.phone) ", " (c.email) } } }
                    }
                    h3 { "Att säga" }
                    p { (what_to_say(a)) }
                    form method="post" action={ "/expedition/att-ringa/" (a.job_id.as_str()) } {
                        (csrf(frame))
                        input type="hidden" name="larm" value=(a.kind.as_str());
                        @if let Some(code) = a.recipient { input type="hidden" name="mottagare" value=(code.as_str()); }
                        label for={ "anteckning-" (i) } { "Anteckning om samtalet" }
                        p class="hint" id={ "anteckning-" (i) "-hint" } { "Vem du talade med, eller vad du försökte. Skriv inte dossiernummer eller personnummer." }
                        textarea id={ "anteckning-" (i) } name="anteckning" rows="2" aria-describedby={ "anteckning-" (i) "-hint" } {}
                        div class="choices" {
                            button type="submit" name="utfall" value="vet" { "Kommunen vet om beslutet – stäng larmet" }
                            button type="submit" name="utfall" value="inget-svar" class="secondary" { "Inget svar – anteckna, larmet är kvar" }
                        }
                    }
                }
            }
        },
    )
}

/// The receipt for the case file, printable from the browser: the technical details fold
/// under their heading (the PDF prints them all).
pub fn receipt(frame: &Frame<'_>, desk: Desk, receipt: &crate::receipt::Receipt) -> Markup {
    page(
        "Kvitto för akten",
        desk,
        frame,
        html! {
            p class="noprint" { "Skriv ut sidan, eller " a href="kvitto.pdf" { "ladda ned kvittot som PDF" } "." }
            @for b in &receipt.main { (block(b)) }
            details class="technical" {
                summary { "Tekniska uppgifter" }
                @for b in &receipt.technical {
                    @match b {
                        crate::report::Block::Heading(_) => {},
                        other => { (block(other)) },
                    }
                }
            }
            (block(&receipt.taken))
        },
    )
}

fn block(b: &crate::report::Block) -> Markup {
    use crate::report::Block;
    html! {
        @match b {
            Block::Title(t) => { h1 { (t) } },
            Block::Heading(t) => { h2 { (t) } },
            Block::Lead(t) => { p class="lead" { (t) } },
            Block::Text(t) => { p class="hash" { (t) } },
            Block::Small(t) => { p class="hint" { (t) } },
            Block::Row(l, v) => { p { strong { (l) ": " } (v) } },
        }
    }
}
