//! `kurir inbound`: the MTA's pipe into kurir, the way Request Tracker's `rt-mailgate` or
//! Sympa's bounce queue take mail from Postfix's `pipe(8)`. One message from standard input
//! goes into `spool/inbound/new/`; the daemon does the rest. Exit status follows sysexits:
//! 0 stored, 65 refused for good (too large), 67 no such recipient (an address without a
//! token kurir gave out: nothing is stored), 75 try again later (it could not be stored).
//! Run by root, the spool's owner stores it, as for every other command.

use std::io::Read;
use std::process::ExitCode;

use crate::config::Settings;
use crate::inbound::{store_message, StoreMessageError, EX_DATAERR, EX_NOUSER, EX_TEMPFAIL};
use crate::report_token::TokenKey;
use crate::spool::Spool;

/// Stores one message from standard input; the exit status tells the MTA what became of it.
/// Run by root, the spool's owner stores it ([`crate::cli::as_owner`]).
pub fn run(settings: &Settings, recipient: Option<&str>) -> ExitCode {
    let owner = match crate::fsutil::Owner::of_daemon(&settings.store.dir, &settings.spool.dir) {
        Ok(owner) => owner,
        Err(e) => {
            eprintln!("kurir inbound: reading the spool's owner: {e}");
            return ExitCode::from(EX_TEMPFAIL);
        }
    };
    let Some(owner) = owner else {
        return store(settings, recipient, std::io::stdin().lock());
    };
    let mut message = Vec::new();
    let max = settings.proof.max_inbound_bytes;
    if let Err(e) = std::io::stdin()
        .lock()
        .take(max + 1)
        .read_to_end(&mut message)
    {
        eprintln!("kurir inbound: reading the message: {e}");
        return ExitCode::from(EX_TEMPFAIL);
    }
    let task = crate::cli::as_owner::Task::Inbound {
        recipient: recipient.map(str::to_string),
        message,
    };
    match crate::cli::as_owner::run(owner, settings, &task, false) {
        Ok((code, _)) => code,
        Err(e) => {
            eprintln!("kurir inbound: {e:#}");
            ExitCode::from(EX_TEMPFAIL)
        }
    }
}

/// Stores the message `input` holds, as this process's user.
pub fn store(settings: &Settings, recipient: Option<&str>, input: impl std::io::Read) -> ExitCode {
    // Where the pipe can read the report key (as the store's owner, with the daemon's
    // settings), an address without a token kurir gave out is refused before it costs disk;
    // where it cannot, the daemon judges the message, and keeps a bounded number it cannot
    // match.
    let key = match TokenKey::existing(&settings.store.dir) {
        Ok(key) => key,
        Err(e) => {
            tracing::debug!(error = %e, "the report key cannot be read here; the daemon checks the token");
            None
        }
    };
    let spool = Spool::new(&settings.spool.dir);
    match store_message(
        &spool,
        input,
        recipient,
        settings.proof.max_inbound_bytes,
        key.as_ref(),
    ) {
        Ok(name) => {
            tracing::info!(message = %name, "inbound message stored");
            ExitCode::SUCCESS
        }
        Err(e @ StoreMessageError::TooLarge(_)) => {
            eprintln!("kurir inbound: {e}");
            ExitCode::from(EX_DATAERR)
        }
        Err(e @ StoreMessageError::NoSuchRecipient) => {
            tracing::warn!("inbound message to an address kurir never gave out; not stored");
            eprintln!("kurir inbound: {e}");
            ExitCode::from(EX_NOUSER)
        }
        Err(e) => {
            eprintln!("kurir inbound: {e}");
            ExitCode::from(EX_TEMPFAIL)
        }
    }
}
