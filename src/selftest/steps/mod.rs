//! `exp selftest steps FILE` (issue 13, "on a real GPU"): exp's step-time model against
//! forward-step times measured on a GPU by `scripts/gpu-step-times.py` — a random-weight
//! decoder of a stated shape, prefill at batch 1 and decode steps (CUDA graphs) at a batch and
//! KV context, timed with CUDA events after warm-up.
//!
//! Every point is set against the `ideal` preset (the roofline floor: a measurement below it
//! means the catalog's peak or bandwidth for that GPU is wrong, or the timing is) and against
//! the `calibrated` preset (or a profile), with the achieved fraction of peak FLOP/s (MFU) and
//! of peak bandwidth (MBU) the measurement implies. The script's `nvidia-smi` lines, in the
//! query exp's GPU probe uses, are read by that probe's parser.
//!
//! The measured model is a bare PyTorch forward: no scheduler, no sampling, no API server. So
//! `calibrated`, which carries a serving engine's per-step, per-layer and per-sequence costs,
//! is expected above it at small steps; the comparison says by how much.

use std::fmt::Write as _;

use serde::Deserialize;

use super::fidelity::Summary;
use crate::hw::{Deployment, Dtype, Efficiency, Gpu, ModelConfig, PrefillWork, StepTime};
use crate::probe::gpu::{FIELDS, parse_csv};
use crate::stats::quantile_of;

/// The only schema this reads.
pub const SCHEMA: &str = "exp-step-times/1";

/// The file written by `scripts/gpu-step-times.py`.
#[derive(Debug, Clone, Deserialize)]
pub struct Measured {
    /// [`SCHEMA`].
    pub schema: String,
    /// False when the script's time budget ran out before every point was measured.
    pub complete: bool,
    /// `cuda` or `cpu`.
    pub device: String,
    /// The device's name as the driver reports it (`NVIDIA H100 80GB HBM3`).
    pub device_name: String,
    /// Weight and activation format (`bf16`, `fp16`, `fp32`).
    pub dtype: String,
    /// The model's shape as a Hugging Face `config.json`.
    pub config: serde_json::Value,
    /// Prefill points (batch 1).
    #[serde(default)]
    pub prefill: Vec<PrefillPoint>,
    /// Decode points.
    #[serde(default)]
    pub decode: Vec<DecodePoint>,
    /// Points the script did not measure, and why.
    #[serde(default)]
    pub skipped: Vec<Skipped>,
    /// The `--query-gpu` fields of the `nvidia-smi` lines.
    #[serde(default)]
    pub nvidia_smi_query: Option<String>,
    /// `nvidia-smi` lines sampled while measuring.
    #[serde(default)]
    pub nvidia_smi: Vec<SmiLine>,
}

/// One prefill of `tokens` prompt tokens, batch 1, empty KV cache.
#[derive(Debug, Clone, Deserialize)]
pub struct PrefillPoint {
    /// Prompt tokens.
    pub tokens: u32,
    /// Median of the timed runs, ms.
    pub median_ms: f64,
}

/// One decode step: `batch` sequences, each attending `context` cached tokens.
#[derive(Debug, Clone, Deserialize)]
pub struct DecodePoint {
    /// Sequences in the step.
    pub batch: u32,
    /// KV-cache tokens of each sequence before the step.
    pub context: u32,
    /// Median of the timed runs, ms.
    pub median_ms: f64,
}

/// A point the script did not measure: it would not fit in memory, the time budget ran out,
/// or it failed (`why` starts with `error`).
#[derive(Debug, Clone, Deserialize)]
pub struct Skipped {
    /// `prefill` or `decode`.
    #[serde(default)]
    pub kind: String,
    /// Prompt tokens (prefill).
    #[serde(default)]
    pub tokens: Option<u32>,
    /// Sequences (decode).
    #[serde(default)]
    pub batch: Option<u32>,
    /// KV context of each sequence (decode).
    #[serde(default)]
    pub context: Option<u32>,
    /// Why.
    pub why: String,
}

impl Skipped {
    /// Whether the point failed, as opposed to not fitting or running out of time.
    pub fn failed(&self) -> bool {
        self.why.starts_with("error")
    }

    fn label(&self) -> String {
        match (self.batch, self.context, self.tokens) {
            (Some(b), Some(c), _) => format!("{} b={b} c={c}", self.kind),
            (_, _, Some(n)) => format!("{} {n}", self.kind),
            _ => self.kind.clone(),
        }
    }
}

/// One `nvidia-smi` line.
#[derive(Debug, Clone, Deserialize)]
pub struct SmiLine {
    /// The CSV line, as printed.
    pub line: String,
}

/// Why a measured file cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum StepsError {
    /// Not JSON of the schema.
    #[error("{0}")]
    Parse(String),
    /// The model, GPU or format is not one exp can model.
    #[error("{0}")]
    Model(String),
}

/// One compared point.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// `prefill 4096` or `decode b=32 c=4096`.
    pub label: String,
    /// Whether it is a decode step.
    pub decode: bool,
    /// Measured, ms.
    pub measured_ms: f64,
    /// The `ideal` floor, ms.
    pub ideal_ms: f64,
    /// The preset's prediction, ms.
    pub predicted_ms: f64,
    /// Model FLOPs of the step over (measured time × peak), all GPUs.
    pub mfu: f64,
    /// Bytes the step must move over (measured time × peak bandwidth).
    pub mbu: f64,
}

impl Point {
    /// Signed relative error of the prediction: predicted / measured − 1.
    pub fn error(&self) -> f64 {
        self.predicted_ms / self.measured_ms - 1.0
    }

    /// Whether the measurement is faster than the roofline floor (a lower bound broken).
    pub fn below_floor(&self) -> bool {
        self.measured_ms < self.ideal_ms
    }
}

/// Every point compared, with what the file said about itself.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The GPU compared against.
    pub gpu: String,
    /// The measured device's name.
    pub device_name: String,
    /// Whether the script measured every point.
    pub complete: bool,
    /// Points in file order: prefill, then decode.
    pub points: Vec<Point>,
    /// Points the script skipped because they failed (label, why).
    pub failed: Vec<(String, String)>,
    /// Points the script skipped for memory or time.
    pub skipped: usize,
    /// `nvidia-smi` summary, if there were lines.
    pub smi: Option<SmiSummary>,
}

/// The largest memory use and power, and the median SM clock, over the `nvidia-smi` lines.
#[derive(Debug, Clone, PartialEq)]
pub struct SmiSummary {
    /// Readings read.
    pub readings: usize,
    /// Largest `memory.used`, bytes.
    pub max_memory_used: Option<f64>,
    /// `memory.total`, bytes.
    pub memory_total: Option<f64>,
    /// Largest `power.draw`, W.
    pub max_power_w: Option<f64>,
    /// Median `clocks.sm`, Hz.
    pub median_sm_clock_hz: Option<f64>,
    /// Lines the probe's parser could not read, and the first one's reason.
    pub unreadable: (usize, Option<String>),
}

impl Comparison {
    /// Median and worst |error| of the points of one kind (`None` when there are none).
    pub fn summary(&self, decode: bool) -> Option<Summary> {
        Summary::of_errors(
            self.points
                .iter()
                .filter(|p| p.decode == decode)
                .map(Point::error),
        )
    }

    /// Points measured faster than the roofline floor.
    pub fn below_floor(&self) -> Vec<&Point> {
        self.points.iter().filter(|p| p.below_floor()).collect()
    }

    /// No point below the floor and none that failed in the script.
    pub fn passed(&self) -> bool {
        self.below_floor().is_empty() && self.failed.is_empty()
    }
}

/// Parses a measured file; `source` names it in errors.
pub fn parse(text: &str, source: &str) -> Result<Measured, StepsError> {
    let m: Measured = serde_json::from_str(text)
        .map_err(|e| StepsError::Parse(format!("{source}: not a step-times file: {e}")))?;
    if m.schema != SCHEMA {
        return Err(StepsError::Parse(format!(
            "{source}: `schema` is {:?}, exp reads {SCHEMA:?} (written by scripts/gpu-step-times.py)",
            m.schema
        )));
    }
    let points = m
        .prefill
        .iter()
        .map(|p| {
            (
                format!("prefill {}", p.tokens),
                p.median_ms,
                p.tokens,
                "tokens",
            )
        })
        .chain(m.decode.iter().map(|d| {
            (
                format!("decode b={} c={}", d.batch, d.context),
                d.median_ms,
                d.batch,
                "batch",
            )
        }));
    for (label, ms, size, key) in points {
        let problem = if size == 0 {
            format!("`{key}` is 0")
        } else if !(ms.is_finite() && ms > 0.0) {
            format!("`median_ms` is {ms}, not a time > 0")
        } else {
            continue;
        };
        return Err(StepsError::Parse(format!(
            "{source}: point `{label}`: {problem}; the file is not as scripts/gpu-step-times.py writes it: measure again"
        )));
    }
    if m.prefill.is_empty() && m.decode.is_empty() {
        return Err(StepsError::Parse(format!(
            "{source}: no point was measured (`prefill` and `decode` are empty)"
        )));
    }
    Ok(m)
}

/// Compares a measured file with exp's model on `gpu` (default: the device's own name from
/// the catalog) with `efficiency` (default: `calibrated` for that GPU and format).
pub fn compare(
    m: &Measured,
    gpu: Option<&str>,
    efficiency: Option<Efficiency>,
) -> Result<Comparison, StepsError> {
    let gpu = match gpu {
        Some(name) => Gpu::load(name).map_err(|e| StepsError::Model(e.to_string()))?,
        None if m.device != "cuda" => {
            return Err(StepsError::Model(format!(
                "measured on `{}` ({}), not a GPU: pass --gpu NAME to compare with a GPU anyway",
                m.device, m.device_name
            )));
        }
        None => Gpu::by_name(&m.device_name).ok_or_else(|| {
            StepsError::Model(format!(
                "the device `{}` is not in exp's GPU catalog: pass --gpu NAME (a catalog name or a GPU TOML file)",
                m.device_name
            ))
        })?,
    };
    let dtype: Dtype = m
        .dtype
        .parse()
        .map_err(|e| StepsError::Model(format!("`dtype`: {e}")))?;
    let model = ModelConfig::from_json_str(&m.config.to_string(), "measured model")
        .map_err(|e| StepsError::Model(format!("`config`: {e}")))?;
    let efficiency = efficiency.unwrap_or_else(|| Efficiency::calibrated(&gpu, dtype));
    let deploy = |e: Efficiency| {
        Deployment::new(model.clone(), gpu.clone(), 1, dtype, dtype, e)
            .map_err(|e| StepsError::Model(e.to_string()))
    };
    let (ideal, preset) = (deploy(Efficiency::ideal())?, deploy(efficiency)?);
    let peak = ideal.peak_flops_per_gpu();
    let bandwidth = gpu.bandwidth_bytes_per_s;
    let point =
        |label: String, decode: bool, measured_ms: f64, step: &dyn Fn(&Deployment) -> StepTime| {
            let floor = step(&ideal);
            let secs = measured_ms / 1e3;
            Point {
                label,
                decode,
                measured_ms,
                ideal_ms: floor.seconds * 1e3,
                predicted_ms: step(&preset).seconds * 1e3,
                mfu: floor.flops / (secs * peak),
                mbu: floor.bytes / (secs * bandwidth),
            }
        };
    let mut points = Vec::with_capacity(m.prefill.len() + m.decode.len());
    for p in &m.prefill {
        let work = [PrefillWork {
            new_tokens: p.tokens,
            context_before: 0,
        }];
        points.push(point(
            format!("prefill {}", p.tokens),
            false,
            p.median_ms,
            &|d| d.step_time(&work, &[]),
        ));
    }
    for p in &m.decode {
        let contexts = vec![p.context; p.batch as usize];
        points.push(point(
            format!("decode b={} c={}", p.batch, p.context),
            true,
            p.median_ms,
            &|d| d.step_time(&[], &contexts),
        ));
    }
    Ok(Comparison {
        gpu: gpu.name.clone(),
        device_name: m.device_name.clone(),
        complete: m.complete,
        points,
        failed: m
            .skipped
            .iter()
            .filter(|s| s.failed())
            .map(|s| (s.label(), s.why.clone()))
            .collect(),
        skipped: m.skipped.iter().filter(|s| !s.failed()).count(),
        smi: smi_summary(m),
    })
}

/// Reads the `nvidia-smi` lines with exp's GPU probe parser; a line it cannot read is counted,
/// not fatal (the readings are a side note to the step times).
fn smi_summary(m: &Measured) -> Option<SmiSummary> {
    if m.nvidia_smi.is_empty() {
        return None;
    }
    let fields: Vec<&str> = match &m.nvidia_smi_query {
        Some(q) => q.split(',').map(str::trim).collect(),
        None => FIELDS.to_vec(),
    };
    let mut s = SmiSummary {
        readings: 0,
        max_memory_used: None,
        memory_total: None,
        max_power_w: None,
        median_sm_clock_hz: None,
        unreadable: (0, None),
    };
    let mut clocks = Vec::new();
    let max = |a: Option<f64>, b: Option<&f64>| match (a, b) {
        (Some(a), Some(&b)) => Some(a.max(b)),
        (a, b) => a.or(b.copied()),
    };
    for l in &m.nvidia_smi {
        let readings = match parse_csv(&l.line, &fields) {
            Ok(r) => r,
            Err(e) => {
                s.unreadable.0 += 1;
                s.unreadable.1.get_or_insert(e);
                continue;
            }
        };
        for (_, values) in readings {
            s.readings += 1;
            s.max_memory_used = max(s.max_memory_used, values.get("memory_used"));
            s.memory_total = max(s.memory_total, values.get("memory_total"));
            s.max_power_w = max(s.max_power_w, values.get("power"));
            if let Some(&c) = values.get("sm_clock") {
                clocks.push(c);
            }
        }
    }
    s.median_sm_clock_hz = quantile_of(&clocks, 0.5);
    Some(s)
}

/// The printed comparison.
pub fn render(c: &Comparison, preset_name: &str) -> String {
    let mut out = format!(
        "exp's step-time model on {} (preset `{preset_name}`) against {} forward steps measured on {}{}\n\n",
        c.gpu,
        c.points.len(),
        c.device_name,
        if c.complete {
            String::new()
        } else {
            " (incomplete: the script's time budget ran out)".into()
        }
    );
    let _ = writeln!(
        out,
        "{:<24} {:>11} {:>11} {:>11} {:>8} {:>6} {:>6}",
        "point", "measured ms", "ideal ms", "exp ms", "error", "MFU", "MBU"
    );
    for p in &c.points {
        let _ = writeln!(
            out,
            "{:<24} {:>11.3} {:>11.3} {:>11.3} {:>+7.1}% {:>5.1}% {:>5.1}%{}",
            p.label,
            p.measured_ms,
            p.ideal_ms,
            p.predicted_ms,
            p.error() * 100.0,
            p.mfu * 100.0,
            p.mbu * 100.0,
            if p.below_floor() {
                "  ⚠ below the floor"
            } else {
                ""
            }
        );
    }
    out.push_str("\n|error| vs measured   median    worst   (n)\n");
    for (name, decode) in [("prefill", false), ("decode", true)] {
        if let Some(s) = c.summary(decode) {
            let _ = writeln!(
                out,
                "{name:<20} {:>7.1}% {:>7.1}%   ({})",
                s.median * 100.0,
                s.worst * 100.0,
                s.count
            );
        }
    }
    if c.skipped > 0 {
        let _ = writeln!(
            out,
            "\n{} point(s) skipped by the script for memory or time (see the file's `skipped`)",
            c.skipped
        );
    }
    if !c.failed.is_empty() {
        let _ = writeln!(
            out,
            "\n⚠ {} point(s) failed in the script, so they are not compared: {}",
            c.failed.len(),
            c.failed
                .iter()
                .map(|(label, why)| format!("{label} ({why})"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    if let Some(s) = &c.smi {
        let gib = |b: Option<f64>| {
            b.map_or("?".into(), |b| {
                format!("{:.1} GiB", b / (1u64 << 30) as f64)
            })
        };
        let _ = writeln!(
            out,
            "\nnvidia-smi ({} readings, exp's GPU probe): memory used up to {} of {}, power up to {}, SM clock median {}",
            s.readings,
            gib(s.max_memory_used),
            gib(s.memory_total),
            s.max_power_w.map_or("?".into(), |w| format!("{w:.0} W")),
            s.median_sm_clock_hz
                .map_or("?".into(), |h| format!("{:.0} MHz", h / 1e6))
        );
        if let (n @ 1.., Some(first)) = &s.unreadable {
            let _ = writeln!(out, "{n} nvidia-smi line(s) unreadable, left out: {first}");
        }
    }
    let below = c.below_floor();
    if below.is_empty() {
        out.push_str("\nevery measurement is at or above exp's roofline floor (`ideal`)\n");
    } else {
        let _ = writeln!(
            out,
            "\n⚠ {} measurement(s) faster than exp's roofline floor ({}): the catalog's peak FLOP/s or bandwidth for {} is too low, or the timing is wrong",
            below.len(),
            below
                .iter()
                .map(|p| p.label.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            c.gpu
        );
    }
    out
}

#[cfg(test)]
mod tests;
