//! The receipt for the case file (kvitto för akten), in Swedish. It opens with one sentence —
//! who sent the decision, when it reached each municipality's mail server, when it was opened —
//! then each recipient's route and proof in words, and keeps the protocol's own details (the
//! relay's reply, TLS, certificates, report codes, SHA-256 and the audit chain) under
//! "Tekniska uppgifter". One list of blocks, shown as a page and laid out as a PDF
//! ([`crate::report`]).

use crate::report::Block;
use kurir_protocol::job::RecipientRole;
use kurir_protocol::registry::Person;
use kurir_protocol::reply::{DeskJob, ProofChain};
use kurir_protocol::state::ReportKind;

use super::words::{self, when, DOSSIERNUMMER};

/// The receipt's title.
pub const TITLE: &str = "Kvitto för akten";

/// What happened to one recipient's documents, in part of a sentence.
fn outcome(c: &ProofChain) -> String {
    if let Some(batch) = &c.batch {
        return match c.printed_at {
            Some(at) => format!(
                "gick med post (utskriftsbatch {batch}), postat {}",
                when(at)
            ),
            None => format!(
                "går med post (utskriftsbatch {batch}); tryckeriet har inte bekräftat det än"
            ),
        };
    }
    let reached = c.delivered_at.or(c.relayed_at);
    match (c.accepted_at, reached, c.read_at) {
        (None, _, _) => "är inte skickat än".into(),
        (Some(sent), None, None) => format!(
            "skickades med skyddad e-post {}; leveransbevis från kommunens e-postserver har inte \
             kommit än",
            when(sent)
        ),
        (Some(_), Some(at), None) => format!(
            "nådde kommunens e-postserver {} och är inte öppnat än",
            when(at)
        ),
        (Some(sent), None, Some(read)) => format!(
            "skickades med skyddad e-post {} och öppnades {}",
            when(sent),
            when(read)
        ),
        (Some(_), Some(at), Some(read)) => format!(
            "nådde kommunens e-postserver {} och öppnades {}",
            when(at),
            when(read)
        ),
    }
}

/// The receipt of `job` as `person` takes it out now: what a reader reads, and the technical
/// details kept apart from it (the page folds them under their heading; the PDF prints them
/// last).
pub struct Receipt {
    /// The sentence, the route and proof of each recipient, in words.
    pub main: Vec<Block>,
    /// "Tekniska uppgifter": servers' replies, TLS, fingerprints, the audit chain.
    pub technical: Vec<Block>,
    /// Who took it out, when.
    pub taken: Block,
}

impl Receipt {
    /// Every block in reading order, for the PDF.
    pub fn all(&self) -> Vec<Block> {
        let mut out = self.main.clone();
        out.extend(self.technical.iter().cloned());
        out.push(self.taken.clone());
        out
    }
}

/// The receipt of `job`, as `person` takes it out now.
pub fn receipt(job: &DeskJob, person: &Person) -> Receipt {
    let row = |label: &str, value: String| Block::Row(label.to_string(), value);
    let r = &job.job;
    let sender = super::desk_pages::sent_by(job.sent_by.as_deref());
    let mut lead = match &job.sent_by {
        Some(_) => format!("{sender} skickade beslutet {}.", when(r.received_at)),
        None => format!(
            "Beslutet lämnades in {} från {sender}.",
            when(r.received_at)
        ),
    };
    for c in &job.chains {
        lead.push_str(&format!(" {}: det {}.", c.name, outcome(c)));
    }
    let mut out = vec![
        Block::Title(format!("{TITLE} – beslut om anvisning")),
        Block::Lead(lead),
        row(
            DOSSIERNUMMER,
            job.case
                .clone()
                .unwrap_or_else(|| "(gallrat ur kurir)".into()),
        ),
        row(
            "Status",
            super::desk_pages::status_word(r.state, &job.chains).to_string(),
        ),
        row("Mottaget av kurir", when(r.received_at)),
        row("Skickat av", sender.clone()),
        Block::Heading("Handlingar".into()),
    ];
    for d in &r.documents {
        out.push(row(words::document(d.kind), pages(d.pages)));
    }
    for (chain, recipient) in job.chains.iter().zip(&r.recipients) {
        let role = match chain.role {
            RecipientRole::Assigned => "anvisningskommun",
            RecipientRole::Copy => "kopia",
        };
        out.push(Block::Heading(format!(
            "{} ({}) – {role}",
            chain.name, chain.kommunkod
        )));
        let email = recipient.email.as_ref();
        if let Some(accepted) = email.and_then(|e| e.accepted.as_ref()) {
            out.push(row(
                "Väg",
                format!("skyddad e-post till {}", accepted.address),
            ));
            out.push(row("Skickat", when(accepted.at)));
            out.push(row(
                "Framme hos kommunens e-postserver",
                match (chain.delivered_at, chain.relayed_at) {
                    (Some(at), _) => when(at),
                    (None, Some(at)) => format!(
                        "{} (skickat vidare till en server som inte lämnar leveransbevis)",
                        when(at)
                    ),
                    (None, None) => "inget leveransbevis än".into(),
                },
            ));
            out.push(row(
                "Öppnat",
                chain
                    .read_at
                    .map(when)
                    .unwrap_or_else(|| "inte öppnat än".into()),
            ));
        } else if email.is_some_and(|e| e.rejected.is_some()) {
            out.push(row(
                "E-post",
                "kommunens e-postserver tog inte emot e-posten".into(),
            ));
        }
        if let Some(letter) = &recipient.letter {
            out.push(row(
                "Brev",
                format!(
                    "utskriftsbatch {}, {}{}",
                    letter.batch,
                    pages(letter.pages),
                    if letter.address_missing {
                        ", till registraturen (adress saknades)"
                    } else {
                        ""
                    }
                ),
            ));
            out.push(row(
                "Utskrivet och postat",
                letter
                    .printed_at
                    .map(when)
                    .unwrap_or_else(|| "inte bekräftat av tryckeriet än".into()),
            ));
        }
    }
    Receipt {
        main: out,
        technical: technical(job),
        taken: Block::Small(format!(
            "Uttaget {} av {} ({}). Kvittot bygger på kurirs lagrade uppgifter; revisionskedjan \
             visar att de inte ändrats i efterhand.",
            when(jiff::Timestamp::now()),
            person.name,
            person.hsa_id
        )),
    }
}

/// Tekniska uppgifter: what servers answered and the fingerprints that tie the receipt to the
/// files, the connection and the audit chain.
fn technical(job: &DeskJob) -> Vec<Block> {
    let row = |label: &str, value: String| Block::Row(label.to_string(), value);
    let r = &job.job;
    let mut out = vec![
        Block::Heading("Tekniska uppgifter".into()),
        row("Utskick (jobb-id)", r.id.to_string()),
    ];
    for d in &r.documents {
        out.push(Block::Text(format!(
            "{}: SHA-256\n{}",
            words::document(d.kind),
            d.sha256
        )));
    }
    for recipient in &r.recipients {
        let email = recipient.email.as_ref();
        if let Some(accepted) = email.and_then(|e| e.accepted.as_ref()) {
            out.push(row(
                &format!("Kommun {}: reläet", recipient.kommunkod),
                format!("{} svarade {}", accepted.relay, accepted.reply),
            ));
            out.push(row(
                "TLS",
                format!("{}, {}", accepted.tls_version, accepted.tls_cipher),
            ));
            out.push(Block::Text(format!(
                "Serverns certifikat (SHA-256)\n{}",
                accepted.server_cert_sha256
            )));
            out.push(row(
                "S/MIME",
                if accepted.encrypted {
                    "signerat och krypterat".to_string()
                } else {
                    "signerat".to_string()
                },
            ));
            for report in email.map(|e| e.reports.as_slice()).unwrap_or_default() {
                let what = match report.kind {
                    ReportKind::Delivered => "leveransbevis (levererat)",
                    ReportKind::Relayed => "skickat vidare",
                    ReportKind::Displayed => "öppnat (läskvitto)",
                    ReportKind::Failed => "misslyckat",
                    ReportKind::Delayed => "fördröjt",
                    _ => "rapport",
                };
                let by = report.reporting.as_deref().unwrap_or("okänd server");
                out.push(row(
                    "Rapport",
                    format!("{} – {what}, {} ({by})", when(report.at), report.status),
                ));
            }
        } else if let Some(rejected) = email.and_then(|e| e.rejected.as_ref()) {
            out.push(row(
                &format!("Kommun {}: svar", recipient.kommunkod),
                rejected.clone(),
            ));
        }
        if let Some(letter) = &recipient.letter {
            out.push(Block::Text(format!(
                "Kommun {}: brevets SHA-256\n{}",
                recipient.kommunkod, letter.sha256
            )));
        }
    }
    match &job.audit_position {
        Some((seq, hash)) => {
            out.push(row("Revisionskedjan", format!("post {seq}")));
            out.push(Block::Text(format!("Postens hash (SHA-256)\n{hash}")));
        }
        None => out.push(row("Revisionskedjan", "ingen post ännu".into())),
    }
    out
}

/// `1 sida`, `3 sidor`.
fn pages(n: u32) -> String {
    if n == 1 {
        "1 sida".into()
    } else {
        format!("{n} sidor")
    }
}
