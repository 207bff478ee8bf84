//! The text of `exp plan`: the design, the target and servers, each cell's requests and
//! minimum time, and the run order (or the launches, with servers).

use std::fmt::Write as _;

use super::Plan;
use crate::scenario::model::{
    LogPattern, QualityWhen, Readiness, ServerConfig, redacted_command, redacted_env,
};

impl Plan {
    /// The lines of `exp plan` for a search or adaptive repetitions.
    fn render_rules(&self, out: &mut String) {
        let exp = &self.scenario.experiment;
        let reps = exp.repetitions.get();
        if let Some(s) = &self.scenario.search {
            let _ = writeln!(
                out,
                "search    {} from {} to {} (widened up to ×{} either way when the answer lies outside), {} repetitions per probe, until the bracket is within {}; probes are chosen as results arrive (the cells below are the searched cells, at the placeholder load)",
                s.variable,
                s.low,
                s.high,
                2u32.pow(crate::search::MAX_WIDEN as u32),
                s.repetitions,
                crate::units::percent(s.tolerance)
            );
            let (lo, hi) = self.search_probes().unwrap_or((0, 0));
            let _ = writeln!(
                out,
                "          {lo}–{hi} probes per searched cell when the capacity lies in the range (more when it widens): {}–{} repetitions each, where the table below counts {reps}",
                lo * s.repetitions.get() as usize,
                hi * s.repetitions.get() as usize,
            );
        }
        if let Some(a) = &exp.adaptive {
            let target = a
                .target_ci
                .map_or("2 %, tails 5 %".into(), crate::units::percent);
            let _ = writeln!(
                out,
                "adaptive  {reps} to {} rounds: rounds are added until every primary metric's 95 % CI half-width is within ±{target} of its mean (counts below are for {reps})",
                a.max
            );
        }
    }

    /// The text `exp plan` prints: cells, requests, order, estimated time.
    pub fn render(&self) -> String {
        let exp = &self.scenario.experiment;
        let mut out = String::new();
        let reps = exp.repetitions.get();
        let _ = writeln!(
            out,
            "scenario  {} ({})",
            exp.name,
            self.scenario.source.display()
        );
        let _ = writeln!(
            out,
            "design    {} cell(s) × {} repetition(s), {} order, seed {}",
            self.cells.len(),
            reps,
            exp.order,
            exp.seed
        );
        self.render_rules(&mut out);
        let target = if self.simulated() {
            "simulated engine (virtual time)".to_string()
        } else {
            let t = &self.configs[0].target;
            format!("{} at {}", t.kind, t.base_url.as_deref().unwrap_or("?"))
        };
        let _ = writeln!(out, "target    {target}");
        self.render_quality(&mut out);
        self.render_servers(&mut out);
        self.render_cost(&mut out);
        let column = match self.simulated() {
            true => "virtual time/rep",
            false => "min time/rep",
        };
        // The cell column fits the longest id (at least 36 wide, as before).
        let width = (self.cells.iter())
            .map(|c| c.id.to_string().chars().count())
            .max()
            .unwrap_or(0)
            .max(36);
        let _ = writeln!(
            out,
            "\n  #  cell{:<pad$}  requests/rep  {column}",
            "",
            pad = width - 4
        );
        let (mut total_requests, mut total_secs, mut all_exact, mut all_timed) =
            (0u64, 0.0, true, true);
        for (i, cell) in self.cells.iter().enumerate() {
            let (n, exact) = self.requests_per_repetition(i);
            let secs = self.min_seconds_per_repetition(i);
            total_requests += n * u64::from(reps);
            total_secs += secs.unwrap_or(0.0) * f64::from(reps);
            all_exact &= exact;
            all_timed &= secs.is_some();
            let n_text = if exact {
                n.to_string()
            } else {
                format!("≈{n}")
            };
            let unknown = match self.simulated() {
                true => "set by the engine",
                false => "set by the server",
            };
            let t_text = secs.map_or(unknown.into(), |s| format!("{s:.1} s"));
            let _ = writeln!(
                out,
                "{:>3}  {:<width$}  {:>12}  {}",
                i,
                cell.id.to_string(),
                n_text,
                t_text
            );
        }
        let approx = if all_exact { "" } else { "≈" };
        let _ = writeln!(
            out,
            "\nrequests  {approx}{total_requests} measured (plus warm-up)"
        );
        let multi_turn = self.configs.iter().any(|c| {
            matches!(
                c.workload.prompts,
                crate::scenario::model::PromptSource::Conversations { .. }
            )
        });
        if multi_turn {
            let _ = writeln!(
                out,
                "          multi-turn: these count conversations, each sends one request per turn"
            );
        }
        let _ = writeln!(out, "time      {}", self.time_text(total_secs, all_timed));
        if !self.launches.is_empty() {
            self.render_launches(&mut out);
            return out;
        }
        let _ = writeln!(out, "\norder (round: cells)");
        for round in 0..reps {
            let ids: Vec<String> = self
                .schedule
                .iter()
                .filter(|s| s.round == round)
                .map(|s| s.cell.to_string())
                .collect();
            let _ = writeln!(out, "  {round:>3}: {}", ids.join(" "));
        }
        out
    }

    /// Fewest and most probes per searched cell, playing the search against capacities
    /// across its range.
    fn search_probes(&self) -> Option<(usize, usize)> {
        let s = self.scenario.search.as_ref()?;
        let counts: Vec<usize> = (0..=8)
            .map(|i| s.low + (s.high - s.low) * f64::from(i) / 8.0)
            .map(|c| crate::search::probes_needed(s, c))
            .collect();
        Some((*counts.iter().min()?, *counts.iter().max()?))
    }

    /// What the plan can say about the run's wall time: a bound where the schedule sets it,
    /// and plainly what the server (or the simulator's speed) sets instead.
    fn time_text(&self, sending: f64, all_timed: bool) -> String {
        if self.simulated() {
            return "a few seconds of wall time: the simulated engine runs in virtual time \
                    (tens of thousands of requests per second; README, Performance)"
                .into();
        }
        let search = self.scenario.search.as_ref().zip(self.search_probes());
        let mut text = match (all_timed, sending > 0.0) {
            (true, _) if let Some((s, (lo, hi))) = search => {
                // The table counts the scenario's repetitions at the placeholder load; a
                // search runs its own repetitions at each probe.
                let per_rep = sending / f64::from(self.scenario.experiment.repetitions.get());
                let per_probe = per_rep * f64::from(s.repetitions.get());
                format!(
                    "≥ {}–{} of sending ({lo}–{hi} probes; a probe's time is the placeholder load's, and lower loads take longer)",
                    duration_text(per_probe * lo as f64),
                    duration_text(per_probe * hi as f64)
                )
            }
            (true, _) => format!("≥ {} of sending", duration_text(sending)),
            (false, true) => format!(
                "≥ {} of sending for the open-loop cells; closed-loop cells take what the server needs",
                duration_text(sending)
            ),
            (false, false) => {
                "not known before running: closed-loop cells send as fast as the server answers"
                    .into()
            }
        };
        if let Some(server) = self.configs.first().and_then(|c| c.server.as_ref())
            && !self.launches.is_empty()
        {
            text.push_str(&format!(
                ", plus {} server start(s) of up to {} each",
                self.launches.len(),
                humantime::format_duration(server.ready_timeout)
            ));
        }
        text
    }

    /// The server part: configurations with the exact commands.
    /// `quality   after each repetition, on its server: perplexity of corpus.jsonl (first 50 documents);
    /// retrieval (passkey, 50 items at 8192 tokens)`.
    fn render_quality(&self, out: &mut String) {
        let Some(q) = self.configs.first().and_then(|c| c.quality.as_ref()) else {
            return;
        };
        let mut parts = Vec::new();
        if let Some(p) = &q.perplexity {
            let docs = p.documents.map_or("every document".to_string(), |n| {
                format!("first {n} documents")
            });
            let window = p
                .window_tokens
                .map_or(String::new(), |w| format!(", windows of {w} tokens"));
            parts.push(format!(
                "perplexity of {} ({docs}{window})",
                p.corpus.display()
            ));
        }
        let contexts: std::collections::BTreeSet<u32> = (self.configs.iter())
            .filter_map(|c| c.quality.as_ref()?.retrieval.as_ref())
            .map(|r| r.context_tokens)
            .collect();
        if let Some(r) = &q.retrieval {
            let at: Vec<String> = contexts.iter().map(u32::to_string).collect();
            let task = serde_json::to_value(r.task)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            parts.push(format!(
                "retrieval ({task}, {} items at {} tokens)",
                r.trials,
                at.join(" / ")
            ));
        }
        let when = match q.when {
            QualityWhen::AfterRepetition => "after each repetition, on its server".to_string(),
            QualityWhen::UnderLoad { share } => format!(
                "under load, {} of the arrivals instead of measured requests",
                crate::units::percent(share)
            ),
        };
        let _ = writeln!(out, "quality   {when}: {}", parts.join("; "));
    }

    fn render_servers(&self, out: &mut String) {
        let Some(server) = self.configs.first().and_then(|c| c.server.as_ref()) else {
            return;
        };
        if !server.launched() {
            let _ = writeln!(
                out,
                "server    external (restart = never): waits for {}, launches nothing",
                ready_text(server)
            );
            return;
        }
        let _ = writeln!(
            out,
            "servers   {} configuration(s), restart {}, order {}: {} launch(es); each waits up to {} for {}",
            self.servers.len(),
            server.restart,
            self.scenario.experiment.order,
            self.launches.len(),
            humantime::format_duration(server.ready_timeout),
            ready_text(server),
        );
        for (i, s) in self.servers.iter().enumerate() {
            let argv = redacted_command(s.command.as_deref().unwrap_or_default());
            let cells: Vec<String> = (self.server_of.iter().enumerate())
                .filter(|(_, c)| **c == i)
                .map(|(cell, _)| cell.to_string())
                .collect();
            let _ = writeln!(out, "  s{i}  cells {}", cells.join(" "));
            let _ = writeln!(out, "      $ {}", shell_words(&argv));
            for (k, v) in redacted_env(&s.env) {
                let _ = writeln!(out, "      env {k}={v}");
            }
            if let Some(dir) = &s.cwd {
                let _ = writeln!(out, "      cwd {}", dir.display());
            }
        }
    }

    /// The cost line, when the scenario prices GPU hours.
    fn render_cost(&self, out: &mut String) {
        let gpus: Vec<u32> = self
            .configs
            .iter()
            .filter_map(|c| Some(c.cost?.gpus.get()))
            .collect();
        let (Some(cost), Some(lo), Some(hi)) = (
            self.configs.first().and_then(|c| c.cost),
            gpus.iter().min(),
            gpus.iter().max(),
        ) else {
            return;
        };
        let count = if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}–{hi}")
        };
        let _ = writeln!(
            out,
            "cost      {} per GPU-hour × {count} GPU(s): cost_per_1k_tokens and cost_per_1k_output_tokens per repetition",
            cost.gpu_hour
        );
    }

    /// The launches, each with its server and its rounds' cells in order.
    fn render_launches(&self, out: &mut String) {
        let _ = writeln!(out, "\nlaunches (launch: server, round: cells in order)");
        for (i, l) in self.launches.iter().enumerate() {
            let slots = &self.schedule[l.slots.clone()];
            let mut parts: Vec<String> = Vec::new();
            for s in slots {
                match parts.last_mut() {
                    Some(p) if p.starts_with(&format!("r{}:", s.round)) => {
                        p.push_str(&format!(" {}", s.cell));
                    }
                    _ => parts.push(format!("r{}: {}", s.round, s.cell)),
                }
            }
            let _ = writeln!(out, "  {i:>3}: s{}  {}", l.config, parts.join(" · "));
        }
    }
}

/// What a server's readiness waits for.
fn ready_text(s: &ServerConfig) -> String {
    match &s.ready {
        Readiness::Url(u) => format!("GET {u} → 2xx"),
        Readiness::Log(LogPattern::Substring(t)) => format!("{t:?} in its log"),
        Readiness::Log(LogPattern::Regex(r)) => format!("/{r}/ in its log"),
    }
}

/// Arguments joined for display, quoted where a shell would need it.
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@<>+%".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `42 s`, `8 min 20 s`, `2 h 05 min`.
fn duration_text(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}
