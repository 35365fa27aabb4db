//! The municipality portal: a small web page, served by `kurir run` on `[portal] listen`, where
//! municipality IT sign in with the SITHS certificate on their card (a TLS client certificate,
//! [`tls`]) and manage their municipality's registration themselves — addresses, phone,
//! contacts, postal address, S/MIME certificate, and the proof of a new address by a mailed
//! code — with the same rules and the same history as the command line: every change goes
//! through the control socket's [`Handler`], recorded with the person's HSA-id and name as the
//! operator. A person sees only the municipalities the agency granted to their HSA-id
//! (`kurir municipality grant`).
//!
//! Web security: HTTPS only with a verified client certificate; a form token bound to the
//! person on every post and cross-site posts refused (the browser sends the certificate on its
//! own, like a cookie); a strict Content-Security-Policy, `nosniff`, `no-store`,
//! `Referrer-Policy: same-origin`, HSTS; bodies bounded; wrong codes bounded per code
//! ([`crate::registry::MAX_CODE_ATTEMPTS`]).

pub mod pages;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use maud::Markup;
use openssl::ssl::{Ssl, SslAcceptor};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::cli::control::{Handler, Request as ControlRequest};
use crate::config::SenderSettings;
use crate::job::Kommunkod;
use crate::registry::{Changes, Registered, RegistryChange, Seed};
use crate::store::Store;
use pages::{Fields, Frame, Notice};
use tls::Person;

/// Largest request body: forms and a certificate file.
const MAX_BODY: usize = 64 * 1024;
/// Most connections served at once.
const MAX_CONNECTIONS: usize = 64;
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the portal's handlers share.
pub struct Portal {
    handler: Arc<Handler>,
    store: Store,
    seed: Arc<Seed>,
    sender: SenderSettings,
    csrf_key: Vec<u8>,
}

impl Portal {
    /// The portal over the daemon's handler and store.
    pub fn new(
        handler: Arc<Handler>,
        store: Store,
        seed: Arc<Seed>,
        sender: SenderSettings,
    ) -> Self {
        let mut csrf_key = vec![0u8; 32];
        if openssl::rand::rand_bytes(&mut csrf_key).is_err() {
            // Without randomness no token can be trusted: an empty key makes every post fail.
            csrf_key.clear();
        }
        Portal {
            handler,
            store,
            seed,
            sender,
            csrf_key,
        }
    }

    /// The form token of `person`: an HMAC of their HSA-id under a key of this run.
    fn csrf_token(&self, person: &Person) -> String {
        use openssl::hash::MessageDigest;
        use openssl::pkey::PKey;
        use openssl::sign::Signer;
        let mac = PKey::hmac(&self.csrf_key)
            .and_then(|key| {
                let mut signer = Signer::new(MessageDigest::sha256(), &key)?;
                signer.update(format!("portal-csrf:{}", person.hsa_id).as_bytes())?;
                signer.sign_to_vec()
            })
            .unwrap_or_default();
        mac.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn token_ok(&self, person: &Person, token: &str) -> bool {
        let expected = self.csrf_token(person);
        // memcmp::eq compares in constant time but panics on unequal lengths.
        !self.csrf_key.is_empty()
            && !expected.is_empty()
            && expected.len() == token.len()
            && openssl::memcmp::eq(expected.as_bytes(), token.as_bytes())
    }
}

/// Serves the portal until shutdown: TLS with a required client certificate, then HTTP with
/// the signed-in person in each request's extensions.
pub async fn serve(
    listener: TcpListener,
    acceptor: SslAcceptor,
    portal: Arc<Portal>,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = router(portal);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((tcp, _)) = accepted else {
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue; // too many at once: the connection is dropped
        };
        let Ok(ssl) = Ssl::new(acceptor.context()) else {
            continue;
        };
        let Ok(mut stream) = tokio_openssl::SslStream::new(ssl, tcp) else {
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let handshake =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, std::pin::Pin::new(&mut stream).accept())
                    .await;
            if !matches!(handshake, Ok(Ok(()))) {
                tracing::debug!(
                    "portal: TLS handshake refused (no, expired or foreign client certificate)"
                );
                return;
            }
            let Some(person) = stream
                .ssl()
                .peer_certificate()
                .and_then(|c| Person::from_certificate(&c))
            else {
                tracing::info!("portal: a verified certificate without an HSA-id; no page");
                return;
            };
            let service =
                hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(person.clone());
                    app.clone().oneshot(req.map(Body::new))
                });
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
        });
    }
}

fn router(portal: Arc<Portal>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/stil.css", get(style))
        .route("/tillganglighet", get(accessibility))
        .route("/kommun/{code}", get(municipality))
        .route("/kommun/{code}/andra", post(change))
        .route("/kommun/{code}/certifikat", post(certificate))
        .route("/kommun/{code}/skicka-kod", post(send_code))
        .route("/kommun/{code}/bekrafta", post(confirm))
        .layer(axum::middleware::from_fn(same_origin_posts))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(portal)
}

/// The headers every page carries.
async fn security_headers(request: Request<Body>, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A post from another site is refused before any handler runs: the browser would send the
/// person's certificate with it.
async fn same_origin_posts(request: Request<Body>, next: Next) -> Response {
    if request.method() == Method::POST && !same_origin(request.headers()) {
        // Read the (bounded) body first: a connection closed with unread data is reset, and
        // the browser would see no answer instead of the refusal.
        let _ = axum::body::to_bytes(request.into_body(), MAX_BODY).await;
        return html(
            StatusCode::FORBIDDEN,
            pages::refused(
                None,
                "Förbjudet",
                "Formuläret skickades från en annan webbplats och togs inte emot.",
            ),
        );
    }
    next.run(request).await
}

fn same_origin(headers: &HeaderMap) -> bool {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = value("sec-fetch-site") {
        if site != "same-origin" && site != "none" {
            return false;
        }
    }
    match (value("origin"), value("host")) {
        (Some(origin), Some(host)) => origin == format!("https://{host}"),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::STYLE,
    )
}

fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

async fn ask(portal: &Portal, request: ControlRequest) -> Result<serde_json::Value, String> {
    let response = portal.handler.handle(request).await;
    if response.ok {
        Ok(response.result)
    } else {
        Err(response.error.unwrap_or_default())
    }
}

async fn index(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
) -> Response {
    let token = portal.csrf_token(&person);
    let frame = Frame {
        name: &person.name,
        hsa_id: &person.hsa_id,
        csrf: &token,
    };
    let store = portal.store.clone();
    let all = tokio::task::spawn_blocking(move || store.all_registered())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let mine: Vec<(String, String)> = all
        .iter()
        .filter(|(_, r)| r.grants.iter().any(|g| g.hsa_id == person.hsa_id))
        .map(|(code, _)| {
            let name = portal
                .seed
                .get(*code)
                .map(|m| m.name.clone())
                .unwrap_or_default();
            (code.to_string(), name)
        })
        .collect();
    html(StatusCode::OK, pages::index(&frame, &mine))
}

async fn accessibility(
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
        pages::accessibility(Some(&frame), &portal.sender.email, &portal.sender.phone),
    )
}

/// The municipality and its registration, if `person` may act for it; else the refusal.
async fn authorize(
    portal: &Portal,
    person: &Person,
    code: &str,
) -> Result<(Kommunkod, String, Registered), Box<Response>> {
    let refused = |status, text: &str| {
        Err(Box::new(html(
            status,
            pages::refused(None, "Ingen behörighet", text),
        )))
    };
    let Ok(code) = code.parse::<Kommunkod>() else {
        return refused(StatusCode::NOT_FOUND, "Det finns ingen sådan kommun.");
    };
    let Some(name) = portal.seed.get(code).map(|m| m.name.clone()) else {
        return refused(StatusCode::NOT_FOUND, "Det finns ingen sådan kommun.");
    };
    let store = portal.store.clone();
    let registered = tokio::task::spawn_blocking(move || store.registered(code))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    if !registered.grants.iter().any(|g| g.hsa_id == person.hsa_id) {
        tracing::warn!(hsa_id = %person.hsa_id, kommunkod = %code, "portal: no grant for this municipality");
        return refused(
            StatusCode::FORBIDDEN,
            &format!(
                "Ditt HSA-id ({}) har inte behörighet för {name}. Migrationsverket ger behörighet \
                 per person; kontakta Bosättningsenheten om du ska sköta kommunens adress.",
                person.hsa_id
            ),
        );
    }
    Ok((code, name, registered))
}

/// Renders the municipality page with `notice` and the form `fields`.
async fn render(
    portal: &Portal,
    person: &Person,
    code: Kommunkod,
    name: &str,
    notice: Notice,
    fields: Option<Fields>,
    status: StatusCode,
) -> Response {
    let show = ask(portal, ControlRequest::MunicipalityShow { code }).await;
    let history = ask(portal, ControlRequest::MunicipalityHistory { code }).await;
    let (route, registered) = match &show {
        Ok(v) => (
            v["route"].as_str().unwrap_or("").to_string(),
            serde_json::from_value::<Registered>(v["registered"].clone()).unwrap_or_default(),
        ),
        Err(_) => (String::new(), Registered::default()),
    };
    let history: Vec<RegistryChange> = history
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let route = swedish_route(&route);
    let token = portal.csrf_token(person);
    let frame = Frame {
        name: &person.name,
        hsa_id: &person.hsa_id,
        csrf: &token,
    };
    let fields = fields.unwrap_or_else(|| Fields::of(&registered));
    html(
        status,
        pages::municipality(
            &frame,
            code.as_str(),
            name,
            &route,
            &registered,
            &fields,
            &history,
            &notice,
        ),
    )
}

/// The route in words for the page.
fn swedish_route(route: &str) -> String {
    if let Some(address) = route.strip_prefix("e-mail to ") {
        format!("Med skyddad e-post till {address}.")
    } else if route.starts_with("post") {
        let why = route
            .trim_start_matches("post")
            .trim_matches([' ', '(', ')']);
        let reason = match why {
            "no SMTP relay configured" => "Migrationsverket skickar ingen skyddad e-post just nu.",
            "municipality has no secure connection" => {
                "kommunen har ingen säker anslutning ännu (Migrationsverket sätter upp den)."
            }
            "no verified secure address" => "ingen adress är bevisad ännu.",
            other => other,
        };
        format!("Med post (brev i fönsterkuvert). Skäl: {reason}")
    } else {
        route.to_string()
    }
}

#[derive(Deserialize)]
struct Message {
    meddelande: Option<String>,
}

async fn municipality(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Path(code): Path<String>,
    Query(message): Query<Message>,
) -> Response {
    let (code, name, _) = match authorize(&portal, &person, &code).await {
        Ok(ok) => ok,
        Err(refused) => return *refused,
    };
    let notice = match message.meddelande.as_deref() {
        Some("sparat") => Notice::Done("Ändringarna är sparade."),
        Some("certifikat") => Notice::Done("Certifikatet är sparat."),
        Some("kod-skickad") => Notice::Done("En kod är skickad till adressen. Skriv in den nedan."),
        Some("bekraftad") => Notice::Done("Adressen är bevisad: beslut skickas nu dit."),
        Some("oforandrat") => Notice::Done("Inget ändrades."),
        _ => Notice::None,
    };
    render(&portal, &person, code, &name, notice, None, StatusCode::OK).await
}

/// A post's checks: its form token, then the person's grant for the municipality.
async fn checked(
    portal: &Portal,
    person: &Person,
    token: &str,
    code: &str,
) -> Result<(Kommunkod, String, Registered), Box<Response>> {
    if !portal.token_ok(person, token) {
        return Err(Box::new(refuse_token()));
    }
    authorize(portal, person, code).await
}

fn refuse_token() -> Response {
    html(
        StatusCode::FORBIDDEN,
        pages::refused(
            None,
            "Förbjudet",
            "Formuläret saknade en giltig kontrollkod. Ladda om sidan och försök igen.",
        ),
    )
}

fn done(code: Kommunkod, what: &str) -> Response {
    Redirect::to(&format!("/kommun/{code}?meddelande={what}")).into_response()
}

#[derive(Deserialize)]
struct ChangeForm {
    csrf: String,
    email: String,
    decision_email: String,
    phone: String,
    contacts: String,
    postal_address: String,
}

/// Which field an error from the registry concerns, and the words for it.
fn field_of(error: &str) -> (&'static str, String) {
    let e = error.to_ascii_lowercase();
    if e.contains("decision") {
        (
            "decision_email",
            "Adressen för beslut är inte en giltig e-postadress.".into(),
        )
    } else if e.contains("telephone") {
        (
            "phone",
            "Skriv telefonnumret med siffror, mellanslag, +, - och parenteser.".into(),
        )
    } else if e.contains("contact") {
        (
            "contacts",
            "Skriv varje kontaktperson på en egen rad som: Namn, telefon, e-post.".into(),
        )
    } else if e.contains("postal address") {
        (
            "postal_address",
            "Postadressen behöver minst en adressrad och en sista rad med postnummer (nnn nn) och ort."
                .into(),
        )
    } else {
        (
            "email",
            "Den officiella adressen är inte en giltig e-postadress.".into(),
        )
    }
}

async fn change(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Path(code): Path<String>,
    Form(form): Form<ChangeForm>,
) -> Response {
    let (code, name, registered) = match checked(&portal, &person, &form.csrf, &code).await {
        Ok(ok) => ok,
        Err(refused) => return *refused,
    };
    let typed = Fields {
        email: form.email.trim().to_string(),
        decision_email: form.decision_email.trim().to_string(),
        phone: form.phone.trim().to_string(),
        contacts: form.contacts.replace("\r\n", "\n").trim().to_string(),
        postal_address: form.postal_address.replace("\r\n", "\n").trim().to_string(),
    };
    let now = Fields::of(&registered);
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
    let request = ControlRequest::MunicipalitySet {
        code,
        changes,
        operator: person.operator(),
    };
    act(&portal, &person, code, &name, request, "sparat", |error| {
        let (field, words) = field_of(&error);
        (
            Notice::Error(words, Some(field)),
            Some(typed),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    })
    .await
}

async fn certificate(
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
    let (code, name, _) = match checked(&portal, &person, &token, &code).await {
        Ok(ok) => ok,
        Err(refused) => return *refused,
    };
    let pem = if file.starts_with(b"-----BEGIN") {
        String::from_utf8(file).ok()
    } else {
        openssl::x509::X509::from_der(&file)
            .and_then(|c| c.to_pem())
            .ok()
            .and_then(|p| String::from_utf8(p).ok())
    };
    let problem = |text: String| Notice::Error(text, Some("certifikat"));
    let Some(pem) = pem else {
        return render(
            &portal,
            &person,
            code,
            &name,
            problem("Filen är inte ett certifikat i PEM- eller DER-format.".into()),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let request = ControlRequest::MunicipalitySet {
        code,
        changes: Changes {
            smime_cert_pem: Some(pem),
            ..Changes::default()
        },
        operator: person.operator(),
    };
    act(
        &portal,
        &person,
        code,
        &name,
        request,
        "certifikat",
        |error| {
            (
                problem(format!("Certifikatet kan inte användas: {error}")),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        },
    )
    .await
}

/// What every action does after its own checks: asks the handler, then sends the person back
/// to the page with a notice, or shows the page again with what went wrong.
async fn act(
    portal: &Portal,
    person: &Person,
    code: Kommunkod,
    name: &str,
    request: ControlRequest,
    done_word: &str,
    failed: impl FnOnce(String) -> (Notice, Option<Fields>, StatusCode),
) -> Response {
    match ask(portal, request).await {
        Ok(_) => done(code, done_word),
        Err(error) => {
            let (notice, fields, status) = failed(error);
            render(portal, person, code, name, notice, fields, status).await
        }
    }
}

#[derive(Deserialize)]
struct TokenForm {
    csrf: String,
}

async fn send_code(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Path(code): Path<String>,
    Form(form): Form<TokenForm>,
) -> Response {
    let (code, name, _) = match checked(&portal, &person, &form.csrf, &code).await {
        Ok(ok) => ok,
        Err(refused) => return *refused,
    };
    let request = ControlRequest::MunicipalityVerify {
        code,
        operator: person.operator(),
    };
    act(
        &portal,
        &person,
        code,
        &name,
        request,
        "kod-skickad",
        |error| {
            (
                Notice::Error(format!("Koden kunde inte skickas: {error}"), None),
                None,
                StatusCode::BAD_GATEWAY,
            )
        },
    )
    .await
}

#[derive(Deserialize)]
struct ConfirmForm {
    csrf: String,
    kod: String,
}

async fn confirm(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Path(code): Path<String>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    let (code, name, _) = match checked(&portal, &person, &form.csrf, &code).await {
        Ok(ok) => ok,
        Err(refused) => return *refused,
    };
    let request = ControlRequest::MunicipalityConfirm {
        code,
        secret: form.kod.trim().to_string(),
        operator: person.operator(),
    };
    act(&portal, &person, code, &name, request, "bekraftad", |error| {
        let words = if error.contains("too many") {
            "För många felaktiga försök: koden gäller inte längre. Skicka en ny kod."
        } else if error.contains("expired") {
            "Koden har slutat gälla. Skicka en ny kod."
        } else if error.contains("no verification code") {
            "Ingen kod är skickad till adressen ännu. Skicka en kod först."
        } else {
            "Fel kod. Kontrollera koden i meddelandet och försök igen (högst fem försök per kod)."
        };
        (
            Notice::Error(words.into(), Some("kod")),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    })
    .await
}
