//! Multi-turn conversations (`prompts = { conversations = "chats.json" }`): a ShareGPT-format
//! JSON array replayed turn by turn, and the [`RequestSource`] that serves it.
//!
//! Each element's `conversations` messages become an alternating chat. Roles: `system`;
//! `human` or `user` (user); `gpt`, `assistant`, `chatgpt`, `bing`, `bard` or `model`
//! (assistant); any other role is an error naming the element. Blank messages are dropped,
//! consecutive messages of one role are merged (joined by a blank line), assistant messages
//! before the first user message are dropped, and a system message after it is an error.
//! Elements without a user message are skipped and counted.
//!
//! Turn `t` is the `t`-th user message. Its prompt is the history up to it: the system prompt,
//! user 0, the dataset's recorded reply 0, …, user `t` — the recorded replies, never the
//! model's own, so every turn is known before the run and is the same on every target. Its
//! `input_tokens` is the history's word count (the workload's approximation; the server's usage
//! gives the truth) and its output length the cell's rule, drawn per (conversation, turn); the
//! recorded reply's length is not used, so `output_tokens` keeps its meaning.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rand::seq::SliceRandom;
use serde_json::Value;

use super::error::WorkloadError;
use super::lengths::LengthDraw;
use super::stream::{self, Purpose};
use super::work::{ChatMessage, Prompt, RequestSource, RequestSpec};
use super::{jsonl, sharegpt, words};

/// The roles a ShareGPT `from` may name, and the chat role each becomes.
const ROLES: &[(&str, Role)] = &[
    ("system", Role::System),
    ("human", Role::User),
    ("user", Role::User),
    ("gpt", Role::Assistant),
    ("assistant", Role::Assistant),
    ("chatgpt", Role::Assistant),
    ("bing", Role::Assistant),
    ("bard", Role::Assistant),
    ("model", Role::Assistant),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// Where one turn's prompt ends in its conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnEnd {
    /// Messages in the turn's prompt (the history up to and including its user message).
    pub messages: u32,
    /// Words in those messages (≥ 1): the turn's approximate prompt tokens.
    pub words: u32,
}

/// One conversation: alternating messages (a system prompt first, if any) and its turns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The messages, ending with the last turn's user message.
    pub messages: Vec<ChatMessage>,
    /// One entry per turn (≥ 1), in order; prompts grow with the turn.
    pub turns: Vec<TurnEnd>,
}

/// A loaded, non-empty conversation dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversations {
    path: PathBuf,
    items: Vec<Conversation>,
    skipped: usize,
}

impl Conversations {
    /// Reads a ShareGPT JSON array of conversations.
    pub fn load(path: &Path) -> Result<Self, WorkloadError> {
        Self::parse(path, &jsonl::read(path, "dataset")?)
    }

    /// Parses ShareGPT text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, WorkloadError> {
        let (items, skipped) = sharegpt::parse_elements(path, text, conversation)?;
        let problem = if items.is_empty() {
            Some(format!(
                "the dataset has no conversations ({skipped} skipped: no non-empty user message)"
            ))
        } else if u32::try_from(items.len()).is_err() {
            Some("the dataset has more than 2^32 conversations".into())
        } else {
            None
        };
        if let Some(message) = problem {
            return Err(WorkloadError::File {
                path: path.to_path_buf(),
                message,
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            items,
            skipped,
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The conversations, in file order.
    pub fn items(&self) -> &[Conversation] {
        &self.items
    }

    /// Elements skipped for having no non-empty user message.
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

/// One element as a conversation: `Ok(None)` when it has no non-empty user message.
fn conversation(element: &Value) -> Result<Option<Conversation>, String> {
    let mut messages: Vec<ChatMessage> = Vec::new();
    let mut seen_user = false;
    for (j, m) in sharegpt::messages(element)?.iter().enumerate() {
        let (from, text) = sharegpt::message(j, m)?;
        let Some(&(_, role)) = ROLES.iter().find(|(name, _)| *name == from) else {
            let known: Vec<&str> = ROLES.iter().map(|(name, _)| *name).collect();
            return Err(format!(
                "conversations[{j}].from: unknown role {from:?} (expected one of {})",
                known.join(", ")
            ));
        };
        if text.trim().is_empty() {
            continue;
        }
        match role {
            Role::System if seen_user => {
                return Err(format!(
                    "conversations[{j}]: a system message after the first user message"
                ));
            }
            Role::Assistant if !seen_user => continue,
            Role::User => seen_user = true,
            _ => {}
        }
        match messages.last_mut() {
            Some(last) if last.role == role.name() => {
                last.content.push_str("\n\n");
                last.content.push_str(text);
            }
            _ => messages.push(ChatMessage {
                role: role.name().to_owned(),
                content: text.to_owned(),
            }),
        }
    }
    let mut turns = Vec::new();
    let mut total = 0u32;
    for (k, m) in messages.iter().enumerate() {
        total = total.saturating_add(words::count(&m.content));
        if m.role == Role::User.name() {
            turns.push(TurnEnd {
                messages: u32::try_from(k + 1).unwrap_or(u32::MAX),
                words: total,
            });
        }
    }
    let Some(last) = turns.last() else {
        return Ok(None);
    };
    // The reply to the last turn is never sent.
    messages.truncate(last.messages as usize);
    Ok(Some(Conversation { messages, turns }))
}

/// A multi-turn [`RequestSource`]: unit `i` is conversation `order[i mod len]` of a seeded
/// permutation, whose turn `t` is sent as described in the module docs.
#[derive(Debug, Clone)]
pub(crate) struct ConversationSource {
    data: Arc<Conversations>,
    order: Vec<u32>,
    output: LengthDraw,
    think_time: Duration,
}

impl ConversationSource {
    /// Serves `data` in the order given by `seed`, with output lengths from `output` and
    /// `think_time` between a turn's completion and the next turn.
    pub(crate) fn new(
        data: Arc<Conversations>,
        seed: u64,
        output: LengthDraw,
        think_time: Duration,
    ) -> Self {
        // `Conversations::parse` guarantees the length fits in u32.
        let mut order: Vec<u32> = (0..data.items.len() as u32).collect();
        order.shuffle(&mut stream::sequential(seed, Purpose::Permutation));
        Self {
            data,
            order,
            output,
            think_time,
        }
    }

    fn conversation(&self, i: u64) -> &Conversation {
        let slot = (i % self.order.len() as u64) as usize;
        &self.data.items[self.order[slot] as usize]
    }
}

impl RequestSource for ConversationSource {
    fn lengths(&self, i: u64) -> (u32, u32) {
        self.turn_lengths(i, 0)
    }

    fn request(&self, i: u64) -> RequestSpec {
        self.turn(i, 0)
    }

    fn turns(&self, i: u64) -> u32 {
        u32::try_from(self.conversation(i).turns.len()).unwrap_or(u32::MAX)
    }

    /// Panics when `t` is not below [`Self::turns`] (a caller's bug).
    fn turn_lengths(&self, i: u64, t: u32) -> (u32, u32) {
        let end = self.conversation(i).turns[t as usize];
        (end.words, self.output.get_turn(i, t))
    }

    /// Panics when `t` is not below [`Self::turns`] (a caller's bug).
    fn turn(&self, i: u64, t: u32) -> RequestSpec {
        let c = self.conversation(i);
        let end = c.turns[t as usize];
        RequestSpec {
            prompt: Prompt::Chat(c.messages[..end.messages as usize].to_vec()),
            input_tokens: end.words,
            max_tokens: self.output.get_turn(i, t),
        }
    }

    fn think_time(&self) -> Duration {
        self.think_time
    }
}

#[cfg(test)]
#[path = "conversation_tests.rs"]
mod tests;
