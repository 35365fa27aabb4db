//! Registrations: show, change, prove an address by a mailed code, grants, CSV in and out.
//! Each change is one store write with its history entry and audit entry, naming who made it.

use std::collections::HashMap;

use jiff::Timestamp;

use crate::intake::route;
use crate::job::Kommunkod;
use crate::ops::alert::AlertKind;
use crate::registry::{
    bulk, check_domain, check_hsa_id, diff, new_verification_code, Changes, Grant, Proven,
    Registered, RegistryAction, RegistryError,
};
use crate::store::Notice;

use super::announce;

use super::reply::{
    AddressConfirmed, GrantsNow, ImportSummary, MunicipalityChanges, MunicipalityRow,
    MunicipalityView, RegistrationChanged,
};
use super::{Core, ImportLineError, Principal, ServiceError};

/// A code recorded for a pending address, ready to be mailed.
pub(super) struct PreparedCode {
    pub(super) registered: Registered,
    pub(super) secret: String,
    pub(super) address: String,
    pub(super) expires: Timestamp,
}

impl Core {
    fn lock_registry(&self) -> std::sync::MutexGuard<'_, ()> {
        self.registry_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn municipality_list(
        &self,
        secure_only: bool,
    ) -> Result<Vec<MunicipalityRow>, ServiceError> {
        let registered: HashMap<Kommunkod, Registered> =
            self.store.all_registered()?.into_iter().collect();
        let rows = self
            .seed
            .iter()
            .filter_map(|m| {
                let r = registered.get(&m.code).cloned().unwrap_or_default();
                if secure_only && !r.secure_connection {
                    return None;
                }
                Some((m, r))
            })
            .map(|(m, r)| {
                let checked = self.last_checked(&r)?;
                Ok(MunicipalityRow {
                    municipality: m.clone(),
                    registered: r.redacted(),
                    checked,
                })
            })
            .collect::<Result<_, ServiceError>>()?;
        Ok(rows)
    }

    pub(super) fn municipality_show(
        &self,
        code: Kommunkod,
    ) -> Result<Box<MunicipalityView>, ServiceError> {
        let municipality = self.seed.require(code)?.clone();
        let registered = self.store.registered(code)?;
        let route = route::route_registered(
            &self.store,
            &registered,
            self.relay_configured,
            self.connection_rule,
        )?;
        let hold = self
            .store
            .holds()?
            .into_iter()
            .find(|(k, _)| *k == code)
            .map(|(_, note)| note);
        let connection = match super::address_to_check(&registered)
            .and_then(crate::registry::connection::domain_of)
        {
            Some(domain) => self.store.check_history(&domain, 10)?,
            None => Vec::new(),
        };
        Ok(Box::new(MunicipalityView {
            municipality,
            registered: registered.redacted(),
            route,
            hold,
            connection,
        }))
    }

    pub(super) fn history(
        &self,
        code: Kommunkod,
    ) -> Result<Vec<crate::registry::RegistryChange>, ServiceError> {
        self.seed.require(code)?;
        let mut history = self.store.registry_history(code)?;
        for change in &mut history {
            change.before = change.before.redacted();
            change.after = change.after.redacted();
        }
        Ok(history)
    }

    pub(super) fn set(
        &self,
        principal: &Principal,
        code: Kommunkod,
        changes: Changes,
    ) -> Result<Box<RegistrationChanged>, ServiceError> {
        self.seed.require(code)?;
        let _guard = self.lock_registry();
        let before = self.store.registered(code)?;
        let mut registered = before.clone();
        let operator = principal.recorded_as();
        let now = Timestamp::now();
        registered.apply_with(&changes, now, self.context(principal, &operator))?;
        let changed = diff(&before.redacted(), &registered.redacted());
        self.record_change(
            code,
            (&before, &registered),
            principal,
            RegistryAction::Set,
            Vec::new(),
        )?;
        tracing::info!(kommunkod = %code, operator = %operator, "municipality registration changed");
        Ok(Box::new(RegistrationChanged {
            kommunkod: code,
            changes: changed,
            registered: registered.redacted(),
        }))
    }

    /// Records a new code for the pending address (before it is sent).
    pub(super) fn prepare_code(
        &self,
        principal: &Principal,
        code: Kommunkod,
    ) -> Result<PreparedCode, ServiceError> {
        self.seed.require(code)?;
        let _guard = self.lock_registry();
        let before = self.store.registered(code)?;
        let mut registered = before.clone();
        let now = Timestamp::now();
        if matches!(principal, Principal::Person(_)) {
            // Each code is a message the agency signs, to an address of the person's choice.
            registered
                .note_code_request(now)
                .map_err(|next| RegistryError::TooManyCodes { code, next })?;
        }
        let secret = new_verification_code();
        if secret.is_empty() {
            return Err(ServiceError::NoRandomness);
        }
        let expires = now + self.code_ttl;
        let address = registered.set_code(code, &secret, expires, &self.code_key)?;
        self.record_change(
            code,
            (&before, &registered),
            principal,
            RegistryAction::CodeSent {
                address: address.clone(),
            },
            Vec::new(),
        )?;
        Ok(PreparedCode {
            registered,
            secret,
            address,
            expires,
        })
    }

    pub(super) fn confirm(
        &self,
        principal: &Principal,
        code: Kommunkod,
        secret: &str,
    ) -> Result<AddressConfirmed, ServiceError> {
        self.seed.require(code)?;
        let _guard = self.lock_registry();
        let operator = principal.recorded_as();
        let before = self.store.registered(code)?;
        let mut registered = before.clone();
        let now = Timestamp::now();
        let context = self.context(principal, &operator);
        let proven = match registered.confirm(code, secret, now, &self.code_key, context) {
            Ok(proven) => proven,
            Err(e @ (RegistryError::WrongCode(_) | RegistryError::TooManyAttempts(_))) => {
                // The count of wrong codes is part of the registration: keep it.
                self.record_change(
                    code,
                    (&before, &registered),
                    principal,
                    RegistryAction::WrongCode,
                    Vec::new(),
                )?;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        let (what, awaiting) = match &proven {
            Proven::InUse(address) => (
                RegistryAction::Confirmed {
                    address: address.clone(),
                    awaits_approval: false,
                },
                None,
            ),
            Proven::AwaitsApproval(address) => (
                RegistryAction::Confirmed {
                    address: address.clone(),
                    awaits_approval: true,
                },
                Some(address.clone()),
            ),
        };
        // Proving an address changes where decisions go (or what waits for approval): it is
        // announced like any other change, naming the address decisions now go to.
        self.record_change(code, (&before, &registered), principal, what, Vec::new())?;
        tracing::info!(kommunkod = %code, operator = %operator, awaits_approval = awaiting.is_some(), "address confirmed");
        Ok(AddressConfirmed {
            kommunkod: code,
            active_address: registered.active_address.clone(),
            awaiting_approval: awaiting,
        })
    }

    /// The one gate every change of a registration passes, from every surface: it compares
    /// where decisions go ([`crate::registry::DecisionRoute`]) before and after and, when it
    /// differs, queues the signed notice to the address decisions went to and every contact
    /// person in the same transaction as the change, and alerts the agency. `also` are
    /// notices of the caller's own (a certificate's expiry). Nothing else in kurir writes a
    /// registration (tests/architecture.rs).
    pub(super) fn record_change(
        &self,
        code: Kommunkod,
        (before, after): (&Registered, &Registered),
        principal: &Principal,
        what: RegistryAction,
        also: Vec<Notice>,
    ) -> Result<(), ServiceError> {
        let mut after = after.clone();
        after.remember_who_knows(before);
        let after = &after;
        let lines = announce::routing_changes(before, after);
        let name = self
            .seed
            .get(code)
            .map(|m| m.name.clone())
            .unwrap_or_else(|| format!("kommun {code}"));
        let change = announce::Change {
            code,
            name: &name,
            before,
            after,
            principal,
            at: Timestamp::now(),
        };
        let mut notices: Vec<Notice> = announce::change_notice(&change, &lines, &self.sender)
            .into_iter()
            .collect();
        notices.extend(also);
        self.store
            .register_notifying(code, after, &principal.recorded_as(), &what, &notices)?;
        if !lines.is_empty() {
            let told = notices
                .first()
                .map(|n| format!("told {}", n.to.join(", ")))
                .unwrap_or_else(|| "nobody to tell (no proven address, no contacts)".into());
            let alert = self.alerter.about_registration(
                AlertKind::RegistrationChanged,
                code,
                format!(
                    "where decisions go was changed by {}: {}",
                    principal.recorded_as(),
                    announce::alert_text(&lines)
                ),
                format!("a notice signed by the agency goes to the municipality ({told})"),
            );
            self.alerter.raise(alert);
        }
        let newly_waiting = after.awaiting_approval.is_some()
            && after.awaiting_approval != before.awaiting_approval;
        if newly_waiting {
            let alert = self.alerter.about_registration(
                AlertKind::ApprovalWaiting,
                code,
                format!(
                    "{} made a change that waits for the agency's approval",
                    principal.recorded_as()
                ),
                "nothing of it is used until an operator approves it".into(),
            );
            self.alerter.raise(alert);
        }
        Ok(())
    }

    /// An operator approves what waits for approval.
    pub(super) fn approve(
        &self,
        principal: &Principal,
        code: Kommunkod,
        digest: &str,
    ) -> Result<Box<RegistrationChanged>, ServiceError> {
        self.seed.require(code)?;
        let _guard = self.lock_registry();
        let before = self.store.registered(code)?;
        let waiting = before
            .awaiting_approval
            .clone()
            .ok_or(RegistryError::NothingToApprove(code))?;
        let now = waiting.digest();
        if !digest.trim().eq_ignore_ascii_case(&now) {
            return Err(ServiceError::ApprovalChanged { code, now });
        }
        if waiting.by == principal.recorded_as() {
            return Err(ServiceError::ApproverAskedForIt {
                code,
                by: waiting.by,
            });
        }
        let approved_what = RegistryAction::Approved {
            digest: now.to_string(),
            items: waiting.items(),
        };
        let mut registered = before.clone();
        registered.approve(code)?;
        let changed = diff(&before.redacted(), &registered.redacted());
        self.record_change(
            code,
            (&before, &registered),
            principal,
            approved_what,
            Vec::new(),
        )?;
        Ok(Box::new(RegistrationChanged {
            kommunkod: code,
            changes: changed,
            registered: registered.redacted(),
        }))
    }

    /// An operator refuses what waits for approval.
    pub(super) fn refuse(
        &self,
        principal: &Principal,
        code: Kommunkod,
        reason: &str,
    ) -> Result<Box<RegistrationChanged>, ServiceError> {
        self.seed.require(code)?;
        if reason.trim().is_empty() {
            return Err(ServiceError::ReasonRequired);
        }
        super::jobs::refuse_personal_data(reason)?;
        let _guard = self.lock_registry();
        let before = self.store.registered(code)?;
        let mut registered = before.clone();
        registered.refuse(code)?;
        let changed = diff(&before.redacted(), &registered.redacted());
        self.record_change(
            code,
            (&before, &registered),
            principal,
            RegistryAction::Refused {
                reason: reason.trim().to_string(),
            },
            Vec::new(),
        )?;
        Ok(Box::new(RegistrationChanged {
            kommunkod: code,
            changes: changed,
            registered: registered.redacted(),
        }))
    }

    /// An operator changes the municipality's mail domains.
    pub(super) fn domains(
        &self,
        principal: &Principal,
        code: Kommunkod,
        add: &[String],
        remove: &[String],
    ) -> Result<Box<RegistrationChanged>, ServiceError> {
        self.seed.require(code)?;
        let add: Vec<String> = add
            .iter()
            .map(|d| check_domain(d))
            .collect::<Result<_, _>>()?;
        let remove: Vec<String> = remove
            .iter()
            .map(|d| check_domain(d))
            .collect::<Result<_, _>>()?;
        let _guard = self.lock_registry();
        let before = self.store.registered(code)?;
        if add.is_empty() && remove.is_empty() {
            return Ok(Box::new(RegistrationChanged {
                kommunkod: code,
                changes: Vec::new(),
                registered: before.redacted(),
            }));
        }
        let mut registered = before.clone();
        registered.domains.retain(|d| !remove.contains(d));
        for d in add {
            if !registered.domains.contains(&d) {
                registered.domains.push(d);
            }
        }
        let changed = diff(&before.redacted(), &registered.redacted());
        self.record_change(
            code,
            (&before, &registered),
            principal,
            RegistryAction::Domains {
                domains: registered.domains.clone(),
            },
            Vec::new(),
        )?;
        Ok(Box::new(RegistrationChanged {
            kommunkod: code,
            changes: changed,
            registered: registered.redacted(),
        }))
    }

    pub(super) fn grant(
        &self,
        principal: &Principal,
        code: Kommunkod,
        hsa_id: String,
        name: Option<String>,
        issuer: Option<String>,
    ) -> Result<GrantsNow, ServiceError> {
        self.seed.require(code)?;
        check_hsa_id(&hsa_id)?;
        let issuer = issuer
            .map(|i| i.trim().to_string())
            .filter(|i| !i.is_empty())
            .or_else(|| self.default_issuer(crate::config::WebDoor::Portal))
            .ok_or(ServiceError::IssuerRequired)?;
        let _guard = self.lock_registry();
        let before = self.store.registered(code)?;
        let mut registered = before.clone();
        registered.grants.retain(|g| g.hsa_id != hsa_id);
        registered.grants.push(Grant {
            hsa_id: hsa_id.clone(),
            name,
            issuer: Some(issuer),
        });
        self.record_change(
            code,
            (&before, &registered),
            principal,
            RegistryAction::AccessGranted {
                hsa_id: hsa_id.clone(),
            },
            Vec::new(),
        )?;
        Ok(GrantsNow {
            kommunkod: code,
            grants: registered.grants,
        })
    }

    pub(super) fn revoke(
        &self,
        principal: &Principal,
        code: Kommunkod,
        hsa_id: String,
    ) -> Result<GrantsNow, ServiceError> {
        self.seed.require(code)?;
        let _guard = self.lock_registry();
        let before = self.store.registered(code)?;
        let mut registered = before.clone();
        registered.grants.retain(|g| g.hsa_id != hsa_id);
        if registered.grants.len() == before.grants.len() {
            return Err(ServiceError::NoSuchGrant { code, hsa_id });
        }
        self.record_change(
            code,
            (&before, &registered),
            principal,
            RegistryAction::AccessRevoked {
                hsa_id: hsa_id.clone(),
            },
            Vec::new(),
        )?;
        Ok(GrantsNow {
            kommunkod: code,
            grants: registered.grants,
        })
    }

    /// The municipalities the person may manage.
    pub(super) fn mine(
        &self,
        principal: &Principal,
    ) -> Result<Vec<crate::registry::SeedMunicipality>, ServiceError> {
        let Principal::Person(person) = principal else {
            return Err(ServiceError::NotPermitted);
        };
        let mine = self
            .store
            .all_registered()?
            .into_iter()
            .filter(|(_, r)| r.admits(person))
            .filter_map(|(code, _)| self.seed.get(code).cloned())
            .collect();
        Ok(mine)
    }

    /// Applies a CSV file: every row is checked first; with errors or `dry_run` nothing is
    /// written.
    pub(super) fn import(
        &self,
        principal: &Principal,
        text: &str,
        dry_run: bool,
    ) -> Result<ImportSummary, ServiceError> {
        let rows = bulk::parse(text)?;
        let _guard = self.lock_registry();
        let now = Timestamp::now();
        let mut planned = Vec::new();
        let mut refused = Vec::new();
        for (line, code, changes) in rows {
            if let Err(error) = self.seed.require(code) {
                refused.push(ImportLineError::Row { line, error });
                continue;
            }
            let before = self.store.registered(code)?;
            let mut after = before.clone();
            match after.apply(&changes, now) {
                Ok(()) => {
                    let changed = diff(&before.redacted(), &after.redacted());
                    if !changed.is_empty() {
                        planned.push((code, before, after, changed));
                    }
                }
                Err(error) => refused.push(ImportLineError::Value { line, code, error }),
            }
        }
        if !refused.is_empty() {
            return Err(ServiceError::Import { lines: refused });
        }
        if !dry_run {
            let operator = principal.recorded_as();
            // Each row passes the same gate as any other change: announced where it moves
            // decisions, its out-of-domain addresses waiting for approval.
            for (code, before, after, _) in &planned {
                self.record_change(
                    *code,
                    (before, after),
                    principal,
                    RegistryAction::Import,
                    Vec::new(),
                )?;
            }
            tracing::info!(municipalities = planned.len(), operator = %operator, "registrations imported");
        }
        Ok(ImportSummary {
            dry_run,
            municipalities: planned
                .into_iter()
                .map(|(kommunkod, _, _, changes)| MunicipalityChanges { kommunkod, changes })
                .collect(),
        })
    }

    pub(super) fn export(&self) -> Result<String, ServiceError> {
        let all = self.store.all_registered()?;
        let text = bulk::export(&all).map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(text)
    }
}
