//! SHA-256 as hex: the one fingerprint kurir records — of documents, letters and messages (for
//! receipts and the audit trail), of certificates (for pinning) and of the audit chain's links.

/// SHA-256 as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let digest = openssl::sha::sha256(bytes);
    // One buffer rather than a String per byte: this runs for every document and message.
    let mut hex = String::with_capacity(2 * digest.len());
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_is_lower_case_hex_of_the_digest() {
        // FIPS 180-2's example for "abc".
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
