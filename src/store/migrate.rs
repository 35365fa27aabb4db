//! Records written by an earlier release, brought to this release's format when the store
//! opens — once, in one transaction, before anything else reads them — and a store written by
//! a newer release refused rather than misread.
//!
//! Format 1 (kurir 0.1.0) → 2: a job's alerts were strings (`fell-back`, `fell-back:2584`,
//! `unread:0180`) and are now typed marks; report kinds and attempt outcomes, strings then,
//! are enums with the same names; the receipt writer's index (`receipts_owed`) and the open alerts' (`open_alerts`) are
//! built.
//! Reading accepts both formats ([`super::decode`]), so a half-written migration (there is
//! none: it is one transaction) or a journal left by 0.1.0 is read as well.

use super::*;

/// The key in `meta` that names the store's format (absent: format 1, kurir 0.1.0).
const FORMAT_KEY: &[u8] = b"format";

/// The file beside the store that tells tools outside kurir which format the store is in and
/// the oldest kurir that reads it: the package's `prerm` refuses a downgrade below it, since
/// an older kurir (0.1.0 knows nothing of formats) would misread the store.
pub const FORMAT_NOTE: &str = "FORMAT";

/// The oldest kurir that reads a store of this release's format.
pub const READABLE_BY: &str = "0.2.0";

/// A job record kept in every store of this format so that kurir 0.1.0, put back by a
/// downgrade, stops at start with its own clear error ("job store value has format version
/// 2; this kurir reads version 1") instead of running on records it would misread: 0.1.0
/// reads every job its `pending` index names when it starts. This release passes it over.
pub const DOWNGRADE_GUARD: &str = "19700101-000000-000000000000";

impl Store {
    /// The store's format, as its `meta` says.
    pub fn format(&self) -> Result<u32, StoreError> {
        Ok(match self.meta.get(FORMAT_KEY)? {
            Some(bytes) => bytes
                .as_ref()
                .try_into()
                .map(u32::from_be_bytes)
                .unwrap_or(u32::MAX),
            None => OLDEST_FORMAT,
        })
    }

    /// Writes [`FORMAT_NOTE`] in the state folder `dir` when it does not say this format, and
    /// keeps the [`DOWNGRADE_GUARD`] record in place.
    pub(super) fn note_format(&self, dir: &Path) -> Result<(), StoreError> {
        let guard = DOWNGRADE_GUARD.as_bytes();
        let id: Option<JobId> = DOWNGRADE_GUARD.parse().ok();
        if let (Some(id), None) = (id, self.jobs.get(guard)?) {
            let now = Timestamp::now();
            let mut record = JobRecord::received(
                id,
                &format!(
                    "not a job: a store in format {FORMAT_VERSION} (kurir {READABLE_BY} or newer)"
                ),
                now,
            );
            record.cancel();
            record.receipt_written = true;
            let _gate = self.gate();
            self.jobs.insert(guard, encode(&record)?)?;
            self.pending.insert(guard, &[])?;
        }
        let note = format!("format={FORMAT_VERSION}\nreadable-by={READABLE_BY}\n");
        let path = dir.join(FORMAT_NOTE);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(note.as_str()) {
            crate::fsutil::write_atomic(&path, note.as_bytes()).map_err(StoreError::FormatNote)?;
        }
        Ok(())
    }

    /// Marks a store made just now as being in this release's format, so that nothing is
    /// migrated (format 1 is only what a store *without* the mark was written by).
    pub(super) fn create_in_current_format(&self) -> Result<(), StoreError> {
        self.meta
            .insert(FORMAT_KEY, &FORMAT_VERSION.to_be_bytes())?;
        self.flush()?;
        tracing::info!(format = FORMAT_VERSION, "new store created");
        Ok(())
    }

    /// Refuses a store a newer kurir migrated.
    pub(super) fn refuse_newer(&self) -> Result<(), StoreError> {
        let found = self.format()?;
        if found > FORMAT_VERSION {
            return Err(StoreError::NewerStore { found });
        }
        Ok(())
    }

    /// Rewrites every job record of an older format in this one and builds the indexes the
    /// older release did not keep. Returns how many records it rewrote (0: nothing to do).
    pub(super) fn migrate(&self) -> Result<usize, StoreError> {
        let from = self.format()?;
        if from >= FORMAT_VERSION {
            return Ok(0);
        }
        let mut records = Vec::new();
        for item in self.jobs.iter() {
            let (key, value) = item?;
            let record: JobRecord = decode(&value)?;
            records.push((key, record));
        }
        let result = (
            &self.jobs,
            &self.receipts_owed,
            &self.open_alerts,
            &self.meta,
        )
            .transaction(|(jobs, owed, open_alerts, meta)| {
                for (key, record) in &records {
                    jobs.insert(key.as_ref(), tx_encode(record)?)?;
                    if record.owes_receipt() {
                        owed.insert(key.as_ref(), &[])?;
                    }
                    for mark in record.open_alerts() {
                        open_alerts.insert(mark.index_key(&record.id), &[])?;
                    }
                }
                meta.insert(FORMAT_KEY, &FORMAT_VERSION.to_be_bytes())?;
                Ok(())
            });
        unwrap_tx(result)?;
        self.flush()?;
        tracing::info!(
            from,
            to = FORMAT_VERSION,
            jobs = records.len(),
            "store migrated to this release's format"
        );
        Ok(records.len())
    }
}
