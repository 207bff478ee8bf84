//! Sizing a prompt to a token budget: the most filler units whose prompt fits, found with a
//! few token counts (each linear in the prompt) rather than a count per unit.

use crate::workload::tokenizer::{ModelTokenizer, TokenizerError};

/// Sizes prompts: about the most filler units whose prompt fits the budget. Counts are
/// expensive with a tokenizer (linear in the prompt), so it interpolates from the tokens per
/// unit of the last fit (three or four counts an item, one of them of the fixed text alone),
/// falling back to bisection.
pub(super) struct Fitter<'t> {
    tokenizer: Option<&'t ModelTokenizer>,
    /// Tokens the prompt may have.
    pub target: u32,
    /// Tokens per filler unit, as last measured.
    per_unit: Option<f64>,
    /// Texts counted so far (what the interpolation saves).
    pub counts: u32,
}

/// Filler units of the first prompt measured, before the tokens per unit are known.
const PILOT: usize = 64;

/// Interpolation steps before bisection takes over.
const INTERPOLATIONS: u32 = 8;

impl<'t> Fitter<'t> {
    /// A fitter to `target` tokens of `tokenizer` (whitespace words without one).
    pub fn new(tokenizer: Option<&'t ModelTokenizer>, target: u32) -> Self {
        Fitter {
            tokenizer,
            target,
            per_unit: None,
            counts: 0,
        }
    }

    /// Filler units no prompt can need more of: every unit costs at least a token, with room
    /// for tokenizers that merge across spaces.
    pub fn max_units(&self) -> usize {
        self.target as usize * 5 / 4 + 64
    }

    fn count(&mut self, text: &str) -> Result<u32, TokenizerError> {
        self.counts += 1;
        match self.tokenizer {
            Some(t) => t.count(text),
            None => Ok(u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)),
        }
    }

    /// The prompt `render(n)` for an `n` whose count is within the target and less than about
    /// one unit's tokens under it (the largest such `n` when units cost the same, as
    /// whitespace words do), or `render(0)` when even that is over; counts are assumed to grow
    /// with `n`. `guess` is tokens per unit before anything is measured.
    pub fn fit(
        &mut self,
        render: impl Fn(usize) -> String,
        guess: f64,
    ) -> Result<String, TokenizerError> {
        let (mut lo, mut lo_text) = (0, render(0));
        let base = self.count(&lo_text)?;
        let mut lo_count = base;
        // `render(hi)` is over the target; `hi_count` once measured.
        let (mut hi, mut hi_count) = (self.max_units() + 1, None);
        let mut slope = self.per_unit.unwrap_or(guess);
        let mut step = 0;
        // Stops when less than a unit's worth of tokens is left, measured or not: the last
        // unit or two would each cost a count to confirm.
        let mut gap = f64::from(self.target.saturating_sub(lo_count));
        while hi - lo > 1 && gap >= slope {
            let g = match (step < INTERPOLATIONS, hi_count) {
                // Nothing measured yet: a short pilot prompt gives the tokens per unit.
                (true, None) if self.per_unit.is_none() && step == 0 => PILOT,
                // Step from the nearer end of the bracket: down from above rounds down so a
                // fit is likely, up from below rounds to nearest so an overshoot brackets it.
                (true, Some(hc)) if hc - self.target < self.target - lo_count => {
                    hi.saturating_sub((f64::from(hc - self.target) / slope).ceil() as usize)
                }
                (true, _) => lo.saturating_add((gap / slope).round() as usize),
                (false, _) => lo + (hi - lo) / 2,
            }
            .clamp(lo + 1, hi - 1);
            step += 1;
            let text = render(g);
            let count = self.count(&text)?;
            slope = (f64::from(count.saturating_sub(base)) / g as f64).max(0.1);
            if count <= self.target {
                (lo, lo_text, lo_count) = (g, text, count);
                gap = f64::from(self.target - count);
            } else {
                (hi, hi_count) = (g, Some(count));
            }
        }
        self.per_unit = Some(slope);
        Ok(lo_text)
    }
}
