//! A web program's only way to the data: its door's socket on the daemon. The portal and the
//! desk hold no store, no spool and no signing key; each asks the service on behalf of the
//! signed-in person — as a municipality person (portal) or as staff (desk) — and the daemon
//! checks that person's grants itself.

use std::path::PathBuf;

use kurir_protocol::config::WebDoor;
use kurir_protocol::registry::Person;
use kurir_protocol::wire::{self, ClientError};
use kurir_protocol::{call, Call, Principal, ServiceError};

/// Why a page could not be had from the daemon.
#[derive(Debug)]
pub enum Asked {
    /// The service refused, for the reason given.
    Refused(ServiceError),
    /// The daemon does not answer (restarting, say): try again shortly.
    Unavailable,
}

/// The daemon, as the portal or the desk reaches it.
#[derive(Debug, Clone)]
pub struct Backend {
    socket: PathBuf,
    door: WebDoor,
}

impl Backend {
    /// The daemon at `socket`, for the program serving `door`.
    pub fn new(socket: PathBuf, door: WebDoor) -> Backend {
        Backend { socket, door }
    }

    /// Which door this program serves.
    pub fn door(&self) -> WebDoor {
        self.door
    }

    /// How the signed-in person speaks through this door.
    fn principal(&self, person: &Person) -> Principal {
        match self.door {
            WebDoor::Portal => Principal::Person(person.clone()),
            WebDoor::Desk => Principal::Staff(person.clone()),
        }
    }

    /// Reports the program's revocation lists and CAs to the daemon; whether it was heard.
    pub async fn report(
        &self,
        crls: Vec<kurir_protocol::reply::CrlInfo>,
        issuers: Vec<String>,
    ) -> bool {
        matches!(
            wire::call(
                &self.socket,
                match self.door {
                    WebDoor::Portal => Principal::Portal,
                    WebDoor::Desk => Principal::Desk,
                },
                call::PortalReport { crls, issuers },
            )
            .await,
            Ok(Ok(_))
        )
    }

    /// Asks the service, on behalf of `person`: the call's own reply, or why there is none.
    pub async fn ask<C: Call>(&self, person: &Person, call: C) -> Result<C::Reply, Asked> {
        match wire::call(&self.socket, self.principal(person), call).await {
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
