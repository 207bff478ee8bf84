//! Seeded random streams. Every random quantity of a workload is drawn from a ChaCha8 stream
//! keyed by (seed, purpose) and, where it belongs to one request, numbered by the request index,
//! so request `i` is the same whatever was drawn before it (common random numbers across cells).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a stream is used for; mixed into its key so purposes never share numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Gaps between open-loop arrivals.
    Arrivals,
    /// Prompt lengths.
    InputLength,
    /// Output lengths.
    OutputLength,
    /// Per-request nonce words and filler text.
    Text,
    /// Shared prefixes of `shared-prefix` prompts.
    Prefix,
    /// The order in which dataset entries are used.
    Permutation,
}

impl Purpose {
    fn tag(self) -> u64 {
        match self {
            Purpose::Arrivals => 1,
            Purpose::InputLength => 2,
            Purpose::OutputLength => 3,
            Purpose::Text => 4,
            Purpose::Prefix => 5,
            Purpose::Permutation => 6,
        }
    }
}

/// The 64-bit finalizer of SplitMix64: a bijection on `u64` that scrambles every bit.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The key of the streams for `purpose` under `seed`.
pub(crate) fn key(seed: u64, purpose: Purpose) -> u64 {
    mix64(seed ^ mix64(purpose.tag().wrapping_mul(0x9e37_79b9_7f4a_7c15)))
}

/// A sequential stream for `purpose` (one per repetition, e.g. arrival gaps).
pub(crate) fn sequential(seed: u64, purpose: Purpose) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(key(seed, purpose))
}

/// The stream of request `index` for the purpose whose key is `key` (ChaCha's 2^64 independent
/// streams per key, so no request's numbers depend on another's).
pub(crate) fn indexed(key: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(key);
    rng.set_stream(index);
    rng
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn indexed_streams_differ_by_index_and_purpose_and_repeat_exactly() {
        let k = key(7, Purpose::Text);
        let a = indexed(k, 3).next_u64();
        assert_eq!(a, indexed(k, 3).next_u64());
        assert_ne!(a, indexed(k, 4).next_u64());
        assert_ne!(a, indexed(key(7, Purpose::Prefix), 3).next_u64());
        assert_ne!(key(7, Purpose::Text), key(8, Purpose::Text));
    }
}
