//! What retention reads: jobs finished before a cutoff, oldest first, and forgetting them once
//! their documents are purged (the record and its hashes stay).

use super::*;

impl Store {
    /// Final jobs that finished before `before`, oldest first (for retention), each with its
    /// index key for [`Store::forget_finished`].
    pub fn finished_before(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, JobId)>, StoreError> {
        let end_ms = u64::try_from(before.as_millisecond()).unwrap_or(0);
        let mut out = Vec::new();
        for item in self.finished.range(..end_ms.to_be_bytes().to_vec()) {
            let (key, id) = item?;
            if let Ok(id) = String::from_utf8_lossy(&id).parse::<JobId>() {
                out.push((key.to_vec(), id));
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Drops an entry of the retention index once retention is done with it.
    pub fn forget_finished(&self, key: &[u8]) -> Result<(), StoreError> {
        let _gate = self.gate();
        self.finished.remove(key)?;
        Ok(())
    }
}
