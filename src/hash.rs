//! FNV-1a (64 bit): the hash of cache keys and of the named seed streams. Not cryptographic;
//! stable across platforms and releases (results are keyed by it).
//!
//! It imports nothing, so that every module can use it ([`crate::util::rng_for`]'s seed streams
//! included); [`crate::results::hash`] re-exports it with the rest of what result files share.

/// FNV offset basis.
pub const FNV_OFFSET: u64 = 0xcbf29ce484222325;
/// FNV prime.
pub const FNV_PRIME: u64 = 0x100000001b3;

/// FNV-1a of `bytes`, continuing from `h` (start with [`FNV_OFFSET`]).
pub fn fnv1a64_from(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// FNV-1a of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_from(FNV_OFFSET, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values of the FNV-1a 64 test suite.
    #[test]
    fn known_values() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }
}
