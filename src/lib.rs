#![warn(missing_docs)]
//! kurir delivers Migrationsverket's assignment decisions (anvisningsbeslut) and notices of the
//! need for a legal guardian (anmälan om behov av god man) to Swedish municipalities, by
//! protected e-mail or by a postal print queue, replacing fax.
//!
//! The flow, one folder per stage, talking only through the store:
//! `intake (watch, claim, validate) → queue (route, schedule, escalate) → deliver (mail |
//! print) → store (record) → receipt`, proof coming back through `inbound`, and one folder per
//! user surface beside it: `registry` (what municipality IT registers) and `portal` (their web
//! page), `ops` (metrics, health, alerts, logging) and `cli` (the command line, its control
//! socket, doctor and manual pages). Imports go one way only (`tests/architecture.rs`):
//! the foundation (`config`, `digest`, `fsutil`, `job`, `spool`, `worktime`) uses no stage.

// The foundation: words, files and settings every stage shares.
pub mod clock;
pub mod config;
pub use kurir_protocol::{digest, free_text, job, net, registry};
pub mod connection;
pub mod fsutil;
pub mod pdf;
pub mod report_token;
pub mod spool;
pub mod worktime;

// The flow, in its direction of travel.
pub mod deliver;
pub mod inbound;
pub mod intake;
pub mod queue;
pub mod receipt;
pub mod store;

// The users' surfaces, and the process that wires it all together.
pub mod assemble;
pub mod cli;
pub mod daemon;
pub mod ops;
pub mod service;
