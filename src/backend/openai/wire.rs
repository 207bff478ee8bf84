//! The few fields of an OpenAI streaming chunk that `exp` reads, parsed without building a
//! JSON tree and without allocating on the common path: a byte scanner ([`super::scan`])
//! answers for the usual payloads, serde (below) for the rest.
//!
//! Content is only checked for being non-empty (its text is never kept), so strings are
//! visited in place, whether or not they contain escapes. Only the first choice is read; the
//! others are skipped. `usage` and `error` follow the servers' quirks: `usage` may be `null`,
//! `{}` or partial (Ollama), `error` may be an object or a string (TGI).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};

use crate::backend::protocol::Content;

/// One `data:` payload of a completions or chat-completions stream.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct StreamChunk<'a> {
    /// `choices[0]`, when there is one.
    #[serde(default, borrow, rename = "choices")]
    pub first: FirstChoice<'a>,
    /// `usage`, when present and not `null`.
    #[serde(default)]
    pub usage: Option<Usage>,
    /// Presence of a non-null `error` field (its text is re-read only on that path).
    #[serde(default)]
    pub error: Option<IgnoredAny>,
}

/// The first element of `choices` (empty for the trailing usage chunk).
#[derive(Debug, Default)]
pub(crate) struct FirstChoice<'a>(pub Option<Choice<'a>>);

/// The parts of a choice that tell whether it carried content and how it finished.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Choice<'a> {
    /// `/v1/completions`: `text`.
    #[serde(default)]
    pub text: NonEmpty,
    /// `/v1/chat/completions`: `delta`.
    #[serde(default)]
    pub delta: Option<Delta>,
    /// `finish_reason`, borrowed when it has no escapes.
    #[serde(default, borrow)]
    pub finish_reason: Option<std::borrow::Cow<'a, str>>,
}

/// The content fields of a chat delta (`role`, tool calls and the rest are skipped).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Delta {
    /// Answer text.
    #[serde(default)]
    pub content: NonEmpty,
    /// Reasoning text (vLLM, Ollama).
    #[serde(default)]
    pub reasoning: NonEmpty,
    /// Reasoning text (SGLang, llama.cpp, older vLLM).
    #[serde(default)]
    pub reasoning_content: NonEmpty,
}

/// Token counts of a `usage` object; missing counts stay `None`.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub(crate) struct Usage {
    /// `prompt_tokens`.
    #[serde(default)]
    pub prompt_tokens: Option<u32>,
    /// `completion_tokens` (cumulative on every chunk with vLLM's `continuous_usage_stats`).
    #[serde(default)]
    pub completion_tokens: Option<u32>,
}

impl<'a> StreamChunk<'a> {
    /// Parses one payload: the byte scanner's answer when it has one (the usual case),
    /// otherwise serde's, which decides the unusual payloads and words the errors.
    pub fn parse(payload: &'a [u8]) -> Result<StreamChunk<'a>, serde_json::Error> {
        match super::scan::scan(payload) {
            Some(chunk) => Ok(chunk),
            None => serde_json::from_slice(payload),
        }
    }

    /// What the first choice carried.
    pub fn content(&self) -> Content {
        let Some(choice) = &self.first.0 else {
            return Content::None;
        };
        if choice.text.0 {
            return Content::Answer;
        }
        match &choice.delta {
            Some(d) if d.content.0 => Content::Answer,
            Some(d) if d.reasoning.0 || d.reasoning_content.0 => Content::Reasoning,
            _ => Content::None,
        }
    }

    /// The first choice's finish reason, if it gave one.
    #[cfg(test)]
    pub fn finish_reason(&self) -> Option<&str> {
        self.first.0.as_ref()?.finish_reason.as_deref()
    }

    /// The first choice's finish reason, taken out of the chunk (borrowed from the payload
    /// unless it had escapes).
    pub fn into_finish_reason(self) -> Option<std::borrow::Cow<'a, str>> {
        self.first.0?.finish_reason
    }
}

/// The text of a stream error event, e.g. `{"error":{"message":"…"}}` or `{"error":"…"}`.
/// Used only on the failure path, so it may build a JSON tree.
pub(crate) fn error_message(payload: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
    let error = &value["error"];
    match error {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) => match o.get("message") {
            Some(serde_json::Value::String(s)) => s.clone(),
            _ => error.to_string(),
        },
        _ => String::from_utf8_lossy(payload).into_owned(),
    }
}

/// A JSON string field reduced to "present and non-empty"; `null` or absent is false.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NonEmpty(pub bool);

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NonEmpty;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or null")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<NonEmpty, E> {
                Ok(NonEmpty(!s.is_empty()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<NonEmpty, E> {
                Ok(NonEmpty(false))
            }
            fn visit_none<E: de::Error>(self) -> Result<NonEmpty, E> {
                Ok(NonEmpty(false))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<NonEmpty, D::Error> {
                d.deserialize_any(V)
            }
        }
        d.deserialize_option(V)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for FirstChoice<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = FirstChoice<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of choices or null")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(FirstChoice(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<Choice<'a>>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FirstChoice(first))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(json: &str) -> Content {
        StreamChunk::parse(json.as_bytes()).unwrap().content()
    }

    #[test]
    fn completion_text_is_content_only_when_non_empty() {
        assert_eq!(
            content(r#"{"choices":[{"index":0,"text":" hi"}]}"#),
            Content::Answer
        );
        assert_eq!(
            content(r#"{"choices":[{"index":0,"text":""}]}"#),
            Content::None
        );
        assert_eq!(
            content(r#"{"choices":[{"text":"\n\u00e9"}]}"#),
            Content::Answer
        );
    }

    #[test]
    fn chat_deltas_are_classified() {
        let role = r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#;
        assert_eq!(content(role), Content::None);
        let null = r#"{"choices":[{"delta":{"content":null,"reasoning":null}}]}"#;
        assert_eq!(content(null), Content::None);
        let answer = r#"{"choices":[{"delta":{"content":"x"}}]}"#;
        assert_eq!(content(answer), Content::Answer);
        let r1 = r#"{"choices":[{"delta":{"reasoning":"think"}}]}"#;
        assert_eq!(content(r1), Content::Reasoning);
        let r2 = r#"{"choices":[{"delta":{"content":"","reasoning_content":"t"}}]}"#;
        assert_eq!(content(r2), Content::Reasoning);
    }

    #[test]
    fn usage_chunk_has_no_content_and_counts() {
        let c = StreamChunk::parse(
            br#"{"id":"","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":20,"total_tokens":25}}"#,
        )
        .unwrap();
        assert_eq!(c.content(), Content::None);
        let u = c.usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (Some(5), Some(20)));
        let partial = StreamChunk::parse(br#"{"choices":null,"usage":{}}"#).unwrap();
        assert_eq!(partial.usage.unwrap().completion_tokens, None);
    }

    #[test]
    fn only_the_first_choice_is_read_and_finish_reason_kept() {
        let c = StreamChunk::parse(
            br#"{"choices":[{"text":"","finish_reason":"length"},{"text":"other"}]}"#,
        )
        .unwrap();
        assert_eq!(c.content(), Content::None);
        assert_eq!(c.finish_reason(), Some("length"));
    }

    #[test]
    fn error_objects_and_strings_are_detected_with_their_message() {
        let obj = br#"{"error":{"message":"boom","type":"x","code":500}}"#;
        assert!(StreamChunk::parse(obj).unwrap().error.is_some());
        assert_eq!(error_message(obj), "boom");
        let s = br#"{"error":"bad input","error_type":"validation"}"#;
        assert!(StreamChunk::parse(s).unwrap().error.is_some());
        assert_eq!(error_message(s), "bad input");
        assert!(
            StreamChunk::parse(br#"{"error":null}"#)
                .unwrap()
                .error
                .is_none()
        );
    }

    #[test]
    fn malformed_json_is_an_error() {
        assert!(StreamChunk::parse(br#"{"choices":[{"text":"x"#).is_err());
        assert!(StreamChunk::parse(b"not json").is_err());
    }
}
