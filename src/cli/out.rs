//! Standard output as a Unix tool writes it: when the reader goes away (`kurir list | head -1`)
//! the command ends quietly instead of panicking the way `println!` does.

use std::io::Write;

/// Writes `text` to standard output. A closed pipe ends the process with status 0, since the
/// reader took what it wanted; any other failure to write ends it with status 1 and a message.
pub fn write(text: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(text).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("kurir: writing to standard output: {e}");
        std::process::exit(1);
    }
}

/// `println!` for command output: see [`write`].
macro_rules! say {
    () => {
        $crate::cli::out::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use say;

/// `print!` for command output: see [`write`].
macro_rules! say_raw {
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!($($arg)*))
    };
}
pub(crate) use say_raw;

/// How command output shows an instant: Swedish local time to the second (the zone of
/// `[working_hours]`), or UTC with `--utc`. Set once, by [`crate::cli::run`].
static TIME_ZONE: std::sync::OnceLock<(jiff::tz::TimeZone, bool)> = std::sync::OnceLock::new();

/// Chooses the zone every [`when`] shows instants in: UTC, or `local` (an IANA name; an unknown
/// name falls back to Europe/Stockholm, the agency's own).
pub fn show_times_in(utc: bool, local: &str) {
    let zone = if utc {
        jiff::tz::TimeZone::UTC
    } else {
        jiff::tz::TimeZone::get(local)
            .or_else(|_| jiff::tz::TimeZone::get("Europe/Stockholm"))
            .unwrap_or(jiff::tz::TimeZone::UTC)
    };
    // A second call keeps the first choice: one command, one zone.
    let _ = TIME_ZONE.set((zone, utc));
}

/// An instant as a person reads it: `2026-11-30 14:05:09` in Swedish local time, or
/// `2026-11-30 13:05:09Z` with `--utc`.
pub fn when(at: jiff::Timestamp) -> When {
    When(at)
}

/// An instant to print; see [`when`].
pub struct When(jiff::Timestamp);

impl std::fmt::Display for When {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (zone, utc) = TIME_ZONE
            .get()
            .cloned()
            .unwrap_or((jiff::tz::TimeZone::UTC, true));
        let local = self.0.to_zoned(zone);
        write!(f, "{}", local.strftime("%Y-%m-%d %H:%M:%S"))?;
        if utc {
            f.write_str("Z")?;
        }
        Ok(())
    }
}

/// An error and its causes, each said once: a cause whose words its context already holds
/// (a typed error that prints its source) is not repeated.
pub fn in_words(error: &anyhow::Error) -> String {
    let mut said = String::new();
    for cause in error.chain() {
        let words = cause.to_string();
        if said.contains(&words) {
            continue;
        }
        if !said.is_empty() {
            said.push_str(": ");
        }
        said.push_str(&words);
    }
    said
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct Missing {
        path: &'static str,
        source: std::io::Error,
    }

    #[test]
    fn a_cause_the_message_already_names_is_said_once() {
        let e = anyhow::Error::new(Missing {
            path: "nope.pdf",
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "does not exist"),
        });
        assert_eq!(in_words(&e), "nope.pdf: does not exist");
        let e = anyhow::anyhow!("refused").context("submitting");
        assert_eq!(in_words(&e), "submitting: refused");
    }
}
