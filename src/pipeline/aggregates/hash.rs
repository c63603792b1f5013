//! A stable 64-bit hash (XXH64) for sketches. Sketch partials are written by one process
//! and merged by another (invariant 4), so the hash must give the same value for the same
//! bytes in every process, build and platform: std's `RandomState`/`DefaultHasher` promise
//! neither, XXH64 is a fixed, published function with reference test vectors.

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

/// XXH64 of `bytes` with seed 0: the hash every eventfold sketch uses.
pub fn hash64(bytes: &[u8]) -> u64 {
    xxh64(bytes, 0)
}

/// XXH64 of `bytes` with `seed`, as specified by the xxHash reference implementation.
pub fn xxh64(bytes: &[u8], seed: u64) -> u64 {
    let len = bytes.len() as u64;
    let mut rest = bytes;
    let mut h = if rest.len() >= 32 {
        let mut v = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        while let Some((stripe, tail)) = rest.split_first_chunk::<32>() {
            for (lane, acc) in v.iter_mut().enumerate() {
                *acc = round(*acc, read_u64(&stripe[lane * 8..]));
            }
            rest = tail;
        }
        let mut h = v[0]
            .rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18));
        for acc in v {
            h = (h ^ round(0, acc)).wrapping_mul(P1).wrapping_add(P4);
        }
        h
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(len);
    while let Some((word, tail)) = rest.split_first_chunk::<8>() {
        h ^= round(0, u64::from_le_bytes(*word));
        h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
        rest = tail;
    }
    if let Some((word, tail)) = rest.split_first_chunk::<4>() {
        h ^= u64::from(u32::from_le_bytes(*word)).wrapping_mul(P1);
        h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        rest = tail;
    }
    for &byte in rest {
        h ^= u64::from(byte).wrapping_mul(P5);
        h = h.rotate_left(11).wrapping_mul(P1);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^ (h >> 32)
}

fn round(acc: u64, input: u64) -> u64 {
    acc.wrapping_add(input.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

fn read_u64(bytes: &[u8]) -> u64 {
    bytes
        .first_chunk::<8>()
        .map_or(0, |word| u64::from_le_bytes(*word))
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
