//! SHA-256 as hex: the one fingerprint kurir records — of documents, letters and messages (for
//! receipts and the audit trail), of certificates (for pinning) and of the audit chain's links.

/// Bytes as lower-case hex: the one way kurir writes a digest, a MAC or a random id.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    // One buffer rather than a String per byte: this runs for every document and message.
    let mut hex = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// SHA-256 as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&openssl::sha::sha256(bytes))
}

/// HMAC-SHA256 of `data` under `key` (OpenSSL's): the one MAC kurir computes — report tokens,
/// verification codes, form tokens, the audit chain's seal.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::sign::Signer;
    let key = PKey::hmac(key)?;
    let mut signer = Signer::new(MessageDigest::sha256(), &key)?;
    signer.update(data)?;
    signer.sign_to_vec()
}

/// [`hmac_sha256`] as lower-case hex; `None` only if OpenSSL fails.
pub fn hmac_sha256_hex(key: &[u8], data: &[u8]) -> Option<String> {
    hmac_sha256(key, data).ok().map(|mac| hex(&mac))
}

/// Whether two MACs (or other secrets) are equal, in time that does not depend on where they
/// differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    !a.is_empty() && a.len() == b.len() && openssl::memcmp::eq(a.as_bytes(), b.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_is_rfc_4231s_first_case() {
        assert_eq!(
            hmac_sha256_hex(&[0x0b; 20], b"Hi There").as_deref(),
            Some("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        );
        assert!(same_secret("ab", "ab") && !same_secret("ab", "ac") && !same_secret("", ""));
    }

    #[test]
    fn sha256_is_lower_case_hex_of_the_digest() {
        // FIPS 180-2's example for "abc".
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
