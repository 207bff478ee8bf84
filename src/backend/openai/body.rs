//! The JSON body of one streaming request to either OpenAI route, rendered from a
//! [`RequestSpec`]: the routes differ only in how the prompt is given ([`Input`]).
//!
//! Every request asks for a stream with the final usage chunk (`stream_options.include_usage`),
//! greedy decoding (`temperature: 0`) and `max_tokens`. With `ignore_eos` the body also carries
//! `min_tokens = max_tokens` (vLLM, SGLang and TRT-LLM honour it; llama.cpp ignores it), so
//! servers that can be told to generate exactly `max_tokens` tokens are. vLLM's
//! `continuous_usage_stats` is asked for only when configured, because stricter servers reject
//! unknown `stream_options` fields.

use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};

use crate::backend::protocol::BodyOptions;
use crate::workload::work::{ChatMessage, Prompt, RequestSpec};

/// How a route takes the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// `prompt`: a text (`/completions`).
    Prompt,
    /// `messages`: a conversation (`/chat/completions`).
    Messages,
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt: Option<PromptText<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Messages<'a>>,
    max_tokens: u32,
    temperature: f32,
    stream: bool,
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    ignore_eos: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_tokens: Option<u32>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    continuous_usage_stats: bool,
}

/// A completion prompt: the text itself, or a chat conversation's contents joined with `\n`.
struct PromptText<'a>(&'a Prompt);

/// Chat messages: a text prompt becomes one `user` message.
struct Messages<'a>(&'a Prompt);

#[derive(Serialize)]
struct Message<'a> {
    role: &'a str,
    content: &'a str,
}

impl Serialize for PromptText<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Prompt::Text(text) => s.serialize_str(text),
            Prompt::Chat(messages) => s.collect_str(&Joined(messages)),
        }
    }
}

/// Display adapter joining message contents with `\n` without building a String.
struct Joined<'a>(&'a [ChatMessage]);

impl std::fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&m.content)?;
        }
        Ok(())
    }
}

impl Serialize for Messages<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Prompt::Text(text) => {
                let mut seq = s.serialize_seq(Some(1))?;
                seq.serialize_element(&Message {
                    role: "user",
                    content: text,
                })?;
                seq.end()
            }
            Prompt::Chat(messages) => {
                let mut seq = s.serialize_seq(Some(messages.len()))?;
                for m in messages {
                    seq.serialize_element(&Message {
                        role: &m.role,
                        content: &m.content,
                    })?;
                }
                seq.end()
            }
        }
    }
}

/// Renders the body of `req` as JSON bytes, with its prompt given as `input`. With
/// `ignore_eos`, the body carries `ignore_eos` and `min_tokens = max_tokens`.
pub(crate) fn render(req: &RequestSpec, input: Input, opts: BodyOptions<'_>) -> Vec<u8> {
    let (prompt, messages) = match input {
        Input::Prompt => (Some(PromptText(&req.prompt)), None),
        Input::Messages => (None, Some(Messages(&req.prompt))),
    };
    let body = Body {
        model: opts.model,
        prompt,
        messages,
        max_tokens: req.max_tokens,
        temperature: 0.0,
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
            continuous_usage_stats: opts.continuous_usage_stats,
        },
        ignore_eos: opts.ignore_eos,
        min_tokens: opts.ignore_eos.then_some(req.max_tokens),
    };
    // Serialising plain structs of strings and numbers into memory cannot fail.
    serde_json::to_vec(&body).expect("request body serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn spec(prompt: Prompt) -> RequestSpec {
        RequestSpec {
            prompt,
            input_tokens: 3,
            max_tokens: 20,
        }
    }

    fn opts(ignore_eos: bool) -> BodyOptions<'static> {
        BodyOptions {
            model: "m",
            ignore_eos,
            continuous_usage_stats: false,
        }
    }

    fn body(req: &RequestSpec, input: Input, o: BodyOptions<'_>) -> Value {
        serde_json::from_slice(&render(req, input, o)).unwrap()
    }

    #[test]
    fn completions_body_has_prompt_stream_usage_and_length() {
        let b = body(
            &spec(Prompt::Text("a \"b\" c".into())),
            Input::Prompt,
            opts(false),
        );
        assert_eq!(
            b,
            json!({"model":"m","prompt":"a \"b\" c","max_tokens":20,"temperature":0.0,
                   "stream":true,"stream_options":{"include_usage":true}})
        );
    }

    #[test]
    fn chat_body_wraps_text_as_one_user_message_and_forces_length() {
        let b = body(
            &spec(Prompt::Text("hi".into())),
            Input::Messages,
            opts(true),
        );
        assert_eq!(b["messages"], json!([{"role":"user","content":"hi"}]));
        assert_eq!(b["ignore_eos"], json!(true));
        assert_eq!(b["min_tokens"], json!(20));
        assert!(b.get("prompt").is_none());
    }

    #[test]
    fn conversations_keep_roles_for_chat_and_join_for_completions() {
        let conv = Prompt::Chat(vec![
            ChatMessage {
                role: "system".into(),
                content: "be brief".into(),
            },
            ChatMessage {
                role: "user".into(),
                content: "hello".into(),
            },
        ]);
        let chat = body(&spec(conv.clone()), Input::Messages, opts(false));
        assert_eq!(
            chat["messages"][0],
            json!({"role":"system","content":"be brief"})
        );
        assert_eq!(
            chat["messages"][1],
            json!({"role":"user","content":"hello"})
        );
        let cmpl = body(&spec(conv), Input::Prompt, opts(false));
        assert_eq!(cmpl["prompt"], json!("be brief\nhello"));
    }

    #[test]
    fn continuous_usage_is_asked_only_when_configured() {
        let mut o = opts(false);
        o.continuous_usage_stats = true;
        let b = body(&spec(Prompt::Text("x".into())), Input::Prompt, o);
        assert_eq!(
            b["stream_options"],
            json!({"include_usage":true,"continuous_usage_stats":true})
        );
    }
}
