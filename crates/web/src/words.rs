//! The pages' Swedish: each route, state, event, history entry, refusal and field error worded
//! from its variant, never from another surface's text; every time in Swedish local time.
//!
//! One vocabulary, the case system's: *status* (not tillstånd), an address is *bekräftad* by
//! its code while a delivery has a *leveransbevis*, a message is *öppnat*, and the case number
//! is the *dossiernummer*. What has not happened yet says so in words ("inte öppnat än").

use jiff::Timestamp;
use kurir_protocol::event::EventKind;
use kurir_protocol::registry::route::{PostReason, Route};
use kurir_protocol::registry::{
    CertificateProblem, EmailField, PostalProblem, Recorded, Registered, RegistryAction,
    RegistryChange, RegistryError,
};
use kurir_protocol::ServiceError;

/// The case number's one name on every page, and how it is written.
pub const DOSSIERNUMMER: &str = "Dossiernummer";

fn stockholm() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get("Europe/Stockholm").unwrap_or(jiff::tz::TimeZone::UTC)
}

/// A time as people read it: Swedish local time to the minute, `2026-12-07 10:15`.
pub fn when(at: Timestamp) -> String {
    at.to_zoned(stockholm())
        .strftime("%Y-%m-%d %H:%M")
        .to_string()
}

/// A day as people read it: `2026-12-07`, in Swedish local time.
pub fn day(at: Timestamp) -> String {
    at.to_zoned(stockholm()).strftime("%Y-%m-%d").to_string()
}

/// A certificate's date as OpenSSL prints it (`Dec  7 10:00:00 2026 GMT`), as a Swedish day;
/// the text itself if it does not read as one.
pub fn certificate_day(openssl: &str) -> String {
    let tidy = openssl.split_whitespace().collect::<Vec<_>>().join(" ");
    jiff::fmt::strtime::parse("%b %d %H:%M:%S %Y GMT", &tidy)
        .and_then(|t| t.to_datetime())
        .and_then(|t| t.to_zoned(jiff::tz::TimeZone::UTC))
        .map(|z| day(z.timestamp()))
        .unwrap_or_else(|_| openssl.to_string())
}

/// Who did something, as a history names them.
pub fn who(recorded: &str) -> String {
    match Recorded::read(recorded) {
        Recorded::Portal { hsa_id, name } => format!("{name} ({hsa_id}), kommunen"),
        Recorded::Desk { hsa_id, name } => format!("{name} ({hsa_id}), Bosättningsenheten"),
        Recorded::Kurir => "kurir (automatiskt)".into(),
        Recorded::Operator(name) => format!("{name}, Migrationsverkets drift"),
    }
}

/// One entry of a municipality's history: what changed, to what (one sentence each).
pub fn registry_change(change: &RegistryChange) -> Vec<String> {
    let fields = || field_changes(&change.before, &change.after);
    let mut lines = match &change.action {
        Some(RegistryAction::Set) => fields(),
        Some(RegistryAction::Import) => {
            let mut lines = vec!["Uppgifter lästes in från en fil av Migrationsverket.".into()];
            lines.extend(fields());
            lines
        }
        Some(RegistryAction::CodeSent { address }) => {
            vec![format!(
                "Kod för att bekräfta adressen skickad till {address}."
            )]
        }
        Some(RegistryAction::WrongCode) => {
            vec!["Fel kod skrevs in för att bekräfta adressen.".into()]
        }
        Some(RegistryAction::Confirmed {
            address,
            awaits_approval: false,
        }) => vec![format!(
            "Adressen {address} bekräftad med koden: beslut skickas dit."
        )],
        Some(RegistryAction::Confirmed { address, .. }) => vec![format!(
            "Adressen {address} bekräftad med koden. Den ligger utanför kommunens \
             e-postdomäner och används när Migrationsverket har godkänt den."
        )],
        Some(RegistryAction::Approved { .. }) => {
            let mut lines = vec!["Migrationsverket godkände det som väntade.".into()];
            lines.extend(fields());
            lines
        }
        Some(RegistryAction::Refused { reason }) => vec![format!(
            "Migrationsverket godkände inte det som väntade. Skäl: {reason}"
        )],
        Some(RegistryAction::Domains { domains }) => vec![format!(
            "Kommunens e-postdomäner är nu {}.",
            if domains.is_empty() {
                "inga".to_string()
            } else {
                domains.join(", ")
            }
        )],
        Some(RegistryAction::AccessGranted { hsa_id }) => {
            vec![format!(
                "{hsa_id} fick behörighet att sköta kommunens uppgifter här."
            )]
        }
        Some(RegistryAction::AccessRevoked { hsa_id }) => {
            vec![format!("{hsa_id} har inte längre behörighet här.")]
        }
        Some(RegistryAction::CertificateExpiryNotice { days }) => vec![format!(
            "Påminnelse skickad: S/MIME-certifikatet går ut inom {days} dagar."
        )],
        Some(RegistryAction::ConnectionCheckFailed) => vec![
            "Kontrollen av kommunens e-postserver gick inte igenom; kontaktpersonerna fick \
             veta vad som ska rättas."
                .into(),
        ],
        // Written before kurir 0.3 kept the change as a value: what the fields say.
        None => fields(),
    };
    if lines.is_empty() {
        lines.push("Inga uppgifter ändrades.".into());
    }
    if let Some(notice) = &change.notice {
        lines.push(format!(
            "Meddelande om ändringen skickat till {}.",
            notice.to.join(", ")
        ));
    }
    lines
}

/// Each registered field that differs, as "Fältet ändrat från … till …".
fn field_changes(before: &Registered, after: &Registered) -> Vec<String> {
    let shown = |v: Option<String>| v.filter(|v| !v.is_empty());
    let one = |label: &str, b: Option<String>, a: Option<String>| match (shown(b), shown(a)) {
        (b, a) if b == a => None,
        (None, Some(a)) => Some(format!("{label} satt till {a}.")),
        (Some(b), None) => Some(format!("{label} borttagen (var {b}).")),
        (Some(b), Some(a)) => Some(format!("{label} ändrad från {b} till {a}.")),
        (None, None) => None,
    };
    let contacts = |r: &Registered| {
        Some(
            r.contacts
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    };
    let postal = |r: &Registered| r.postal_address.as_ref().map(|p| p.lines().join(", "));
    let pending = |r: &Registered| r.pending.as_ref().map(|p| p.address.clone());
    let cert = |r: &Registered| {
        r.smime_cert.as_ref().map(|c| {
            format!(
                "{} (giltigt till {})",
                c.subject,
                certificate_day(&c.not_after)
            )
        })
    };
    let yes_no = |b: bool| Some(if b { "ja" } else { "nej" }.to_string());
    [
        one(
            "Officiell e-postadress",
            before.official_email.clone(),
            after.official_email.clone(),
        ),
        one(
            "Särskild adress för beslut",
            before.decision_email.clone(),
            after.decision_email.clone(),
        ),
        one(
            "Adress som väntar på bekräftelse",
            pending(before),
            pending(after),
        ),
        one(
            "Bekräftad adress (tar emot beslut)",
            before.active_address.clone(),
            after.active_address.clone(),
        ),
        one("Telefon", before.phone.clone(), after.phone.clone()),
        one("Kontaktpersoner", contacts(before), contacts(after)),
        one("Postadress", postal(before), postal(after)),
        one("S/MIME-certifikat", cert(before), cert(after)),
        one(
            "Säker anslutning avtalad",
            yes_no(before.secure_connection),
            yes_no(after.secure_connection),
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// How decisions go now.
pub fn route(route: &Route) -> String {
    match route {
        Route::Email { address } => format!("Med skyddad e-post till {address}."),
        Route::Post { reason } => {
            let why = match reason {
                PostReason::NoRelay => "Migrationsverket skickar ingen skyddad e-post just nu.",
                PostReason::NoSecureConnection => {
                    "kommunen har ingen säker anslutning ännu (Migrationsverket sätter upp den)."
                }
                PostReason::NoVerifiedAddress => "ingen adress är bekräftad ännu.",
                PostReason::ConnectionNotChecked => {
                    "Migrationsverket har ännu inte kontrollerat er e-postserver."
                }
                PostReason::ConnectionFailed => {
                    "kontrollen av er e-postserver gick inte igenom (se nedan vad som ska rättas)."
                }
                PostReason::ConnectionCheckOutdated => {
                    "den senaste godkända kontrollen av er e-postserver är för gammal."
                }
            };
            format!("Med post (brev i fönsterkuvert). Skäl: {why}")
        }
    }
}

/// Which form field a refused value concerns (its id on the page), and what to say.
pub fn field_error(error: &RegistryError) -> (&'static str, String) {
    match error {
        RegistryError::Email {
            field: EmailField::Decision,
            ..
        } => (
            "decision_email",
            "Adressen för beslut är inte en giltig e-postadress.".into(),
        ),
        RegistryError::Email {
            field: EmailField::Contact,
            ..
        }
        | RegistryError::Contact(_) => (
            "contacts",
            "Skriv varje kontaktperson på en egen rad som: Namn, telefon, e-post.".into(),
        ),
        RegistryError::Phone(_) => (
            "phone",
            "Skriv telefonnumret med siffror, mellanslag, +, - och parenteser.".into(),
        ),
        RegistryError::PostalAddress(problem) => ("postal_address", postal(*problem).into()),
        RegistryError::Certificate(problem) => ("certifikat", certificate(problem)),
        _ => (
            "email",
            "Den officiella adressen är inte en giltig e-postadress.".into(),
        ),
    }
}

fn postal(problem: PostalProblem) -> &'static str {
    match problem {
        PostalProblem::LineTooLong => {
            "Varje rad får ha högst 60 tecken. Skriv adressen på flera rader vid behov."
        }
        PostalProblem::Empty | PostalProblem::NoStreet | PostalProblem::NoPostnummer => {
            "Postadressen behöver minst en adressrad och en sista rad med postnummer (nnn nn) \
             och ort."
        }
        PostalProblem::TooManyLines => {
            "Postadressen får ha högst en c/o-rad, två adressrader och raden med postnummer \
             och ort."
        }
    }
}

/// Why a certificate cannot be used, in Swedish.
pub fn certificate(problem: &CertificateProblem) -> String {
    match problem {
        CertificateProblem::NotACertificate | CertificateProblem::Unencodable => {
            "Filen är inte ett certifikat i PEM- eller DER-format.".into()
        }
        CertificateProblem::Clock => {
            "Certifikatet kunde inte kontrolleras just nu. Försök igen om en stund.".into()
        }
        CertificateProblem::Expired(at) => {
            format!(
                "Certifikatet slutade gälla {}. Ladda upp det nya certifikatet.",
                certificate_day(at)
            )
        }
        CertificateProblem::NotYetValid(at) => {
            format!(
                "Certifikatet gäller först från {}. Ladda upp det när det börjar gälla.",
                certificate_day(at)
            )
        }
        CertificateProblem::NotForEmail => {
            "Certifikatet är inte gjort för e-post (det saknar användningen emailProtection)."
                .into()
        }
        CertificateProblem::NotForEncryption => {
            "Certifikatet är inte gjort för kryptering (nyckelanvändningen saknar \
             keyEncipherment och keyAgreement)."
                .into()
        }
        CertificateProblem::HoldsPrivateKey => {
            "Filen innehåller också en privat nyckel. Inget sparades. Nyckeln har nu lämnat sin \
             ägare och bör bytas ut: be den som sköter certifikatet att ta fram ett nytt, och \
             ladda sedan upp bara certifikatet."
                .into()
        }
        CertificateProblem::Untrusted(_) => {
            "Certifikatet är inte utfärdat av en utfärdare som Migrationsverket godtar för \
             e-post mellan myndigheter. Kontakta Bosättningsenheten om ni är osäkra."
                .into()
        }
        CertificateProblem::NoTrustedCa => {
            "Migrationsverket tar inte emot certifikat här just nu. Skicka certifikatet till \
             Bosättningsenheten."
                .into()
        }
        CertificateProblem::AddressMissing(address) => {
            format!("Certifikatet gäller inte adressen {address}: den ska stå i certifikatet.")
        }
        CertificateProblem::NoAddress => {
            "Ange först adressen för beslut: certifikatet ska gälla den.".into()
        }
    }
}

/// Why a typed code was not accepted.
pub fn code_error(error: &ServiceError) -> &'static str {
    match error {
        ServiceError::Registry(RegistryError::TooManyAttempts(_)) => {
            "För många felaktiga försök: koden gäller inte längre. Skicka en ny kod."
        }
        ServiceError::Registry(RegistryError::ExpiredCode(_)) => {
            "Koden har slutat gälla. Skicka en ny kod."
        }
        ServiceError::Registry(
            RegistryError::NoCodeSent { .. } | RegistryError::NothingPending(_),
        ) => "Ingen kod är skickad till adressen ännu. Skicka en kod först.",
        _ => "Fel kod. Kontrollera koden i meddelandet och försök igen (högst fem försök per kod).",
    }
}

/// Why a code could not be sent. The relay's and TLS's details stay in the log: they mean
/// nothing to the person and tell an attacker about the agency's mail system.
pub fn send_error(error: &ServiceError) -> &'static str {
    match error {
        ServiceError::Registry(RegistryError::TooManyCodes { .. }) => {
            "Flera koder har redan skickats den senaste timmen. Använd den senaste koden, eller \
             försök igen om en timme."
        }
        ServiceError::Registry(RegistryError::NothingPending(_)) => {
            "Ingen ny adress väntar på bekräftelse, så ingen kod skickades."
        }
        ServiceError::NoRelay => {
            "Migrationsverket kan inte skicka skyddad e-post just nu, så ingen kod skickades."
        }
        _ => {
            "Koden kunde inte skickas just nu. Försök igen om en stund; hör av dig till \
             Bosättningsenheten om det inte går."
        }
    }
}

/// Why a check of the municipality's mail servers could not be made, in Swedish.
pub fn check_error(error: &ServiceError) -> &'static str {
    match error {
        ServiceError::NothingToCheck(_) => {
            "Kommunen har ingen bekräftad adress ännu, så det finns ingen e-postserver att kontrollera."
        }
        _ => "Kontrollen kunde inte göras just nu. Försök igen om en stund.",
    }
}

/// A check's verdict, in Swedish.
pub fn verdict(verdict: kurir_protocol::registry::connection::Verdict) -> &'static str {
    match verdict {
        kurir_protocol::registry::connection::Verdict::Passed => "Godkänd",
        kurir_protocol::registry::connection::Verdict::Failed => "Inte godkänd",
    }
}

/// What DANE found for a server, in Swedish.
pub fn dane(dane: kurir_protocol::registry::connection::Dane) -> &'static str {
    use kurir_protocol::registry::connection::Dane;
    match dane {
        Dane::NotValidated => "ej tillämpligt (DNS-svaren är inte DNSSEC-validerade)",
        Dane::NoTlsa => "ingen TLSA-post",
        Dane::Unusable => "TLSA-posterna går inte att använda för e-post",
        Dane::Matched => "TLSA-posten stämmer med certifikatet",
        Dane::NotMatched => "TLSA-posten stämmer inte med certifikatet",
    }
}

/// A job's state, in Swedish.
pub fn state(state: kurir_protocol::state::JobState) -> &'static str {
    use kurir_protocol::state::JobState::*;
    match state {
        Received => "mottaget",
        Queued => "i kö",
        Sending => "skickas nu",
        Deferred => "väntar på nytt försök",
        FallenBack => "går med post i stället",
        PrintQueued => "i utskriftskön",
        Printed => "utskrivet och postat",
        Delivered => "skickat",
        Failed => "misslyckat",
        Cancelled => "stoppat",
        Held => "pausat",
        Quarantined => "i karantän (felaktig inlämning)",
    }
}

/// A document's kind, in Swedish.
pub fn document(kind: kurir_protocol::job::DocumentKind) -> &'static str {
    kind.swedish_title()
}

/// Why a document was refused, in Swedish (the field shows it).
pub fn pdf_problem(problem: &kurir_protocol::pdf::PdfError) -> String {
    use kurir_protocol::pdf::{ActiveContent, PdfError};
    match problem {
        PdfError::TooLarge { max, .. } => {
            format!("Filen är för stor: högst {} MB tas emot.", max / 1_000_000)
        }
        PdfError::NotPdf => "Filen är inte en PDF.".into(),
        PdfError::Damaged(_) => {
            "PDF-filen är skadad eller ofullständig. Spara eller exportera den igen och ladda \
             upp den nya filen."
                .into()
        }
        PdfError::Encrypted => {
            "PDF-filen är krypterad eller lösenordsskyddad. Spara den utan lösenord: vägen till \
             kommunen skyddar den."
                .into()
        }
        PdfError::NoPages => "PDF-filen har inga sidor.".into(),
        PdfError::TooManyPages { max, .. } => format!("PDF-filen har fler än {max} sidor."),
        PdfError::ActiveContent(what) => {
            let what = match what {
                ActiveContent::JavaScript => "JavaScript",
                ActiveContent::Launch => "en åtgärd som startar ett program",
                ActiveContent::FormSubmission => "ett formulär som skickar data",
                ActiveContent::EmbeddedContentAction => "en åtgärd som öppnar inbäddat innehåll",
                ActiveContent::EmbeddedFile => "en inbäddad fil",
                ActiveContent::RichMedia => "inbäddad media",
                ActiveContent::XfaForm => "ett XFA-formulär",
            };
            format!(
                "PDF-filen innehåller {what}, vilket inte får finnas i ett beslut. Exportera den \
                 igen som vanlig PDF (PDF/A)."
            )
        }
        PdfError::Bomb { .. } => {
            "PDF-filens innehåll är orimligt stort när det packas upp. Exportera den igen.".into()
        }
    }
}

/// Why the desk could not do what was asked, in Swedish; `None` for refusals that have a page
/// of their own (no access, no such job).
pub fn desk_error(error: &ServiceError) -> String {
    use kurir_protocol::action::StateHint;
    match error {
        ServiceError::WrongState { state: s, hint, .. } => {
            let why = match hint {
                StateHint::BeingSent => "det skickas just nu; försök igen om en stund",
                StateHint::RetryNeedsWaiting => "bara utskick som väntar kan skickas igen",
                StateHint::HoldNeedsWaiting => "bara utskick som väntar kan pausas",
                StateHint::ReleaseNeedsHeld => "bara pausade utskick kan fortsätta",
                StateHint::Finished => "det är redan avslutat",
                StateHint::NoEmailRecipient => "ingen mottagare väntar på e-post",
                StateHint::NoOpenAlert => "det har inget öppet larm",
                _ => "det går inte med utskickets status",
            };
            format!("Det gick inte: {why}. (Utskickets status: {}.)", state(*s))
        }
        ServiceError::ReasonRequired => "Skriv ett skäl: det sparas i utskickets historik.".into(),
        ServiceError::ReasonTooLong { max } => {
            format!("Texten är för lång: högst {max} tecken. Skriv det kortare.")
        }
        ServiceError::PersonalDataInText(found) => format!(
            "Texten ser ut att innehålla {}. Den sparas för alltid i utskickets historik och i \
             revisionskedjan, som inte går att rensa. Skriv den utan numret.",
            match found {
                kurir_protocol::free_text::PersonalData::CaseNumber => "ett dossiernummer",
                kurir_protocol::free_text::PersonalData::IdentityNumber => "ett personnummer",
            }
        ),
        ServiceError::Draft(kurir_protocol::draft::DraftError::Gone) => {
            "Utkastet finns inte längre (det är redan skickat eller äldre än en timme). Fyll i \
             formuläret igen."
                .into()
        }
        ServiceError::Draft(kurir_protocol::draft::DraftError::TooMany) => format!(
            "Du har redan {} utkast eller sparade filer som inte är skickade. De tas bort inom en \
             timme; försök igen då.",
            kurir_protocol::draft::MAX_DRAFTS_PER_PERSON
        ),
        _ => "Det gick inte just nu. Försök igen om en stund.".into(),
    }
}

/// One step of a job's history, in Swedish, for the desk's timeline; `when` words a time.
/// Servers' own replies stay out of the sentence: the receipt's technical part has them.
pub fn event(what: &EventKind, when: &dyn Fn(jiff::Timestamp) -> String) -> String {
    use kurir_protocol::event::{FallBack, PersonAction};
    use EventKind::*;
    let kommuner = |codes: &[kurir_protocol::job::Kommunkod]| {
        let names = kurir_protocol::job::join_kommunkoder(codes);
        match codes.len() {
            1 => format!("kommun {names}"),
            _ => format!("kommunerna {names}"),
        }
    };
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    match what {
        Claimed {
            documents,
            pages: Some(pages),
        } => format!(
            "Mottaget och kontrollerat: {}, sammanlagt {}.",
            plural(*documents, "handling", "handlingar"),
            plural(*pages as usize, "sida", "sidor")
        ),
        Claimed { pages: None, .. } => "Mottaget.".into(),
        Routed { routes } => {
            let each: Vec<String> = routes
                .iter()
                .map(|r| match (r.channel, r.post_reason) {
                    (kurir_protocol::state::Channel::Email, _) => {
                        format!("kommun {} med skyddad e-post", r.kommunkod)
                    }
                    (_, Some(reason)) => format!(
                        "kommun {} med post ({})",
                        r.kommunkod,
                        post_reason_short(reason)
                    ),
                    (_, None) => format!("kommun {} med post", r.kommunkod),
                })
                .collect();
            format!("Väg: {}.", each.join("; "))
        }
        Duplicate { first, .. } => format!(
            "Skickades inte: samma inlämning som utskick {first}. Dess kvitto visar hur det gick."
        ),
        Quarantined { .. } => "Felaktig inlämning, lagd i karantän: handlingarna skickas inte. \
                               Ett larm har skickats."
            .into(),
        MunicipalityHeld { kommunkod } => {
            format!("Väntar: driften har pausat utskick till kommun {kommunkod}.")
        }
        Sending { .. } => "Skickas med skyddad e-post.".into(),
        Accepted { kommunkod, .. } => format!(
            "Kommun {kommunkod}: Migrationsverkets e-postserver tog emot e-posten över krypterad \
             förbindelse."
        ),
        AttemptDeferred { kommunkod, .. } => {
            format!("Kommun {kommunkod}: e-posten kom inte fram den här gången och skickas igen.")
        }
        DeliveryUnknown { kommunkod, .. } => format!(
            "Kommun {kommunkod}: oklart om e-posten kom fram. Den skickas igen, så kommunen kan \
             få den två gånger."
        ),
        Rejected { kommunkod, .. } => format!(
            "Kommun {kommunkod}: kommunens e-postserver tog inte emot e-posten. Handlingarna går \
             med post i stället."
        ),
        NoRoute { kommunkod, .. } => format!(
            "Kommun {kommunkod}: skyddad e-post kan inte längre användas (kommunens uppgifter har \
             ändrats). Handlingarna går med post i stället."
        ),
        ComposeFailed { kommunkod, .. } => format!(
            "Kommun {kommunkod}: e-posten kunde inte signeras eller krypteras. Nytt försök görs."
        ),
        Deferred { waiting, next, .. } => format!(
            "Nytt försök med e-post till {} {}.",
            kommuner(waiting),
            when(*next)
        ),
        FellBack { why, to } => match why {
            FallBack::Deadline => format!(
                "E-posten till {} kom inte fram i tid. Handlingarna går med post i stället.",
                kommuner(to)
            ),
            FallBack::NoRelay => format!(
                "Migrationsverket kan inte skicka skyddad e-post just nu. Handlingarna till {} går \
                 med post i stället.",
                kommuner(to)
            ),
        },
        Letters {
            count,
            batch,
            address_missing,
        } => {
            let mut text = format!(
                "{} i utskriftsbatch {batch}.",
                plural(*count, "brev", "brev")
            );
            if *address_missing {
                text.push_str(" Postadress saknades: brevet går till kommunens registratur.");
            }
            text
        }
        Settled => "Klart: handlingarna är skickade till alla mottagare, med e-post eller via \
                    utskriftskön."
            .into(),
        Expired { waiting } => format!(
            "Misslyckat: handlingarna nådde inte {} i tid. Ett larm har skickats.",
            kommuner(waiting)
        ),
        InterruptedWhileSending => {
            "Avbrutet medan det skickades (kurir startades om). Skickas igen.".into()
        }
        HandlingFailed { .. } => "Ett tekniskt fel uppstod. Nytt försök görs om en stund.".into(),
        ByPerson { action, by, reason } => {
            let by = who(by);
            let done = match action {
                PersonAction::RetryRequested => "Nytt försök begärt".to_string(),
                PersonAction::Held => "Pausat".into(),
                PersonAction::Released => "Återupptaget".into(),
                PersonAction::Acknowledged { alerts } => {
                    let what: Vec<&str> = alerts
                        .iter()
                        .map(|k| kurir_protocol::kinds::rubrik(*k))
                        .collect();
                    format!("Larmet stängt ({})", what.join("; "))
                }
                PersonAction::Cancelled => "Stoppat".into(),
                PersonAction::ReroutedToPost => "Ändrat till post".into(),
                PersonAction::ReleasedFromQuarantine { .. } => "Släppt ur karantän".into(),
                PersonAction::DeletedFromQuarantine => "Raderat ur karantän".into(),
                PersonAction::CalledNoAnswer => "Ringt utan svar".into(),
            };
            let still = match action {
                PersonAction::CalledNoAnswer => " Larmet är kvar.",
                _ => "",
            };
            if reason.trim().is_empty() {
                format!("{done} av {by}.{still}")
            } else {
                format!(
                    "{done} av {by}: {}.{still}",
                    reason.trim().trim_end_matches('.')
                )
            }
        }
        Printed { batch, by, note } => {
            let mut text = format!(
                "Utskriftsbatch {batch} är utskriven och postad (bekräftat av {})",
                who(by)
            );
            if !note.trim().is_empty() {
                text.push_str(&format!(": {}", note.trim()));
            }
            text.push('.');
            text
        }
        Reports {
            kommunkod,
            taken,
            fell_back,
            elsewhere,
            conflicts,
        } => {
            use kurir_protocol::kinds::ReportKind;
            let mut parts: Vec<String> = taken
                .iter()
                .map(|r| match r.kind {
                    ReportKind::Delivered => "levererat till kommunens e-postserver".to_string(),
                    ReportKind::Relayed => "skickat vidare till en server som inte lämnar \
                                            leveransrapporter (svagare bevis)"
                        .into(),
                    ReportKind::Failed => {
                        "leveransen misslyckades efter att e-posten tagits emot".into()
                    }
                    ReportKind::Delayed => "leveransen är försenad".into(),
                    ReportKind::Displayed => "e-posten har öppnats".into(),
                    _ => "annan rapport".into(),
                })
                .collect();
            if *fell_back {
                parts.push("handlingarna går med post i stället".into());
            }
            if !elsewhere.is_empty() {
                parts.push(
                    "en rapport gällde en annan brevlåda än den e-posten skickades till (sparad, \
                     driften får veta)"
                        .into(),
                );
            }
            if !conflicts.is_empty() {
                parts.push("en rapport som motsäger de tidigare lades åt sidan".into());
            }
            format!("Kommun {kommunkod}: {}.", parts.join("; "))
        }
        NotConfirmedInTime { kommunkod, .. } => {
            format!("Kommun {kommunkod}: ingen leveransrapport kom i tid. Ett larm har skickats.")
        }
        NotReadInTime { kommunkod, .. } => format!(
            "Kommun {kommunkod}: e-posten har inte öppnats i tid. Ett larm har skickats (se Att \
             ringa)."
        ),
        DocumentsRemoved => "Handlingarna har gallrats efter lagringstiden. Kvittot och \
                             revisionskedjan behåller deras SHA-256."
            .into(),
        // Words a migration or a test gave, in the history's English: not a sentence of ours.
        Note { .. } => "Händelse från en äldre version av kurir.".into(),
    }
}

/// Why post, in a few Swedish words (the timeline's).
fn post_reason_short(reason: PostReason) -> &'static str {
    match reason {
        PostReason::NoRelay => "ingen skyddad e-post just nu",
        PostReason::NoSecureConnection => "ingen säker anslutning",
        PostReason::NoVerifiedAddress => "ingen bekräftad adress",
        PostReason::ConnectionNotChecked => "e-postservern är inte kontrollerad",
        PostReason::ConnectionFailed => "kontrollen av e-postservern gick inte igenom",
        PostReason::ConnectionCheckOutdated => "kontrollen av e-postservern är för gammal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_date_reads_as_a_swedish_day_and_odd_text_stays_as_it_is() {
        assert_eq!(certificate_day("Dec  7 10:00:00 2026 GMT"), "2026-12-07");
        assert_eq!(certificate_day("Jun 30 23:30:00 2027 GMT"), "2027-07-01");
        assert_eq!(certificate_day("someday"), "someday");
    }

    #[test]
    fn a_history_entry_says_what_changed_to_what_and_who_did_it_in_swedish() {
        let before = Registered {
            phone: Some("090-16 10 00".into()),
            ..Registered::default()
        };
        let after = Registered {
            phone: Some("090-16 20 00".into()),
            decision_email: Some("beslut@umea.se".into()),
            ..Registered::default()
        };
        let change = RegistryChange {
            at: Timestamp::UNIX_EPOCH,
            operator: "SE2321000016-abc1 (Anna Berg) via portal".into(),
            what: "set".into(),
            action: Some(RegistryAction::Set),
            before,
            after,
            notice: None,
        };
        assert_eq!(
            registry_change(&change),
            vec![
                "Särskild adress för beslut satt till beslut@umea.se.".to_string(),
                "Telefon ändrad från 090-16 10 00 till 090-16 20 00.".to_string(),
            ]
        );
        assert_eq!(
            who(&change.operator),
            "Anna Berg (SE2321000016-abc1), kommunen"
        );
        assert_eq!(who("kurir"), "kurir (automatiskt)");
        assert_eq!(when(Timestamp::UNIX_EPOCH), "1970-01-01 01:00");
    }
}
