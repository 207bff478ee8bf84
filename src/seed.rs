//! Seed derivation: every random stream of a run (schedule order, arrivals, prompt lengths,
//! simulator noise) gets its own seed, derived from the experiment seed by a stable hash
//! (FNV-1a 64 over a canonical byte encoding, then the SplitMix64 finaliser). Stable means
//! across Rust versions and platforms, which `std`'s `DefaultHasher` is not, so a seed in a
//! report reproduces the run years later.
//!
//! Workload streams pass `cell = None` so every cell sees the same arrivals and prompts for
//! a given repetition (common random numbers: differences between cells are then not noise
//! from different draws).

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64-bit hash of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(FNV_PRIME)
    })
}

/// The SplitMix64 finaliser: a bijective mix with good avalanche.
pub fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of one random stream.
///
/// Encoding (version 1, never change it; add a new version instead): `b"exp-seed-v1"`,
/// the experiment seed (8 bytes LE), the cell as a tag byte (0 = none, 1 = some) followed
/// when present by its length (4 bytes LE) and UTF-8 bytes, the repetition (4 bytes LE),
/// the stream name's length (4 bytes LE) and UTF-8 bytes.
pub fn derive(experiment_seed: u64, cell: Option<&str>, repetition: u32, stream: &str) -> u64 {
    let mut bytes = Vec::with_capacity(64);
    bytes.extend_from_slice(b"exp-seed-v1");
    bytes.extend_from_slice(&experiment_seed.to_le_bytes());
    match cell {
        None => bytes.push(0),
        Some(c) => {
            bytes.push(1);
            bytes.extend_from_slice(&(c.len() as u32).to_le_bytes());
            bytes.extend_from_slice(c.as_bytes());
        }
    }
    bytes.extend_from_slice(&repetition.to_le_bytes());
    bytes.extend_from_slice(&(stream.len() as u32).to_le_bytes());
    bytes.extend_from_slice(stream.as_bytes());
    mix64(fnv1a64(&bytes))
}

/// A tiny stable generator (SplitMix64) for shuffles that must never change with a
/// dependency upgrade, such as the run order.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting at `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let out = mix64(self.state);
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        out
    }

    /// A uniform integer in `0..n` (`n > 0`), without modulo bias (Lemire's method).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_the_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // First outputs of SplitMix64 seeded with 0 (Vigna's reference implementation).
        let mut g = SplitMix64::new(0);
        assert_eq!(g.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(g.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn derived_seeds_are_pinned() {
        // If these change, every published seed stops reproducing its run.
        assert_eq!(derive(42, None, 0, "arrivals"), PINNED_A);
        assert_eq!(derive(42, Some("tp-4"), 3, "sim-noise"), PINNED_B);
    }

    #[test]
    fn every_input_changes_the_seed() {
        let base = derive(1, None, 0, "s");
        assert_ne!(base, derive(2, None, 0, "s"));
        assert_ne!(base, derive(1, Some(""), 0, "s"));
        assert_ne!(base, derive(1, None, 1, "s"));
        assert_ne!(base, derive(1, None, 0, "t"));
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        assert_ne!(derive(1, Some("ab"), 0, "c"), derive(1, Some("a"), 0, "bc"));
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut g = SplitMix64::new(7);
        let mut seen = [0u32; 5];
        for _ in 0..1000 {
            seen[g.below(5) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 150), "{seen:?}");
    }

    // Computed independently (Python) from the encoding documented on `derive`.
    const PINNED_A: u64 = 0x73fc_1913_87a5_f4cd;
    const PINNED_B: u64 = 0x36b6_5b60_0d86_22c1;
}
