//! The quality stage — items and scoring, pure, no network: the prompts of long-context
//! retrieval tasks (passkey, needle-in-a-haystack), the answer each one asks for, and whether
//! a completion gives it. The run pass sends the prompts and the analysis counts the scores;
//! the fixed server's referee (`exp serve --fixed …,accuracy=P`) answers them with a known
//! accuracy, so the whole pass can be checked against a number set in advance.

mod fit;
pub mod retrieval;

pub use retrieval::{DEFAULT_DEPTHS, Item, Task, answer_in, items, score};
