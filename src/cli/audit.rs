//! `kurir audit`: check the audit chain and export it for a regulator.

use crate::cli::out::say;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::cli::Daemon;
use crate::service::call;
use crate::store::audit::Verdict;

/// What to do with the audit chain.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check every link of the chain; exit 1 naming the first broken entry.
    Verify,
    /// Write entries as JSON lines (for a regulator): no document content, no names.
    Export {
        /// From this date (`YYYY-MM-DD`, Swedish time) or instant (RFC 3339).
        #[arg(long, value_name = "DATE")]
        since: String,
    },
}

fn parse_since(text: &str) -> anyhow::Result<jiff::Timestamp> {
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Ok(ts);
    }
    let date: jiff::civil::Date = text
        .parse()
        .with_context(|| format!("--since {text:?}: expected YYYY-MM-DD or an RFC 3339 instant"))?;
    Ok(date
        .to_zoned(jiff::tz::TimeZone::get("Europe/Stockholm")?)?
        .timestamp())
}

/// Runs one audit command.
pub fn run(daemon: &Daemon<'_>, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify => {
            let reply = daemon.ask(None, call::AuditVerify {})?;
            match reply {
                Verdict::Ok { entries } => {
                    say!("ok, {entries} entries");
                    Ok(ExitCode::SUCCESS)
                }
                Verdict::Broken { seq, problem } => {
                    say!("BROKEN at entry {seq}: {problem}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        AuditCommand::Export { since } => {
            let since = parse_since(&since)?;
            let reply = daemon.ask(None, call::AuditExport { since })?;
            for entry in reply {
                say!("{}", serde_json::to_string(&entry)?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
