//! The progress bar of `exp run`: repetitions done out of the schedule, the current cell and
//! round, requests finished in the current repetition, and the ETA. Drawn on stderr, hidden
//! when stderr is not a terminal or `--no-progress` is given.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub(super) struct Progress {
    bar: ProgressBar,
    requests: Arc<AtomicU64>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub(super) fn new(show: bool, total: usize, already_done: usize) -> Self {
        let target = if show {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total as u64), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} repetitions · {msg} · elapsed {elapsed} · ETA {eta}",
            )
            .expect("static template"),
        );
        bar.set_position(already_done as u64);
        Progress {
            bar,
            requests: Arc::new(AtomicU64::new(0)),
            ticker: None,
        }
    }

    /// Counter the executor increments per finished request.
    pub(super) fn counter(&self) -> Arc<AtomicU64> {
        self.requests.clone()
    }

    pub(super) fn start(&mut self, cell: &str, round: u32, planned: Option<u64>) {
        self.requests.store(0, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if self.bar.is_hidden() {
            return;
        }
        let (bar, requests, cell) = (self.bar.clone(), self.requests.clone(), cell.to_string());
        let of = planned.map(|n| format!("/{n}")).unwrap_or_default();
        self.ticker = Some(tokio::spawn(async move {
            loop {
                let n = requests.load(Ordering::Relaxed);
                bar.set_message(format!("cell {cell} round {round} · requests {n}{of}"));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }

    /// The repetition's load is done and its `[quality]` pass runs.
    pub(super) fn quality(&mut self, cell: &str, round: u32) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        self.bar
            .set_message(format!("cell {cell} round {round} · quality pass"));
    }

    pub(super) fn finish_one(&mut self) {
        self.bar.inc(1);
    }

    pub(super) fn abandon(&mut self, msg: &'static str) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        self.bar.abandon_with_message(msg);
    }

    pub(super) fn done(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        self.bar.finish_and_clear();
    }
}
