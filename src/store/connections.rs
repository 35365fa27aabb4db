//! Connection checks of municipalities' mail servers, kept with their history by domain: the
//! key is the domain, a zero byte and the check's time (big-endian), so a domain's checks sort
//! oldest first and its latest is the last under its prefix. Routing reads the latest for every
//! job, so it is kept decoded in memory; [`Store::record_check`] is the only writer.

use super::*;
use crate::registry::connection::{standing, ConnectionCheck, Standing};
use crate::registry::Registered;
use jiff::SignedDuration;

/// How many checks are kept per domain (a month of daily checks, and then some).
pub const CHECKS_KEPT_PER_DOMAIN: usize = 60;

/// What routing asks of the connection: whether checks are required and how old a passing one
/// may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionRule {
    /// E-mail needs a passing check (`[connection] required`).
    pub required: bool,
    /// How old it may be (`[connection] max_age`).
    pub max_age: SignedDuration,
}

impl ConnectionRule {
    /// The rule of `[connection]`.
    pub fn from_settings(settings: &crate::config::ConnectionSettings) -> ConnectionRule {
        ConnectionRule {
            required: settings.required,
            max_age: SignedDuration::try_from(settings.max_age)
                .unwrap_or(SignedDuration::from_hours(24 * 7)),
        }
    }
}

fn prefix(domain: &str) -> Vec<u8> {
    let mut key = domain.as_bytes().to_vec();
    key.push(0);
    key
}

impl Store {
    /// Keeps a check (flushed before it returns), and the oldest beyond
    /// [`CHECKS_KEPT_PER_DOMAIN`] go.
    pub fn record_check(&self, check: &ConnectionCheck) -> Result<(), StoreError> {
        let _gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
        let mut key = prefix(&check.domain);
        key.extend_from_slice(&check.checked_at.as_nanosecond().to_be_bytes());
        self.connection_checks.insert(key, encode(check)?)?;
        let keys: Vec<sled::IVec> = self
            .connection_checks
            .scan_prefix(prefix(&check.domain))
            .keys()
            .collect::<Result<_, _>>()?;
        for old in keys
            .iter()
            .take(keys.len().saturating_sub(CHECKS_KEPT_PER_DOMAIN))
        {
            self.connection_checks.remove(old)?;
        }
        self.connection_checks.flush()?;
        self.latest_checks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(check.domain.clone(), Some(check.clone()));
        Ok(())
    }

    /// The latest check of `domain`, if any.
    pub fn latest_check(&self, domain: &str) -> Result<Option<ConnectionCheck>, StoreError> {
        let mut cache = self.latest_checks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(latest) = cache.get(domain) {
            return Ok(latest.clone());
        }
        let latest = match self
            .connection_checks
            .scan_prefix(prefix(domain))
            .next_back()
        {
            Some(item) => Some(decode(&item?.1)?),
            None => None,
        };
        cache.insert(domain.to_string(), latest.clone());
        Ok(latest)
    }

    /// The checks of `domain`, newest first, at most `limit`.
    pub fn check_history(
        &self,
        domain: &str,
        limit: usize,
    ) -> Result<Vec<ConnectionCheck>, StoreError> {
        self.connection_checks
            .scan_prefix(prefix(domain))
            .values()
            .rev()
            .take(limit)
            .map(|v| decode(&v?))
            .collect()
    }

    /// Where a registration stands for routing, by the latest check of its active address's
    /// domain.
    pub fn connection_standing(
        &self,
        registered: &Registered,
        rule: ConnectionRule,
        now: Timestamp,
    ) -> Result<Standing, StoreError> {
        if !rule.required {
            return Ok(Standing::NotRequired);
        }
        let Some(address) = registered.active_address.as_deref() else {
            return Ok(Standing::NotChecked);
        };
        let latest = match crate::registry::connection::domain_of(address) {
            Some(domain) => self.latest_check(&domain)?,
            None => None,
        };
        Ok(standing(
            latest.as_ref(),
            address,
            now,
            rule.max_age,
            rule.required,
        ))
    }
}
