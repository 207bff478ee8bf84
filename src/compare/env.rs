//! The two runs' environments side by side (from their manifests), and the differences that
//! make a comparison questionable (statistics.md §2.7, "baseline mismatch"): a different
//! scenario or target invalidates it; a different exp version, host or `--set` overrides
//! weakens it; a shared git revision marks an A/A comparison.

use serde::Serialize;

use super::matching::VarDifference;
use crate::store::{Manifest, RunStatus};

/// How much a difference between the runs matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The runs may not measure the same thing: a verdict may reflect the setup, not the code.
    Invalidates,
    /// The comparison holds but is weaker (noise or definitions may differ).
    Warning,
    /// Worth knowing; no effect on validity.
    Note,
}

/// One difference between the runs, in words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvDifference {
    /// How much it matters.
    pub severity: Severity,
    /// What differs and what it means.
    pub message: String,
}

/// One line of the environment table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvRow {
    /// What the line shows (`exp version`, `Target`, …).
    pub name: String,
    /// The baseline's value (`—` when unknown).
    pub baseline: String,
    /// The candidate's value (`—` when unknown).
    pub candidate: String,
    /// True when the two values differ where they should not (identity lines such as the run
    /// id and the git revision never count).
    pub differs: bool,
}

/// Both environments and their differences.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Environment {
    /// The table, one line per property.
    pub rows: Vec<EnvRow>,
    /// The differences that matter, most severe first.
    pub differences: Vec<EnvDifference>,
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "—".into())
}

fn short(sha: &str) -> String {
    sha.chars().take(12).collect()
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Compares the manifests of `baseline` and `candidate`, plus the fixed variables that differ
/// (from [`super::match_cells`]).
pub fn environment(
    baseline: &Manifest,
    candidate: &Manifest,
    fixed: &[VarDifference],
) -> Environment {
    let (b, c) = (baseline, candidate);
    // Identity rows differ by design; only the others get the `differs` mark.
    let id = |name: &str, bv: String, cv: String| EnvRow {
        name: name.into(),
        differs: false,
        baseline: bv,
        candidate: cv,
    };
    let row = |name: &str, bv: String, cv: String| EnvRow {
        differs: bv != cv,
        ..id(name, bv, cv)
    };
    let rows = vec![
        id("Run", b.run_id.clone(), c.run_id.clone()),
        row("Status", b.status.to_string(), c.status.to_string()),
        id("Started", b.started.clone(), c.started.clone()),
        id("git revision", opt(&b.git_revision), opt(&c.git_revision)),
        row("exp version", b.exp_version.clone(), c.exp_version.clone()),
        row("Target", b.executor.clone(), c.executor.clone()),
        row(
            "Scenario",
            format!("{} ({})", b.scenario_file, short(&b.scenario_sha256)),
            format!("{} ({})", c.scenario_file, short(&c.scenario_sha256)),
        ),
        row("Overrides", list(&b.overrides), list(&c.overrides)),
        row("Host", opt(&machines(b)), opt(&machines(c))),
        row(
            "Repetitions × seed",
            format!("{} × {}", b.repetitions, b.seed),
            format!("{} × {}", c.repetitions, c.seed),
        ),
    ];
    let mut differences = differences(b, c);
    if !fixed.is_empty() {
        let text: Vec<String> = fixed
            .iter()
            .map(|d| {
                format!(
                    "`{}` {} → {}",
                    d.name,
                    d.baseline.as_deref().unwrap_or("(unset)"),
                    d.candidate.as_deref().unwrap_or("(unset)")
                )
            })
            .collect();
        differences.push(EnvDifference {
            severity: Severity::Note,
            message: format!(
                "fixed variables differ between the runs: {}; every cell compares that change",
                text.join(", ")
            ),
        });
    }
    differences.sort_by_key(|d| d.severity);
    Environment { rows, differences }
}

/// Differences in what was measured and with what: scenario, target, exp, overrides, host.
fn differences(b: &Manifest, c: &Manifest) -> Vec<EnvDifference> {
    let mut out = Vec::new();
    let mut push = |severity, message: String| out.push(EnvDifference { severity, message });
    if b.scenario_sha256 != c.scenario_sha256 {
        push(
            Severity::Invalidates,
            format!(
                "the scenario files differ (sha256 `{}` vs `{}`): the workload may differ, so a change may come from the scenario rather than the code",
                short(&b.scenario_sha256),
                short(&c.scenario_sha256)
            ),
        );
    }
    // `openai-completions at http://…:8000/v1`: the kind of target decides what was measured;
    // its address only where it was (README's side-by-side set-up differs in the port alone).
    let kind = |e: &str| {
        e.split_once(" at ")
            .map_or(e.to_string(), |(k, _)| k.to_string())
    };
    if kind(&b.executor) != kind(&c.executor) {
        push(
            Severity::Invalidates,
            format!(
                "the targets differ (`{}` vs `{}`): the runs measured different systems",
                b.executor, c.executor
            ),
        );
    } else if b.executor != c.executor {
        push(
            Severity::Note,
            format!(
                "the targets are at different addresses (`{}` vs `{}`), as when two servers run side by side",
                b.executor, c.executor
            ),
        );
    }
    let engines = |m: &Manifest| {
        let mut v: Vec<String> = (m.launches.iter())
            .filter_map(|l| l.engine_version.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let (be, ce) = (engines(b), engines(c));
    if !be.is_empty() && !ce.is_empty() && be != ce {
        push(
            Severity::Warning,
            format!(
                "the engine versions differ ({} vs {}): a change may come from the engine (intended when the engine is what changed)",
                list(&be),
                list(&ce)
            ),
        );
    }
    if b.exp_version != c.exp_version {
        push(
            Severity::Warning,
            format!(
                "exp versions differ ({} vs {}): metric definitions or the load generator may have changed",
                b.exp_version, c.exp_version
            ),
        );
    }
    if b.overrides != c.overrides {
        push(
            Severity::Warning,
            format!(
                "`--set` overrides differ ({} vs {})",
                list(&b.overrides),
                list(&c.overrides)
            ),
        );
    }
    if let (Some(bh), Some(ch)) = (machines(b), machines(c))
        && bh != ch
    {
        push(
            Severity::Warning,
            format!(
                "the runs come from different hosts (`{bh}` vs `{ch}`): hardware and background load may differ; run both on one machine"
            ),
        );
    }
    out.extend(run_differences(b, c));
    out
}

/// Where a run ran: its host, or the nodes of a merged run's shards (`exp merge`).
fn machines(m: &Manifest) -> Option<String> {
    if m.merged.is_empty() {
        return m.host.clone();
    }
    let mut names: Vec<String> = Vec::new();
    for s in &m.merged {
        let name = s.node.as_ref().map_or("unknown".into(), |n| n.name.clone());
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Some(names.join(", "))
}

/// Differences in how the runs went: unfinished runs, a shared revision, different seeds.
fn run_differences(b: &Manifest, c: &Manifest) -> Vec<EnvDifference> {
    let mut out = Vec::new();
    let mut push = |severity, message: String| out.push(EnvDifference { severity, message });
    for (side, m) in [("baseline", b), ("candidate", c)] {
        if m.status != RunStatus::Complete {
            push(
                Severity::Warning,
                format!(
                    "the {side} run is `{}`: some repetitions may be missing",
                    m.status
                ),
            );
        }
    }
    if let (Some(br), Some(cr)) = (&b.git_revision, &c.git_revision)
        && br == cr
    {
        push(
            Severity::Note,
            format!(
                "both runs are from git `{br}`: an A/A comparison (use it to calibrate the thresholds τ)"
            ),
        );
    }
    if b.seed != c.seed {
        push(
            Severity::Note,
            format!(
                "the seeds differ ({} vs {}): prompts and arrival times were sampled differently",
                b.seed, c.seed
            ),
        );
    }
    out
}
