//! Text rendering of an [`Estimate`]: a header, then an aligned three-column table
//! (quantity, value, note).

use std::fmt::Write;

use super::{Capacity, Estimate, EstimateResult, FullEstimate, SeedEstimate};
use crate::hw::deployment::{Bound, StepTime};
use crate::hw::roofline::AllReduce;

/// Renders the estimate as plain text with aligned columns (no trailing spaces).
pub fn render_table(e: &Estimate) -> String {
    let mut out = format!(
        "{} on {} × {} ({} weights, {} KV): prompt {}, output {}, batch {}\n",
        e.model, e.tp, e.gpu, e.weight_dtype, e.kv_dtype, e.prompt, e.output, e.batch
    );
    let rows = match &e.result {
        EstimateResult::Full(f) => {
            out.push_str(&full_header(e));
            for w in &f.warnings {
                out.push_str(&format!("warning: {w}\n"));
            }
            full_rows(e, f)
        }
        EstimateResult::Seed(s) => {
            out.push_str(
                "method: seed (simplified arithmetic of the seed documents: no norms or head, non-causal attention, compute only)\n",
            );
            seed_rows(e, s)
        }
    };
    out.push('\n');
    out.push_str(&align(&rows));
    out
}

fn full_header(e: &Estimate) -> String {
    let eff = if e.ideal {
        "ideal efficiency, so times are floors".to_string()
    } else {
        let f = &e.efficiency;
        format!(
            "efficiency matmul {} (half at {} tokens) / attention {} / memory {} / comm {}, overhead {} per step + {} per layer",
            f.matmul,
            f.matmul_half_tokens,
            f.attention,
            f.memory,
            f.comm,
            secs(f.step_overhead_s),
            secs(f.per_layer_overhead_s)
        )
    };
    format!(
        "method: full (norms, biases and LM head counted; time = matrix + attention, each max(compute, memory), + comm); {eff}\n"
    )
}

type Row = [String; 3];

fn row(q: &str, v: String, note: String) -> Row {
    [q.to_string(), v, note]
}

fn full_rows(e: &Estimate, f: &FullEstimate) -> Vec<Row> {
    let floor = if e.ideal { "floor" } else { "estimate" };
    let mut rows = vec![
        row(
            "parameters (total)",
            count(f.params_total as f64),
            thousands(f.params_total),
        ),
        row(
            "parameters (active)",
            count(f.params_active as f64),
            "per token, embedding and head included".into(),
        ),
        row(
            "weights per GPU",
            gb(f.weight_bytes_per_gpu),
            format!(
                "{:.2} GiB, {}, tp {}",
                f.weight_bytes_per_gpu / GIB,
                e.weight_dtype,
                e.tp
            ),
        ),
        row(
            "KV cache per token per GPU",
            format!("{} B", thousands(f.kv_bytes_per_token_per_gpu as u64)),
            format!(
                "{:.1} KiB, {}",
                f.kv_bytes_per_token_per_gpu / 1024.0,
                e.kv_dtype
            ),
        ),
        row(
            "prefill FLOPs per request",
            flops(f.prefill_flops_per_request),
            "linear + causal attention + LM head once".into(),
        ),
        row(
            &format!("TTFT {floor}"),
            secs(f.ttft.seconds),
            format!("{}; {} prompt(s) in one step", bound(&f.ttft), e.batch),
        ),
        row(
            "decode FLOPs per token",
            flops(f.decode_flops_per_token),
            format!("at mean context {:.1}", f.mean_decode_context),
        ),
        row(
            &format!("TPOT {floor}"),
            secs(f.tpot.seconds),
            format!("{}; batch {}", bound(&f.tpot), e.batch),
        ),
        row(
            "decode throughput ceiling",
            format!("{:.1} tok/s", f.decode_tokens_per_s),
            format!("batch {} / TPOT", e.batch),
        ),
        row(
            "quick-rule throughput (seed)",
            f.quick_rule_tokens_per_s
                .map_or("n/a".into(), |t| format!("{t:.1} tok/s")),
            "peak / decode FLOPs per token (seed count): compute only, ignores memory".into(),
        ),
        row(
            &format!("E2E {floor}"),
            secs(f.e2e_s),
            format!("TTFT + {} × TPOT", e.output - 1),
        ),
        row(
            "crossover batch (weights only)",
            opt_batch(f.crossover_batch_weights_only),
            "decode is compute-bound above this batch, ignoring KV reads".into(),
        ),
        row(
            "crossover batch (with KV)",
            opt_batch(f.crossover_batch_with_kv),
            match f.crossover_batch_with_kv {
                Some(_) => "counting KV reads at the mean context".into(),
                None => "KV reads keep decode memory-bound at any batch".into(),
            },
        ),
    ];
    rows.push(capacity_row(e, f));
    rows.push(comm_row(
        "TP all-reduce per prefill step",
        &f.prefill_comm,
        e.tp,
    ));
    rows.push(comm_row(
        "TP all-reduce per decode step",
        &f.decode_comm,
        e.tp,
    ));
    rows
}

fn capacity_row(e: &Estimate, f: &FullEstimate) -> Row {
    let context = u64::from(e.prompt) + u64::from(e.output);
    match &f.capacity {
        Capacity::Fits {
            kv_tokens,
            max_batch,
        } => {
            let warn = if u64::from(e.batch) > *max_batch {
                "; the requested batch does NOT fit"
            } else {
                ""
            };
            row(
                "max batch that fits",
                max_batch.to_string(),
                format!(
                    "{} KV tokens / {context} tokens per request{warn}",
                    thousands(*kv_tokens)
                ),
            )
        }
        Capacity::DoesNotFit { reason } => row(
            "max batch that fits",
            "0".into(),
            reason.lines().next().unwrap_or("").to_string(),
        ),
    }
}

fn comm_row(label: &str, c: &AllReduce, tp: u32) -> Row {
    if c.count == 0 {
        return row(label, "none".into(), format!("tp {tp}"));
    }
    row(
        label,
        secs(c.seconds),
        format!(
            "{} all-reduces, {} sent per GPU",
            c.count,
            gb(c.bytes_per_gpu)
        ),
    )
}

fn seed_rows(e: &Estimate, s: &SeedEstimate) -> Vec<Row> {
    let rounded_tps = s
        .seed_rounded_tokens_per_s
        .map_or("n/a".to_string(), |t| format!("{t:.1} tok/s"));
    vec![
        row(
            "parameters",
            count(s.params as f64),
            format!("{}; embedding once, no norms or head", thousands(s.params)),
        ),
        row(
            "prefill FLOPs",
            flops(s.prefill_flops),
            format!("batch {}, attention over the full s²", e.batch),
        ),
        row(
            "peak compute",
            format!("{:.1} TFLOP/s", s.peak_flops / 1e12),
            format!("{} dense × tp {}", e.weight_dtype, e.tp),
        ),
        row(
            "TTFT (compute only)",
            secs(s.ttft_s),
            "prefill FLOPs / peak".into(),
        ),
        row(
            "decode FLOPs per token",
            format!("{:.4} TFLOP", s.decode_flops_per_token_at_prompt / 1e12),
            format!("at context {}", e.prompt),
        ),
        row(
            "decode FLOPs per token (avg)",
            format!("{:.4} TFLOP", s.decode_flops_per_token / 1e12),
            format!("at average context {}", s.mean_context),
        ),
        row(
            "decode tokens/s (compute only)",
            format!("{:.1} tok/s", s.tokens_per_s),
            "peak / decode FLOPs (avg)".into(),
        ),
        row(
            "  as the seed rounds it",
            rounded_tps,
            format!("peak / {:.2} TFLOP", s.seed_rounded_decode_tflops),
        ),
        row(
            "quick rule 2·B·s·params",
            flops(s.quick_rule_flops),
            format!(
                "{} ({:.0} B params)",
                secs(s.quick_rule_ttft_s),
                (s.params as f64 / 1e9).round()
            ),
        ),
        row(
            "  as the seed prints it",
            format!("{:.1} TFLOP", s.seed_printed_quick_rule_tflops),
            secs(s.seed_printed_quick_rule_ttft_s),
        ),
    ]
}

fn align(rows: &[Row]) -> String {
    let header: Row = ["quantity".into(), "value".into(), "note".into()];
    let all: Vec<&Row> = std::iter::once(&header).chain(rows).collect();
    let width = |i: usize| all.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (w0, w1) = (width(0), width(1));
    let mut out = String::new();
    for r in all {
        let line = format!("{:<w0$}  {:<w1$}  {}", r[0], r[1], r[2]);
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

const GIB: f64 = (1u64 << 30) as f64;

fn bound(s: &StepTime) -> &'static str {
    match s.bound {
        Bound::Compute => "compute-bound",
        Bound::Memory => "memory-bound",
        Bound::Idle => "no work",
    }
}

fn opt_batch(b: Option<f64>) -> String {
    b.map_or("none".to_string(), |b| format!("{b:.1}"))
}

/// Parameter counts: `32.76 B`, `560.0 M`.
fn count(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.2} B", n / 1e9)
    } else {
        format!("{:.1} M", n / 1e6)
    }
}

fn gb(bytes: f64) -> String {
    if bytes >= 1e9 {
        format!("{:.2} GB", bytes / 1e9)
    } else {
        format!("{:.2} MB", bytes / 1e6)
    }
}

/// FLOPs with a decimal prefix: `64.60 TFLOP`, `65.98 GFLOP`.
fn flops(f: f64) -> String {
    match f {
        f if f >= 1e15 => format!("{:.2} PFLOP", f / 1e15),
        f if f >= 1e12 => format!("{:.2} TFLOP", f / 1e12),
        f => format!("{:.2} GFLOP", f / 1e9),
    }
}

/// Seconds with a readable unit: `65.29 ms`, `19.73 s`, `8.0 µs`.
fn secs(s: f64) -> String {
    match s {
        s if s >= 1.0 => format!("{s:.2} s"),
        s if s >= 1e-3 => format!("{:.2} ms", s * 1e3),
        s => format!("{:.1} µs", s * 1e6),
    }
}

/// `32763876352` → `32,763,876,352`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
