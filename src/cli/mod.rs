//! The command line: clap's definition of every command ([`Cli`]), and one file per command
//! family that carries it out — `jobs` (submit, status, list), `operator`, `municipality`,
//! `audit`, `doctor` — plus the control socket through which commands reach the running daemon
//! (or open the store when none runs). `kurir run` itself is the daemon (`crate::daemon`),
//! started by `main.rs`.
// The doc comments of the command line's arguments are its `--help` text, where `[portal]
// listen` names a settings section, not an item to link.
#![allow(rustdoc::broken_intra_doc_links)]

pub mod as_owner;
pub mod audit;
pub mod backup;
pub mod control;
pub mod docs;
pub mod doctor;
pub mod inbound;
pub mod jobs;
pub mod municipality;
pub mod operator;
pub mod out;
pub mod print;
pub mod staff;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use clap::ValueEnum as _;
use clap::{Parser, Subcommand};

use crate::config::{LogFormat, Settings};
use crate::job::{CaseNumber, JobId, Kommunkod};
use crate::registry::Seed;
use crate::service::{Call, Command as Request, Principal};
use crate::store::state::JobState;

/// kurir delivers Migrationsverket's assignment decisions (anvisningsbeslut) and notices of the
/// need for a legal guardian (anmälan om behov av god man) to municipalities: by protected
/// e-mail where a municipality has a verified secure connection, otherwise as letters in a
/// postal print queue.
///
/// Start the daemon with `kurir run`, drop a job with `kurir submit`, and follow it with
/// `kurir status` and `kurir list`. Everything works on built-in defaults: the spool in
/// ./spool and the job store in ./state.
#[derive(Parser, Debug)]
#[command(name = "kurir", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// Settings file (TOML; kurir.toml(5) lists every setting). Without it, and without
    /// KURIR_CONFIG, /etc/kurir/kurir.toml when it exists, else the built-in defaults; `none`:
    /// the built-in defaults. Relative paths in the file are taken from its folder.
    #[arg(long, global = true, env = "KURIR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log format: `human` for a terminal, `json` for journald.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Show times in UTC (default: Swedish local time, the zone of [working_hours]).
    #[arg(long, global = true)]
    pub utc: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// kurir's commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon: watch the spool, deliver jobs, write receipts (stop with Ctrl-C/SIGTERM).
    Run,
    /// (kurir's own) Do the task on standard input as the owner of the spool and store: what
    /// root's command line starts instead of working in the daemon's folders as root.
    #[command(hide = true, name = "as-owner")]
    AsOwner,
    /// Drop a job into the spool and print its job id (no running daemon needed).
    Submit {
        /// Kommunkod of the assigned municipality (anvisningskommun), e.g. 2480.
        #[arg(long, value_name = "KOMMUNKOD", value_parser = crate::cli::known_kommunkod)]
        to: Kommunkod,
        /// Case number (dossiernummer) `xx-xxxxxx`; written into job.toml only, never logged.
        #[arg(long, value_name = "CASE")]
        case: CaseNumber,
        /// The assignment decision (PDF).
        #[arg(long, value_name = "PDF")]
        anvisningsbeslut: Option<PathBuf>,
        /// The notice that the child needs a legal guardian (PDF).
        #[arg(long, value_name = "PDF")]
        god_man: Option<PathBuf>,
        /// Kommunkod of a municipality that gets a copy for information (repeatable).
        #[arg(long, value_name = "KOMMUNKOD", value_parser = crate::cli::known_kommunkod)]
        copy_to: Vec<Kommunkod>,
        /// The case system's own identifier of this submission: one kurir has had before is
        /// not sent again; its first job's id is printed instead (safe to resubmit after a
        /// restore).
        #[arg(long, value_name = "KEY")]
        submission_key: Option<String>,
    },
    /// Show one job's state and full history.
    Status {
        /// The job id printed by `kurir submit`.
        job_id: JobId,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List jobs, newest first (like mailq).
    List {
        /// Only jobs in these states (repeat, or separate with commas); `unfinished`: every
        /// state kurir still works on.
        #[arg(long, value_enum, value_delimiter = ',')]
        state: Vec<StateFilter>,
        /// At most this many jobs.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The operator's commands on jobs and quarantine (retry, hold, …), flattened into this list.
    #[command(flatten)]
    Operator(operator::OperatorCommand),
    /// Check the installation: configuration, permissions, certificates, relay, registry,
    /// spool. One line per check (ok / warn / fail); exit 1 if anything fails.
    Doctor,
    /// The audit trail: a hash chain of every state change, registry change and operator action.
    Audit {
        /// What to do with the chain.
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Take one delivery report or read notification from standard input into the spool (for
    /// the MTA's pipe; no running daemon needed). Exit 75 asks the MTA to try again later;
    /// 67: no such recipient (an address without a token kurir gave out: nothing is stored).
    Inbound {
        /// The envelope recipient (Postfix: `${recipient}`); without it, the message's
        /// Delivered-To: or X-Original-To: header.
        #[arg(long, value_name = "ADDRESS")]
        recipient: Option<String>,
    },
    /// Who of the agency's staff may use the dispatch desk (in the portal), and as what.
    Staff {
        /// What to do with desk access.
        #[command(subcommand)]
        command: staff::StaffCommand,
    },
    /// Write a backup of the store, the keys and the unfinished jobs' documents into a new
    /// folder while jobs keep flowing (the running daemon takes it; stopped, this command
    /// does); `--verify` checks one.
    Backup {
        /// The new folder (or, with --verify, the backup to check).
        dest: PathBuf,
        /// Check the backup in DEST (its seal, its manifest and every file's SHA-256); no
        /// daemon needed.
        #[arg(long)]
        verify: bool,
        /// With --verify: the integrity key of the store the backup was taken from (default:
        /// this machine's, `integrity.key` in the state folder).
        #[arg(long, value_name = "FILE", requires = "verify")]
        key: Option<PathBuf>,
    },
    /// Make the store from a backup, on a fresh machine (no daemon may run). Jobs that were
    /// being sent at the backup's moment are tried again at start.
    Restore {
        /// The backup folder.
        src: PathBuf,
        /// Replace a stopped store that is there (it is moved aside, not deleted).
        #[arg(long)]
        force: bool,
        /// The integrity key of the store the backup was taken from, kept apart from the
        /// backups (default: this machine's, when it has one). It is put beside the restored
        /// store.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// The print shop's side: batches waiting to be printed and posted, and their confirmation.
    Print {
        /// What to do with print batches.
        #[command(subcommand)]
        command: print::PrintCommand,
    },
    /// Register and check municipalities' secure addresses, contacts and postal addresses.
    Municipality {
        /// What to register or check.
        #[command(subcommand)]
        command: municipality::MunicipalityCommand,
    },
}

/// A state to list, or `unfinished`: the states kurir still works on by itself (the jobs
/// `mailq` would show).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    /// Jobs in this state.
    Is(JobState),
    /// Jobs in any state that is not final.
    Unfinished,
}

impl StateFilter {
    /// The states `filters` name together.
    pub fn states(filters: &[StateFilter]) -> Vec<JobState> {
        let mut out: Vec<JobState> = Vec::new();
        for filter in filters {
            let named: Vec<JobState> = match filter {
                StateFilter::Is(state) => vec![*state],
                StateFilter::Unfinished => JobState::value_variants()
                    .iter()
                    .copied()
                    .filter(|s| !s.is_final())
                    .collect(),
            };
            for state in named {
                if !out.contains(&state) {
                    out.push(state);
                }
            }
        }
        out
    }
}

impl clap::ValueEnum for StateFilter {
    fn value_variants<'a>() -> &'a [Self] {
        static ALL: std::sync::OnceLock<Vec<StateFilter>> = std::sync::OnceLock::new();
        ALL.get_or_init(|| {
            JobState::value_variants()
                .iter()
                .map(|s| StateFilter::Is(*s))
                .chain([StateFilter::Unfinished])
                .collect()
        })
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        match self {
            StateFilter::Is(state) => state.to_possible_value(),
            StateFilter::Unfinished => Some(
                clap::builder::PossibleValue::new("unfinished")
                    .help("Every state that is not final: received, queued, sending, deferred, fallen-back, held"),
            ),
        }
    }
}

/// Parses a kommunkod argument and checks that it names one of the 290 municipalities, so a
/// mistyped code is refused by the command line before anything is asked of the daemon.
pub fn known_kommunkod(text: &str) -> Result<Kommunkod, String> {
    static SEED: std::sync::OnceLock<Option<Seed>> = std::sync::OnceLock::new();
    let code: Kommunkod = text
        .parse()
        .map_err(|e: crate::job::ParseError| e.to_string())?;
    match SEED.get_or_init(|| Seed::builtin().ok()) {
        Some(seed) => seed.require(code).map(|_| code).map_err(|e| e.to_string()),
        None => Ok(code),
    }
}

/// Carries out every command but `run` (the daemon, which `main.rs` starts).
pub fn run(cli: Cli, settings: Settings) -> anyhow::Result<ExitCode> {
    out::show_times_in(cli.utc, &settings.working_hours.time_zone);
    let seed = Arc::new(Seed::builtin()?);
    let daemon = Daemon {
        settings: &settings,
        seed: seed.clone(),
    };
    match cli.command {
        Command::Run => {
            bail!("`kurir run` is started by the binary, not by the command line's dispatcher")
        }
        Command::AsOwner => as_owner::serve(&settings, seed),
        Command::Submit {
            to,
            case,
            anvisningsbeslut,
            god_man,
            copy_to,
            submission_key,
        } => jobs::submit_job(
            &daemon,
            jobs::SubmitArgs {
                to,
                case,
                anvisningsbeslut,
                god_man,
                copy_to,
                submission_key,
            },
        ),
        Command::Status { job_id, json } => jobs::status(&daemon, job_id, json),
        Command::List { state, limit, json } => {
            jobs::list(&daemon, StateFilter::states(&state), limit, json)
        }
        Command::Doctor => {
            let origin = settings
                .file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "built-in defaults and environment (no settings file)".into());
            doctor::run(&settings, &origin, &daemon)
        }
        Command::Audit { command } => audit::run(&daemon, command),
        Command::Print { command } => print::run(&daemon, command),
        Command::Backup { dest, verify, key } => backup::backup(&daemon, dest, verify, key),
        Command::Restore { src, force, key } => backup::restore(&daemon, src, force, key),
        Command::Staff { command } => staff::run(&daemon, command),
        Command::Inbound { recipient } => Ok(inbound::run(&settings, recipient.as_deref())),
        Command::Operator(command) => operator::run(command, &daemon),
        Command::Municipality { command } => municipality::run(command, &daemon),
    }
}

/// Where the command line's requests go: the running daemon, or the store when none runs.
pub struct Daemon<'a> {
    settings: &'a Settings,
    seed: Arc<Seed>,
}

impl Daemon<'_> {
    /// The 290 municipalities.
    pub fn seed(&self) -> &Seed {
        &self.seed
    }

    /// Sends `call` as the operator `operator` (default: the OS user) and returns the call's
    /// reply, or the service's refusal — worded in English — as this command's error.
    pub fn ask<C: Call + Into<Request>>(
        &self,
        operator: Option<String>,
        call: C,
    ) -> anyhow::Result<C::Reply> {
        if let (Some(by), Some(_)) = (delegated_by(), &operator) {
            bail!("run through sudo for {by}, kurir records {by} and takes no --operator");
        }
        let principal = Principal::Operator(operator.unwrap_or_else(os_user));
        match control::request(self.settings, self.seed.clone(), principal, call)? {
            Ok(reply) => Ok(reply),
            Err(refused) => bail!("{refused}"),
        }
    }

    /// The settings this command runs with.
    pub fn settings(&self) -> &Settings {
        self.settings
    }
}

/// The person who ran kurir through sudo as another unprivileged user — the print shop's
/// `sudo -u kurir kurir print confirm BATCH` — if that is how it runs. Such a caller gets a
/// narrow door: the system's own settings and its own name, nothing it could choose to read
/// another file through or to record someone else's name.
pub fn delegated_by() -> Option<String> {
    let euid = crate::fsutil::own_euid();
    delegated(std::env::var("SUDO_UID").ok().as_deref(), euid)
        .then(|| std::env::var("SUDO_USER").unwrap_or_else(|_| "someone through sudo".into()))
}

/// Whether sudo ran kurir for an unprivileged user (`sudo_uid` not root) as an unprivileged
/// user (`euid` not root): root stays root, with every option.
fn delegated(sudo_uid: Option<&str>, euid: u32) -> bool {
    euid != 0 && sudo_uid.is_some_and(|uid| uid.trim() != "0")
}

/// Refuses what a delegated caller ([`delegated_by`]) may not choose: a settings file other
/// than the system's.
pub fn refuse_delegated_config(config: Option<&std::path::Path>) -> anyhow::Result<()> {
    if let (Some(by), Some(file)) = (delegated_by(), config) {
        if file != std::path::Path::new(crate::config::SYSTEM_FILE) {
            bail!(
                "run through sudo for {by}, kurir reads only {} (--config and KURIR_CONFIG are \
                 refused)",
                crate::config::SYSTEM_FILE
            );
        }
    }
    Ok(())
}

/// The person at the keyboard: the sudo caller, else the OS account.
pub fn os_user() -> String {
    if let Ok(user) = std::env::var("SUDO_USER") {
        return user;
    }
    crate::fsutil::own_user_name()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sudo_for_an_unprivileged_user_as_an_unprivileged_user_is_a_delegation() {
        assert!(delegated(Some("1001"), 999), "the print shop as kurir");
        assert!(!delegated(Some("1001"), 0), "sudo kurir: root");
        assert!(!delegated(Some("0"), 999), "root's sudo -u kurir");
        assert!(!delegated(None, 999), "kurir itself");
    }
}
