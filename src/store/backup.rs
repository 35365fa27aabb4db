//! A consistent snapshot of the whole store while the daemon runs, and a store made from one.
//!
//! Every write to sled passes a gate (a read lock around its transaction); a snapshot holds
//! the journal and then the gate for writing, applies what the journal holds that sled does
//! not yet, and reads every tree. Writers wait for those moments (jobs pause, nothing is
//! refused); the snapshot is the store as it stood at one instant, with its journal applied.
//! Lock order is always the journal before the gate, as a journaled transition takes them.

use std::cell::Cell;
use std::sync::RwLockReadGuard;

use super::*;

thread_local! {
    /// This thread holds the gate for writing (it is taking a snapshot): its own writes pass.
    static HOLDS_GATE: Cell<bool> = const { Cell::new(false) };
}

/// A tree's entries, key and value, in key order.
pub type TreeEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// What a snapshot held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// When it was taken.
    pub taken_at: Timestamp,
    /// Jobs in it.
    pub jobs: usize,
    /// The newest audit entry in it: sequence and hash.
    pub audit_head: Option<(u64, String)>,
}

impl Store {
    /// Held around a write's transaction: waits while a snapshot is taken.
    pub(super) fn gate(&self) -> Option<RwLockReadGuard<'_, ()>> {
        if HOLDS_GATE.with(Cell::get) {
            return None;
        }
        Some(self.gate.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Reads every tree at one instant, journal applied, handing each entry to `write` (tree
    /// name, key, value). Writers wait meanwhile.
    pub fn snapshot(
        &self,
        mut write: impl FnMut(&str, &[u8], &[u8]) -> std::io::Result<()>,
    ) -> Result<SnapshotInfo, StoreError> {
        // First what is journaled now, without stopping anyone; then the rest under the locks.
        self.flush()?;
        let _journal = self.journal.lock();
        let _gate = self.gate.write().unwrap_or_else(|p| p.into_inner());
        HOLDS_GATE.with(|h| h.set(true));
        let result = (|| {
            let unapplied = self.lock_unapplied().clone();
            self.apply_unapplied(&unapplied)?;
            let taken_at = Timestamp::now();
            let mut names: Vec<Vec<u8>> = self
                .db
                .tree_names()
                .into_iter()
                .map(|n| n.to_vec())
                .collect();
            names.sort();
            for name in names {
                let tree_name = String::from_utf8_lossy(&name).to_string();
                let tree = self.db.open_tree(&name)?;
                for item in tree.iter() {
                    let (key, value) = item?;
                    write(&tree_name, &key, &value).map_err(StoreError::Backup)?;
                }
            }
            let head = self.meta.get(b"audit_head")?.and_then(|b| {
                let v: serde_json::Value = serde_json::from_slice(&b).ok()?;
                Some((v["seq"].as_u64()?, v["hash"].as_str()?.to_string()))
            });
            Ok(SnapshotInfo {
                taken_at,
                // Less the downgrade guard, which is not a job.
                jobs: self.jobs.len().saturating_sub(1),
                audit_head: head,
            })
        })();
        HOLDS_GATE.with(|h| h.set(false));
        result
    }

    /// Makes a store in `dir` (which must hold none) from a snapshot's trees, then opens it
    /// (records of an older format are migrated as on any open).
    pub fn from_snapshot(
        dir: &Path,
        trees: impl IntoIterator<Item = (String, TreeEntries)>,
    ) -> Result<Store, StoreError> {
        if dir.join("db").exists() {
            return Err(StoreError::Backup(std::io::Error::other(format!(
                "{} holds a store already",
                dir.display()
            ))));
        }
        {
            let db = sled::Config::new().path(dir.join("db")).open()?;
            for (name, entries) in trees {
                let tree = db.open_tree(name.as_bytes())?;
                let mut batch = sled::Batch::default();
                for (key, value) in entries {
                    batch.insert(key, value);
                }
                tree.apply_batch(batch)?;
            }
            db.flush()?;
        }
        Store::open(dir)
    }
}
