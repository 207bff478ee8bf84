//! The model's tokenizer (`[target] tokenizer`, a local `tokenizer.json`) for exact prompt
//! lengths: it counts a text's tokens, measures what each built-in word costs, and adjusts a
//! synthetic text to exactly N tokens ([`ModelTokenizer::fit`]).
//!
//! Loaded with the `tokenizers` crate (pure Rust, never the network). Counts are of the text
//! alone: special tokens (BOS, …) are not added and the file's truncation and padding are
//! switched off, so a server that adds a BOS reports one token more, and a chat template adds
//! its own tokens on top. Only this file knows the `tokenizers` API, so moving to its 1.0
//! interface touches nothing else.

use std::path::{Path, PathBuf};

use super::words::{self, WordCosts};

/// Adjustments [`ModelTokenizer::fit`] tries before it gives up.
const FIT_ATTEMPTS: u32 = 8;

/// A text the costs of words are measured after ("the" is one token in every usual vocabulary).
const ANCHOR: &str = "the";

/// Why a tokenizer could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The file could not be read or is not a `tokenizer.json` this version understands.
    #[error("cannot load tokenizer `{}`: {message}", path.display())]
    Load {
        /// The file.
        path: PathBuf,
        /// The loader's own words.
        message: String,
    },
    /// Encoding or decoding a text failed (e.g. a word-level vocabulary without an unknown
    /// token meets an unknown word).
    #[error("tokenizer `{}`: {message}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// The tokenizer's own words.
        message: String,
    },
    /// No adjustment produced a text of exactly the wanted length.
    #[error(
        "tokenizer `{}`: cannot write a prompt of exactly {want} tokens \
         ({FIT_ATTEMPTS} adjustments, the last text had {got}); its decoding and encoding may not \
         round-trip on plain English words (hint: check that the file has a `decoder`)",
        path.display()
    )]
    Inexact {
        /// The file.
        path: PathBuf,
        /// Tokens wanted.
        want: u32,
        /// Tokens of the last attempt.
        got: u32,
    },
}

/// A loaded `tokenizer.json` and the measured costs of the built-in words.
pub struct ModelTokenizer {
    path: PathBuf,
    inner: tokenizers::Tokenizer,
    costs: WordCosts,
}

impl std::fmt::Debug for ModelTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelTokenizer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ModelTokenizer {
    /// Loads the `tokenizer.json` at `path`.
    pub fn load(path: &Path) -> Result<Self, TokenizerError> {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| TokenizerError::Load {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::new(path, inner)
    }

    /// Parses `tokenizer.json` text; `path` only names it in messages.
    pub fn from_json(path: &Path, json: &str) -> Result<Self, TokenizerError> {
        let inner: tokenizers::Tokenizer =
            json.parse()
                .map_err(|e: tokenizers::Error| TokenizerError::Load {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?;
        Self::new(path, inner)
    }

    fn new(path: &Path, mut inner: tokenizers::Tokenizer) -> Result<Self, TokenizerError> {
        let load = |e: tokenizers::Error| TokenizerError::Load {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        inner.with_truncation(None).map_err(load)?;
        inner.with_padding(None);
        let mut tok = Self {
            path: path.to_path_buf(),
            inner,
            costs: WordCosts::words().clone(),
        };
        tok.costs = tok.measure_words()?;
        Ok(tok)
    }

    /// Tokens of each built-in word alone and after a space.
    fn measure_words(&self) -> Result<WordCosts, TokenizerError> {
        let anchor = self.count(ANCHOR)?;
        let (mut first, mut rest) = ([0; 256], [0; 256]);
        for (k, word) in words::WORDS.iter().enumerate() {
            first[k] = self.count(word)?;
            rest[k] = self
                .count(&format!("{ANCHOR} {word}"))?
                .saturating_sub(anchor);
        }
        Ok(WordCosts::new(first, rest))
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What each built-in word costs under this tokenizer.
    pub(crate) fn costs(&self) -> &WordCosts {
        &self.costs
    }

    fn encode_error(&self, e: tokenizers::Error) -> TokenizerError {
        TokenizerError::Encode {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// The token ids of `text`, without special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let enc = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| self.encode_error(e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The special tokens the tokenizer puts before a text (a BOS such as `<s>` or
    /// `<|begin_of_text|>`), as a server adds them to a text prompt; empty for tokenizers
    /// that add none.
    pub fn special_prefix(&self) -> Result<Vec<u32>, TokenizerError> {
        let with = self
            .inner
            .encode_fast("a", true)
            .map_err(|e| self.encode_error(e))?;
        let without = self.encode("a")?;
        let with = with.get_ids();
        Ok(match with.ends_with(&without) {
            true => with[..with.len() - without.len()].to_vec(),
            false => Vec::new(),
        })
    }

    /// Tokens in `text`, without special tokens.
    pub fn count(&self, text: &str) -> Result<u32, TokenizerError> {
        let enc = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| self.encode_error(e))?;
        Ok(u32::try_from(enc.len()).unwrap_or(u32::MAX))
    }

    /// Adjusts `text` to exactly `want` tokens, leaving its first `keep` bytes alone (a shared
    /// prefix). A text written with [`Self::costs`] is usually exact already, which one count
    /// confirms; otherwise short texts are padded with filler words and long ones cut at token
    /// `want` (decode, then re-encode to check: decoding need not round-trip) or, failing that,
    /// to their longest word prefix within `want`.
    pub fn fit(&self, text: &mut String, want: u32, keep: usize) -> Result<(), TokenizerError> {
        let mut got = self.count(text)?;
        for attempt in 0..FIT_ATTEMPTS {
            if got == want {
                return Ok(());
            }
            if got < want {
                self.pad(text, want - got, attempt);
            } else if !self.cut(text, want, keep)? {
                self.shrink(text, want, keep)?;
            }
            got = self.count(text)?;
        }
        if got == want {
            return Ok(());
        }
        Err(TokenizerError::Inexact {
            path: self.path.clone(),
            want,
            got,
        })
    }

    /// Appends filler words worth at least `missing` tokens by the costs (other words on each
    /// attempt, in case one merges oddly with its neighbour).
    fn pad(&self, text: &mut String, missing: u32, attempt: u32) {
        let each = self.costs.cost(self.costs.filler(0), false);
        for k in 0..missing.div_ceil(each) {
            let byte = (attempt.wrapping_mul(31).wrapping_add(k) & 0xff) as u8;
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(words::WORDS[usize::from(self.costs.filler(byte))]);
        }
    }

    /// Truncates `text` to its longest prefix of whole words (never shorter than `keep` bytes
    /// or its first word) with at most `want` tokens: a binary search over word ends.
    fn shrink(&self, text: &mut String, want: u32, keep: usize) -> Result<(), TokenizerError> {
        let ends: Vec<usize> = text
            .match_indices(' ')
            .map(|(at, _)| at)
            .filter(|&at| at >= keep && at > 0)
            .collect();
        // ends[..lo] fit; ends[hi..] do not.
        let (mut lo, mut hi) = (0, ends.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.count(&text[..ends[mid]])? <= want {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo > 0 {
            text.truncate(ends[lo - 1]);
        } else if let Some(&first) = ends.first() {
            text.truncate(first);
        }
        Ok(())
    }

    /// Replaces `text` by the decoding of its first `want` tokens when that has exactly `want`
    /// tokens and still starts with the kept bytes; returns whether it did.
    fn cut(&self, text: &mut String, want: u32, keep: usize) -> Result<bool, TokenizerError> {
        let ids = self.encode(text)?;
        let head = &ids[..(want as usize).min(ids.len())];
        let cut = self
            .inner
            .decode(head, false)
            .map_err(|e| self.encode_error(e))?;
        if cut.as_bytes().get(..keep) != text.as_bytes().get(..keep) || self.count(&cut)? != want {
            return Ok(false);
        }
        *text = cut;
        Ok(true)
    }
}

#[cfg(test)]
#[path = "tokenizer_tests.rs"]
mod tests;
