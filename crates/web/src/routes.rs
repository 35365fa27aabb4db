//! The portal's pages and forms: each handler asks the service (through [`Backend`]) on behalf
//! of the signed-in person and renders the answer in Swedish; what went wrong is worded from
//! the error's variant ([`words`]).

use std::sync::Arc;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::Markup;
use serde::Deserialize;

use super::backend::{Asked, Backend};
use super::pages::{self, Area, Fields, Frame, Notice};
use super::words;
use kurir_protocol::config::SenderSettings;
use kurir_protocol::job::Kommunkod;
use kurir_protocol::registry::{Changes, Person, RegistryAction, RegistryError, Seed};
use kurir_protocol::reply::MunicipalityView;
use kurir_protocol::{call, Call, ServiceError};

/// What the portal's handlers share.
pub struct Portal {
    backend: Backend,
    seed: Seed,
    sender: SenderSettings,
    csrf_key: Vec<u8>,
    /// Uploads of the dispatch desk read at once: each may hold
    /// [`super::DESK_UPLOAD_BYTES`] in memory.
    pub(super) uploads: tokio::sync::Semaphore,
    /// The HSA-ids with an upload being read: one at a time each, so one card cannot hold
    /// every slot.
    pub(super) uploading: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// How many desk uploads the portal reads at once (a handful of caseworkers send decisions;
/// more at one moment wait a little, and memory stays bounded).
const UPLOADS_AT_ONCE: usize = 4;

impl Portal {
    /// The portal over the daemon at `backend`.
    pub fn new(backend: Backend, seed: Seed, sender: SenderSettings) -> Self {
        let mut csrf_key = vec![0u8; 32];
        if openssl::rand::rand_bytes(&mut csrf_key).is_err() {
            // Without randomness no token can be trusted: an empty key makes every post fail.
            csrf_key.clear();
        }
        Portal {
            backend,
            seed,
            sender,
            csrf_key,
            uploads: tokio::sync::Semaphore::new(UPLOADS_AT_ONCE),
            uploading: std::sync::Mutex::default(),
        }
    }

    /// The form token of `person`: an HMAC of their HSA-id under a key of this run.
    pub(super) fn csrf_token(&self, person: &Person) -> String {
        let message = format!("portal-csrf:{}", person.hsa_id);
        kurir_protocol::digest::hmac_sha256_hex(&self.csrf_key, message.as_bytes())
            .unwrap_or_default()
    }

    pub(super) fn token_ok(&self, person: &Person, token: &str) -> bool {
        !self.csrf_key.is_empty()
            && kurir_protocol::digest::same_secret(&self.csrf_token(person), token)
    }

    /// Which door this program serves.
    pub(super) fn door(&self) -> kurir_protocol::config::WebDoor {
        self.backend.door()
    }

    pub(super) fn seed(&self) -> &Seed {
        &self.seed
    }

    fn name_of(&self, code: Kommunkod) -> String {
        self.seed
            .get(code)
            .map(|m| m.name.clone())
            .unwrap_or_else(|| format!("kommun {code}"))
    }

    /// Asks the service for `person`.
    pub(super) async fn ask<C: Call>(&self, person: &Person, call: C) -> Result<C::Reply, Asked> {
        self.backend.ask(person, call).await
    }
}

pub(super) fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

impl Portal {
    /// A post whose form token did not hold (an old page, or a form not from here).
    pub(super) fn form_expired(&self) -> Response {
        self.refused(
            StatusCode::FORBIDDEN,
            "Formuläret har gått ut",
            "Formuläret kunde inte tas emot: sidan var för gammal eller kom inte härifrån. \
             Inget sparades. Gå tillbaka, ladda om sidan och försök igen.",
        )
    }

    /// Whom the person contacts: Bosättningsenheten.
    pub(super) fn contact(&self) -> pages::Contact<'_> {
        pages::Contact {
            email: &self.sender.email,
            phone: &self.sender.phone,
        }
    }

    /// The page while the daemon does not answer, in this door's frame.
    pub(super) fn unavailable(&self) -> Response {
        html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::unavailable(Area::of(self.door())),
        )
    }

    /// A refusal page in this door's frame, with whom to contact.
    pub(super) fn refused(&self, status: StatusCode, title: &str, text: &str) -> Response {
        html(
            status,
            pages::refused(Area::of(self.door()), title, text, &self.contact()),
        )
    }
}

/// The page for a request the service refused for reasons of access or existence; `None`
/// when the refusal is about the request's content (the caller shows it at its field).
fn refusal_page(portal: &Portal, person: &Person, error: &ServiceError) -> Option<Response> {
    match error {
        ServiceError::NoGrant { code, .. } => {
            tracing::warn!(hsa_id = %person.hsa_id, kommunkod = %code, "portal: no grant for this municipality");
            Some(portal.refused(
                StatusCode::FORBIDDEN,
                "Ingen behörighet",
                &format!(
                    "Ditt HSA-id ({}) har inte behörighet för {}. Migrationsverket ger behörighet \
                     per person; kontakta Bosättningsenheten om du ska sköta kommunens uppgifter.",
                    person.hsa_id,
                    portal.name_of(*code)
                ),
            ))
        }
        ServiceError::Registry(RegistryError::UnknownKommunkod(_)) => Some(portal.refused(
            StatusCode::NOT_FOUND,
            "Kommunen finns inte",
            "Det finns ingen kommun med den kommunkoden.",
        )),
        ServiceError::NotPermitted => Some(portal.refused(
            StatusCode::FORBIDDEN,
            "Ingen behörighet",
            "Det du försökte göra får bara Migrationsverket göra.",
        )),
        ServiceError::Store(_) | ServiceError::Internal(_) | ServiceError::Io { .. } => {
            tracing::error!(error = %error, "portal: the service failed");
            Some(portal.unavailable())
        }
        _ => None,
    }
}

pub(super) async fn index(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
) -> Response {
    let token = portal.csrf_token(&person);
    let frame = Frame {
        name: &person.name,
        hsa_id: &person.hsa_id,
        csrf: &token,
    };
    let mine = match portal.ask(&person, call::MyMunicipalities {}).await {
        Ok(list) => list,
        Err(Asked::Unavailable) => return portal.unavailable(),
        Err(Asked::Refused(e)) => {
            return refusal_page(&portal, &person, &e).unwrap_or_else(|| portal.unavailable())
        }
    };
    let mine: Vec<(String, String)> = mine
        .into_iter()
        .map(|m| (m.code.to_string(), m.name))
        .collect();
    html(StatusCode::OK, pages::index(&frame, &mine))
}

pub(super) async fn accessibility(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
) -> Response {
    let token = portal.csrf_token(&person);
    let frame = Frame {
        name: &person.name,
        hsa_id: &person.hsa_id,
        csrf: &token,
    };
    html(
        StatusCode::OK,
        pages::accessibility(Area::of(portal.door()), Some(&frame), &portal.contact()),
    )
}

pub(super) async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::STYLE,
    )
}

/// The municipality's view, or the page that says why there is none.
async fn view(
    portal: &Portal,
    person: &Person,
    code: Kommunkod,
) -> Result<Box<MunicipalityView>, Box<Response>> {
    match portal.ask(person, call::MunicipalityShow { code }).await {
        Ok(view) => Ok(view),
        Err(Asked::Unavailable) => Err(Box::new(portal.unavailable())),
        Err(Asked::Refused(e)) => Err(Box::new(
            refusal_page(portal, person, &e).unwrap_or_else(|| portal.unavailable()),
        )),
    }
}

/// Renders the municipality page with `notice` and the form `fields`.
async fn render(
    portal: &Portal,
    person: &Person,
    code: Kommunkod,
    notice: Notice,
    fields: Option<Fields>,
    status: StatusCode,
) -> Response {
    let view = match view(portal, person, code).await {
        Ok(view) => view,
        Err(page) => return *page,
    };
    let history = portal
        .ask(person, call::MunicipalityHistory { code })
        .await
        .unwrap_or_default();
    let token = portal.csrf_token(person);
    let frame = Frame {
        name: &person.name,
        hsa_id: &person.hsa_id,
        csrf: &token,
    };
    let fields = fields.unwrap_or_else(|| Fields::of(&view.registered));
    html(
        status,
        pages::municipality(
            &frame,
            code.as_str(),
            &view.municipality.name,
            &words::route(&view.route),
            &view.registered,
            view.connection.first(),
            &fields,
            &history,
            &notice,
        ),
    )
}

fn parse_code(portal: &Portal, code: &str) -> Result<Kommunkod, Box<Response>> {
    code.parse::<Kommunkod>().map_err(|_| {
        Box::new(portal.refused(
            StatusCode::NOT_FOUND,
            "Kommunen finns inte",
            "Det finns ingen kommun med den kommunkoden.",
        ))
    })
}

#[derive(Deserialize)]
pub(super) struct Message {
    meddelande: Option<String>,
}

pub(super) async fn municipality(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Path(code): Path<String>,
    Query(message): Query<Message>,
) -> Response {
    let code = match parse_code(&portal, &code) {
        Ok(code) => code,
        Err(page) => return *page,
    };
    let said = |text: &str| Notice::Done(text.to_string());
    let notice = match message.meddelande.as_deref() {
        Some("sparat") => said("Ändringarna är sparade och gäller nu."),
        Some("sparat-vantar") => said(
            "Ändringarna är sparade. Det som väntar på Migrationsverkets godkännande (se nedan) \
             används först när det är godkänt; resten gäller nu.",
        ),
        Some("sparat-kod-skickad") => said(
            "Steg 1 av 2 är klart: ändringarna är sparade och en kod är skickad till den nya \
             adressen. Den används först när du har skrivit in koden nedan.",
        ),
        Some("certifikat") => said("Certifikatet är sparat."),
        Some("kod-skickad") => said("En ny kod är skickad. Skriv in den nedan."),
        Some("kontrollerad") => said("Er e-postserver är kontrollerad; resultatet står nedan."),
        Some("bekraftad") => confirmed_notice(&portal, &person, code).await,
        Some("bekraftad-vantar") => said(
            "Adressen är bekräftad. Den ligger utanför kommunens e-postdomäner och används när \
             Migrationsverket har godkänt den; till dess går beslut som förut.",
        ),
        Some("oforandrat") => said("Inget ändrades."),
        _ => Notice::None,
    };
    render(&portal, &person, code, notice, None, StatusCode::OK).await
}

/// A post's checks before anything is asked: its form token, then the kommunkod's form.
fn checked(
    portal: &Portal,
    person: &Person,
    token: &str,
    code: &str,
) -> Result<Kommunkod, Box<Response>> {
    if !portal.token_ok(person, token) {
        return Err(Box::new(portal.form_expired()));
    }
    parse_code(portal, code)
}

fn done(code: Kommunkod, what: &str) -> Response {
    Redirect::to(&format!("/kommun/{code}?meddelande={what}")).into_response()
}

/// What every action does after its own checks: asks the service, then sends the person back
/// to the page with a notice, or shows the page again with what went wrong.
async fn act<C: Call>(
    portal: &Portal,
    person: &Person,
    code: Kommunkod,
    command: C,
    done_word: &str,
    failed: impl FnOnce(&ServiceError) -> (Notice, Option<Fields>, StatusCode),
) -> Response {
    match portal.ask(person, command).await {
        Ok(_) => done(code, done_word),
        Err(Asked::Unavailable) => portal.unavailable(),
        Err(Asked::Refused(error)) => {
            if let Some(page) = refusal_page(portal, person, &error) {
                return page;
            }
            let (notice, fields, status) = failed(&error);
            render(portal, person, code, notice, fields, status).await
        }
    }
}

#[derive(Deserialize)]
pub(super) struct ChangeForm {
    csrf: String,
    email: String,
    decision_email: String,
    phone: String,
    contacts: String,
    postal_address: String,
}

pub(super) async fn change(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Path(code): Path<String>,
    Form(form): Form<ChangeForm>,
) -> Response {
    let code = match checked(&portal, &person, &form.csrf, &code) {
        Ok(code) => code,
        Err(page) => return *page,
    };
    let now = match view(&portal, &person, code).await {
        Ok(view) => Fields::of(&view.registered),
        Err(page) => return *page,
    };
    let typed = Fields {
        email: form.email.trim().to_string(),
        decision_email: form.decision_email.trim().to_string(),
        phone: form.phone.trim().to_string(),
        contacts: form.contacts.replace("\r\n", "\n").trim().to_string(),
        postal_address: form.postal_address.replace("\r\n", "\n").trim().to_string(),
    };
    let differs = |a: &str, b: &str| (a != b).then(|| a.to_string());
    let changes = Changes {
        email: differs(&typed.email, &now.email),
        decision_email: differs(&typed.decision_email, &now.decision_email),
        phone: differs(&typed.phone, &now.phone),
        contacts: differs(&typed.contacts, &now.contacts).map(|c| {
            c.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        }),
        postal_address: differs(&typed.postal_address, &now.postal_address),
        ..Changes::default()
    };
    if changes == Changes::default() {
        return done(code, "oforandrat");
    }
    let command = call::MunicipalitySet { code, changes };
    save(&portal, &person, code, command, typed).await
}

/// What the page says after an address was confirmed: where decisions go now (by e-mail to
/// it, or still by post until its mail server passes the check), and who was told, as the
/// confirmation's own history entry recorded it.
async fn confirmed_notice(portal: &Portal, person: &Person, code: Kommunkod) -> Notice {
    let goes = match portal.ask(person, call::MunicipalityShow { code }).await {
        Ok(view) => match view.route {
            kurir_protocol::registry::route::Route::Email { .. } => {
                "beslut skickas nu dit med skyddad e-post."
            }
            kurir_protocol::registry::route::Route::Post { .. } => {
                "beslut går ändå med post tills vidare; skälet står under Så skickas beslut nu."
            }
        },
        Err(_) => "se nedan hur beslut skickas nu.",
    };
    let history = portal
        .ask(person, call::MunicipalityHistory { code })
        .await
        .unwrap_or_default();
    let told = history
        .last()
        .filter(|c| matches!(c.action, Some(RegistryAction::Confirmed { .. })))
        .and_then(|c| c.notice.as_ref())
        .map(|n| {
            format!(
                " Ett meddelande om ändringen gick till {}.",
                n.to.join(", ")
            )
        })
        .unwrap_or_default();
    Notice::Done(format!("Adressen är bekräftad: {goes}{told}"))
}

/// Saves a change. A new address is step 1 of two: the code goes to it at once, so that the
/// person's next step is only to type it; what waits for the agency's approval is said to.
async fn save(
    portal: &Portal,
    person: &Person,
    code: Kommunkod,
    command: call::MunicipalitySet,
    typed: Fields,
) -> Response {
    let new_address = command.changes.email.is_some() || command.changes.decision_email.is_some();
    match portal.ask(person, command).await {
        Ok(changed) if new_address && changed.registered.pending.is_some() => {}
        Ok(changed) if changed.registered.awaiting_approval.is_some() => {
            return done(code, "sparat-vantar")
        }
        Ok(_) => return done(code, "sparat"),
        Err(Asked::Unavailable) => return portal.unavailable(),
        Err(Asked::Refused(error)) => {
            if let Some(page) = refusal_page(portal, person, &error) {
                return page;
            }
            let notice = match &error {
                ServiceError::Registry(e) => {
                    let (field, words) = words::field_error(e);
                    Notice::Error(words, Some(field))
                }
                _ => Notice::Error("Ändringarna kunde inte sparas.".into(), None),
            };
            return render(
                portal,
                person,
                code,
                notice,
                Some(typed),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    }
    match portal.ask(person, call::MunicipalityVerify { code }).await {
        Ok(_) => done(code, "sparat-kod-skickad"),
        Err(Asked::Unavailable) => portal.unavailable(),
        Err(Asked::Refused(error)) => {
            if let Some(page) = refusal_page(portal, person, &error) {
                return page;
            }
            let text = format!(
                "Ändringarna är sparade, men koden kunde inte skickas: {}",
                words::send_error(&error)
            );
            render(
                portal,
                person,
                code,
                Notice::Error(text, None),
                None,
                StatusCode::BAD_GATEWAY,
            )
            .await
        }
    }
}

pub(super) async fn certificate(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Path(code): Path<String>,
    mut multipart: Multipart,
) -> Response {
    let mut token = String::new();
    let mut file = Vec::new();
    while let Ok(Some(field)) = multipart.next_field().await {
        match field.name() {
            Some("csrf") => token = field.text().await.unwrap_or_default(),
            Some("certifikat") => {
                file = field.bytes().await.map(|b| b.to_vec()).unwrap_or_default()
            }
            _ => {}
        }
    }
    let code = match checked(&portal, &person, &token, &code) {
        Ok(code) => code,
        Err(page) => return *page,
    };
    let problem = |text: String| Notice::Error(text, Some("certifikat"));
    let pem = if file.starts_with(b"-----BEGIN") {
        String::from_utf8(file).ok()
    } else {
        openssl::x509::X509::from_der(&file)
            .and_then(|c| c.to_pem())
            .ok()
            .and_then(|p| String::from_utf8(p).ok())
    };
    let Some(pem) = pem else {
        let words =
            words::certificate(&kurir_protocol::registry::CertificateProblem::NotACertificate);
        return render(
            &portal,
            &person,
            code,
            problem(words),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let command = call::MunicipalitySet {
        code,
        changes: Changes {
            smime_cert_pem: Some(pem),
            ..Changes::default()
        },
    };
    act(&portal, &person, code, command, "certifikat", |error| {
        let words = match error {
            ServiceError::Registry(RegistryError::Certificate(p)) => words::certificate(p),
            _ => "Certifikatet kunde inte sparas.".into(),
        };
        (problem(words), None, StatusCode::UNPROCESSABLE_ENTITY)
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct TokenForm {
    csrf: String,
}

pub(super) async fn send_code(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Path(code): Path<String>,
    Form(form): Form<TokenForm>,
) -> Response {
    let code = match checked(&portal, &person, &form.csrf, &code) {
        Ok(code) => code,
        Err(page) => return *page,
    };
    let command = call::MunicipalityVerify { code };
    act(&portal, &person, code, command, "kod-skickad", |error| {
        let status = match error {
            ServiceError::Registry(RegistryError::TooManyCodes { .. }) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ServiceError::Registry(RegistryError::NothingPending(_)) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            _ => StatusCode::BAD_GATEWAY,
        };
        (
            Notice::Error(words::send_error(error).into(), None),
            None,
            status,
        )
    })
    .await
}

/// "Kontrollera nu": municipality IT check their own mail servers after fixing them.
pub(super) async fn check_connection(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Path(code): Path<String>,
    Form(form): Form<TokenForm>,
) -> Response {
    let code = match checked(&portal, &person, &form.csrf, &code) {
        Ok(code) => code,
        Err(page) => return *page,
    };
    let command = call::MunicipalityCheck { code };
    act(&portal, &person, code, command, "kontrollerad", |error| {
        let status = match error {
            ServiceError::NothingToCheck(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_GATEWAY,
        };
        (
            Notice::Error(words::check_error(error).into(), None),
            None,
            status,
        )
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct ConfirmForm {
    csrf: String,
    kod: String,
}

pub(super) async fn confirm(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Path(code): Path<String>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    let code = match checked(&portal, &person, &form.csrf, &code) {
        Ok(code) => code,
        Err(page) => return *page,
    };
    let command = call::MunicipalityConfirm {
        code,
        secret: form.kod.trim().to_string(),
    };
    match portal.ask(&person, command).await {
        Ok(confirmed) if confirmed.awaiting_approval.is_some() => done(code, "bekraftad-vantar"),
        Ok(_) => done(code, "bekraftad"),
        Err(Asked::Unavailable) => portal.unavailable(),
        Err(Asked::Refused(error)) => {
            if let Some(page) = refusal_page(&portal, &person, &error) {
                return page;
            }
            render(
                &portal,
                &person,
                code,
                Notice::Error(words::code_error(&error).into(), Some("kod")),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}
