//! Well-known variables: the names in `[vars]` that fill a [`CellConfig`](super::CellConfig)
//! (`prompt_tokens`, `request_rate`, `tp`, …), their types, ranges and defaults. The same
//! checks run on every value of every sweep at load time and on the cell's values in
//! `Scenario::resolve`, so both report the same message.

use std::time::Duration;

use super::duration;
use super::error::{Locs, ScenarioError};
use super::model::{Value, Vars};
use super::read::check_duration;

/// Engine variables: acting on them needs control of the server (the simulator has it; a
/// fixed external server does not, unless they are only labels).
pub(crate) const ENGINE_VARS: &[&str] = &["tp", "max_num_seqs", "max_num_batched_tokens"];

/// Longest `duration` accepted.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(7 * 86400);

/// A problem with one value: what, and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    fn new(message: String, hint: &str) -> Self {
        Problem {
            message,
            hint: (!hint.is_empty()).then(|| hint.to_string()),
        }
    }
}

enum Rule {
    /// An integer in `[1, max]`.
    Count(i64),
    /// A number in `(0, max]`.
    Positive(f64),
    /// A duration string or seconds, in `(0, 7 days]`.
    Duration,
}

fn rule(name: &str) -> Option<(Rule, &'static str)> {
    Some(match name {
        "context_tokens" => (
            Rule::Count(10_000_000),
            "length of each [quality] retrieval prompt in tokens, e.g. `context_tokens = [4096, 16384]`",
        ),
        "prompt_tokens" => (
            Rule::Count(10_000_000),
            "prompt length in tokens, e.g. `prompt_tokens = 512`",
        ),
        "output_tokens" => (
            Rule::Count(10_000_000),
            "output length in tokens, e.g. `output_tokens = 128`",
        ),
        "request_rate" => (
            Rule::Positive(1e6),
            "request_rate is requests per second; for a fixed number of requests in flight use arrival = \"closed\" with `concurrency`",
        ),
        "burstiness" => (
            Rule::Positive(1e3),
            "gamma shape: 1 is Poisson, below 1 is burstier",
        ),
        "concurrency" => (
            Rule::Count(1_000_000),
            "requests kept in flight by arrival = \"closed\"",
        ),
        "batch_size" => (
            Rule::Count(1_000_000),
            "requests sent together by arrival = \"batch\"",
        ),
        "requests" => (
            Rule::Count(100_000_000),
            "measured requests per repetition; to bound time instead use `duration = \"5m\"`",
        ),
        "duration" => (Rule::Duration, duration::SYNTAX),
        "tp" => (
            Rule::Count(65_536),
            "tensor-parallel degree, e.g. 1, 2, 4, 8",
        ),
        "max_num_seqs" => (
            Rule::Count(1_000_000),
            "most sequences in one engine step, e.g. 256",
        ),
        "max_num_batched_tokens" => (
            Rule::Count(100_000_000),
            "token budget of one engine step, e.g. 8192",
        ),
        _ => return None,
    })
}

/// Checks one value of a variable; free (not well-known) variables accept any scalar.
pub(crate) fn check(name: &str, value: &Value) -> Result<(), Problem> {
    match rule(name) {
        None => Ok(()),
        Some((Rule::Count(max), hint)) => count_value(value, max, hint).map(|_| ()),
        Some((Rule::Positive(max), hint)) => positive_value(value, max, hint).map(|_| ()),
        Some((Rule::Duration, _)) => duration_value(value).map(|_| ()),
    }
}

fn count_value(value: &Value, max: i64, hint: &str) -> Result<u64, Problem> {
    match value {
        Value::Int(i) if (1..=max).contains(i) => Ok(*i as u64),
        Value::Int(i) if *i < 1 => Err(Problem::new(format!("must be >= 1, got {i}"), hint)),
        Value::Int(i) => Err(Problem::new(
            format!("must be at most {max}, got {i}"),
            hint,
        )),
        Value::Float(x) => Err(Problem::new(format!("must be an integer, got {x:?}"), hint)),
        other => Err(Problem::new(
            format!("must be an integer, got {}", describe(other)),
            hint,
        )),
    }
}

fn positive_value(value: &Value, max: f64, hint: &str) -> Result<f64, Problem> {
    let Some(x) = value.as_f64() else {
        return Err(Problem::new(
            format!("must be a number, got {}", describe(value)),
            hint,
        ));
    };
    if !x.is_finite() {
        return Err(Problem::new(
            format!("must be a finite number, got {x}"),
            hint,
        ));
    }
    if x <= 0.0 {
        return Err(Problem::new(format!("must be > 0, got {value}"), hint));
    }
    if x > max {
        return Err(Problem::new(
            format!("must be at most {max}, got {value}"),
            hint,
        ));
    }
    Ok(x)
}

fn duration_value(value: &Value) -> Result<Duration, Problem> {
    let parsed = match value {
        Value::Str(s) => duration::parse(s),
        Value::Int(_) | Value::Float(_) => {
            let secs = value.as_f64().unwrap_or(f64::NAN);
            if secs.is_nan() || secs < 0.0 {
                Err(format!("must be a positive number of seconds, got {value}"))
            } else {
                Duration::try_from_secs_f64(secs)
                    .map_err(|_| format!("{value} seconds is too long"))
            }
        }
        Value::Bool(_) => Err(format!("must be a duration, got {}", describe(value))),
    };
    let d = parsed.map_err(|m| Problem::new(m, duration::SYNTAX))?;
    let hint =
        "a repetition longer than a week is almost surely a typo; bound it by `requests` instead";
    check_duration(d, MAX_DURATION).map_err(|m| Problem::new(m, hint))
}

fn describe(value: &Value) -> String {
    match value {
        Value::Str(s) => format!("a string ({s:?})"),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Int(i) => format!("{i}"),
        Value::Float(x) => format!("{x:?}"),
    }
}

/// A problem with a cell's variable, located where the variable was declared.
pub(crate) fn located(locs: &Locs, name: &str, p: Problem) -> ScenarioError {
    locs.error(&locs.var_key(name), p.message, p.hint)
}

/// A count variable of the cell, or `default`, with a located error.
pub(crate) fn count_at(
    vars: &Vars,
    locs: &Locs,
    name: &str,
    default: Option<u64>,
) -> Result<Option<u64>, ScenarioError> {
    count(vars, name, default).map_err(|p| located(locs, name, p))
}

/// A count variable of a cell (`prompt_tokens`, `tp`, …), or `default` when unset.
pub(crate) fn count(vars: &Vars, name: &str, default: Option<u64>) -> Result<Option<u64>, Problem> {
    let (Some(value), Some((Rule::Count(max), hint))) = (vars.get(name), rule(name)) else {
        return Ok(default);
    };
    count_value(value, max, hint).map(Some)
}

/// A positive-number variable of a cell (`request_rate`, `burstiness`), or `default`.
pub(crate) fn positive(
    vars: &Vars,
    name: &str,
    default: Option<f64>,
) -> Result<Option<f64>, Problem> {
    let (Some(value), Some((Rule::Positive(max), hint))) = (vars.get(name), rule(name)) else {
        return Ok(default);
    };
    positive_value(value, max, hint).map(Some)
}

/// The `duration` variable of a cell, if set.
pub(crate) fn duration_var(vars: &Vars) -> Result<Option<Duration>, Problem> {
    vars.get("duration").map(duration_value).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_positive_integers_below_their_cap() {
        assert!(check("prompt_tokens", &Value::Int(512)).is_ok());
        assert_eq!(
            check("prompt_tokens", &Value::Int(0)).unwrap_err().message,
            "must be >= 1, got 0"
        );
        assert_eq!(
            check("requests", &Value::Int(200_000_000))
                .unwrap_err()
                .message,
            "must be at most 100000000, got 200000000"
        );
        assert_eq!(
            check("tp", &Value::Float(2.0)).unwrap_err().message,
            "must be an integer, got 2.0"
        );
    }

    #[test]
    fn rates_and_durations_are_positive_and_finite() {
        assert_eq!(
            check("request_rate", &Value::Int(0)).unwrap_err().message,
            "must be > 0, got 0"
        );
        assert_eq!(
            check("request_rate", &Value::Float(f64::NAN))
                .unwrap_err()
                .message,
            "must be a finite number, got NaN"
        );
        assert_eq!(
            duration_var(&Vars::from([("duration".into(), Value::Int(90))])),
            Ok(Some(Duration::from_secs(90)))
        );
        assert!(check("duration", &Value::Str("8d".into())).is_err());
        assert!(check("my_free_var", &Value::Bool(true)).is_ok());
    }

    #[test]
    fn defaults_apply_only_when_unset() {
        let vars = Vars::from([("tp".into(), Value::Int(4))]);
        assert_eq!(count(&vars, "tp", Some(1)), Ok(Some(4)));
        assert_eq!(count(&vars, "max_num_seqs", Some(256)), Ok(Some(256)));
        assert_eq!(positive(&vars, "request_rate", None), Ok(None));
    }
}
