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
        let result = (&self.batches, &self.meta).transaction(|(batches, meta)| {
            batches.insert(batch.id.as_bytes(), tx_encode(batch)?)?;
            meta.insert(b"open_batch".as_slice(), batch.id.as_bytes())?;
            Ok(())
        });
        unwrap_tx(result)?;
        self.flush()
    }

    /// Marks a batch closed; it is no longer the open one.
    pub fn close_batch(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        let result = (&self.batches, &self.meta).transaction(|(batches, meta)| {
            if let Some(bytes) = batches.get(id.as_bytes())? {
                let mut batch: BatchRecord = tx_decode(&bytes)?;
                batch.closed_at = Some(at);
                batches.insert(id.as_bytes(), tx_encode(&batch)?)?;
            }
            if meta.get(b"open_batch")?.as_deref() == Some(id.as_bytes()) {
                meta.remove(b"open_batch".as_slice())?;
            }
            Ok(())
        });
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
