//! What is registered about each municipality (with its history), operators' holds and the
//! relay's health. Registrations are read from a cache that only [`Store::register`] replaces.

use super::*;

pub use kurir_protocol::registry::HoldNote;

/// Consecutive failures of the relay itself and when it may be tried again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayHealth {
    /// Failures in a row (connect, TLS).
    pub failures: u32,
    /// No attempt before this instant.
    pub retry_at: Option<Timestamp>,
    /// The last failure, in words.
    pub last_error: Option<String>,
}

use crate::registry::{changed_fields, RegistryAction};

impl Store {
    /// What has been registered for a municipality (default: nothing). Read for every job
    /// (routing, message, letter), so it is kept decoded in memory; [`Store::register`] is the
    /// only writer and replaces it there.
    pub fn registered(&self, code: Kommunkod) -> Result<Registered, StoreError> {
        // The lock is held across a miss's read so a concurrent `register` cannot be undone
        // by a stale value put back after it.
        let mut cache = self
            .registry_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(registered) = cache.get(&code) {
            return Ok(registered.clone());
        }
        let registered = match self.registry.get(code.as_str().as_bytes())? {
            Some(bytes) => decode(&bytes)?,
            None => Registered::default(),
        };
        cache.insert(code, registered.clone());
        Ok(registered)
    }

    /// Replaces a municipality's registration, keeping the previous value in its history.
    /// `action` says what was done (the history keeps it as a value and in English words).
    pub fn register(
        &self,
        code: Kommunkod,
        after: &Registered,
        operator: &str,
        action: &RegistryAction,
    ) -> Result<RegistryChange, StoreError> {
        self.register_notifying(code, after, operator, action, &[])
    }

    /// [`Store::register`], queueing `notices` in the same transaction: a change that must be
    /// announced cannot be recorded without its announcement.
    pub fn register_notifying(
        &self,
        code: Kommunkod,
        after: &Registered,
        operator: &str,
        action: &RegistryAction,
        notices: &[Notice],
    ) -> Result<RegistryChange, StoreError> {
        let change = self.register_change(code, after, operator, action, notices)?;
        if !notices.is_empty() {
            self.notices_wanted.notify_one();
        }
        Ok(change)
    }

    /// The one writer of registrations: the registration, its history entry, its audit
    /// entry and the notices it calls for, in one transaction.
    fn register_change(
        &self,
        code: Kommunkod,
        after: &Registered,
        operator: &str,
        action: &RegistryAction,
        notices: &[Notice],
    ) -> Result<RegistryChange, StoreError> {
        let at = Timestamp::now();
        let what = action.to_string();
        let mut cache = self
            .registry_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let trees = (
            &self.registry,
            &self.registry_history,
            &self.audit,
            &self.meta,
            &self.notices,
        );
        let gate = self.gate();
        let result = trees.transaction(
            |(reg, history, audit_tree, meta, notices_tree)| {
            Store::queue_notices(notices_tree, meta, notices)?;
            let before: Registered = match reg.get(code.as_str().as_bytes())? {
                Some(bytes) => tx_decode(&bytes)?,
                None => Registered::default(),
            };
            let change = RegistryChange {
                at,
                operator: operator.to_string(),
                what: what.clone(),
                action: Some(action.clone()),
                before,
                after: after.clone(),
                notice: notices.first().map(|n| crate::registry::NoticeRef {
                    to: n.to.clone(),
                    subject: n.subject.clone(),
                }),
            };
            reg.insert(code.as_str().as_bytes(), tx_encode(after)?)?;
            let mut key = prefix(code.as_str());
            key.extend_from_slice(&at.as_nanosecond().to_be_bytes());
            history.insert(key, tx_encode(&change)?)?;
            audit::append(
                audit_tree,
                meta,
                &self.integrity,
                audit::Draft {
                    kind: AuditKind::Registry,
                    job_id: None,
                    kommunkod: Some(code),
                    state: None,
                    operator: Some(operator.to_string()),
                    action: what.clone(),
                    data: serde_json::json!({ "fields": changed_fields(&change.before, &change.after) }),
                },
                at,
            )?;
            Ok(change)
        });
        let change = unwrap_tx(result);
        drop(gate);
        // Dropped on failure too: the next read goes to sled.
        cache.remove(&code);
        let change = change?;
        cache.insert(code, after.clone());
        drop(cache);
        self.flush()?;
        Ok(change)
    }

    /// Every municipality with a registration, in code order.
    pub fn all_registered(&self) -> Result<Vec<(Kommunkod, Registered)>, StoreError> {
        let mut out = Vec::new();
        for item in self.registry.iter() {
            let (key, value) = item?;
            if let Ok(code) = String::from_utf8_lossy(&key).parse::<Kommunkod>() {
                out.push((code, decode(&value)?));
            }
        }
        Ok(out)
    }

    /// Municipalities an operator has put on hold, with who and why.
    pub fn holds(&self) -> Result<Vec<(Kommunkod, HoldNote)>, StoreError> {
        let mut out = Vec::new();
        for item in self.meta.scan_prefix(b"hold:") {
            let (key, value) = item?;
            let code = String::from_utf8_lossy(&key[5..]).to_string();
            if let Ok(code) = code.parse::<Kommunkod>() {
                out.push((code, decode(&value)?));
            }
        }
        Ok(out)
    }

    /// Puts a municipality on hold (`Some`) or releases it (`None`).
    pub fn set_hold(&self, code: Kommunkod, note: Option<&HoldNote>) -> Result<(), StoreError> {
        let key = format!("hold:{code}");
        let gate = self.gate();
        match note {
            Some(n) => {
                self.meta.insert(key.as_bytes(), encode(n)?)?;
            }
            None => {
                self.meta.remove(key.as_bytes())?;
            }
        }
        drop(gate);
        self.flush()
    }

    /// The relay's recent failures: kept in the store so that a restart does not forget that
    /// the relay is down and hammer it.
    pub fn relay_health(&self) -> Result<RelayHealth, StoreError> {
        match self.meta.get(b"relay_health")? {
            Some(bytes) => decode(&bytes),
            None => Ok(RelayHealth::default()),
        }
    }

    /// Records the relay's health (not flushed: losing it costs one extra attempt).
    pub fn set_relay_health(&self, health: &RelayHealth) -> Result<(), StoreError> {
        let _gate = self.gate();
        self.meta
            .insert(b"relay_health".as_slice(), encode(health)?)?;
        Ok(())
    }

    /// Every change to a municipality's registration, oldest first.
    pub fn registry_history(&self, code: Kommunkod) -> Result<Vec<RegistryChange>, StoreError> {
        self.registry_history
            .scan_prefix(prefix(code.as_str()))
            .map(|item| decode(&item?.1))
            .collect()
    }
}
