//! The `kurir` command: the daemon and the tools around it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use kurir::cli::{municipality as municipality_cmd, operator as operator_cmd};

use kurir::cli::control::{self, Request};
use kurir::config::{LogFormat, Settings};
use kurir::intake::pdf::PdfLimits;
use kurir::intake::submit::{self, SubmitRequest};
use kurir::job::{CaseNumber, DocumentKind, JobId, Kommunkod};
use kurir::registry::Seed;
use kurir::spool::Spool;
use kurir::store::state::{Event, JobRecord, JobState};

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
struct Cli {
    /// Settings file (TOML); see config/kurir.toml for every setting and its default.
    #[arg(long, global = true, env = "KURIR_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Log format: `human` for a terminal, `json` for journald.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormat>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon: watch the spool, deliver jobs, write receipts (stop with Ctrl-C/SIGTERM).
    Run,
    /// Drop a job into the spool and print its job id (no running daemon needed).
    Submit {
        /// Kommunkod of the assigned municipality (anvisningskommun), e.g. 2480.
        #[arg(long, value_name = "KOMMUNKOD")]
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
        #[arg(long, value_name = "KOMMUNKOD")]
        copy_to: Vec<Kommunkod>,
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
        /// Only jobs in this state.
        #[arg(long, value_enum)]
        state: Option<JobState>,
        /// At most this many jobs.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    #[command(flatten)]
    Operator(operator_cmd::OperatorCommand),
    /// Check the installation: configuration, permissions, certificates, relay, registry,
    /// spool. One line per check (ok / warn / fail); exit 1 if anything fails.
    Doctor,
    /// The audit trail: a hash chain of every state change, registry change and operator action.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Register and check municipalities' secure addresses, contacts and postal addresses.
    Municipality {
        #[command(subcommand)]
        command: municipality_cmd::MunicipalityCommand,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kurir: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(cli.config.as_deref())?;
    let format = cli.log_format.unwrap_or(settings.log.format);
    let is_daemon = matches!(cli.command, Command::Run);
    kurir::ops::logging::init(format, &settings.log.filter, is_daemon);
    let seed = Arc::new(Seed::builtin()?);

    match cli.command {
        Command::Run => {
            limit_malloc_arenas();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(kurir::daemon::run(settings))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Submit {
            to,
            case,
            anvisningsbeslut,
            god_man,
            copy_to,
        } => {
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
            for code in std::iter::once(&to).chain(copy_to.iter()) {
                seed.require(*code)?;
            }
            if copy_to.contains(&to) {
                bail!("--copy-to {to} is the assigned municipality itself");
            }
            let spool = Spool::new(&settings.spool.dir);
            let id = submit::submit(
                &spool,
                SubmitRequest {
                    to,
                    case,
                    copy_to,
                    documents,
                },
                &PdfLimits::from_settings(&settings.spool),
            )?;
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { job_id, json } => {
            let result = ask(&settings, seed.clone(), Request::Status { id: job_id })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                let job: JobRecord = serde_json::from_value(result["job"].clone())?;
                let events: Vec<Event> = serde_json::from_value(result["events"].clone())?;
                print_status(&job, &events, &seed);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::List { state, limit, json } => {
            let result = ask(&settings, seed, Request::List { state, limit })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                let jobs: Vec<JobRecord> = serde_json::from_value(result)?;
                print_list(&jobs);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor => {
            let origin = cli
                .config
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "built-in defaults and environment".into());
            let list = ask(
                &settings,
                seed,
                Request::MunicipalityList { secure_only: false },
            )?;
            let mut registry = Vec::new();
            for row in list.as_array().into_iter().flatten() {
                let code: Kommunkod = serde_json::from_value(row["municipality"]["code"].clone())?;
                let registered: kurir::registry::Registered =
                    serde_json::from_value(row["registered"].clone())?;
                registry.push((code, registered));
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting a runtime")?;
            let findings =
                runtime.block_on(kurir::cli::doctor::examine(&settings, &origin, &registry));
            let mut worst = kurir::cli::doctor::Level::Ok;
            for f in &findings {
                println!("{:<5} {}: {}", f.level.as_str(), f.check, f.detail);
                worst = worst.max(f.level);
            }
            Ok(if worst == kurir::cli::doctor::Level::Fail {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Audit { command } => match command {
            AuditCommand::Verify => {
                let result = ask(&settings, seed, Request::AuditVerify)?;
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
                let result = ask(&settings, seed, Request::AuditExport { since })?;
                for entry in result.as_array().into_iter().flatten() {
                    println!("{}", serde_json::to_string(entry)?);
                }
                Ok(ExitCode::SUCCESS)
            }
        },
        Command::Operator(command) => {
            operator_cmd::run(command, &|request| ask(&settings, seed.clone(), request))
        }
        Command::Municipality { command } => {
            municipality_cmd::run(command, &|request| ask(&settings, seed.clone(), request))
        }
    }
}

fn ask(
    settings: &Settings,
    seed: Arc<Seed>,
    request: Request,
) -> anyhow::Result<serde_json::Value> {
    kurir::fsutil::create_private_dir(&settings.store.dir)
        .with_context(|| format!("creating {}", settings.store.dir.display()))?;
    let response = control::request(settings, seed, request)?;
    if response.ok {
        Ok(response.result)
    } else {
        bail!(
            "{}",
            response.error.unwrap_or_else(|| "request failed".into())
        )
    }
}

/// glibc gives each thread that allocates its own arena; with tokio's and sled's threads that
/// multiplies idle memory. Two arenas keep the daemon's RSS bounded at no measurable cost.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn print_status(job: &JobRecord, events: &[Event], seed: &Seed) {
    let name = |code: Kommunkod| seed.get(code).map(|m| m.name.clone()).unwrap_or_default();
    println!("job        {}", job.id);
    println!("state      {}", job.state);
    println!("channel    {}", job.channel_summary());
    if let Some(to) = job.to {
        println!("to         {to} {}", name(to));
    }
    for r in job.recipients.iter().skip(1) {
        println!("copy to    {} {}", r.kommunkod, name(r.kommunkod));
    }
    for d in &job.documents {
        println!(
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
            println!(
                "letter     {} → batch {} file {}{flag}",
                r.kommunkod, l.batch, l.file
            );
        }
    }
    if let Some(q) = &job.quarantine {
        println!(
            "quarantine spool/quarantine/{} ({}: {})",
            q.dir, q.code, q.summary
        );
    }
    if let Some(next) = job.next_attempt {
        println!("next       {next}");
    }
    println!("history");
    for e in events {
        println!("  {}  {:<13} {}", e.at, e.state.as_str(), e.detail);
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
    println!(
        "{:<28}  {:>8}  {:<13}  {:<9}  {:<7}  FLAGS",
        "JOB ID", "AGE", "STATE", "TO", "CHANNEL"
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
        println!(
            "{:<28}  {:>8}  {:<13}  {:<9}  {:<7}  {}",
            job.id,
            age,
            job.state.as_str(),
            to,
            job.channel_summary(),
            flags.join(",")
        );
    }
    println!("-- {} job(s)", jobs.len());
}
