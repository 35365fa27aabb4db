//! Print batches and their letters: what the print shop's manifest lists. A letter is recorded
//! in the same transaction as its job's step (a [`SideWrite`]), so a batch never names a letter
//! the store does not know.

use super::*;

/// One letter as the print shop's manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LetterRow {
    /// Batch id.
    pub batch: String,
    /// PDF file name in the batch directory.
    pub file: String,
    /// The job.
    pub job_id: JobId,
    /// The recipient municipality.
    pub kommunkod: Kommunkod,
    /// Assigned municipality or copy.
    pub role: RecipientRole,
    /// Recipient name line.
    pub namn: String,
    /// c/o line.
    pub care_of: String,
    /// Street or box.
    pub adress: String,
    /// Second street line.
    pub lagenhet: String,
    /// `nnn nn`.
    pub postnummer: String,
    /// Postort.
    pub postort: String,
    /// Pages including the cover letter.
    pub pages: u32,
    /// SHA-256 of the PDF.
    pub sha256: String,
    /// The address was unknown; the letter goes to the registry office.
    pub address_missing: bool,
}

/// A print batch: a directory of letters the print shop takes once it is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRecord {
    /// Directory name under `spool/print/`, e.g. `20261122-001`.
    pub id: String,
    /// The Stockholm calendar day the batch belongs to, `YYYY-MM-DD`.
    pub day: String,
    /// When it was opened.
    pub opened_at: Timestamp,
    /// Letters in it.
    pub letters: u32,
    /// When it was closed, if it was.
    pub closed_at: Option<Timestamp>,
    /// The print shop's confirmation that every letter in it was printed and posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<BatchConfirmation>,
    /// When retention removed its folder from `spool/print/` (the letters' facts stay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_removed_at: Option<Timestamp>,
}

/// Who confirmed a batch printed and posted, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchConfirmation {
    /// Who confirmed it (the operator or the print shop's account).
    pub by: String,
    /// When.
    pub at: Timestamp,
}

pub(super) fn letter_key(batch: &str, file: &str) -> Vec<u8> {
    let mut key = batch.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(file.as_bytes());
    key
}

impl Store {
    /// The batch letters currently go into, if one is open.
    pub fn open_batch(&self) -> Result<Option<BatchRecord>, StoreError> {
        let Some(id) = self.meta.get(b"open_batch")? else {
            return Ok(None);
        };
        self.batch(&String::from_utf8_lossy(&id))
    }

    /// One batch by id.
    pub fn batch(&self, id: &str) -> Result<Option<BatchRecord>, StoreError> {
        match self.batches.get(id.as_bytes())? {
            Some(bytes) => Ok(Some(decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Ids of all batches that start with `day_prefix` (e.g. `20261122-`), to number a new one.
    pub fn batch_ids_with_prefix(&self, day_prefix: &str) -> Result<Vec<String>, StoreError> {
        self.batches
            .scan_prefix(day_prefix.as_bytes())
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?).to_string()))
            .collect()
    }

    /// Records a new batch and makes it the open one.
    pub fn open_new_batch(&self, batch: &BatchRecord) -> Result<(), StoreError> {
        let result = {
            let _gate = self.gate();
            (&self.batches, &self.meta).transaction(|(batches, meta)| {
                batches.insert(batch.id.as_bytes(), tx_encode(batch)?)?;
                meta.insert(b"open_batch".as_slice(), batch.id.as_bytes())?;
                Ok(())
            })
        };
        unwrap_tx(result)?;
        self.flush()
    }

    /// Marks a batch closed; it is no longer the open one.
    pub fn close_batch(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        let result = {
            let _gate = self.gate();
            (&self.batches, &self.meta).transaction(|(batches, meta)| {
                if let Some(bytes) = batches.get(id.as_bytes())? {
                    let mut batch: BatchRecord = tx_decode(&bytes)?;
                    batch.closed_at = Some(at);
                    batches.insert(id.as_bytes(), tx_encode(&batch)?)?;
                }
                if meta.get(b"open_batch")?.as_deref() == Some(id.as_bytes()) {
                    meta.remove(b"open_batch".as_slice())?;
                }
                Ok(())
            })
        };
        unwrap_tx(result)?;
        self.flush()
    }

    /// Every batch, oldest first (ids begin with their day).
    pub fn batches(&self) -> Result<Vec<BatchRecord>, StoreError> {
        self.batches.iter().map(|item| decode(&item?.1)).collect()
    }

    /// Records the print shop's confirmation of a closed batch; returns the batch as it was
    /// before (its `confirmed` says whether it had been confirmed already).
    pub fn confirm_batch(
        &self,
        id: &str,
        confirmation: &BatchConfirmation,
    ) -> Result<Option<BatchRecord>, StoreError> {
        let result = {
            let _gate = self.gate();
            self.batches.transaction(|batches| {
                let Some(bytes) = batches.get(id.as_bytes())? else {
                    return Ok(None);
                };
                let before: BatchRecord = tx_decode(&bytes)?;
                if before.closed_at.is_some() && before.confirmed.is_none() {
                    let mut after = before.clone();
                    after.confirmed = Some(confirmation.clone());
                    batches.insert(id.as_bytes(), tx_encode(&after)?)?;
                }
                Ok(Some(before))
            })
        };
        let before = unwrap_tx(result)?;
        self.flush()?;
        Ok(before)
    }

    /// Notes that retention removed a batch's folder.
    pub fn note_batch_removed(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        let result = {
            let _gate = self.gate();
            self.batches.transaction(|batches| {
                if let Some(bytes) = batches.get(id.as_bytes())? {
                    let mut batch: BatchRecord = tx_decode(&bytes)?;
                    batch.files_removed_at = Some(at);
                    batches.insert(id.as_bytes(), tx_encode(&batch)?)?;
                }
                Ok(())
            })
        };
        unwrap_tx(result)?;
        self.flush()
    }

    /// The letters of one batch, in file-name order.
    pub fn letters(&self, batch: &str) -> Result<Vec<LetterRow>, StoreError> {
        self.letters
            .scan_prefix(prefix(batch))
            .map(|item| decode(&item?.1))
            .collect()
    }
}
