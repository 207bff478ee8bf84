//! Run order with launched servers. Cells whose rendered command, environment and directory
//! are equal share a server configuration; a launch serves one configuration's cells back to
//! back. Randomized blocks: every round runs the configurations in a fresh seeded order and
//! each configuration's cells in a seeded order, on a fresh launch, so launches = rounds ×
//! configurations and neither drift nor an instance's luck lines up with a variable.
//! `Grouped` runs all rounds of a configuration on one launch (configurations in a seeded
//! order), for launches too expensive to repeat; drift is then confounded with the server
//! variables and the report says so.

use std::ops::Range;

use crate::scenario::model::{RestartPolicy, RunOrder};
use crate::seed::{SplitMix64, derive};

use super::Slot;

/// One planned launch: a server configuration and the schedule positions it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedLaunch {
    /// Index of the server configuration.
    pub config: usize,
    /// Positions in the schedule (consecutive) that run on this launch.
    pub slots: Range<usize>,
}

/// The schedule and its launches. `config_of[i]` is cell `i`'s configuration (numbered from
/// 0 in order of first appearance).
///
/// Seeds: the configuration order of round `r` uses `derive(seed, None, r, "server-order")`
/// (`Grouped`: round 0's), the cell order of configuration `c` in round `r`
/// `derive(seed, Some("server-c"), r, "schedule")`; both are SplitMix64 Fisher–Yates
/// shuffles. `Sequential` keeps matrix order. `PerRepetition` makes every slot a launch.
pub fn schedule_with_servers(
    config_of: &[usize],
    repetitions: u32,
    seed: u64,
    order: RunOrder,
    restart: RestartPolicy,
) -> (Vec<Slot>, Vec<PlannedLaunch>) {
    let n_configs = config_of.iter().max().map_or(0, |m| m + 1);
    let shuffled = |mut v: Vec<usize>, s: u64| {
        if order != RunOrder::Sequential {
            SplitMix64::new(s).shuffle(&mut v);
        }
        v
    };
    let configs = |round: u32| {
        shuffled(
            (0..n_configs).collect(),
            derive(seed, None, round, "server-order"),
        )
    };
    // Blocks of (configuration, rounds), each one launch under `per-cell`.
    let blocks: Vec<(usize, Vec<u32>)> = if order == RunOrder::Grouped {
        let rounds: Vec<u32> = (0..repetitions).collect();
        configs(0)
            .into_iter()
            .map(|c| (c, rounds.clone()))
            .collect()
    } else {
        (0..repetitions)
            .flat_map(|round| configs(round).into_iter().map(move |c| (c, vec![round])))
            .collect()
    };
    let mut slots = Vec::new();
    let mut launches = Vec::new();
    for (c, rounds) in blocks {
        let start = slots.len();
        for round in rounds {
            let members = (0..config_of.len())
                .filter(|&i| config_of[i] == c)
                .collect();
            let s = derive(seed, Some(&format!("server-{c}")), round, "schedule");
            slots.extend(
                shuffled(members, s)
                    .into_iter()
                    .map(|cell| Slot { round, cell }),
            );
        }
        launches.push(PlannedLaunch {
            config: c,
            slots: start..slots.len(),
        });
    }
    (slots, split(launches, restart))
}

/// The launches of the blocks under a restart policy: one per block (`per-cell`), one per
/// slot (`per-repetition`), none (`never`).
pub fn split(blocks: Vec<PlannedLaunch>, restart: RestartPolicy) -> Vec<PlannedLaunch> {
    match restart {
        RestartPolicy::PerCell => blocks,
        RestartPolicy::Never => Vec::new(),
        RestartPolicy::PerRepetition => blocks
            .iter()
            .flat_map(|l| {
                l.slots.clone().map(|i| PlannedLaunch {
                    config: l.config,
                    slots: i..i + 1,
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cells 0–5: configurations 0, 0, 1, 1, 2, 2 (e.g. three tp values × two loads).
    const CONFIG_OF: [usize; 6] = [0, 0, 1, 1, 2, 2];

    fn config_sequence(slots: &[Slot], launches: &[PlannedLaunch]) -> Vec<usize> {
        let mut out = Vec::new();
        for l in launches {
            for s in &slots[l.slots.clone()] {
                assert_eq!(
                    CONFIG_OF[s.cell], l.config,
                    "a launch serves its own cells only"
                );
            }
            out.push(l.config);
        }
        out
    }

    #[test]
    fn randomized_blocks_launch_every_configuration_once_per_round() {
        let (slots, launches) = schedule_with_servers(
            &CONFIG_OF,
            4,
            42,
            RunOrder::RandomizedBlocks,
            RestartPolicy::PerCell,
        );
        assert_eq!(slots.len(), 24);
        assert_eq!(launches.len(), 4 * 3, "launches = rounds × configurations");
        let seq = config_sequence(&slots, &launches);
        let rounds: Vec<Vec<usize>> = seq.chunks(3).map(|c| c.to_vec()).collect();
        for r in &rounds {
            let mut sorted = r.clone();
            sorted.sort();
            assert_eq!(sorted, [0, 1, 2]);
        }
        assert!(
            rounds.iter().any(|r| r != &rounds[0]),
            "orders differ between rounds: {rounds:?}"
        );
        for (i, l) in launches.iter().enumerate() {
            assert!(
                slots[l.slots.clone()]
                    .iter()
                    .all(|s| s.round == i as u32 / 3)
            );
        }
        let again = schedule_with_servers(
            &CONFIG_OF,
            4,
            42,
            RunOrder::RandomizedBlocks,
            RestartPolicy::PerCell,
        );
        assert_eq!((slots, launches), again, "seeded: the same every time");
    }

    #[test]
    fn grouped_runs_all_rounds_of_a_configuration_on_one_launch() {
        let (slots, launches) =
            schedule_with_servers(&CONFIG_OF, 3, 1, RunOrder::Grouped, RestartPolicy::PerCell);
        assert_eq!(launches.len(), 3);
        for l in &launches {
            assert_eq!(l.slots.len(), 2 * 3);
            let rounds: Vec<u32> = slots[l.slots.clone()].iter().map(|s| s.round).collect();
            assert_eq!(rounds, [0, 0, 1, 1, 2, 2]);
        }
        config_sequence(&slots, &launches);
    }

    #[test]
    fn per_repetition_launches_every_slot_and_sequential_keeps_matrix_order() {
        let (slots, launches) = schedule_with_servers(
            &CONFIG_OF,
            2,
            5,
            RunOrder::Sequential,
            RestartPolicy::PerRepetition,
        );
        assert_eq!(launches.len(), 12);
        let cells: Vec<usize> = slots.iter().map(|s| s.cell).collect();
        assert_eq!(cells, [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]);
        let (_, none) =
            schedule_with_servers(&CONFIG_OF, 2, 5, RunOrder::Sequential, RestartPolicy::Never);
        assert!(none.is_empty());
    }
}
