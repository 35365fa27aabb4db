//! The agency's own staff who may use the dispatch desk (`staff` tree: HSA-id → grant). Every
//! grant given or taken is an audit entry in the same transaction.

use super::*;
use crate::registry::StaffGrant;
use crate::store::audit::{append, AuditKind, Draft};

/// Within this time, a person's readings of one job's page count as one in the audit chain.
pub const VIEWS_COALESCE: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);

impl Store {
    /// The staff grant of `hsa_id`, if any.
    pub fn staff_grant(&self, hsa_id: &str) -> Result<Option<StaffGrant>, StoreError> {
        match self.staff.get(hsa_id.as_bytes())? {
            Some(bytes) => Ok(Some(decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Every staff grant, by HSA-id.
    pub fn all_staff(&self) -> Result<Vec<StaffGrant>, StoreError> {
        self.staff.iter().map(|item| decode(&item?.1)).collect()
    }

    /// Gives (`Some`) or takes (`None`) the desk grant of `hsa_id`, with its audit entry, as
    /// `operator`. Returns the grant it replaced.
    pub fn set_staff(
        &self,
        hsa_id: &str,
        grant: Option<&StaffGrant>,
        operator: &str,
    ) -> Result<Option<StaffGrant>, StoreError> {
        let at = Timestamp::now();
        let action = match grant {
            Some(g) => format!("desk access given to {hsa_id} as {}", g.role.as_str()),
            None => format!("desk access taken from {hsa_id}"),
        };
        let gate = self.gate();
        let result = (&self.staff, &self.audit, &self.meta).transaction(|(staff, audit, meta)| {
            let before: Option<StaffGrant> = match staff.get(hsa_id.as_bytes())? {
                Some(bytes) => Some(tx_decode(&bytes)?),
                None => None,
            };
            match grant {
                Some(g) => {
                    staff.insert(hsa_id.as_bytes(), tx_encode(g)?)?;
                }
                None => {
                    staff.remove(hsa_id.as_bytes())?;
                }
            }
            append(
                audit,
                meta,
                &self.integrity,
                Draft {
                    kind: AuditKind::Access,
                    job_id: None,
                    kommunkod: None,
                    state: None,
                    operator: Some(operator.to_string()),
                    action: action.clone(),
                    data: serde_json::json!({ "hsa_id": hsa_id, "role": grant.map(|g| g.role) }),
                },
                at,
            )?;
            Ok(before)
        });
        let before = unwrap_tx(result)?;
        drop(gate);
        self.flush()?;
        Ok(before)
    }

    /// Records that `operator` read job `id` on the desk (`what`: the page or the receipt):
    /// once per person, job and page within `VIEWS_COALESCE` — a page reloaded, or loaded
    /// many times over, is one reading, not one entry each.
    pub fn audit_view(&self, id: &JobId, operator: &str, what: &str) -> Result<(), StoreError> {
        let now = Timestamp::now();
        let key = (operator.to_string(), id.clone(), what.to_string());
        {
            let recent = self.recent_views.lock().unwrap_or_else(|p| p.into_inner());
            if recent
                .get(&key)
                .is_some_and(|at| now.duration_since(*at) < VIEWS_COALESCE)
            {
                return Ok(());
            }
        }
        // Remembered only once written: a reading the chain did not take is not coalesced.
        self.audit_operator(Draft {
            kind: AuditKind::View,
            job_id: Some(id.clone()),
            kommunkod: None,
            state: None,
            operator: Some(operator.to_string()),
            action: format!("{what} viewed on the dispatch desk"),
            data: serde_json::Value::Null,
        })?;
        let mut recent = self.recent_views.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() >= 10_000 {
            recent.retain(|_, at| now.duration_since(*at) < VIEWS_COALESCE);
        }
        recent.insert(key, now);
        Ok(())
    }

    /// Records that a person read a list of jobs on the dispatch desk: which list, whether
    /// they searched, and the jobs it showed them. The search itself stays out of the chain (it
    /// may be a case number, and a digest of one is found again by trying them all); the jobs
    /// shown say what the person learned.
    pub fn audit_list_view(
        &self,
        operator: &str,
        what: &str,
        searched: bool,
        shown: &[JobId],
    ) -> Result<(), StoreError> {
        self.audit_operator(Draft {
            kind: AuditKind::View,
            job_id: None,
            kommunkod: None,
            state: None,
            operator: Some(operator.to_string()),
            action: format!("{what} viewed on the dispatch desk"),
            data: serde_json::json!({ "searched": searched, "jobs": shown }),
        })
    }

    /// Records that `operator`, a member of staff on the desk, sent job `id`: in the audit
    /// chain, and where the desk's list reads who sent each job.
    pub fn record_desk_send(&self, id: &JobId, operator: &str) -> Result<(), StoreError> {
        self.senders
            .insert(id.as_str().as_bytes(), operator.as_bytes())?;
        self.audit_operator(Draft {
            kind: AuditKind::Operator,
            job_id: Some(id.clone()),
            kommunkod: None,
            state: None,
            operator: Some(operator.to_string()),
            action: "decision sent from the dispatch desk".into(),
            data: serde_json::Value::Null,
        })
    }

    /// Who on the desk sent job `id`, if it was sent from there.
    pub fn sender(&self, id: &JobId) -> Result<Option<String>, StoreError> {
        Ok(self
            .senders
            .get(id.as_str().as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The newest audit entry about job `id`: where the job stands in the chain (its
    /// sequence number and hash), for the receipt in the case file.
    pub fn audit_position(&self, id: &JobId) -> Result<Option<(u64, String)>, StoreError> {
        for item in self.audit.iter().rev() {
            let (_, bytes) = item?;
            let entry: crate::store::audit::AuditEntry = serde_json::from_slice(&bytes)?;
            if entry.job_id.as_ref() == Some(id) && entry.kind == AuditKind::Job {
                return Ok(Some((entry.seq, entry.hash)));
            }
        }
        Ok(None)
    }
}
