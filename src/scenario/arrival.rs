//! Arrival processes: `workload.arrival`'s closed set of names ([`ArrivalKind`]), what each
//! needs and refuses, and the process of one cell once its variables are known
//! ([`ArrivalConfig`]).
//!
//! A new process is a variant of both enums, an entry in [`ArrivalKind::ALL`], and the arms
//! the compiler then asks for: here, and in `workload/arrivals.rs` (its send offsets). Every
//! match on either enum names each variant, so no arm is forgotten silently.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use super::error::{Locs, ScenarioError};
use super::model::Vars;
use super::wellknown::{self, count_at as count, located as fail};

/// The arrival process before the cell's numbers are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArrivalKind {
    Poisson,
    Gamma,
    Constant,
    Closed,
    Batch,
    Trace,
}

impl ArrivalKind {
    /// Every arrival process, in the order error messages list them.
    pub(crate) const ALL: [ArrivalKind; 6] = [
        ArrivalKind::Poisson,
        ArrivalKind::Gamma,
        ArrivalKind::Constant,
        ArrivalKind::Closed,
        ArrivalKind::Batch,
        ArrivalKind::Trace,
    ];

    /// The value of `workload.arrival` that selects it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ArrivalKind::Poisson => "poisson",
            ArrivalKind::Gamma => "gamma",
            ArrivalKind::Constant => "constant",
            ArrivalKind::Closed => "closed",
            ArrivalKind::Batch => "batch",
            ArrivalKind::Trace => "trace",
        }
    }

    /// The process `name` selects, if any.
    pub(crate) fn parse(name: &str) -> Option<ArrivalKind> {
        ArrivalKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The variable this arrival process needs, if any.
    pub(crate) fn required_var(self) -> Option<&'static str> {
        match self {
            ArrivalKind::Poisson | ArrivalKind::Gamma | ArrivalKind::Constant => {
                Some("request_rate")
            }
            ArrivalKind::Closed => Some("concurrency"),
            ArrivalKind::Batch => Some("batch_size"),
            ArrivalKind::Trace => None,
        }
    }

    /// Replays `workload.trace` (which no other process reads), prompts and lengths included.
    pub(crate) fn replays_trace(self) -> bool {
        match self {
            ArrivalKind::Trace => true,
            ArrivalKind::Poisson
            | ArrivalKind::Gamma
            | ArrivalKind::Constant
            | ArrivalKind::Closed
            | ArrivalKind::Batch => false,
        }
    }

    /// Bounds the requests in flight itself, so `max_concurrency` has nothing to cap.
    pub(crate) fn bounds_in_flight(self) -> bool {
        match self {
            ArrivalKind::Closed | ArrivalKind::Batch => true,
            ArrivalKind::Poisson
            | ArrivalKind::Gamma
            | ArrivalKind::Constant
            | ArrivalKind::Trace => false,
        }
    }

    /// The process of one cell: its rate, concurrency or batch size from the cell's
    /// variables; `trace` is `workload.trace`.
    pub(crate) fn config(
        self,
        trace: Option<&Path>,
        vars: &Vars,
        locs: &Locs,
    ) -> Result<ArrivalConfig, ScenarioError> {
        let rate = || {
            let r = wellknown::positive(vars, "request_rate", None)
                .map_err(|p| fail(locs, "request_rate", p))?;
            r.ok_or_else(|| missing(locs, self, "request_rate"))
        };
        let needed = |name: &str| -> Result<NonZeroU32, ScenarioError> {
            let n = count(vars, locs, name, None)?.ok_or_else(|| missing(locs, self, name))?;
            Ok(NonZeroU32::new(n as u32).unwrap_or(NonZeroU32::MIN))
        };
        Ok(match self {
            ArrivalKind::Poisson => ArrivalConfig::Poisson { rate: rate()? },
            ArrivalKind::Constant => ArrivalConfig::Constant { rate: rate()? },
            ArrivalKind::Gamma => {
                let b = wellknown::positive(vars, "burstiness", Some(1.0))
                    .map_err(|p| fail(locs, "burstiness", p))?;
                ArrivalConfig::Gamma {
                    rate: rate()?,
                    burstiness: b.unwrap_or(1.0),
                }
            }
            ArrivalKind::Closed => ArrivalConfig::Closed {
                concurrency: needed("concurrency")?,
            },
            ArrivalKind::Batch => ArrivalConfig::Batch {
                size: needed("batch_size")?,
            },
            ArrivalKind::Trace => {
                ArrivalConfig::Trace(trace.map(Path::to_path_buf).unwrap_or_default())
            }
        })
    }
}

/// The error for an arrival process whose variable is not defined.
pub(crate) fn missing(locs: &Locs, arrival: ArrivalKind, name: &str) -> ScenarioError {
    let example = if name == "request_rate" { "10" } else { "8" };
    let message = format!(
        "arrival = {:?} needs the variable `{name}`, which is not defined",
        arrival.name()
    );
    let hint = format!("add `{name} = {example}` to [vars.fixed], or sweep it in [vars.sweep]");
    locs.error("workload.arrival", message, Some(hint))
}

/// The arrival process of one cell.
#[derive(Debug, Clone, PartialEq)]
pub enum ArrivalConfig {
    /// Exponential gaps at `rate` per second.
    Poisson {
        /// Requests per second.
        rate: f64,
    },
    /// Gamma gaps with mean 1/rate and shape `burstiness` (1 = Poisson; < 1 burstier).
    Gamma {
        /// Requests per second.
        rate: f64,
        /// Gamma shape.
        burstiness: f64,
    },
    /// Evenly spaced sends.
    Constant {
        /// Requests per second.
        rate: f64,
    },
    /// Closed loop with this many requests in flight.
    Closed {
        /// Requests in flight.
        concurrency: NonZeroU32,
    },
    /// Batch mode: `size` requests together, wait for all, repeat.
    Batch {
        /// BS.
        size: NonZeroU32,
    },
    /// Replay of a JSONL trace of `{"timestamp": seconds, "input_tokens": n, "output_tokens": n}`.
    Trace(PathBuf),
}

impl ArrivalConfig {
    /// Requests per second of a process paced by a rate; `None` where the server's speed
    /// paces it (closed loop, batches) or a file does (trace), unknown before running.
    pub fn mean_rate(&self) -> Option<f64> {
        match self {
            ArrivalConfig::Poisson { rate }
            | ArrivalConfig::Gamma { rate, .. }
            | ArrivalConfig::Constant { rate } => Some(*rate),
            ArrivalConfig::Closed { .. }
            | ArrivalConfig::Batch { .. }
            | ArrivalConfig::Trace(_) => None,
        }
    }

    /// The trace file a replay reads (relative to the scenario's directory); `None` for
    /// processes that draw or pace their own sends.
    pub fn trace(&self) -> Option<&Path> {
        match self {
            ArrivalConfig::Trace(path) => Some(path),
            ArrivalConfig::Poisson { .. }
            | ArrivalConfig::Gamma { .. }
            | ArrivalConfig::Constant { .. }
            | ArrivalConfig::Closed { .. }
            | ArrivalConfig::Batch { .. } => None,
        }
    }

    /// Requests the process itself keeps in flight at most (closed loop, batches); `None` for
    /// open-loop processes, whose only bound is `max_concurrency`.
    pub fn in_flight_bound(&self) -> Option<NonZeroU32> {
        match self {
            ArrivalConfig::Closed { concurrency } => Some(*concurrency),
            ArrivalConfig::Batch { size } => Some(*size),
            ArrivalConfig::Poisson { .. }
            | ArrivalConfig::Gamma { .. }
            | ArrivalConfig::Constant { .. }
            | ArrivalConfig::Trace(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_arrival_name_selects_its_kind() {
        for kind in ArrivalKind::ALL {
            assert_eq!(ArrivalKind::parse(kind.name()), Some(kind));
        }
        assert_eq!(ArrivalKind::parse("Poisson"), None);
        let names = ArrivalKind::ALL.map(ArrivalKind::name);
        assert_eq!(
            names,
            ["poisson", "gamma", "constant", "closed", "batch", "trace"]
        );
    }

    /// A new variant stops this match from compiling: then add it to `ALL` and count it.
    #[test]
    fn all_lists_every_arrival_kind() {
        let listed = |k: ArrivalKind| match k {
            ArrivalKind::Poisson
            | ArrivalKind::Gamma
            | ArrivalKind::Constant
            | ArrivalKind::Closed
            | ArrivalKind::Batch
            | ArrivalKind::Trace => ArrivalKind::ALL.contains(&k),
        };
        assert!(ArrivalKind::ALL.into_iter().all(listed));
        assert_eq!(ArrivalKind::ALL.len(), 6);
    }

    /// What a kind says of itself before a cell is resolved agrees with the config it makes.
    #[test]
    fn each_kind_and_its_config_agree_on_traces_and_in_flight_bounds() {
        use crate::scenario::model::Value;
        let vars: Vars = [
            ("request_rate", Value::Float(5.0)),
            ("concurrency", Value::Int(4)),
            ("batch_size", Value::Int(8)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let trace = Path::new("trace.jsonl");
        for kind in ArrivalKind::ALL {
            let config = kind.config(Some(trace), &vars, &Locs::default()).unwrap();
            assert_eq!(kind.replays_trace(), config.trace().is_some(), "{kind:?}");
            let bound = config.in_flight_bound().map(NonZeroU32::get);
            assert_eq!(kind.bounds_in_flight(), bound.is_some(), "{kind:?}");
            let expected = match kind {
                ArrivalKind::Closed => Some(4),
                ArrivalKind::Batch => Some(8),
                _ => None,
            };
            assert_eq!(bound, expected, "{kind:?}");
        }
    }
}
