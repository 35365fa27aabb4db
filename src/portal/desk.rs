//! The dispatch desk's handlers: each asks the service on behalf of the signed-in member of
//! staff and renders the answer ([`desk_pages`]); the daemon checks the person's desk grant and
//! role on every request, and records every read of a job.

use std::sync::Arc;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::backend::Asked;
use super::desk_pages::{self, Desk, FieldError, SendFields};
use super::pages::Frame;
use super::routes::{html, refused, unavailable, Portal};
use super::{receipt, words};
use crate::intake::draft::{DraftError, DraftId};
use crate::job::{DocumentKind, JobId, Kommunkod};
use crate::queue::operator::Target;
use crate::registry::{Person, RegistryError, StaffRole};
use crate::service::command::{DeskFilter, DeskView, Upload};
use crate::service::{Command, Reply, ServiceError};
use crate::store::state::Team;

/// The most a decision's upload may weigh (both PDFs and the form).
pub const DESK_UPLOAD_BYTES: usize = 40 * 1024 * 1024;
/// Longest text field of the desk's upload form (a municipality's name, a case number).
const TEXT_FIELD_BYTES: usize = 4096;
/// How long an upload waits for one of the portal's upload slots.
const UPLOAD_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A person's upload being read; the claim ends when it is dropped.
struct UploadOf<'a> {
    portal: &'a Portal,
    hsa_id: String,
}

impl<'a> UploadOf<'a> {
    /// Claims the person's one upload slot, or `None` while another upload of theirs is read.
    fn claim(portal: &'a Portal, person: &Person) -> Option<UploadOf<'a>> {
        let mut uploading = portal.uploading.lock().unwrap_or_else(|p| p.into_inner());
        uploading.insert(person.hsa_id.clone()).then(|| UploadOf {
            portal,
            hsa_id: person.hsa_id.clone(),
        })
    }
}

impl Drop for UploadOf<'_> {
    fn drop(&mut self) {
        self.portal
            .uploading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.hsa_id);
    }
}

/// A multipart field's bytes, refused when longer than `cap` or cut off.
async fn read_capped(
    field: &mut axum::extract::multipart::Field<'_>,
    cap: usize,
) -> Result<Vec<u8>, ()> {
    let mut out = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|_| ())? {
        if out.len() + chunk.len() > cap {
            return Err(());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The person's desk role, or the page that says they have none.
async fn desk_of(portal: &Portal, person: &Person) -> Result<Desk, Box<Response>> {
    match portal.ask(person, Command::WhoAmI).await {
        Ok(Reply::Me(Some(role))) => Ok(Desk {
            sends: role == StaffRole::Handlaggare,
            holds: role == StaffRole::Drift,
        }),
        Ok(Reply::Me(None)) => {
            tracing::warn!(hsa_id = %person.hsa_id, "desk: no desk access");
            Err(Box::new(not_staff()))
        }
        Ok(_) | Err(Asked::Unavailable) => Err(Box::new(unavailable())),
        Err(Asked::Refused(e)) => Err(Box::new(refusal(&e))),
    }
}

fn not_staff() -> Response {
    refused(
        StatusCode::FORBIDDEN,
        "Ingen behörighet",
        "Expeditionen är för Migrationsverkets personal med behörighet. Kontakta driften om du \
         ska ha tillgång.",
    )
}

/// The page for a refusal of access or existence; any other refusal is shown where it belongs.
fn refusal(error: &ServiceError) -> Response {
    match error {
        ServiceError::NotStaff(_) => not_staff(),
        ServiceError::RoleForbids(role) => refused(
            StatusCode::FORBIDDEN,
            "Ingen behörighet",
            &format!("Din roll ({}) får inte göra det.", role.as_str()),
        ),
        ServiceError::NotPermitted => refused(
            StatusCode::FORBIDDEN,
            "Ingen behörighet",
            "Det du försökte göra får du inte göra här.",
        ),
        ServiceError::UnknownJob(_) | ServiceError::NotTakenIn(_) => refused(
            StatusCode::NOT_FOUND,
            "Utskicket finns inte",
            "Det finns inget utskick med det id:t (ett nyss skickat syns inom några sekunder).",
        ),
        _ => {
            tracing::error!(error = %error, "desk: the service failed");
            unavailable()
        }
    }
}

fn frame<'a>(person: &'a Person, token: &'a str) -> Frame<'a> {
    Frame {
        name: &person.name,
        hsa_id: &person.hsa_id,
        csrf: token,
    }
}

fn forged() -> Response {
    refused(
        StatusCode::FORBIDDEN,
        "Förbjudet",
        "Formuläret saknade en giltig kontrollkod. Ladda om sidan och försök igen.",
    )
}

pub(super) async fn start() -> Redirect {
    Redirect::to("/expedition/utskick")
}

fn municipalities(portal: &Portal) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> = portal
        .seed()
        .iter()
        .map(|m| (m.code.to_string(), m.name.clone()))
        .collect();
    list.sort_by(|a, b| a.1.cmp(&b.1));
    list
}

/// A municipality as typed: its kommunkod, `Name (kommunkod)` as the list offers it, or its
/// name.
fn municipality(portal: &Portal, typed: &str) -> Option<Kommunkod> {
    let typed = typed.trim();
    if let Ok(code) = typed.parse::<Kommunkod>() {
        return portal.seed().get(code).map(|_| code);
    }
    if let Some(code) = typed
        .strip_suffix(')')
        .and_then(|t| t.rsplit_once('('))
        .and_then(|(_, code)| code.parse::<Kommunkod>().ok())
    {
        return portal.seed().get(code).map(|_| code);
    }
    let lower = typed.to_lowercase();
    portal
        .seed()
        .iter()
        .find(|m| {
            let name = m.name.to_lowercase();
            name == lower || name.strip_suffix(" kommun") == Some(lower.as_str())
        })
        .map(|m| m.code)
}

pub(super) async fn send_form(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
) -> Response {
    let desk = match desk_of(&portal, &person).await {
        Ok(desk) => desk,
        Err(page) => return *page,
    };
    if !desk.sends {
        return refusal(&ServiceError::RoleForbids(StaffRole::Drift));
    }
    let token = portal.csrf_token(&person);
    html(
        StatusCode::OK,
        desk_pages::send_form(
            &frame(&person, &token),
            desk,
            &municipalities(&portal),
            &SendFields::default(),
            None,
        ),
    )
}

pub(super) async fn send_check(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    mut multipart: Multipart,
) -> Response {
    // Who may send, and room to read, before a byte of the upload is read: a card without a
    // caseworker's grant, or a forged form, costs the portal no memory.
    let desk = match desk_of(&portal, &person).await {
        Ok(desk) => desk,
        Err(page) => return *page,
    };
    if !desk.sends {
        return refusal(&ServiceError::RoleForbids(StaffRole::Drift));
    }
    let Some(_mine) = UploadOf::claim(&portal, &person) else {
        return refused(
            StatusCode::TOO_MANY_REQUESTS,
            "Försök igen om en stund",
            "Ett annat beslut laddas upp från ditt kort just nu. Vänta tills det är klart.",
        );
    };
    let Ok(Ok(_reading)) = tokio::time::timeout(UPLOAD_QUEUE_WAIT, portal.uploads.acquire()).await
    else {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "Försök igen om en stund",
            "Många beslut laddas upp just nu. Gå tillbaka och skicka formuläret igen om en \
             stund.",
        );
    };
    let cut_off = || {
        refused(
            StatusCode::BAD_REQUEST,
            "Uppladdningen kom inte fram hel",
            "Gå tillbaka och skicka formuläret igen.",
        )
    };
    // The form's token comes first (the browser sends fields in the form's order); nothing
    // after it is read before it is checked, and text fields are short.
    let mut token_checked = false;
    let mut fields = SendFields::default();
    let mut decision = Vec::new();
    let mut god_man = Vec::new();
    while let Ok(Some(mut field)) = multipart.next_field().await {
        let name = field.name().unwrap_or("").to_string();
        if name == "csrf" {
            let Ok(token) = read_capped(&mut field, TEXT_FIELD_BYTES).await else {
                return forged();
            };
            token_checked = portal.token_ok(&person, &String::from_utf8_lossy(&token));
            continue;
        }
        if !token_checked {
            return forged();
        }
        let cap = match name.as_str() {
            "anvisningsbeslut" | "godman" => DESK_UPLOAD_BYTES,
            _ => TEXT_FIELD_BYTES,
        };
        let Ok(bytes) = read_capped(&mut field, cap).await else {
            return cut_off();
        };
        let text = || String::from_utf8_lossy(&bytes).into_owned();
        match name.as_str() {
            "kommun" => fields.kommun = text(),
            "arende" => fields.arende = text(),
            "kopia" => fields.kopia = text(),
            "anvisningsbeslut" => decision = bytes,
            "godman" => god_man = bytes,
            _ => {}
        }
    }
    if !token_checked {
        return forged();
    }
    let again = |error: FieldError| {
        let token = portal.csrf_token(&person);
        html(
            StatusCode::UNPROCESSABLE_ENTITY,
            desk_pages::send_form(
                &frame(&person, &token),
                desk,
                &municipalities(&portal),
                &fields,
                Some(&error),
            ),
        )
    };
    let Some(to) = municipality(&portal, &fields.kommun) else {
        return again(FieldError {
            field: "kommun",
            text: "Välj en av Sveriges 290 kommuner, med namn eller kommunkod.".into(),
        });
    };
    let copy_to = if fields.kopia.trim().is_empty() {
        Vec::new()
    } else {
        match municipality(&portal, &fields.kopia) {
            Some(code) => vec![code],
            None => {
                return again(FieldError {
                    field: "kopia",
                    text: "Välj en av Sveriges 290 kommuner, eller lämna fältet tomt.".into(),
                })
            }
        }
    };
    if decision.is_empty() {
        return again(FieldError {
            field: "anvisningsbeslut",
            text: "Ladda upp anvisningsbeslutet som PDF.".into(),
        });
    }
    let mut documents = vec![Upload {
        kind: DocumentKind::Anvisningsbeslut,
        bytes: decision,
    }];
    if !god_man.is_empty() {
        documents.push(Upload {
            kind: DocumentKind::GodMan,
            bytes: god_man,
        });
    }
    let command = Command::DeskDraft {
        to,
        case: fields.arende.trim().to_string(),
        copy_to,
        documents,
    };
    match portal.ask(&person, command).await {
        Ok(Reply::Draft(preview)) => {
            let token = portal.csrf_token(&person);
            html(
                StatusCode::OK,
                desk_pages::confirm(&frame(&person, &token), desk, &preview),
            )
        }
        Ok(_) | Err(Asked::Unavailable) => unavailable(),
        Err(Asked::Refused(error)) => {
            let at_field = match &error {
                ServiceError::CaseNumber => Some((
                    "arende",
                    "Skriv ärendenumret som xx-xxxxxx, t.ex. 12-345678.".to_string(),
                )),
                ServiceError::CopyToAssigned(_) => Some((
                    "kopia",
                    "Kopian kan inte gå till anvisningskommunen själv.".into(),
                )),
                ServiceError::Registry(RegistryError::UnknownKommunkod(_)) => {
                    Some(("kommun", "Välj en av Sveriges 290 kommuner.".into()))
                }
                ServiceError::Draft(DraftError::Document { kind, problem }) => Some((
                    match kind {
                        DocumentKind::Anvisningsbeslut => "anvisningsbeslut",
                        DocumentKind::GodMan => "godman",
                    },
                    words::pdf_problem(problem),
                )),
                ServiceError::Draft(DraftError::NoDecision) => Some((
                    "anvisningsbeslut",
                    "Ladda upp anvisningsbeslutet som PDF.".into(),
                )),
                ServiceError::Draft(DraftError::TooMany) => {
                    Some(("anvisningsbeslut", words::desk_error(&error)))
                }
                _ => None,
            };
            match at_field {
                Some((field, text)) => again(FieldError { field, text }),
                None => refusal(&error),
            }
        }
    }
}

#[derive(Deserialize)]
pub(super) struct DraftForm {
    csrf: String,
    utkast: String,
}

pub(super) async fn send_confirm(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Form(form): Form<DraftForm>,
) -> Response {
    if !portal.token_ok(&person, &form.csrf) {
        return forged();
    }
    let Ok(draft) = DraftId::try_from(form.utkast) else {
        return refused(StatusCode::BAD_REQUEST, "Fel", "Utkastet finns inte.");
    };
    match portal.ask(&person, Command::DeskSend { draft }).await {
        Ok(Reply::Sent(id)) => {
            Redirect::to(&format!("/expedition/utskick/{id}?meddelande=skickat")).into_response()
        }
        Ok(_) | Err(Asked::Unavailable) => unavailable(),
        Err(Asked::Refused(ServiceError::Draft(DraftError::Gone))) => refused(
            StatusCode::GONE,
            "Utkastet finns inte längre",
            &words::desk_error(&ServiceError::Draft(DraftError::Gone)),
        ),
        Err(Asked::Refused(error)) => refusal(&error),
    }
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
    let command = Command::DeskJobs {
        search: query.sok.chars().take(100).collect(),
        filter,
        limit: 200,
    };
    let rows = match portal.ask(&person, command).await {
        Ok(Reply::DeskJobs(rows)) => rows,
        Ok(_) | Err(Asked::Unavailable) => return unavailable(),
        Err(Asked::Refused(e)) => return refusal(&e),
    };
    let notice = query.meddelande.as_deref().and_then(|m| match m {
        "ringt" => Some("Samtalet är antecknat och larmet stängt."),
        _ => None,
    });
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
    let id = parse_job(id)?;
    Ok((id, desk_of(portal, person).await?))
}

fn parse_job(id: &str) -> Result<JobId, Box<Response>> {
    id.parse::<JobId>().map_err(|_| {
        Box::new(refused(
            StatusCode::NOT_FOUND,
            "Utskicket finns inte",
            "Det finns inget utskick med det id:t.",
        ))
    })
}

async fn desk_job(
    portal: &Portal,
    person: &Person,
    id: JobId,
    view: DeskView,
) -> Result<Box<crate::service::DeskJob>, Box<Response>> {
    match portal.ask(person, Command::DeskJob { id, view }).await {
        Ok(Reply::DeskJob(job)) => Ok(job),
        Ok(_) | Err(Asked::Unavailable) => Err(Box::new(unavailable())),
        Err(Asked::Refused(e)) => Err(Box::new(refusal(&e))),
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
    let (id, desk) = match job_and_desk(&portal, &person, &id).await {
        Ok(found) => found,
        Err(page) => return *page,
    };
    let job = match desk_job(&portal, &person, id, DeskView::Page).await {
        Ok(job) => job,
        Err(page) => return *page,
    };
    let notice = match message.meddelande.as_deref() {
        Some("skickat") => Some((
            true,
            "Beslutet är lämnat till kurir och skickas nu.".to_string(),
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

/// The command an action word asks for, with the reason.
fn action_command(word: &str, id: JobId, reason: String) -> Option<Command> {
    Some(match word {
        "skicka-igen" => Command::Retry {
            target: Target::Job(id),
            reason,
        },
        "med-post" => Command::Reroute { id, reason },
        "pausa" => Command::Hold {
            target: Target::Job(id),
            reason,
        },
        "fortsatt" => Command::Release {
            target: Target::Job(id),
            reason,
        },
        "stoppa" => Command::Cancel { id, reason },
        _ => return None,
    })
}

fn action_label(desk: Desk, word: &str) -> Option<&'static str> {
    desk_pages::actions(desk)
        .into_iter()
        .find(|(w, _)| *w == word)
        .map(|(_, label)| label)
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
        return refused(
            StatusCode::NOT_FOUND,
            "Ingen sådan åtgärd",
            "Åtgärden finns inte för din roll.",
        );
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
        return forged();
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
        return refused(
            StatusCode::NOT_FOUND,
            "Ingen sådan åtgärd",
            "Åtgärden finns inte för din roll.",
        );
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
    match portal.ask(&person, command).await {
        Ok(_) => {
            Redirect::to(&format!("/expedition/utskick/{id}?meddelande=gjort")).into_response()
        }
        Err(Asked::Unavailable) => unavailable(),
        Err(Asked::Refused(
            e @ (ServiceError::NotStaff(_)
            | ServiceError::RoleForbids(_)
            | ServiceError::NotPermitted
            | ServiceError::UnknownJob(_)),
        )) => refusal(&e),
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
    let alerts = match portal.ask(&person, Command::OpenAlerts).await {
        Ok(Reply::OpenAlerts(alerts)) => alerts,
        Ok(_) | Err(Asked::Unavailable) => return unavailable(),
        Err(Asked::Refused(e)) => return refusal(&e),
    };
    // Dispatch's calls, not operations' alerts; a quarantined submission is not a call.
    let calls: Vec<_> = alerts
        .into_iter()
        .filter(|a| {
            a.team == Team::Dispatch && a.kind != crate::store::state::AlertKind::Quarantined
        })
        .collect();
    let notice = match message.meddelande.as_deref() {
        Some("ringt") => Some("Samtalet är antecknat och larmet stängt."),
        _ => None,
    };
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
}

pub(super) async fn called(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Path(id): Path<String>,
    Form(form): Form<CalledForm>,
) -> Response {
    if !portal.token_ok(&person, &form.csrf) {
        return forged();
    }
    let id = match parse_job(&id) {
        Ok(id) => id,
        Err(page) => return *page,
    };
    let note = form.anteckning.trim();
    let reason = if note.is_empty() {
        "ringt".to_string()
    } else {
        format!("ringt: {note}")
    };
    match portal
        .ask(&person, Command::Acknowledge { id, reason })
        .await
    {
        Ok(_) => Redirect::to("/expedition/att-ringa?meddelande=ringt").into_response(),
        Err(Asked::Unavailable) => unavailable(),
        Err(Asked::Refused(ServiceError::WrongState { .. })) => {
            // Closed meanwhile (a report came, or a colleague called): nothing to do.
            Redirect::to("/expedition/att-ringa?meddelande=ringt").into_response()
        }
        Err(Asked::Refused(e)) => refusal(&e),
    }
}

pub(super) async fn receipt_page(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Path(id): Path<String>,
) -> Response {
    let (id, desk) = match job_and_desk(&portal, &person, &id).await {
        Ok(found) => found,
        Err(page) => return *page,
    };
    let job = match desk_job(&portal, &person, id, DeskView::Receipt).await {
        Ok(job) => job,
        Err(page) => return *page,
    };
    let token = portal.csrf_token(&person);
    html(
        StatusCode::OK,
        desk_pages::receipt(
            &frame(&person, &token),
            desk,
            &receipt::blocks(&job, &person),
        ),
    )
}

pub(super) async fn receipt_pdf(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Path(id): Path<String>,
) -> Response {
    let id = match parse_job(&id) {
        Ok(id) => id,
        Err(page) => return *page,
    };
    if let Err(page) = desk_of(&portal, &person).await {
        return *page;
    }
    let job = match desk_job(&portal, &person, id.clone(), DeskView::Receipt).await {
        Ok(job) => job,
        Err(page) => return *page,
    };
    let blocks = receipt::blocks(&job, &person);
    let rendered =
        tokio::task::spawn_blocking(move || crate::pdf::report::render(receipt::TITLE, &blocks))
            .await;
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
            unavailable()
        }
        Err(e) => {
            tracing::error!(error = %e, "desk: the receipt task failed");
            unavailable()
        }
    }
}
