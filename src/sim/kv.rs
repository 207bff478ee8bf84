//! KV-cache block accounting of the simulated engine: a pool of fixed-size blocks, growth of a
//! sequence's allocation as its computed tokens grow, and the admission watermark.
//!
//! Only counts are kept (which block holds what does not matter without prefix caching). A
//! sequence holding `computed` tokens needs `ceil(computed / block_size)` blocks.

/// The block pool.
#[derive(Debug, Clone)]
pub(crate) struct KvCache {
    block_size: u64,
    total_blocks: u64,
    free_blocks: u64,
    watermark_blocks: u64,
}

impl KvCache {
    /// A pool of `capacity_tokens / block_size` blocks (rounded down); new admissions must leave
    /// `floor(watermark × blocks)` blocks free (vLLM V0 and Vidur round the same way).
    pub(crate) fn new(capacity_tokens: u64, block_size: u32, watermark: f64) -> Self {
        let block_size = u64::from(block_size.max(1));
        let total_blocks = capacity_tokens / block_size;
        // Truncation is the intended rounding; `watermark` is validated to [0, 1).
        let watermark_blocks = (watermark * total_blocks as f64) as u64;
        KvCache {
            block_size,
            total_blocks,
            free_blocks: total_blocks,
            watermark_blocks,
        }
    }

    /// Blocks needed to hold `tokens` tokens.
    pub(crate) fn blocks_for(&self, tokens: u64) -> u64 {
        tokens.div_ceil(self.block_size)
    }

    /// True when a sequence that grows to `tokens` tokens can be admitted into an otherwise
    /// empty cache and then run to the end alone; otherwise it can never be served.
    pub(crate) fn can_ever_hold(&self, tokens: u64) -> bool {
        self.blocks_for(tokens) + self.watermark_blocks <= self.total_blocks
    }

    /// Grows a running sequence's allocation (`held` blocks) to cover `tokens` tokens, ignoring
    /// the watermark. Returns false, changing nothing, when too few blocks are free.
    pub(crate) fn grow(&mut self, held: &mut u32, tokens: u64) -> bool {
        let extra = self.blocks_for(tokens).saturating_sub(u64::from(*held));
        if extra > self.free_blocks {
            return false;
        }
        self.take(held, extra);
        true
    }

    /// Allocates the first blocks of a waiting sequence (covering `tokens` tokens) if that leaves
    /// at least the watermark free. Returns false, changing nothing, otherwise.
    pub(crate) fn admit(&mut self, held: &mut u32, tokens: u64) -> bool {
        let extra = self.blocks_for(tokens).saturating_sub(u64::from(*held));
        if extra + self.watermark_blocks > self.free_blocks {
            return false;
        }
        self.take(held, extra);
        true
    }

    fn take(&mut self, held: &mut u32, extra: u64) {
        self.free_blocks -= extra;
        // A sequence's blocks are bounded by its tokens (u32), so the sum fits in u32.
        *held += extra as u32;
    }

    /// Returns a sequence's blocks to the pool.
    pub(crate) fn release(&mut self, held: &mut u32) {
        self.free_blocks += u64::from(*held);
        *held = 0;
    }

    /// Share of blocks in use, in [0, 1] (0 for an empty pool).
    pub(crate) fn usage(&self) -> f64 {
        if self.total_blocks == 0 {
            return 0.0;
        }
        (self.total_blocks - self.free_blocks) as f64 / self.total_blocks as f64
    }

    /// Tokens the whole pool can hold (a multiple of the block size).
    pub(crate) fn capacity_tokens(&self) -> u64 {
        self.total_blocks * self.block_size
    }

    /// Blocks currently free.
    #[cfg(test)]
    pub(crate) fn free_blocks(&self) -> u64 {
        self.free_blocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_up_and_capacity_rounds_down() {
        let kv = KvCache::new(1000, 16, 0.0);
        assert_eq!(kv.capacity_tokens(), 992); // 62 blocks
        assert_eq!(kv.blocks_for(0), 0);
        assert_eq!(kv.blocks_for(1), 1);
        assert_eq!(kv.blocks_for(16), 1);
        assert_eq!(kv.blocks_for(17), 2);
    }

    #[test]
    fn admission_keeps_the_watermark_but_growth_does_not() {
        // 100 blocks, watermark 10%: admission may use 90, growth may use all 100.
        let mut kv = KvCache::new(1600, 16, 0.1);
        let mut a = 0;
        assert!(!kv.admit(&mut a, 91 * 16));
        assert_eq!(a, 0);
        assert!(kv.admit(&mut a, 90 * 16));
        assert_eq!((a, kv.free_blocks()), (90, 10));
        let mut b = 0;
        assert!(
            !kv.admit(&mut b, 1),
            "admission would eat into the watermark"
        );
        assert!(kv.grow(&mut a, 100 * 16));
        assert!(!kv.grow(&mut a, 100 * 16 + 1));
        assert_eq!(kv.usage(), 1.0);
        kv.release(&mut a);
        assert_eq!((a, kv.free_blocks()), (0, 100));
        assert_eq!(kv.usage(), 0.0);
    }

    #[test]
    fn growth_only_allocates_the_missing_blocks() {
        let mut kv = KvCache::new(160, 16, 0.0);
        let mut a = 0;
        assert!(kv.grow(&mut a, 20));
        assert_eq!(a, 2);
        assert!(kv.grow(&mut a, 32)); // still 2 blocks
        assert_eq!((a, kv.free_blocks()), (2, 8));
    }

    #[test]
    fn never_fitting_sequences_are_detected() {
        let kv = KvCache::new(1600, 16, 0.01); // 100 blocks, watermark 1
        assert!(kv.can_ever_hold(99 * 16));
        assert!(!kv.can_ever_hold(99 * 16 + 1));
        assert!(!KvCache::new(0, 16, 0.01).can_ever_hold(1));
    }
}
