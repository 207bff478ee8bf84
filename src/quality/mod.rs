//! The quality stage: what is scored beside the load — the items and how they are scored.
//! Pure: no network (the run stage sends the requests).

pub mod perplexity;
