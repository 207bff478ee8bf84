//! exp: did this change make LLM serving faster, cheaper or worse — and is the difference
//! real?
//!
//! Data flow, one module per stage:
//! `scenario` (TOML → validated [`scenario::Scenario`]) → `matrix` (cells, run order) →
//! `plan` → `workload` (requests and arrivals of a repetition) → `run` (the tokio driver over
//! `backend`, or the `sim` engine built on `hw`) → `store` (run directory) → `metrics`
//! (per request, per repetition) → `analysis` (across repetitions, with `stats`) → `report`.
//! `quality` holds what `[quality]` scores (the corpus's segments, seeded retrieval items) and
//! how, pure; the `run` stage sends it.
//! `app` wires the stages for each subcommand; `cli` is the only module that knows clap.

pub mod adaptive;
pub mod analysis;
pub mod app;
pub mod backend;
pub mod calibrate;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod compare;
pub mod fanout;
pub mod fdlimit;
pub mod hw;
pub mod matrix;
pub mod merge;
pub mod metrics;
pub mod plan;
pub mod probe;
pub mod quality;
pub mod record;
pub mod report;
pub mod run;
pub mod scenario;
pub mod search;
pub mod secrets;
pub mod seed;
pub mod selftest;
pub mod serve;
pub mod server;
pub mod shard;
pub mod shell;
pub mod sim;
pub mod stats;
pub mod store;
pub mod theory;
pub mod units;
pub mod workload;

#[cfg(test)]
mod fuzz;
