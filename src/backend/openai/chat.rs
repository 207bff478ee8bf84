//! `openai-chat`: `POST {base_url}/chat/completions` with the prompt as `messages` (a text
//! prompt becomes one `user` message). The server applies its chat template, so it counts
//! more prompt tokens than the prompt alone has.

use super::body::{self, Input};
use crate::backend::failure::Failure;
use crate::backend::protocol::{BodyOptions, Event, PromptCount, Spec, Wire};
use crate::workload::work::RequestSpec;

/// The OpenAI chat-completions protocol.
pub(crate) struct Chat;

impl Wire for Chat {
    const SPEC: Spec = Spec {
        name: "openai-chat",
        route: "chat/completions",
        models_route: "models",
        prompt_count: PromptCount::Templated,
    };

    fn render(req: &RequestSpec, opts: BodyOptions<'_>) -> Vec<u8> {
        body::render(req, Input::Messages, opts)
    }

    fn decode(payload: &[u8]) -> Result<Event<'_>, Failure> {
        super::decode(payload)
    }

    fn models(reply: &[u8]) -> Result<Vec<String>, String> {
        super::models(reply)
    }

    fn text(payload: &[u8]) -> Option<String> {
        super::text(payload)
    }
}
