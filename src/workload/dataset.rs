//! Prompt datasets (JSONL and ShareGPT) and the [`RequestSource`] that serves them.
//!
//! A dataset is loaded once and shared ([`super::cache::Datasets`]); each source walks a seeded
//! permutation of its entries, request `i` taking entry `order[i mod len]`. A dataset prompt's
//! `input_tokens` is its token count under the target's tokenizer when there is one (counted on
//! first use and kept, [`TokenCounts`]), else its word count, an approximation (the server's
//! usage gives the truth); its output length is the line's own `output_tokens` when given, else
//! the cell's rule.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rand::seq::SliceRandom;

use super::error::WorkloadError;
use super::lengths::LengthPlan;
use super::stream::{self, Purpose};
use super::tokenizer::{ModelTokenizer, TokenizerError};
use super::work::{Prompt, RequestSource, RequestSpec};
use super::{jsonl, sharegpt, words};

/// One prompt of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The prompt text.
    pub prompt: String,
    /// Whitespace-separated words in the prompt (≥ 1): its approximate token count.
    pub words: u32,
    /// Output tokens the line asks for, if it says.
    pub output_tokens: Option<u32>,
}

/// A loaded, non-empty prompt dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    path: PathBuf,
    entries: Vec<Entry>,
    skipped: usize,
}

#[derive(serde::Deserialize)]
struct RawLine {
    prompt: String,
    output_tokens: Option<u32>,
}

impl Dataset {
    /// Reads a JSONL dataset: one object per line with a `prompt` string and optional
    /// `output_tokens` (≥ 1); other keys are ignored, blank lines skipped.
    pub fn load_jsonl(path: &Path) -> Result<Self, WorkloadError> {
        Self::parse_jsonl(path, &jsonl::read(path, "dataset")?)
    }

    /// Parses JSONL dataset text; `path` is only used in messages.
    pub fn parse_jsonl(path: &Path, text: &str) -> Result<Self, WorkloadError> {
        let mut entries = Vec::new();
        for (line, json) in jsonl::lines(text) {
            let bad = |message: String| WorkloadError::Line {
                path: path.to_path_buf(),
                line,
                message,
            };
            let raw: RawLine = serde_json::from_str(json).map_err(|e| bad(jsonl::message(&e)))?;
            if raw.prompt.trim().is_empty() {
                return Err(bad("`prompt` is empty".into()));
            }
            if raw.output_tokens == Some(0) {
                return Err(bad("`output_tokens` must be at least 1".into()));
            }
            entries.push(Entry {
                words: words::count(&raw.prompt),
                prompt: raw.prompt,
                output_tokens: raw.output_tokens,
            });
        }
        Self::new(path, entries, 0)
    }

    /// Reads a ShareGPT JSON array (first human turn of each conversation is the prompt).
    pub fn load_sharegpt(path: &Path) -> Result<Self, WorkloadError> {
        Self::parse_sharegpt(path, &jsonl::read(path, "dataset")?)
    }

    /// Parses ShareGPT text; `path` is only used in messages.
    pub fn parse_sharegpt(path: &Path, text: &str) -> Result<Self, WorkloadError> {
        let (entries, skipped) = sharegpt::parse(path, text)?;
        Self::new(path, entries, skipped)
    }

    fn new(path: &Path, entries: Vec<Entry>, skipped: usize) -> Result<Self, WorkloadError> {
        if entries.is_empty() {
            let why = if skipped > 0 {
                format!(" ({skipped} conversations skipped: no non-empty human turn)")
            } else {
                String::new()
            };
            return Err(WorkloadError::File {
                path: path.to_path_buf(),
                message: format!("the dataset has no prompts{why}"),
            });
        }
        if u32::try_from(entries.len()).is_err() {
            return Err(WorkloadError::File {
                path: path.to_path_buf(),
                message: "the dataset has more than 2^32 prompts".into(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            entries,
            skipped,
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The prompts, in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// ShareGPT conversations skipped for having no usable human turn (0 for JSONL).
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

/// The token counts of a dataset's prompts under one tokenizer, each counted on first use and
/// shared by every repetition (a large dataset is never tokenized whole).
pub struct TokenCounts {
    data: Arc<Dataset>,
    tokenizer: Arc<ModelTokenizer>,
    counts: Vec<OnceLock<u32>>,
}

impl std::fmt::Debug for TokenCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCounts")
            .field("dataset", &self.data.path)
            .field("tokenizer", &self.tokenizer.path())
            .finish_non_exhaustive()
    }
}

impl TokenCounts {
    /// Counts for `data` under `tokenizer`, none computed yet.
    pub fn new(data: Arc<Dataset>, tokenizer: Arc<ModelTokenizer>) -> Self {
        let counts = (0..data.entries.len()).map(|_| OnceLock::new()).collect();
        Self {
            data,
            tokenizer,
            counts,
        }
    }

    /// Tokens of entry `index` (≥ 1), or why the tokenizer failed on it.
    pub fn try_get(&self, index: usize) -> Result<u32, TokenizerError> {
        if let Some(&n) = self.counts[index].get() {
            return Ok(n);
        }
        let n = self
            .tokenizer
            .count(&self.data.entries[index].prompt)?
            .max(1);
        Ok(*self.counts[index].get_or_init(|| n))
    }

    /// Tokens of entry `index`; its word count where the tokenizer fails on it (which
    /// [`super::build`] rules out for the first prompt a source serves).
    pub fn get(&self, index: usize) -> u32 {
        self.try_get(index)
            .unwrap_or_else(|_| self.data.entries[index].words)
    }
}

/// A [`RequestSource`] over a dataset, in a seeded order.
#[derive(Debug, Clone)]
pub(crate) struct DatasetSource {
    data: Arc<Dataset>,
    order: Vec<u32>,
    plan: LengthPlan,
    counts: Option<Arc<TokenCounts>>,
}

impl DatasetSource {
    /// Serves `data` in the order given by `seed`; output lengths from `plan` unless a line
    /// gives its own (a trace's lengths still win); prompt lengths from `counts` when given,
    /// else word counts.
    pub(crate) fn new(
        data: Arc<Dataset>,
        seed: u64,
        plan: LengthPlan,
        counts: Option<Arc<TokenCounts>>,
    ) -> Self {
        // `Dataset::new` guarantees the length fits in u32.
        let mut order: Vec<u32> = (0..data.entries.len() as u32).collect();
        order.shuffle(&mut stream::sequential(seed, Purpose::Permutation));
        Self {
            data,
            order,
            plan,
            counts,
        }
    }

    fn slot(&self, i: u64) -> usize {
        self.order[(i % self.order.len() as u64) as usize] as usize
    }

    /// Counts request 0's prompt, so a tokenizer that cannot read this dataset fails the build.
    pub(crate) fn check(&self) -> Result<(), TokenizerError> {
        match &self.counts {
            Some(c) => c.try_get(self.slot(0)).map(|_| ()),
            None => Ok(()),
        }
    }

    fn input_tokens(&self, slot: usize) -> u32 {
        match &self.counts {
            Some(c) => c.get(slot),
            None => self.data.entries[slot].words,
        }
    }
}

impl RequestSource for DatasetSource {
    fn lengths(&self, i: u64) -> (u32, u32) {
        let slot = self.slot(i);
        let e = &self.data.entries[slot];
        (
            self.input_tokens(slot),
            self.plan.output(i, e.output_tokens),
        )
    }

    fn request(&self, i: u64) -> RequestSpec {
        let slot = self.slot(i);
        let e = &self.data.entries[slot];
        RequestSpec {
            prompt: Prompt::Text(e.prompt.clone()),
            input_tokens: self.input_tokens(slot),
            max_tokens: self.plan.output(i, e.output_tokens),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::model::LengthDist;
    use crate::workload::lengths::LengthDraw;

    fn parse(text: &str) -> Result<Dataset, WorkloadError> {
        Dataset::parse_jsonl(Path::new("d.jsonl"), text)
    }

    #[test]
    fn jsonl_bad_lines_are_named_with_their_line_number() {
        let ok = "{\"prompt\": \"hello world\"}\n";
        let cases = [
            (
                format!("{ok}\n{{\"prompt\": 5}}\n"),
                "d.jsonl:3: invalid type",
            ),
            (
                format!("{ok}{{\"text\": \"x\"}}"),
                "d.jsonl:2: missing field `prompt`",
            ),
            (
                format!("{ok}{ok}{{\"prompt\": \" \"}}"),
                "d.jsonl:3: `prompt` is empty",
            ),
            (
                "{\"prompt\": \"a\", \"output_tokens\": 0}".to_string(),
                "d.jsonl:1: `output_tokens`",
            ),
            (
                format!("{ok}{{\"prompt\": \"a\""),
                "d.jsonl:2: not valid JSON: EOF",
            ),
        ];
        for (text, want) in cases {
            let msg = parse(&text).unwrap_err().to_string();
            assert!(msg.starts_with(want), "{msg}");
        }
        let empty = parse("\n\n").unwrap_err().to_string();
        assert_eq!(empty, "d.jsonl: the dataset has no prompts");
    }

    #[test]
    fn missing_file_names_the_path_and_the_os_error() {
        let msg = Dataset::load_jsonl(Path::new("/nonexistent/x.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("cannot read dataset `/nonexistent/x.jsonl`: "),
            "{msg}"
        );
        assert!(msg.contains("No such file"), "{msg}");
    }

    #[test]
    fn source_walks_a_seeded_permutation_and_honours_line_output_tokens() {
        let text: String = (0..10)
            .map(|k| {
                format!(
                    "{{\"prompt\": \"p{k} {}\", \"output_tokens\": {}}}\n",
                    "w ".repeat(k),
                    k + 1
                )
            })
            .collect();
        let data = Arc::new(parse(&text).unwrap());
        let plan = LengthPlan::new(
            LengthDraw::new(1, LengthDist::Fixed, 0, Purpose::InputLength),
            LengthDraw::new(99, LengthDist::Fixed, 0, Purpose::OutputLength),
            None,
        );
        let src = DatasetSource::new(data.clone(), 4, plan.clone(), None);
        let mut seen: Vec<u32> = (0..10).map(|i| src.lengths(i).1).collect();
        assert_ne!(seen, (1..=10).collect::<Vec<_>>(), "shuffled");
        seen.sort();
        assert_eq!(seen, (1..=10).collect::<Vec<_>>(), "a permutation");
        assert_eq!(src.request(13), src.request(3), "wraps around");
        let spec = src.request(0);
        let Prompt::Text(t) = &spec.prompt else {
            panic!()
        };
        assert_eq!(spec.input_tokens as usize, t.split_whitespace().count());
        let again = DatasetSource::new(data, 4, plan, None);
        assert_eq!(again.request(5), src.request(5));
    }
}
