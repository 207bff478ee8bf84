//! The built-in vocabulary of synthetic prompts and the helpers that write it.
//!
//! The 256 words are among the most frequent lowercase English words, which the usual BPE
//! vocabularies (GPT-2, cl100k, Llama 3) hold as single tokens with their leading space (chosen
//! for that, not checked here against each vocabulary). So a prompt of N space-separated words is
//! about N tokens for a real model (the server's usage reports the truth), and exactly N for the
//! built-in servers, whose tokenizer counts whitespace-separated words. 256 words make a byte one
//! word, so a 64-bit code is exactly 8 words.

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

fn push_word(out: &mut String, word: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(word);
}

/// Appends up to [`CODE_WORDS`] words spelling `code` (low byte first, so the first word differs
/// between most codes) and returns how many were written (`limit` caps them).
pub(crate) fn push_code(out: &mut String, code: u64, limit: u32) -> u32 {
    let n = limit.min(CODE_WORDS);
    for byte in code.to_le_bytes().into_iter().take(n as usize) {
        push_word(out, WORDS[usize::from(byte)]);
    }
    n
}

/// Appends `count` words drawn uniformly from [`WORDS`] with `rng`.
pub(crate) fn push_random<R: Rng + ?Sized>(out: &mut String, rng: &mut R, count: u32) {
    let mut left = count;
    while left > 0 {
        let bytes = rng.next_u64().to_le_bytes();
        let take = left.min(8);
        for &byte in &bytes[..take as usize] {
            push_word(out, WORDS[usize::from(byte)]);
        }
        left -= take;
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

    #[test]
    fn codes_spell_distinct_words_and_respect_the_limit() {
        let mut a = String::new();
        assert_eq!(push_code(&mut a, 0x0102, 8), 8);
        assert!(a.starts_with("and of the the"), "{a}");
        let mut b = String::new();
        assert_eq!(push_code(&mut b, 0x0102, 3), 3);
        assert_eq!(b, "and of the");
    }

    #[test]
    fn random_words_are_counted_exactly() {
        let mut rng = crate::workload::stream::indexed(1, 2);
        for n in [0, 1, 7, 8, 9, 1000] {
            let mut s = String::new();
            push_random(&mut s, &mut rng, n);
            assert_eq!(s.split(' ').filter(|w| !w.is_empty()).count(), n as usize);
        }
        assert_eq!(count("  a b\tc\n"), 3);
        assert_eq!(count(""), 1);
    }
}
