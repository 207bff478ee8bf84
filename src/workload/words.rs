//! The built-in vocabulary of synthetic prompts and the helpers that write it.
//!
//! The 256 words are among the most frequent lowercase English words, which the usual BPE
//! vocabularies (GPT-2, cl100k, Llama 3) hold as single tokens with their leading space (chosen
//! for that, not checked here against each vocabulary). So a prompt of N space-separated words is
//! about N tokens for a real model (the server's usage reports the truth), and exactly N for the
//! built-in servers, whose tokenizer counts whitespace-separated words. 256 words make a byte one
//! word, so a 64-bit code is exactly 8 words.
//!
//! Text is written by a [`Writer`] against a budget of tokens, each word costing what
//! [`WordCosts`] says: one without a tokenizer, its measured tokens with one.

use rand::Rng;

/// Words that a 64-bit code (a nonce or a group mark) takes.
pub(crate) const CODE_WORDS: u32 = 8;

/// The vocabulary: 256 distinct lowercase ASCII words.
pub const WORDS: [&str; 256] = [
    "the", "of", "and", "to", "in", "is", "it", "you", "that", "he", "was", "for", "on", "are",
    "with", "as", "his", "they", "be", "at", "one", "have", "this", "from", "or", "had", "by",
    "not", "word", "but", "what", "some", "we", "can", "out", "other", "were", "all", "there",
    "when", "up", "use", "your", "how", "said", "an", "each", "she", "which", "do", "their",
    "time", "if", "will", "way", "about", "many", "then", "them", "write", "would", "like", "so",
    "these", "her", "long", "make", "thing", "see", "him", "two", "has", "look", "more", "day",
    "could", "go", "come", "did", "number", "sound", "no", "most", "people", "my", "over", "know",
    "water", "than", "call", "first", "who", "may", "down", "side", "been", "now", "find", "any",
    "new", "work", "part", "take", "get", "place", "made", "live", "where", "after", "back",
    "little", "only", "round", "man", "year", "came", "show", "every", "good", "me", "give", "our",
    "under", "name", "very", "through", "just", "form", "great", "think", "say", "help", "low",
    "line", "turn", "cause", "much", "mean", "before", "move", "right", "boy", "old", "too",
    "same", "tell", "does", "set", "three", "want", "air", "well", "also", "play", "small", "end",
    "put", "home", "read", "hand", "large", "add", "even", "land", "here", "must", "big", "high",
    "such", "follow", "act", "why", "ask", "men", "change", "went", "light", "kind", "off", "need",
    "house", "picture", "try", "again", "animal", "point", "mother", "world", "near", "build",
    "earth", "father", "head", "stand", "own", "page", "should", "country", "found", "answer",
    "school", "grow", "study", "still", "learn", "plant", "cover", "food", "sun", "four",
    "between", "state", "keep", "eye", "never", "last", "let", "thought", "city", "tree", "cross",
    "farm", "hard", "start", "might", "story", "saw", "far", "sea", "draw", "left", "late", "run",
    "while", "press", "close", "night", "real", "life", "few", "north", "open", "seem", "together",
    "next", "white", "children", "begin", "got", "walk", "example", "paper", "group", "always",
    "music", "those",
];

/// What each built-in word costs in a prompt, and which words pad one token at a time.
///
/// Without a tokenizer every word costs one (the prompt's length is its word count); with one,
/// the costs are measured by [`super::tokenizer::ModelTokenizer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WordCosts {
    /// Tokens of word `k` alone (the first word of a text).
    first: [u32; 256],
    /// Tokens that word `k` adds after a space (every later word).
    rest: [u32; 256],
    /// Filler words, indexed by a random byte modulo the length: the words that add one token,
    /// or the cheapest ones when none does. Never empty.
    filler: Vec<u8>,
}

impl WordCosts {
    /// One word, one token: lengths in words.
    pub(crate) fn words() -> &'static WordCosts {
        static WORDS_ONLY: std::sync::LazyLock<WordCosts> =
            std::sync::LazyLock::new(|| WordCosts::new([1; 256], [1; 256]));
        &WORDS_ONLY
    }

    /// Costs as measured (each clamped to at least 1, so a budget always runs out).
    pub(crate) fn new(first: [u32; 256], rest: [u32; 256]) -> Self {
        let (first, rest) = (first.map(|c| c.max(1)), rest.map(|c| c.max(1)));
        let cheapest = rest.iter().copied().min().unwrap_or(1);
        let filler = (0..=255u8)
            .filter(|&w| rest[usize::from(w)] == cheapest)
            .collect();
        Self {
            first,
            rest,
            filler,
        }
    }

    /// Tokens word `w` adds to a text that is `empty` or not.
    pub(crate) fn cost(&self, w: u8, empty: bool) -> u32 {
        if empty {
            self.first[usize::from(w)]
        } else {
            self.rest[usize::from(w)]
        }
    }

    /// The filler word for a random `byte`.
    pub(crate) fn filler(&self, byte: u8) -> u8 {
        self.filler[usize::from(byte) % self.filler.len()]
    }
}

/// Prompt text written word by word against a budget of tokens, counted with [`WordCosts`].
pub(crate) struct Writer<'c> {
    costs: &'c WordCosts,
    text: String,
    used: u32,
}

impl<'c> Writer<'c> {
    /// An empty text with room for about `words` words.
    pub(crate) fn new(costs: &'c WordCosts, words: u32) -> Self {
        Self {
            costs,
            // Words average under 5 bytes plus a space.
            text: String::with_capacity(words as usize * 6),
            used: 0,
        }
    }

    /// Tokens written so far, by the costs.
    #[cfg(test)]
    pub(crate) fn used(&self) -> u32 {
        self.used
    }

    /// Appends word `w` if it keeps the text within `budget` tokens; returns whether it did.
    pub(crate) fn push(&mut self, w: u8, budget: u32) -> bool {
        let cost = self.costs.cost(w, self.text.is_empty());
        if self.used.saturating_add(cost) > budget {
            return false;
        }
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        self.text.push_str(WORDS[usize::from(w)]);
        self.used += cost;
        true
    }

    /// Appends up to [`CODE_WORDS`] words spelling `code` (low byte first, so the first word
    /// differs between most codes), stopping at the first one that would pass `budget`.
    pub(crate) fn push_code(&mut self, code: u64, budget: u32) {
        for byte in code.to_le_bytes().into_iter().take(CODE_WORDS as usize) {
            if !self.push(byte, budget) {
                return;
            }
        }
    }

    /// Appends filler words drawn with `rng` until `budget` is reached or the next word would
    /// pass it (only when no word adds exactly one token).
    pub(crate) fn fill<R: Rng + ?Sized>(&mut self, rng: &mut R, budget: u32) {
        while self.used < budget {
            for byte in rng.next_u64().to_le_bytes() {
                if self.used == budget || !self.push(self.costs.filler(byte), budget) {
                    return;
                }
            }
        }
    }

    /// The text.
    pub(crate) fn finish(self) -> String {
        self.text
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> usize {
        self.text.len()
    }
}

/// Words in `text` (whitespace-separated), the length estimate of a dataset prompt; at least 1.
pub(crate) fn count(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count())
        .unwrap_or(u32::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn vocabulary_is_256_distinct_lowercase_words() {
        let set: BTreeSet<_> = WORDS.iter().collect();
        assert_eq!(set.len(), 256);
        assert!(
            WORDS
                .iter()
                .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        );
    }

    fn written(costs: &WordCosts, f: impl FnOnce(&mut Writer)) -> (String, u32) {
        let mut w = Writer::new(costs, 8);
        f(&mut w);
        let used = w.used();
        (w.finish(), used)
    }

    #[test]
    fn codes_spell_distinct_words_and_respect_the_limit() {
        let words = WordCosts::words();
        let (a, n) = written(words, |w| w.push_code(0x0102, 8));
        assert!(a.starts_with("and of the the"), "{a}");
        assert_eq!((a.split(' ').count(), n), (8, 8));
        let (b, _) = written(words, |w| w.push_code(0x0102, 3));
        assert_eq!(b, "and of the");
    }

    #[test]
    fn random_words_are_counted_exactly() {
        let mut rng = crate::workload::stream::indexed(1, 2);
        for n in [0, 1, 7, 8, 9, 1000] {
            let (s, used) = written(WordCosts::words(), |w| w.fill(&mut rng, n));
            assert_eq!(s.split(' ').filter(|w| !w.is_empty()).count(), n as usize);
            assert_eq!(used, n);
        }
        assert_eq!(count("  a b\tc\n"), 3);
        assert_eq!(count(""), 1);
    }

    #[test]
    fn costs_choose_one_token_fillers_and_budgets_hold() {
        // "the" (0) and "of" (1) cost one token after a space, every other word two.
        let mut rest = [2; 256];
        rest[0] = 1;
        rest[1] = 1;
        let costs = WordCosts::new([3; 256], rest);
        assert_eq!(
            (costs.filler(0), costs.filler(1), costs.filler(7)),
            (0, 1, 1)
        );
        // "and" costs 3 as the first word; "to" (2 more) would pass a budget of 4: the code stops.
        let (text, used) = written(&costs, |w| w.push_code(0x0302, 4));
        assert_eq!((text.as_str(), used), ("and", 3));
        let mut rng = crate::workload::stream::indexed(5, 6);
        let (text, used) = written(&costs, |w| w.fill(&mut rng, 10));
        assert_eq!(used, 10);
        assert_eq!(text.split(' ').count(), 8, "3 + 7 × 1: {text}");
        // With no one-token word the cheapest ones fill, and a budget may be left unmet.
        let dear = WordCosts::new([2; 256], [2; 256]);
        let (_, used) = written(&dear, |w| w.fill(&mut rng, 5));
        assert_eq!(used, 4);
    }
}
