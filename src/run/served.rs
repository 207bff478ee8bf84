//! Running a plan with a `[server]`: for every planned launch, start the server (a free port,
//! the command, the log), wait until it is ready, warm it up, ask its version, then run the
//! launch's repetitions back to back (resetting it in between) and stop it.
//!
//! Faults: a server that does not start fails the launch's repetitions (markers with the
//! reason and the log's tail) and the run goes on with the next launch; a server that dies
//! during a repetition fails that repetition and is relaunched for the rest; one that dies
//! between repetitions is relaunched and the repetition runs on the new one. Every launch is
//! recorded in the manifest as it happens, and every path out of here stops the server.

use std::collections::{HashMap, VecDeque};

use super::slot::{Runner, Serving, SlotEnd};
use super::{RunEnd, RunError};
use crate::matrix::Slot;
use crate::scenario::model::{
    CellConfig, PortChoice, ServerConfig, redacted_command, redacted_env,
};
use crate::server::{self, Server};
use crate::store::{LaunchRecord, StoreError, now_rfc3339};

/// A server that is up, with the cells' configurations rendered at its port.
struct Live {
    server: Server,
    record: LaunchRecord,
    configs: HashMap<usize, CellConfig>,
}

/// Runs the launches of the plan; `done` slots are skipped (resume).
pub(super) async fn run_launches(
    r: &mut Runner<'_>,
    done: &dyn Fn(&Slot) -> bool,
) -> Result<RunEnd, RunError> {
    stop_leftovers(r).await?;
    let mut next_index = r.dir.read_manifest()?.launches.len();
    for launch in &r.plan.launches {
        let mut todo: VecDeque<Slot> = r.plan.schedule[launch.slots.clone()]
            .iter()
            .copied()
            .filter(|s| !done(s))
            .collect();
        // A server that exits before serving anything (another process took its port, a
        // crash at start) is relaunched once before its repetition is failed.
        let mut second_chance = true;
        while let Some(&first) = todo.front() {
            let index = next_index;
            next_index += 1;
            // Ctrl-C while a server starts drops `start`, and with it the server, whose
            // guard kills its process group.
            let interrupted = r.interrupt.wait();
            let started = tokio::select! {
                biased;
                () = interrupted => return Ok(RunEnd::Interrupted),
                s = start(r, launch.config, first, index) => s?,
            };
            let live = match started {
                Ok(live) => live,
                Err(reason) => {
                    eprintln!("server launch {index} failed: {reason}");
                    let log = r.dir.server_log(index);
                    let reason = format!("{} (its log: {log})", first_line(&reason));
                    for slot in todo.drain(..) {
                        r.fail_slot(slot, &reason)?;
                    }
                    break;
                }
            };
            if serve(r, live, &mut todo, &mut second_chance).await? == RunEnd::Interrupted {
                return Ok(RunEnd::Interrupted);
            }
        }
    }
    Ok(RunEnd::Complete)
}

/// Runs slots from the front of `todo` on `live` until they are done, the server dies
/// (leaving the rest for a relaunch) or Ctrl-C; always stops the server.
async fn serve(
    r: &mut Runner<'_>,
    mut live: Live,
    todo: &mut VecDeque<Slot>,
    second_chance: &mut bool,
) -> Result<RunEnd, RunError> {
    let reset_url = live.server.config().reset_url.clone();
    let mut ran = 0usize;
    while let Some(slot) = todo.pop_front() {
        if let Some(status) = live.server.exit() {
            let reason = format!("the server exited ({status}) between repetitions");
            if ran == 0 && !std::mem::take(second_chance) {
                // It died before serving anything, again: relaunching for this slot could loop.
                r.fail_slot(slot, &reason)?;
            } else {
                eprintln!("server launch {}: {reason}; relaunching", live.record.index);
                todo.push_front(slot);
            }
            return finish(r, live, Some(reason))
                .await
                .map(|()| RunEnd::Complete);
        }
        if ran > 0
            && let Some(url) = &reset_url
            && let Err(e) = server::reset(url).await
        {
            eprintln!("server reset failed: {e}");
            live.record.reset_failed += 1;
        }
        let config = live.configs[&slot.cell].clone();
        let log = live.record.log.clone().unwrap_or_default();
        let serving = Serving {
            server: &live.server,
            log: &log,
        };
        match r.run_slot(slot, &config, Some(serving)).await {
            Err(e) => {
                finish(r, live, Some(e.to_string())).await?;
                return Err(e);
            }
            Ok(SlotEnd::Interrupted) => {
                finish(r, live, None).await?;
                return Ok(RunEnd::Interrupted);
            }
            Ok(SlotEnd::Done) => live.record.repetitions.push(slot),
            Ok(SlotEnd::ServerDied(reason)) => {
                live.record.repetitions.push(slot);
                eprintln!("{reason}");
                return finish(r, live, Some(reason))
                    .await
                    .map(|()| RunEnd::Complete);
            }
        }
        ran += 1;
    }
    finish(r, live, None).await.map(|()| RunEnd::Complete)
}

/// Launches configuration `config` for the launch whose first repetition is `first`.
/// `Ok(Err(reason))` when the server did not come up (recorded; the run goes on).
async fn start(
    r: &mut Runner<'_>,
    config: usize,
    first: Slot,
    index: usize,
) -> Result<Result<Live, String>, RunError> {
    let planned = &r.plan.servers[config];
    let port = match planned.port {
        Some(PortChoice::Auto) => {
            Some(server::pick_port().map_err(|e| RunError::Server(e.to_string()))?)
        }
        Some(PortChoice::Fixed(p)) => Some(p),
        None => None,
    };
    let mut configs = HashMap::new();
    for (cell, c) in r
        .plan
        .cells
        .iter()
        .enumerate()
        .filter(|(i, _)| r.plan.server_of[*i] == config)
    {
        let resolved = match port {
            Some(p) => r.plan.scenario.resolve_at_port(&c.vars, p),
            None => r.plan.scenario.resolve(&c.vars),
        };
        configs.insert(cell, resolved.map_err(|e| RunError::Server(e.to_string()))?);
    }
    let cfg: ServerConfig = configs[&first.cell]
        .server
        .clone()
        .expect("a served cell has a server");
    let log = r.dir.server_log(index);
    let mut record = new_record(index, config, &cfg, port, &log);
    r.dir.update_manifest(|m| m.launches.push(record.clone()))?;
    r.executors.clear();
    // A new server answers "can you score prompts?" for itself, even at the same URL.
    r.quality.forget_servers();
    let server = match Server::launch(&cfg, &r.dir.root().join(&log)) {
        Ok(s) => s,
        Err(e) => return Ok(failed(r, record, e.to_string(), None)?),
    };
    record.pid = Some(server.pid());
    record.pid_start_ticks = server.start_ticks();
    // Saved at once: if exp is killed from here on, `--resume` finds the server by these.
    save(r, &record)?;
    let ready = match server.wait_ready().await {
        Ok(d) => d,
        Err(e) => {
            let stop = server.stop().await;
            return Ok(failed(r, record, e.to_string(), Some(stop))?);
        }
    };
    record.ready_seconds = Some(ready.as_secs_f64());
    let first_config = &configs[&first.cell];
    record.engine_version =
        server::engine_version(&cfg, first_config.target.base_url.as_deref()).await;
    record.warmup_failed = warm_up(r, first, first_config, cfg.warmup_requests).await?;
    save(r, &record)?;
    Ok(Ok(Live {
        server,
        record,
        configs,
    }))
}

fn new_record(
    index: usize,
    config: usize,
    cfg: &ServerConfig,
    port: Option<u16>,
    log: &str,
) -> LaunchRecord {
    LaunchRecord {
        index,
        config,
        command: redacted_command(cfg.command.as_deref().unwrap_or_default()),
        env: redacted_env(&cfg.env).into_iter().collect(),
        cwd: cfg.cwd.as_ref().map(|d| d.display().to_string()),
        port,
        log: Some(log.to_string()),
        started: now_rfc3339(),
        ..LaunchRecord::default()
    }
}

fn failed(
    r: &mut Runner<'_>,
    mut record: LaunchRecord,
    reason: String,
    stop: Option<server::StopReport>,
) -> Result<Result<Live, String>, StoreError> {
    record.failure = Some(reason.clone());
    record.stopped = Some(now_rfc3339());
    if let Some(stop) = stop {
        record.exit = stop.exit;
        record.killed = stop.killed;
    }
    save(r, &record)?;
    Ok(Err(reason))
}

/// Stops a live server and records how it ended.
async fn finish(r: &mut Runner<'_>, live: Live, failure: Option<String>) -> Result<(), RunError> {
    let Live {
        server, mut record, ..
    } = live;
    let stop = server.stop().await;
    if !stop.strays.is_empty() {
        eprintln!(
            "warning: processes {:?} of server launch {} outlived SIGKILL",
            stop.strays, record.index
        );
    }
    record.stopped = Some(now_rfc3339());
    record.exit = stop.exit;
    record.killed = stop.killed;
    record.failure = failure;
    Ok(save(r, &record)?)
}

fn save(r: &Runner<'_>, record: &LaunchRecord) -> Result<(), StoreError> {
    r.dir.update_manifest(
        |m| match m.launches.iter_mut().find(|l| l.index == record.index) {
            Some(l) => *l = record.clone(),
            None => m.launches.push(record.clone()),
        },
    )?;
    Ok(())
}

/// Sends `n` requests of the launch's first cell, one at a time, and discards them; returns
/// how many failed.
async fn warm_up(
    r: &mut Runner<'_>,
    first: Slot,
    config: &CellConfig,
    n: u32,
) -> Result<u32, RunError> {
    if n == 0 {
        return Ok(0);
    }
    let cell_id = r.plan.cells[first.cell].id.to_string();
    let seeds = super::workload_seeds(r.plan.scenario.experiment.seed, first.round);
    let work = r
        .datasets
        .build_with(&config.workload, &seeds, config.target.tokenizer.as_deref())
        .map_err(|source| RunError::Workload {
            cell: cell_id.clone(),
            source,
        })?;
    let exec = super::CellExecutor::new(config, work.requests)
        .await
        .map_err(|source| RunError::Executor {
            cell: cell_id,
            source: Box::new(source),
        })?;
    let Some(client) = exec.client() else {
        return Ok(0);
    };
    let origin = std::time::Instant::now();
    let mut failed = 0;
    for i in 0..u64::from(n) {
        let rec = client
            .send(&work.warmup_source.request(i), i, origin, 0)
            .await;
        failed += u32::from(!matches!(rec.outcome, crate::record::Outcome::Ok));
    }
    Ok(failed)
}

/// Stops the servers an earlier exp left running in this run directory (it was killed, so
/// it neither stopped them nor recorded their end), and records how each launch ended.
async fn stop_leftovers(r: &mut Runner<'_>) -> Result<(), RunError> {
    let manifest = r.dir.read_manifest()?;
    let open = manifest
        .launches
        .into_iter()
        .filter(|l| l.stopped.is_none());
    for mut record in open {
        let Some(pid) = record.pid else { continue };
        let grace = r
            .plan
            .servers
            .get(record.config)
            .map_or(std::time::Duration::from_secs(10), |s| s.stop_grace);
        let note = match server::stop_leftover(pid, record.pid_start_ticks, grace).await {
            server::Leftover::Reused => continue,
            server::Leftover::Gone => {
                "exp ended without stopping this server; it was gone when the run resumed"
                    .to_string()
            }
            server::Leftover::Stopped { members, killed } => {
                record.killed = killed;
                let how = if killed {
                    "SIGTERM, then SIGKILL"
                } else {
                    "SIGTERM"
                };
                eprintln!(
                    "stopped server launch {} (processes {members:?}), left running by an earlier exp",
                    record.index
                );
                format!(
                    "exp ended without stopping this server; `--resume` found it still running and stopped it ({how})"
                )
            }
        };
        record.stopped = Some(now_rfc3339());
        record.failure.get_or_insert(note);
        save(r, &record)?;
    }
    Ok(())
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_string()
}
