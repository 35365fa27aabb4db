//! `kurir inbound`: the MTA's pipe into kurir, the way Request Tracker's `rt-mailgate` or
//! Sympa's bounce queue take mail from Postfix's `pipe(8)`. One message from standard input
//! goes into `spool/inbound/new/`; the daemon does the rest. Exit status follows sysexits:
//! 0 stored, 65 refused for good (too large), 67 no such recipient (an address without a
//! token kurir gave out: nothing is stored), 75 try again later (it could not be stored).
//! Run by root, what it writes is given to the spool's owner, like every other command's.

use std::process::ExitCode;

use crate::config::Settings;
use crate::inbound::{store_message, StoreMessageError, EX_DATAERR, EX_NOUSER, EX_TEMPFAIL};
use crate::report_token::TokenKey;
use crate::spool::Spool;

/// Stores one message from standard input; the exit status tells the MTA what became of it.
pub fn run(settings: &Settings, recipient: Option<&str>) -> ExitCode {
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
    let stdin = std::io::stdin().lock();
    match store_message(
        &spool,
        stdin,
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
