//! The dispatch desk's handlers: each asks the service on behalf of the signed-in member of
//! staff and renders the answer ([`desk_pages`]); the daemon checks the person's desk grant and
//! role on every request, and records every read of a job.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::backend::Asked;
use super::desk_pages::{self, Desk};
use super::pages::Frame;
use super::routes::{html, Portal};
use super::{receipt, words};
use kurir_protocol::action::ActionDone;
use kurir_protocol::action::Target;
use kurir_protocol::call::{DeskFilter, DeskView};
use kurir_protocol::job::JobId;
use kurir_protocol::registry::{Person, StaffRole};
use kurir_protocol::{call, ServiceError};

/// The person's desk role, or the page that says they have none.
pub(super) async fn desk_of(portal: &Portal, person: &Person) -> Result<Desk, Box<Response>> {
    let role = match portal.ask(person, call::WhoAmI {}).await {
        Ok(Some(role)) => role,
        Ok(None) => {
            tracing::warn!(hsa_id = %person.hsa_id, "desk: no desk access");
            return Err(Box::new(not_staff(portal)));
        }
        Err(Asked::Unavailable) => return Err(Box::new(portal.unavailable())),
        Err(Asked::Refused(e)) => return Err(Box::new(refusal(portal, &e))),
    };
    // The menu's count; a page still opens if it cannot be had.
    let calls = portal
        .ask(person, call::CallCount {})
        .await
        .unwrap_or_default();
    Ok(Desk {
        sends: role == StaffRole::Handlaggare,
        holds: role == StaffRole::Drift,
        calls,
    })
}

fn not_staff(portal: &Portal) -> Response {
    portal.refused(
        StatusCode::FORBIDDEN,
        "Ingen behörighet till expeditionen",
        "Expeditionen är för Migrationsverkets personal med behörighet. Driften ger \
         behörighet per person.",
    )
}

/// The page for a refusal of access or existence; any other refusal is shown where it belongs.
pub(super) fn refusal(portal: &Portal, error: &ServiceError) -> Response {
    match error {
        ServiceError::NotStaff(_) => not_staff(portal),
        ServiceError::RoleForbids(role) => portal.refused(
            StatusCode::FORBIDDEN,
            "Din roll får inte göra det",
            match role {
                StaffRole::Drift => {
                    "Beslut skickas av handläggare; din roll i expeditionen är drift."
                }
                _ => "Det är driftens uppgift; din roll i expeditionen är handläggare.",
            },
        ),
        ServiceError::NotPermitted => portal.refused(
            StatusCode::FORBIDDEN,
            "Det får inte göras här",
            "Det du försökte göra får du inte göra i expeditionen.",
        ),
        ServiceError::NotTakenIn(_) => portal.refused(
            StatusCode::ACCEPTED,
            "Beslutet tas emot",
            "Beslutet är mottaget och tas in just nu. Ladda om sidan om en stund.",
        ),
        ServiceError::UnknownJob(_) => portal.refused(
            StatusCode::NOT_FOUND,
            "Utskicket finns inte",
            "Det finns inget sådant utskick (ett nyss skickat syns inom några sekunder).",
        ),
        ServiceError::PersonalDataInText(_) => portal.refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Texten sparades inte",
            &words::desk_error(error),
        ),
        _ => {
            tracing::error!(error = %error, "desk: the service failed");
            portal.unavailable()
        }
    }
}

pub(super) fn frame<'a>(person: &'a Person, token: &'a str) -> Frame<'a> {
    Frame {
        name: &person.name,
        hsa_id: &person.hsa_id,
        csrf: token,
    }
}

pub(super) fn forged(portal: &Portal) -> Response {
    portal.form_expired()
}

pub(super) async fn start() -> Redirect {
    Redirect::to("/expedition/utskick")
}

#[derive(Deserialize)]
pub(super) struct JobsQuery {
    #[serde(default)]
    sok: String,
    #[serde(default)]
    visa: String,
    meddelande: Option<String>,
}

pub(super) async fn jobs(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Query(query): Query<JobsQuery>,
) -> Response {
    let desk = match desk_of(&portal, &person).await {
        Ok(desk) => desk,
        Err(page) => return *page,
    };
    let filter = match query.visa.as_str() {
        "vantar-pa-bevis" => DeskFilter::AwaitingProof,
        "larm" => DeskFilter::AlertOpen,
        "post" => DeskFilter::ByPost,
        _ => DeskFilter::All,
    };
    let command = call::DeskJobs {
        search: query.sok.chars().take(100).collect(),
        filter,
        limit: 200,
    };
    let rows = match portal.ask(&person, command).await {
        Ok(rows) => rows,
        Err(Asked::Unavailable) => return portal.unavailable(),
        Err(Asked::Refused(e)) => return refusal(&portal, &e),
    };
    let notice = call_notice(query.meddelande.as_deref());
    let token = portal.csrf_token(&person);
    html(
        StatusCode::OK,
        desk_pages::jobs(
            &frame(&person, &token),
            desk,
            &rows,
            &query.sok,
            &query.visa,
            notice,
        ),
    )
}

/// The job a path names and the person's desk role, or the page that says why not.
async fn job_and_desk(
    portal: &Portal,
    person: &Person,
    id: &str,
) -> Result<(JobId, Desk), Box<Response>> {
    let id = parse_job(portal, id)?;
    Ok((id, desk_of(portal, person).await?))
}

fn parse_job(portal: &Portal, id: &str) -> Result<JobId, Box<Response>> {
    id.parse::<JobId>().map_err(|_| {
        Box::new(portal.refused(
            StatusCode::NOT_FOUND,
            "Utskicket finns inte",
            "Det finns inget sådant utskick.",
        ))
    })
}

/// The person's desk and one job's view of it (recorded as read), or the page that says why
/// not: what the job's page and its receipts all begin with.
async fn job_view(
    portal: &Portal,
    person: &Person,
    id: &str,
    view: DeskView,
) -> Result<(JobId, Desk, Box<kurir_protocol::reply::DeskJob>), Box<Response>> {
    let (id, desk) = job_and_desk(portal, person, id).await?;
    let job = desk_job(portal, person, id.clone(), view).await?;
    Ok((id, desk, job))
}

async fn desk_job(
    portal: &Portal,
    person: &Person,
    id: JobId,
    view: DeskView,
) -> Result<Box<kurir_protocol::reply::DeskJob>, Box<Response>> {
    match portal.ask(person, call::DeskJob { id, view }).await {
        Ok(job) => Ok(job),
        Err(Asked::Unavailable) => Err(Box::new(portal.unavailable())),
        Err(Asked::Refused(e)) => Err(Box::new(refusal(portal, &e))),
    }
}

#[derive(Deserialize)]
pub(super) struct Message {
    meddelande: Option<String>,
}

pub(super) async fn job(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Path(id): Path<String>,
    Query(message): Query<Message>,
) -> Response {
    let (_, desk, job) = match job_view(&portal, &person, &id, DeskView::Page).await {
        Ok(found) => found,
        Err(page) => return *page,
    };
    // What was just done, in words that stay true however far the job has come since (a
    // reload shows it again); the status under it is the job's as it is now.
    let notice = match message.meddelande.as_deref() {
        Some("skickat") => Some((
            true,
            format!("Du skickade beslutet {}.", words::when(job.job.received_at)),
        )),
        Some("gjort") => Some((
            true,
            "Åtgärden är gjord och sparad i historiken.".to_string(),
        )),
        _ => None,
    };
    let token = portal.csrf_token(&person);
    html(
        StatusCode::OK,
        desk_pages::job(&frame(&person, &token), desk, &job, notice),
    )
}

/// An action the desk offers on one job: each a call of the service answered with what was
/// done.
enum JobAction {
    Retry(call::Retry),
    Reroute(call::Reroute),
    Hold(call::Hold),
    Release(call::Release),
    Cancel(call::Cancel),
}

impl JobAction {
    /// Asks the service to do it, on behalf of `person`.
    async fn ask(self, portal: &Portal, person: &Person) -> Result<ActionDone, Asked> {
        match self {
            JobAction::Retry(c) => portal.ask(person, c).await,
            JobAction::Reroute(c) => portal.ask(person, c).await,
            JobAction::Hold(c) => portal.ask(person, c).await,
            JobAction::Release(c) => portal.ask(person, c).await,
            JobAction::Cancel(c) => portal.ask(person, c).await,
        }
    }
}

/// The action an action word asks for, with the reason.
fn action_command(word: &str, id: JobId, reason: String) -> Option<JobAction> {
    let target = Target::Job(id.clone());
    Some(match word {
        "skicka-igen" => JobAction::Retry(call::Retry { target, reason }),
        "med-post" => JobAction::Reroute(call::Reroute { id, reason }),
        "pausa" => JobAction::Hold(call::Hold { target, reason }),
        "fortsatt" => JobAction::Release(call::Release { target, reason }),
        "stoppa" => JobAction::Cancel(call::Cancel { id, reason }),
        _ => return None,
    })
}

fn action_label(desk: Desk, word: &str) -> Option<&'static str> {
    desk_pages::actions(desk)
        .into_iter()
        .find(|(w, _, _)| *w == word)
        .map(|(_, _, label)| label)
}

pub(super) async fn action_form(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Path((id, word)): Path<(String, String)>,
) -> Response {
    let (id, desk) = match job_and_desk(&portal, &person, &id).await {
        Ok(found) => found,
        Err(page) => return *page,
    };
    let Some(label) = action_label(desk, &word) else {
        return no_such_action(&portal);
    };
    let token = portal.csrf_token(&person);
    html(
        StatusCode::OK,
        desk_pages::action_form(
            &frame(&person, &token),
            desk,
            id.as_str(),
            &word,
            label,
            None,
        ),
    )
}

#[derive(Deserialize)]
pub(super) struct ActionForm {
    csrf: String,
    skal: String,
}

pub(super) async fn action(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Path((id, word)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    if !portal.token_ok(&person, &form.csrf) {
        return forged(&portal);
    }
    let (id, desk) = match job_and_desk(&portal, &person, &id).await {
        Ok(found) => found,
        Err(page) => return *page,
    };
    let reason = form.skal.trim().to_string();
    let (Some(label), Some(command)) = (
        action_label(desk, &word),
        action_command(&word, id.clone(), reason.clone()),
    ) else {
        return no_such_action(&portal);
    };
    let token = portal.csrf_token(&person);
    let again = |status: StatusCode, text: String| {
        html(
            status,
            desk_pages::action_form(
                &frame(&person, &token),
                desk,
                id.as_str(),
                &word,
                label,
                Some(&text),
            ),
        )
    };
    if reason.is_empty() {
        return again(
            StatusCode::UNPROCESSABLE_ENTITY,
            words::desk_error(&ServiceError::ReasonRequired),
        );
    }
    match command.ask(&portal, &person).await {
        Ok(_) => {
            Redirect::to(&format!("/expedition/utskick/{id}?meddelande=gjort")).into_response()
        }
        Err(Asked::Unavailable) => portal.unavailable(),
        Err(Asked::Refused(
            e @ (ServiceError::NotStaff(_)
            | ServiceError::RoleForbids(_)
            | ServiceError::NotPermitted
            | ServiceError::UnknownJob(_)),
        )) => refusal(&portal, &e),
        Err(Asked::Refused(e)) => again(StatusCode::CONFLICT, words::desk_error(&e)),
    }
}

pub(super) async fn calls(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Query(message): Query<Message>,
) -> Response {
    let desk = match desk_of(&portal, &person).await {
        Ok(desk) => desk,
        Err(page) => return *page,
    };
    let alerts = match portal.ask(&person, call::OpenAlerts {}).await {
        Ok(alerts) => alerts,
        Err(Asked::Unavailable) => return portal.unavailable(),
        Err(Asked::Refused(e)) => return refusal(&portal, &e),
    };
    // Dispatch's calls, not operations' alerts; a quarantined submission is not a call.
    let calls: Vec<_> = alerts.into_iter().filter(|a| a.kind.is_a_call()).collect();
    let notice = call_notice(message.meddelande.as_deref());
    let token = portal.csrf_token(&person);
    html(
        StatusCode::OK,
        desk_pages::calls(&frame(&person, &token), desk, &calls, notice),
    )
}

#[derive(Deserialize)]
pub(super) struct CalledForm {
    csrf: String,
    anteckning: String,
    /// How the call ended: `vet` (the municipality knows of the decision: close the alert)
    /// or `inget-svar` (nobody answered: note it, keep the alert).
    #[serde(default)]
    utfall: String,
    /// The alert the call was about (its kind), and the recipient it names, if any.
    #[serde(default)]
    larm: String,
    #[serde(default)]
    mottagare: String,
}

/// What the calls page says after a call was noted.
fn call_notice(word: Option<&str>) -> Option<&'static str> {
    match word {
        Some("ringt") => Some("Samtalet är antecknat och larmet stängt."),
        Some("inget-svar") => Some("Samtalet är antecknat. Larmet är kvar: ring igen om en stund."),
        _ => None,
    }
}

fn no_such_action(portal: &Portal) -> Response {
    portal.refused(
        StatusCode::NOT_FOUND,
        "Åtgärden finns inte",
        "Åtgärden finns inte för din roll.",
    )
}

pub(super) async fn called(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Path(id): Path<String>,
    Form(form): Form<CalledForm>,
) -> Response {
    if !portal.token_ok(&person, &form.csrf) {
        return forged(&portal);
    }
    let id = match parse_job(&portal, &id) {
        Ok(id) => id,
        Err(page) => return *page,
    };
    let kind = kurir_protocol::state::AlertKind::named(&form.larm);
    let recipient = form
        .mottagare
        .parse::<kurir_protocol::job::Kommunkod>()
        .ok();
    let Some(alert) = kind.map(|kind| match recipient {
        Some(code) => kurir_protocol::state::AlertMark::recipient(kind, code),
        None => kurir_protocol::state::AlertMark::job(kind),
    }) else {
        return portal.form_expired();
    };
    let note = form.anteckning.trim();
    let answered = form.utfall != "inget-svar";
    // An answered call closes the alert, so its reason says it was a call; an unanswered
    // one is its own kind of entry and needs only what was tried.
    let reason = match (answered, note.is_empty()) {
        (true, true) => "ringt: kommunen vet om beslutet".to_string(),
        (true, false) => format!("ringt: kommunen vet om beslutet; {note}"),
        (false, true) => "inget svar".to_string(),
        (false, false) => note.to_string(),
    };
    let (asked, done) = if answered {
        (
            portal
                .ask(
                    &person,
                    call::Acknowledge {
                        id,
                        reason,
                        alert: Some(alert),
                    },
                )
                .await,
            "ringt",
        )
    } else {
        (
            portal
                .ask(&person, call::CallNoAnswer { id, reason, alert })
                .await,
            "inget-svar",
        )
    };
    let back = format!("/expedition/att-ringa?meddelande={done}");
    match asked {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(Asked::Unavailable) => portal.unavailable(),
        Err(Asked::Refused(ServiceError::WrongState { .. })) => {
            // Closed meanwhile (a report came, or a colleague called): nothing to do.
            Redirect::to("/expedition/att-ringa?meddelande=ringt").into_response()
        }
        Err(Asked::Refused(
            e @ (ServiceError::PersonalDataInText(_)
            | ServiceError::ReasonRequired
            | ServiceError::ReasonTooLong { .. }),
        )) => portal.refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Anteckningen sparades inte",
            &words::desk_error(&e),
        ),
        Err(Asked::Refused(e)) => refusal(&portal, &e),
    }
}

pub(super) async fn receipt_page(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Path(id): Path<String>,
) -> Response {
    let (_, desk, job) = match job_view(&portal, &person, &id, DeskView::Receipt).await {
        Ok(found) => found,
        Err(page) => return *page,
    };
    let token = portal.csrf_token(&person);
    html(
        StatusCode::OK,
        desk_pages::receipt(
            &frame(&person, &token),
            desk,
            &receipt::receipt(&job, &person),
        ),
    )
}

pub(super) async fn receipt_pdf(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Path(id): Path<String>,
) -> Response {
    let (id, _, job) = match job_view(&portal, &person, &id, DeskView::Receipt).await {
        Ok(found) => found,
        Err(page) => return *page,
    };
    let blocks = receipt::receipt(&job, &person).all();
    let rendered =
        tokio::task::spawn_blocking(move || crate::report::render(receipt::TITLE, &blocks)).await;
    match rendered {
        Ok(Ok(pdf)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/pdf".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"kvitto-{id}.pdf\""),
                ),
            ],
            pdf,
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "desk: the receipt could not be laid out");
            portal.unavailable()
        }
        Err(e) => {
            tracing::error!(error = %e, "desk: the receipt task failed");
            portal.unavailable()
        }
    }
}
