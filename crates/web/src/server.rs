//! The portal's network side: TLS with a required client certificate, then HTTP/1 with the
//! signed-in person in each request's extensions, and every limit explicit — a permit before
//! each accept, connections per address and per person, a handshake timeout, a header-read
//! timeout that also closes idle kept-alive connections, a timeout per request and a limit on
//! a connection's life. A client that opens connections and sends nothing holds its own share
//! of the slots for seconds; it cannot keep anyone else out.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use openssl::ssl::Ssl;
use tokio::sync::watch;
use tower::ServiceExt;
use tower_http::csrf::CsrfLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use super::pages;
use super::routes::{self, Portal};
use super::{desk, desk_send};
use kurir_protocol::config::WebDoor;
use kurir_protocol::net::{self, HttpTimeouts, Limits, PerClient};

/// Largest request body: forms and a certificate file.
pub const MAX_BODY: usize = 64 * 1024;
/// Connections served at once, all clients together.
pub const MAX_CONNECTIONS: usize = 512;
/// Connections from one network (an IPv4 /24, an IPv6 /64) at once: a municipality's people
/// behind one address share it.
pub const PER_NETWORK: usize = 32;
/// TLS handshakes in progress at once, all clients together. A handshake is the one time a
/// connection holds a slot before its card is known, so handshakes get a part of the
/// connections and no more: the rest are kept for people whose card was accepted.
pub const MAX_HANDSHAKES: usize = 128;
/// TLS handshakes in progress at once from one site (an IPv4 /24, an IPv6 /48: the many /64s
/// one end site is given count as one): a browser needs a few, a client that connects and
/// sends nothing gets no more than these.
pub const HANDSHAKES_PER_NETWORK: usize = 8;
/// Connections of one signed-in person at once (a browser opens about six).
pub const PER_PERSON: usize = 8;
/// How long a TLS handshake may take (a browser needs well under a second).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request's head may take to arrive, and how long a kept-alive connection may
/// wait idle for the next one.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take (a verification code goes out through the relay).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest a connection lives, whatever it does.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);

/// Serves the portal until shutdown.
pub async fn serve(
    listener: tokio::net::TcpListener,
    trust: Arc<super::tls::Trust>,
    portal: Arc<Portal>,
    shutdown: watch::Receiver<bool>,
) {
    let door = portal.door();
    let app = router(portal, door);
    let persons = PerClient::new(PER_PERSON);
    let handshaking = PerClient::new(HANDSHAKES_PER_NETWORK);
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    let limits = Limits {
        connections: MAX_CONNECTIONS,
        per_client: PER_NETWORK,
        grace: Duration::from_secs(10),
    };
    let timeouts = HttpTimeouts {
        header_read: HEADER_READ_TIMEOUT,
        lifetime: CONNECTION_LIFETIME,
        grace: Duration::from_secs(10),
    };
    let listener = net::ByNetwork(listener);
    net::serve(listener, limits, shutdown, door.section(), move |tcp, network, shutdown| {
        // The acceptor as it stands now: a revocation list read again applies to the next
        // handshake.
        let (app, acceptor, persons) = (app.clone(), trust.current(), persons.clone());
        // A handshake's slots, taken now and given back when it ends: a network over its
        // share, or handshakes over theirs, are refused at once rather than queued.
        let handshake_slots = handshaking
            .take(net::site_of(network))
            .zip(handshakes.clone().try_acquire_owned().ok());
        async move {
            let Some(handshake_slots) = handshake_slots else {
                tracing::debug!(network = %network, "portal: too many TLS handshakes at once; refused");
                return;
            };
            let Ok(ssl) = Ssl::new(acceptor.context()) else {
                return;
            };
            let Ok(mut stream) = tokio_openssl::SslStream::new(ssl, tcp) else {
                return;
            };
            let handshake =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, std::pin::Pin::new(&mut stream).accept())
                    .await;
            drop(handshake_slots);
            if !matches!(handshake, Ok(Ok(()))) {
                tracing::debug!(
                    "portal: TLS handshake refused (no, expired, revoked or foreign client certificate)"
                );
                return;
            }
            let Some(person) = stream
                .ssl()
                .peer_certificate()
                .and_then(|c| super::tls::person_of(&c))
            else {
                tracing::info!("portal: a verified certificate without an HSA-id; no page");
                return;
            };
            let Some(_slot) = persons.take(person.hsa_id.clone()) else {
                tracing::info!(hsa_id = %person.hsa_id, "portal: too many connections from one person; refused");
                return;
            };
            let service =
                hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(person.clone());
                    app.clone().oneshot(req.map(Body::new))
                });
            net::serve_http(stream, service, timeouts, shutdown).await;
        }
    })
    .await;
}

fn router(portal: Arc<Portal>, door: WebDoor) -> Router {
    let headers = [
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
    ];
    // A decision's PDFs: the one route with a large body (its own limits, set before the
    // common ones are layered on the rest).
    let upload = Router::new()
        .route("/expedition/skicka/granska", post(desk_send::send_check))
        .layer(DefaultBodyLimit::max(desk_send::DESK_UPLOAD_BYTES))
        .layer(RequestBodyLimitLayer::new(desk_send::DESK_UPLOAD_BYTES));
    let common = Router::new()
        .route("/stil.css", get(routes::style))
        .route("/tillganglighet", get(routes::accessibility));
    let limited = |pages: Router<Arc<Portal>>| {
        pages
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .layer(RequestBodyLimitLayer::new(MAX_BODY))
    };
    let forms = match door {
        WebDoor::Portal => limited(portal_pages(common)),
        WebDoor::Desk => limited(desk_pages(common)).merge(upload),
    };
    // The refusal of a cross-site post, in the door's frame, made once.
    let refusal: Arc<str> = pages::refused(
        pages::Area::of(door),
        "Formuläret togs inte emot",
        "Formuläret skickades från en annan webbplats och togs inte emot. Inget sparades.",
        &portal.contact(),
    )
    .into_string()
    .into();
    let mut app = forms
        .with_state(portal)
        // A post from another site is refused before any handler runs: the browser would
        // send the person's certificate with it.
        .layer(CsrfLayer::new().with_rejection_response(move |_| cross_site(&refusal)))
        // So is a read of the desk that another site makes the browser do (an image, a
        // frame, a script): every read of a decision is in the audit chain.
        .layer(axum::middleware::from_fn(desk_reads_from_this_site_only))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ));
    for (name, value) in headers {
        app = app.layer(SetResponseHeaderLayer::overriding(
            name,
            HeaderValue::from_static(value),
        ));
    }
    app
}

/// The municipality portal's pages: a person's municipalities and their registrations.
fn portal_pages(common: Router<Arc<Portal>>) -> Router<Arc<Portal>> {
    common
        .route("/", get(routes::index))
        .route("/kommun/{code}", get(routes::municipality))
        .route("/kommun/{code}/andra", post(routes::change))
        .route("/kommun/{code}/certifikat", post(routes::certificate))
        .route("/kommun/{code}/skicka-kod", post(routes::send_code))
        .route("/kommun/{code}/kontrollera", post(routes::check_connection))
        .route("/kommun/{code}/bekrafta", post(routes::confirm))
}

/// The dispatch desk's pages: sending decisions and following them.
fn desk_pages(common: Router<Arc<Portal>>) -> Router<Arc<Portal>> {
    common
        .route("/", get(desk::start))
        .route("/expedition", get(desk::start))
        .route("/expedition/skicka", get(desk_send::send_form))
        .route("/expedition/skicka/bekrafta", post(desk_send::send_confirm))
        .route(
            "/expedition/skicka/utkast/{draft}/{file}",
            get(desk_send::draft_document),
        )
        .route("/expedition/utskick", get(desk::jobs))
        .route("/expedition/utskick/{id}", get(desk::job))
        .route("/expedition/utskick/{id}/kvitto", get(desk::receipt_page))
        .route(
            "/expedition/utskick/{id}/kvitto.pdf",
            get(desk::receipt_pdf),
        )
        .route(
            "/expedition/utskick/{id}/{action}",
            get(desk::action_form).post(desk::action),
        )
        .route("/expedition/att-ringa", get(desk::calls))
        .route("/expedition/att-ringa/{id}", post(desk::called))
}

/// Refuses a request for a desk page that another site made the browser send
/// (`Sec-Fetch-Site: cross-site` or `same-site`): the browser sends the person's certificate
/// with it, and each read of a decision would be written to the audit chain in their name. A
/// link followed from elsewhere (a top-level navigation) gets a page with the same link, to be
/// opened from here; requests without the header (no browser) pass.
async fn desk_reads_from_this_site_only(
    request: Request<Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (from_elsewhere, followed_link) = {
        let header_is = |name: &str, values: &[&str]| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| values.contains(&v))
        };
        (
            request.uri().path().starts_with("/expedition")
                && header_is("sec-fetch-site", &["cross-site", "same-site"]),
            request.method() == axum::http::Method::GET
                && header_is("sec-fetch-mode", &["navigate"])
                && header_is("sec-fetch-dest", &["document"]),
        )
    };
    if !from_elsewhere {
        return next.run(request).await;
    }
    let text = if followed_link {
        "Länken kom från en annan webbplats. Öppna sidan härifrån med länken nedan, så vet vi \
         att det är du som vill se den."
    } else {
        "En annan webbplats försökte läsa sidan i din webbläsare. Den visades inte."
    };
    let link = followed_link.then(|| request.uri().path().to_string());
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        pages::refused_with_link("Sidan öppnades inte", text, link.as_deref()).into_string(),
    )
        .into_response()
}

fn cross_site(page: &str) -> axum::response::Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page.to_string(),
    )
        .into_response()
}
