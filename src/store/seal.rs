//! The integrity key: what makes the audit chain and a backup worth trusting after they have
//! left this process. The chain's links are plain SHA-256, which anyone can recompute after
//! rewriting an entry; its head is therefore sealed with an HMAC under a key kept beside the
//! store and never copied into a backup (nor into the chain). Whoever changes the chain or a
//! backup copy without the key cannot make the seal match: `kurir audit verify`,
//! `kurir backup --verify` and `kurir restore` say so.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The key's file in the state folder (mode 0600; made at the first start).
pub const KEY_FILE: &str = "integrity.key";

/// The systemd credential that, when handed over, is used instead of the file.
pub const CREDENTIAL: &str = "integrity-key";

const KEY_BYTES: usize = 32;

/// The integrity key. Cheap to clone.
#[derive(Clone)]
pub struct IntegrityKey(Arc<Vec<u8>>);

impl std::fmt::Debug for IntegrityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IntegrityKey(..)")
    }
}

/// Why the key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file or credential could not be read, or a new one made.
    #[error("integrity key: {0}")]
    File(#[from] crate::fsutil::SecretError),
}

impl IntegrityKey {
    /// Where the key for the store in `state_dir` is: the credential systemd handed over, else
    /// the file in the state folder.
    pub fn location(state_dir: &Path) -> PathBuf {
        crate::config::credentials::path(CREDENTIAL).unwrap_or_else(|| state_dir.join(KEY_FILE))
    }

    /// The key of the store in `state_dir`, made when there is none yet.
    pub fn for_state(state_dir: &Path) -> Result<IntegrityKey, KeyError> {
        IntegrityKey::read(&IntegrityKey::location(state_dir))
    }

    /// The key in `path` (made there, mode 0600, when missing).
    pub fn read(path: &Path) -> Result<IntegrityKey, KeyError> {
        Ok(IntegrityKey(Arc::new(crate::fsutil::secret_key(
            path, KEY_BYTES,
        )?)))
    }

    /// The key in `path`, which must exist: a key given to check something is never made.
    pub fn existing(path: &Path) -> Result<IntegrityKey, KeyError> {
        if !path.is_file() {
            return Err(KeyError::File(crate::fsutil::SecretError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            }));
        }
        IntegrityKey::read(path)
    }

    /// The seal of `data` for `purpose` (each purpose seals its own kind of thing, so a seal
    /// of one can never stand for another).
    pub fn seal(&self, purpose: &str, data: &[u8]) -> String {
        let mut input = Vec::with_capacity(purpose.len() + 1 + data.len());
        input.extend_from_slice(purpose.as_bytes());
        input.push(0);
        input.extend_from_slice(data);
        crate::digest::hmac_sha256_hex(&self.0, &input).unwrap_or_default()
    }

    /// Whether `seal` is the seal of `data` for `purpose`.
    pub fn opens(&self, purpose: &str, data: &[u8], seal: &str) -> bool {
        crate::digest::same_secret(&self.seal(purpose, data), seal)
    }

    /// A key from its bytes, as the command line hands it to a process of the store's owner.
    pub fn from_bytes(bytes: &[u8]) -> IntegrityKey {
        IntegrityKey(Arc::new(bytes.to_vec()))
    }

    /// The key's bytes, to hand to a process of the store's owner (never logged).
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Writes the key to `path` (mode 0600): a restore puts the key it checked the backup
    /// with beside the store it made.
    pub fn install(&self, path: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        crate::fsutil::write_atomic(path, &self.0)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
    }
}
