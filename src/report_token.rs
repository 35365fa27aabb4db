//! The per-recipient return address that lets a report be pinned on its job: the envelope
//! sender of each message is `<return_path local part>+<token>@<domain>`, and a delivery
//! report or read notification comes back to exactly that address. The token names the job
//! and the municipality and carries an HMAC-SHA256 under a key only the daemon holds, so a
//! forged report cannot be pinned on a job. The key lives in the state directory
//! (`proof.key`, mode 0600) and is made at first start.
//!
//! Layout, 42 lower-case characters with no separator (the whole local part must stay within
//! SMTP's 64 octets): the job id without its dashes (26), the kommunkod (4), and the first 6
//! bytes of the MAC as hex (12).

use std::path::Path;

use crate::fsutil;
use crate::job::{JobId, Kommunkod};

/// The file in the state directory that holds the key.
pub const KEY_FILE: &str = "proof.key";
/// Length of a token.
pub const TOKEN_LEN: usize = 42;
const KEY_LEN: usize = 32;
const MAC_HEX: usize = 12;

/// Why the key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenKeyError {
    /// The key file cannot be read or made, or others may read it.
    #[error("proof key (reports for messages already sent will not match a new one): {0}")]
    Key(#[from] fsutil::SecretError),
    /// OpenSSL failed.
    #[error("proof key: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

/// The secret that signs and checks tokens.
#[derive(Clone)]
pub struct TokenKey(Vec<u8>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(…)")
    }
}

impl TokenKey {
    /// Reads the key from `state_dir`, making it (random, mode 0600) at first start; a key
    /// others may read is refused (whoever read it can pin forged reports on jobs).
    pub fn load_or_create(state_dir: &Path) -> Result<TokenKey, TokenKeyError> {
        Ok(TokenKey(fsutil::secret_key(
            &state_dir.join(KEY_FILE),
            KEY_LEN,
        )?))
    }

    /// Reads the key from `state_dir` if it is there, making none: what checks a token has no
    /// business creating the key that signs them. `Ok(None)`: no key yet (no job was sent).
    pub fn existing(state_dir: &Path) -> Result<Option<TokenKey>, TokenKeyError> {
        if !state_dir.join(KEY_FILE).is_file() {
            return Ok(None);
        }
        TokenKey::load_or_create(state_dir).map(Some)
    }

    /// A key from bytes (tests and benchmarks).
    pub fn from_bytes(bytes: &[u8]) -> TokenKey {
        TokenKey(bytes.to_vec())
    }

    fn mac(&self, job: &JobId, code: Kommunkod) -> Result<String, openssl::error::ErrorStack> {
        let message = format!("kurir-proof-v1:{job}:{code}");
        let mac = crate::digest::hmac_sha256(&self.0, message.as_bytes())?;
        Ok(crate::digest::hex(&mac[..MAC_HEX / 2]))
    }

    /// The token for one job's message to one municipality.
    pub fn token(
        &self,
        job: &JobId,
        code: Kommunkod,
    ) -> Result<String, openssl::error::ErrorStack> {
        let compact: String = job.as_str().chars().filter(|c| *c != '-').collect();
        Ok(format!("{compact}{code}{}", self.mac(job, code)?))
    }

    /// The return address for one job's message to one municipality: `base` with `+<token>`
    /// after its local part.
    pub fn return_path(
        &self,
        base: &str,
        job: &JobId,
        code: Kommunkod,
    ) -> Result<String, openssl::error::ErrorStack> {
        let (local, domain) = base.rsplit_once('@').unwrap_or((base, ""));
        Ok(format!("{local}+{}@{domain}", self.token(job, code)?))
    }

    /// The job and municipality a token names, if its MAC is right.
    pub fn verify(&self, token: &str) -> Option<(JobId, Kommunkod)> {
        if token.len() != TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let token = token.to_ascii_lowercase();
        let job: JobId = format!("{}-{}-{}", &token[..8], &token[8..14], &token[14..26])
            .parse()
            .ok()?;
        let code: Kommunkod = token[26..30].parse().ok()?;
        let expected = self.mac(&job, code).ok()?;
        crate::digest::same_secret(&expected, &token[30..]).then_some((job, code))
    }

    /// The token in an address written by [`TokenKey::return_path`]: what follows the first
    /// `+` of the local part.
    pub fn token_of(address: &str) -> Option<&str> {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        let (local, _) = address.rsplit_once('@')?;
        local.split_once('+').map(|(_, token)| token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_job_and_municipality_and_only_with_the_right_key() {
        let key = TokenKey::from_bytes(&[7; 32]);
        let job = JobId::generate();
        let code: Kommunkod = "2480".parse().expect("code");
        let address = key
            .return_path("kurir-reports@agency.test", &job, code)
            .expect("token");
        assert!(address.starts_with("kurir-reports+") && address.ends_with("@agency.test"));
        let local = address.split('@').next().expect("local");
        assert!(local.len() <= 64, "{local} is longer than SMTP allows");
        let token = TokenKey::token_of(&address).expect("token in address");
        assert_eq!(key.verify(token), Some((job.clone(), code)));
        let other = TokenKey::from_bytes(&[8; 32]);
        assert_eq!(other.verify(token), None, "another key accepted the token");
        let mut forged = token.to_string();
        forged.replace_range(26..30, "0180");
        assert_eq!(
            key.verify(&forged),
            None,
            "a token moved to another municipality"
        );
        assert_eq!(key.verify("not-a-token"), None);
    }

    #[test]
    fn the_key_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().expect("dir");
        let first = TokenKey::load_or_create(dir.path()).expect("made");
        let again = TokenKey::load_or_create(dir.path()).expect("read");
        assert_eq!(first.0, again.0);
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .expect("key file")
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
    }
}
