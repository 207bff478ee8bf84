//! Metrics: what one request and one repetition measured, under the names of metrics.md.
//! Pure: records in, numbers out. Statistics across repetitions live in `stats`/`analysis`.

pub mod names;
pub mod repetition;
pub mod request;
pub mod resources;

pub use repetition::{RepetitionSummary, summarize};
pub use request::{RequestMetrics, derive};
