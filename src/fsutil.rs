//! File-system steps that must be atomic, durable or safe against hostile entries.
//!
//! Files from writers are opened without following links and without blocking on FIFOs, and
//! their size is checked on the open descriptor before a byte is read. Files kurir hands over
//! (letters, manifests, receipts) are written to a temporary name, synced, and renamed, so a
//! reader sees the whole file or none of it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a writer's file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The entry is a symbolic link.
    #[error("is a symbolic link; links are not followed")]
    Symlink,
    /// A directory, FIFO, socket or device.
    #[error("is not a regular file")]
    NotRegular,
    /// Over the limit.
    #[error("is {size} bytes; at most {max} bytes are accepted")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Does not exist.
    #[error("does not exist")]
    Missing,
    /// Not the file that was checked: its SHA-256 differs from the one recorded.
    #[error("is not the file that was checked (its SHA-256 differs); it is not used")]
    Changed,
    /// Any other I/O error.
    #[error("cannot be read: {0}")]
    Io(std::io::Error),
}

/// Reads a regular file of at most `max` bytes without following a link at its last component.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => ReadError::Symlink,
            _ if e.kind() == std::io::ErrorKind::NotFound => ReadError::Missing,
            _ => ReadError::Io(e),
        })?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular);
    }
    if meta.len() > max {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            max,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // take() bounds the read even if the file grows after fstat.
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
            max,
        });
    }
    Ok(bytes)
}

/// A file-system step that failed, with what was being done and where: the one shape in which
/// the stages (intake, print, inbound) report I/O errors, so every such message reads
/// `<what> <path>: <why>`.
#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {source}")]
pub struct FsError {
    /// What was being done, e.g. `claiming`.
    pub what: &'static str,
    /// Where.
    pub path: std::path::PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// For `map_err`: turns the `io::Error` of step `what` on `path` into an [`FsError`], and from
/// there into the caller's error type.
pub fn io<'a, E: From<FsError>>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> E + 'a {
    move |source| {
        E::from(FsError {
            what,
            path: path.to_path_buf(),
            source,
        })
    }
}

static GROUP_ACCESS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Lets the daemon's group read what kurir creates from now on (`[spool] group_access`):
/// directories 0750 and files 0640 instead of 0700 and 0600.
pub fn set_group_access(allowed: bool) {
    GROUP_ACCESS.store(allowed, std::sync::atomic::Ordering::Relaxed);
}

fn dir_mode() -> u32 {
    if GROUP_ACCESS.load(std::sync::atomic::Ordering::Relaxed) {
        0o750
    } else {
        0o700
    }
}

fn file_mode() -> u32 {
    if GROUP_ACCESS.load(std::sync::atomic::Ordering::Relaxed) {
        0o640
    } else {
        0o600
    }
}

/// Creates a directory and its parents with mode 0700 (0750 with group access): the spool
/// holds children's data.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(dir_mode())
        .create(path)
}

/// Takes from a folder kurir owns whatever its private mode does not allow (others' access,
/// and the group's without `[spool] group_access`): a spool checked out of git or made by
/// hand with the umask's 0755 would otherwise show children's documents to every local user.
/// Returns the mode it had when it was changed; a link is left alone.
pub fn restrict_dir(path: &Path) -> std::io::Result<Option<u32>> {
    let meta = std::fs::symlink_metadata(path)?;
    let mode = meta.permissions().mode() & 0o7777;
    if !meta.is_dir() || mode & !dir_mode() == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & dir_mode()))?;
    Ok(Some(mode))
}

/// Space on the file system that holds a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes free for unprivileged users.
    pub free: u64,
    /// Bytes in all.
    pub size: u64,
}

impl Space {
    /// The share of the file system that is free, 0 to 1.
    pub fn free_ratio(&self) -> f64 {
        if self.size == 0 {
            return 1.0;
        }
        self.free as f64 / self.size as f64
    }
}

/// The space on the file system holding `path` (or its nearest existing parent).
pub fn space(path: &Path) -> Option<Space> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let stat = nix::sys::statvfs::statvfs(existing).ok()?;
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Some(Space {
        free: (stat.blocks_available() as u64).saturating_mul(stat.fragment_size() as u64),
        size: (stat.blocks() as u64).saturating_mul(stat.fragment_size() as u64),
    })
}

/// The bytes of the plain files under `dir`, links not followed (0 when it cannot be read).
pub fn tree_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if meta.is_dir() {
            total += tree_bytes(&entry.path());
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    total
}

/// The user a folder belongs to, when this process runs as root and the folder is another
/// user's: an operator's `sudo kurir …` must leave there only what that user (the daemon's)
/// can use, and must not follow paths that user controls. Root's command line then has a
/// process of that user do the work (`kurir as-owner`, [`crate::cli::as_owner`]); no process
/// changes its own user while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    uid: u32,
    gid: u32,
}

impl Owner {
    /// The owner of `folder` (or of its nearest existing parent), when this process is root
    /// and that is another user; `None` otherwise (nothing to give away). A symbolic link is
    /// its own owner's: one another user planted answers for that user, never for root.
    pub fn of(folder: &Path) -> std::io::Result<Option<Owner>> {
        use std::os::unix::fs::MetadataExt;
        if !nix::unistd::geteuid().is_root() {
            return Ok(None);
        }
        let Some(existing) = folder.ancestors().find(|p| p.symlink_metadata().is_ok()) else {
            return Ok(None);
        };
        let meta = std::fs::symlink_metadata(existing)?;
        if meta.uid() == 0 {
            return Ok(None);
        }
        Ok(Some(Owner {
            uid: meta.uid(),
            gid: meta.gid(),
        }))
    }

    /// The daemon's user, as root's command line finds it: the owner of the state directory
    /// (the daemon's own), else — no store yet — of the spool. `None` when that is root.
    pub fn of_daemon(state_dir: &Path, spool_dir: &Path) -> std::io::Result<Option<Owner>> {
        if state_dir.symlink_metadata().is_ok() {
            Owner::of(state_dir)
        } else {
            Owner::of(spool_dir)
        }
    }

    /// The user id.
    pub fn uid(self) -> u32 {
        self.uid
    }

    /// The group id.
    pub fn gid(self) -> u32 {
        self.gid
    }
}

/// The id of group `name`, if the machine has it (`getgrnam_r`: safe from any thread).
pub fn group_id(name: &str) -> Option<u32> {
    nix::unistd::Group::from_name(name)
        .ok()
        .flatten()
        .map(|group| group.gid.as_raw())
}

/// The id of user `name`, if the machine has it (`getpwnam_r`: safe from any thread).
pub fn user_id(name: &str) -> Option<u32> {
    nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .map(|user| user.uid.as_raw())
}

/// The name of the user running this process (`getpwuid_r`), or `uid N` when it has none.
pub fn own_user_name() -> String {
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => format!("uid {uid}"),
    }
}

/// The real user id of this process.
pub fn own_uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// The effective user id of this process.
pub fn own_euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Reads a document kurir checked before (at most `max` bytes) and insists that it is still
/// that document: its SHA-256 must be `sha256`. What the agency signs or prints is exactly
/// what was validated, whoever could reach the file since.
pub fn read_checked(path: &Path, max: u64, sha256: &str) -> Result<Vec<u8>, ReadError> {
    let bytes = read_bounded(path, max)?;
    if crate::digest::sha256_hex(&bytes) != sha256 {
        return Err(ReadError::Changed);
    }
    Ok(bytes)
}

/// Whether this process may act through group `gid`: root may, and so may a member (its
/// effective or a supplementary group).
pub fn in_group(gid: u32) -> bool {
    let gid = nix::unistd::Gid::from_raw(gid);
    nix::unistd::geteuid().is_root()
        || nix::unistd::getegid() == gid
        || nix::unistd::getgroups().is_ok_and(|groups| groups.contains(&gid))
}

/// Lets group `gid` read the folder `dir` and everything kurir writes in it from now on: the
/// folder becomes the group's, mode 2750 (setgid: new files and folders in it take the group),
/// and what it holds already follows (folders 2750, files 0640). A link is left alone.
pub fn share_with_group(dir: &Path, gid: u32) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Ok(());
    }
    std::os::unix::fs::lchown(dir, None, Some(gid))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o2750))?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            share_with_group(&path, gid)?;
        } else if meta.is_file() {
            std::os::unix::fs::lchown(&path, None, Some(gid))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640))?;
        }
    }
    Ok(())
}

/// Makes a file kurir wrote in a shared folder readable by the folder's group (0640) or a
/// folder enterable by it (2750); the group came with the folder's setgid bit.
pub fn open_to_group(path: &Path) -> std::io::Result<()> {
    let mode = if std::fs::symlink_metadata(path)?.is_dir() {
        0o2750
    } else {
        0o640
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Makes a rename or a new entry in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` atomically and durably: temporary file in the same directory,
/// fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_unsynced_dir(path, bytes)?;
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("path has no parent directory"))?;
    sync_dir(dir)
}

/// Like [`write_atomic`] without the directory's fsync: for writing many files into one
/// directory and syncing it once at the end.
pub fn write_atomic_unsynced_dir(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_renamed(path, bytes, true)
}

/// Writes `bytes` to a temporary name beside `path` (synced if `sync_data`), then renames it.
fn write_renamed(path: &Path, bytes: &[u8], sync_data: bool) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("path has no parent directory"))?;
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("path has no file name"))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(file_mode())
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        file.write_all(bytes)?;
        if sync_data {
            file.sync_data()?;
        }
    }
    std::fs::rename(&tmp, path)
}

/// Writes `bytes` to `path` atomically (temporary name, rename) but not durably: for many
/// files that are made durable together by one [`sync_filesystem`] before anything depends on
/// them (group commit), instead of one fsync per file.
pub fn write_atomic_unsynced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_renamed(path, bytes, false)
}

/// Makes everything written to the file system holding `dir` durable — file contents, new
/// names, renames — in one call (`syncfs`): the group commit for [`write_atomic_unsynced`].
pub fn sync_filesystem(dir: &Path) -> std::io::Result<()> {
    let handle = File::open(dir)?;
    nix::unistd::syncfs(&handle).map_err(std::io::Error::from)
}

/// Writes a new file durably (no rename), for files inside a directory that is itself renamed
/// into place afterwards.
pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(file_mode())
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checked_document_read_again_must_be_the_same_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("01-anvisningsbeslut.pdf");
        std::fs::write(&path, b"%PDF-1.7 checked").expect("write");
        let sha = crate::digest::sha256_hex(b"%PDF-1.7 checked");
        assert_eq!(
            read_checked(&path, 1024, &sha).expect("same"),
            b"%PDF-1.7 checked"
        );
        std::fs::write(&path, b"%PDF-1.7 swapped").expect("write");
        assert!(matches!(
            read_checked(&path, 1024, &sha),
            Err(ReadError::Changed)
        ));
    }

    #[test]
    fn refuses_links_fifos_and_oversize() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("real.pdf");
        std::fs::write(&target, b"0123456789").expect("write");
        let link = dir.path().join("link.pdf");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        assert!(matches!(read_bounded(&link, 100), Err(ReadError::Symlink)));
        assert!(matches!(
            read_bounded(&target, 5),
            Err(ReadError::TooLarge { .. })
        ));
        assert_eq!(read_bounded(&target, 10).expect("reads").len(), 10);
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRUSR).expect("mkfifo");
        assert!(matches!(
            read_bounded(&fifo, 100),
            Err(ReadError::NotRegular)
        ));
        assert!(matches!(
            read_bounded(&dir.path().join("nope"), 100),
            Err(ReadError::Missing)
        ));
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.json");
        write_atomic(&path, b"one").expect("write");
        write_atomic(&path, b"two").expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }
}

/// Why a secret key file could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Reading or writing the key file failed.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not hold a key of the right length.
    #[error("{0}: not a key of the right length; remove it to make a new one")]
    Malformed(PathBuf),
    /// Others may read the key: whoever did can forge what it signs.
    #[error("{path} is readable by others (mode {mode:04o}): whoever read it can forge what it signs; remove it to make a new one, or `chmod 600` it if you are sure nobody did")]
    Exposed {
        /// The key file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// No randomness for a new key.
    #[error("{0}: no randomness for a new key")]
    Random(PathBuf),
}

/// Reads the `len`-byte secret key in `path`, making it (random, mode 0600) when there is none.
/// A key that others may read is refused: it is no longer a secret.
pub fn secret_key(path: &Path, len: usize) -> Result<Vec<u8>, SecretError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| SecretError::Io {
        path: path.to_path_buf(),
        source,
    };
    match read_bounded(path, 4096) {
        Ok(bytes) if bytes.len() == len => {
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(SecretError::Exposed {
                    path: path.to_path_buf(),
                    mode,
                });
            }
            return Ok(bytes);
        }
        Ok(_) => return Err(SecretError::Malformed(path.to_path_buf())),
        Err(ReadError::Missing) => {}
        Err(ReadError::Io(e)) => return Err(io(e)),
        Err(_) => return Err(SecretError::Malformed(path.to_path_buf())),
    }
    let mut key = vec![0u8; len];
    openssl::rand::rand_bytes(&mut key).map_err(|_| SecretError::Random(path.to_path_buf()))?;
    write_atomic(path, &key).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(key)
}
