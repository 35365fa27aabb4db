//! `kurir submit`, `status` and `list`: what dispatch staff and the case system use to hand
//! over a job and follow it.

use crate::cli::out::{say, when};
use crate::spool::Waiting;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use crate::cli::Daemon;
use crate::intake::submit::{self, SubmitRequest};
use crate::job::{CaseNumber, DocumentKind, JobId, Kommunkod};
use crate::pdf::PdfLimits;
use crate::registry::Seed;
use crate::service::call;
use crate::spool::Spool;
use crate::store::state::{EmailDelivery, Event, JobRecord, JobState, ReportKind};

/// What `kurir submit` was given.
pub struct SubmitArgs {
    /// The assigned municipality.
    pub to: Kommunkod,
    /// The case number.
    pub case: CaseNumber,
    /// The decision's file.
    pub anvisningsbeslut: Option<PathBuf>,
    /// The notice's file.
    pub god_man: Option<PathBuf>,
    /// Copies.
    pub copy_to: Vec<Kommunkod>,
    /// The case system's identifier of the submission.
    pub submission_key: Option<String>,
}

/// `kurir submit`: checks the documents, writes the job into the spool and prints its id. A
/// submission key kurir has had before prints the first job's id instead, and says so.
pub fn submit_job(daemon: &Daemon<'_>, args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let SubmitArgs {
        to,
        case,
        anvisningsbeslut,
        god_man,
        copy_to,
        submission_key,
    } = args;
    let mut documents = Vec::new();
    if let Some(path) = anvisningsbeslut {
        documents.push((DocumentKind::Anvisningsbeslut, path));
    }
    if let Some(path) = god_man {
        documents.push((DocumentKind::GodMan, path));
    }
    if documents.is_empty() {
        bail!("give at least one document: --anvisningsbeslut FILE and/or --god-man FILE");
    }
    let seed = daemon.seed();
    for code in std::iter::once(&to).chain(copy_to.iter()) {
        seed.require(*code)?;
    }
    if copy_to.contains(&to) {
        bail!("--copy-to {to} is the assigned municipality itself");
    }
    if let Some(key) = &submission_key {
        if !crate::job::check_submission_key(key) {
            bail!("--submission-key must be 1 to 100 letters, digits, '.', '_', ':' or '-'");
        }
        // Asked first, so that a resubmission is answered at once; intake checks again (a
        // store that is not there yet, say on a fresh machine, answers nothing).
        if let Ok(Some((first, state))) = daemon.ask(
            None,
            call::SubmissionLookup {
                digest: crate::job::submission_digest(key),
            },
        ) {
            eprintln!(
                "kurir: this submission was had before, as job {first} ({state}); not sent again"
            );
            say!("{first}");
            return Ok(ExitCode::SUCCESS);
        }
    }
    let settings = daemon.settings();
    let spool = Spool::new(&settings.spool.dir);
    // Read and checked as the caller (root reads what root may read) ...
    let job = submit::read_and_check(
        SubmitRequest {
            to,
            case,
            copy_to,
            documents,
            submission_key,
        },
        &PdfLimits::from_settings(&settings.spool),
    )?;
    // ... and written by the spool's owner when root runs this.
    // The daemon's user, read from its folders themselves, never from anything inside them,
    // which that user could point elsewhere.
    if let Some(owner) = crate::fsutil::Owner::of_daemon(&settings.store.dir, &settings.spool.dir)?
    {
        let task = crate::cli::as_owner::submit_task(job);
        return Ok(crate::cli::as_owner::run(owner, settings, &task, false)?.0);
    }
    let id = submit::write(&spool, &job)?;
    say!("{id}");
    Ok(ExitCode::SUCCESS)
}

/// `kurir status`: one job's state and history, as text or JSON.
pub fn status(daemon: &Daemon<'_>, job_id: JobId, json: bool) -> anyhow::Result<ExitCode> {
    let reply = daemon.ask(None, call::Status { id: job_id })?;
    let status = reply;
    if json {
        say!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print_status(&status.job, &status.events, daemon.seed());
    }
    Ok(ExitCode::SUCCESS)
}

/// `kurir list`: jobs newest first, as a table or JSON.
pub fn list(
    daemon: &Daemon<'_>,
    states: Vec<JobState>,
    limit: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let reply = daemon.ask(None, call::List { states, limit })?;
    let list = reply;
    if json {
        say!("{}", serde_json::to_string_pretty(&list.jobs)?);
    } else {
        print_list(&list.jobs);
        print_waiting(&list.waiting_in_spool, list.daemon_running);
    }
    Ok(ExitCode::SUCCESS)
}

/// What the store cannot show yet: jobs dropped into `incoming/` and not taken in.
fn print_waiting(waiting: &[Waiting], daemon_running: bool) {
    if waiting.is_empty() {
        if !daemon_running {
            say!("-- no daemon runs: nothing is taken in or sent until `kurir run` starts");
        }
        return;
    }
    let why = if daemon_running {
        "the daemon takes them in shortly"
    } else {
        "NO DAEMON RUNS: nothing takes them in until `kurir run` starts"
    };
    say!("-- {} waiting in spool/incoming/ ({why}):", waiting.len());
    for w in waiting {
        say!("{:<28}  since {}", w.name, when(w.since));
    }
}

fn print_status(job: &JobRecord, events: &[Event], seed: &Seed) {
    let name = |code: Kommunkod| seed.get(code).map(|m| m.name.clone()).unwrap_or_default();
    say!("job        {}", job.id);
    say!("state      {}", job.state);
    say!("channel    {}", job.channel_summary());
    if let Some(to) = job.to {
        say!("to         {to} {}", name(to));
    }
    for r in job.recipients.iter().skip(1) {
        say!("copy to    {} {}", r.kommunkod, name(r.kommunkod));
    }
    for d in &job.documents {
        say!(
            "document   {} ({}, sha256 {})",
            d.kind,
            pages(d.pages),
            d.sha256
        );
    }
    for r in &job.recipients {
        if let Some(l) = &r.letter {
            let flag = if l.address_missing {
                "  ADDRESS MISSING: sent to the registry office"
            } else {
                ""
            };
            let printed = l
                .printed_at
                .map(|t| format!("  printed and posted {}", when(t)))
                .unwrap_or_default();
            say!(
                "letter     {} → batch {} file {}{flag}{printed}",
                r.kommunkod,
                l.batch,
                l.file
            );
        }
    }
    for r in &job.recipients {
        if let Some(proof) = r.email.as_ref().and_then(proof_words) {
            say!("proof      {} {proof}", r.kommunkod);
        }
    }
    if let Some(q) = &job.quarantine {
        say!(
            "quarantine spool/quarantine/{} ({}: {})",
            q.dir,
            q.code,
            q.summary
        );
    }
    if let Some(next) = job.next_attempt {
        say!("next       {}", when(next));
    }
    say!("history");
    for e in events {
        say!("  {}  {:<13} {}", when(e.at), e.state.as_str(), e.detail);
    }
}

fn pages(n: u32) -> String {
    if n == 1 {
        "1 page".into()
    } else {
        format!("{n} pages")
    }
}

fn print_list(jobs: &[JobRecord]) {
    say!(
        "{:<28}  {:>8}  {:<13}  {:<9}  {:<7}  FLAGS",
        "JOB ID",
        "AGE",
        "STATE",
        "TO",
        "CHANNEL"
    );
    let now = jiff::Timestamp::now();
    for job in jobs {
        let age = now.duration_since(job.received_at);
        let secs = age.as_secs().max(0);
        let age = match secs {
            s if s < 120 => format!("{s}s"),
            s if s < 7200 => format!("{}m", s / 60),
            s if s < 172_800 => format!("{}h", s / 3600),
            s => format!("{}d", s / 86_400),
        };
        let to = job.to.map(|k| k.to_string()).unwrap_or_else(|| "-".into());
        let mut flags = Vec::new();
        if job.address_missing() {
            flags.push("address-missing".to_string());
        }
        if let Some(q) = &job.quarantine {
            flags.push(q.code.clone());
        }
        for r in &job.recipients {
            if let Some(flag) = r.email.as_ref().and_then(proof_flag) {
                flags.push(format!("{flag}:{}", r.kommunkod));
            }
        }
        say!(
            "{:<28}  {:>8}  {:<13}  {:<9}  {:<7}  {}",
            job.id,
            age,
            job.state.as_str(),
            to,
            job.channel_summary(),
            flags.join(",")
        );
    }
    say!("-- {} job(s)", jobs.len());
}

/// What the reports prove about one e-mail recipient, in words; `None` where none were asked.
fn proof_words(email: &EmailDelivery) -> Option<String> {
    let accepted = email.accepted.as_ref()?;
    let mut words = match (&accepted.return_path, accepted.dsn_requested) {
        (None, _) => return None,
        (Some(_), Some(false)) => {
            "the relay offers no delivery reports: proof ends at the relay".to_string()
        }
        _ => match email.confirmation() {
            Some(c) if c.kind == ReportKind::Delivered => format!(
                "confirmed: delivered ({}) reported by {} at {}",
                c.status,
                c.reporting.as_deref().unwrap_or("?"),
                when(c.at)
            ),
            Some(c) => format!(
                "relayed ({}) by {} at {}: weaker proof, the next server offers no reports",
                c.status,
                c.reporting.as_deref().unwrap_or("?"),
                when(c.at)
            ),
            None => "awaiting a delivery report".to_string(),
        },
    };
    if let Some(read) = email.read_notice() {
        words.push_str(&format!("; read at {}", when(read.at)));
    }
    if let Some(rejected) = &email.rejected {
        words.push_str(&format!("; failed: {rejected}"));
    }
    Some(words)
}

/// One word for `kurir list`'s flags: `read`, `confirmed`, `relayed`, `failed`, `unconfirmed`.
fn proof_flag(email: &EmailDelivery) -> Option<&'static str> {
    let accepted = email.accepted.as_ref()?;
    accepted.return_path.as_ref()?;
    Some(if email.rejected.is_some() {
        "failed"
    } else if email.read_notice().is_some() {
        "read"
    } else {
        match email.confirmation().map(|c| c.kind) {
            Some(ReportKind::Delivered) => "confirmed",
            Some(_) => "relayed",
            None => "unconfirmed",
        }
    })
}
