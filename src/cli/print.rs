//! `kurir print`: the print shop's side of the postal channel — which batches wait to be
//! printed and posted, and the confirmation that one was.

use std::process::ExitCode;

use clap::Subcommand;

use crate::cli::out::{say, when};
use crate::cli::Daemon;
use crate::service::call;

/// What to do with print batches.
#[derive(Subcommand, Debug)]
pub enum PrintCommand {
    /// Print batches, newest first: open, closed (READY, waiting for the print shop) or
    /// confirmed, and how long closed ones have waited in working time.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Record that every letter of a closed batch was printed and posted: its jobs become
    /// `printed`, with the time in their receipts. Run it when the print shop reports back.
    Confirm {
        /// The batch id: its folder under spool/print/, e.g. 20261130-001.
        batch: String,
        /// A note for the history (e.g. who at the print shop reported it).
        #[arg(long, default_value = "")]
        reason: String,
        /// Who confirms (default: the OS user).
        #[arg(long)]
        operator: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `kurir print` command through the daemon (or the store when none runs).
pub fn run(daemon: &Daemon<'_>, command: PrintCommand) -> anyhow::Result<ExitCode> {
    match command {
        PrintCommand::List { json } => {
            let batches = daemon.ask(None, call::PrintBatches {})?;
            if json {
                say!("{}", serde_json::to_string_pretty(&batches)?);
                return Ok(ExitCode::SUCCESS);
            }
            say!(
                "{:<14}  {:>7}  {:<10}  {:<19}  STATUS",
                "BATCH",
                "LETTERS",
                "DAY",
                "CLOSED"
            );
            for view in &batches {
                let b = &view.batch;
                let status = match (&b.closed_at, &b.confirmed, view.waiting) {
                    (None, _, _) => "open: letters still go into it".to_string(),
                    (Some(_), Some(c), _) => {
                        format!("printed and posted (confirmed by {} {})", c.by, when(c.at))
                    }
                    (Some(_), None, waiting) => format!(
                        "READY, waiting for the print shop: {} of working time{}",
                        hours(waiting.unwrap_or_default()),
                        if view.overdue { "  OVERDUE" } else { "" }
                    ),
                };
                say!(
                    "{:<14}  {:>7}  {:<10}  {:<19}  {status}",
                    b.id,
                    b.letters,
                    b.day,
                    b.closed_at
                        .map(|t| when(t).to_string())
                        .unwrap_or_else(|| "-".into()),
                );
            }
            say!("-- {} batch(es)", batches.len());
        }
        PrintCommand::Confirm {
            batch,
            reason,
            operator,
            json,
        } => {
            let reply = daemon.ask(operator, call::PrintConfirm { batch, reason })?;
            let done = reply;
            if json {
                say!("{}", serde_json::to_string_pretty(&done)?);
            } else if done.already {
                say!(
                    "print batch {} was confirmed before, by {} at {}; {} job(s) marked printed now",
                    done.batch,
                    done.confirmation.by,
                    when(done.confirmation.at),
                    done.jobs.len()
                );
            } else {
                say!(
                    "print batch {} confirmed printed and posted: {} job(s) printed",
                    done.batch,
                    done.jobs.len()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Working time as hours and minutes, e.g. `3h 20m`.
fn hours(d: jiff::SignedDuration) -> String {
    let minutes = d.as_secs().max(0) / 60;
    format!("{}h {:02}m", minutes / 60, minutes % 60)
}
