//! Operator commands: `kurir retry|hold|release|cancel|reroute|queue`.

use crate::cli::out::{say, when};
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};

use crate::cli::Daemon;
use crate::job::{JobId, Kommunkod};
use crate::queue::operator::{ActionDone, Target};
use crate::queue::shape::{QueueShape, AGE_BUCKETS};
use crate::service::call;

/// One job, or every unfinished job of a municipality.
#[derive(Args, Debug)]
pub struct TargetArgs {
    /// The job id.
    #[arg(required_unless_present = "to", conflicts_with = "to")]
    job_id: Option<JobId>,
    /// Every unfinished job whose assigned municipality has this kommunkod.
    #[arg(long, value_name = "KOMMUNKOD", value_parser = crate::cli::known_kommunkod)]
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
    /// Asks the daemon to do an action as this operator, for this reason.
    fn act<C: crate::service::Call<Reply = ActionDone> + Into<crate::service::Command>>(
        &self,
        daemon: &Daemon<'_>,
        command: impl FnOnce(String) -> C,
    ) -> anyhow::Result<(ActionDone, bool)> {
        let reply = daemon.ask(self.operator.clone(), command(self.reason.clone()))?;
        Ok((reply, self.json))
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
    /// Try every waiting job now and forget the relay's back-off (like `postqueue -f`): after
    /// the relay or a municipality's server is back.
    Flush {
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
    /// Open alerts: what dispatch (phone the municipality) and operations still have to act
    /// on. An alert closes when its cause passes or a person acknowledges it.
    Alerts {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Record that a job's open alerts were dealt with (the municipality was phoned, the
    /// documents went another way); they close. Needs --reason: what was done.
    Acknowledge {
        /// The job id.
        job_id: JobId,
        /// Who acts, and what was done (recorded in the history and the audit chain).
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

/// Runs an operator command through the daemon (or the store when none runs).
pub fn run(command: OperatorCommand, daemon: &Daemon<'_>) -> anyhow::Result<ExitCode> {
    let (done, json) = match command {
        OperatorCommand::Retry { target, actor } => {
            let target = target.target()?;
            actor.act(daemon, |reason| call::Retry { target, reason })?
        }
        OperatorCommand::Flush { actor } => actor.act(daemon, |reason| call::Retry {
            target: Target::Everything,
            reason,
        })?,
        OperatorCommand::Hold { target, actor } => {
            let target = target.target()?;
            actor.act(daemon, |reason| call::Hold { target, reason })?
        }
        OperatorCommand::Release { target, actor } => {
            let target = target.target()?;
            actor.act(daemon, |reason| call::Release { target, reason })?
        }
        OperatorCommand::Cancel { job_id, actor } => {
            actor.act(daemon, |reason| call::Cancel { id: job_id, reason })?
        }
        OperatorCommand::Reroute {
            job_id,
            to_post: _,
            actor,
        } => actor.act(daemon, |reason| call::Reroute { id: job_id, reason })?,
        OperatorCommand::Quarantine { command } => match command {
            QuarantineCommand::List { json } => {
                let list = daemon.ask(None, call::QuarantineList {})?;
                if json {
                    say!("{}", serde_json::to_string_pretty(&list)?);
                } else {
                    say!(
                        "{:<28}  {:<26}  {:<22}  FOLDER",
                        "JOB ID",
                        "RECEIVED",
                        "REASON"
                    );
                    for q in list {
                        say!(
                            "{:<28}  {:<26}  {:<22}  spool/quarantine/{}",
                            q.job_id.as_str(),
                            when(q.received_at).to_string(),
                            q.code,
                            q.dir
                        );
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
            QuarantineCommand::Show { job_id, json } => {
                let reply = daemon.ask(None, call::QuarantineShow { id: job_id })?;
                let folder = reply;
                if json {
                    say!("{}", serde_json::to_string_pretty(&folder)?);
                } else {
                    say!("folder  {}", folder.folder.display());
                    for f in &folder.files {
                        let kind = serde_json::to_value(f.kind)?;
                        say!(
                            "  {:<10} {:>10}  {}",
                            kind.as_str().unwrap_or(""),
                            f.bytes
                                .map(|b| b.to_string())
                                .unwrap_or_else(|| "null".into()),
                            f.name
                        );
                    }
                    say!("\n{}", folder.reason);
                }
                return Ok(ExitCode::SUCCESS);
            }
            QuarantineCommand::Release { job_id, actor } => actor.act(daemon, |reason| {
                call::QuarantineRelease { id: job_id, reason }
            })?,
            QuarantineCommand::Delete { job_id, actor } => actor.act(daemon, |reason| {
                call::QuarantineDelete { id: job_id, reason }
            })?,
        },
        OperatorCommand::Acknowledge { job_id, actor } => {
            actor.act(daemon, |reason| call::Acknowledge {
                id: job_id,
                reason,
                alert: None,
            })?
        }
        OperatorCommand::Alerts { json } => {
            let open = daemon.ask(None, call::OpenAlerts {})?;
            if json {
                say!("{}", serde_json::to_string_pretty(&open)?);
            } else {
                say!(
                    "{:<28}  {:<20}  {:<8}  {:<28}  PHONE",
                    "JOB ID",
                    "ALERT",
                    "TEAM",
                    "MUNICIPALITY"
                );
                for a in &open {
                    let municipality = match (a.kommunkod, &a.municipality) {
                        (Some(code), Some(name)) => format!("{code} {name}"),
                        (Some(code), None) => code.to_string(),
                        _ => "-".into(),
                    };
                    say!(
                        "{:<28}  {:<20}  {:<8}  {:<28}  {}",
                        a.job_id.as_str(),
                        a.kind.as_str(),
                        a.team.as_str(),
                        municipality,
                        a.phone.as_deref().unwrap_or("-")
                    );
                }
                say!("-- {} open alert(s)", open.len());
            }
            return Ok(ExitCode::SUCCESS);
        }
        OperatorCommand::Queue { json } => {
            let shape = daemon.ask(None, call::Queue {})?;
            if json {
                say!("{}", serde_json::to_string_pretty(&shape)?);
            } else {
                print_shape(&shape);
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    if json {
        say!("{}", serde_json::to_string_pretty(&done)?);
    } else {
        let jobs: Vec<&str> = done.jobs.iter().map(|j| j.as_str()).collect();
        let action = serde_json::to_value(done.action)?;
        say!(
            "{}: {} job(s){}",
            action.as_str().unwrap_or(""),
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

fn print_shape(shape: &QueueShape) {
    let header: Vec<String> = AGE_BUCKETS.iter().map(|(n, _)| format!("{n:>6}")).collect();
    say!("{:<30} {:>6} {}", "", "T", header.join(""));
    let row = |label: &str, c: &[usize]| {
        let total: usize = c.iter().sum();
        let cells: Vec<String> = c.iter().map(|n| format!("{n:>6}")).collect();
        say!("{label:<30} {total:>6} {}", cells.join(""));
    };
    row("TOTAL", &shape.total);
    for m in &shape.by_municipality {
        let label = format!("{} {}", m.kommunkod, m.name.as_deref().unwrap_or(""));
        row(&label, &m.counts);
    }
    say!();
    for s in &shape.by_state {
        row(&format!("state {}", s.state), &s.counts);
    }
    if !shape.next_attempts.is_empty() {
        say!("\nnext attempts:");
        for n in &shape.next_attempts {
            say!(
                "  {}  {}  {:<10} kommun {}  attempts {}",
                n.next_attempt
                    .map(|t| when(t).to_string())
                    .unwrap_or_default(),
                n.job_id,
                n.state,
                n.kommunkod
                    .map(|k| k.to_string())
                    .unwrap_or_else(|| "-".into()),
                n.attempts
            );
        }
    }
    for h in &shape.held_municipalities {
        say!(
            "held: kommun {} by {} since {}: {}",
            h.kommunkod,
            h.operator,
            when(h.at),
            h.reason
        );
    }
    if let Some(retry_at) = shape.relay.retry_at {
        say!(
            "relay: {} failure(s) in a row; next try at {}; last error: {}",
            shape.relay.failures,
            when(retry_at),
            shape.relay.last_error.as_deref().unwrap_or("")
        );
    }
}
