//! The dispatch desk's way to send a decision: the form, the upload checked into a draft
//! (read only after the person's grant, role and form token are checked, a few at a time),
//! and the confirmation that sends it.

use std::sync::Arc;

use axum::extract::{Multipart, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::backend::Asked;
use super::desk::{desk_of, forged, frame, refusal};
use super::desk_pages::{self, Desk, FieldError, Kept, SendFields};
use super::routes::{html, Portal};
use super::words;
use kurir_protocol::call::Upload;
use kurir_protocol::draft::{DraftError, DraftId, DraftOutcome, DraftProblem};
use kurir_protocol::job::{DocumentKind, Kommunkod};
use kurir_protocol::registry::{Person, StaffRole};
use kurir_protocol::{call, ServiceError};

pub use kurir_protocol::call::DESK_UPLOAD_BYTES;
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

fn case_number_error() -> FieldError {
    FieldError {
        field: "arende",
        text: format!(
            "Skriv dossiernumret som två siffror, bindestreck och sex siffror, t.ex. {}.",
            CASE_EXAMPLE
        ),
    }
}

/// How a case number looks, in every hint and error.
pub const CASE_EXAMPLE: &str = "12-345678";

/// The desk of a person who may send decisions (a caseworker), or the page that says why not.
async fn sender_desk(portal: &Portal, person: &Person) -> Result<Desk, Box<Response>> {
    let desk = desk_of(portal, person).await?;
    if !desk.sends {
        return Err(Box::new(refusal(
            portal,
            &ServiceError::RoleForbids(StaffRole::Drift),
        )));
    }
    Ok(desk)
}

pub(super) async fn send_form(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
) -> Response {
    let desk = match sender_desk(&portal, &person).await {
        Ok(desk) => desk,
        Err(page) => return *page,
    };
    let token = portal.csrf_token(&person);
    html(
        StatusCode::OK,
        desk_pages::send_form(
            &frame(&person, &token),
            desk,
            &municipalities(&portal),
            &SendFields::default(),
            &[],
            &Kept::default(),
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
    let desk = match sender_desk(&portal, &person).await {
        Ok(desk) => desk,
        Err(page) => return *page,
    };
    let Some(_mine) = UploadOf::claim(&portal, &person) else {
        return portal.refused(
            StatusCode::TOO_MANY_REQUESTS,
            "Försök igen om en stund",
            "Ett annat beslut laddas upp från ditt kort just nu. Vänta tills det är klart.",
        );
    };
    let Ok(Ok(_reading)) = tokio::time::timeout(UPLOAD_QUEUE_WAIT, portal.uploads.acquire()).await
    else {
        return portal.refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "Försök igen om en stund",
            "Många beslut laddas upp just nu. Gå tillbaka och skicka formuläret igen om en \
             stund.",
        );
    };
    let cut_off = || {
        portal.refused(
            StatusCode::BAD_REQUEST,
            "Uppladdningen kom inte fram hel",
            "Gå tillbaka och skicka formuläret igen.",
        )
    };
    // The form's token comes first (the browser sends fields in the form's order); nothing
    // after it is read before it is checked, and text fields are short.
    let mut token_checked = false;
    let mut fields = SendFields::default();
    let mut kept = String::new();
    let mut without_god_man = false;
    let mut decision = (Vec::new(), String::new());
    let mut god_man = (Vec::new(), String::new());
    while let Ok(Some(mut field)) = multipart.next_field().await {
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().unwrap_or("").to_string();
        if name == "csrf" {
            let Ok(token) = read_capped(&mut field, TEXT_FIELD_BYTES).await else {
                return forged(&portal);
            };
            token_checked = portal.token_ok(&person, &String::from_utf8_lossy(&token));
            continue;
        }
        if !token_checked {
            return forged(&portal);
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
            "behall" => kept = text(),
            "utan-godman" => without_god_man = text() == "ja",
            "kopia" => fields.kopia = text(),
            "anvisningsbeslut" => decision = (bytes, file_name),
            "godman" => god_man = (bytes, file_name),
            _ => {}
        }
    }
    if !token_checked {
        return forged(&portal);
    }
    // Every problem at once, in the form's order: what the portal can tell (a municipality
    // as typed), then what the daemon finds checking the rest — which it does whatever
    // failed here, keeping the documents that pass so they need not be chosen again.
    let mut errors = Vec::new();
    let to = municipality(&portal, &fields.kommun);
    let copy_to = if fields.kopia.trim().is_empty() {
        Vec::new()
    } else {
        match municipality(&portal, &fields.kopia) {
            Some(code) => vec![code],
            None => {
                errors.push(FieldError {
                    field: "kopia",
                    text: "Välj en av Sveriges 290 kommuner, eller lämna fältet tomt.".into(),
                });
                Vec::new()
            }
        }
    };
    let mut documents = Vec::new();
    for (kind, (bytes, name)) in [
        (DocumentKind::Anvisningsbeslut, decision),
        (DocumentKind::GodMan, god_man),
    ] {
        if !bytes.is_empty() {
            documents.push(Upload { kind, bytes, name });
        }
    }
    let command = call::DeskDraft {
        to,
        case: fields.arende.trim().to_string(),
        copy_to,
        documents,
        kept: DraftId::try_from(kept.clone()).ok(),
        incomplete: !errors.is_empty(),
        without: if without_god_man {
            vec![DocumentKind::GodMan]
        } else {
            Vec::new()
        },
    };
    let token = portal.csrf_token(&person);
    // The form again, with what must be fixed and what was kept.
    let again = |errors: &[FieldError], kept: &Kept| {
        html(
            StatusCode::UNPROCESSABLE_ENTITY,
            desk_pages::send_form(
                &frame(&person, &token),
                desk,
                &municipalities(&portal),
                &fields,
                errors,
                kept,
            ),
        )
    };
    match portal.ask(&person, command).await {
        Ok(DraftOutcome::Ready(preview)) => html(
            StatusCode::OK,
            desk_pages::confirm(&frame(&person, &token), desk, &preview),
        ),
        Ok(DraftOutcome::NeedsFixing(fixes)) => {
            let mut all: Vec<FieldError> = fixes.problems.iter().map(problem_at_field).collect();
            all.extend(errors);
            let order = ["kommun", "arende", "anvisningsbeslut", "godman", "kopia"];
            all.sort_by_key(|e| order.iter().position(|f| *f == e.field));
            let kept = Kept {
                id: fixes.kept.map(|id| id.as_str().to_string()),
                documents: fixes.documents,
            };
            again(&all, &kept)
        }
        Err(Asked::Unavailable) => portal.unavailable(),
        Err(Asked::Refused(error @ ServiceError::Draft(DraftError::TooMany))) => again(
            &[FieldError {
                field: "anvisningsbeslut",
                text: words::desk_error(&error),
            }],
            &Kept::default(),
        ),
        Err(Asked::Refused(error)) => refusal(&portal, &error),
    }
}

/// Where a problem the daemon found is shown, and in what words.
fn problem_at_field(problem: &DraftProblem) -> FieldError {
    match problem {
        DraftProblem::Municipality => FieldError {
            field: "kommun",
            text: "Välj en av Sveriges 290 kommuner, med namn eller kommunkod.".into(),
        },
        DraftProblem::CaseNumber => case_number_error(),
        DraftProblem::CopyToAssigned => FieldError {
            field: "kopia",
            text: "Kopian kan inte gå till anvisningskommunen själv.".into(),
        },
        DraftProblem::NoDecision => FieldError {
            field: "anvisningsbeslut",
            text: "Välj anvisningsbeslutet (PDF).".into(),
        },
        DraftProblem::Document { kind, reason } => FieldError {
            field: match kind {
                DocumentKind::Anvisningsbeslut => "anvisningsbeslut",
                DocumentKind::GodMan => "godman",
            },
            text: words::pdf_problem(reason),
        },
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
        return forged(&portal);
    }
    let Ok(draft) = DraftId::try_from(form.utkast) else {
        return portal.refused(
            StatusCode::BAD_REQUEST,
            "Utkastet finns inte",
            "Utkastet finns inte. Fyll i formuläret igen.",
        );
    };
    match portal.ask(&person, call::DeskSend { draft }).await {
        Ok(id) => {
            Redirect::to(&format!("/expedition/utskick/{id}?meddelande=skickat")).into_response()
        }
        Err(Asked::Unavailable) => portal.unavailable(),
        Err(Asked::Refused(ServiceError::Draft(DraftError::Gone))) => draft_gone(&portal),
        Err(Asked::Refused(error)) => refusal(&portal, &error),
    }
}

/// One document of the person's draft, to open on the review page before sending: the
/// person's own upload, given back as a download (opened in their PDF reader, never rendered
/// by the desk).
pub(super) async fn draft_document(
    State(portal): State<Arc<Portal>>,
    Extension(person): Extension<Person>,
    Path((draft, file)): Path<(String, String)>,
) -> Response {
    if let Err(page) = sender_desk(&portal, &person).await {
        return *page;
    }
    // A document as large as an upload is held while it is sent: the same slots as uploads.
    let Some(_mine) = UploadOf::claim(&portal, &person) else {
        return portal.refused(
            StatusCode::TOO_MANY_REQUESTS,
            "Försök igen om en stund",
            "Ett annat beslut laddas upp eller hämtas från ditt kort just nu. Vänta tills det \
             är klart.",
        );
    };
    let Ok(Ok(_reading)) = tokio::time::timeout(UPLOAD_QUEUE_WAIT, portal.uploads.acquire()).await
    else {
        return portal.refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "Försök igen om en stund",
            "Många beslut laddas upp just nu. Försök igen om en stund.",
        );
    };
    let kind = file
        .strip_suffix(".pdf")
        .and_then(|k| k.parse::<DocumentKind>().ok());
    let (Ok(draft), Some(kind)) = (DraftId::try_from(draft), kind) else {
        return draft_gone(&portal);
    };
    match portal
        .ask(&person, call::DeskDraftDocument { draft, kind })
        .await
    {
        Ok(file) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/pdf".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}.pdf\"", kind.as_str()),
                ),
            ],
            file.bytes,
        )
            .into_response(),
        Err(Asked::Unavailable) => portal.unavailable(),
        Err(Asked::Refused(ServiceError::Draft(_))) => draft_gone(&portal),
        Err(Asked::Refused(error)) => refusal(&portal, &error),
    }
}

fn draft_gone(portal: &Portal) -> Response {
    portal.refused(
        StatusCode::GONE,
        "Utkastet finns inte längre",
        &words::desk_error(&ServiceError::Draft(DraftError::Gone)),
    )
}
