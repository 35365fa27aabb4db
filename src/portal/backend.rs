//! The portal's only way to the data: the daemon's portal socket. The portal holds no store,
//! no spool and no signing key; it asks the service on behalf of the signed-in person, and the
//! daemon checks that person's grants itself.

use std::path::PathBuf;

use crate::registry::Person;
use crate::service::protocol::{self, ClientError};
use crate::service::{Command, Principal, Reply, ServiceError};

/// Why a page could not be had from the daemon.
#[derive(Debug)]
pub enum Asked {
    /// The service refused, for the reason given.
    Refused(ServiceError),
    /// The daemon does not answer (restarting, say): try again shortly.
    Unavailable,
}

/// The daemon, as the portal reaches it.
#[derive(Debug, Clone)]
pub struct Backend {
    socket: PathBuf,
}

impl Backend {
    /// The daemon at `socket`.
    pub fn new(socket: PathBuf) -> Backend {
        Backend { socket }
    }

    /// Reports the portal's revocation lists and CAs to the daemon; whether it was heard.
    pub async fn report(&self, crls: Vec<crate::service::CrlInfo>, issuers: Vec<String>) -> bool {
        matches!(
            protocol::call(
                &self.socket,
                Principal::Portal,
                Command::PortalReport { crls, issuers },
            )
            .await,
            Ok(Ok(_))
        )
    }

    /// Asks the service, on behalf of `person`.
    pub async fn ask(&self, person: &Person, command: Command) -> Result<Reply, Asked> {
        match protocol::call(&self.socket, Principal::Person(person.clone()), command).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(refused)) => Err(Asked::Refused(refused)),
            Err(e @ ClientError::NotRunning(_)) => {
                tracing::info!(error = %e, "portal: the daemon does not answer; showing the try-again page");
                Err(Asked::Unavailable)
            }
            Err(e) => {
                tracing::warn!(error = %e, "portal: talking to the daemon failed");
                Err(Asked::Unavailable)
            }
        }
    }
}
