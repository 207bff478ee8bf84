use super::*;

#[test]
fn k_of_n_parses_from_one() {
    assert_eq!(Shard::parse("2/4").unwrap(), Shard::of_rounds(2, 4));
    assert_eq!(Shard::parse(" 1 / 1 ").unwrap(), Shard::of_rounds(1, 1));
}

#[test]
fn bad_k_of_n_says_what_to_write() {
    let why = |s: &str| Shard::parse(s).unwrap_err().to_string();
    assert_eq!(
        why("0/2"),
        "--shard 0/2: K `0` is not a whole number ≥ 1 (shards are numbered from 1: `1/2` … `2/2`)"
    );
    assert_eq!(
        why("3/2"),
        "--shard 3/2: shard 3 of 2 does not exist (K is 1 ..= 2)"
    );
    assert_eq!(
        why("2/0"),
        "--shard 2/0: N `0`, the number of shards, is not a whole number ≥ 1"
    );
    assert_eq!(
        why("2"),
        "--shard 2: expected K/N, the shard's number and the number of shards (e.g. `1/2` and `2/2`)"
    );
    assert_eq!(
        Shard::of_rounds(1, 12)
            .check_size(10, 40)
            .unwrap_err()
            .to_string(),
        "--shard 1/12: the scenario plans 10 rounds, so at most 10 shards can each run one; use --shard K/10 or fewer shards (or raise [experiment] repetitions)"
    );
}

#[test]
fn rounds_are_dealt_out_each_to_exactly_one_shard() {
    for count in 1..=7 {
        for rounds in count..=23 {
            let mut seen = vec![0; rounds as usize];
            for index in 1..=count {
                let shard = Shard::of_rounds(index, count);
                let mine = shard.rounds(rounds);
                // Balanced: shards differ by at most one round.
                assert!(mine.len() as u32 >= rounds / count);
                assert!(mine.len() as u32 <= rounds.div_ceil(count));
                for r in mine {
                    seen[r as usize] += 1;
                    assert!(shard.owns(&crate::matrix::Slot { round: r, cell: 3 }));
                }
            }
            assert!(
                seen.iter().all(|&n| n == 1),
                "{count} shards, {rounds} rounds"
            );
        }
    }
    assert_eq!(Shard::of_rounds(2, 3).rounds(10), vec![1, 4, 7]);
    assert_eq!(Shard::of_rounds(2, 3).cells(4), vec![0, 1, 2, 3]);
}

#[test]
fn by_cells_each_cell_goes_whole_to_exactly_one_shard() {
    use crate::matrix::Slot;
    for count in 1..=5u32 {
        let cells = 7;
        let mut owners = vec![Vec::new(); cells];
        for index in 1..=count {
            let shard = Shard::of_rounds(index, count).by(ShardBy::Cells);
            assert_eq!(
                shard.rounds(4),
                vec![0, 1, 2, 3],
                "every round of its cells"
            );
            for c in shard.cells(cells) {
                owners[c].push(index);
                for round in 0..4 {
                    assert!(shard.owns(&Slot { round, cell: c }));
                }
            }
        }
        assert!(owners.iter().all(|o| o.len() == 1), "{count}: {owners:?}");
    }
    let shard = Shard::of_rounds(2, 3).by(ShardBy::Cells);
    assert_eq!(shard.cells(7), vec![1, 4]);
    assert_eq!(
        shard.check_size(10, 2).unwrap_err().to_string(),
        "--shard 2/3: --shard-by cells: the scenario has 2 cells, so at most 2 shards can each run one; use --shard K/2 or fewer shards"
    );
    assert!(
        shard.check_size(1, 3).is_ok(),
        "one round is enough by cells"
    );
}

#[test]
fn a_shard_run_id_ends_in_its_shard() {
    let shard = Shard::of_rounds(2, 3);
    assert_eq!(
        shard.run_id("2025-06-01T12:00:00Z"),
        "2025-06-01T12-00-00Z-shard-2-of-3"
    );
    assert_eq!(rounds_text(&[1, 3, 5]), "1, 3, 5");
    assert_eq!(
        rounds_text(&(0..20).collect::<Vec<_>>()),
        "0, 1, 2, … 19 (20 rounds)"
    );
}

#[test]
fn nvidia_smi_list_gives_model_names() {
    let text = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1234)\nGPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-5678)\n";
    assert_eq!(
        node::parse_gpu_list(text),
        vec!["NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"]
    );
    let n = node::Node {
        name: "a".into(),
        cpu_model: Some("EPYC".into()),
        cpus: Some(2),
        memory_bytes: Some(8 << 30),
        gpus: node::parse_gpu_list(text),
    };
    assert_eq!(
        n.hardware_text(),
        "2 × EPYC, 8.0 GiB, 2 × NVIDIA H100 80GB HBM3"
    );
}
