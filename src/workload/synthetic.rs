//! Synthetic prompts: seeded text of exactly N words from the built-in vocabulary (see
//! [`super::words`]), where N is request `i`'s prompt length.
//!
//! Each prompt's own part starts with an 8-word nonce that is a bijection of the request index,
//! so no two requests of a source share their first block and a prefix cache cannot serve them.
//! With shared prefixes, request `i` first repeats the prefix of group `i mod groups` (a
//! deterministic text whose first 8 words mark the group, so groups differ), then its nonce,
//! then filler up to N words. Prefixes are keyed by their own seed so that warm-up requests
//! warm exactly the prefixes the measured requests use, as a long-running server would have.

use std::num::NonZeroU32;

use super::lengths::LengthPlan;
use super::stream::{self, Purpose};
use super::words;
use super::work::{Prompt, RequestSource, RequestSpec};

/// Groups of prompts that share a prefix.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PrefixGroups {
    /// Number of distinct prefixes.
    pub groups: NonZeroU32,
    /// Words in each prefix.
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
}

impl SyntheticSource {
    /// Prompts whose own words come from `seed`, optionally after shared prefixes.
    pub(crate) fn new(plan: LengthPlan, seed: u64, prefix: Option<PrefixGroups>) -> Self {
        let text_key = stream::key(seed, Purpose::Text);
        Self {
            plan,
            nonce_key: stream::mix64(text_key),
            filler_key: text_key,
            prefix: prefix.map(|p| (p, stream::key(p.seed, Purpose::Prefix))),
        }
    }

    fn input_tokens(&self, i: u64) -> u32 {
        let n = self.plan.input(i);
        match &self.prefix {
            // The request's own part keeps at least one word, so it stays distinct.
            Some((p, _)) => n.max(p.tokens.saturating_add(1)),
            None => n,
        }
    }

    fn push_prefix(&self, text: &mut String, i: u64) -> u32 {
        let Some((p, key)) = &self.prefix else {
            return 0;
        };
        let group = i % u64::from(p.groups.get());
        let marked = words::push_code(text, stream::mix64(key ^ group), p.tokens);
        let mut rng = stream::indexed(*key, group);
        words::push_random(text, &mut rng, p.tokens - marked);
        p.tokens
    }
}

impl RequestSource for SyntheticSource {
    fn lengths(&self, i: u64) -> (u32, u32) {
        (self.input_tokens(i), self.plan.output(i, None))
    }

    fn request(&self, i: u64) -> RequestSpec {
        let (n, max_tokens) = self.lengths(i);
        // Words average under 5 bytes plus a space.
        let mut text = String::with_capacity(n as usize * 6);
        let used = self.push_prefix(&mut text, i);
        let nonce = words::push_code(&mut text, stream::mix64(self.nonce_key ^ i), n - used);
        let mut rng = stream::indexed(self.filler_key, i);
        words::push_random(&mut text, &mut rng, n - used - nonce);
        RequestSpec {
            prompt: Prompt::Text(text),
            input_tokens: n,
            max_tokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::model::LengthDist;
    use crate::workload::lengths::LengthDraw;

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
        let src = SyntheticSource::new(plan(100, LengthDist::Normal { cv: 0.5 }), 3, None);
        for i in 0..200 {
            let spec = src.request(i);
            let t = text(&spec);
            assert_eq!(t.split(' ').count(), spec.input_tokens as usize, "{t}");
            assert!(t.split(' ').all(|w| words::WORDS.contains(&w)), "{t}");
            assert_eq!(src.lengths(i), (spec.input_tokens, spec.max_tokens));
        }
        let tiny = SyntheticSource::new(plan(3, LengthDist::Fixed), 3, None);
        assert_eq!(text(&tiny.request(0)).split(' ').count(), 3);
    }

    #[test]
    fn prompts_are_unique_from_their_first_words() {
        let src = SyntheticSource::new(plan(64, LengthDist::Fixed), 9, None);
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
        let src = SyntheticSource::new(plan(100, LengthDist::Fixed), 5, Some(groups));
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
        let warm = SyntheticSource::new(plan(100, LengthDist::Fixed), 6, Some(groups));
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
        );
        assert!((0..500).all(|i| src.lengths(i).0 >= 91));
    }
}
