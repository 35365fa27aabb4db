//! Proof that an address receives mail: a pending address and the one-time code sent to it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// An address that was registered but has not yet been proven to receive mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAddress {
    /// The address waiting for proof.
    pub address: String,
    /// When it was registered.
    pub since: Timestamp,
    /// SHA-256 of the code sent to it (the code itself is never stored).
    pub code_sha256: Option<String>,
    /// When the code stops being accepted.
    pub code_expires: Option<Timestamp>,
    /// Wrong codes typed since the code was sent; at [`MAX_CODE_ATTEMPTS`] the code is void.
    #[serde(default)]
    pub failed_attempts: u32,
}

/// Wrong verification codes accepted before a code is void: with a 40-bit code, five guesses
/// give an attacker no useful chance.
pub const MAX_CODE_ATTEMPTS: u32 = 5;

/// SHA-256 of a verification code, hex; codes are compared case-insensitively.
pub(super) fn hash_code(secret: &str) -> String {
    crate::digest::sha256_hex(secret.trim().to_uppercase().as_bytes())
}

/// A fresh verification code: 8 characters without look-alikes (no 0/O, 1/I).
pub fn new_verification_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 8];
    if openssl::rand::rand_bytes(&mut bytes).is_err() {
        // Without randomness no code is safe to issue; the caller refuses an empty code.
        return String::new();
    }
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}
