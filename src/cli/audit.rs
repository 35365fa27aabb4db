//! `kurir audit`: check the audit chain and export it for a regulator.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;

use crate::cli::ask;
use crate::cli::control::Request;
use crate::config::Settings;
use crate::registry::Seed;

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
pub fn run(
    settings: &Settings,
    seed: Arc<Seed>,
    command: AuditCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify => {
            let result = ask(settings, seed, Request::AuditVerify)?;
            if result["ok"] == serde_json::Value::Bool(true) {
                println!("ok, {} entries", result["entries"]);
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "BROKEN at entry {}: {}",
                    result["seq"],
                    result["problem"].as_str().unwrap_or("")
                );
                Ok(ExitCode::FAILURE)
            }
        }
        AuditCommand::Export { since } => {
            let since = parse_since(&since)?;
            let result = ask(settings, seed, Request::AuditExport { since })?;
            for entry in result.as_array().into_iter().flatten() {
                println!("{}", serde_json::to_string(entry)?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
