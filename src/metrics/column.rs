//! The values of one per-request metric in a repetition (`ttft`, …, one `itl` per token), and
//! their statistics (every [`Stat`]), **exact** in memory that does not grow with the
//! repetition. Pure.
//!
//! A column holds its values while the repetition's columns together hold at most
//! [`IN_MEMORY_VALUES`]; then the statistics are those of the sorted values, as they always
//! were. Past that budget every column *spills*: it keeps a count, a compensated (Neumaier)
//! sum, the extremes and a histogram of the values' top 16 bits, and the percentiles are found
//! by exact selection over further passes over the records ([`Search`]): each pass either
//! collects the values of a bucket holding a wanted order statistic (when at most
//! [`COLLECT_MAX`] fall in it) or counts that bucket's values by their next 16 bits. Keys are
//! the values' order-preserving 64-bit patterns, so after 4 levels a bucket holds one value:
//! at most 3 passes after the first. The type-7 interpolation is [`stats::quantile_by`], the
//! same arithmetic as on sorted values, so percentiles, minimum and maximum are bit-identical
//! to the in-memory ones; a spilled mean and standard deviation are compensated sums in the
//! records' order (within an ulp or two of the sorted sum, not always the same bits).

use std::collections::BTreeMap;

use super::registry::{Metric, MetricKey, Stat};
use crate::stats;

/// Values the columns of one repetition hold in memory before they spill (32 MB of `f64`).
pub const IN_MEMORY_VALUES: usize = 1 << 22;

/// Most values one selection pass keeps for one bucket (512 KB); a fuller bucket is counted
/// by its next 16 bits instead.
pub const COLLECT_MAX: u64 = 1 << 16;

/// Bits of the key resolved per level.
const LEVEL_BITS: u32 = 16;
const BUCKETS: usize = 1 << LEVEL_BITS;

/// `x`'s 64-bit pattern mapped so that unsigned order is [`f64::total_cmp`]'s order.
fn key(x: f64) -> u64 {
    let bits = x.to_bits();
    match bits >> 63 {
        1 => !bits,
        _ => bits | 1 << 63,
    }
}

/// The value of a [`key`].
fn value_of(key: u64) -> f64 {
    match key >> 63 {
        1 => f64::from_bits(key & !(1 << 63)),
        _ => f64::from_bits(!key),
    }
}

/// A Neumaier (compensated) sum: within an ulp of the exact sum whatever the order.
#[derive(Debug, Clone, Copy, Default)]
struct Compensated {
    sum: f64,
    carry: f64,
}

impl Compensated {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        self.carry += match self.sum.abs() >= x.abs() {
            true => (self.sum - t) + x,
            false => (x - t) + self.sum,
        };
        self.sum = t;
    }

    fn total(self) -> f64 {
        self.sum + self.carry
    }
}

/// What a spilled column keeps from the first pass.
#[derive(Debug, Clone)]
pub struct Spilled {
    n: u64,
    sum: Compensated,
    min: u64,
    max: u64,
    /// Values by the top 16 bits of their key.
    histogram: Vec<u64>,
}

impl Spilled {
    fn new() -> Self {
        Spilled {
            n: 0,
            sum: Compensated::default(),
            min: u64::MAX,
            max: 0,
            histogram: vec![0; BUCKETS],
        }
    }

    fn push(&mut self, x: f64) {
        let k = key(x);
        self.n += 1;
        self.sum.add(x);
        self.min = self.min.min(k);
        self.max = self.max.max(k);
        self.histogram[(k >> (64 - LEVEL_BITS)) as usize] += 1;
    }
}

/// One metric's values: held, or spilled.
#[derive(Debug, Clone)]
pub enum Column {
    /// Every value, in the order pushed.
    Held(Vec<f64>),
    /// Counts and sums only; percentiles need [`Search`] passes.
    Spilled(Spilled),
}

impl Default for Column {
    fn default() -> Self {
        Column::Held(Vec::new())
    }
}

impl Column {
    /// Adds one value.
    pub fn push(&mut self, x: f64) {
        match self {
            Column::Held(v) => v.push(x),
            Column::Spilled(s) => s.push(x),
        }
    }

    /// Values held in memory.
    pub fn held(&self) -> usize {
        match self {
            Column::Held(v) => v.len(),
            Column::Spilled(_) => 0,
        }
    }

    /// Drops the values, keeping what the statistics need from them.
    pub fn spill(&mut self) {
        if let Column::Held(values) = self {
            let mut s = Spilled::new();
            values.iter().for_each(|&x| s.push(x));
            *self = Column::Spilled(s);
        }
    }

    /// Inserts `<metric>.<stat>` for every [`Stat`] of held values (nothing for none), or
    /// returns the search a spilled column needs.
    pub fn finish(self, metric: Metric, out: &mut BTreeMap<MetricKey, f64>) -> Option<Search> {
        match self {
            Column::Held(mut values) => {
                insert_sorted_stats(out, metric, &mut values);
                None
            }
            Column::Spilled(s) if s.n == 0 => None,
            Column::Spilled(s) => Some(Search::new(metric, s)),
        }
    }
}

/// The percentile of each percentile [`Stat`].
fn percentile_of(stat: Stat) -> Option<f64> {
    match stat {
        Stat::P50 => Some(0.50),
        Stat::P90 => Some(0.90),
        Stat::P95 => Some(0.95),
        Stat::P99 => Some(0.99),
        Stat::Mean | Stat::Std | Stat::Min | Stat::Max => None,
    }
}

/// Every [`Stat`] of `values` (non-empty), sorting them: sums in ascending order, type-7
/// percentiles.
pub fn insert_sorted_stats(out: &mut BTreeMap<MetricKey, f64>, metric: Metric, values: &mut [f64]) {
    if values.is_empty() {
        return;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    for stat in Stat::ALL {
        let x = match (stat, percentile_of(stat)) {
            (_, Some(q)) => stats::quantile(values, q).expect("non-empty"),
            (Stat::Mean, _) => mean,
            (Stat::Std, _) => var.sqrt(),
            (Stat::Min, _) => values[0],
            _ => values[values.len() - 1],
        };
        out.insert(metric.at(stat), x);
    }
}

/// Values whose keys start with `prefix` (its top `depth` bits), and the order statistics
/// sought among them.
#[derive(Debug)]
struct Bucket {
    depth: u32,
    prefix: u64,
    count: u64,
    /// (rank in the column, rank in this bucket).
    ranks: Vec<(u64, u64)>,
    pass: Pass,
}

/// What the next pass does with a bucket's values.
#[derive(Debug)]
enum Pass {
    Collect(Vec<f64>),
    Count(Vec<u64>),
}

impl Bucket {
    fn new(depth: u32, prefix: u64, count: u64) -> Self {
        let pass = match count <= COLLECT_MAX {
            true => Pass::Collect(Vec::with_capacity(count as usize)),
            false => Pass::Count(vec![0; BUCKETS]),
        };
        Bucket {
            depth,
            prefix,
            count,
            ranks: Vec::new(),
            pass,
        }
    }

    fn holds(&self, k: u64) -> bool {
        k >> (64 - self.depth) == self.prefix
    }
}

/// Exact selection of a spilled column's order statistics, one pass over its values at a
/// time ([`Search::see`] each value, then [`Search::end_pass`]).
#[derive(Debug)]
pub struct Search {
    metric: Metric,
    s: Spilled,
    mean: f64,
    squares: Compensated,
    squares_done: bool,
    buckets: Vec<Bucket>,
    found: BTreeMap<u64, f64>,
}

impl Search {
    fn new(metric: Metric, s: Spilled) -> Self {
        let mut ranks: Vec<u64> = Stat::ALL
            .into_iter()
            .filter_map(percentile_of)
            .filter_map(|q| stats::quantile_ranks(s.n as usize, q))
            .flat_map(|(j, next)| [Some(j), next])
            .flatten()
            .map(|r| r as u64)
            .collect();
        ranks.sort_unstable();
        ranks.dedup();
        let mut search = Search {
            metric,
            mean: s.sum.total() / s.n as f64,
            squares: Compensated::default(),
            squares_done: s.n == 1,
            buckets: Vec::new(),
            found: BTreeMap::new(),
            s,
        };
        let located = locate(
            &search.s.histogram,
            0,
            0,
            &ranks.iter().map(|&r| (r, r)).collect::<Vec<_>>(),
        );
        search.place(located);
        search
    }

    /// Files each (rank, bucket key at `depth`, count, rank within) as found or to search.
    fn place(&mut self, located: Vec<Located>) {
        for l in located {
            if l.depth == 64 {
                self.found.insert(l.rank, value_of(l.prefix));
                continue;
            }
            let i = match (self.buckets.iter())
                .position(|b| b.depth == l.depth && b.prefix == l.prefix)
            {
                Some(i) => i,
                None => {
                    self.buckets.push(Bucket::new(l.depth, l.prefix, l.count));
                    self.buckets.len() - 1
                }
            };
            self.buckets[i].ranks.push((l.rank, l.within));
        }
    }

    /// True while another pass over the values is needed.
    pub fn needs_pass(&self) -> bool {
        !self.buckets.is_empty() || !self.squares_done
    }

    /// The metric searched.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Sees one value of this pass.
    pub fn see(&mut self, x: f64) {
        if !self.squares_done {
            self.squares.add((x - self.mean).powi(2));
        }
        let k = key(x);
        for b in &mut self.buckets {
            if !b.holds(k) {
                continue;
            }
            match &mut b.pass {
                Pass::Collect(v) => v.push(x),
                Pass::Count(h) => {
                    let shift = 64 - b.depth - LEVEL_BITS;
                    h[((k >> shift) as usize) & (BUCKETS - 1)] += 1;
                }
            }
        }
    }

    /// Ends a pass: resolves what it collected, refines what it counted.
    pub fn end_pass(&mut self) {
        self.squares_done = true;
        let mut located = Vec::new();
        for b in std::mem::take(&mut self.buckets) {
            match b.pass {
                Pass::Collect(mut v) => {
                    debug_assert_eq!(v.len() as u64, b.count);
                    v.sort_by(f64::total_cmp);
                    for (rank, within) in b.ranks {
                        self.found.insert(rank, v[within as usize]);
                    }
                }
                Pass::Count(h) => located.extend(locate(&h, b.depth, b.prefix, &b.ranks)),
            }
        }
        self.place(located);
    }

    /// Inserts every [`Stat`] once no pass is needed.
    pub fn finish(self, out: &mut BTreeMap<MetricKey, f64>) {
        assert!(!self.needs_pass(), "statistics before the last pass");
        let n = self.s.n as f64;
        let var = match self.s.n > 1 {
            true => self.squares.total() / (n - 1.0),
            false => 0.0,
        };
        for stat in Stat::ALL {
            let x = match (stat, percentile_of(stat)) {
                (_, Some(q)) => {
                    stats::quantile_by(self.s.n as usize, q, |r| self.found[&(r as u64)])
                        .expect("non-empty")
                }
                (Stat::Mean, _) => self.mean,
                (Stat::Std, _) => var.sqrt(),
                (Stat::Min, _) => value_of(self.s.min),
                _ => value_of(self.s.max),
            };
            out.insert(self.metric.at(stat), x);
        }
    }
}

/// Where a sought rank lies one level down.
struct Located {
    rank: u64,
    depth: u32,
    prefix: u64,
    count: u64,
    within: u64,
}

/// The sub-bucket of a histogram (of the keys with `prefix` at `depth`) holding each of
/// `ranks` (rank in the column, rank within the histogram's values).
fn locate(histogram: &[u64], depth: u32, prefix: u64, ranks: &[(u64, u64)]) -> Vec<Located> {
    let mut out = Vec::with_capacity(ranks.len());
    for &(rank, within) in ranks {
        let mut below = 0;
        let (i, &count) = (histogram.iter().enumerate())
            .find(|&(_, &c)| {
                below += c;
                below > within
            })
            .expect("the rank is inside the histogram");
        out.push(Located {
            rank,
            depth: depth + LEVEL_BITS,
            prefix: prefix << LEVEL_BITS | i as u64,
            count,
            within: within - (below - count),
        });
    }
    out
}

#[cfg(test)]
#[path = "column_tests.rs"]
mod tests;
