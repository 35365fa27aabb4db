//! The portal's pages: server-rendered HTML (maud escapes every value), Swedish text written for
//! an IT technician at a municipality, no JavaScript. Every field has a label, every error is
//! tied to its field (`aria-describedby`), and the layout works by keyboard alone.

use kurir_protocol::registry::connection::ConnectionCheck;
use maud::{html, Markup, DOCTYPE};

use kurir_protocol::registry::{Registered, RegistryChange};

/// What a page needs to know about the person and the request.
pub struct Frame<'a> {
    /// The signed-in person's name.
    pub name: &'a str,
    /// Their HSA-id.
    pub hsa_id: &'a str,
    /// The form token that every post must carry.
    pub csrf: &'a str,
}

/// The style sheet: system fonts, contrast above 7:1, a visible focus ring.
pub const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:0;color:#1a1a1a;background:#fff;line-height:1.5}\
header,footer{background:#0b3d5c;color:#fff;padding:.75rem 1.5rem}\
header a,footer a{color:#fff}\
main{max-width:60rem;padding:1rem 1.5rem}\
a{color:#0b3d5c}\
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;color:#0b3d5c;padding:.5rem}\
:focus{outline:3px solid #c4510b;outline-offset:2px}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;border-bottom:1px solid #767676;padding:.35rem .5rem;vertical-align:top}\
label{display:block;font-weight:600;margin-top:.75rem}\
input[type=text],input[type=email],input[type=tel],textarea{width:100%;max-width:36rem;padding:.4rem;border:1px solid #595959;font:inherit}\
button{display:block;margin-top:.75rem;padding:.5rem 1rem;background:#0b3d5c;color:#fff;border:0;font:inherit;cursor:pointer}\
.hint{color:#4a4a4a;margin:.2rem 0}\
.error{color:#a50e0e;font-weight:600}\
.notice{border-left:4px solid #1b6e2c;padding:.5rem 1rem;background:#eef6ef}\
section{margin-top:2rem}\
ul.nav{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:1.25rem}\
.state{font-weight:600}.ok{color:#1b6e2c}.wait{color:#4a4a4a}.bad{color:#a50e0e}\
.hash{font-family:monospace;word-break:break-all}\
select,input[type=search],input[type=file]{font:inherit;padding:.3rem}\
.actions a{margin-right:1rem}\
.error-summary{border:4px solid #a50e0e;padding:.5rem 1rem;margin:1rem 0}.error-summary h2{margin-top:0;color:#a50e0e}\
.lead{font-size:1.15rem}.count{font-weight:700}\
.step{border-left:6px solid #0b3d5c;padding:.25rem 1rem;background:#f1f5f8}\
button.secondary{background:#fff;color:#0b3d5c;border:2px solid #0b3d5c}\
.choices button{display:inline-block;margin-right:.75rem}.call{border-top:2px solid #767676}\
label.inline{font-weight:400}label.inline input{margin-right:.4rem}p.line{margin:0}.when,.step{white-space:nowrap}details{margin:.5rem 0}summary{cursor:pointer}\
@media print{header nav,footer,.skip,.noprint{display:none}main{max-width:none}}";

/// Which part of the portal a page belongs to: its header, title and navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Municipality IT's pages.
    Kommun,
    /// The dispatch desk of Bosättningsenheten.
    Desk {
        /// The person may send decisions (a caseworker).
        sends: bool,
        /// Decisions to phone about now, when known (the menu shows the count).
        calls: Option<usize>,
    },
}

impl Area {
    /// The area a web program serves.
    pub fn of(door: kurir_protocol::config::WebDoor) -> Area {
        match door {
            kurir_protocol::config::WebDoor::Portal => Area::Kommun,
            kurir_protocol::config::WebDoor::Desk => Area::Desk {
                sends: false,
                calls: None,
            },
        }
    }

    /// Where "back to the start" goes, and what the link says.
    fn home(self) -> (&'static str, &'static str) {
        match self {
            Area::Kommun => ("/", "Till dina kommuner"),
            Area::Desk { .. } => ("/expedition/utskick", "Till expeditionens startsida"),
        }
    }
}

fn page(title: &str, frame: Option<&Frame<'_>>, body: Markup) -> Markup {
    layout(title, Area::Kommun, frame, body)
}

/// A whole page: header with who is signed in and the area's navigation, the body, the footer.
pub fn layout(title: &str, area: Area, frame: Option<&Frame<'_>>, body: Markup) -> Markup {
    let (suffix, banner) = match area {
        Area::Kommun => (
            " – Migrationsverket, adress för beslut",
            "kommunens adress för beslut om anvisning",
        ),
        Area::Desk { .. } => (
            " – Migrationsverket, expeditionen",
            "expeditionen, Bosättningsenheten",
        ),
    };
    html! {
        (DOCTYPE)
        html lang="sv" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) (suffix) }
                link rel="stylesheet" href="/stil.css";
            }
            body {
                a class="skip" href="#huvud" { "Hoppa till huvudinnehållet" }
                header {
                    p { strong { "Migrationsverket" } " – " (banner) }
                    @if let Some(f) = frame {
                        p {
                            "Inloggad som " (f.name) " (" (f.hsa_id) "). "
                            @if area == Area::Kommun { a href="/" { "Dina kommuner" } }
                        }
                    }
                    @match area {
                        Area::Kommun => {},
                        Area::Desk { sends, calls } => {
                            nav aria-label="Expeditionen" {
                                ul class="nav" {
                                    @if sends { li { a href="/expedition/skicka" { "Skicka beslut" } } }
                                    li { a href="/expedition/utskick" { "Utskick" } }
                                    li { a href="/expedition/att-ringa" {
                                        "Att ringa"
                                        @match calls {
                                            Some(0) | None => {},
                                            Some(1) => { " " span class="count" { "(1 samtal)" } },
                                            Some(n) => { " " span class="count" { "(" (n) " samtal)" } },
                                        }
                                    } }
                                }
                            }
                        },
                    }
                }
                main id="huvud" { (body) }
                footer {
                    a href="/tillganglighet" { "Tillgänglighetsredogörelse" }
                }
            }
        }
    }
}

/// The portal's start page: the municipalities this person may manage, as (kommunkod, name).
pub fn index(frame: &Frame<'_>, municipalities: &[(String, String)]) -> Markup {
    page(
        "Dina kommuner",
        Some(frame),
        html! {
            h1 { "Dina kommuner" }
            @if municipalities.is_empty() {
                p { "Du har inte behörighet för någon kommun ännu. Migrationsverket ger behörighet \
                     per person (HSA-id); kontakta Bosättningsenheten om du ska sköta din kommuns \
                     adress för beslut." }
            } @else {
                p { "Här anger du vart Migrationsverket skickar beslut om anvisning och anmälan om \
                     behov av god man till din kommun." }
                ul {
                    @for (code, name) in municipalities {
                        li { a href={ "/kommun/" (code) } { (name) " (" (code) ")" } }
                    }
                }
            }
        },
    )
}

/// A message at the top of the municipality page after an action.
pub enum Notice {
    /// Nothing to say.
    None,
    /// Something worked.
    Done(String),
    /// Something failed: the message, and the field it concerns (its id), if any.
    Error(String, Option<&'static str>),
}

/// What the form fields hold (as typed, when a post failed; as registered otherwise).
#[derive(Default)]
pub struct Fields {
    /// Official e-mail.
    pub email: String,
    /// Decision e-mail.
    pub decision_email: String,
    /// Phone.
    pub phone: String,
    /// Contacts, one per line.
    pub contacts: String,
    /// Postal address, one line each.
    pub postal_address: String,
}

impl Fields {
    /// The fields as registered.
    pub fn of(r: &Registered) -> Fields {
        Fields {
            email: r.official_email.clone().unwrap_or_default(),
            decision_email: r.decision_email.clone().unwrap_or_default(),
            phone: r.phone.clone().unwrap_or_default(),
            contacts: r
                .contacts
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
            postal_address: r
                .postal_address
                .as_ref()
                .map(|a| a.lines().join("\n"))
                .unwrap_or_default(),
        }
    }
}

fn field_error(notice: &Notice, id: &str) -> Option<String> {
    match notice {
        Notice::Error(message, Some(field)) if *field == id => Some(message.clone()),
        _ => None,
    }
}

/// A field's error (if the notice concerns it) and what describes it: its hint, and its error.
fn described_by(notice: &Notice, id: &str) -> (Option<String>, String) {
    let error = field_error(notice, id);
    let described = if error.is_some() {
        format!("{id}-hint {id}-fel")
    } else {
        format!("{id}-hint")
    };
    (error, described)
}

fn input(
    id: &'static str,
    label: &str,
    kind: &str,
    value: &str,
    hint: &str,
    notice: &Notice,
) -> Markup {
    let (error, described) = described_by(notice, id);
    html! {
        label for=(id) { (label) }
        p class="hint" id={ (id) "-hint" } { (hint) }
        @if let Some(e) = &error { p class="error" id={ (id) "-fel" } { "Fel: " (e) } }
        input type=(kind) id=(id) name=(id) value=(value) aria-describedby=(described)
            aria-invalid=[error.as_ref().map(|_| "true")];
    }
}

fn textarea(id: &'static str, label: &str, value: &str, hint: &str, notice: &Notice) -> Markup {
    let (error, described) = described_by(notice, id);
    html! {
        label for=(id) { (label) }
        p class="hint" id={ (id) "-hint" } { (hint) }
        @if let Some(e) = &error { p class="error" id={ (id) "-fel" } { "Fel: " (e) } }
        textarea id=(id) name=(id) rows="3" aria-describedby=(described)
            aria-invalid=[error.as_ref().map(|_| "true")] { (value) }
    }
}

/// What Migrationsverket's check of the municipality's own mail servers found: the verdict,
/// each server, and what to fix.
fn connection_section(frame: &Frame<'_>, code: &str, check: Option<&ConnectionCheck>) -> Markup {
    let day = super::words::when;
    html! {
        section aria-labelledby="rubrik-server" {
            h2 id="rubrik-server" { "Er e-postserver (säker anslutning)" }
            p { "Migrationsverket kontrollerar varje dygn att era e-postservrar (MX) tar emot \
                 beslut krypterat: STARTTLS, TLS 1.2 eller senare och ett certifikat som går att \
                 verifiera (DANE eller en betrodd utfärdare och serverns namn). Beslut skickas med \
                 e-post bara när den senaste kontrollen är godkänd." }
            @match check {
                None => { p id="kontroll" { "Ingen kontroll är gjord ännu." } },
                Some(c) => {
                    p id="kontroll" { strong { (super::words::verdict(c.verdict)) } " – domänen " (c.domain) ", kontrollerad " (day(c.checked_at)) "." }
                    table {
                        caption { "Servrar" }
                        thead { tr { th scope="col" { "Server" } th scope="col" { "TLS" } th scope="col" { "Certifikat giltigt till" } th scope="col" { "DANE" } } }
                        tbody {
                            @for mx in &c.mx {
                                tr {
                                    th scope="row" { (mx.host) }
                                    td { @match &mx.tls { Some(t) => { (t.version) }, None => { "–" } } }
                                    td { @match &mx.tls { Some(t) => { (day(t.not_after)) }, None => { "–" } } }
                                    td { (super::words::dane(mx.dane)) }
                                }
                            }
                        }
                    }
                    @if !c.problems.is_empty() {
                        h3 { "Det här behöver rättas" }
                        ul id="att-ratta" { @for p in &c.problems { li { (p.att_rätta()) } } }
                    }
                },
            }
            form method="post" action={ "/kommun/" (code) "/kontrollera" } {
                (csrf(frame))
                button type="submit" { "Kontrollera nu" }
            }
        }
    }
}

fn csrf(frame: &Frame<'_>) -> Markup {
    html! { input type="hidden" name="csrf" value=(frame.csrf); }
}

/// One municipality: its registration, the route its documents take now, the forms, history.
/// While a new address waits to be confirmed, step 2 (the code) comes first.
#[allow(clippy::too_many_arguments)]
pub fn municipality(
    frame: &Frame<'_>,
    code: &str,
    name: &str,
    route: &str,
    r: &Registered,
    connection: Option<&ConnectionCheck>,
    fields: &Fields,
    history: &[RegistryChange],
    notice: &Notice,
) -> Markup {
    use super::words::{certificate_day, when, who};
    let dash = |v: Option<&str>| v.unwrap_or("–").to_string();
    let errors: Vec<(&str, String)> = match notice {
        Notice::Error(text, Some(field)) => vec![(*field, text.clone())],
        _ => Vec::new(),
    };
    html! {
        (page(name, Some(frame), html! {
            h1 { (name) " (" (code) ")" }
            @match notice {
                Notice::Done(text) => { p class="notice" role="status" { (text) } },
                Notice::Error(text, None) => { p class="error" role="alert" { "Fel: " (text) } },
                Notice::Error(_, Some(_)) => { (super::desk_pages::error_summary(&errors)) },
                Notice::None => {},
            }
            @if let Some(p) = &r.pending {
                section aria-labelledby="rubrik-kod" class="step" {
                    h2 id="rubrik-kod" { "Steg 2 av 2: skriv in koden" }
                    @match p.code_expires {
                        Some(expires) => p { "En kod är skickad till " strong { (p.address) } ", samma väg som beslut går. Den gäller till " (when(expires)) "." },
                        None => p { "Ingen kod är skickad till " strong { (p.address) } " ännu. Skicka en kod nedan." },
                    }
                    p { "Den nya adressen används först när den är bekräftad; till dess går beslut som förut. \
                         När den är bekräftad får kommunens tidigare adress och kontaktpersoner, om sådana finns, ett meddelande om ändringen." }
                    form method="post" action={ "/kommun/" (code) "/bekrafta" } {
                        (csrf(frame))
                        (input("kod", "Koden från meddelandet", "text", "", "Koden står på raden Verifieringskod i meddelandet.", notice))
                        button type="submit" { "Bekräfta adressen" }
                    }
                    form method="post" action={ "/kommun/" (code) "/skicka-kod" } {
                        (csrf(frame))
                        button type="submit" class="secondary" {
                            @if p.code_expires.is_some() { "Skicka en ny kod" } @else { "Skicka kod" }
                        }
                    }
                }
            }
            section aria-labelledby="rubrik-nu" {
                h2 id="rubrik-nu" { "Så skickas beslut nu" }
                p id="vag" { (route) }
                table {
                    caption { "Registrerat för kommunen" }
                    tbody {
                        tr { th scope="row" { "Bekräftad adress (tar emot beslut)" } td { (dash(r.active_address.as_deref())) } }
                        tr { th scope="row" { "Adress som väntar på bekräftelse" } td {
                            @match &r.pending {
                                Some(p) => { (p.address) @if p.code_expires.is_some() { " – kod skickad" } @else { " – ingen kod skickad ännu" } },
                                None => { "ingen" },
                            }
                        } }
                        @if let Some(w) = &r.awaiting_approval {
                            tr { th scope="row" { "Väntar på Migrationsverkets godkännande" } td {
                                @if let Some(a) = &w.address { "Adressen " (a) " (bekräftad). " }
                                @if let Some(p) = &w.postal_address { "Postadressen " (p.lines().join(", ")) ". " }
                                "Till dess gäller det som står ovan."
                            } }
                        }
                        tr { th scope="row" { "Säker anslutning avtalad" } td { @if r.secure_connection { "Ja (kontrollen av er server står nedan)" } @else { "Nej (Migrationsverket sätter upp den)" } } }
                        tr { th scope="row" { "S/MIME-certifikat" } td {
                            @match &r.smime_cert {
                                Some(c) => { (c.subject) ", giltigt till " (certificate_day(&c.not_after)) },
                                None => { "inget" },
                            }
                        } }
                    }
                }
            }
            (connection_section(frame, code, connection))
            section aria-labelledby="rubrik-andra" {
                h2 id="rubrik-andra" { "Ändra adress och kontaktuppgifter" }
                p { "Telefon och kontaktpersoner gäller när du sparar; en ny postadress när \
                     Migrationsverket har godkänt den. En ny e-postadress bekräftas i två steg: när du \
                     sparar skickar vi en kod till adressen (steg 1), och du skriver in koden här \
                     (steg 2). Först då går beslut dit." }
                form method="post" action={ "/kommun/" (code) "/andra" } {
                    (csrf(frame))
                    (input("email", "Kommunens officiella e-postadress", "email", &fields.email, "Används om ingen särskild adress för beslut anges.", notice))
                    (input("decision_email", "Särskild adress för beslut (skyddad e-post)", "email", &fields.decision_email, "Lämna tomt för att använda den officiella adressen.", notice))
                    (input("phone", "Telefon (växel eller registratur)", "tel", &fields.phone, "Dit Migrationsverket ringer om ett beslut inte har öppnats.", notice))
                    (textarea("contacts", "Kontaktpersoner", &fields.contacts, "En per rad: Namn, telefon, e-post.", notice))
                    (textarea("postal_address", "Postadress för brev", &fields.postal_address, "En rad per adressrad; sista raden postnummer och ort, t.ex. 901 84 Umeå.", notice))
                    button type="submit" { "Spara ändringarna" }
                }
            }
            section aria-labelledby="rubrik-cert" {
                h2 id="rubrik-cert" { "S/MIME-certifikat" }
                form method="post" action={ "/kommun/" (code) "/certifikat" } enctype="multipart/form-data" {
                    (csrf(frame))
                    @let error = field_error(notice, "certifikat");
                    label for="certifikat" { "Certifikat för den skyddade adressen (PEM eller DER)" }
                    p class="hint" id="certifikat-hint" { "Beslut krypteras till detta certifikat. Högst 64 kB." }
                    @if let Some(e) = &error { p class="error" id="certifikat-fel" { "Fel: " (e) } }
                    input type="file" id="certifikat" name="certifikat" accept=".pem,.crt,.cer,.der"
                        aria-describedby=(if error.is_some() { "certifikat-hint certifikat-fel" } else { "certifikat-hint" });
                    button type="submit" { "Ladda upp certifikatet" }
                }
            }
            section aria-labelledby="rubrik-historik" {
                h2 id="rubrik-historik" { "Ändringshistorik" }
                table {
                    caption { "Vem ändrade vad, nyast först" }
                    thead { tr { th scope="col" { "Tid" } th scope="col" { "Av" } th scope="col" { "Vad" } } }
                    tbody {
                        @for change in history.iter().rev() {
                            tr {
                                td { (when(change.at)) }
                                td { (who(&change.operator)) }
                                td { @for line in super::words::registry_change(change) { p class="line" { (line) } } }
                            }
                        }
                    }
                }
            }
        }))
    }
}

/// Whom a person turns to, on a page that could not help them.
pub struct Contact<'a> {
    /// Bosättningsenheten's e-mail.
    pub email: &'a str,
    /// Its phone.
    pub phone: &'a str,
}

/// Whom the person on a refusal page turns to: municipality people to Bosättningsenheten,
/// the agency's own staff to operations, who give desk access.
fn contact_line(area: Area, contact: &Contact<'_>) -> Markup {
    html! {
        @match area {
            Area::Kommun => {
                p { "Frågor? Kontakta Bosättningsenheten: e-post "
                    a href={ "mailto:" (contact.email) } { (contact.email) }
                    @if !contact.phone.is_empty() { ", telefon " (contact.phone) }
                    "." }
            },
            Area::Desk { .. } => {
                p { "Frågor om behörighet, eller något som inte fungerar? Kontakta Migrationsverkets \
                     drift: de ger behörighet till expeditionen och ser kurirs larm." }
            },
        }
    }
}

/// A refusal, in the frame of the area it belongs to, with whom to contact.
pub fn refused(area: Area, title: &str, text: &str, contact: &Contact<'_>) -> Markup {
    let (home, back) = area.home();
    layout(
        title,
        area,
        None,
        html! {
            h1 { (title) }
            p { (text) }
            (contact_line(area, contact))
            p { a href=(home) { (back) } }
        },
    )
}

/// A desk page that was not opened because another site asked for it; `link`, when the person
/// followed a link, opens it from here.
pub fn refused_with_link(title: &str, text: &str, link: Option<&str>) -> Markup {
    let area = Area::Desk {
        sends: false,
        calls: None,
    };
    layout(
        title,
        area,
        None,
        html! {
            h1 { (title) }
            p { (text) }
            @if let Some(link) = link {
                p { a href=(link) { "Öppna sidan" } }
            }
            p { a href="/expedition/utskick" { "Till expeditionens startsida" } }
        },
    )
}

/// While the daemon restarts, the web door still answers: try again shortly.
pub fn unavailable(area: Area) -> Markup {
    let (home, back) = area.home();
    layout(
        "Försök igen om en stund",
        area,
        None,
        html! {
            h1 { "Försök igen om en stund" }
            p { "Tjänsten startar om just nu och kan inte visa eller spara något. Inget du har \
                 skickat har gått förlorat. Ladda om sidan om en minut." }
            p { a href=(home) { (back) } }
        },
    )
}

/// When the accessibility of both web doors was last assessed, and this statement written
/// (DIGG's model asks for both dates).
pub const ACCESSIBILITY_ASSESSED: &str = "2026-12-07";

/// The accessibility statement (tillgänglighetsredogörelse) of the area, following the
/// model of the Agency for Digital Government (DIGG): who stands behind it, how accessible it
/// is (its status of compliance), what is not accessible, how to report shortcomings and to
/// whom to complain, how it was assessed and when.
pub fn accessibility(area: Area, frame: Option<&Frame<'_>>, contact: &Contact<'_>) -> Markup {
    let (what, who) = match area {
        Area::Kommun => (
            "webbplatsen där kommuner anger sin adress för beslut om anvisning",
            "kommunernas IT- och registraturpersonal",
        ),
        Area::Desk { .. } => (
            "expeditionen, där Bosättningsenheten skickar och följer beslut om anvisning",
            "Bosättningsenhetens handläggare och drift",
        ),
    };
    layout(
        "Tillgänglighetsredogörelse",
        area,
        frame,
        html! {
            h1 { "Tillgänglighetsredogörelse" }
            p { "Migrationsverket står bakom " (what) ". Den används av " (who) ". Vi vill att så \
                 många som möjligt ska kunna använda den. Här beskriver vi hur den uppfyller lagen \
                 (2018:1937) om tillgänglighet till digital offentlig service, kända problem och \
                 hur du kan rapportera brister till oss så att vi kan åtgärda dem." }
            h2 { "Hur tillgänglig är webbplatsen?" }
            p { "Vi är medvetna om att delar av webbplatsen inte är helt tillgängliga. Se \
                 avsnittet om innehåll som inte är tillgängligt nedan." }
            h2 { "Vad kan du göra om du inte kan använda delar av webbplatsen?" }
            p { "Om du behöver innehåll i ett annat format, eller inte kan göra det du behöver, \
                 kontakta Bosättningsenheten så hjälper vi dig: e-post "
                a href={ "mailto:" (contact.email) } { (contact.email) }
                @if !contact.phone.is_empty() { ", telefon " (contact.phone) }
                ". Vi svarar inom två arbetsdagar." }
            h2 { "Rapportera brister i webbplatsens tillgänglighet" }
            p { "Vi strävar hela tiden efter att förbättra tillgängligheten. Om du upptäcker \
                 problem som inte beskrivs här, eller om du anser att vi inte uppfyller lagens \
                 krav, meddela Bosättningsenheten på samma e-postadress eller telefonnummer." }
            h2 { "Tillsyn" }
            p { "Myndigheten för digital förvaltning (Digg) ansvarar för tillsynen av lagen. Om du \
                 inte är nöjd med hur vi hanterar dina synpunkter kan du "
                a href="https://www.digg.se/anmal-bristande-tillganglighet" { "kontakta Digg och påtala det" } "." }
            h2 { "Teknisk information om webbplatsens tillgänglighet" }
            p { "Webbplatsen är delvis förenlig med lagen om tillgänglighet till digital offentlig \
                 service, på grund av de brister som beskrivs nedan." }
            h3 { "Innehåll som inte är tillgängligt" }
            ul {
                @match area {
                    Area::Kommun => {
                        li { "Certifikatets ämne och tekniska uppgifter om er e-postserver (TLS, DANE) \
                              visas som de står i certifikatet och i DNS; de är inte förklarade i klartext. \
                              (WCAG 3.1.3, nivå AAA, som lagen inte kräver.)" }
                    },
                    Area::Desk { .. } => {
                        li { "Handlingarna (anvisningsbeslut och anmälan om behov av god man) är PDF-filer \
                              som skapas i ärendesystemet; expeditionen kontrollerar inte att de är \
                              tillgängliga. (WCAG 1.3.1)" }
                        li { "Kvittot för akten som PDF saknar taggad struktur: en skärmläsare läser det \
                              som löpande text. Samma kvitto finns som webbsida, som är tillgänglig. \
                              (WCAG 1.3.1)" }
                    },
                }
            }
            h2 { "Hur vi testat webbplatsen" }
            p { "Vi har själva granskat webbplatsen. Varje sida som testerna når kontrolleras \
                 automatiskt med axe-core mot WCAG 2.1 nivå A och AA i webbläsaren Chromium, vid \
                 varje ändring av programmet, och testerna går igenom formulären som en användare \
                 gör. Automatiska test täcker bara en del av kraven; en fullständig manuell \
                 granskning med skärmläsare är ännu inte gjord." }
            p { "Senaste bedömningen gjordes " (ACCESSIBILITY_ASSESSED) "." }
            p { "Webbplatsen publicerades 2026-11-30. Redogörelsen uppdaterades senast " (ACCESSIBILITY_ASSESSED) "." }
        },
    )
}
