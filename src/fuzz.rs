//! Bounded, deterministic fuzzing on the stable toolchain (tests only): a proptest runner with
//! a fixed seed, no failure files, a case count that `FUZZ_CASES` can raise for a long local
//! session, and a wall-clock limit so an input that hangs a parser fails the test instead of
//! stalling CI. Failures are shrunk by proptest; keep the shrunk input as a regression test
//! named after what it found.

use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

/// Held by the CPU-heavy fuzz loops and by the unit tests that measure time, so the two never
/// overlap: a fuzz loop hogging both cores made timing tests fail on a shared machine.
pub(crate) static QUIET: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `test` on `cases` inputs (`FUZZ_CASES` when set) drawn from `strategy` with a seed
/// derived from `name`, on a thread of its own, and panics with proptest's minimal failing
/// input if a case fails or panics, or if the run takes longer than `limit` (scaled by
/// `FUZZ_CASES / cases`): a hang is a finding too.
pub(crate) fn run<S>(
    name: &'static str,
    strategy: S,
    cases: u32,
    limit: Duration,
    test: impl Fn(S::Value) -> Result<(), TestCaseError> + Send + 'static,
) where
    S: Strategy + Send + 'static,
    S::Value: std::fmt::Debug,
{
    let _quiet = QUIET.blocking_lock();
    let wanted = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(cases);
    let limit = limit.mul_f64((f64::from(wanted) / f64::from(cases.max(1))).max(1.0));
    let cases = wanted;
    let (tx, rx) = mpsc::channel();
    let current = Arc::new(Mutex::new(String::new()));
    let last = Arc::clone(&current);
    let test = move |value: S::Value| {
        *last.lock().unwrap_or_else(PoisonError::into_inner) = format!("{value:?}");
        test(value)
    };
    std::thread::spawn(move || {
        let config = Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 2_000,
            ..Config::default()
        };
        let mut seed = [0u8; 32];
        for (i, b) in name.bytes().enumerate() {
            seed[i % 32] ^= b;
        }
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
        let mut runner = TestRunner::new_with_rng(config, rng);
        let result = runner.run(&strategy, test).map_err(|e| e.to_string());
        let _ = tx.send(result);
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(())) => {}
        Ok(Err(failure)) => panic!("fuzz target `{name}` found a failure:\n{failure}"),
        Err(_) => panic!(
            "fuzz target `{name}` did not finish {cases} cases within {limit:?}; the input \
             running then was:\n{}",
            current.lock().unwrap_or_else(PoisonError::into_inner)
        ),
    }
}
