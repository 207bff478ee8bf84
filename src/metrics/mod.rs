//! Metrics: what one request and one repetition measured, under the names of the metric
//! [`registry`]. Pure: records, completion markers, probe samples and the cell's deployment
//! in ([`summarize_repetition`] is the one place a repetition's summary is assembled), numbers
//! out. Statistics across repetitions live in `stats`/`analysis`.

pub mod batch;
pub mod client;
pub mod column;
pub mod inputs;
pub mod key;
pub mod probes;
pub mod quality;
pub mod registry;
pub mod repetition;
pub mod request;
pub mod resources;

pub use inputs::{CellInputs, RepetitionInputs, summarize_repetition};
pub use registry::{Better, Kind, Metric, MetricKey, Stat, Unit};
pub use repetition::{RepetitionSummary, Summarizer, summarize};
pub use request::{RequestMetrics, derive};
