//! The store's write-ahead journal: how a change survives `kill -9` without waiting for the disk.
//!
//! sled makes a commit durable only at `flush`, which ends in an fsync — about a millisecond
//! on this kind of disk. Some changes must survive a crash of the process the moment they are
//! made, yet sit on a path that cannot wait for the disk: the record of a mail server's
//! acceptance is made while the next message's end of DATA waits for it (see
//! [`crate::smtp`]), so a flush there serialises every delivery behind the disk. For those the
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
//! go to a new one, so a flush never has to hold up writers while it waits for the disk.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Where the journal lives inside the store's directory.
pub const DIR: &str = "journal";

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
            dir,
            current: Mutex::new(Current {
                seq: next,
                file: None,
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
            slot @ None => slot.insert(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(self.dir.join(file_name(current.seq)))?,
            ),
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
