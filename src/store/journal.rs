//! The store's write-ahead journal: how a change survives `kill -9` without waiting for the disk.
//!
//! sled makes a commit durable only at `flush`, which ends in an fsync — about a millisecond
//! on this kind of disk. Some changes must survive a crash of the process the moment they are
//! made, yet sit on a path that cannot wait for the disk: the record of a mail server's
//! acceptance is made while the next message's end of DATA waits for it (see
//! [`crate::deliver::mail::smtp`]), so a flush there serialises every delivery behind the disk. For those the
//! store appends the change here with one `write(2)` — the kernel holds it from then on,
//! whatever becomes of the process — and keeps it in memory, where reads see it. The next
//! flush of the store writes all such changes into sled in one transaction (a sled transaction
//! costs a log write of its own, so one per change would cost more than the journal saves),
//! makes them durable, and deletes the journal file written before it. At start-up, what is
//! left is replayed into the store.
//!
//! A power cut can take what the page cache held: a journaled change since the last flush may
//! then be lost, which for a delivery outcome means one resend with the same Message-ID.
//!
//! Files are `journal/<sequence>.log`, one entry per line; the caller decides what a line is.
//! Rotation rather than truncation: a flush retires the file written so far and later entries
//! go to a new one, so a flush never has to hold up writers while it waits for the disk. A
//! retired file, once flushed, is emptied and kept as `journal/spare`, to become the next
//! file, as databases recycle their log segments: creating and deleting a file at every flush
//! costs an inode allocation each time, and on ext4 without a journal every new file in the
//! directory's group then probes each inode deleted in the last minutes (this machine's
//! `recently_deleted`), which slowed every receipt kurir creates.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Where the journal lives inside the store's directory.
pub const DIR: &str = "journal";
/// A flushed file kept, empty, for the next rotation.
const SPARE: &str = "spare";

/// The journal of one store. Writers hold its lock while they decide a change and append it,
/// and a flush takes the entries to write into sled under the same lock as it rotates, so
/// what it writes covers every entry of the file it retires.
pub struct Journal {
    dir: PathBuf,
    current: Mutex<Current>,
}

/// The file being written.
struct Current {
    seq: u64,
    file: Option<File>,
    /// An emptied file to rename into place instead of creating one.
    spare: Option<PathBuf>,
}

/// Exclusive right to commit and append; see [`Journal::lock`].
pub struct JournalGuard<'a> {
    dir: &'a Path,
    current: MutexGuard<'a, Current>,
}

/// A file written before this run, in sequence order, with its lines.
pub struct Leftover {
    /// The file, to delete once its entries are applied and flushed.
    pub path: PathBuf,
    /// Its lines, without the newline; a torn last line is included as it is.
    pub lines: Vec<Vec<u8>>,
}

fn file_name(seq: u64) -> String {
    format!("{seq:016}.log")
}

fn sequence_of(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_suffix(".log")?.parse().ok()
}

impl Journal {
    /// Opens the journal in `store_dir`, creating its directory. Returns it with the files
    /// earlier runs left (to replay); new entries go to a file after them.
    pub fn open(store_dir: &Path) -> std::io::Result<(Journal, Vec<Leftover>)> {
        let dir = store_dir.join(DIR);
        crate::fsutil::create_private_dir(&dir)?;
        let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)?
            .flatten()
            .map(|e| e.path())
            .filter_map(|p| sequence_of(&p).map(|s| (s, p)))
            .collect();
        found.sort();
        let next = found.last().map_or(0, |(s, _)| s + 1);
        let mut leftovers = Vec::with_capacity(found.len());
        for (_, path) in found {
            let mut lines = Vec::new();
            for line in BufReader::new(File::open(&path)?).split(b'\n') {
                let line = line?;
                if !line.is_empty() {
                    lines.push(line);
                }
            }
            leftovers.push(Leftover { path, lines });
        }
        let journal = Journal {
            dir: dir.clone(),
            current: Mutex::new(Current {
                seq: next,
                file: None,
                // One left by an earlier run is reused like any other (truncated first).
                spare: Some(dir.join(SPARE)).filter(|p| p.is_file()),
            }),
        };
        Ok((journal, leftovers))
    }

    /// Takes the journal's lock: the holder commits its change and then appends it, and no
    /// rotation can fall between the two.
    pub fn lock(&self) -> JournalGuard<'_> {
        JournalGuard {
            dir: &self.dir,
            current: self.current.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Nothing was appended since the last rotation.
    pub fn is_empty(&self) -> bool {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .file
            .is_none()
    }

    /// Closes the file written so far, if any, and returns its path: everything in it was
    /// committed before this returned, so the caller may delete it after its next flush.
    pub fn rotate(&self) -> Option<PathBuf> {
        self.lock().rotate()
    }

    /// Disposes of a retired file once the store's flush covered it: emptied and kept as the
    /// spare for the next rotation, or deleted if there is one already.
    pub fn retire(&self, path: &Path) -> std::io::Result<()> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.spare.is_some() {
            return std::fs::remove_file(path);
        }
        // Emptied before it is kept: its entries are in sled now and need not linger on disk.
        OpenOptions::new().write(true).truncate(true).open(path)?;
        let spare = self.dir.join(SPARE);
        std::fs::rename(path, &spare)?;
        current.spare = Some(spare);
        Ok(())
    }
}

impl JournalGuard<'_> {
    /// [`Journal::rotate`] under a lock the caller already holds, so that what it reads
    /// together with the rotation (the entries not yet in sled) matches the retired file.
    pub fn rotate(&mut self) -> Option<PathBuf> {
        let current = &mut *self.current;
        current.file.take()?;
        let path = self.dir.join(file_name(current.seq));
        current.seq += 1;
        Some(path)
    }

    /// Appends one entry (a line; it must not contain a newline) with a single `write(2)`.
    pub fn append(&mut self, entry: &[u8]) -> std::io::Result<()> {
        let mut line = Vec::with_capacity(entry.len() + 1);
        line.extend_from_slice(entry);
        line.push(b'\n');
        let current = &mut *self.current;
        let file = match &mut current.file {
            Some(file) => file,
            slot @ None => {
                let path = self.dir.join(file_name(current.seq));
                if let Some(spare) = current.spare.take() {
                    // Reuse the emptied file; if that fails, a new one is created.
                    let _ = std::fs::rename(&spare, &path);
                }
                // Truncated: a reused file may hold what it held before a power cut.
                slot.insert(
                    OpenOptions::new()
                        .create(true)
                        .write(true)
                        .truncate(true)
                        .mode(0o600)
                        .open(&path)?,
                )
            }
        };
        file.write_all(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_written_before_a_restart_come_back_in_order_and_new_ones_go_to_a_later_file() {
        let dir = tempfile::tempdir().expect("dir");
        {
            let (journal, leftovers) = Journal::open(dir.path()).expect("open");
            assert!(leftovers.is_empty());
            journal.lock().append(b"one").expect("append");
            let retired = journal.rotate().expect("a file was written");
            assert!(retired.exists());
            journal.lock().append(b"two").expect("append");
            journal.lock().append(b"three").expect("append");
            // Nothing written since the last rotation: nothing to retire.
            assert!(!journal.is_empty());
            let _ = journal.rotate();
            assert!(journal.is_empty());
            assert!(journal.rotate().is_none());
            journal.lock().append(b"four").expect("append");
        }
        let (journal, leftovers) = Journal::open(dir.path()).expect("reopen");
        let lines: Vec<Vec<u8>> = leftovers.iter().flat_map(|l| l.lines.clone()).collect();
        assert_eq!(
            lines,
            vec![
                b"one".to_vec(),
                b"two".to_vec(),
                b"three".to_vec(),
                b"four".to_vec()
            ]
        );
        journal.lock().append(b"five").expect("append");
        let newest = journal.rotate().expect("written");
        assert!(
            leftovers.iter().all(|l| l.path < newest),
            "new file sorts last"
        );
    }

    #[test]
    fn a_retired_file_is_emptied_and_becomes_the_next_file_instead_of_a_new_one() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("dir");
        let (journal, _) = Journal::open(dir.path()).expect("open");
        journal.lock().append(b"applied").expect("append");
        let retired = journal.rotate().expect("written");
        let inode = std::fs::metadata(&retired).expect("meta").ino();
        journal.retire(&retired).expect("retire");
        assert!(!retired.exists());
        let spare = dir.path().join(DIR).join(SPARE);
        assert_eq!(
            std::fs::metadata(&spare).expect("spare").len(),
            0,
            "emptied"
        );

        journal.lock().append(b"next").expect("append");
        let current = journal.rotate().expect("written");
        assert_eq!(
            std::fs::metadata(&current).expect("meta").ino(),
            inode,
            "the same file"
        );
        assert!(!spare.exists());
        // Two flushes' files retired while one spare is kept: the second is deleted.
        let first = current;
        journal.lock().append(b"third").expect("append");
        let second = journal.rotate().expect("written");
        assert_ne!(first, second);
        journal.retire(&first).expect("retire");
        journal.retire(&second).expect("retire");
        assert!(!first.exists() && !second.exists());
        assert!(spare.exists());

        // A spare is not replayed; only what was written since.
        journal.lock().append(b"last").expect("append");
        drop(journal);
        let (_, leftovers) = Journal::open(dir.path()).expect("reopen");
        let lines: Vec<Vec<u8>> = leftovers.iter().flat_map(|l| l.lines.clone()).collect();
        assert_eq!(lines, vec![b"last".to_vec()]);
    }

    #[test]
    fn a_torn_last_line_is_returned_as_it_is_for_the_caller_to_judge() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir_all(dir.path().join(DIR)).expect("dir");
        std::fs::write(dir.path().join(DIR).join(file_name(3)), b"whole\n{\"half").expect("w");
        let (_, leftovers) = Journal::open(dir.path()).expect("open");
        assert_eq!(leftovers.len(), 1);
        assert_eq!(
            leftovers[0].lines,
            vec![b"whole".to_vec(), b"{\"half".to_vec()]
        );
    }
}
