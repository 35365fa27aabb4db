//! Registrations: show, change, prove an address by a mailed code, grants, CSV in and out.
//! Each change is one store write with its history entry and audit entry, naming who made it.

use std::collections::HashMap;

use jiff::Timestamp;

use crate::intake::route::{self, RouteInput};
use crate::job::Kommunkod;
use crate::registry::{
    bulk, check_hsa_id, diff, new_verification_code, Changes, Grant, Registered, RegistryError,
};

use super::reply::{
    AddressConfirmed, GrantsNow, ImportSummary, MunicipalityChanges, MunicipalityRow,
    MunicipalityView, RegistrationChanged,
};
use super::{Core, ImportLineError, Principal, Reply, ServiceError};

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

    pub(super) fn municipality_list(&self, secure_only: bool) -> Result<Reply, ServiceError> {
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
                Some(MunicipalityRow {
                    municipality: m.clone(),
                    registered: r.redacted(),
                })
            })
            .collect();
        Ok(Reply::Municipalities(rows))
    }

    pub(super) fn municipality_show(&self, code: Kommunkod) -> Result<Reply, ServiceError> {
        let municipality = self.seed.require(code)?.clone();
        let registered = self.store.registered(code)?;
        let route = route::route(RouteInput {
            relay_configured: self.relay_configured,
            secure_connection: registered.secure_connection,
            verified_address: registered.active_address.as_deref(),
        });
        let hold = self
            .store
            .holds()?
            .into_iter()
            .find(|(k, _)| *k == code)
            .map(|(_, note)| note);
        Ok(Reply::Municipality(Box::new(MunicipalityView {
            municipality,
            registered: registered.redacted(),
            route,
            hold,
        })))
    }

    pub(super) fn history(&self, code: Kommunkod) -> Result<Reply, ServiceError> {
        self.seed.require(code)?;
        let mut history = self.store.registry_history(code)?;
        for change in &mut history {
            change.before = change.before.redacted();
            change.after = change.after.redacted();
        }
        Ok(Reply::History(history))
    }

    pub(super) fn set(
        &self,
        principal: &Principal,
        code: Kommunkod,
        changes: Changes,
    ) -> Result<Reply, ServiceError> {
        self.seed.require(code)?;
        let _guard = self.lock_registry();
        let before = self.store.registered(code)?;
        let mut registered = before.clone();
        registered.apply(&changes, Timestamp::now())?;
        let changed = diff(&before.redacted(), &registered.redacted());
        let operator = principal.recorded_as();
        self.store.register(code, &registered, &operator, "set")?;
        tracing::info!(kommunkod = %code, operator = %operator, "municipality registration changed");
        Ok(Reply::Changed(Box::new(RegistrationChanged {
            kommunkod: code,
            changes: changed,
            registered: registered.redacted(),
        })))
    }

    /// Records a new code for the pending address (before it is sent).
    pub(super) fn prepare_code(
        &self,
        principal: &Principal,
        code: Kommunkod,
    ) -> Result<PreparedCode, ServiceError> {
        self.seed.require(code)?;
        let _guard = self.lock_registry();
        let mut registered = self.store.registered(code)?;
        let secret = new_verification_code();
        if secret.is_empty() {
            return Err(ServiceError::NoRandomness);
        }
        let expires = Timestamp::now() + self.code_ttl;
        let address = registered.set_code(code, &secret, expires)?;
        self.store.register(
            code,
            &registered,
            &principal.recorded_as(),
            &format!("verification code sent to {address}"),
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
    ) -> Result<Reply, ServiceError> {
        self.seed.require(code)?;
        let _guard = self.lock_registry();
        let operator = principal.recorded_as();
        let mut registered = self.store.registered(code)?;
        let address = match registered.confirm(code, secret, Timestamp::now()) {
            Ok(address) => address,
            Err(e @ (RegistryError::WrongCode(_) | RegistryError::TooManyAttempts(_))) => {
                // The count of wrong codes is part of the registration: keep it.
                self.store
                    .register(code, &registered, &operator, "wrong verification code")?;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        self.store.register(
            code,
            &registered,
            &operator,
            &format!("address {address} confirmed"),
        )?;
        tracing::info!(kommunkod = %code, operator = %operator, "address confirmed and active");
        Ok(Reply::Confirmed(AddressConfirmed {
            kommunkod: code,
            active_address: address,
        }))
    }

    pub(super) fn grant(
        &self,
        principal: &Principal,
        code: Kommunkod,
        hsa_id: String,
        name: Option<String>,
    ) -> Result<Reply, ServiceError> {
        self.seed.require(code)?;
        check_hsa_id(&hsa_id)?;
        let _guard = self.lock_registry();
        let mut registered = self.store.registered(code)?;
        registered.grants.retain(|g| g.hsa_id != hsa_id);
        registered.grants.push(Grant {
            hsa_id: hsa_id.clone(),
            name,
        });
        self.store.register(
            code,
            &registered,
            &principal.recorded_as(),
            &format!("portal access granted to {hsa_id}"),
        )?;
        Ok(Reply::Grants(GrantsNow {
            kommunkod: code,
            grants: registered.grants,
        }))
    }

    pub(super) fn revoke(
        &self,
        principal: &Principal,
        code: Kommunkod,
        hsa_id: String,
    ) -> Result<Reply, ServiceError> {
        self.seed.require(code)?;
        let _guard = self.lock_registry();
        let mut registered = self.store.registered(code)?;
        let before = registered.grants.len();
        registered.grants.retain(|g| g.hsa_id != hsa_id);
        if registered.grants.len() == before {
            return Err(ServiceError::NoSuchGrant { code, hsa_id });
        }
        self.store.register(
            code,
            &registered,
            &principal.recorded_as(),
            &format!("portal access revoked for {hsa_id}"),
        )?;
        Ok(Reply::Grants(GrantsNow {
            kommunkod: code,
            grants: registered.grants,
        }))
    }

    /// The municipalities the person may manage.
    pub(super) fn mine(&self, principal: &Principal) -> Result<Reply, ServiceError> {
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
        Ok(Reply::Mine(mine))
    }

    /// Applies a CSV file: every row is checked first; with errors or `dry_run` nothing is
    /// written.
    pub(super) fn import(
        &self,
        principal: &Principal,
        text: &str,
        dry_run: bool,
    ) -> Result<Reply, ServiceError> {
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
                        planned.push((code, after, changed));
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
            for (code, after, _) in &planned {
                self.store.register(*code, after, &operator, "import")?;
            }
            tracing::info!(municipalities = planned.len(), operator = %operator, "registrations imported");
        }
        Ok(Reply::Imported(ImportSummary {
            dry_run,
            municipalities: planned
                .into_iter()
                .map(|(kommunkod, _, changes)| MunicipalityChanges { kommunkod, changes })
                .collect(),
        }))
    }

    pub(super) fn export(&self) -> Result<Reply, ServiceError> {
        let all = self.store.all_registered()?;
        let text = bulk::export(&all).map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(Reply::Exported(text))
    }
}
