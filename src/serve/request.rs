//! The fields of a completions / chat-completions request the fixed server reads, and its
//! "tokenizer".
//!
//! The tokenizer is deliberately trivial and documented: **one prompt token per
//! whitespace-separated word** of the prompt (for chat, of every message's `content`, and of
//! the `text` of content parts), and one token per integer when the prompt is given as token
//! ids. Roles and other fields do not count. Every generated token is the word `tok`, so the
//! server's own text re-tokenizes to the count it reports.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Output length when the request gives none (OpenAI's legacy completions default).
pub const DEFAULT_MAX_TOKENS: u32 = 16;

/// A generation request, reduced to what the fixed server needs.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct GenRequest {
    /// Completions prompt: text, list of texts, token ids or lists of token ids.
    #[serde(default)]
    prompt: Option<WordCount>,
    /// Chat messages.
    #[serde(default)]
    messages: Option<WordCount>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Debug, Default, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
    #[serde(default)]
    continuous_usage_stats: Option<bool>,
}

impl GenRequest {
    /// Prompt tokens by the whitespace tokenizer (`None` when neither `prompt` nor `messages`
    /// was given).
    pub fn prompt_tokens(&self, chat: bool) -> Option<u32> {
        let field = if chat { &self.messages } else { &self.prompt };
        field.as_ref().map(|w| w.0)
    }

    /// Tokens to generate: `max_completion_tokens`, else `max_tokens`, else 16.
    pub fn output_tokens(&self) -> u32 {
        self.max_completion_tokens
            .or(self.max_tokens)
            .unwrap_or(DEFAULT_MAX_TOKENS)
    }

    /// `stream: true`.
    pub fn stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// `stream_options.include_usage: true`.
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }

    /// `stream_options.continuous_usage_stats: true` (vLLM extension).
    pub fn continuous_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.continuous_usage_stats)
            .unwrap_or(false)
    }
}

/// Whitespace-word count of any prompt shape, computed while parsing (nothing is copied).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WordCount(pub u32);

impl<'de> Deserialize<'de> for WordCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CountVisitor)
    }
}

struct CountVisitor;

impl<'de> Visitor<'de> for CountVisitor {
    type Value = WordCount;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a prompt: text, token ids, or messages")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<WordCount, E> {
        Ok(WordCount(
            u32::try_from(s.split_whitespace().count()).unwrap_or(u32::MAX),
        ))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<WordCount, E> {
        Ok(WordCount(1))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<WordCount, E> {
        Ok(WordCount(1))
    }
    fn visit_unit<E: de::Error>(self) -> Result<WordCount, E> {
        Ok(WordCount(0))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WordCount, A::Error> {
        let mut n = 0u32;
        while let Some(WordCount(k)) = seq.next_element()? {
            n = n.saturating_add(k);
        }
        Ok(WordCount(n))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WordCount, A::Error> {
        let mut n = 0u32;
        while let Some(key) = map.next_key::<Key>()? {
            if key.0 {
                n = n.saturating_add(map.next_value::<WordCount>()?.0);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(WordCount(n))
    }
}

/// A map key: true for the keys whose text counts (`content`, `text`).
struct Key(bool);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
                Ok(Key(s == "content" || s == "text"))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> GenRequest {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn prompt_tokens_are_whitespace_words_or_token_ids() {
        assert_eq!(
            req(r#"{"prompt":"a  b\tc\nd "}"#).prompt_tokens(false),
            Some(4)
        );
        assert_eq!(
            req(r#"{"prompt":["a b","c"]}"#).prompt_tokens(false),
            Some(3)
        );
        assert_eq!(
            req(r#"{"prompt":[1,2,3,4,5]}"#).prompt_tokens(false),
            Some(5)
        );
        assert_eq!(req(r#"{"prompt":""}"#).prompt_tokens(false), Some(0));
        assert_eq!(req(r#"{"model":"x"}"#).prompt_tokens(false), None);
    }

    #[test]
    fn chat_counts_message_contents_and_text_parts_not_roles() {
        let r = req(r#"{"messages":[{"role":"system","content":"be brief"},
                {"role":"user","name":"n x","content":[{"type":"text","text":"one two three"}]}]}"#);
        assert_eq!(r.prompt_tokens(true), Some(5));
    }

    #[test]
    fn lengths_and_stream_options_have_openai_defaults() {
        let r = req(r#"{"prompt":"x"}"#);
        assert_eq!(
            (r.output_tokens(), r.stream(), r.include_usage()),
            (16, false, false)
        );
        let r = req(
            r#"{"prompt":"x","max_tokens":5,"max_completion_tokens":7,"stream":true,
                "stream_options":{"include_usage":true,"continuous_usage_stats":true}}"#,
        );
        assert_eq!(
            (r.output_tokens(), r.stream(), r.include_usage()),
            (7, true, true)
        );
        assert!(r.continuous_usage());
    }
}
