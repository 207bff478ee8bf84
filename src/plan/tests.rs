use std::path::Path;

use super::*;
use crate::scenario::model::RunOrder;

fn plan(order: RunOrder, repetitions: u32) -> Plan {
    let path = Path::new("tests/fixtures/scenarios/ok/server.toml");
    let overrides = [
        format!("experiment.repetitions={repetitions}"),
        format!(
            "experiment.order={}",
            match order {
                RunOrder::Grouped => "grouped",
                RunOrder::Sequential => "sequential",
                RunOrder::RandomizedBlocks => "randomized-blocks",
            }
        ),
    ]
    .map(|o| crate::scenario::Override::parse(&o).unwrap());
    let s =
        crate::scenario::load_with_overrides(path, &overrides).unwrap_or_else(|e| panic!("{e}"));
    Plan::build(s).unwrap_or_else(|e| panic!("{e}"))
}

/// With launched servers, a shard keeps its rounds' slots in the unsharded order, each
/// launch its own share of them, and the shards together hold every slot once.
#[test]
fn a_shard_keeps_its_rounds_slots_and_their_launches() {
    for order in [RunOrder::RandomizedBlocks, RunOrder::Grouped] {
        let full = plan(order, 5);
        let mut all = Vec::new();
        for index in 1..=2 {
            let shard = Shard::of_rounds(index, 2);
            let mut p = full.clone();
            p.set_shard(shard);
            let expected: Vec<Slot> = (full.schedule.iter().copied())
                .filter(|s| shard.owns(s))
                .collect();
            assert_eq!(p.schedule, expected, "{order:?} {shard}");
            let mut next = 0;
            for l in &p.launches {
                assert_eq!(l.slots.start, next, "launches cover the schedule in order");
                assert!(!l.slots.is_empty());
                next = l.slots.end;
                let configs: Vec<usize> = p.schedule[l.slots.clone()]
                    .iter()
                    .map(|s| p.server_of[s.cell])
                    .collect();
                assert!(configs.iter().all(|&c| c == l.config));
            }
            assert_eq!(next, p.schedule.len());
            // A resumed shard plans its rounds again and keeps its share.
            p.set_rounds(5);
            assert_eq!(p.schedule, expected);
            all.extend(p.schedule);
        }
        all.sort_by_key(|s| (s.round, s.cell));
        let mut every = full.schedule.clone();
        every.sort_by_key(|s| (s.round, s.cell));
        assert_eq!(all, every);
    }
}
