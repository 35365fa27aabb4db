//! Receipts: `spool/receipts/<job-id>.json`, what the case system reads to learn what happened.
//!
//! A receipt is written atomically whenever a job reaches a final or hand-over state, and
//! again when a finished job's history grows (a delivery report, a read notification). It is
//! derived from the store alone, so it can be written again after a crash with the same
//! content. [`write_owed`] is the only writer.

use serde::Serialize;

use crate::fsutil;
use crate::job::{DocumentKind, JobId, Kommunkod, RecipientRole};
use crate::registry::Seed;
use crate::spool::Spool;
use crate::store::state::{EmailDelivery, Event, JobRecord, ProofReport, QuarantineInfo};
use crate::store::{Store, StoreError};

/// The receipt's JSON shape. Field names are a contract with the case system.
#[derive(Debug, Serialize)]
pub struct Receipt<'a> {
    /// The job.
    pub job_id: &'a JobId,
    /// The job directory's name as the writer dropped it.
    pub source: &'a str,
    /// Final or hand-over state.
    pub state: &'static str,
    /// `post`, `email`, `mixed`, or `-` for a quarantined job.
    pub channel: &'static str,
    /// A letter went to a registry office for want of an address.
    pub address_missing: bool,
    /// Each municipality and how it was reached.
    pub recipients: Vec<ReceiptRecipient>,
    /// Each document.
    pub documents: Vec<ReceiptDocument>,
    /// The first print batch used, if any.
    pub batch: Option<String>,
    /// Why the job was quarantined, if it was.
    pub quarantine: Option<&'a QuarantineInfo>,
    /// For a resubmission (a `submission_key` kurir had before): the job that has it, whose
    /// receipt says what became of it. This job was not sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<&'a JobId>,
    /// When kurir claimed the job.
    pub received_at: String,
    /// When it reached this state.
    pub finished_at: String,
    /// Every step, oldest first.
    pub events: &'a [Event],
}

/// One recipient in a receipt.
#[derive(Debug, Serialize)]
pub struct ReceiptRecipient {
    /// The municipality.
    pub kommunkod: Kommunkod,
    /// Its name.
    pub name: String,
    /// Assigned or copy.
    pub role: RecipientRole,
    /// `post` or `email`.
    pub channel: Option<&'static str>,
    /// Print batch of its letter.
    pub batch: Option<String>,
    /// Letter file in the batch.
    pub letter: Option<String>,
    /// Pages of the letter.
    pub letter_pages: Option<u32>,
    /// SHA-256 of the letter.
    pub letter_sha256: Option<String>,
    /// Addressed to the registry office for want of an address.
    pub address_missing: bool,
    /// When the print shop confirmed the letter printed and posted (`kurir print confirm`).
    pub printed_at: Option<String>,
    /// The e-mail address it was delivered to, if by e-mail.
    pub address: Option<String>,
    /// E-mail delivery: Message-ID, every attempt, and the proof (server reply with queue id,
    /// TLS version and cipher, server certificate SHA-256, S/MIME signing and encryption).
    pub email: Option<EmailDelivery>,
    /// E-mail was rejected permanently and the recipient got a letter instead.
    pub fell_back_to_post: bool,
    /// Delivery reports and read notifications back from the municipality's side, oldest
    /// first, each with the SHA-256 of the report as it arrived.
    pub reports: Vec<ProofReport>,
    /// `delivered` when the final server confirmed delivery, `relayed` (weaker proof: the next
    /// server offers no reports), or none yet.
    pub confirmed: Option<String>,
    /// When a read notification said the message was displayed.
    pub read_at: Option<String>,
}

/// One document in a receipt.
#[derive(Debug, Serialize)]
pub struct ReceiptDocument {
    /// Which document.
    pub kind: DocumentKind,
    /// Pages.
    pub pages: u32,
    /// Bytes.
    pub bytes: u64,
    /// SHA-256.
    pub sha256: String,
}

/// Builds the receipt for a job from its record and history.
pub fn build<'a>(record: &'a JobRecord, events: &'a [Event], seed: &Seed) -> Receipt<'a> {
    let recipients: Vec<ReceiptRecipient> = record
        .recipients
        .iter()
        .map(|r| ReceiptRecipient {
            kommunkod: r.kommunkod,
            name: seed
                .get(r.kommunkod)
                .map(|m| m.name.clone())
                .unwrap_or_default(),
            role: r.role,
            channel: r.channel.map(|c| c.as_str()),
            batch: r.letter.as_ref().map(|l| l.batch.clone()),
            letter: r.letter.as_ref().map(|l| l.file.clone()),
            letter_pages: r.letter.as_ref().map(|l| l.pages),
            letter_sha256: r.letter.as_ref().map(|l| l.sha256.clone()),
            address_missing: r.letter.as_ref().is_some_and(|l| l.address_missing),
            printed_at: r
                .letter
                .as_ref()
                .and_then(|l| l.printed_at)
                .map(|t| t.to_string()),
            address: r
                .email
                .as_ref()
                .and_then(|e| e.accepted.as_ref())
                .map(|p| p.address.clone()),
            email: r.email.clone(),
            fell_back_to_post: r.email.is_some() && r.letter.is_some(),
            reports: r
                .email
                .as_ref()
                .map(|e| e.reports.clone())
                .unwrap_or_default(),
            confirmed: r
                .email
                .as_ref()
                .and_then(|e| e.confirmation())
                .map(|c| c.kind.as_str().to_string()),
            read_at: r
                .email
                .as_ref()
                .and_then(|e| e.read_notice())
                .map(|n| n.at.to_string()),
        })
        .collect();
    Receipt {
        job_id: &record.id,
        source: &record.source,
        state: record.state.as_str(),
        channel: record.channel_summary(),
        address_missing: record.address_missing(),
        batch: recipients.iter().find_map(|r| r.batch.clone()),
        recipients,
        documents: record
            .documents
            .iter()
            .map(|d| ReceiptDocument {
                kind: d.kind,
                pages: d.pages,
                bytes: d.bytes,
                sha256: d.sha256.clone(),
            })
            .collect(),
        quarantine: record.quarantine.as_ref(),
        duplicate_of: record.duplicate_of.as_ref(),
        received_at: record.received_at.to_string(),
        finished_at: record.updated_at.to_string(),
        events,
    }
}

/// Writes the receipt without syncing anything: the caller syncs the file system once for a
/// group of receipts.
fn write_unsynced(
    spool: &Spool,
    record: &JobRecord,
    events: &[Event],
    seed: &Seed,
) -> std::io::Result<()> {
    fsutil::write_atomic_unsynced(&spool.receipt(&record.id), &render(record, events, seed)?)
}

/// The receipt as the file holds it: pretty JSON and a final newline.
fn render(record: &JobRecord, events: &[Event], seed: &Seed) -> std::io::Result<Vec<u8>> {
    let receipt = build(record, events, seed);
    let mut bytes = serde_json::to_vec_pretty(&receipt).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Why a receipt could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file could not be written.
    #[error("writing receipt for job {id}: {source}")]
    Io {
        /// The job.
        id: JobId,
        /// Why.
        source: std::io::Error,
    },
}

/// Most receipts written in one group: one store flush and one file-system sync each.
const GROUP: usize = 256;

/// The receipt writer: writes every receipt the store's index says is owed (a final job whose
/// receipt is not on disk yet), in groups, and notes each as written. The only writer of
/// receipts: the stages only record jobs, and the store wakes this writer
/// ([`Store::receipts_wanted`]). The store is flushed first, so a receipt never states what a
/// crash could take back. A quarantined job's receipt waits until intake has moved its folder
/// out of `active/` (that move, and its `reason.txt`, are finished at the next start if a
/// crash interrupts them, while the job still owes its receipt). Returns how many it wrote.
pub fn write_owed(spool: &Spool, store: &Store, seed: &Seed) -> Result<usize, ReceiptError> {
    // Journaled steps reach sled, and so the index, with a flush.
    store.flush_journaled()?;
    let mut written = 0;
    let mut skip = std::collections::HashSet::new();
    loop {
        let owed: Vec<JobId> = store
            .owed_receipts(GROUP + skip.len())?
            .into_iter()
            .filter(|id| !skip.contains(id))
            .take(GROUP)
            .collect();
        if owed.is_empty() {
            return Ok(written);
        }
        store.flush()?;
        let mut group = Vec::with_capacity(owed.len());
        for id in owed {
            let Some(record) = store.get(&id)? else {
                skip.insert(id);
                continue;
            };
            let unfinished_quarantine = record.state == crate::store::state::JobState::Quarantined
                && spool.active_job(&id).exists();
            if unfinished_quarantine || !record.owes_receipt() {
                skip.insert(id);
                continue;
            }
            let events = store.events(&id)?;
            match write_unsynced(spool, &record, &events, seed) {
                Ok(()) => group.push((id, record.state)),
                Err(e) => {
                    tracing::error!(job_id = %id, error = %e, "receipt could not be written");
                    skip.insert(id);
                }
            }
        }
        if group.is_empty() {
            continue;
        }
        // One sync for the group's files and names, before the store says they exist.
        fsutil::sync_filesystem(&spool.receipts()).map_err(|source| ReceiptError::Io {
            id: group[0].0.clone(),
            source,
        })?;
        let ids: Vec<JobId> = group.iter().map(|(id, _)| id.clone()).collect();
        store.mark_receipts_written(&ids)?;
        for (id, state) in &group {
            tracing::info!(job_id = %id, state = %state, "receipt written");
        }
        written += group.len();
    }
}

/// Runs the receipt writer until shutdown: a pass whenever the store says a receipt is owed
/// (and once a second while one it had to skip is still owed), and a last pass at the end.
pub async fn run(
    spool: Spool,
    store: Store,
    seed: std::sync::Arc<Seed>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let wanted = store.receipts_wanted();
    loop {
        let stop = *shutdown.borrow();
        let (sp, st, se) = (spool.clone(), store.clone(), seed.clone());
        match tokio::task::spawn_blocking(move || write_owed(&sp, &st, &se)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "receipts could not be written; will try again")
            }
            Err(e) => tracing::error!(error = %e, "receipt task failed"),
        }
        if stop {
            return;
        }
        tokio::select! {
            _ = wanted.notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = shutdown.changed() => {}
        }
    }
}
