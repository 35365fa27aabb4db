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
    /// SHA-256 of a code sent by kurir 0.1.0 (still accepted until it expires).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_sha256: Option<String>,
    /// HMAC of the code sent to it under the daemon's code key (the code itself is never
    /// stored; without the key, a stolen record does not give the code away).
    #[serde(default)]
    pub code_mac: Option<String>,
    /// When the code stops being accepted.
    pub code_expires: Option<Timestamp>,
    /// Wrong codes typed since the code was sent; at [`MAX_CODE_ATTEMPTS`] the code is void.
    #[serde(default)]
    pub failed_attempts: u32,
}

/// Wrong verification codes accepted before a code is void: with a 40-bit code, five guesses
/// give an attacker no useful chance.
pub const MAX_CODE_ATTEMPTS: u32 = 5;

/// Codes sent to one municipality in an hour, at most, on a person's request: each is a
/// message signed by the agency to an address of the person's choice.
pub const MAX_CODES_PER_HOUR: usize = 3;

/// SHA-256 of a verification code, hex, as kurir 0.1.0 stored it.
pub(super) fn legacy_hash(secret: &str) -> String {
    crate::digest::sha256_hex(normalized(secret).as_bytes())
}

/// Codes are compared case-insensitively, without surrounding space.
fn normalized(secret: &str) -> String {
    secret.trim().to_uppercase()
}

/// The key that seals verification codes in the store: `state/code.key`, 0600, made at first
/// start. Held by the daemon (and by a command that answers from the store itself).
#[derive(Clone)]
pub struct CodeKey(Vec<u8>);

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKey(…)")
    }
}

/// The key file in the state directory.
pub const CODE_KEY_FILE: &str = "code.key";

impl CodeKey {
    /// A key from its bytes (the daemon reads them from [`CODE_KEY_FILE`] in its state
    /// directory, made at first start; tests make their own).
    pub fn from_bytes(bytes: &[u8]) -> CodeKey {
        CodeKey(bytes.to_vec())
    }

    /// The seal of `secret` for `address` of municipality `code`, hex.
    pub fn seal(&self, code: crate::job::Kommunkod, address: &str, secret: &str) -> String {
        let message = format!(
            "kurir-code-v1:{code}:{}:{}",
            address.to_lowercase(),
            normalized(secret)
        );
        // Without a MAC nothing can match: an empty seal never equals a computed one.
        crate::digest::hmac_sha256_hex(&self.0, message.as_bytes()).unwrap_or_default()
    }
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
