//! Operator commands: `kurir retry|hold|release|cancel|reroute|queue`.

use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::cli::control::Request;
use crate::job::{JobId, Kommunkod};
use crate::queue::operator::{Actor, Target, AGE_BUCKETS};

/// One job, or every unfinished job of a municipality.
#[derive(Args, Debug)]
pub struct TargetArgs {
    /// The job id.
    #[arg(required_unless_present = "to", conflicts_with = "to")]
    job_id: Option<JobId>,
    /// Every unfinished job whose assigned municipality has this kommunkod.
    #[arg(long, value_name = "KOMMUNKOD")]
    to: Option<Kommunkod>,
}

impl TargetArgs {
    fn target(&self) -> anyhow::Result<Target> {
        match (&self.job_id, self.to) {
            (Some(id), None) => Ok(Target::Job(id.clone())),
            (None, Some(code)) => Ok(Target::Municipality(code)),
            _ => bail!("give a job id or --to KOMMUNKOD"),
        }
    }
}

/// Who acts and why; recorded in every affected job's history.
#[derive(Args, Debug)]
pub struct ActorArgs {
    /// Why (recorded in the job's history).
    #[arg(long, default_value = "")]
    reason: String,
    /// Who (default: the OS user).
    #[arg(long)]
    operator: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl ActorArgs {
    fn actor(&self) -> Actor {
        Actor {
            operator: self.operator.clone().unwrap_or_else(crate::cli::os_user),
            reason: self.reason.clone(),
        }
    }
}

/// What an operator does to jobs in the queue and in quarantine.
#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// Try a waiting job (or all of a municipality's) now, and forget the relay's back-off.
    Retry {
        /// Which job, or which municipality's jobs.
        #[command(flatten)]
        target: TargetArgs,
        /// Who acts, and why (recorded in the history and the audit chain).
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// Hold a job (or a municipality: its waiting jobs and any that arrive) until released.
    Hold {
        /// Which job, or which municipality's jobs.
        #[command(flatten)]
        target: TargetArgs,
        /// Who acts, and why (recorded in the history and the audit chain).
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// Release held jobs (or a municipality's hold); they are tried at once.
    Release {
        /// Which job, or which municipality's jobs.
        #[command(flatten)]
        target: TargetArgs,
        /// Who acts, and why (recorded in the history and the audit chain).
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// Stop a job for good (state cancelled; its receipt says so). Needs --reason.
    Cancel {
        /// The job id.
        job_id: JobId,
        /// Who acts, and why (recorded in the history and the audit chain).
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// Send letters instead of e-mail, now, to every recipient still waiting. Needs --reason.
    Reroute {
        /// The job id.
        job_id: JobId,
        /// Reroute to the postal print queue (the only reroute there is).
        #[arg(long, required = true)]
        to_post: bool,
        /// Who acts, and why (recorded in the history and the audit chain).
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// The queue's shape (like qshape): unfinished jobs by age, municipality and state.
    Queue {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Quarantined jobs: kept until an operator releases (after correcting) or deletes them.
    Quarantine {
        /// What to do with them.
        #[command(subcommand)]
        command: QuarantineCommand,
    },
}

/// What an operator does with quarantined jobs.
#[derive(Subcommand, Debug)]
pub enum QuarantineCommand {
    /// Quarantined jobs still in spool/quarantine/.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Why a job was quarantined and what its folder holds.
    Show {
        /// The job id.
        job_id: JobId,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Put a corrected job back into spool/incoming/ (it becomes a new job). Needs --reason.
    Release {
        /// The job id.
        job_id: JobId,
        /// Who acts, and why (recorded in the history and the audit chain).
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// Delete a quarantined job's folder for good. Needs --reason.
    Delete {
        /// The job id.
        job_id: JobId,
        /// Who acts, and why (recorded in the history and the audit chain).
        #[command(flatten)]
        actor: ActorArgs,
    },
}

/// Runs an operator command; `ask` reaches the daemon or the store.
pub fn run(
    command: OperatorCommand,
    ask: &dyn Fn(Request) -> anyhow::Result<Value>,
) -> anyhow::Result<ExitCode> {
    let (result, json) = match command {
        OperatorCommand::Retry { target, actor } => (
            ask(Request::Retry {
                target: target.target()?,
                actor: actor.actor(),
            })?,
            actor.json,
        ),
        OperatorCommand::Hold { target, actor } => (
            ask(Request::Hold {
                target: target.target()?,
                actor: actor.actor(),
            })?,
            actor.json,
        ),
        OperatorCommand::Release { target, actor } => (
            ask(Request::Release {
                target: target.target()?,
                actor: actor.actor(),
            })?,
            actor.json,
        ),
        OperatorCommand::Cancel { job_id, actor } => (
            ask(Request::Cancel {
                id: job_id,
                actor: actor.actor(),
            })?,
            actor.json,
        ),
        OperatorCommand::Reroute {
            job_id,
            to_post: _,
            actor,
        } => (
            ask(Request::Reroute {
                id: job_id,
                actor: actor.actor(),
            })?,
            actor.json,
        ),
        OperatorCommand::Quarantine { command } => match command {
            QuarantineCommand::List { json } => {
                let result = ask(Request::QuarantineList)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&result)?);
                } else {
                    println!(
                        "{:<28}  {:<26}  {:<22}  FOLDER",
                        "JOB ID", "RECEIVED", "REASON"
                    );
                    for q in result.as_array().into_iter().flatten() {
                        println!(
                            "{:<28}  {:<26}  {:<22}  spool/quarantine/{}",
                            q["job_id"].as_str().unwrap_or(""),
                            q["received_at"].as_str().unwrap_or(""),
                            q["code"].as_str().unwrap_or(""),
                            q["dir"].as_str().unwrap_or("")
                        );
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
            QuarantineCommand::Show { job_id, json } => {
                let result = ask(Request::QuarantineShow { id: job_id })?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&result)?);
                } else {
                    println!("folder  {}", result["folder"].as_str().unwrap_or(""));
                    for f in result["files"].as_array().into_iter().flatten() {
                        println!(
                            "  {:<10} {:>10}  {}",
                            f["kind"].as_str().unwrap_or(""),
                            f["bytes"],
                            f["name"].as_str().unwrap_or("")
                        );
                    }
                    println!("\n{}", result["reason"].as_str().unwrap_or(""));
                }
                return Ok(ExitCode::SUCCESS);
            }
            QuarantineCommand::Release { job_id, actor } => (
                ask(Request::QuarantineRelease {
                    id: job_id,
                    actor: actor.actor(),
                })?,
                actor.json,
            ),
            QuarantineCommand::Delete { job_id, actor } => (
                ask(Request::QuarantineDelete {
                    id: job_id,
                    actor: actor.actor(),
                })?,
                actor.json,
            ),
        },
        OperatorCommand::Queue { json } => {
            let result = ask(Request::Queue)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                print_shape(&result);
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        let jobs: Vec<String> = result["jobs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|j| j.as_str().map(str::to_string))
            .collect();
        let action = result["action"].as_str().unwrap_or("");
        println!(
            "{action}: {} job(s){}",
            jobs.len(),
            if jobs.is_empty() {
                String::new()
            } else {
                format!(": {}", jobs.join(" "))
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn counts(v: &Value) -> Vec<u64> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|c| c.as_u64().unwrap_or(0))
        .collect()
}

fn print_shape(shape: &Value) {
    let header: Vec<String> = AGE_BUCKETS.iter().map(|(n, _)| format!("{n:>6}")).collect();
    println!("{:<30} {:>6} {}", "", "T", header.join(""));
    let row = |label: &str, c: &[u64]| {
        let total: u64 = c.iter().sum();
        let cells: Vec<String> = c.iter().map(|n| format!("{n:>6}")).collect();
        println!("{label:<30} {total:>6} {}", cells.join(""));
    };
    row("TOTAL", &counts(&shape["total"]));
    for m in shape["by_municipality"].as_array().into_iter().flatten() {
        let label = format!(
            "{} {}",
            m["kommunkod"].as_str().unwrap_or(""),
            m["name"].as_str().unwrap_or("")
        );
        row(&label, &counts(&m["counts"]));
    }
    println!();
    for s in shape["by_state"].as_array().into_iter().flatten() {
        row(
            &format!("state {}", s["state"].as_str().unwrap_or("")),
            &counts(&s["counts"]),
        );
    }
    let next = shape["next_attempts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !next.is_empty() {
        println!("\nnext attempts:");
        for n in next {
            println!(
                "  {}  {}  {:<10} kommun {}  attempts {}",
                n["next_attempt"].as_str().unwrap_or(""),
                n["job_id"].as_str().unwrap_or(""),
                n["state"].as_str().unwrap_or(""),
                n["kommunkod"].as_str().unwrap_or("-"),
                n["attempts"]
            );
        }
    }
    for h in shape["held_municipalities"]
        .as_array()
        .into_iter()
        .flatten()
    {
        println!(
            "held: kommun {} by {} since {}: {}",
            h["kommunkod"].as_str().unwrap_or(""),
            h["operator"].as_str().unwrap_or(""),
            h["at"].as_str().unwrap_or(""),
            h["reason"].as_str().unwrap_or("")
        );
    }
    if let Some(retry_at) = shape["relay"]["retry_at"].as_str() {
        println!(
            "relay: {} failure(s) in a row; next try at {retry_at}; last error: {}",
            shape["relay"]["failures"],
            shape["relay"]["last_error"].as_str().unwrap_or("")
        );
    }
}
