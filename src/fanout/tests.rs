use super::*;
use proptest::prelude::*;

#[test]
fn parses_k_of_n_and_says_what_is_wrong() {
    assert_eq!(Client::parse("2/3").unwrap(), Client { index: 2, count: 3 });
    let e = Client::parse("4/3").unwrap_err();
    assert_eq!(
        e.to_string(),
        "--client 4/3: client 4 of 3 does not exist (K is 1 ..= 3)"
    );
    assert!(
        Client::parse("0/3")
            .unwrap_err()
            .reason()
            .contains("numbered from 1")
    );
    assert!(
        Client::parse("2")
            .unwrap_err()
            .reason()
            .contains("expected K/N")
    );
}

#[test]
fn start_at_is_a_utc_instant() {
    let t = parse_start_at("2025-06-01T12:00:00.250Z").unwrap();
    assert_eq!(stamp(t), "2025-06-01T12-00-00.250Z");
    let e = parse_start_at("tomorrow").unwrap_err();
    assert!(e.to_string().starts_with("--start-at tomorrow: "), "{e}");
    assert!(e.reason().contains("the same on every client"), "{e}");
}

#[test]
fn default_run_ids_share_the_instant() {
    let t = parse_start_at("2025-06-01T12:00:00.250Z").unwrap();
    let c = Client { index: 2, count: 3 };
    assert_eq!(c.run_id(t), "2025-06-01T12-00-00.250Z-client-2-of-3");
}

#[test]
fn requests_are_dealt_round_robin_and_batches_whole() {
    let one = |index, block| Share {
        client: Client { index, count: 3 },
        block,
    };
    assert_eq!(one(1, 1).indices(8).collect::<Vec<_>>(), [0, 3, 6]);
    assert_eq!(one(3, 1).indices(8).collect::<Vec<_>>(), [2, 5]);
    assert_eq!(
        one(2, 4).indices(30).collect::<Vec<_>>(),
        [4, 5, 6, 7, 16, 17, 18, 19, 28, 29]
    );
}

#[test]
fn closed_loop_places_add_up() {
    let c = |index| Client { index, count: 3 };
    let got: Vec<u32> = (1..=3).map(|k| slots(7, c(k)).unwrap().get()).collect();
    assert_eq!(got, [3, 2, 2]);
    assert_eq!(slots(2, c(3)), None, "fewer places than clients is refused");
}

#[test]
fn skew_is_signed() {
    let t = parse_start_at("2025-06-01T12:00:00Z").unwrap();
    assert_eq!(skew_ms(t + Duration::from_millis(3), t), 3.0);
    assert_eq!(skew_ms(t, t + Duration::from_millis(2)), -2.0);
}

proptest! {
    /// Every request of the schedule is sent by exactly one client, and each client's
    /// requests come in schedule order.
    #[test]
    fn shares_partition_the_schedule(count in 1u32..7, block in 1u64..9, limit in 0u64..200) {
        let mut seen = vec![0u32; limit as usize];
        for index in 1..=count {
            let share = Share { client: Client { index, count }, block };
            let mine: Vec<u64> = share.indices(limit).collect();
            prop_assert!(mine.windows(2).all(|w| w[0] < w[1]));
            for &i in &mine {
                prop_assert!(share.owns(i));
                seen[i as usize] += 1;
            }
            prop_assert_eq!(mine.len() as u64, (0..limit).filter(|&i| share.owns(i)).count() as u64);
            prop_assert_eq!(share.count(limit), mine.len() as u64);
        }
        prop_assert!(seen.iter().all(|&n| n == 1));
    }

    #[test]
    fn places_add_up_to_the_concurrency(count in 1u32..9, c in 1u32..100) {
        prop_assume!(c >= count);
        let total: u32 = (1..=count).map(|index| slots(c, Client { index, count }).unwrap().get()).sum();
        prop_assert_eq!(total, c);
    }
}
