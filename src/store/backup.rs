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

/// Marks this thread as holding the gate until dropped (also when a write callback panics).
struct HoldsGate;

impl HoldsGate {
    fn set() -> HoldsGate {
        HOLDS_GATE.with(|h| h.set(true));
        HoldsGate
    }
}

impl Drop for HoldsGate {
    fn drop(&mut self) {
        HOLDS_GATE.with(|h| h.set(false));
    }
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

    /// Reads every tree at one instant, journal applied, into memory (tree name and its
    /// entries, every tree even when empty). Writers wait only while sled is read, never while
    /// a backup's files are written.
    pub fn snapshot(&self) -> Result<(SnapshotInfo, Vec<(String, TreeEntries)>), StoreError> {
        // First what is journaled now, without stopping anyone; then the rest under the locks.
        self.flush()?;
        let _journal = self.journal.lock();
        let _gate = self.gate.write().unwrap_or_else(|p| p.into_inner());
        let _holds = HoldsGate::set();
        let unapplied = self.lock_unapplied().clone();
        self.apply_unapplied(&unapplied)?;
        let taken_at = Timestamp::now();
        // sled's default tree is not used by kurir.
        let mut names: Vec<Vec<u8>> = self
            .db
            .tree_names()
            .into_iter()
            .filter(|n| !n.starts_with(b"__sled__"))
            .map(|n| n.to_vec())
            .collect();
        names.sort();
        let mut trees = Vec::with_capacity(names.len());
        for name in names {
            let tree = self.db.open_tree(&name)?;
            let entries = tree
                .iter()
                .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect::<Result<TreeEntries, _>>()?;
            trees.push((String::from_utf8_lossy(&name).to_string(), entries));
        }
        let head = self.meta.get(b"audit_head")?.and_then(|b| {
            let v: serde_json::Value = serde_json::from_slice(&b).ok()?;
            Some((v["seq"].as_u64()?, v["hash"].as_str()?.to_string()))
        });
        let info = SnapshotInfo {
            taken_at,
            // Less the downgrade guard, which is not a job.
            jobs: self.jobs.len().saturating_sub(1),
            audit_head: head,
        };
        Ok((info, trees))
    }

    /// The jobs of a snapshot that are not finished: their documents are still to be sent.
    pub fn unfinished_in(trees: &[(String, TreeEntries)]) -> Result<Vec<JobId>, StoreError> {
        let guard = super::migrate::DOWNGRADE_GUARD.as_bytes();
        let mut out = Vec::new();
        for (key, value) in trees
            .iter()
            .filter(|(name, _)| name == "jobs")
            .flat_map(|(_, entries)| entries)
        {
            if key.as_slice() == guard {
                continue;
            }
            let job: JobRecord = decode(value)?;
            if !job.state.is_final() {
                out.push(job.id);
            }
        }
        Ok(out)
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
