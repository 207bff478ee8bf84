//! Quality items under load (`[quality] when = "under-load"`): a [`Divert`] that takes the
//! round's seeded share of arrivals ([`crate::quality::mix`]) and sends each as a quality
//! request — a segment to score or a retrieval item to answer — through the quality client,
//! never as a measured request. Its outcome is a quality record tagged with the arrival and its
//! latency; the repetition's quality file gets them after a [`QualityRecord::Mix`] line that
//! says how many arrivals were quality items.
//!
//! Whether the server can score prompts is asked in [`Divert::prepare`], after warm-up and
//! before the measured window (once per server launch: a known answer is passed in). A server
//! that cannot gets no perplexity items: their arrivals stay measured requests, and the file
//! says why, as after a repetition.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::RunError;
use super::driver::Divert;
use super::quality::{answered_record, ask_scoring, record, score};
use super::slot::{Runner, cell_segments};
use crate::backend::Client;
use crate::matrix::Slot;
use crate::quality::Item;
use crate::quality::mix::{Mix, Pick};
use crate::quality::perplexity::Segment;
use crate::record::{LoadArrival, QualityKind, QualityRecord};
use crate::scenario::model::{CellConfig, QualityWhen};
use crate::seed;

/// What the server answered about scoring prompts: `Ok(None)` it can, `Ok(Some(reason))` it
/// cannot, `Err(reason)` the question failed.
pub(super) type Scoring = Result<Option<String>, String>;

/// The quality items of one repetition under load.
pub(super) struct UnderLoad {
    client: Arc<Client>,
    mix: Mutex<Mix>,
    share: f64,
    segments: Arc<Vec<Segment>>,
    items: Arc<Vec<Item>>,
    max_tokens: u32,
    /// Asked in `prepare` unless known (`None`: no answer yet).
    scoring: Mutex<Option<Scoring>>,
    records: Mutex<Vec<QualityRecord>>,
    /// Arrivals taken (sent; those cut at the hard deadline have no record).
    taken: AtomicU64,
}

/// The inputs of one repetition's mix.
pub(super) struct Setup {
    pub client: Arc<Client>,
    /// The fraction of arrivals.
    pub share: f64,
    /// The round's seed (the same in every cell of the round).
    pub seed: u64,
    pub segments: Option<Arc<Vec<Segment>>>,
    pub items: Option<Arc<Vec<Item>>>,
    /// Tokens generated per retrieval answer.
    pub max_tokens: u32,
    /// What the server answered already (`None`: ask it).
    pub scoring: Option<Option<String>>,
}

impl UnderLoad {
    /// The mix of a repetition.
    pub(super) fn new(setup: Setup) -> Self {
        let segments = setup.segments.unwrap_or_default();
        let items = setup.items.unwrap_or_default();
        let mix = Mix::new(setup.seed, setup.share, segments.len(), items.len());
        UnderLoad {
            client: setup.client,
            mix: Mutex::new(mix),
            share: setup.share,
            segments,
            items,
            max_tokens: setup.max_tokens,
            scoring: Mutex::new(setup.scoring.map(Ok)),
            records: Mutex::new(Vec::new()),
            taken: AtomicU64::new(0),
        }
    }

    /// The server's answer about scoring prompts, when it was asked (to remember).
    pub(super) fn scoring(&self) -> Option<Scoring> {
        self.scoring.lock().expect("not poisoned").clone()
    }

    /// The repetition's quality records: the mix (with `measured` arrivals released beside
    /// the quality ones), why perplexity was not mixed in when it was not, then the items in
    /// arrival order.
    pub(super) fn finish(&self, measured: u64) -> Vec<QualityRecord> {
        let mut items = std::mem::take(&mut *self.records.lock().expect("not poisoned"));
        items.sort_by_key(|r| r.arrival().map(|a| a.arrival));
        let sent = self.taken.load(Ordering::Relaxed);
        // Segments count only where they were mixed in (a server that can score prompts).
        let segments = if self.can_score() {
            self.segments.len()
        } else {
            0
        };
        let mut out = vec![QualityRecord::Mix {
            share: self.share,
            arrivals: measured + sent,
            quality_arrivals: sent,
            items: (segments + self.items.len()) as u64,
            unfinished: sent.saturating_sub(items.len() as u64),
        }];
        if !self.segments.is_empty() {
            match self.scoring() {
                Some(Ok(Some(reason))) => out.push(QualityRecord::Unsupported {
                    what: QualityKind::Perplexity,
                    reason,
                }),
                Some(Err(reason)) => out.push(QualityRecord::Failed {
                    what: QualityKind::Perplexity,
                    index: 0,
                    reason: format!("asking whether the server can score prompts: {reason}"),
                    under_load: None,
                }),
                Some(Ok(None)) | None => {}
            }
        }
        out.extend(items);
        out
    }

    fn can_score(&self) -> bool {
        matches!(*self.scoring.lock().expect("not poisoned"), Some(Ok(None)))
    }

    /// Sends one item and records its outcome.
    async fn send(self: Arc<Self>, pick: Pick, index: u64, origin: Instant, scheduled_ns: u64) {
        let sent = Instant::now();
        let rec = match pick {
            Pick::Segment(s) => {
                let segment = &self.segments[s];
                record(segment, score(&self.client, segment).await)
            }
            Pick::Item(i) => {
                let item = &self.items[i];
                let answer = self.client.answer(&item.prompt, self.max_tokens).await;
                answered_record(item, answer)
            }
        };
        let arrival = LoadArrival {
            arrival: index,
            scheduled_ns,
            sent_ns: sent.saturating_duration_since(origin).as_nanos() as u64,
            latency_ns: sent.elapsed().as_nanos() as u64,
        };
        let rec = rec.under_load(arrival);
        self.records.lock().expect("not poisoned").push(rec);
    }
}

impl Divert for UnderLoad {
    fn prepare(&self) -> BoxFuture<'_, ()> {
        async move {
            if self.segments.is_empty() || self.scoring().is_some() {
                return;
            }
            let answer = ask_scoring(&self.client).await;
            *self.scoring.lock().expect("not poisoned") = Some(answer);
        }
        .boxed()
    }

    fn takes(&self, index: u64) -> bool {
        let pick = self.mix.lock().expect("not poisoned").at(index);
        match pick {
            None => false,
            Some(Pick::Item(_)) => true,
            // A server that cannot score prompts gets no perplexity items: the arrival stays
            // a measured request.
            Some(Pick::Segment(_)) => self.can_score(),
        }
    }

    fn run(
        self: Arc<Self>,
        index: u64,
        origin: Instant,
        scheduled_ns: u64,
    ) -> BoxFuture<'static, ()> {
        let pick = (self.mix.lock().expect("not poisoned").at(index))
            .expect("runs only the arrivals it takes");
        self.taken.fetch_add(1, Ordering::Relaxed);
        self.send(pick, index, origin, scheduled_ns).boxed()
    }
}

impl Runner<'_> {
    /// The quality items mixed into this repetition's load (`[quality] when = "under-load"`,
    /// HTTP targets), or `None`.
    pub(super) async fn under_load(
        &mut self,
        slot: Slot,
        config: &CellConfig,
        cell_id: &str,
        seed: u64,
    ) -> Result<Option<Arc<UnderLoad>>, RunError> {
        let Some(quality) = &config.quality else {
            return Ok(None);
        };
        let QualityWhen::UnderLoad { share } = quality.when else {
            return Ok(None);
        };
        let Some(client) = self.executors[&slot.cell].client().cloned() else {
            return Ok(None);
        };
        let segments = cell_segments(&mut self.segments, slot.cell, config, cell_id)?;
        let tokenizer = (config.target.tokenizer.as_deref())
            .and_then(|path| self.datasets.tokenizer(path).ok());
        let items = (self.quality.items(quality, seed, tokenizer).await).map_err(|why| {
            RunError::Quality {
                cell: cell_id.to_string(),
                why,
            }
        })?;
        let scoring = self.quality.scoring(&client.config().base_url);
        let setup = Setup {
            client,
            share,
            seed: seed::derive(seed, None, 0, "quality-mix"),
            segments,
            items,
            max_tokens: quality.retrieval.as_ref().map_or(16, |r| r.max_tokens),
            scoring,
        };
        Ok(Some(Arc::new(UnderLoad::new(setup))))
    }
}
