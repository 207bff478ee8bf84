//! The text `exp calibrate` prints: what was used, the fitted factors with their standard
//! errors, what was kept and why, the residuals, and measured vs predicted per prompt length.
//! Pure.

use std::fmt::Write as _;

use super::{Calibration, Counts, Fitted, ProfileCell, Residuals};
use crate::units;

/// Where the calibration came from and went.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Model name or path.
    pub model: &'a str,
    /// GPU name or path.
    pub gpu: &'a str,
    /// The run directory.
    pub run_dir: &'a str,
    /// Requests seen and used, over the whole run.
    pub counts: Counts,
    /// The cells used.
    pub cells: &'a [ProfileCell],
    /// Where the profile was written.
    pub profile_path: &'a str,
}

/// Why each unfitted factor was kept, for the report and the profile's `kept` list.
pub fn kept(c: &Calibration) -> Vec<(&'static str, String, &'static str)> {
    let s = &c.start;
    vec![
        (
            "attention",
            units::sig(s.attention, 3),
            "batch-1 decode is memory-bound: its compute roof is never reached at low load",
        ),
        (
            "matmul_half_tokens",
            units::sig(s.matmul_half_tokens, 3),
            "low-load prompts cannot tell it apart from `matmul`",
        ),
        (
            "comm",
            units::sig(s.comm, 3),
            "all-reduce time is not separable from the step overhead at low load",
        ),
        (
            "per_request_overhead_s",
            units::seconds(s.per_request_overhead_s),
            "the API server's cost is part of every TTFT: low-load prompts cannot tell it \
             apart from the prefill",
        ),
        (
            "per_prompt_token_overhead_s",
            units::seconds(s.per_prompt_token_overhead_s),
            "the same",
        ),
        (
            "per_layer_overhead_s",
            "0".into(),
            "the engine adds step + layers × per-layer overhead: one model cannot separate \
             them, so the total is in step_overhead_s",
        ),
    ]
}

fn fitted_value(f: &Fitted) -> String {
    let fmt = |v: f64, digits: i32| match f.name {
        "step_overhead_s" => units::seconds(v),
        _ => units::sig(v, digits),
    };
    let se = f.std_error.map_or("—".into(), |se| fmt(se, 2));
    let value = fmt(f.value, 4);
    let bound = if f.at_bound { "  (at its bound)" } else { "" };
    format!("{:<16} {value:>10} ± {se:<10} {}{bound}", f.name, f.source)
}

fn residual_line(name: &str, r: &Residuals) -> String {
    format!(
        "  {name}  RMS {}  mean {}  max {}  (n = {})",
        units::percent(r.rms),
        units::signed_percent(r.mean),
        units::percent(r.max_abs),
        r.n
    )
}

/// `1024`, or `1019–1030` for a range.
fn range(lo: u32, hi: u32) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}–{hi}")
    }
}

/// Renders the report.
pub fn render(c: &Calibration, ctx: &Context<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "calibrated {} on {} from {}",
        ctx.model, ctx.gpu, ctx.run_dir
    );
    let _ = writeln!(
        out,
        "used {} of {} successful requests: those that ran alone (no other request in flight); \
         {} with a TPOT",
        ctx.counts.alone, ctx.counts.successful, c.tpot.n
    );
    for cell in ctx.cells {
        let prompts = range(cell.prompt_tokens_min, cell.prompt_tokens_max);
        let _ = writeln!(
            out,
            "  {}: {} requests, prompt tokens {prompts}",
            cell.id, cell.requests
        );
    }
    let _ = writeln!(out, "\nfitted (± standard error):");
    for f in &c.fitted {
        let _ = writeln!(out, "  {}", fitted_value(f));
    }
    let _ = writeln!(out, "kept from the GPU's `calibrated` preset:");
    for (name, value, why) in kept(c) {
        let _ = writeln!(out, "  {name:<20} {value:>8}  {why}");
    }
    let _ = writeln!(out, "\nresiduals, (predicted − measured) / measured:");
    let _ = writeln!(out, "{}", residual_line("TTFT", &c.ttft));
    let _ = writeln!(out, "{}", residual_line("TPOT", &c.tpot));
    let width = ctx
        .cells
        .iter()
        .map(|c| c.id.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "\n{:<width$}  {:>11}  {:>9}  {:>9}  {:>9}  {:>9}",
        "cell", "prompt", "TTFT mean", "predicted", "TPOT mean", "predicted"
    );
    for r in &c.by_cell {
        let id = ctx.cells.get(r.cell).map_or("?", |c| c.id.as_str());
        let _ = writeln!(
            out,
            "{id:<width$}  {:>11}  {:>9}  {:>9}  {:>9}  {:>9}",
            range(r.prompt_min, r.prompt_max),
            units::seconds(r.ttft_measured_s),
            units::seconds(r.ttft_predicted_s),
            units::seconds(r.tpot_measured_s),
            units::seconds(r.tpot_predicted_s)
        );
    }
    for w in &c.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    let _ = writeln!(
        out,
        "\nprofile: {}\nuse it: [target] sim_preset = \"{}\"",
        ctx.profile_path, ctx.profile_path
    );
    out
}
