//! The quality stage — items and scoring, pure, no network: the perplexity corpus and its
//! segments; the prompts of long-context retrieval tasks (passkey, needle-in-a-haystack), the
//! answer each one asks for, and whether a completion gives it. The run pass sends the
//! prompts and the analysis counts the scores; the fixed server's referee (`exp serve --fixed
//! …,accuracy=P,logprob=L`) answers them with a known accuracy and log-prob, so the whole pass
//! can be checked against numbers set in advance.

mod fit;
pub mod mix;
pub mod perplexity;
pub mod retrieval;

pub use retrieval::{DEFAULT_DEPTHS, Item, Task, answer_in, items, score};
