//! Synthetic prompts: seeded text from the built-in vocabulary (see [`super::words`]) of
//! exactly N tokens, where N is request `i`'s prompt length. Without a tokenizer a token is a
//! word; with the target's tokenizer the text is written with the measured cost of each word
//! and then fitted to exactly N of its tokens ([`ModelTokenizer::fit`]: usually one encode).
//!
//! Each prompt's own part starts with an 8-word nonce that is a bijection of the request index,
//! so no two requests of a source share their first block and a prefix cache cannot serve them.
//! With shared prefixes, request `i` first repeats the prefix of group `i mod groups` (a
//! deterministic text whose first 8 words mark the group, so groups differ), then its nonce,
//! then filler up to N tokens. Prefixes are keyed by their own seed so that warm-up requests
//! warm exactly the prefixes the measured requests use, as a long-running server would have.
//! With a tokenizer a prefix is its length by the word costs, exact for tokenizers that split
//! at spaces (byte-level BPE, WordPiece, SentencePiece's metaspace).

use std::num::NonZeroU32;
use std::sync::Arc;

use super::lengths::LengthPlan;
use super::stream::{self, Purpose};
use super::tokenizer::{ModelTokenizer, TokenizerError};
use super::words::{WordCosts, Writer};
use super::work::{Prompt, RequestSource, RequestSpec};

/// Groups of prompts that share a prefix.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PrefixGroups {
    /// Number of distinct prefixes.
    pub groups: NonZeroU32,
    /// Tokens (words without a tokenizer) in each prefix.
    pub tokens: u32,
    /// Seed of the prefixes' text.
    pub seed: u64,
}

/// A [`RequestSource`] of synthetic prompts.
#[derive(Debug, Clone)]
pub(crate) struct SyntheticSource {
    plan: LengthPlan,
    nonce_key: u64,
    filler_key: u64,
    prefix: Option<(PrefixGroups, u64)>,
    tokenizer: Option<Arc<ModelTokenizer>>,
}

impl SyntheticSource {
    /// Prompts whose own words come from `seed`, optionally after shared prefixes; lengths are
    /// in `tokenizer`'s tokens when given, else in words.
    pub(crate) fn new(
        plan: LengthPlan,
        seed: u64,
        prefix: Option<PrefixGroups>,
        tokenizer: Option<Arc<ModelTokenizer>>,
    ) -> Self {
        let text_key = stream::key(seed, Purpose::Text);
        Self {
            plan,
            nonce_key: stream::mix64(text_key),
            filler_key: text_key,
            prefix: prefix.map(|p| (p, stream::key(p.seed, Purpose::Prefix))),
            tokenizer,
        }
    }

    fn costs(&self) -> &WordCosts {
        match &self.tokenizer {
            Some(t) => t.costs(),
            None => WordCosts::words(),
        }
    }

    fn input_tokens(&self, i: u64) -> u32 {
        let n = self.plan.input(i);
        match &self.prefix {
            // The request's own part keeps at least one token, so it stays distinct.
            Some((p, _)) => n.max(p.tokens.saturating_add(1)),
            None => n,
        }
    }

    fn push_prefix(&self, text: &mut Writer, i: u64) {
        let Some((p, key)) = &self.prefix else {
            return;
        };
        let group = i % u64::from(p.groups.get());
        text.push_code(stream::mix64(key ^ group), p.tokens);
        text.fill(&mut stream::indexed(*key, group), p.tokens);
    }

    /// Request `i`'s text of `n` tokens by the word costs, and the bytes of its shared prefix.
    fn write(&self, i: u64, n: u32) -> (String, usize) {
        let mut text = Writer::new(self.costs(), n);
        self.push_prefix(&mut text, i);
        let prefix_bytes = text.len();
        text.push_code(stream::mix64(self.nonce_key ^ i), n);
        text.fill(&mut stream::indexed(self.filler_key, i), n);
        (text.finish(), prefix_bytes)
    }

    /// Builds request 0 when a tokenizer is in use, so one that cannot fit these prompts fails
    /// the workload's build rather than a request.
    pub(crate) fn check(&self) -> Result<(), TokenizerError> {
        match self.tokenizer {
            Some(_) => self.try_request(0).map(|_| ()),
            None => Ok(()),
        }
    }

    /// Request `i`, or why the tokenizer could not make its prompt exactly as long as drawn.
    pub(crate) fn try_request(&self, i: u64) -> Result<RequestSpec, TokenizerError> {
        let (n, max_tokens) = self.lengths(i);
        let (mut text, keep) = self.write(i, n);
        if let Some(tok) = &self.tokenizer {
            tok.fit(&mut text, n, keep)?;
        }
        Ok(RequestSpec {
            prompt: Prompt::Text(text),
            input_tokens: n,
            max_tokens,
        })
    }
}

impl RequestSource for SyntheticSource {
    fn lengths(&self, i: u64) -> (u32, u32) {
        (self.input_tokens(i), self.plan.output(i, None))
    }

    fn request(&self, i: u64) -> RequestSpec {
        match self.try_request(i) {
            Ok(spec) => spec,
            // `super::build` checked that this tokenizer fits prompts; should one still fail,
            // the prompt goes out as written and its length is what the tokenizer counts.
            Err(_) => {
                let (n, max_tokens) = self.lengths(i);
                let (text, _) = self.write(i, n);
                let counted = self.tokenizer.as_ref().and_then(|t| t.count(&text).ok());
                RequestSpec {
                    input_tokens: counted.unwrap_or(n),
                    prompt: Prompt::Text(text),
                    max_tokens,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::model::LengthDist;
    use crate::workload::lengths::LengthDraw;
    use crate::workload::words;

    fn plan(mean: u32, dist: LengthDist) -> LengthPlan {
        LengthPlan::new(
            LengthDraw::new(mean, dist, 1, Purpose::InputLength),
            LengthDraw::new(16, LengthDist::Fixed, 1, Purpose::OutputLength),
            None,
        )
    }

    fn text(spec: &RequestSpec) -> &str {
        match &spec.prompt {
            Prompt::Text(t) => t,
            Prompt::Chat(_) => panic!("synthetic prompts are text"),
        }
    }

    #[test]
    fn prompt_of_n_words_has_exactly_n_single_spaced_words() {
        let src = SyntheticSource::new(plan(100, LengthDist::Normal { cv: 0.5 }), 3, None, None);
        for i in 0..200 {
            let spec = src.request(i);
            let t = text(&spec);
            assert_eq!(t.split(' ').count(), spec.input_tokens as usize, "{t}");
            assert!(t.split(' ').all(|w| words::WORDS.contains(&w)), "{t}");
            assert_eq!(src.lengths(i), (spec.input_tokens, spec.max_tokens));
        }
        let tiny = SyntheticSource::new(plan(3, LengthDist::Fixed), 3, None, None);
        assert_eq!(text(&tiny.request(0)).split(' ').count(), 3);
    }

    #[test]
    fn prompts_are_unique_from_their_first_words() {
        let src = SyntheticSource::new(plan(64, LengthDist::Fixed), 9, None, None);
        let starts: std::collections::BTreeSet<String> = (0..5000)
            .map(|i| {
                text(&src.request(i))
                    .split(' ')
                    .take(8)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        assert_eq!(starts.len(), 5000);
    }

    #[test]
    fn shared_prefixes_are_shared_within_a_group_and_differ_between_groups() {
        let groups = PrefixGroups {
            groups: NonZeroU32::new(3).unwrap(),
            tokens: 40,
            seed: 77,
        };
        let src = SyntheticSource::new(plan(100, LengthDist::Fixed), 5, Some(groups), None);
        let prefix = |i: u64| -> String {
            let spec = src.request(i);
            assert_eq!(text(&spec).split(' ').count(), 100);
            text(&spec)
                .split(' ')
                .take(40)
                .collect::<Vec<_>>()
                .join(" ")
        };
        let suffix = |i: u64| {
            text(&src.request(i))
                .split(' ')
                .skip(40)
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(prefix(0), prefix(3));
        assert_eq!(prefix(1), prefix(301));
        assert_ne!(prefix(0), prefix(1));
        assert_ne!(prefix(1), prefix(2));
        assert_ne!(suffix(0), suffix(3));
        // Another text seed (warm-up) keeps the prefixes and changes the rest.
        let warm = SyntheticSource::new(plan(100, LengthDist::Fixed), 6, Some(groups), None);
        assert!(text(&warm.request(0)).starts_with(&prefix(0)));
        assert_ne!(text(&warm.request(0)), text(&src.request(0)));
    }

    #[test]
    fn drawn_lengths_never_swallow_the_prefix() {
        let groups = PrefixGroups {
            groups: NonZeroU32::new(2).unwrap(),
            tokens: 90,
            seed: 1,
        };
        let src = SyntheticSource::new(
            plan(100, LengthDist::Uniform { spread: 0.5 }),
            2,
            Some(groups),
            None,
        );
        assert!((0..500).all(|i| src.lengths(i).0 >= 91));
    }
}
