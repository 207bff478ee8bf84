//! Quality across repetitions (`[quality]`): per cell, the pooled perplexity and the pooled
//! retrieval accuracy with its Wilson interval (by depth too); between cells, the inputs of
//! the comparisons paired by item — the same documents' log-likelihoods, the same items'
//! answers — and the notes a reader needs when a measurement has no value.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{CellResults, cell_label};
use crate::metrics::quality::QualityItems;
use crate::metrics::{Metric, MetricKey};
use crate::record::QualityKind;
use crate::stats::{self, Comparison, Interval, PairCounts, StatsError};

/// Retrieval accuracy of one cell over every repetition's items.
#[derive(Debug, Clone, Serialize)]
pub struct Pooled {
    /// Items answered exactly.
    pub correct: u64,
    /// Items answered.
    pub trials: u64,
    /// `correct / trials`.
    pub accuracy: f64,
    /// Wilson interval at the scenario's confidence.
    pub interval: Option<Interval>,
}

/// Retrieval accuracy at one depth.
#[derive(Debug, Clone, Serialize)]
pub struct AtDepth {
    /// The depth (0 = start of the filler, 1 = end).
    pub depth: f64,
    /// The pooled accuracy there.
    pub pooled: Pooled,
}

/// Under load: how a cell's items were mixed into its arrivals, over every repetition.
#[derive(Debug, Clone, Serialize)]
pub struct LoadSummary {
    /// The fraction of arrivals asked for.
    pub share: f64,
    /// Arrivals released in the measured windows.
    pub arrivals: u64,
    /// Of them, quality items.
    pub quality_arrivals: u64,
    /// Items there were to mix in, per repetition.
    pub items: u64,
    /// Repetitions whose load ended before every item was reached and scored (its arrival
    /// not released, or the item still running at the end of the grace period).
    pub short_reps: usize,
    /// Items scored or failed, over every repetition.
    pub reached: u64,
    /// Repetitions.
    pub reps: usize,
    /// Median seconds from send to answer of the scored items (type 7), never part of the
    /// speed metrics.
    pub latency_p50: Option<f64>,
}

/// One cell's quality.
#[derive(Debug, Clone, Serialize)]
pub struct CellQuality {
    /// Cell id.
    pub id: String,
    /// Cell label.
    pub label: String,
    /// exp(Σ nll / Σ tokens) over the segments of every repetition that has a perplexity.
    pub ppl: Option<f64>,
    /// Tokens scored per repetition.
    pub ppl_tokens: Option<u64>,
    /// Retrieval accuracy over every repetition's items.
    pub accuracy: Option<Pooled>,
    /// The prompt length of the cell's items.
    pub context_tokens: Option<u32>,
    /// Accuracy by depth.
    pub by_depth: Vec<AtDepth>,
    /// Why a measurement has no value (the server cannot do it, items failed), and items
    /// under load that were not reached.
    pub notes: Vec<String>,
    /// Under load: the mix (`None` for passes after each repetition).
    pub under_load: Option<LoadSummary>,
}

/// Pools `correct` of `trials` with a Wilson interval.
fn pooled(correct: u64, trials: u64, confidence: f64) -> Pooled {
    Pooled {
        correct,
        trials,
        accuracy: correct as f64 / trials.max(1) as f64,
        interval: stats::wilson(correct, trials, confidence),
    }
}

/// The quality of each cell with a quality pass; empty without `[quality]`.
pub fn describe(cells: &[CellResults], confidence: f64) -> Vec<CellQuality> {
    cells
        .iter()
        .filter(|c| c.reps.iter().any(|r| r.summary.quality.is_some()))
        .map(|c| describe_cell(c, confidence))
        .collect()
}

fn describe_cell(cell: &CellResults, confidence: f64) -> CellQuality {
    let items: Vec<&QualityItems> = (cell.reps.iter())
        .filter_map(|r| r.summary.quality.as_ref())
        .collect();
    let mut notes: BTreeMap<(QualityKind, bool, String), (usize, u64)> = BTreeMap::new();
    for it in &items {
        for gap in &it.gaps {
            let n = notes
                .entry((gap.what, gap.unsupported, gap.reason.clone()))
                .or_default();
            n.0 += 1;
            n.1 += gap.failed;
        }
    }
    let reps = items.len();
    let under_load = load_summary(&items);
    let mut notes: Vec<String> = notes
        .into_iter()
        .map(|((what, unsupported, reason), (count, failed))| match unsupported {
            true => format!("{}: not measured — {reason}", what.name()),
            false => format!(
                "{}: no value in {count} of {reps} repetitions — {failed} item(s) failed; the first: {reason}",
                what.name()
            ),
        })
        .collect();
    if let Some(u) = under_load.as_ref().filter(|u| u.short_reps > 0) {
        notes.push(format!(
            "under load, {} of {} repetitions ended before all {} items were reached ({} per repetition on average): items not reached were not scored (hint: more requests, or a larger [quality] share, reach them all)",
            u.short_reps,
            u.reps,
            u.items,
            crate::units::sig(u.reached as f64 / u.reps.max(1) as f64, 3)
        ));
    }
    let with_ppl: Vec<&&QualityItems> = (items.iter())
        .filter(|i| i.gap(QualityKind::Perplexity).is_none() && !i.segments.is_empty())
        .collect();
    let (nll, tokens) = with_ppl.iter().fold((0.0, 0u64), |(n, t), i| {
        let (a, b) = i.totals();
        (n + a, t + b)
    });
    let ppl = (tokens > 0).then(|| (nll / tokens as f64).exp());
    let answered: Vec<&&QualityItems> = (items.iter())
        .filter(|i| i.gap(QualityKind::Retrieval).is_none() && !i.answers.is_empty())
        .collect();
    let answers = answered.iter().flat_map(|i| i.answers.iter());
    let (correct, trials) = answers
        .clone()
        .fold((0, 0), |(c, t), a| (c + u64::from(a.correct), t + 1));
    let mut depths: BTreeMap<u64, (f64, u64, u64)> = BTreeMap::new();
    for a in answers.clone() {
        let e = depths.entry(a.depth.to_bits()).or_insert((a.depth, 0, 0));
        e.1 += u64::from(a.correct);
        e.2 += 1;
    }
    let mut by_depth: Vec<AtDepth> = depths
        .into_values()
        .map(|(depth, c, t)| AtDepth {
            depth,
            pooled: pooled(c, t, confidence),
        })
        .collect();
    by_depth.sort_by(|a, b| a.depth.total_cmp(&b.depth));
    CellQuality {
        id: cell.id.clone(),
        label: cell_label(&cell.swept),
        ppl,
        ppl_tokens: (!with_ppl.is_empty()).then(|| tokens / with_ppl.len() as u64),
        accuracy: (trials > 0).then(|| pooled(correct, trials, confidence)),
        context_tokens: answers.clone().next().map(|a| a.context_tokens),
        by_depth,
        notes,
        under_load,
    }
}

/// The mix over the repetitions that ran under load, or `None` when none did.
fn load_summary(items: &[&QualityItems]) -> Option<LoadSummary> {
    let mixes: Vec<&crate::metrics::quality::LoadMix> =
        items.iter().filter_map(|i| i.under_load.as_ref()).collect();
    let first = mixes.first()?;
    let latencies: Vec<f64> = (mixes.iter())
        .flat_map(|m| m.latencies.iter().copied())
        .collect();
    Some(LoadSummary {
        share: first.share,
        arrivals: mixes.iter().map(|m| m.arrivals).sum(),
        quality_arrivals: mixes.iter().map(|m| m.quality_arrivals).sum(),
        reached: (mixes.iter())
            .map(|m| m.quality_arrivals.saturating_sub(m.unfinished))
            .sum(),
        items: first.items,
        short_reps: mixes
            .iter()
            .filter(|m| m.quality_arrivals.saturating_sub(m.unfinished) < m.items)
            .count(),
        reps: mixes.len(),
        latency_p50: stats::quantile_of(&latencies, 0.5),
    })
}

/// The quality metrics compared between cells, in report order.
pub const QUALITY_METRICS: [MetricKey; 2] = [Metric::Ppl.key(), Metric::RetrievalAccuracy.key()];

/// Compares two cells on a quality metric, paired by item: `None` when either has no value
/// for it.
pub(crate) fn compare(
    a: &CellResults,
    b: &CellResults,
    metric: MetricKey,
    alpha: f64,
) -> Option<Result<Comparison, StatsError>> {
    let (va, vb) = (super::rep_values(a, metric), super::rep_values(b, metric));
    if va.is_empty() || vb.is_empty() {
        return None;
    }
    if metric == Metric::Ppl.key() {
        let docs = segment_pairs(a, b);
        (!docs.is_empty()).then(|| stats::compare_perplexity(&va, &vb, &docs, alpha))
    } else {
        let counts = answer_pairs(a, b);
        let pairs = counts.both + counts.only_baseline + counts.only_candidate + counts.neither;
        (pairs > 0).then(|| stats::compare_accuracy(&va, &vb, counts, alpha))
    }
}

/// Why two cells' perplexities are not of the same text: documents both scored whose text
/// digests differ (the corpus file changed between two runs under the same name). `None` when
/// every document both recorded a digest for has the same one (runs recorded before digests
/// were cannot be checked, and pass).
pub(crate) fn changed_text(a: &CellResults, b: &CellResults) -> Option<String> {
    fn digests(cell: &CellResults) -> BTreeMap<u32, &str> {
        let mut m: BTreeMap<u32, &str> = BTreeMap::new();
        for q in cell.reps.iter().filter_map(|r| r.summary.quality.as_ref()) {
            for s in &q.segments {
                if let Some(d) = &s.digest {
                    m.insert(s.document, d);
                }
            }
        }
        m
    }
    let (da, db) = (digests(a), digests(b));
    let both = da.keys().filter(|d| db.contains_key(d)).count();
    let changed: Vec<u32> = (da.iter())
        .filter(|(d, x)| db.get(d).is_some_and(|y| y != *x))
        .map(|(d, _)| *d)
        .collect();
    let first = changed.first()?;
    Some(format!(
        "{} of {both} documents differ in text between the runs (e.g. document {first}, by SHA-256): the corpus changed, so their perplexities are not of the same text; compare runs that scored the same corpus",
        changed.len()
    ))
}

/// Per document scored in both cells: its NLL on each side (each window's mean NLL per token
/// over the cell's repetitions, times the baseline's tokens, summed over the document's
/// windows) and its tokens. The document is the unit (the cluster of the paired test): its
/// windows are neither independent nor separate pairs. A document missing a window on either
/// side is left out.
fn segment_pairs(a: &CellResults, b: &CellResults) -> Vec<(f64, f64, u64)> {
    // (document, window) → (Σ over repetitions of NLL per token, tokens, repetitions).
    let per_segment = |cell: &CellResults| {
        let mut m: BTreeMap<(u32, u32), (f64, u64, u32)> = BTreeMap::new();
        for q in cell.reps.iter().filter_map(|r| r.summary.quality.as_ref()) {
            if q.gap(QualityKind::Perplexity).is_some() {
                continue;
            }
            for s in &q.segments {
                let e = m.entry((s.document, s.window)).or_default();
                e.0 += s.nll / s.tokens.max(1) as f64;
                e.1 = s.tokens;
                e.2 += 1;
            }
        }
        m
    };
    let (sa, sb) = (per_segment(a), per_segment(b));
    // document → (NLL baseline, NLL candidate, tokens, complete on both sides).
    let mut docs: BTreeMap<u32, (f64, f64, u64, bool)> = BTreeMap::new();
    for key in sa.keys().chain(sb.keys()) {
        docs.entry(key.0).or_insert((0.0, 0.0, 0, true));
    }
    for (&(document, window), &(ra, tokens, na)) in &sa {
        let e = docs.get_mut(&document).expect("entered above");
        match sb.get(&(document, window)) {
            Some(&(rb, _, nb)) => {
                let t = tokens as f64;
                e.0 += ra / f64::from(na) * t;
                e.1 += rb / f64::from(nb) * t;
                e.2 += tokens;
            }
            None => e.3 = false,
        }
    }
    for key in sb.keys() {
        if !sa.contains_key(key)
            && let Some(e) = docs.get_mut(&key.0)
        {
            e.3 = false;
        }
    }
    docs.into_values()
        .filter(|&(_, _, tokens, complete)| complete && tokens > 0)
        .map(|(na, nb, tokens, _)| (na, nb, tokens))
        .collect()
}

/// The 2×2 table of items answered in the same round by both cells.
fn answer_pairs(a: &CellResults, b: &CellResults) -> PairCounts {
    let answers = |cell: &CellResults| {
        let mut m: BTreeMap<(u32, u32), bool> = BTreeMap::new();
        for r in &cell.reps {
            let Some(q) = r.summary.quality.as_ref() else {
                continue;
            };
            if q.gap(QualityKind::Retrieval).is_some() {
                continue;
            }
            for x in &q.answers {
                m.insert((r.round, x.item), x.correct);
            }
        }
        m
    };
    let (xa, xb) = (answers(a), answers(b));
    PairCounts::from_pairs(xa.iter().filter_map(|(key, &ca)| Some((ca, *xb.get(key)?))))
}
