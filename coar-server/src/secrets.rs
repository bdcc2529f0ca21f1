//! The constant-time comparisons and HMACs every secret goes through (the admin token, the
//! dashboard's sessions and CSRF tokens, webhook signatures).

use subtle::ConstantTimeEq;

/// Whether `a` and `b` are equal, in time that depends neither on where they differ nor on
/// their lengths: their SHA-256 digests are compared with `subtle`.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    Sha256::digest(a)
        .as_slice()
        .ct_eq(Sha256::digest(b).as_slice())
        .into()
}

/// HMAC-SHA256 (RFC 2104) with the `hmac` crate, lower-case hex.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            hmac_sha256_hex(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn equality_does_not_depend_on_length() {
        assert!(constant_time_eq(b"same token", b"same token"));
        assert!(!constant_time_eq(b"same token", b"same toke"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
