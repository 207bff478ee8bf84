//! `exp run --client K/N`: what a fanned-out client cannot run, its run id and manifest
//! record, and the plan's client settings (see `crate::fanout` and `run::gate`).

use std::path::Path;

use anyhow::bail;

use crate::cli::RunArgs;
use crate::fanout::{self, Client, ClientPlan};
use crate::plan::Plan;
use crate::scenario::model::{ArrivalConfig, TargetKind};
use crate::store::{ClientRecord, Manifest, RunDir};

/// Refuses what a client cannot run alone: a simulated target (no load to split), a search
/// or adaptive repetitions (each decides from every client's measurements), a baseline
/// (`baseline`: compares the whole load) and a closed loop with fewer places than clients.
/// `flag` is what the user typed (`--client K/N`, or `--clients N` for `exp slurm`/`exp k8s`).
pub(super) fn check(
    plan: &Plan,
    client: Client,
    flag: &str,
    baseline: bool,
    path: &Path,
) -> anyhow::Result<()> {
    let file = path.display();
    if plan.scenario.search.is_some() {
        bail!(
            "{file}: {flag}: a [search] chooses each next load from the whole load's measurements, which no client sees; run the search from one client"
        );
    }
    if plan.scenario.experiment.adaptive.is_some() {
        bail!(
            "{file}: {flag}: adaptive repetitions decide after each look from the whole load's measurements, which no client holds; fix the number of repetitions (`--set experiment.repetitions=N`, the same on every client)"
        );
    }
    if plan.scenario.launches_server() {
        bail!(
            "{file}: {flag}: every client would launch its own [server]; fan a load out over clients against one server that is already running (`[server] restart = \"never\"`, or no [server] and `--target URL`)"
        );
    }
    if baseline {
        bail!(
            "{flag}: --baseline compares the whole load and a client sends only its share; merge the clients (`exp merge --clients`), then `exp compare BASELINE MERGED`"
        );
    }
    for (cell, config) in plan.cells.iter().zip(&plan.configs) {
        if config.target.kind == TargetKind::Sim {
            bail!(
                "{file}: {flag}: cell {}: the simulated engine runs in this process, so there is no load to split over machines; give an HTTP target (`--target URL`)",
                cell.id
            );
        }
        if let Some(q) = &config.quality
            && matches!(
                q.when,
                crate::scenario::model::QualityWhen::UnderLoad { .. }
            )
        {
            bail!(
                "{file}: {flag}: cell {}: [quality] when = \"under-load\" would mix only this client's share of the items into its share of the load, and the merge keeps one client's quality file; score quality after each repetition (`when = \"after-repetition\"`) or run without --client",
                cell.id
            );
        }
        if let ArrivalConfig::Closed { concurrency } = config.workload.arrival
            && let Err(why) = crate::fanout::closed_share(concurrency.get(), client)
        {
            bail!("{file}: {flag}: cell {}: {why}", cell.id);
        }
    }
    Ok(())
}

/// Names a client's run (unless `--run-id` did) and records its share in `manifest`.
pub(super) fn record(manifest: &mut Manifest, args: &RunArgs) {
    let (Some(client), Some(start_at)) = (args.client, args.start_at) else {
        return;
    };
    if args.run_id.is_none() {
        manifest.run_id = client.run_id(start_at);
    }
    manifest.client = Some(ClientRecord {
        index: client.index,
        count: client.count,
        start_at: humantime::format_rfc3339_millis(start_at).to_string(),
        max_skew_ms: args.max_skew.as_millis() as u64,
    });
}

/// The plan's client settings, once the run directory exists: the barrier folder sits beside
/// it, named by the shared instant, so every client's run in the same `--out` finds it.
pub(super) fn plan(plan: &mut Plan, dir: &RunDir, args: &RunArgs) {
    let (Some(client), Some(start_at)) = (args.client, args.start_at) else {
        return;
    };
    let parent = dir.root().parent().unwrap_or(Path::new("."));
    plan.client = Some(ClientPlan {
        client,
        start_at,
        max_skew: args.max_skew,
        barrier: parent.join(format!("{}-barrier", fanout::stamp(start_at))),
        node: crate::shard::node::Node::detect().name,
    });
}

/// Says how a client's run ended and what comes next; `None` for a run that is not a client.
pub(super) fn finished(manifest: &Manifest) -> Option<super::Status> {
    let c = manifest.client.as_ref()?;
    if manifest.status == crate::store::RunStatus::Partial {
        eprintln!(
            "partial: some of client {}/{}'s repetitions failed (listed in the report); `exp merge --clients` fails them in the merged run too (run every client again with a new --start-at to redo them)",
            c.index, c.count
        );
        return Some(super::Status::Partial);
    }
    eprintln!(
        "client {}/{} done: once every client is, join them with `exp merge --clients CLIENT_DIR… --out DIR` (the statistics above cover this client's share only)",
        c.index, c.count
    );
    Some(super::Status::Ok)
}

/// A merged client's start this far after the shared instant (on its own wall clock) is
/// worth a warning, though under `--max-skew`: the repetition's load began unevenly.
const SKEW_WARN_MS: f64 = 10.0;

/// The report's warnings about a fan-out: a client's run holds only its share; a merged run
/// names its largest start skew when it exceeds [`SKEW_WARN_MS`].
pub(super) fn warnings(dir: &RunDir, manifest: &Manifest) -> anyhow::Result<Vec<String>> {
    if let Some(c) = &manifest.client {
        return Ok(vec![format!(
            "this run is client {}/{} of a fanned-out load: each repetition holds only its share of the requests (its throughputs are the share's); `exp merge --clients` joins the clients into the whole load",
            c.index, c.count
        )]);
    }
    if manifest.merged_clients.is_empty() {
        return Ok(Vec::new());
    }
    let mut worst: Option<(f64, String)> = None;
    for (cell, round) in dir.markers()? {
        for mark in dir.marker(&cell, round)?.details.clients {
            if worst.as_ref().is_none_or(|(ms, _)| mark.skew_ms > *ms) {
                let at = format!(
                    "client {}/{} ({}) in {cell} round {round}",
                    mark.index, mark.count, mark.node
                );
                worst = Some((mark.skew_ms, at));
            }
        }
    }
    let mut out = vec![format!(
        "this run is one load sent by {} clients and merged: latencies are each client's own; throughputs span the earliest client's first send to the last finish, joined through the shared start instant (exact up to the clients' clock offsets, ~1 ms with NTP)",
        manifest.merged_clients.len()
    )];
    if let Some((ms, at)) = worst.filter(|(ms, _)| *ms > SKEW_WARN_MS) {
        out.push(format!(
            "{at} started {ms:.1} ms after the shared instant (warned above {SKEW_WARN_MS} ms): that repetition's load began unevenly; give the clients a later --start-at or a lighter warm-up"
        ));
    }
    Ok(out)
}
