//! The postal deliverer: letters for window envelopes, collected in print batches.
//!
//! A batch is a directory `spool/print/<batch-id>/` with the letters and `manifest.csv`. The
//! store records which letters belong to a batch; files are derived from it. A batch is closed
//! by writing `READY` last, so a print shop that takes only directories with `READY` never
//! takes half a batch. After a crash, the open batch is reconciled with the store: a letter
//! file whose job was not recorded is removed (its job is still queued and makes it again),
//! so no letter is printed twice and none is missing.

pub mod letter;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;

use crate::config::{PrintSettings, SenderSettings};
use crate::deliver::print::letter::{Addressee, CoverLetter};
use crate::fsutil;
use crate::job::{JobId, RecipientRole};
use crate::pdf::PdfLimits;
use crate::registry::Seed;
use crate::spool::Spool;
use crate::store::event::EventKind;
use crate::store::state::{JobRecord, LetterRef};
use crate::store::{BatchRecord, LetterRow, SideWrite, Store, StoreError};

/// The marker file that closes a batch.
pub const READY_MARKER: &str = "READY";
/// The manifest file in each batch.
pub const MANIFEST: &str = "manifest.csv";

/// Why printing a job or handling a batch failed.
#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] fsutil::FsError),
    /// A document in the active job directory can no longer be read.
    #[error("reading document {index} of the job: {source}")]
    Document {
        /// 1-based position.
        index: usize,
        /// Why.
        source: fsutil::ReadError,
    },
    /// The letter could not be built.
    #[error(transparent)]
    Letter(#[from] letter::LetterError),
    /// The manifest could not be written.
    #[error("writing manifest: {0}")]
    Csv(#[from] csv::Error),
    /// The time zone database lacks Europe/Stockholm (a build defect).
    #[error("time zone Europe/Stockholm: {0}")]
    TimeZone(#[from] jiff::Error),
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> PrintError + 'a {
    fsutil::io(what, path)
}

/// The print queue: makes letters and manages batches. One instance, used from one task.
pub struct PrintQueue {
    spool: Spool,
    store: Store,
    seed: Arc<Seed>,
    settings: PrintSettings,
    sender: SenderSettings,
    limits: PdfLimits,
    /// `spool/print/` is shared with the print shop's group (`[print] group`): what is
    /// written there is opened to it.
    shared: bool,
}

impl PrintQueue {
    /// A print queue over this spool and store.
    pub fn new(
        spool: Spool,
        store: Store,
        seed: Arc<Seed>,
        settings: PrintSettings,
        sender: SenderSettings,
        limits: PdfLimits,
    ) -> Self {
        PrintQueue {
            shared: !settings.group.is_empty(),
            spool,
            store,
            seed,
            settings,
            sender,
            limits,
        }
    }

    /// Opens a file or folder just written under `spool/print/` to the print shop's group,
    /// when it has one.
    fn share(&self, path: &Path) -> Result<(), PrintError> {
        if self.shared {
            fsutil::open_to_group(path).map_err(io("opening to the print shop's group", path))?;
        }
        Ok(())
    }

    fn batch_dir(&self, id: &str) -> PathBuf {
        self.spool.print().join(id)
    }

    /// Reconciles the open batch with the store after a start or a crash.
    pub fn recover(&self) -> Result<(), PrintError> {
        self.reconcile()?;
        self.relist()
    }

    fn reconcile(&self) -> Result<(), PrintError> {
        let Some(batch) = self.store.open_batch()? else {
            return Ok(());
        };
        let dir = self.batch_dir(&batch.id);
        if dir.join(READY_MARKER).exists() {
            // Closed on disk, not yet in the store: finish the close.
            self.store.close_batch(&batch.id, Timestamp::now())?;
            return Ok(());
        }
        fsutil::create_private_dir(&dir).map_err(io("creating batch", &dir))?;
        self.remove_unrecorded_files(&batch.id)?;
        self.write_manifest(&batch.id)?;
        Ok(())
    }

    /// After a crash: every job whose letter is recorded but not yet noted as listed gets the
    /// note (the open batch's manifest was just written again; closed batches were listed
    /// whole before READY).
    fn relist(&self) -> Result<(), PrintError> {
        let waiting: Vec<_> = self
            .store
            .pending()?
            .into_iter()
            .filter(|j| j.manifest_pending)
            .map(|j| j.id)
            .collect();
        self.store.mark_listed(&waiting)?;
        Ok(())
    }

    /// Makes and records the letters for every recipient of `job` that awaits one. If that
    /// finishes the job, it moves to its final state in the same step. Returns the job as
    /// recorded.
    pub fn print_job(&self, job: &JobRecord, now: Timestamp) -> Result<JobRecord, PrintError> {
        let active = self.spool.active_job(&job.id);
        let mut documents = Vec::with_capacity(job.documents.len());
        for (i, doc) in job.documents.iter().enumerate() {
            let bytes =
                fsutil::read_checked(&active.join(&doc.file), self.limits.max_bytes, &doc.sha256)
                    .map_err(|source| PrintError::Document {
                    index: i + 1,
                    source,
                })?;
            documents.push(bytes);
        }
        let doc_refs: Vec<&[u8]> = documents.iter().map(Vec::as_slice).collect();
        let enclosures: Vec<_> = job.documents.iter().map(|d| (d.kind, d.pages)).collect();

        let mut batch = self.batch_for(now)?;
        let dir = self.batch_dir(&batch.id);
        let date = stockholm_date(now)?;
        let assigned_name = job
            .to
            .and_then(|c| self.seed.get(c))
            .map(|m| m.name.clone())
            .unwrap_or_default();

        let mut rows = Vec::new();
        let mut letters = Vec::new();
        for recipient in job.recipients.iter().filter(|r| r.awaits_letter()) {
            let code = recipient.kommunkod;
            let name = self
                .seed
                .get(code)
                .map(|m| m.name.clone())
                .unwrap_or_else(|| format!("Kommun {code}"));
            let registered = self.store.registered(code)?;
            let (addressee, row_address, address_missing) = match &registered.postal_address {
                Some(addr) => (
                    Addressee {
                        name: name.clone(),
                        lines: addr.lines(),
                    },
                    (
                        name.clone(),
                        addr.care_of.clone().unwrap_or_default(),
                        addr.street.clone(),
                        addr.extra.clone().unwrap_or_default(),
                        addr.postnummer.clone(),
                        addr.postort.clone(),
                    ),
                    false,
                ),
                None => (
                    Addressee {
                        name: name.clone(),
                        lines: vec!["Registrator".into()],
                    },
                    (
                        format!("{name}, Registrator"),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                    ),
                    true,
                ),
            };
            let cover = CoverLetter {
                sender: &self.sender,
                window: &self.settings.window,
                to: addressee,
                reference: job.id.as_str(),
                date: date.clone(),
                copy_of: (recipient.role == RecipientRole::Copy).then(|| assigned_name.clone()),
                enclosures: enclosures.clone(),
            };
            let built = letter::build(&cover, &doc_refs, &self.limits)?;
            let file = format!("{}-{}.pdf", job.id, code);
            let path = dir.join(&file);
            // The batch directory is synced once per round, before the manifest lists it.
            fsutil::write_atomic_unsynced_dir(&path, &built.bytes)
                .map_err(io("writing letter", &path))?;
            self.share(&path)?;
            let sha256 = crate::digest::sha256_hex(&built.bytes);
            let (namn, care_of, adress, lagenhet, postnummer, postort) = row_address;
            rows.push(LetterRow {
                batch: batch.id.clone(),
                file: file.clone(),
                job_id: job.id.clone(),
                kommunkod: code,
                role: recipient.role,
                namn,
                care_of,
                adress,
                lagenhet,
                postnummer,
                postort,
                pages: built.pages,
                sha256: sha256.clone(),
                address_missing,
            });
            letters.push((
                code,
                LetterRef {
                    batch: batch.id.clone(),
                    file,
                    pages: built.pages,
                    sha256,
                    address_missing,
                    printed_at: None,
                },
            ));
        }

        batch.letters += u32::try_from(rows.len()).unwrap_or(u32::MAX);
        let mut side: Vec<SideWrite> = rows.into_iter().map(SideWrite::Letter).collect();
        side.push(SideWrite::Batch(batch.clone()));
        let missing = letters.iter().any(|(_, l)| l.address_missing);
        let what = EventKind::Letters {
            count: letters.len(),
            batch: batch.id.clone(),
            address_missing: missing,
        };
        // Flushed before the batch manifest and the receipts are written (`finish_round`,
        // `receipt::issue_many`); lost in a crash, the letter file is removed at recovery and
        // made again.
        let record = self
            .store
            .transition_lazy(&job.id, &[job.state], &what, &side, |r| {
                for (code, letter) in &letters {
                    if let Some(rec) = r.recipients.iter_mut().find(|x| x.kommunkod == *code) {
                        rec.letter = Some(letter.clone());
                    }
                }
                // The receipt names the batch: it waits until the manifest lists the letter.
                r.manifest_pending = !letters.is_empty();
                r.settle();
            })?;
        Ok(record)
    }

    /// After a round of jobs: brings the open batch's manifest up to date and closes it if it
    /// is full or belongs to an earlier day; then the jobs whose letters it made (`made`) may
    /// have their receipts.
    pub fn finish_round(&self, now: Timestamp, made: &[JobId]) -> Result<(), PrintError> {
        self.bring_up_to_date(now, !made.is_empty())?;
        self.store.mark_listed(made)?;
        Ok(())
    }

    fn bring_up_to_date(&self, now: Timestamp, added: bool) -> Result<(), PrintError> {
        let Some(batch) = self.store.open_batch()? else {
            return Ok(());
        };
        if added {
            // The manifest lists only recorded letters whose files are on disk: make both
            // durable first (one directory sync and one store flush per round).
            let dir = self.batch_dir(&batch.id);
            fsutil::sync_dir(&dir).map_err(io("syncing batch", &dir))?;
            self.store.flush()?;
        }
        if batch.letters >= self.settings.batch_max_letters || batch.day != stockholm_date(now)? {
            self.close(&batch)?;
        } else if added {
            self.write_manifest(&batch.id)?;
        }
        Ok(())
    }

    /// The batch a new letter goes into, opening one if needed.
    fn batch_for(&self, now: Timestamp) -> Result<BatchRecord, PrintError> {
        let today = stockholm_date(now)?;
        if let Some(open) = self.store.open_batch()? {
            if open.day == today && open.letters < self.settings.batch_max_letters {
                return Ok(open);
            }
            self.close(&open)?;
        }
        let prefix = format!("{}-", today.replace('-', ""));
        let n = self.store.batch_ids_with_prefix(&prefix)?.len() + 1;
        let batch = BatchRecord {
            id: format!("{prefix}{n:03}"),
            day: today,
            opened_at: now,
            letters: 0,
            closed_at: None,
            confirmed: None,
            files_removed_at: None,
        };
        let dir = self.batch_dir(&batch.id);
        fsutil::create_private_dir(&dir).map_err(io("creating batch", &dir))?;
        self.share(&dir)?;
        fsutil::sync_dir(&self.spool.print()).map_err(io("syncing", &self.spool.print()))?;
        self.store.open_new_batch(&batch)?;
        tracing::info!(batch = %batch.id, "print batch opened");
        Ok(batch)
    }

    /// Closes a batch: final manifest, stray files removed, `READY` written last.
    fn close(&self, batch: &BatchRecord) -> Result<(), PrintError> {
        let dir = self.batch_dir(&batch.id);
        // Letters and their records must be durable before READY hands the batch over.
        fsutil::sync_dir(&dir).map_err(io("syncing batch", &dir))?;
        self.store.flush()?;
        self.remove_unrecorded_files(&batch.id)?;
        let count = self.write_manifest(&batch.id)?;
        let marker = format!("letters={count}\nclosed_at={}\n", Timestamp::now());
        let path = dir.join(READY_MARKER);
        fsutil::write_atomic(&path, marker.as_bytes()).map_err(io("closing batch", &path))?;
        self.share(&path)?;
        self.store.close_batch(&batch.id, Timestamp::now())?;
        tracing::info!(batch = %batch.id, letters = count, "print batch closed");
        Ok(())
    }

    /// Writes `manifest.csv` from the store; returns the number of letters.
    fn write_manifest(&self, batch: &str) -> Result<usize, PrintError> {
        let rows = self.store.letters(batch)?;
        let mut out = csv::Writer::from_writer(Vec::new());
        out.write_record([
            "letter",
            "job_id",
            "kommunkod",
            "namn",
            "careOf",
            "adress",
            "lagenhet",
            "postnummer",
            "postort",
            "pages",
            "sha256",
            "address_missing",
        ])?;
        for r in &rows {
            out.write_record([
                r.file.as_str(),
                r.job_id.as_str(),
                r.kommunkod.as_str(),
                r.namn.as_str(),
                r.care_of.as_str(),
                r.adress.as_str(),
                r.lagenhet.as_str(),
                r.postnummer.as_str(),
                r.postort.as_str(),
                &r.pages.to_string(),
                r.sha256.as_str(),
                if r.address_missing { "yes" } else { "no" },
            ])?;
        }
        let bytes = out
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))?;
        let path = self.batch_dir(batch).join(MANIFEST);
        fsutil::write_atomic(&path, &bytes).map_err(io("writing manifest", &path))?;
        self.share(&path)?;
        Ok(rows.len())
    }

    /// Removes letter files and temporaries the store does not know (left by a crash between
    /// writing a letter and recording it).
    fn remove_unrecorded_files(&self, batch: &str) -> Result<(), PrintError> {
        let dir = self.batch_dir(batch);
        let known: Vec<String> = self
            .store
            .letters(batch)?
            .into_iter()
            .map(|r| r.file)
            .collect();
        let entries = std::fs::read_dir(&dir).map_err(io("reading batch", &dir))?;
        for entry in entries {
            let entry = entry.map_err(io("reading batch", &dir))?;
            let name = entry.file_name().to_string_lossy().to_string();
            let unrecorded_letter = name.ends_with(".pdf") && !known.contains(&name);
            let temporary = name.starts_with('.') && name.ends_with(".tmp");
            if unrecorded_letter || temporary {
                let path = entry.path();
                std::fs::remove_file(&path).map_err(io("removing unrecorded letter", &path))?;
                tracing::warn!(batch, "removed a letter file left by an interrupted run");
            }
        }
        Ok(())
    }
}

/// The calendar day in Sweden, `YYYY-MM-DD`: batches and letter dates follow Swedish days.
pub fn stockholm_date(now: Timestamp) -> Result<String, jiff::Error> {
    let tz = jiff::tz::TimeZone::get("Europe/Stockholm")?;
    Ok(now.to_zoned(tz).date().to_string())
}
