//! The plan of a run: the scenario's matrix expanded, every cell resolved, and the execution
//! order fixed. `exp validate`, `exp plan` and `exp run` all go through [`Plan::build`], the
//! one place the matrix is expanded and its cells checked. `exp plan` prints it
//! ([`Plan::render`]); `exp run` executes it. Pure (no I/O).

mod check;
mod render;
#[cfg(test)]
mod tests;

use crate::matrix::{self, Cell, PlannedLaunch, Slot};
use crate::scenario::ScenarioErrors;
use crate::scenario::model::{CellConfig, LaunchKey, Scenario, ServerConfig, TargetKind};
use crate::shard::Shard;

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
    /// A started `[search]` run: the matrix's cells, whose load is searched (`cells` then
    /// holds the probes made so far). Empty otherwise: `exp plan` shows a search's cells at
    /// the placeholder load, in `cells`.
    pub searched: Vec<Cell>,
    /// `exp run --shard K/N`: only this shard's rounds are in `schedule` and `launches`.
    pub shard: Option<Shard>,
    /// `exp run --client K/N`: every slot is run, sending only this client's share.
    pub client: Option<crate::fanout::ClientPlan>,
}

impl Plan {
    /// Expands the matrix and resolves every cell; every problem is reported, not just the
    /// first (too many cells, every cell excluded, a key that fails to resolve, a baseline
    /// that does not pick one cell), each at its line of the scenario file.
    pub fn build(scenario: Scenario) -> Result<Plan, ScenarioErrors> {
        let cells = matrix::expand(&scenario).map_err(|e| ScenarioErrors(vec![e]))?;
        let configs = check::resolve_cells(&scenario, &cells).map_err(ScenarioErrors)?;
        let (mut servers, mut server_of) = (Vec::new(), Vec::new());
        if scenario.launches_server() {
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
        }
        let rounds = scenario.experiment.repetitions.get();
        let mut plan = Plan {
            scenario,
            cells,
            configs,
            schedule: Vec::new(),
            servers,
            server_of,
            launches: Vec::new(),
            searched: Vec::new(),
            shard: None,
            client: None,
        };
        plan.set_rounds(rounds);
        Ok(plan)
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
        if let Some(shard) = self.shard {
            self.keep_rounds_of(shard);
        }
    }

    /// Restricts the plan to one shard's rounds (see `shard`): each round keeps its cells in
    /// its seeded order, and with launched servers each launch keeps the shard's slots.
    pub fn set_shard(&mut self, shard: Shard) {
        self.shard = Some(shard);
        self.keep_rounds_of(shard);
    }

    fn keep_rounds_of(&mut self, shard: Shard) {
        let mut schedule = Vec::with_capacity(self.schedule.len());
        let mut launches = Vec::with_capacity(self.launches.len());
        for launch in &self.launches {
            let start = schedule.len();
            schedule.extend(
                self.schedule[launch.slots.clone()]
                    .iter()
                    .filter(|s| shard.owns(s)),
            );
            if schedule.len() > start {
                launches.push(PlannedLaunch {
                    config: launch.config,
                    slots: start..schedule.len(),
                });
            }
        }
        if self.launches.is_empty() {
            schedule.extend(self.schedule.iter().filter(|s| shard.owns(s)));
        }
        self.schedule = schedule;
        self.launches = launches;
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
}
