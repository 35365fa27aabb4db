#![warn(missing_docs)]
//! kurir delivers Migrationsverket's assignment decisions (anvisningsbeslut) and notices of the
//! need for a legal guardian (anmälan om behov av god man) to Swedish municipalities, by
//! protected e-mail or by a postal print queue, replacing fax.
//!
//! The flow, one module per stage, talking only through the store:
//! `intake → validate → route → queue → deliver (print) → store → receipt`.

pub mod alert;
pub mod audit;
pub mod compose;
pub mod config;
pub mod control;
pub mod csv_io;
pub mod daemon;
pub mod doctor;
pub mod fsutil;
pub mod intake;
pub mod job;
pub mod journal;
pub mod letter;
pub mod logging;
pub mod mail;
pub mod operator;
pub mod ops;
pub mod pdf;
pub mod print;
pub mod queue;
pub mod receipt;
pub mod registry;
pub mod route;
pub mod smime;
pub mod smtp;
pub mod spool;
pub mod state;
pub mod store;
pub mod validate;
pub mod worktime;
