//! Who may send what, decided once. An operator (the command line, through the socket the
//! daemon's own user owns) may send anything an operator command exists for. A person on the
//! portal may read and change only what the agency granted them: their municipalities'
//! registrations, and of those only what municipality IT registers (not the secure
//! connection nor the TLS pin, which the agency sets up). A member of the agency's staff with a
//! desk grant may use the dispatch desk as their role allows. The two are different principals
//! that come through different doors (the portal's and the desk's sockets, each answered only
//! for its program's user): a portal process, however compromised, cannot speak as staff, so
//! it can send no decision, list no case and cancel no job. Every grant is checked here,
//! against the store, whatever a web process claims.

use super::{call, Command, Core, Principal, ServiceError};
use crate::queue::operator::Target;
use crate::registry::{Person, StaffRole};

/// Who on the desk may send a command.
enum Desk {
    /// Any member of staff with desk access.
    AnyStaff,
    /// Only these roles.
    Only(StaffRole),
}

/// The desk permission a command needs, or `None` for a command that is not the desk's.
fn desk_permission(command: &Command) -> Option<Desk> {
    use Command::*;
    let one_job = |target: &Target| matches!(target, Target::Job(_));
    match command {
        DeskJobs(_) | DeskJob(_) | OpenAlerts(_) | Acknowledge(_) | Reroute(_) => {
            Some(Desk::AnyStaff)
        }
        Retry(call) if one_job(&call.target) => Some(Desk::AnyStaff),
        Cancel(_) => Some(Desk::AnyStaff),
        // Caseworkers send decisions; operations do not send their own.
        DeskDraft(_) | DeskSend(_) => Some(Desk::Only(StaffRole::Handlaggare)),
        // Holding and releasing is operations' tool.
        Hold(call::Hold { target, .. }) | Release(call::Release { target, .. })
            if one_job(target) =>
        {
            Some(Desk::Only(StaffRole::Drift))
        }
        _ => None,
    }
}

/// Refuses a desk command the person's desk grant (or its role) does not allow.
fn check_desk(core: &Core, person: &Person, needed: Desk) -> Result<(), ServiceError> {
    let Some(grant) = core.desk_grant(person)? else {
        tracing::warn!(hsa_id = %person.hsa_id, "refused: no desk access");
        return Err(ServiceError::NotStaff(person.hsa_id.clone()));
    };
    match needed {
        Desk::Only(role) if grant.role != role => Err(ServiceError::RoleForbids(grant.role)),
        _ => Ok(()),
    }
}

/// Refuses a command the principal may not send.
pub(super) fn check(
    core: &Core,
    principal: &Principal,
    command: &Command,
) -> Result<(), ServiceError> {
    let person = match principal {
        Principal::Operator(_) => {
            return match command {
                Command::MyMunicipalities(_)
                | Command::PortalReport { .. }
                | Command::DeskDraft { .. }
                | Command::DeskSend { .. }
                | Command::DeskJob { .. } => Err(ServiceError::NotPermitted),
                _ => Ok(()),
            }
        }
        // The web processes speak for themselves only to report on themselves.
        Principal::Portal | Principal::Desk => {
            return match command {
                Command::PortalReport { .. } => Ok(()),
                _ => Err(ServiceError::NotPermitted),
            }
        }
        // Staff: the desk's commands, as their desk grant allows; nothing of registrations.
        Principal::Staff(person) => {
            return match desk_permission(command) {
                Some(needed) => check_desk(core, person, needed),
                None if matches!(command, Command::WhoAmI(_)) => Ok(()),
                None => Err(ServiceError::NotPermitted),
            }
        }
        Principal::Person(person) => person,
    };
    // A municipality person: nothing of the desk's, whatever grants they hold besides.
    if desk_permission(command).is_some() {
        return Err(ServiceError::NotPermitted);
    }
    let code = match command {
        Command::MyMunicipalities(_) => return Ok(()),
        Command::MunicipalityShow(call::MunicipalityShow { code })
        | Command::MunicipalityHistory(call::MunicipalityHistory { code })
        | Command::MunicipalityVerify(call::MunicipalityVerify { code })
        | Command::MunicipalityCheck(call::MunicipalityCheck { code })
        | Command::MunicipalityConfirm(call::MunicipalityConfirm { code, .. }) => *code,
        Command::MunicipalitySet(call::MunicipalitySet { code, changes }) => {
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
