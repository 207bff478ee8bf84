//! The union of N clients' shares is the planned schedule (`exp run --client K/N`): every
//! request once, with its planned index, offset and prompt, for every arrival kind.

use std::num::NonZeroU32;

use proptest::prelude::*;

use super::*;
use crate::fanout::Client;
use crate::record::Chunk;
use crate::scenario::model::{ArrivalConfig, LengthDist, PromptSource, WorkloadConfig};
use crate::workload::work::Prompt;
use crate::workload::{Datasets, WorkloadSeeds};

/// Answers at once, recording the prompt text as the response text.
struct Echo;

impl Sender for Echo {
    async fn send(
        &self,
        req: RequestSpec,
        index: u64,
        origin: std::time::Instant,
        scheduled_ns: u64,
    ) -> RequestRecord {
        let at = origin.elapsed().as_nanos() as u64;
        let Prompt::Text(text) = req.prompt else {
            panic!("synthetic prompts are text")
        };
        RequestRecord {
            index,
            turn: 0,
            scheduled_ns,
            sent_ns: Some(at),
            first_sent_ns: None,
            no_done: false,
            text: Some(text),
            counted: None,
            chunks: vec![Chunk {
                at_ns: at,
                tokens: Some(1),
                reasoning: false,
            }],
            done_ns: Some(at),
            input_tokens: Some(req.input_tokens),
            output_tokens: Some(1),
            requested_input_tokens: Some(req.input_tokens),
            requested_output_tokens: Some(req.max_tokens),
            finish_reason: None,
            outcome: Outcome::Ok,
        }
    }
}

fn config(arrival: ArrivalConfig, requests: u64) -> WorkloadConfig {
    WorkloadConfig {
        prompts: PromptSource::Synthetic,
        prompt_tokens: 16,
        prompt_dist: LengthDist::Lognormal { sigma: 0.4 },
        output_tokens: 4,
        output_dist: LengthDist::Uniform { spread: 0.5 },
        arrival,
        max_concurrency: None,
        requests: Some(requests),
        duration: None,
        warmup: 0,
        grace: Duration::from_secs(2),
    }
}

/// Runs `work` (or `client`'s share of it) and returns its records in index order.
fn run(work: &RepetitionWork, client: Option<Client>) -> Vec<RequestRecord> {
    let work = match client {
        Some(c) => work.clone().for_client(c).expect("enough places"),
        None => work.clone(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        drive(Arc::new(Echo), &work, tx).await;
        let mut recs = Vec::new();
        while let Some(r) = rx.recv().await {
            recs.push(r);
        }
        recs.sort_by_key(|r| r.index);
        recs
    })
}

fn arrival(kind: u8, size: u32) -> ArrivalConfig {
    let n = NonZeroU32::new(size).unwrap();
    match kind {
        0 => ArrivalConfig::Poisson { rate: 4000.0 },
        1 => ArrivalConfig::Gamma {
            rate: 4000.0,
            burstiness: 0.5,
        },
        2 => ArrivalConfig::Constant { rate: 4000.0 },
        3 => ArrivalConfig::Closed { concurrency: n },
        _ => ArrivalConfig::Batch { size: n },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn the_shares_union_is_the_planned_schedule(
        kind in 0u8..5,
        count in 1u32..5,
        size in 4u32..7,
        requests in 1u64..40,
        seed in 0u64..1000,
    ) {
        let seeds = WorkloadSeeds { arrivals: seed, prompts: seed + 1, lengths: seed + 2, warmup: seed + 3 };
        let cfg = config(arrival(kind, size), requests);
        let work = Datasets::new().build(&cfg, &seeds).unwrap();
        let planned = run(&work, None);
        prop_assert_eq!(planned.len() as u64, requests);
        let mut union = Vec::new();
        for index in 1..=count {
            let client = Client { index, count };
            let share = run(&work, Some(client));
            if kind == 4 {
                // Whole batches: every request of a batch is sent together, by one client.
                for r in &share {
                    let first = r.index - r.index % u64::from(size);
                    let mates = share.iter().filter(|s| s.index / u64::from(size) == first / u64::from(size));
                    prop_assert!(mates.clone().all(|s| s.scheduled_ns == r.scheduled_ns));
                }
            }
            union.extend(share);
        }
        union.sort_by_key(|r| r.index);
        let key = |r: &RequestRecord| (r.index, r.text.clone(), r.requested_input_tokens, r.requested_output_tokens);
        prop_assert_eq!(union.iter().map(key).collect::<Vec<_>>(), planned.iter().map(key).collect::<Vec<_>>());
        if kind <= 2 {
            // Open loop: each request keeps its planned offset.
            let at = |v: &[RequestRecord]| v.iter().map(|r| r.scheduled_ns).collect::<Vec<_>>();
            prop_assert_eq!(at(&union), at(&planned));
        }
    }
}
