//! A stable 64-bit hash (XXH64) for sketches. Sketch partials are written by one process
//! and merged by another (invariant 4), so the hash must give the same value for the same
//! bytes in every process, build and platform: std's `RandomState`/`DefaultHasher` promise
//! neither, XXH64 is a fixed, published function; the reference vectors are checked here.

/// XXH64 of `bytes` with seed 0: the hash every eventfold sketch uses.
pub fn hash64(bytes: &[u8]) -> u64 {
    xxh64(bytes, 0)
}

/// XXH64 of `bytes` with `seed` (the `xxhash-rust` implementation of the reference).
pub fn xxh64(bytes: &[u8], seed: u64) -> u64 {
    xxhash_rust::xxh64::xxh64(bytes, seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference vectors of the xxHash specification.
    #[test]
    fn reference_vectors() {
        let cases: &[(&[u8], u64, u64)] = &[
            (b"", 0, 0xEF46_DB37_51D8_E999),
            (b"", 1, 0xD5AF_BA13_36A3_BE4B),
            (b"a", 0, 0xD24E_C4F1_A98C_6E5B),
            (b"abc", 0, 0x44BC_2CF5_AD77_0999),
            (b"asdf", 0, 0x4158_72F5_99CE_A71E),
            (b"Call me Ishmael.", 0, 0x6D04_390F_C9D6_1A90),
            (
                b"Nobody inspects the spammish repetition",
                0,
                0xFBCE_A83C_8A37_8BF1,
            ),
        ];
        for &(input, seed, expected) in cases {
            assert_eq!(
                xxh64(input, seed),
                expected,
                "{:?} seed {seed}",
                String::from_utf8_lossy(input)
            );
        }
        assert_eq!(hash64(b"abc"), 0x44BC_2CF5_AD77_0999);
    }

    /// Every input length from 0 to 100 (all tail and stripe paths) hashes differently.
    #[test]
    fn lengths_differ() {
        let data: Vec<u8> = (0u8..100).collect();
        let mut seen: Vec<u64> = (0..=100).map(|n| hash64(&data[..n])).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 101);
    }
}
