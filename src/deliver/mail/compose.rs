//! Composing the messages kurir sends, with mail-builder, and wrapping them in S/MIME.
//!
//! Structure of a decision message:
//! ```text
//! multipart/signed (protocol=application/pkcs7-signature, micalg=sha-256)
//!   multipart/mixed
//!     text/plain            short Swedish letter
//!     application/pdf       anvisningsbeslut-<job-id>.pdf
//!     application/pdf       god-man-<job-id>.pdf
//!   application/pkcs7-signature  smime.p7s
//! ```
//! and, where the municipality registered a certificate, that whole entity encrypted as
//! `application/pkcs7-mime; smime-type=enveloped-data` (smime.p7m). Headers carry no personal
//! data: the subject names the job id only.

use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;

use crate::config::SenderSettings;
use crate::deliver::mail::smime::{Signer, SmimeError};
use crate::job::{DocumentKind, JobId, Kommunkod};
use crate::registry::RegisteredCert;

/// A message ready for SMTP.
#[derive(Debug, Clone)]
pub struct Composed {
    /// The whole message, CRLF line endings.
    pub bytes: Vec<u8>,
    /// Its Message-ID, without angle brackets.
    pub message_id: String,
    /// SHA-256 of the certificate it was encrypted to, if it was.
    pub encrypted_to: Option<String>,
    /// SHA-256 of `bytes`, the proof of what was sent. Computed here, where the message is
    /// built (a decision is composed on the blocking pool), not on an async worker.
    pub sha256: String,
}

/// Why a message could not be composed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// S/MIME failed.
    #[error(transparent)]
    Smime(#[from] SmimeError),
    /// The registered certificate no longer parses.
    #[error("registered S/MIME certificate: {0}")]
    Certificate(#[from] openssl::error::ErrorStack),
    /// mail-builder could not write the message.
    #[error("writing the message: {0}")]
    Write(#[from] std::io::Error),
}

/// Who sends and how the Message-ID's right-hand side is formed.
#[derive(Debug, Clone)]
pub struct MailFrom<'a> {
    /// The agency's address.
    pub address: &'a str,
    /// Display name.
    pub name: &'a str,
}

impl MailFrom<'_> {
    fn domain(&self) -> &str {
        self.address.rsplit('@').next().unwrap_or("kurir.invalid")
    }
}

/// One document to attach.
#[derive(Debug, Clone, Copy)]
pub struct Attachment<'a> {
    /// Which document.
    pub kind: DocumentKind,
    /// Pages, for the body text.
    pub pages: u32,
    /// The PDF.
    pub bytes: &'a [u8],
}

/// What a decision message says.
#[derive(Debug, Clone)]
pub struct DecisionMail<'a> {
    /// Sender.
    pub from: MailFrom<'a>,
    /// The municipality's proven address.
    pub to: &'a str,
    /// The municipality.
    pub kommunkod: Kommunkod,
    /// The job.
    pub job_id: &'a JobId,
    /// For a copy: the assigned municipality's name.
    pub copy_of: Option<String>,
    /// The documents in order.
    pub documents: Vec<Attachment<'a>>,
    /// Contact details for the body.
    pub sender: &'a SenderSettings,
    /// Where read notifications go (`Disposition-Notification-To:`): the same per-recipient
    /// return address as the envelope's, since clients send one unasked only then.
    pub notify_to: Option<&'a str>,
}

/// The stable Message-ID of a job's message to one municipality: the same on every attempt,
/// so a receiver can discard a duplicate after a crash between sending and recording.
pub fn message_id(from: &str, job_id: &JobId, kommunkod: Kommunkod) -> String {
    let domain = from.rsplit('@').next().unwrap_or("kurir.invalid");
    format!("{job_id}.{kommunkod}@{domain}")
}

fn attachment_names(job_id: &JobId, documents: &[Attachment<'_>]) -> Vec<String> {
    documents
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let same_kind = documents.iter().filter(|x| x.kind == d.kind).count();
            if same_kind > 1 {
                format!("{}-{}-{}.pdf", d.kind, job_id, i + 1)
            } else {
                format!("{}-{}.pdf", d.kind, job_id)
            }
        })
        .collect()
}

fn pages_text(n: u32) -> String {
    if n == 1 {
        "1 sida".into()
    } else {
        format!("{n} sidor")
    }
}

/// Composes, signs and (if a certificate is given) encrypts a decision message.
pub fn decision(
    mail: &DecisionMail<'_>,
    signer: &Signer,
    encrypt_to: Option<&RegisteredCert>,
) -> Result<Composed, ComposeError> {
    let s = mail.sender;
    let names = attachment_names(mail.job_id, &mail.documents);
    let mut body = String::new();
    match &mail.copy_of {
        Some(assigned) => body.push_str(&format!(
            "Kopia för kännedom. Migrationsverket, {unit}, har anvisat ett ensamkommande barn \
             till {assigned}. Bifogat finns handlingarna.\r\n\r\n",
            unit = s.unit
        )),
        None => body.push_str(&format!(
            "Migrationsverket, {unit}, har anvisat ett ensamkommande barn till er kommun. \
             Ansvaret för barnet övergår till kommunen i samband med anvisningen.\r\n\r\n",
            unit = s.unit
        )),
    }
    body.push_str("Bifogat:\r\n");
    for (doc, name) in mail.documents.iter().zip(&names) {
        body.push_str(&format!(
            "- {} ({name}, {})\r\n",
            doc.kind.swedish_title(),
            pages_text(doc.pages)
        ));
    }
    body.push_str("\r\n");
    if mail.copy_of.is_none()
        && mail
            .documents
            .iter()
            .any(|d| d.kind == DocumentKind::GodMan)
    {
        body.push_str(
            "Anmälan om behov av god man ska utan dröjsmål lämnas till överförmyndaren.\r\n",
        );
    }
    body.push_str(&format!(
        "Den här brevlådan tar emot beslut om anvisning och ska läsas skyndsamt under \
         arbetstid.\r\n\r\nFrågor besvaras av {unit}, telefon {phone} ({hours}), e-post \
         {email}. Ange referens {job}.\r\n\r\nMeddelandet är signerat av {name} (S/MIME).\r\n",
        unit = s.unit,
        phone = s.phone,
        hours = s.phone_hours,
        email = s.email,
        job = mail.job_id,
        name = s.name,
    ));

    let mut parts = vec![MimePart::new("text/plain", BodyPart::Text(body.into()))];
    for (doc, name) in mail.documents.iter().zip(names) {
        parts.push(
            MimePart::new("application/pdf", BodyPart::Binary(doc.bytes.into())).attachment(name),
        );
    }
    let inner = MimePart::new("multipart/mixed", parts);
    let subject = match mail.copy_of {
        Some(_) => format!("Kopia: Beslut om anvisning – ref {}", mail.job_id),
        None => format!("Beslut om anvisning – ref {}", mail.job_id),
    };
    let id = message_id(mail.from.address, mail.job_id, mail.kommunkod);
    finish(
        &mail.from,
        mail.to,
        subject,
        id,
        inner,
        signer,
        encrypt_to,
        mail.notify_to,
    )
}

/// What a verification message says.
#[derive(Debug, Clone)]
pub struct VerificationMail<'a> {
    /// Sender.
    pub from: MailFrom<'a>,
    /// The address to prove.
    pub to: &'a str,
    /// The municipality.
    pub kommunkod: Kommunkod,
    /// Its name.
    pub municipality_name: &'a str,
    /// The one-time code.
    pub code: &'a str,
    /// Contact details for the body.
    pub sender: &'a SenderSettings,
}

/// Composes the message that proves an address: it carries a one-time code on a line
/// `Verifieringskod: <code>` and travels the same protected route as decisions.
pub fn verification(
    mail: &VerificationMail<'_>,
    signer: &Signer,
    encrypt_to: Option<&RegisteredCert>,
) -> Result<Composed, ComposeError> {
    let sender = mail.sender;
    let body = format!(
        "Migrationsverket, {unit}, har registrerat den här adressen för beslut om anvisning \
         till {name} ({kommunkod}).\r\n\r\n\
         Verifieringskod: {code}\r\n\r\n\
         Lämna koden till Migrationsverket för att bekräfta att adressen tar emot skyddad \
         e-post. Först därefter skickas beslut hit. Koden gäller en gång.\r\n\r\n\
         Frågor: telefon {phone} ({hours}), e-post {email}.\r\n",
        unit = sender.unit,
        name = mail.municipality_name,
        kommunkod = mail.kommunkod,
        code = mail.code,
        phone = sender.phone,
        hours = sender.phone_hours,
        email = sender.email,
    );
    let inner = MimePart::new("text/plain", BodyPart::Text(body.into()));
    let subject = format!(
        "Verifiering av adress för beslut om anvisning – {}",
        mail.kommunkod
    );
    let nonce = crate::digest::sha256_hex(mail.code.as_bytes());
    let id = format!(
        "verify.{}.{}@{}",
        &nonce[..16],
        mail.kommunkod,
        mail.from.domain()
    );
    finish(
        &mail.from, mail.to, subject, id, inner, signer, encrypt_to, None,
    )
}

/// Composes a signed plain-text notice, such as an alert to operations.
pub fn notice(
    from: &MailFrom<'_>,
    to: &str,
    subject: String,
    body: String,
    signer: &Signer,
) -> Result<Composed, ComposeError> {
    let inner = MimePart::new("text/plain", BodyPart::Text(body.into()));
    let nonce =
        crate::digest::sha256_hex(format!("{subject}{}", jiff::Timestamp::now()).as_bytes());
    let id = format!("notice.{}@{}", &nonce[..24], from.domain());
    finish(from, to, subject, id, inner, signer, None, None)
}

/// Signs `inner` (multipart/signed), optionally encrypts the signed entity, and wraps it in
/// a message with minimal headers.
#[allow(clippy::too_many_arguments)]
fn finish(
    from: &MailFrom<'_>,
    to: &str,
    subject: String,
    message_id: String,
    inner: MimePart<'_>,
    signer: &Signer,
    encrypt_to: Option<&RegisteredCert>,
    notify_to: Option<&str>,
) -> Result<Composed, ComposeError> {
    let mut inner_bytes = Vec::new();
    inner.write_part(&mut inner_bytes);
    let signature = signer.sign_detached(&inner_bytes)?;
    let signed = MimePart::new(
        ContentType::new("multipart/signed")
            .attribute("protocol", "application/pkcs7-signature")
            .attribute("micalg", "sha-256"),
        vec![
            MimePart::raw(BodyPart::Binary(inner_bytes.into())),
            MimePart::new(
                ContentType::new("application/pkcs7-signature").attribute("name", "smime.p7s"),
                BodyPart::Binary(signature.into()),
            )
            .attachment("smime.p7s"),
        ],
    );
    let (body, encrypted_to) = match encrypt_to {
        Some(cert) => {
            let mut signed_bytes = Vec::new();
            signed.write_part(&mut signed_bytes);
            let enveloped = signer.encrypt_to(&signed_bytes, cert)?;
            let part = MimePart::new(
                ContentType::new("application/pkcs7-mime")
                    .attribute("smime-type", "enveloped-data")
                    .attribute("name", "smime.p7m"),
                BodyPart::Binary(enveloped.into()),
            )
            .attachment("smime.p7m");
            (part, Some(cert.sha256.clone()))
        }
        None => (signed, None),
    };
    let mut builder = MessageBuilder::new()
        .from((from.name, from.address))
        .to(to)
        .subject(subject)
        .message_id(message_id.as_str())
        .date(jiff::Timestamp::now().as_second());
    if let Some(notify_to) = notify_to {
        builder = builder.header(
            "Disposition-Notification-To",
            mail_builder::headers::address::Address::new_address(None::<&str>, notify_to),
        );
    }
    let bytes = builder.body(body).write_to_vec()?;
    Ok(Composed {
        sha256: crate::digest::sha256_hex(&bytes),
        bytes,
        message_id,
        encrypted_to,
    })
}
