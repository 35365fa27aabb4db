#![warn(missing_docs)]
//! What kurir's daemon and its two web programs — the municipality portal (`kurir-portal`)
//! and the dispatch desk (`kurir-desk`) — share, and nothing more: the domain's values (job
//! ids, kommunkoder, a job's record and history, a municipality's registration), the calls
//! each door may make with their replies and refusals, the control sockets' wire and its
//! client, and the settings and process plumbing both sides read the same way.
//!
//! No store, no spool, no PDF parser and no signing key are here: a web program links this
//! crate and not the daemon's (`kurir`), so a compromised web process holds none of them
//! (`tests/architecture.rs` checks the dependency tree).

pub mod action;
pub mod call;
pub mod config;
pub mod digest;
pub mod draft;
pub mod error;
pub mod event;
pub mod free_text;
pub mod job;
pub mod kinds;
pub mod logging;
pub mod net;
pub mod pdf;
pub mod registry;
pub mod reply;
pub mod state;
pub mod systemd;
pub mod wire;

pub use call::Call;
pub use error::ServiceError;
pub use wire::Principal;
