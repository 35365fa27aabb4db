//! The audit log: every state change, registry change and operator action, appended to a hash
//! chain in the store — in the same transaction as the change it records.
//!
//! Each entry holds the SHA-256 of the previous entry, and its own hash covers its content and
//! that link. Changing, removing or reordering any entry breaks the chain at that point, which
//! `kurir audit verify` reports. Entries carry job ids, kommunkoder, states, operators and
//! document hashes — never document content, case numbers or the names of people.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sled::transaction::{TransactionalTree, UnabortableTransactionError};

use crate::job::{JobId, Kommunkod};
use crate::store::seal::IntegrityKey;
use crate::store::state::JobState;
use crate::store::{unwrap_tx, Store, StoreError};
use sled::Transactional;

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditKind {
    /// A job's state changed (including changes made by operators).
    Job,
    /// A municipality's registration changed.
    Registry,
    /// An operator action that is not a job transition (e.g. a quarantine deletion).
    Operator,
    /// Who may use the dispatch desk changed (a staff grant given or taken).
    Access,
    /// A person read a job on the dispatch desk: reading decisions about children is logged
    /// like changing them.
    View,
}

/// One entry of the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When.
    pub at: Timestamp,
    /// What kind of change.
    pub kind: AuditKind,
    /// The job, for job entries.
    pub job_id: Option<JobId>,
    /// The municipality concerned.
    pub kommunkod: Option<Kommunkod>,
    /// The job's state after the change.
    pub state: Option<JobState>,
    /// Who, for operator and registry changes.
    pub operator: Option<String>,
    /// What happened, in words.
    pub action: String,
    /// Facts worth proving later (document hashes, changed field names).
    pub data: Value,
    /// Hash of the previous entry.
    pub prev: String,
    /// Hash of this entry (over everything above).
    pub hash: String,
}

/// An entry before it is placed in the chain.
#[derive(Debug, Clone)]
pub struct Draft {
    /// What kind of change.
    pub kind: AuditKind,
    /// The job.
    pub job_id: Option<JobId>,
    /// The municipality.
    pub kommunkod: Option<Kommunkod>,
    /// The state after the change.
    pub state: Option<JobState>,
    /// Who.
    pub operator: Option<String>,
    /// What happened.
    pub action: String,
    /// Facts worth proving later.
    pub data: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Head {
    seq: u64,
    hash: String,
    /// The head's seal under the integrity key ([`super::seal`]); empty in a store of
    /// kurir 0.2.0, sealed when it opens.
    #[serde(default)]
    seal: String,
}

const HEAD_KEY: &[u8] = b"audit_head";

/// Set once the chain's head has been sealed: from then on an unsealed head is a rewrite.
const SEALED_KEY: &[u8] = b"audit_sealed";

/// What the integrity key seals here (a seal of a head stands for nothing else).
const SEAL_PURPOSE: &str = "kurir audit chain head";

fn head_seal(key: &IntegrityKey, seq: u64, hash: &str) -> String {
    key.seal(SEAL_PURPOSE, format!("{seq}\n{hash}").as_bytes())
}

/// The hash an entry must carry: over its content (with `hash` empty) and its link.
pub fn entry_hash(entry: &AuditEntry) -> String {
    let mut unhashed = entry.clone();
    unhashed.hash = String::new();
    let body = serde_json::to_vec(&unhashed).unwrap_or_default();
    let mut input = entry.prev.as_bytes().to_vec();
    input.push(b'\n');
    input.extend_from_slice(&body);
    crate::digest::sha256_hex(&input)
}

/// Appends `draft` to the chain inside a store transaction (`audit` tree, `meta` tree).
pub fn append(
    audit: &TransactionalTree,
    meta: &TransactionalTree,
    key: &IntegrityKey,
    draft: Draft,
    at: Timestamp,
) -> Result<(), UnabortableTransactionError> {
    let head: Head = meta
        .get(HEAD_KEY)?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Head {
            seq: 0,
            hash: GENESIS.to_string(),
            seal: String::new(),
        });
    let mut entry = AuditEntry {
        seq: head.seq + 1,
        at,
        kind: draft.kind,
        job_id: draft.job_id,
        kommunkod: draft.kommunkod,
        state: draft.state,
        operator: draft.operator,
        action: draft.action,
        data: draft.data,
        prev: head.hash,
        hash: String::new(),
    };
    entry.hash = entry_hash(&entry);
    let bytes = serde_json::to_vec(&entry).unwrap_or_default();
    audit.insert(&entry.seq.to_be_bytes(), bytes)?;
    let head = Head {
        seq: entry.seq,
        seal: head_seal(key, entry.seq, &entry.hash),
        hash: entry.hash.clone(),
    };
    meta.insert(HEAD_KEY, serde_json::to_vec(&head).unwrap_or_default())?;
    meta.insert(SEALED_KEY, &[1u8])?;
    Ok(())
}

/// The result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every link holds.
    Ok {
        /// How many entries.
        entries: u64,
    },
    /// The first entry where the chain breaks, and how.
    Broken {
        /// Its position.
        seq: u64,
        /// What is wrong.
        problem: String,
    },
}

/// Walks entries in order and checks every hash and link.
pub fn verify<I>(entries: I, head: Option<(u64, String)>) -> Verdict
where
    I: IntoIterator<Item = Result<(u64, Vec<u8>), String>>,
{
    let mut prev = GENESIS.to_string();
    let mut expected_seq = 1;
    for item in entries {
        let (key_seq, bytes) = match item {
            Ok(pair) => pair,
            Err(e) => {
                return Verdict::Broken {
                    seq: expected_seq,
                    problem: format!("cannot be read: {e}"),
                }
            }
        };
        if key_seq != expected_seq {
            return Verdict::Broken {
                seq: expected_seq,
                problem: format!("missing (the next entry is {key_seq})"),
            };
        }
        let entry: AuditEntry = match serde_json::from_slice(&bytes) {
            Ok(e) => e,
            Err(e) => {
                return Verdict::Broken {
                    seq: key_seq,
                    problem: format!("is not a valid entry: {e}"),
                }
            }
        };
        if entry.seq != key_seq {
            return Verdict::Broken {
                seq: key_seq,
                problem: format!("says it is entry {}", entry.seq),
            };
        }
        if entry.prev != prev {
            return Verdict::Broken {
                seq: key_seq,
                problem: "its link to the previous entry does not match (an entry before it was changed, removed or reordered)".into(),
            };
        }
        if entry_hash(&entry) != entry.hash {
            return Verdict::Broken {
                seq: key_seq,
                problem: "its content does not match its hash (the entry was changed)".into(),
            };
        }
        prev = entry.hash;
        expected_seq += 1;
    }
    let count = expected_seq - 1;
    if let Some((head_seq, head_hash)) = head {
        if head_seq != count || head_hash != prev {
            return Verdict::Broken {
                seq: count + 1,
                problem: format!("the chain ends at entry {count} but its head says {head_seq} (entries were removed from the end)"),
            };
        }
    }
    Verdict::Ok { entries: count }
}

/// The audit chain as the store keeps it: operator actions appended, the whole chain checked,
/// entries read for an export. Job and registry changes add their entries in their own
/// transactions.
impl Store {
    /// Appends an operator action that changes no job state (e.g. deleting a quarantined job).
    pub fn audit_operator(&self, draft: Draft) -> Result<(), StoreError> {
        let at = Timestamp::now();
        let gate = self.gate();
        let result = (&self.audit, &self.meta).transaction(|(audit_tree, meta)| {
            append(audit_tree, meta, &self.integrity, draft.clone(), at)?;
            Ok(())
        });
        unwrap_tx(result)?;
        drop(gate);
        self.flush()
    }

    /// Checks the whole audit chain: every link, and the head's seal under the integrity key
    /// (the links alone can be recomputed by whoever rewrote an entry; the seal cannot).
    pub fn verify_audit(&self) -> Result<Verdict, StoreError> {
        let head: Option<Head> = self
            .meta
            .get(HEAD_KEY)?
            .and_then(|b| serde_json::from_slice(&b).ok());
        let entries = self.audit.iter().map(|item| {
            item.map_err(|e| e.to_string()).map(|(k, v)| {
                let mut seq = [0u8; 8];
                seq.copy_from_slice(&k[..8.min(k.len())]);
                (u64::from_be_bytes(seq), v.to_vec())
            })
        });
        let verdict = verify(entries, head.as_ref().map(|h| (h.seq, h.hash.clone())));
        if let (Verdict::Ok { .. }, Some(head)) = (&verdict, &head) {
            let expected = head_seal(&self.integrity, head.seq, &head.hash);
            if !crate::digest::same_secret(&expected, &head.seal) {
                return Ok(Verdict::Broken {
                    seq: head.seq,
                    problem: "the chain's seal does not match: it was rewritten by someone \
                              without this store's integrity key, or the key is not the one \
                              it was written with"
                        .into(),
                });
            }
        }
        Ok(verdict)
    }

    /// Seals the head of a chain written before heads were sealed (kurir 0.2.0), once: from
    /// then on, a head without its seal is a rewrite.
    pub(super) fn seal_unsealed_audit_head(&self) -> Result<(), StoreError> {
        if self.meta.get(SEALED_KEY)?.is_some() {
            return Ok(());
        }
        let head: Option<Head> = self
            .meta
            .get(HEAD_KEY)?
            .and_then(|b| serde_json::from_slice(&b).ok());
        let _gate = self.gate();
        if let Some(mut head) = head {
            head.seal = head_seal(&self.integrity, head.seq, &head.hash);
            self.meta
                .insert(HEAD_KEY, serde_json::to_vec(&head).unwrap_or_default())?;
            tracing::info!(
                entries = head.seq,
                "audit chain sealed with the integrity key"
            );
        }
        self.meta.insert(SEALED_KEY, &[1u8])?;
        drop(_gate);
        self.flush()
    }

    /// Audit entries from `since` on, oldest first.
    pub fn audit_since(&self, since: Timestamp) -> Result<Vec<AuditEntry>, StoreError> {
        let mut out = Vec::new();
        for item in self.audit.iter() {
            let (_, bytes) = item?;
            let entry: AuditEntry = serde_json::from_slice(&bytes)?;
            if entry.at >= since {
                out.push(entry);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditEntry> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let mut e = AuditEntry {
                    seq,
                    at: Timestamp::UNIX_EPOCH,
                    kind: AuditKind::Job,
                    job_id: None,
                    kommunkod: None,
                    state: Some(JobState::Queued),
                    operator: None,
                    action: format!("event {seq}"),
                    data: Value::Null,
                    prev: prev.clone(),
                    hash: String::new(),
                };
                e.hash = entry_hash(&e);
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    fn feed(entries: &[AuditEntry]) -> Vec<Result<(u64, Vec<u8>), String>> {
        entries
            .iter()
            .map(|e| Ok((e.seq, serde_json::to_vec(e).expect("json"))))
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let c = chain(5);
        let head = Some((5, c[4].hash.clone()));
        assert_eq!(verify(feed(&c), head), Verdict::Ok { entries: 5 });
    }

    #[test]
    fn a_changed_entry_is_named() {
        let mut c = chain(5);
        c[2].action = "something else".into();
        assert!(matches!(
            verify(feed(&c), None),
            Verdict::Broken { seq: 3, .. }
        ));
    }

    #[test]
    fn a_removed_entry_is_named() {
        let mut c = chain(5);
        c.remove(1);
        assert!(matches!(
            verify(feed(&c), None),
            Verdict::Broken { seq: 2, .. }
        ));
        let c = chain(5);
        let head = Some((5, c[4].hash.clone()));
        assert!(matches!(
            verify(feed(&c[..4]), head),
            Verdict::Broken { seq: 5, .. }
        ));
    }
}
