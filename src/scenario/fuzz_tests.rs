//! Fuzzing the scenario loader (issue 6): random TOML built from the vocabulary of the
//! checked-in scenarios, and mutations of those scenarios, must never panic or hang; every
//! error, from loading or from planning (`Plan::build`), must name the file and a key or a
//! line; a scenario that plans must print its plan and pass the pre-flight check without
//! panicking. Bounded and seeded (see
//! [`crate::fuzz`]); `FUZZ_CASES=100000 cargo test scenario::fuzz` runs longer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::{Override, ScenarioErrors, parse};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every checked-in scenario (shipped, ok and bad fixtures): the seeds of mutation.
fn seeds() -> Vec<String> {
    let mut out = Vec::new();
    for dir in [
        "scenarios",
        "tests/fixtures/scenarios",
        "tests/fixtures/cli",
    ] {
        for path in super::discover(&Path::new(ROOT).join(dir)) {
            if let Ok(text) = std::fs::read_to_string(&path) {
                out.push(text);
            }
        }
    }
    assert!(out.len() > 40, "found only {} scenarios", out.len());
    out
}

/// Table headers of the format, including a few that do not exist.
const TABLES: &[&str] = &[
    "experiment",
    "target",
    "vars",
    "vars.fixed",
    "vars.sweep",
    "vars.linked.g",
    "workload",
    "analysis",
    "checks",
    "slo",
    "report",
    "target.headers",
    "workload.shared_prefix",
    "nope",
];

/// Keys that occur in the checked-in scenarios (and some that do not).
const KEYS: &[&str] = &[
    "name",
    "description",
    "seed",
    "repetitions",
    "order",
    "kind",
    "model_config",
    "gpu",
    "gpus",
    "base_url",
    "model",
    "api_key_env",
    "headers",
    "timeout",
    "idle_timeout",
    "ignore_eos",
    "sim_preset",
    "noise_cv",
    "gpu_memory_utilization",
    "block_size",
    "request_rate",
    "concurrency",
    "batch_size",
    "requests",
    "duration",
    "prompt_tokens",
    "output_tokens",
    "tp",
    "max_num_seqs",
    "max_num_batched_tokens",
    "exclude",
    "labels",
    "arrival",
    "prompts",
    "shared_prefix",
    "prompt_dist",
    "output_dist",
    "trace",
    "warmup",
    "grace",
    "max_concurrency",
    "burstiness",
    "baseline",
    "load",
    "primary",
    "alpha",
    "template",
    "ttft",
    "tpot",
    "e2e",
    "itl",
    "\"ttft.p99\"",
    "error_rate",
    "groups",
    "prefix_tokens",
    "from",
    "to",
    "step",
    "factor",
    "x",
];

/// Values worth trying: edges of every type the format has.
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "10",
    "512",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "0.0",
    "-0.0",
    "0.5",
    "1e308",
    "1e-308",
    "nan",
    "inf",
    "-inf",
    "true",
    "false",
    "\"\"",
    "\"x\"",
    "\"sim\"",
    "\"openai-chat\"",
    "\"openai-completions\"",
    "\"closed\"",
    "\"poisson\"",
    "\"gamma\"",
    "\"constant\"",
    "\"batch\"",
    "\"trace\"",
    "\"shared-prefix\"",
    "\"synthetic\"",
    "\"sequential\"",
    "\"randomized-blocks\"",
    "\"llama-3.1-8b\"",
    "\"h100-sxm\"",
    "\"http://127.0.0.1:1/v1\"",
    "\"10s\"",
    "\"0s\"",
    "\"-5s\"",
    "\"999999d\"",
    "\"1.5\"",
    "\"< 800ms\"",
    "\">= 95%\"",
    "\"{{ request_rate }}\"",
    "\"{{ nope }}\"",
    "\"{{\"",
    "\"{% if %}\"",
    "\"request_rate > 5\"",
    "\"../x\"",
    "\"traces/tiny.jsonl\"",
    "\"/dev/null\"",
    "[]",
    "[0]",
    "[1, 2, 3]",
    "[1, 1]",
    "[\"a\", 1]",
    "[[1]]",
    "{}",
    "{ from = 1, to = 64, step = 8 }",
    "{ from = 1, to = 64, factor = 2 }",
    "{ from = 1, to = 64, factor = 1 }",
    "{ from = 1, to = 64, step = 0 }",
    "{ from = 64, to = 1, step = 1 }",
    "{ from = 1, to = 1e18, step = 1 }",
    "{ from = 0, to = 1e300, factor = 1.0000001 }",
    "{ from = nan, to = 1, step = 1 }",
    "{ from = 1, to = 2, step = 1e-300 }",
    "{ lognormal = 0.5 }",
    "{ uniform = 2 }",
    "{ lognormal = -1 }",
    "{ groups = 0, prefix_tokens = 0 }",
    "{ jsonl = \"x.jsonl\" }",
    "{ tp = 8 }",
    "{ value = \"v\", secret = true }",
    "1979-05-27T07:32:00Z",
];

/// Raw fragments for byte-level mutations.
const FRAGMENTS: &[&str] = &[
    "=", "[", "]", "[[", "]]", "{", "}", "\"", "'", "'''", "\"\"\"", "\n", ",", ".", "#", "\\",
    "\u{0}", "\u{feff}", "é", "\r", "\t", "{{", "}}", "-", "+", "_", "e", "x = 1\n",
];

/// One edit of a scenario text.
#[derive(Debug, Clone)]
enum Edit {
    /// Replace the value of the `n`-th `key = value` line.
    Value(usize, &'static str),
    /// Replace the key of the `n`-th `key = value` line.
    Key(usize, &'static str),
    /// Delete line `n`.
    DeleteLine(usize),
    /// Duplicate line `n`.
    DuplicateLine(usize),
    /// Insert `[table]` or `key = value` before line `n`.
    InsertLine(usize, String),
    /// Insert a fragment at byte offset `n` (rounded down to a char boundary).
    InsertBytes(usize, &'static str),
    /// Delete `len` bytes at offset `n` (rounded to char boundaries).
    DeleteBytes(usize, usize),
    /// Cut the text at offset `n`.
    Truncate(usize),
}

fn line_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(TABLES).prop_map(|t| format!("[{t}]")),
        (prop::sample::select(KEYS), prop::sample::select(VALUES))
            .prop_map(|(k, v)| format!("{k} = {v}")),
    ]
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    let n = any::<usize>();
    prop_oneof![
        3 => (n, prop::sample::select(VALUES)).prop_map(|(i, v)| Edit::Value(i, v)),
        1 => (n, prop::sample::select(KEYS)).prop_map(|(i, k)| Edit::Key(i, k)),
        1 => n.prop_map(Edit::DeleteLine),
        1 => n.prop_map(Edit::DuplicateLine),
        2 => (n, line_strategy()).prop_map(|(i, l)| Edit::InsertLine(i, l)),
        1 => (n, prop::sample::select(FRAGMENTS)).prop_map(|(i, f)| Edit::InsertBytes(i, f)),
        1 => (n, 1usize..12).prop_map(|(i, len)| Edit::DeleteBytes(i, len)),
        1 => n.prop_map(Edit::Truncate),
    ]
}

fn floor_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &str, edit: &Edit) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let assignments: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains(" = "))
        .collect();
    let pick = |n: usize, len: usize| if len == 0 { None } else { Some(n % len) };
    match edit {
        Edit::Value(n, v) => {
            if let Some(i) = pick(*n, assignments.len()).map(|k| assignments[k]) {
                let key = lines[i].split(" = ").next().unwrap_or_default().to_owned();
                lines[i] = format!("{key} = {v}");
            }
        }
        Edit::Key(n, k) => {
            if let Some(i) = pick(*n, assignments.len()).map(|k| assignments[k]) {
                let value = lines[i].split_once(" = ").map_or("", |(_, v)| v).to_owned();
                lines[i] = format!("{k} = {value}");
            }
        }
        Edit::DeleteLine(n) => {
            if let Some(i) = pick(*n, lines.len()) {
                lines.remove(i);
            }
        }
        Edit::DuplicateLine(n) => {
            if let Some(i) = pick(*n, lines.len()) {
                let line = lines[i].clone();
                lines.insert(i, line);
            }
        }
        Edit::InsertLine(n, line) => {
            let i = n % (lines.len() + 1);
            lines.insert(i, line.clone());
        }
        Edit::InsertBytes(n, f) => {
            let mut out = text.to_owned();
            out.insert_str(floor_boundary(text, n % (text.len() + 1)), f);
            return out;
        }
        Edit::DeleteBytes(n, len) => {
            let start = floor_boundary(text, n % (text.len() + 1));
            let end = floor_boundary(text, start + len);
            return format!("{}{}", &text[..start], &text[end..]);
        }
        Edit::Truncate(n) => {
            return text[..floor_boundary(text, n % (text.len() + 1))].to_owned();
        }
    }
    lines.join("\n") + "\n"
}

/// The file every fuzzed text pretends to be: inside the ok fixtures, so relative dataset and
/// trace paths of mutated scenarios can resolve.
fn fake_path() -> PathBuf {
    Path::new(ROOT).join("tests/fixtures/scenarios/ok/fuzzed.toml")
}

/// The properties every input must have; a panic anywhere is caught by the runner.
fn check(text: &str, overrides: &[Override]) -> Result<(), TestCaseError> {
    let path = fake_path();
    // Matrix problems come from `Plan::build`, and must be located just the same.
    let planned = parse(text, &path, overrides).and_then(crate::plan::Plan::build);
    match planned {
        Err(ScenarioErrors(errors)) => {
            prop_assert!(!errors.is_empty(), "an error without problems");
            for e in &errors {
                prop_assert_eq!(&e.path, &path);
                prop_assert!(!e.message.is_empty(), "empty message: {:?}", e);
                prop_assert!(
                    !e.key.is_empty() || e.line.is_some() || e.arg.is_some(),
                    "an error that says neither where nor which key: {:?}",
                    e
                );
            }
        }
        Ok(plan) => {
            let _ = plan.render();
            let _ = crate::run::preflight(&plan);
        }
    }
    Ok(())
}

#[test]
fn mutated_scenarios_never_panic_and_every_error_is_located() {
    let seeds = seeds();
    let strategy = (0..seeds.len(), prop::collection::vec(edit_strategy(), 1..6));
    crate::fuzz::run(
        "scenario-mutations",
        strategy,
        3_000,
        Duration::from_secs(120),
        move |(seed, edits)| {
            let mut text = seeds[seed].clone();
            for edit in &edits {
                text = apply(&text, edit);
            }
            check(&text, &[])
        },
    );
}

#[test]
fn random_scenarios_from_the_vocabulary_never_panic() {
    let strategy = prop::collection::vec(line_strategy(), 0..40);
    crate::fuzz::run(
        "scenario-random",
        strategy,
        2_000,
        Duration::from_secs(120),
        |lines| check(&(lines.join("\n") + "\n"), &[]),
    );
}

#[test]
fn random_overrides_never_panic() {
    let seeds = seeds();
    let key = (
        prop::sample::select(TABLES),
        prop::sample::select(KEYS),
        any::<bool>(),
    )
        .prop_map(|(t, k, nested)| {
            if nested {
                format!("{t}.{k}")
            } else {
                k.to_string()
            }
        });
    let set = (key, prop::sample::select(VALUES)).prop_map(|(k, v)| format!("{k}={v}"));
    let strategy = (0..seeds.len(), prop::collection::vec(set, 1..4));
    crate::fuzz::run(
        "scenario-overrides",
        strategy,
        1_500,
        Duration::from_secs(120),
        move |(seed, sets)| {
            let overrides: Vec<Override> = sets
                .iter()
                .filter_map(|s| Override::parse(s).ok())
                .collect();
            check(&seeds[seed], &overrides)
        },
    );
}
