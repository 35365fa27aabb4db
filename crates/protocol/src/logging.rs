//! Log output with tracing-subscriber: readable lines on a terminal, JSON for journald.
//!
//! Log lines carry job ids, never case numbers, names or birth dates: kurir never has those in
//! a variable that reaches a log macro (the case number is redacted even in `Debug`).

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `RUST_LOG` overrides `filter`. The daemon logs to stdout;
/// other commands log to stderr so their output stays clean.
pub fn init(format: LogFormat, filter: &str, to_stdout: bool) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let terminal = if to_stdout {
        std::io::stdout().is_terminal()
    } else {
        std::io::stderr().is_terminal()
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal);
    let result = match (format, to_stdout) {
        (LogFormat::Json, true) => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_writer(std::io::stdout)
            .try_init(),
        (LogFormat::Json, false) => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_writer(std::io::stderr)
            .try_init(),
        (LogFormat::Human, true) => builder.with_writer(std::io::stdout).try_init(),
        (LogFormat::Human, false) => builder.with_writer(std::io::stderr).try_init(),
    };
    // A second init (only possible in tests) keeps the first subscriber.
    let _ = result;
}
