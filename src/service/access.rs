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
use crate::job::Kommunkod;
use crate::queue::operator::Target;
use crate::registry::{Person, StaffRole};

/// Who on the desk may send a command.
#[derive(Debug, PartialEq)]
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
        DeskJobs(_) | DeskJob(_) | OpenAlerts(_) | Acknowledge(_) | CallNoAnswer(_)
        | CallCount(_) | Reroute(_) => Some(Desk::AnyStaff),
        Retry(call) if one_job(&call.target) => Some(Desk::AnyStaff),
        Cancel(_) => Some(Desk::AnyStaff),
        // Caseworkers send decisions; operations do not send their own.
        DeskDraft(_) | DeskDraftDocument(_) | DeskSend(_) => {
            Some(Desk::Only(StaffRole::Handlaggare))
        }
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

/// What sending a command takes, decided from who sends it and what it is alone — before any
/// grant is looked up. One pure rule, so that it can be read (and tested) as a table.
#[derive(Debug, PartialEq)]
enum Needs {
    /// Nothing more.
    Nothing,
    /// The signed-in member of staff's desk grant, as [`Desk`] says.
    DeskGrant(Desk),
    /// The signed-in municipality person's grant for this municipality.
    MunicipalityGrant(Kommunkod),
    /// Never, from this principal.
    Refused,
}

fn needs(principal: &Principal, command: &Command) -> Needs {
    match principal {
        // An operator's name is what histories record: one that reads as a person on the
        // portal or the desk would put words in that person's mouth.
        Principal::Operator(name)
            if matches!(
                crate::registry::Recorded::read(name),
                crate::registry::Recorded::Portal { .. } | crate::registry::Recorded::Desk { .. }
            ) =>
        {
            Needs::Refused
        }
        Principal::Operator(_) => match command {
            Command::MyMunicipalities(_)
            | Command::PortalReport(_)
            | Command::DeskDraft(_)
            | Command::DeskDraftDocument(_)
            | Command::DeskSend(_)
            | Command::DeskJob(_) => Needs::Refused,
            _ => Needs::Nothing,
        },
        // The web processes speak for themselves only to report on themselves.
        Principal::Portal | Principal::Desk => match command {
            Command::PortalReport(_) => Needs::Nothing,
            _ => Needs::Refused,
        },
        // Staff: the desk's commands, as their desk grant allows; nothing of registrations.
        Principal::Staff(_) => match desk_permission(command) {
            Some(needed) => Needs::DeskGrant(needed),
            None if matches!(command, Command::WhoAmI(_)) => Needs::Nothing,
            None => Needs::Refused,
        },
        // A municipality person: their municipalities' registrations, only what municipality
        // IT register; nothing of the desk's, whatever grants they hold besides.
        Principal::Person(_) => match command {
            Command::MyMunicipalities(_) => Needs::Nothing,
            Command::MunicipalityShow(call::MunicipalityShow { code })
            | Command::MunicipalityHistory(call::MunicipalityHistory { code })
            | Command::MunicipalityVerify(call::MunicipalityVerify { code })
            | Command::MunicipalityCheck(call::MunicipalityCheck { code })
            | Command::MunicipalityConfirm(call::MunicipalityConfirm { code, .. }) => {
                Needs::MunicipalityGrant(*code)
            }
            // The secure connection and the TLS pin are the agency's to set up.
            Command::MunicipalitySet(call::MunicipalitySet { code, changes })
                if changes.tls_pin.is_none() && changes.secure.is_none() =>
            {
                Needs::MunicipalityGrant(*code)
            }
            _ => Needs::Refused,
        },
    }
}

/// Refuses a command the principal may not send.
pub(super) fn check(
    core: &Core,
    principal: &Principal,
    command: &Command,
) -> Result<(), ServiceError> {
    match (needs(principal, command), principal) {
        (Needs::Nothing, _) => Ok(()),
        (Needs::DeskGrant(needed), Principal::Staff(person)) => check_desk(core, person, needed),
        (Needs::MunicipalityGrant(code), Principal::Person(person)) => {
            check_grant(core, person, code)
        }
        _ => Err(ServiceError::NotPermitted),
    }
}

/// Refuses a person without a grant for municipality `code`.
fn check_grant(core: &Core, person: &Person, code: Kommunkod) -> Result<(), ServiceError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobId;
    use crate::queue::operator::Target;
    use crate::registry::{Changes, Person};

    /// One example of every call.
    fn every_call() -> Vec<Command> {
        let id = || JobId::generate();
        let code: Kommunkod = "2480".parse().expect("kommunkod");
        let reason = || "prov".to_string();
        let job = || Target::Job(JobId::generate());
        let draft = || crate::intake::draft::DraftId::try_from("0".repeat(32)).expect("draft id");
        use call::*;
        vec![
            Status { id: id() }.into(),
            List {
                states: vec![],
                limit: 1,
            }
            .into(),
            Queue {}.into(),
            Retry {
                target: job(),
                reason: reason(),
            }
            .into(),
            Hold {
                target: job(),
                reason: reason(),
            }
            .into(),
            Release {
                target: job(),
                reason: reason(),
            }
            .into(),
            Cancel {
                id: id(),
                reason: reason(),
            }
            .into(),
            Reroute {
                id: id(),
                reason: reason(),
            }
            .into(),
            QuarantineList {}.into(),
            QuarantineShow { id: id() }.into(),
            QuarantineRelease {
                id: id(),
                reason: reason(),
            }
            .into(),
            QuarantineDelete {
                id: id(),
                reason: reason(),
            }
            .into(),
            OpenAlerts {}.into(),
            Acknowledge {
                id: id(),
                reason: reason(),
                alert: None,
            }
            .into(),
            CallNoAnswer {
                id: id(),
                reason: reason(),
                alert: crate::store::kinds::AlertMark::job(crate::store::kinds::AlertKind::Unread),
            }
            .into(),
            CallCount {}.into(),
            PrintBatches {}.into(),
            PrintConfirm {
                batch: "b".into(),
                reason: reason(),
            }
            .into(),
            StaffGrant {
                hsa_id: "SE1-x".into(),
                name: "N".into(),
                role: StaffRole::Drift,
                issuer: None,
            }
            .into(),
            StaffRevoke {
                hsa_id: "SE1-x".into(),
            }
            .into(),
            StaffList {}.into(),
            WhoAmI {}.into(),
            DeskDraft {
                to: Some(code),
                case: "12-345678".into(),
                copy_to: vec![],
                documents: vec![],
                kept: None,
                incomplete: false,
                without: vec![],
            }
            .into(),
            DeskDraftDocument {
                draft: draft(),
                kind: crate::job::DocumentKind::Anvisningsbeslut,
            }
            .into(),
            DeskSend { draft: draft() }.into(),
            DeskJobs {
                search: String::new(),
                filter: DeskFilter::All,
                limit: 1,
            }
            .into(),
            DeskJob {
                id: id(),
                view: DeskView::Page,
            }
            .into(),
            Backup {
                dest: "/tmp/b".into(),
            }
            .into(),
            SubmissionLookup { digest: "d".into() }.into(),
            AuditVerify {}.into(),
            AuditExport {
                since: jiff::Timestamp::UNIX_EPOCH,
            }
            .into(),
            MunicipalityList { secure_only: false }.into(),
            MunicipalityShow { code }.into(),
            MunicipalitySet {
                code,
                changes: Changes::default(),
            }
            .into(),
            MunicipalityHistory { code }.into(),
            MunicipalityImport {
                csv: String::new(),
                dry_run: true,
            }
            .into(),
            MunicipalityExport {}.into(),
            MunicipalityCheck { code }.into(),
            MunicipalityVerify { code }.into(),
            MunicipalityConfirm {
                code,
                secret: "s".into(),
            }
            .into(),
            MunicipalityGrant {
                code,
                hsa_id: "SE1-x".into(),
                name: None,
                issuer: None,
            }
            .into(),
            MunicipalityRevoke {
                code,
                hsa_id: "SE1-x".into(),
            }
            .into(),
            MyMunicipalities {}.into(),
            MunicipalityApprove {
                code,
                digest: "d".into(),
            }
            .into(),
            MunicipalityRefuse {
                code,
                reason: reason(),
            }
            .into(),
            PortalReport {
                crls: vec![],
                issuers: vec![],
            }
            .into(),
            PortalStatus {}.into(),
            DeskStatus {}.into(),
            MunicipalityDomains {
                code,
                add: vec![],
                remove: vec![],
            }
            .into(),
        ]
    }

    /// What each principal needs for each call: `-` nothing, `x` never, `m` a grant for the
    /// municipality, `s` any desk grant, `h` a handläggare's, `d` drift's. Columns: operator,
    /// municipality person (portal), member of staff (desk), the portal process, the desk
    /// process.
    const TABLE: &[(&str, &str)] = &[
        ("Status", "-xxxx"),
        ("List", "-xxxx"),
        ("Queue", "-xxxx"),
        ("Retry", "-xsxx"),
        ("Hold", "-xdxx"),
        ("Release", "-xdxx"),
        ("Cancel", "-xsxx"),
        ("Reroute", "-xsxx"),
        ("QuarantineList", "-xxxx"),
        ("QuarantineShow", "-xxxx"),
        ("QuarantineRelease", "-xxxx"),
        ("QuarantineDelete", "-xxxx"),
        ("OpenAlerts", "-xsxx"),
        ("Acknowledge", "-xsxx"),
        ("CallNoAnswer", "-xsxx"),
        ("CallCount", "-xsxx"),
        ("PrintBatches", "-xxxx"),
        ("PrintConfirm", "-xxxx"),
        ("StaffGrant", "-xxxx"),
        ("StaffRevoke", "-xxxx"),
        ("StaffList", "-xxxx"),
        ("WhoAmI", "-x-xx"),
        ("DeskDraft", "xxhxx"),
        ("DeskDraftDocument", "xxhxx"),
        ("DeskSend", "xxhxx"),
        ("DeskJobs", "-xsxx"),
        ("DeskJob", "xxsxx"),
        ("Backup", "-xxxx"),
        ("SubmissionLookup", "-xxxx"),
        ("AuditVerify", "-xxxx"),
        ("AuditExport", "-xxxx"),
        ("MunicipalityList", "-xxxx"),
        ("MunicipalityShow", "-mxxx"),
        ("MunicipalitySet", "-mxxx"),
        ("MunicipalityHistory", "-mxxx"),
        ("MunicipalityImport", "-xxxx"),
        ("MunicipalityExport", "-xxxx"),
        ("MunicipalityCheck", "-mxxx"),
        ("MunicipalityVerify", "-mxxx"),
        ("MunicipalityConfirm", "-mxxx"),
        ("MunicipalityGrant", "-xxxx"),
        ("MunicipalityRevoke", "-xxxx"),
        ("MyMunicipalities", "x-xxx"),
        ("MunicipalityApprove", "-xxxx"),
        ("MunicipalityRefuse", "-xxxx"),
        ("PortalReport", "xxx--"),
        ("PortalStatus", "-xxxx"),
        ("DeskStatus", "-xxxx"),
        ("MunicipalityDomains", "-xxxx"),
    ];

    fn mark(needs: Needs) -> char {
        match needs {
            Needs::Nothing => '-',
            Needs::Refused => 'x',
            Needs::MunicipalityGrant(_) => 'm',
            Needs::DeskGrant(Desk::AnyStaff) => 's',
            Needs::DeskGrant(Desk::Only(StaffRole::Handlaggare)) => 'h',
            Needs::DeskGrant(Desk::Only(StaffRole::Drift)) => 'd',
        }
    }

    #[test]
    fn an_operator_named_like_a_person_on_the_portal_or_the_desk_is_refused() {
        let forged = Principal::Operator("SE2321000016-x (Anna Berg) via desk".into());
        let status: Command = call::OpenAlerts {}.into();
        assert_eq!(needs(&forged, &status), Needs::Refused);
        let forged = Principal::Operator("SE2321000016-x (Anna Berg) via portal".into());
        assert_eq!(needs(&forged, &status), Needs::Refused);
        let plain = Principal::Operator("drift-olle".into());
        assert_eq!(needs(&plain, &status), Needs::Nothing);
    }

    #[test]
    fn every_principal_may_send_exactly_what_the_table_says_of_every_call() {
        let person = Person {
            hsa_id: "SE2321000016-t1".into(),
            name: "T".into(),
            issuer: None,
        };
        let principals = [
            Principal::Operator("drift".into()),
            Principal::Person(person.clone()),
            Principal::Staff(person),
            Principal::Portal,
            Principal::Desk,
        ];
        let calls = every_call();
        let mut named: Vec<&str> = calls.iter().map(Command::name).collect();
        named.sort_unstable();
        let mut all = Command::ALL.to_vec();
        all.sort_unstable();
        assert_eq!(named, all, "every call has an example");
        for command in &calls {
            let (_, expected) = TABLE
                .iter()
                .find(|(name, _)| *name == command.name())
                .unwrap_or_else(|| panic!("{} is not in the table", command.name()));
            let got: String = principals.iter().map(|p| mark(needs(p, command))).collect();
            assert_eq!(&got, expected, "{}", command.name());
        }
        // Bulk actions stay the operator's: staff act on one job at a time.
        let everything = call::Hold {
            target: Target::Everything,
            reason: "prov".into(),
        };
        assert_eq!(needs(&principals[2], &everything.into()), Needs::Refused);
        // A municipality person may not set what the agency sets up.
        let secure = call::MunicipalitySet {
            code: "2480".parse().expect("kommunkod"),
            changes: Changes {
                secure: Some("no".into()),
                ..Changes::default()
            },
        };
        assert_eq!(needs(&principals[1], &secure.into()), Needs::Refused);
    }
}
