//! The plan of a run: the scenario's matrix expanded, every cell resolved, and the execution
//! order fixed. `exp plan` prints it; `exp run` executes it. Pure (no I/O).

use std::fmt::Write as _;

use crate::matrix::{self, Cell, PlannedLaunch, Slot};
use crate::scenario::model::{
    CellConfig, LaunchKey, LogPattern, Readiness, Scenario, ServerConfig, TargetKind,
    redacted_command, redacted_env,
};
use crate::scenario::{ScenarioError, ScenarioErrors};

/// A scenario ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The validated scenario.
    pub scenario: Scenario,
    /// Cells of the matrix, in matrix order.
    pub cells: Vec<Cell>,
    /// What each cell means (same order as `cells`).
    pub configs: Vec<CellConfig>,
    /// (round, cell) pairs in execution order.
    pub schedule: Vec<Slot>,
    /// Distinct server configurations (rendered with the port as planned: fixed, or
    /// `<port>`), in order of first appearance; empty without a `[server]` that exp launches.
    pub servers: Vec<ServerConfig>,
    /// Server configuration of each cell (same order as `cells`; empty without servers).
    pub server_of: Vec<usize>,
    /// The launches, in order, each serving consecutive slots of `schedule`.
    pub launches: Vec<PlannedLaunch>,
}

impl Plan {
    /// Expands and resolves every cell; every problem is reported, not just the first.
    pub fn build(scenario: Scenario) -> Result<Plan, ScenarioErrors> {
        let cells = matrix::expand(&scenario).map_err(|e| ScenarioErrors(vec![e]))?;
        let mut configs = Vec::with_capacity(cells.len());
        let mut errors: Vec<ScenarioError> = Vec::new();
        for cell in &cells {
            match scenario.resolve(&cell.vars) {
                Ok(c) => configs.push(c),
                Err(e) => {
                    if !errors.iter().any(|old| old.to_string() == e.to_string()) {
                        errors.push(e);
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(ScenarioErrors(errors));
        }
        let exp = &scenario.experiment;
        let (reps, seed) = (exp.repetitions.get(), exp.seed);
        let (mut servers, mut server_of) = (Vec::new(), Vec::new());
        let (schedule, launches) = if scenario.launches_server() {
            let mut keys: Vec<LaunchKey> = Vec::new();
            for c in configs.iter().filter_map(|c| c.server.as_ref()) {
                let key = c.launch_key();
                let i = keys.iter().position(|k| *k == key).unwrap_or_else(|| {
                    keys.push(key);
                    servers.push(c.clone());
                    keys.len() - 1
                });
                server_of.push(i);
            }
            let restart = servers[0].restart;
            matrix::schedule_with_servers(&server_of, reps, seed, exp.order, restart)
        } else {
            (matrix::schedule(&cells, reps, seed, exp.order), Vec::new())
        };
        Ok(Plan {
            scenario,
            cells,
            configs,
            schedule,
            servers,
            server_of,
            launches,
        })
    }

    /// Plans `rounds` rounds (adaptive runs add rounds; a resumed run restores them). Round
    /// `r`'s order depends only on the seed and `r`, so earlier rounds keep their order.
    pub fn set_rounds(&mut self, rounds: u32) {
        let exp = &self.scenario.experiment;
        if self.servers.is_empty() {
            self.schedule = matrix::schedule(&self.cells, rounds, exp.seed, exp.order);
        } else {
            // Launched servers: the schedule and its launches are planned together.
            let restart = self.servers[0].restart;
            (self.schedule, self.launches) = matrix::schedule_with_servers(
                &self.server_of,
                rounds,
                exp.seed,
                exp.order,
                restart,
            );
        }
    }

    /// Planned rounds.
    pub fn rounds(&self) -> u32 {
        self.schedule.iter().map(|s| s.round + 1).max().unwrap_or(0)
    }

    /// True when every cell runs on the simulated engine.
    pub fn simulated(&self) -> bool {
        self.configs
            .iter()
            .all(|c| c.target.kind == TargetKind::Sim)
    }

    /// Measured requests of one repetition of cell `i`, exact or estimated from a duration.
    pub fn requests_per_repetition(&self, i: usize) -> (u64, bool) {
        let w = &self.configs[i].workload;
        if let Some(n) = w.requests {
            return (n, true);
        }
        let secs = w.duration.map_or(0.0, |d| d.as_secs_f64());
        // Closed loop and batches depend on the server's speed: unknown before running.
        let estimate = w.arrival.mean_rate().map_or(0.0, |rate| rate * secs);
        (estimate.round() as u64, false)
    }

    /// Lower bound of the wall time of one repetition of cell `i` for a real server: the
    /// schedule's span (open loop) or the duration; `None` when it depends on the server.
    pub fn min_seconds_per_repetition(&self, i: usize) -> Option<f64> {
        let w = &self.configs[i].workload;
        if let Some(d) = w.duration {
            return Some(d.as_secs_f64());
        }
        let n = w.requests? as f64;
        let rate = w.arrival.mean_rate()?;
        Some((n - 1.0).max(0.0) / rate)
    }

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
        self.render_servers(&mut out);
        self.render_cost(&mut out);
        let _ = writeln!(out, "\n  #  cell{:<32}  requests/rep  min time/rep", "");
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
            let t_text = secs.map_or("depends on server".into(), |s| format!("{s:.1} s"));
            let _ = writeln!(
                out,
                "{:>3}  {:<36}  {:>12}  {}",
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
        if self.simulated() {
            let _ = writeln!(
                out,
                "time      seconds of wall time (virtual-time simulation)"
            );
        } else {
            let more = if all_timed {
                ""
            } else {
                " (closed-loop cells: depends on the server)"
            };
            let _ = writeln!(out, "time      ≥ {:.0} s of sending{more}", total_secs);
        }
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
}

/// The server part of `exp plan`: configurations with the exact commands, and launches.
impl Plan {
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
