//! The receipt for the case file (kvitto för akten), in Swedish: the documents and their
//! SHA-256, each recipient's route, the relay's acceptance (time, reply, TLS, the server's
//! certificate), the delivery and read reports with their times, the letters, and where the
//! job stands in the audit chain. One list of blocks, shown as a page and laid out as a PDF
//! ([`crate::report`]).

use crate::report::Block;
use kurir_protocol::job::RecipientRole;
use kurir_protocol::registry::Person;
use kurir_protocol::reply::DeskJob;
use kurir_protocol::state::ReportKind;

use super::desk_pages::when;
use super::words;

/// The receipt's title.
pub const TITLE: &str = "Kvitto för akten";

/// The receipt of `job`, as `person` takes it out now.
pub fn blocks(job: &DeskJob, person: &Person) -> Vec<Block> {
    let row = |label: &str, value: String| Block::Row(label.to_string(), value);
    let r = &job.job;
    let mut out = vec![
        Block::Title(format!("{TITLE} – beslut om anvisning")),
        row(
            "Ärendenummer",
            job.case
                .clone()
                .unwrap_or_else(|| "(gallrat ur kurir)".into()),
        ),
        row("Utskick (jobb-id)", r.id.to_string()),
        row("Mottaget", when(r.received_at)),
        row("Tillstånd", words::state(r.state).to_string()),
        Block::Heading("Handlingar".into()),
    ];
    for d in &r.documents {
        out.push(Block::Text(format!(
            "{}, {}\nSHA-256 {}",
            words::document(d.kind),
            pages(d.pages),
            d.sha256
        )));
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
            out.push(row(
                "Mottaget av reläet",
                format!("{} ({})", when(accepted.at), accepted.relay),
            ));
            out.push(row("Reläets svar", accepted.reply.clone()));
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
                    ReportKind::Delivered => "levererat till mottagarens brevlåda",
                    ReportKind::Relayed => "vidareskickat (nästa server ger inga rapporter)",
                    ReportKind::Displayed => "läst (visat för mottagaren)",
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
            if email.is_some_and(|e| e.confirmation().is_none()) {
                out.push(row("Leveransrapport", "ingen ännu".into()));
            }
        } else if let Some(rejected) = email.and_then(|e| e.rejected.as_ref()) {
            out.push(row("E-post", format!("nekades: {rejected}")));
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
                    .unwrap_or_else(|| "inte bekräftat av tryckeriet ännu".into()),
            ));
            out.push(Block::Text(format!("Brevets SHA-256\n{}", letter.sha256)));
        }
    }
    out.push(Block::Heading("Revisionskedjan".into()));
    match &job.audit_position {
        Some((seq, hash)) => {
            out.push(row("Position", format!("post {seq}")));
            out.push(Block::Text(format!("Postens hash (SHA-256)\n{hash}")));
        }
        None => out.push(row("Position", "ingen post ännu".into())),
    }
    out.push(Block::Small(format!(
        "Uttaget {} av {} ({}). Kvittot bygger på kurirs lagrade uppgifter; revisionskedjan \
         visar att de inte ändrats i efterhand.",
        when(jiff::Timestamp::now()),
        person.name,
        person.hsa_id
    )));
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
