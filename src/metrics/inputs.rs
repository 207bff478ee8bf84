//! One repetition's summary from everything measured about it. The only place a
//! summary is assembled: `app` reads the files and hands over typed data (records, the
//! completion marker, probe samples, the cell's deployment), `metrics` computes every number
//! from them; neither `run` nor `probe` is imported.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::registry::{Metric, MetricKey};
use super::repetition::{RepetitionSummary, Summarizer};
use super::request::output_tokens;
use super::{batch, client, resources};
use crate::hw::{Deployment, WorkTotals};
use crate::record::{ProbeSample, QualityRecord, RecordSource, RequestRecord};
use crate::scenario::model::CostConfig;
use crate::store::RepMarker;

/// What one repetition's summary is computed from.
#[derive(Debug)]
pub struct RepetitionInputs<'a, R: RecordSource + ?Sized> {
    /// Its records, in the order written: a slice, or its records file read as it is needed
    /// (one pass, and up to 3 more for the percentiles of a long repetition).
    pub records: &'a R,
    /// Its completion marker.
    pub marker: &'a RepMarker,
    /// Its probe samples, if it had probes.
    pub probes: Option<&'a [ProbeSample]>,
    /// Its quality items, if it had a quality pass.
    pub quality: Option<&'a [QualityRecord]>,
    /// The cell's cost and what it runs on.
    pub cell: &'a CellInputs<'a>,
}

/// What a cell's repetitions share: `[slo]`, the arrival, the hardware, the price.
#[derive(Debug, Clone, Copy)]
pub struct CellInputs<'a> {
    /// The scenario's per-request SLOs.
    pub slo: &'a BTreeMap<Metric, Duration>,
    /// Batch mode: each batch is one step (`step_time`, `samples_per_s`).
    pub batch: bool,
    /// The model × GPU × TP the cell runs on, when `[target]` names them (MFU, MBU).
    pub deployment: Option<&'a Deployment>,
    /// `[cost]` with the cell's GPU count.
    pub cost: Option<CostConfig>,
}

/// The summary of one repetition: per-request statistics and rates from its records,
/// batch steps, MFU/MBU against the deployment, resources from its probes, the client's own
/// cost from its marker, energy per token and price. The records are streamed, never held.
pub fn summarize_repetition<R: RecordSource + ?Sized>(
    inputs: RepetitionInputs<R>,
) -> Result<RepetitionSummary, R::Error> {
    let cell = inputs.cell;
    let mut summarizer = Summarizer::new(cell.slo);
    let mut steps = batch::Steps::default();
    let mut work = WorkTotals::default();
    inputs.records.replay(&mut |rec| {
        summarizer.push(rec);
        if cell.batch {
            steps.push(rec);
        }
        if let (Some(deployment), Some((prompt, output))) = (cell.deployment, ok_length(rec)) {
            deployment.add_work(&mut work, prompt, output);
        }
    })?;
    let window = summarizer.window_ns();
    let mut summary = summarizer.finish(inputs.records)?;
    steps.finish(&mut summary.values);
    if let Some(deployment) = cell.deployment {
        add_utilization(deployment, work, &mut summary.values);
    }
    let resource_inputs = resources::ResourceInputs {
        origin_wall: origin_wall(inputs.marker),
        probes: inputs.probes,
        client_cpu: (inputs.marker.client_cpu_seconds).map(|c| (c, inputs.marker.wall_seconds)),
        cost: cell.cost,
    };
    resources::add(&mut summary.values, window, resource_inputs);
    client::add(inputs.marker, summary.sent, &mut summary.values);
    if let Some(records) = inputs.quality {
        summary.quality = Some(super::quality::add(records, &mut summary.values));
    }
    Ok(summary)
}

/// (prompt, output) tokens of one request, if it succeeded.
fn ok_length(r: &RequestRecord) -> Option<(u32, u32)> {
    r.outcome.is_ok().then(|| {
        let prompt = super::request::prompt_tokens(r).unwrap_or(0);
        (prompt, output_tokens(r).0)
    })
}

/// Adds `mfu` and `mbu` from the work of the successful requests over the measured window.
/// The mean decode batch is estimated by Little's law (`concurrency`), at least 1.
fn add_utilization(
    deployment: &Deployment,
    work: WorkTotals,
    values: &mut BTreeMap<MetricKey, f64>,
) {
    let Some(&window) = values.get(&Metric::Duration.key()) else {
        return;
    };
    let batch = (values.get(&Metric::Concurrency.key()).copied())
        .unwrap_or(1.0)
        .max(1.0);
    if let Ok(u) = deployment.utilization_of(work, Duration::from_secs_f64(window), batch) {
        values.insert(Metric::Mfu.key(), u.mfu);
        values.insert(Metric::Mbu.key(), u.mbu);
    }
}

/// Wall-clock time of a marker's origin.
fn origin_wall(marker: &RepMarker) -> Option<SystemTime> {
    humantime::parse_rfc3339(&marker.origin_wall).ok()
}
