//! Drafts: a job the dispatch desk has checked and not yet sent. The desk shows how a decision
//! will go (protected e-mail to which address, or a letter, and why) before the person sends
//! it; between the two steps the documents wait here, in the daemon's own spool, so the portal
//! keeps nothing.
//!
//! A draft is a job folder built under `spool/tmp/draft-<id>/` by the same code `kurir submit`
//! uses, with one more file naming its owner (the person's HSA-id). Sending it is one rename
//! into `incoming/` under a new job id — the Maildir rule, as for every writer — so intake sees
//! a finished job or none. Drafts nobody sends are swept after an hour
//! ([`crate::spool::DRAFT_LIFETIME`], by retention).

use std::path::PathBuf;

use super::submit::{hand_over, write_job, JobContents};
use crate::job::{DocumentKind, JobId};
use crate::pdf::{self, PdfLimits};
use crate::spool::{draft_lapsed, Spool, DRAFT_PREFIX};

/// The file in a draft folder that names its owner; removed before the folder is handed over.
const OWNER_FILE: &str = ".kurir-draft-owner";

pub use kurir_protocol::draft::{DraftDocument, DraftError, DraftId, MAX_DRAFTS_PER_PERSON};

fn folder(spool: &Spool, id: &DraftId) -> PathBuf {
    spool.tmp().join(format!("{DRAFT_PREFIX}{}", id.as_str()))
}

/// Checks the documents exactly as `kurir submit` does and keeps them as a draft of `owner`
/// (an HSA-id). Returns the draft's id and what it holds.
pub fn create(
    spool: &Spool,
    owner: &str,
    job: &JobContents,
    limits: &PdfLimits,
) -> Result<(DraftId, Vec<DraftDocument>), DraftError> {
    if !job
        .documents
        .iter()
        .any(|(kind, _)| *kind == DocumentKind::Anvisningsbeslut)
    {
        return Err(DraftError::NoDecision);
    }
    if open_drafts_of(spool, owner) >= MAX_DRAFTS_PER_PERSON {
        return Err(DraftError::TooMany);
    }
    let mut held = Vec::new();
    for (kind, bytes) in &job.documents {
        let summary = pdf::validate(bytes, limits).map_err(|problem| DraftError::Document {
            kind: *kind,
            problem,
        })?;
        held.push(DraftDocument {
            kind: *kind,
            pages: summary.pages,
            sha256: summary.sha256,
            name: String::new(),
        });
    }
    let id = keep_checked(spool, owner, job)?;
    Ok((id, held))
}

/// Keeps as `owner`'s draft a job whose documents were already checked as `kurir submit`
/// checks them (the desk checks every field at once before it drafts anything).
pub fn keep_checked(spool: &Spool, owner: &str, job: &JobContents) -> Result<DraftId, DraftError> {
    new_folder(spool, owner, |dir| write_job(spool, dir, job))
}

/// A new folder of `owner`'s, filled by `fill` and then marked as theirs. Counted and written
/// under one lock, drafts and kept files alike: uploads checked side by side cannot pass the
/// cap together.
fn new_folder(
    spool: &Spool,
    owner: &str,
    fill: impl FnOnce(&std::path::Path) -> std::io::Result<()>,
) -> Result<DraftId, DraftError> {
    static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _writing = WRITING.lock().unwrap_or_else(|p| p.into_inner());
    if open_drafts_of(spool, owner) >= MAX_DRAFTS_PER_PERSON {
        return Err(DraftError::TooMany);
    }
    let id = DraftId::generate()?;
    let dir = folder(spool, &id);
    let write = |e: std::io::Error| DraftError::Write(e.to_string());
    fill(&dir).map_err(write)?;
    crate::fsutil::write_new(&dir.join(OWNER_FILE), owner.as_bytes()).map_err(write)?;
    Ok(id)
}

/// Sends `owner`'s draft: hands it over to intake under a new job id.
pub fn send(spool: &Spool, id: &DraftId, owner: &str) -> Result<JobId, DraftError> {
    let dir = folder(spool, id);
    if draft_lapsed(&dir) {
        return Err(DraftError::Gone);
    }
    let marker = dir.join(OWNER_FILE);
    let found = owner_of_folder(&dir).ok_or(DraftError::Gone)?;
    if found != owner {
        return Err(DraftError::NotYours);
    }
    // Documents kept for a form that must be fixed are no job: they are never handed over.
    if !dir.join("job.toml").is_file() {
        return Err(DraftError::Gone);
    }
    std::fs::remove_file(&marker).map_err(|_| DraftError::Gone)?;
    let job = JobId::generate();
    hand_over(spool, &dir, &job).map_err(|_| DraftError::Gone)?;
    Ok(job)
}

/// The document of `kind` in `owner`'s draft, for them to open before sending it: read
/// without following a link, at most `max` bytes.
pub fn document(
    spool: &Spool,
    id: &DraftId,
    owner: &str,
    kind: DocumentKind,
    max: u64,
) -> Result<Vec<u8>, DraftError> {
    let dir = folder(spool, id);
    if draft_lapsed(&dir) {
        return Err(DraftError::Gone);
    }
    let found = owner_of_folder(&dir).ok_or(DraftError::Gone)?;
    if found != owner {
        return Err(DraftError::NotYours);
    }
    let suffix = format!("-{}.pdf", kind.as_str());
    let file = std::fs::read_dir(&dir)
        .map_err(|_| DraftError::Gone)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| name.ends_with(&suffix))
        .ok_or(DraftError::Gone)?;
    crate::fsutil::read_bounded(&dir.join(file), max).map_err(|_| DraftError::Gone)
}

/// A document kept for the person's next try: its kind, bytes and file name.
pub type KeptDocument = (DocumentKind, Vec<u8>, String);

fn kept_file(kind: DocumentKind) -> String {
    format!("kept-{}.pdf", kind.as_str())
}

fn kept_name(kind: DocumentKind) -> String {
    format!("kept-{}.name", kind.as_str())
}

/// Keeps the documents of a form that must be fixed, as `owner`'s, so that they need not be
/// chosen again: a folder like a draft's (swept after the same hour, counted against the
/// same cap), holding no job and never handed over.
pub fn keep(spool: &Spool, owner: &str, documents: &[KeptDocument]) -> Result<DraftId, DraftError> {
    new_folder(spool, owner, |dir| {
        crate::fsutil::create_private_dir(&spool.tmp())?;
        crate::fsutil::create_private_dir(dir)?;
        for (kind, bytes, name) in documents {
            crate::fsutil::write_new(&dir.join(kept_file(*kind)), bytes)?;
            crate::fsutil::write_new(&dir.join(kept_name(*kind)), name.as_bytes())?;
        }
        Ok(())
    })
}

/// The documents kept as `owner`'s under `id` (none if they are gone), read without
/// following a link and at most `max` bytes each.
pub fn kept(spool: &Spool, id: &DraftId, owner: &str, max: u64) -> Vec<KeptDocument> {
    let dir = folder(spool, id);
    let mine = owner_of_folder(&dir).is_some_and(|o| o == owner);
    if !mine || draft_lapsed(&dir) {
        return Vec::new();
    }
    [DocumentKind::Anvisningsbeslut, DocumentKind::GodMan]
        .into_iter()
        .filter_map(|kind| {
            let bytes = crate::fsutil::read_bounded(&dir.join(kept_file(kind)), max).ok()?;
            let name = crate::fsutil::read_bounded(&dir.join(kept_name(kind)), 1024)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            Some((kind, bytes, name))
        })
        .collect()
}

/// Removes `owner`'s kept documents `id` (used, or replaced by a newer keep).
pub fn discard(spool: &Spool, id: &DraftId, owner: &str) {
    let dir = folder(spool, id);
    let mine = owner_of_folder(&dir).is_some_and(|o| o == owner);
    if mine && !dir.join("job.toml").exists() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Whose folder `dir` is: the owner file of a real folder the daemon's user made, read
/// without following a link, at most a line. `spool/tmp/` may be writable by the submit group:
/// what a member plants there (a link to `/dev/zero`, a FIFO, a folder of theirs) names no one.
fn owner_of_folder(dir: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(dir).ok()?;
    if !meta.is_dir() || meta.uid() != crate::fsutil::own_euid() {
        return None;
    }
    let bytes = crate::fsutil::read_bounded(&dir.join(OWNER_FILE), 1024).ok()?;
    String::from_utf8(bytes).ok()
}

/// How many unsent, unlapsed drafts `owner` has.
fn open_drafts_of(spool: &Spool, owner: &str) -> usize {
    spool
        .drafts()
        .into_iter()
        .filter(|(dir, old)| !old && owner_of_folder(dir).is_some_and(|o| o == owner))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(bytes: Vec<u8>) -> JobContents {
        JobContents {
            to: "2480".parse().expect("code"),
            case: "12-345678".parse().expect("case"),
            copy_to: vec![],
            documents: vec![(DocumentKind::Anvisningsbeslut, bytes)],
            submission_key: None,
        }
    }

    #[test]
    fn a_drafts_documents_and_kept_files_open_only_for_their_owner_and_kept_files_are_never_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::new(dir.path());
        let limits = PdfLimits::from_settings(&crate::config::SpoolSettings::default());
        let pdf = crate::pdf::tests::simple_pdf(None);
        let (id, _) = create(&spool, "SE2321000016-a1", &job(pdf.clone()), &limits).expect("draft");
        let kind = DocumentKind::Anvisningsbeslut;
        assert_eq!(
            document(&spool, &id, "SE2321000016-a1", kind, 1 << 20).as_deref(),
            Ok(pdf.as_slice())
        );
        assert_eq!(
            document(&spool, &id, "SE2321000016-b2", kind, 1 << 20),
            Err(DraftError::NotYours)
        );
        let held = keep(
            &spool,
            "SE2321000016-a1",
            &[(kind, pdf.clone(), "b.pdf".into())],
        )
        .expect("kept");
        assert!(kept_of_other(&spool, &held));
        assert_eq!(
            kept(&spool, &held, "SE2321000016-a1", 1 << 20),
            vec![(kind, pdf, "b.pdf".to_string())]
        );
        // Kept files are no job: sending them is refused, and discarding them leaves nothing.
        assert_eq!(
            send(&spool, &held, "SE2321000016-a1"),
            Err(DraftError::Gone)
        );
        discard(&spool, &held, "SE2321000016-a1");
        assert!(kept(&spool, &held, "SE2321000016-a1", 1 << 20).is_empty());
    }

    #[test]
    fn what_the_submit_group_plants_in_tmp_names_no_owner_and_stalls_no_draft() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::new(dir.path());
        std::fs::create_dir_all(spool.tmp()).expect("tmp");
        // An owner file that is a link to an endless file, and one that is a FIFO.
        let endless = spool
            .tmp()
            .join(format!("{DRAFT_PREFIX}{}", "a".repeat(32)));
        std::fs::create_dir(&endless).expect("dir");
        std::os::unix::fs::symlink("/dev/zero", endless.join(OWNER_FILE)).expect("link");
        let fifo = spool
            .tmp()
            .join(format!("{DRAFT_PREFIX}{}", "b".repeat(32)));
        std::fs::create_dir(&fifo).expect("dir");
        nix::unistd::mkfifo(&fifo.join(OWNER_FILE), nix::sys::stat::Mode::S_IRWXU).expect("fifo");
        // A folder that is a link to elsewhere, holding a real owner file.
        let elsewhere = tempfile::tempdir().expect("elsewhere");
        std::fs::write(elsewhere.path().join(OWNER_FILE), "SE2321000016-a1").expect("owner");
        let linked = spool
            .tmp()
            .join(format!("{DRAFT_PREFIX}{}", "c".repeat(32)));
        std::os::unix::fs::symlink(elsewhere.path(), &linked).expect("link");
        assert_eq!(open_drafts_of(&spool, "SE2321000016-a1"), 0);
        let limits = PdfLimits::from_settings(&crate::config::SpoolSettings::default());
        let pdf = crate::pdf::tests::simple_pdf(None);
        create(&spool, "SE2321000016-a1", &job(pdf), &limits).expect("a draft all the same");
    }

    /// Another person's card gets nothing of `id`, and cannot discard it.
    fn kept_of_other(spool: &Spool, id: &DraftId) -> bool {
        discard(spool, id, "SE2321000016-b2");
        kept(spool, id, "SE2321000016-b2", 1 << 20).is_empty()
            && !kept(spool, id, "SE2321000016-a1", 1 << 20).is_empty()
    }

    #[test]
    fn a_draft_is_sent_only_by_its_owner_and_only_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::new(dir.path());
        let limits = PdfLimits::from_settings(&crate::config::SpoolSettings::default());
        let pdf = crate::pdf::tests::simple_pdf(None);
        let (id, held) = create(&spool, "SE2321000016-a1", &job(pdf), &limits).expect("draft");
        assert_eq!(held.len(), 1);
        assert_eq!(
            send(&spool, &id, "SE2321000016-b2"),
            Err(DraftError::NotYours)
        );
        let job_id = send(&spool, &id, "SE2321000016-a1").expect("sent");
        let handed = spool.incoming().join(job_id.as_str());
        assert!(handed.join("job.toml").is_file());
        assert!(!handed.join(OWNER_FILE).exists());
        assert_eq!(send(&spool, &id, "SE2321000016-a1"), Err(DraftError::Gone));
    }

    #[test]
    fn a_damaged_document_is_refused_naming_it_and_nothing_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::new(dir.path());
        let limits = PdfLimits::from_settings(&crate::config::SpoolSettings::default());
        let refused = create(
            &spool,
            "SE2321000016-a1",
            &job(b"%PDF-1.4\n".to_vec()),
            &limits,
        );
        assert!(matches!(
            refused,
            Err(DraftError::Document {
                kind: DocumentKind::Anvisningsbeslut,
                ..
            })
        ));
        assert!(std::fs::read_dir(spool.tmp()).map_or(true, |mut d| d.next().is_none()));
    }

    #[test]
    fn one_person_holds_at_most_five_unsent_drafts_and_sending_frees_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::new(dir.path());
        let limits = PdfLimits::from_settings(&crate::config::SpoolSettings::default());
        let pdf = crate::pdf::tests::simple_pdf(None);
        let a = "SE2321000016-a1";
        let mut ids = Vec::new();
        for _ in 0..MAX_DRAFTS_PER_PERSON {
            ids.push(
                create(&spool, a, &job(pdf.clone()), &limits)
                    .expect("draft")
                    .0,
            );
        }
        assert_eq!(
            create(&spool, a, &job(pdf.clone()), &limits).map(|_| ()),
            Err(DraftError::TooMany)
        );
        // Someone else is not held up by it.
        assert!(create(&spool, "SE2321000016-b2", &job(pdf.clone()), &limits).is_ok());
        send(&spool, &ids[0], a).expect("sent");
        assert!(create(&spool, a, &job(pdf), &limits).is_ok());
        // None has lapsed: sweeping removes nothing.
        assert_eq!(spool.sweep_drafts(), 0);
    }

    #[test]
    fn a_draft_id_names_nothing_but_a_draft() {
        assert!(DraftId::try_from("../../etc/passwd".to_string()).is_err());
        assert!(DraftId::try_from("0123456789abcdef0123456789abcdef".to_string()).is_ok());
    }
}
