//! Who may send what, decided once. An operator (the command line, through the socket the
//! daemon's own user owns) may send anything an operator command exists for. A person on the
//! portal may read and change only what the agency granted them: their municipalities'
//! registrations, and of those only what municipality IT registers (not the secure
//! connection nor the TLS pin, which the agency sets up). The grant is checked here, against
//! the store, whatever the portal process claims.

use super::{Command, Core, Principal, ServiceError};

/// Refuses a command the principal may not send.
pub(super) fn check(
    core: &Core,
    principal: &Principal,
    command: &Command,
) -> Result<(), ServiceError> {
    let person = match principal {
        Principal::Operator(_) => {
            return match command {
                Command::MyMunicipalities | Command::PortalReport { .. } => {
                    Err(ServiceError::NotPermitted)
                }
                _ => Ok(()),
            }
        }
        // The portal process speaks for itself only to report on itself.
        Principal::Portal => {
            return match command {
                Command::PortalReport { .. } => Ok(()),
                _ => Err(ServiceError::NotPermitted),
            }
        }
        Principal::Person(person) => person,
    };
    let code = match command {
        Command::MyMunicipalities => return Ok(()),
        Command::MunicipalityShow { code }
        | Command::MunicipalityHistory { code }
        | Command::MunicipalityVerify { code }
        | Command::MunicipalityConfirm { code, .. } => *code,
        Command::MunicipalitySet { code, changes } => {
            if changes.tls_pin.is_some() || changes.secure.is_some() {
                return Err(ServiceError::NotPermitted);
            }
            *code
        }
        _ => return Err(ServiceError::NotPermitted),
    };
    core.seed.require(code)?;
    if core.store.registered(code)?.admits(person) {
        Ok(())
    } else {
        tracing::warn!(hsa_id = %person.hsa_id, kommunkod = %code, "refused: no grant for this municipality");
        Err(ServiceError::NoGrant {
            code,
            hsa_id: person.hsa_id.clone(),
        })
    }
}
