//! Notices to municipalities waiting to be sent: a change of where decisions go, announced to
//! the previously proven address and the contact persons, or a certificate about to expire.
//! Queued in the same transaction as the change that calls for them, so a notice cannot be
//! lost between the change and its sending; sent by the daemon's notifier, which retries.

use super::*;

/// A notice to a municipality's people, signed by the agency when it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The municipality it concerns.
    pub kommunkod: Kommunkod,
    /// Who gets it.
    pub to: Vec<String>,
    /// Its subject (no personal data: the municipality and what changed).
    pub subject: String,
    /// Its text.
    pub body: String,
    /// When it was queued.
    pub at: Timestamp,
    /// The addresses it has reached.
    #[serde(default)]
    pub sent: Vec<String>,
    /// Attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// Not tried again before this.
    pub next_attempt: Timestamp,
    /// The last failure, for operations.
    #[serde(default)]
    pub last_error: Option<String>,
}

impl Notice {
    /// The addresses it has still to reach.
    pub fn unsent(&self) -> Vec<String> {
        self.to
            .iter()
            .filter(|a| !self.sent.contains(a))
            .cloned()
            .collect()
    }
}

fn notice_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

impl Store {
    /// Notices due at `now`, oldest first, with their keys.
    pub fn due_notices(&self, now: Timestamp) -> Result<Vec<(u64, Notice)>, StoreError> {
        let mut out = Vec::new();
        for item in self.notices.iter() {
            let (key, value) = item?;
            let notice: Notice = decode(&value)?;
            let seq = key.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
            if notice.next_attempt <= now {
                out.push((seq, notice));
            }
        }
        Ok(out)
    }

    /// Every notice still waiting (for `doctor` and the metrics).
    pub fn waiting_notices(&self) -> Result<usize, StoreError> {
        Ok(self.notices.len())
    }

    /// Records how far a notice got (flushed).
    pub fn update_notice(&self, seq: u64, notice: &Notice) -> Result<(), StoreError> {
        {
            let _gate = self.gate();
            self.notices.insert(notice_key(seq), encode(notice)?)?;
        }
        self.flush()
    }

    /// A notice reached everyone: it leaves the queue, and the audit chain says so (who got
    /// it and what it was called), in one transaction. (The change's own history entry names
    /// the notice already.)
    pub fn finish_notice(&self, seq: u64, notice: &Notice) -> Result<(), StoreError> {
        let gate = self.gate();
        let result =
            (&self.notices, &self.audit, &self.meta).transaction(|(notices, audit_tree, meta)| {
                notices.remove(&seq.to_be_bytes())?;
                audit::append(
                    audit_tree,
                    meta,
                    &self.integrity,
                    audit::Draft {
                        kind: AuditKind::Registry,
                        job_id: None,
                        kommunkod: Some(notice.kommunkod),
                        state: None,
                        operator: Some("kurir".into()),
                        action: format!("notice sent: {}", notice.subject),
                        data: serde_json::json!({ "recipients": notice.sent.len() }),
                    },
                    Timestamp::now(),
                )?;
                Ok(())
            });
        unwrap_tx(result)?;
        drop(gate);
        self.flush()
    }

    /// Queues notices in their own transaction (a certificate's expiry notices).
    pub(super) fn queue_notices(
        notices_tree: &TransactionalTree,
        meta: &TransactionalTree,
        notices: &[Notice],
    ) -> TxResult<()> {
        for notice in notices {
            let seq = match meta.get(b"notice_seq")? {
                Some(bytes) => bytes
                    .as_ref()
                    .try_into()
                    .map(u64::from_be_bytes)
                    .unwrap_or(0),
                None => 0,
            } + 1;
            meta.insert(b"notice_seq".as_slice(), &seq.to_be_bytes())?;
            notices_tree.insert(&notice_key(seq), tx_encode(notice)?)?;
        }
        Ok(())
    }
}
