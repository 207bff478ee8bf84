//! Long-context retrieval items: a number hidden in filler text at a chosen depth, a question
//! asking for it at the end, and exact-match scoring of the reply.
//!
//! **Passkey** (Mohtashami & Jaggi 2023, "Landmark Attention"): [`PASSKEY_HEAD`], then the
//! filler sentences [`PASSKEY_FILLER`] in a cycle with the needle
//! `The pass key is NNNNN. Remember it. NNNNN is the pass key.` among them (sentences joined by
//! one space), then [`PASSKEY_QUESTION`]. The key has 5 digits, no leading zero.
//!
//! **Needle in a haystack** (RULER's `niah_multikey_1`): [`NIAH_HEAD`], then filler sentences
//! of seeded built-in words ([`crate::workload::words::WORDS`], 6 to 14 a sentence, the first
//! capitalised, a period at the end) with four needles
//! `One of the special magic numbers for {word} is: {7 digits}.` among them (distinct words,
//! distinct numbers, no leading zero), then
//! `\nWhat is the special magic number for {word} mentioned in the provided text? The special
//! magic number for {word} mentioned in the provided text is`. The asked needle sits at the
//! item's depth, the three distractors at seeded depths.
//!
//! Depth `d` puts the needle at the sentence boundary nearest `d` of the way through the
//! filler (0 = before the first filler sentence, 1 = after the last). The filler is sized so
//! the whole prompt has at most `context_tokens` tokens and less than about one filler unit
//! fewer (a passkey sentence, 3 or 4 words, about 5 tokens; a haystack word, exactly
//! `context_tokens` without a tokenizer): tokens by the model's
//! tokenizer when given, else one per whitespace-separated word, which is how exp's synthetic
//! prompts and its built-in servers count. A chat template or a BOS token adds to that.
//!
//! Randomness: item `i` draws from ChaCha8 stream `i` of the key
//! `seed::derive(seed, None, 0, "retrieval-passkey" | "retrieval-niah")`, so an item does not
//! depend on how many items are asked for, and every cell of a round given the same seed sends
//! the same items (common random numbers).

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::fit::Fitter;
use crate::workload::tokenizer::{ModelTokenizer, TokenizerError};
use crate::workload::words::WORDS;

/// Depths of the needle when a scenario names none: start, quarters, end.
pub const DEFAULT_DEPTHS: [f64; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

/// The passkey task's instruction, before the filler.
pub const PASSKEY_HEAD: &str = "There is an important info hidden inside a lot of irrelevant text. \
     Find it and memorize it. I will quiz you about the important information there.\n";

/// The passkey filler, repeated in this order.
pub const PASSKEY_FILLER: [&str; 5] = [
    "The grass is green.",
    "The sky is blue.",
    "The sun is yellow.",
    "Here we go.",
    "There and back again.",
];

/// The passkey question, after the filler.
pub const PASSKEY_QUESTION: &str = "\nWhat is the pass key? The pass key is";

/// The needle-in-a-haystack instruction, before the filler.
pub const NIAH_HEAD: &str = "Some special magic numbers are hidden within the following text. \
     Make sure to memorize it. I will quiz you about the numbers afterwards.\n";

/// Needles of a haystack item: the asked one and three distractors.
const NIAH_NEEDLES: usize = 4;

/// Words per haystack filler sentence.
const NIAH_SENTENCE: std::ops::RangeInclusive<usize> = 6..=14;

/// A retrieval task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// One 5-digit pass key in repeated filler sentences.
    Passkey,
    /// One of four 7-digit numbers, each keyed by a word, in random-word filler.
    Niah,
}

impl Task {
    /// The name of its random stream ([`crate::seed::derive`]), so the tasks never share
    /// numbers.
    fn stream(self) -> &'static str {
        match self {
            Task::Passkey => "retrieval-passkey",
            Task::Niah => "retrieval-niah",
        }
    }
}

/// One prompt and the answer it asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Position among the items of its call (0-based).
    pub index: u32,
    /// Where the asked needle is, as given (0 = start of the filler, 1 = its end).
    pub depth: f64,
    /// The length asked for; the prompt has at most this many tokens unless the task's fixed
    /// text alone is longer.
    pub context_tokens: u32,
    /// The whole prompt, sent as the completion prompt or as one user message.
    pub prompt: String,
    /// The digits a correct reply gives.
    pub answer: String,
}

/// `trials` items of `task` at `context_tokens`, item `i` at depth `depths[i % depths.len()]`
/// ([`DEFAULT_DEPTHS`] when `depths` is empty; depths are clamped to 0..=1 when placing),
/// every random choice from `seed`. Lengths count tokens of `tokenizer`, or whitespace words
/// without one. Fails only when the tokenizer cannot encode a text.
pub fn items(
    task: Task,
    context_tokens: u32,
    trials: u32,
    depths: &[f64],
    seed: u64,
    tokenizer: Option<&ModelTokenizer>,
) -> Result<Vec<Item>, TokenizerError> {
    let mut fitter = Fitter::new(tokenizer, context_tokens);
    build(task, trials, depths, seed, &mut fitter)
}

/// [`items`] with the fitter given (tests read how many texts it counted).
fn build(
    task: Task,
    trials: u32,
    depths: &[f64],
    seed: u64,
    fitter: &mut Fitter,
) -> Result<Vec<Item>, TokenizerError> {
    let depths = if depths.is_empty() {
        &DEFAULT_DEPTHS[..]
    } else {
        depths
    };
    let context_tokens = fitter.target;
    let key = crate::seed::derive(seed, None, 0, task.stream());
    (0..trials)
        .map(|index| {
            let depth = depths[index as usize % depths.len()];
            let mut rng = ChaCha8Rng::seed_from_u64(key);
            rng.set_stream(u64::from(index));
            let (prompt, answer) = match task {
                Task::Passkey => {
                    let draft = Passkey::draw(&mut rng, depth);
                    let prompt = fitter.fit(|n| draft.render(n), 5.0)?;
                    (prompt, draft.key.to_string())
                }
                Task::Niah => {
                    let draft = Niah::draw(&mut rng, depth, fitter.max_units());
                    let prompt = fitter.fit(|n| draft.render(n), 1.0)?;
                    (prompt, draft.values[0].to_string())
                }
            };
            Ok(Item {
                index,
                depth,
                context_tokens,
                prompt,
                answer,
            })
        })
        .collect()
}

/// Exact match: the first maximal run of ASCII digits in `completion` is the answer
/// (`" 68217."` and `"The pass key is 68217"` score for 68217; `"6821"`, `"682170"` and a
/// reply without digits do not).
pub fn score(item: &Item, completion: &str) -> bool {
    let Some(start) = completion.find(|c: char| c.is_ascii_digit()) else {
        return false;
    };
    leading_digits(&completion[start..]) == item.answer
}

/// The answer a retrieval prompt of this module asks for, read from the prompt itself (the
/// fixed server's referee uses it); `None` for any other prompt.
pub fn answer_in(prompt: &str) -> Option<String> {
    passkey_answer(prompt).or_else(|| niah_answer(prompt))
}

fn leading_digits(text: &str) -> &str {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    &text[..end]
}

fn passkey_answer(prompt: &str) -> Option<String> {
    if !prompt.ends_with(PASSKEY_QUESTION) {
        return None;
    }
    const NEEDLE: &str = "The pass key is ";
    prompt.match_indices(NEEDLE).find_map(|(at, _)| {
        let rest = &prompt[at + NEEDLE.len()..];
        let key = leading_digits(rest);
        let tail = &rest[key.len()..];
        (!key.is_empty() && tail.starts_with(". Remember it.")).then(|| key.to_owned())
    })
}

fn niah_answer(prompt: &str) -> Option<String> {
    const ASK: &str = "What is the special magic number for ";
    let at = prompt.rfind(ASK)?;
    let rest = &prompt[at + ASK.len()..];
    let word = &rest[..rest.find(" mentioned in the provided text?")?];
    let needle = format!("One of the special magic numbers for {word} is: ");
    let value = leading_digits(&prompt[prompt.find(&needle)? + needle.len()..]);
    (!value.is_empty()).then(|| value.to_owned())
}

/// A passkey item before sizing: its key and depth.
struct Passkey {
    key: u32,
    depth: f64,
}

impl Passkey {
    fn draw(rng: &mut ChaCha8Rng, depth: f64) -> Self {
        Passkey {
            key: rng.random_range(10_000..=99_999),
            depth,
        }
    }

    /// The prompt with `n` filler sentences.
    fn render(&self, n: usize) -> String {
        let at = boundary(self.depth, n);
        let needle = format!(
            "The pass key is {k}. Remember it. {k} is the pass key.",
            k = self.key
        );
        let mut text = String::with_capacity(PASSKEY_HEAD.len() + 20 * n + 100);
        text.push_str(PASSKEY_HEAD);
        for k in 0..=n {
            if k == at {
                push_sentence(&mut text, &needle);
            }
            if k < n {
                push_sentence(&mut text, PASSKEY_FILLER[k % PASSKEY_FILLER.len()]);
            }
        }
        text.push_str(PASSKEY_QUESTION);
        text
    }
}

/// A haystack item before sizing: needle words and numbers (the asked one first), where each
/// needle goes, and more filler words than the prompt can hold.
struct Niah {
    keys: [u8; NIAH_NEEDLES],
    values: [u32; NIAH_NEEDLES],
    depths: [f64; NIAH_NEEDLES],
    /// Filler words (indices into [`WORDS`]).
    words: Vec<u8>,
    /// Word index at which each filler sentence ends, ascending.
    ends: Vec<usize>,
}

impl Niah {
    /// Draws needles, then `max_words` filler words (needles first, so they do not depend on
    /// `max_words`).
    fn draw(rng: &mut ChaCha8Rng, depth: f64, max_words: usize) -> Self {
        let mut keys = [0u8; NIAH_NEEDLES];
        let mut values = [0u32; NIAH_NEEDLES];
        for k in 0..NIAH_NEEDLES {
            keys[k] = distinct(&keys[..k], || rng.random());
            values[k] = distinct(&values[..k], || rng.random_range(1_000_000..=9_999_999));
        }
        let mut depths = [depth; NIAH_NEEDLES];
        for d in &mut depths[1..] {
            *d = rng.random();
        }
        let mut words = vec![0u8; max_words];
        rng.fill_bytes(&mut words);
        let mut ends = Vec::with_capacity(max_words / 6 + 1);
        let mut end = 0;
        while end < max_words {
            end += rng.random_range(NIAH_SENTENCE);
            ends.push(end);
        }
        Niah {
            keys,
            values,
            depths,
            words,
            ends,
        }
    }

    /// The prompt with `n` filler words (the sentence holding word `n - 1` ends there).
    fn render(&self, n: usize) -> String {
        let n = n.min(self.words.len());
        // Sentence boundaries in words: 0, the ends before n, n.
        let mut bounds = vec![0];
        bounds.extend(self.ends.iter().copied().take_while(|&e| e < n));
        if n > 0 {
            bounds.push(n);
        }
        let mut at: Vec<(usize, f64, usize)> = (0..NIAH_NEEDLES)
            .map(|k| (nearest(&bounds, self.depths[k], n), self.depths[k], k))
            .collect();
        at.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let mut needles = at.into_iter().peekable();
        let mut text = String::with_capacity(NIAH_HEAD.len() + 6 * n + 400);
        text.push_str(NIAH_HEAD);
        for (b, &start) in bounds.iter().enumerate() {
            while let Some((_, _, k)) = needles.next_if(|&(nb, _, _)| nb == b) {
                push_sentence(
                    &mut text,
                    &format!(
                        "One of the special magic numbers for {} is: {}.",
                        WORDS[usize::from(self.keys[k])],
                        self.values[k]
                    ),
                );
            }
            if let Some(&end) = bounds.get(b + 1) {
                self.push_filler(&mut text, start..end);
            }
        }
        let word = WORDS[usize::from(self.keys[0])];
        text.push_str(&format!(
            "\nWhat is the special magic number for {word} mentioned in the provided text? \
             The special magic number for {word} mentioned in the provided text is"
        ));
        text
    }

    /// One filler sentence: the words of `range`, the first capitalised, a period at the end.
    fn push_filler(&self, text: &mut String, range: std::ops::Range<usize>) {
        if !text.ends_with('\n') {
            text.push(' ');
        }
        for (k, &w) in self.words[range].iter().enumerate() {
            let word = WORDS[usize::from(w)];
            if k == 0 {
                text.push(char::from(word.as_bytes()[0].to_ascii_uppercase()));
                text.push_str(&word[1..]);
            } else {
                text.push(' ');
                text.push_str(word);
            }
        }
        text.push('.');
    }
}

/// A value drawn until it differs from `taken`.
fn distinct<T: PartialEq>(taken: &[T], mut draw: impl FnMut() -> T) -> T {
    loop {
        let v = draw();
        if !taken.contains(&v) {
            return v;
        }
    }
}

/// The boundary index nearest `depth` of the way through `units` units (0..=units).
fn boundary(depth: f64, units: usize) -> usize {
    // NaN casts to 0.
    ((depth.clamp(0.0, 1.0) * units as f64).round() as usize).min(units)
}

/// Index into `bounds` (ascending word positions) of the one nearest `depth` of `n` words.
fn nearest(bounds: &[usize], depth: f64, n: usize) -> usize {
    let target = boundary(depth, n);
    let i = bounds.partition_point(|&b| b < target);
    match (i.checked_sub(1), bounds.get(i)) {
        (Some(lo), Some(&hi)) if target - bounds[lo] < hi - target => lo,
        (_, Some(_)) => i,
        (lo, None) => lo.unwrap_or(0),
    }
}

/// Appends `sentence` after the head's newline or a space.
fn push_sentence(text: &mut String, sentence: &str) {
    if !text.ends_with('\n') {
        text.push(' ');
    }
    text.push_str(sentence);
}

#[cfg(test)]
#[path = "retrieval_tests.rs"]
mod tests;
