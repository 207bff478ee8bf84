//! The plan of a run: the scenario's matrix expanded, every cell resolved, and the execution
//! order fixed. `exp plan` prints it; `exp run` executes it. Pure (no I/O).

use std::fmt::Write as _;

use crate::matrix::{self, Cell, Slot};
use crate::scenario::model::{ArrivalConfig, CellConfig, Scenario, TargetKind};
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
        let schedule = matrix::schedule(&cells, exp.repetitions.get(), exp.seed, exp.order);
        Ok(Plan {
            scenario,
            cells,
            configs,
            schedule,
        })
    }

    /// Plans `rounds` rounds (adaptive runs add rounds; a resumed run restores them). Round
    /// `r`'s order depends only on the seed and `r`, so earlier rounds keep their order.
    pub fn set_rounds(&mut self, rounds: u32) {
        let exp = &self.scenario.experiment;
        self.schedule = matrix::schedule(&self.cells, rounds, exp.seed, exp.order);
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
        let estimate = match &w.arrival {
            ArrivalConfig::Poisson { rate }
            | ArrivalConfig::Gamma { rate, .. }
            | ArrivalConfig::Constant { rate } => rate * secs,
            // Closed loop and batches depend on the server's speed: unknown before running.
            _ => 0.0,
        };
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
        match &w.arrival {
            ArrivalConfig::Poisson { rate }
            | ArrivalConfig::Gamma { rate, .. }
            | ArrivalConfig::Constant { rate } => Some((n - 1.0).max(0.0) / rate),
            _ => None,
        }
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
