//! `kurir staff`: who of the agency's own staff may use the dispatch desk, and as what. Each
//! grant given or taken is an entry in the audit chain.

use std::process::ExitCode;

use clap::Subcommand;

use crate::cli::out::{say, when};
use crate::cli::Daemon;
use crate::registry::StaffRole;
use crate::service::call;

/// What to do with desk access.
#[derive(Subcommand, Debug)]
pub enum StaffCommand {
    /// Let a person use the dispatch desk, signed in with their SITHS card.
    Grant {
        /// The person's HSA-id (SE + organisation number + '-' + id).
        #[arg(long, value_name = "HSA_ID")]
        hsa_id: String,
        /// The person's name, shown in histories.
        #[arg(long)]
        name: String,
        /// `handläggare` (sends decisions, follows them, phones municipalities) or `drift`
        /// (follows every decision, holds, releases and cancels; sends none).
        #[arg(long, value_enum)]
        role: StaffRole,
        /// The CA that issues the person's card, as its subject; default: the one CA the
        /// portal trusts.
        #[arg(long, value_name = "SUBJECT")]
        issuer: Option<String>,
        /// Who grants it (default: the OS user).
        #[arg(long)]
        operator: Option<String>,
    },
    /// Take a person's desk access away.
    Revoke {
        /// The person's HSA-id.
        #[arg(long, value_name = "HSA_ID")]
        hsa_id: String,
        /// Who takes it (default: the OS user).
        #[arg(long)]
        operator: Option<String>,
    },
    /// Everyone with desk access.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `kurir staff` command through the daemon (or the store when none runs).
pub fn run(daemon: &Daemon<'_>, command: StaffCommand) -> anyhow::Result<ExitCode> {
    match command {
        StaffCommand::Grant {
            hsa_id,
            name,
            role,
            issuer,
            operator,
        } => {
            daemon.ask(
                operator,
                call::StaffGrant {
                    hsa_id: hsa_id.clone(),
                    name,
                    role,
                    issuer,
                },
            )?;
            say!("{hsa_id} may use the dispatch desk as {}", role.as_str());
        }
        StaffCommand::Revoke { hsa_id, operator } => {
            daemon.ask(
                operator,
                call::StaffRevoke {
                    hsa_id: hsa_id.clone(),
                },
            )?;
            say!("{hsa_id} may no longer use the dispatch desk");
        }
        StaffCommand::List { json } => {
            let staff = daemon.ask(None, call::StaffList {})?;
            if json {
                say!("{}", serde_json::to_string_pretty(&staff)?);
            } else {
                say!("{:<24}  {:<12}  {:<28}  GRANTED", "HSA-ID", "ROLE", "NAME");
                for g in &staff {
                    say!(
                        "{:<24}  {:<12}  {:<28}  {} by {}",
                        g.hsa_id,
                        g.role.as_str(),
                        g.name,
                        when(g.granted_at),
                        g.granted_by
                    );
                }
                say!("-- {} person(s)", staff.len());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
