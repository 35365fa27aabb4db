//! `kurir inbound`: the MTA's pipe into kurir, the way Request Tracker's `rt-mailgate` or
//! Sympa's bounce queue take mail from Postfix's `pipe(8)`. One message from standard input
//! goes into `spool/inbound/new/`; the daemon does the rest. Exit status follows sysexits:
//! 0 stored, 65 refused for good (too large), 75 try again later (it could not be stored).

use std::process::ExitCode;

use crate::config::Settings;
use crate::inbound::{store_message, StoreMessageError, EX_DATAERR, EX_TEMPFAIL};
use crate::spool::Spool;

/// Stores one message from standard input; the exit status tells the MTA what became of it.
pub fn run(settings: &Settings, recipient: Option<&str>) -> ExitCode {
    let spool = Spool::new(&settings.spool.dir);
    let stdin = std::io::stdin().lock();
    match store_message(&spool, stdin, recipient, settings.proof.max_inbound_bytes) {
        Ok(name) => {
            tracing::info!(message = %name, "inbound message stored");
            ExitCode::SUCCESS
        }
        Err(e @ StoreMessageError::TooLarge(_)) => {
            eprintln!("kurir inbound: {e}");
            ExitCode::from(EX_DATAERR)
        }
        Err(e) => {
            eprintln!("kurir inbound: {e}");
            ExitCode::from(EX_TEMPFAIL)
        }
    }
}
