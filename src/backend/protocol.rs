//! The protocol seam: what differs between the wire protocols exp speaks, behind one closed
//! enum ([`Protocol`]) and one trait (`Wire`) that each protocol's module implements.
//!
//! A protocol owns its scenario name, its routes, the JSON body of a request, and the
//! reading of one stream event into the common `Event` and of the server's model list.
//! Everything else (the connection pool, limits, retries, SSE framing, records, failure
//! classification) is shared in `client.rs` and `stream.rs`. This module and the protocols'
//! are pure (no I/O), which is why `scenario` may name a [`Protocol`] as the kind of an HTTP
//! target.
//!
//! Adding a protocol: a module under `backend/` with a zero-sized type implementing `Wire`,
//! a variant of [`Protocol`] listed in [`Protocol::ALL`], and its arm in `Protocol::with`,
//! the one place that maps a variant to its implementation. Dispatch is a `match` on a `Copy`
//! enum into monomorphised code: no trait objects and no boxing, per request or per chunk.

use std::borrow::Cow;

use super::failure::Failure;
use super::openai;
use crate::workload::work::RequestSpec;

/// A wire protocol exp can measure a server with: `[target] kind` for an HTTP target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `POST {base_url}/completions` with `prompt`, streaming.
    OpenaiCompletions,
    /// `POST {base_url}/chat/completions` with `messages`, streaming.
    OpenaiChat,
}

impl Protocol {
    /// Every protocol, in the order hints and error messages list them.
    pub const ALL: [Protocol; 2] = [Protocol::OpenaiCompletions, Protocol::OpenaiChat];

    /// The registration: calls `v` with the type that implements this protocol.
    pub(crate) fn with<V: Visit>(self, v: V) -> V::Out {
        match self {
            Protocol::OpenaiCompletions => v.visit::<openai::Completions>(),
            Protocol::OpenaiChat => v.visit::<openai::Chat>(),
        }
    }

    /// The scenario spelling, e.g. `openai-chat`.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// How the server's prompt token count relates to the client's count of the prompt.
    pub fn prompt_count(self) -> PromptCount {
        self.spec().prompt_count
    }

    /// The path of its requests under the base URL, e.g. `chat/completions`.
    pub(crate) fn route(self) -> &'static str {
        self.spec().route
    }

    /// The path under the base URL that lists the server's models.
    pub(crate) fn models_route(self) -> &'static str {
        self.spec().models_route
    }

    fn spec(self) -> Spec {
        struct Get;
        impl Visit for Get {
            type Out = Spec;
            fn visit<W: Wire>(self) -> Spec {
                W::SPEC
            }
        }
        self.with(Get)
    }

    /// The JSON body of the streaming request for `req`.
    pub(crate) fn render(self, req: &RequestSpec, opts: BodyOptions<'_>) -> Vec<u8> {
        struct Render<'a>(&'a RequestSpec, BodyOptions<'a>);
        impl Visit for Render<'_> {
            type Out = Vec<u8>;
            fn visit<W: Wire>(self) -> Vec<u8> {
                W::render(self.0, self.1)
            }
        }
        self.with(Render(req, opts))
    }

    /// Reads one `data:` payload of its stream.
    pub(crate) fn decode(self, payload: &[u8]) -> Result<Event<'_>, Failure> {
        struct Decode<'a>(&'a [u8]);
        impl<'a> Visit for Decode<'a> {
            type Out = Result<Event<'a>, Failure>;
            fn visit<W: Wire>(self) -> Self::Out {
                W::decode(self.0)
            }
        }
        self.with(Decode(payload))
    }

    /// The model ids in the server's reply to [`Protocol::models_route`], in its order.
    pub(crate) fn text(self, payload: &[u8]) -> Option<String> {
        struct Text<'a>(&'a [u8]);
        impl Visit for Text<'_> {
            type Out = Option<String>;
            fn visit<W: Wire>(self) -> Self::Out {
                W::text(self.0)
            }
        }
        self.with(Text(payload))
    }

    pub(crate) fn models(self, reply: &[u8]) -> Result<Vec<String>, String> {
        struct Models<'a>(&'a [u8]);
        impl Visit for Models<'_> {
            type Out = Result<Vec<String>, String>;
            fn visit<W: Wire>(self) -> Self::Out {
                W::models(self.0)
            }
        }
        self.with(Models(reply))
    }
}

/// One protocol's implementation. Its functions are pure: the shared client does the I/O.
pub(crate) trait Wire {
    /// The protocol's constants.
    const SPEC: Spec;
    /// The JSON body of the streaming request for `req`.
    fn render(req: &RequestSpec, opts: BodyOptions<'_>) -> Vec<u8>;
    /// Reads one `data:` payload: what it carried, or why the request failed (an error the
    /// server streamed, a payload that does not parse).
    fn decode(payload: &[u8]) -> Result<Event<'_>, Failure>;
    /// The model ids in a reply to `SPEC.models_route`, in the server's order.
    fn models(reply: &[u8]) -> Result<Vec<String>, String>;
    /// The generated text (answer and reasoning) one `data:` payload carried, for counting
    /// tokens when the server sends no usage; the slow path, used only then.
    fn text(payload: &[u8]) -> Option<String>;
}

/// A computation over a protocol's implementation, run by [`Protocol::with`].
pub(crate) trait Visit {
    /// What it computes.
    type Out;
    /// Runs it with `W`, the implementation of the protocol at hand.
    fn visit<W: Wire>(self) -> Self::Out;
}

/// The constants of a protocol.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    /// The scenario spelling (`[target] kind`).
    pub name: &'static str,
    /// Requests go to `POST {base_url}/{route}`.
    pub route: &'static str,
    /// `GET {base_url}/{models_route}` lists the served models.
    pub models_route: &'static str,
    /// How the server counts the prompt.
    pub prompt_count: PromptCount,
}

/// How a server's count of a prompt's tokens compares with the client's count (with the
/// target's tokenizer) of the same prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptCount {
    /// The prompt is tokenized as sent: the counts agree up to a BOS token.
    AsSent,
    /// The server wraps the prompt in a template first: it counts more tokens, never fewer.
    Templated,
}

/// Options that shape every request body a client sends, whatever the protocol.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyOptions<'a> {
    /// `model`.
    pub model: &'a str,
    /// Ask the server to generate exactly `max_tokens` tokens.
    pub ignore_eos: bool,
    /// Ask for vLLM's cumulative usage on every chunk.
    pub continuous_usage_stats: bool,
}

/// What one stream event told, in every protocol's terms.
#[derive(Debug)]
pub(crate) struct Event<'a> {
    /// The generated text it carried, if any.
    pub content: Content,
    /// The server's count of prompt tokens, when the event gives it.
    pub prompt_tokens: Option<u32>,
    /// The server's count of generated tokens so far, when the event gives it.
    pub completion_tokens: Option<u32>,
    /// Why generation stopped, when the event says.
    pub finish_reason: Option<Cow<'a, str>>,
}

/// What a content-bearing event carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content {
    /// No generated text (role-only delta, usage chunk, empty string).
    None,
    /// Answer text.
    Answer,
    /// Reasoning text only.
    Reasoning,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protocol_name_selects_it_and_names_are_the_scenario_spellings() {
        for p in Protocol::ALL {
            assert_eq!(
                crate::scenario::model::TargetKind::parse(p.name()),
                Some(crate::scenario::model::TargetKind::Http(p))
            );
        }
        let names = Protocol::ALL.map(Protocol::name);
        assert_eq!(names, ["openai-completions", "openai-chat"]);
    }

    /// A new variant stops this match from compiling: then add it to `ALL` and count it.
    #[test]
    fn all_lists_every_protocol() {
        let listed = |p: Protocol| match p {
            Protocol::OpenaiCompletions | Protocol::OpenaiChat => Protocol::ALL.contains(&p),
        };
        assert!(Protocol::ALL.into_iter().all(listed));
        assert_eq!(Protocol::ALL.len(), 2);
    }

    #[test]
    fn routes_and_prompt_counts() {
        assert_eq!(Protocol::OpenaiCompletions.route(), "completions");
        assert_eq!(Protocol::OpenaiChat.route(), "chat/completions");
        assert_eq!(Protocol::OpenaiChat.models_route(), "models");
        assert_eq!(
            Protocol::OpenaiCompletions.prompt_count(),
            PromptCount::AsSent
        );
        assert_eq!(Protocol::OpenaiChat.prompt_count(), PromptCount::Templated);
    }
}
