//! `exp merge`: check that the given shards make one experiment, join them into one run
//! directory (see `crate::merge`), and report it as `exp run` would have.

use crate::cli::MergeArgs;
use crate::merge;
use crate::store::{RunDir, RunStatus};

use super::Status;

/// Merges `args.shards` into `args.out` and writes its summary and report.
pub(super) fn command(args: &MergeArgs) -> anyhow::Result<Status> {
    if !args.clients.is_empty() {
        return clients(args);
    }
    let (mut parts, problems) = merge::open(&args.shards);
    for part in &mut parts {
        super::session::settle(&mut part.manifest);
    }
    // The unsharded schedule, from the saved scenario of a shard: what every shard's schedule
    // must be a share of, and the merged run's schedule.
    let expected = match parts.iter().find(|p| p.manifest.shard.is_some()) {
        Some(p) => Some(super::saved_plan(&p.dir, &p.manifest)?),
        None => None,
    };
    if expected
        .as_ref()
        .is_some_and(|p| p.scenario.search.is_some())
    {
        anyhow::bail!("a [search] run cannot be sharded, so it does not merge");
    }
    let schedule = expected.as_ref().map_or(Vec::new(), |p| p.schedule.clone());
    merge::check(&parts, &schedule, problems)?;
    let plan = expected.expect("checked: every part is a shard");
    merge::write(&parts, &args.out, schedule)?;
    finish(
        &args.out,
        &plan,
        "partial: some repetitions failed in their shards (listed in the report); retry them with `exp run --resume SHARD_DIR` and merge again",
    )
}

/// Summarises and reports the merged run at `out` as `exp run` would, saying `partial` when
/// some of its repetitions failed.
fn finish(
    out: &std::path::Path,
    plan: &crate::plan::Plan,
    partial: &str,
) -> anyhow::Result<Status> {
    let (dir, manifest) = RunDir::open(out)?;
    eprintln!("run directory: {}", dir.root().display());
    let checks_failed = super::finish_run(&dir, &manifest, plan, None, true)?;
    Ok(if manifest.status == RunStatus::Partial {
        eprintln!("{partial}");
        Status::Partial
    } else if checks_failed {
        Status::ChecksFailed
    } else {
        Status::Ok
    })
}

/// `exp merge --clients`: joins the clients of one fanned-out load, repetition by repetition.
fn clients(args: &MergeArgs) -> anyhow::Result<Status> {
    let (mut parts, problems) = merge::open(&args.clients);
    for part in &mut parts {
        super::session::settle(&mut part.manifest);
    }
    let expected = match parts.iter().find(|p| p.manifest.client.is_some()) {
        Some(p) => Some(super::saved_plan(&p.dir, &p.manifest)?),
        None => None,
    };
    let schedule = expected.as_ref().map_or(Vec::new(), |p| p.schedule.clone());
    merge::check_clients(&parts, &schedule, problems)?;
    let plan = expected.expect("checked: every part is a client");
    merge::write_clients(&parts, &args.out, schedule)?;
    finish(
        &args.out,
        &plan,
        "partial: some repetitions were failed by a client or not finished by one (listed in the report); they are left out of the statistics (run every client again with a new --start-at to redo them)",
    )
}
