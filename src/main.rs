//! The `kurir` command: parses the command line, sets up logging, and runs the daemon
//! (`kurir run`), or hands the command to [`kurir::cli`]. The web doors are programs of their
//! own: `kurir-portal` and `kurir-desk` (crates/web).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use kurir::cli::{Cli, Command};
use kurir::config::Settings;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match start(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kurir: {}", kurir::cli::out::in_words(&e));
            ExitCode::FAILURE
        }
    }
}

fn start(cli: Cli) -> anyhow::Result<ExitCode> {
    kurir::cli::refuse_delegated_config(cli.config.as_deref())?;
    let file = kurir::config::locate(cli.config.as_deref());
    let settings = Settings::load(file.as_deref())?;
    let format = cli.log_format.unwrap_or(settings.log.format);
    let serves = matches!(cli.command, Command::Run);
    kurir::ops::logging::init(format, &settings.log.filter, serves);
    if !serves {
        return kurir::cli::run(cli, settings);
    }
    limit_malloc_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(kurir::daemon::run(settings))?;
    Ok(ExitCode::SUCCESS)
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
