//! The dispatch desk's way to send a decision: the form, the upload checked into a draft
//! (read only after the person's grant, role and form token are checked, a few at a time),
//! and the confirmation that sends it.

use std::sync::Arc;

use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::backend::Asked;
use super::desk::{desk_of, forged, frame, refusal};
use super::desk_pages::{self, Desk, FieldError, SendFields};
use super::routes::{html, refused, unavailable, Portal};
use super::words;
use kurir_protocol::call::Upload;
use kurir_protocol::draft::{DraftError, DraftId};
use kurir_protocol::job::{DocumentKind, Kommunkod};
use kurir_protocol::registry::{Person, RegistryError, StaffRole};
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

/// The desk of a person who may send decisions (a caseworker), or the page that says why not.
async fn sender_desk(portal: &Portal, person: &Person) -> Result<Desk, Box<Response>> {
    let desk = desk_of(portal, person).await?;
    if !desk.sends {
        return Err(Box::new(refusal(&ServiceError::RoleForbids(
            StaffRole::Drift,
        ))));
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
    let desk = match sender_desk(&portal, &person).await {
        Ok(desk) => desk,
        Err(page) => return *page,
    };
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
    let command = call::DeskDraft {
        to,
        case: fields.arende.trim().to_string(),
        copy_to,
        documents,
    };
    match portal.ask(&person, command).await {
        Ok(preview) => {
            let token = portal.csrf_token(&person);
            html(
                StatusCode::OK,
                desk_pages::confirm(&frame(&person, &token), desk, &preview),
            )
        }
        Err(Asked::Unavailable) => unavailable(),
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
    match portal.ask(&person, call::DeskSend { draft }).await {
        Ok(id) => {
            Redirect::to(&format!("/expedition/utskick/{id}?meddelande=skickat")).into_response()
        }
        Err(Asked::Unavailable) => unavailable(),
        Err(Asked::Refused(ServiceError::Draft(DraftError::Gone))) => refused(
            StatusCode::GONE,
            "Utkastet finns inte längre",
            &words::desk_error(&ServiceError::Draft(DraftError::Gone)),
        ),
        Err(Asked::Refused(error)) => refusal(&error),
    }
}
