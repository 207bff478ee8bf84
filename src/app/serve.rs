//! `exp serve`: an OpenAI-compatible streaming server until Ctrl-C: the simulated engine in
//! real time (`--sim`), or fixed timing (`--fixed`).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::cli::ServeArgs;
use crate::hw::{Deployment, Gpu, ModelConfig};
use crate::scenario::model::SimConfig;
use crate::serve::sim::{self, SimServeConfig};
use crate::serve::{self, FixedTiming};
use crate::sim::EngineParams;

/// Serves until Ctrl-C.
pub(super) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .with_context(|| format!("--host {} --port {}: not an address", args.host, args.port))?;
    if args.sim {
        return serve_sim(addr, &args).await;
    }
    let Some(spec) = &args.fixed else {
        bail!(
            "say what to serve: --sim (the simulated engine, e.g. --sim --model llama-3.1-8b --gpu h100-sxm) or --fixed ttft=100ms,itl=10ms"
        );
    };
    let mut timing: FixedTiming = spec.parse()?;
    // The truth log grows by one entry per request: kept only when it is to be written.
    timing.keep_truth = args.truth_log.is_some();
    // Open the log before serving, so a path that cannot be written fails at once.
    let log = match &args.truth_log {
        Some(path) => Some((
            path,
            std::fs::File::create(path)
                .with_context(|| format!("--truth-log {}", path.display()))?,
        )),
        None => None,
    };
    raise_fd_limit();
    let handle = serve::spawn_fixed(addr, timing).await?;
    eprintln!("serving on {} (Ctrl-C to stop)", handle.base_url());
    tokio::signal::ctrl_c().await?;
    let truth = handle.finish().await?;
    if let Some((path, file)) = log {
        let anchor = crate::clock::Anchor::now()
            .context("--truth-log needs the raw monotonic clock, which this system lacks")?;
        let mut out = std::io::BufWriter::new(file);
        serve::write_truth_lines(&truth, &anchor, &mut out)
            .with_context(|| format!("--truth-log {}", path.display()))?;
        eprintln!("truth log: {} requests in {}", truth.len(), path.display());
    }
    Ok(())
}

/// Lifts the open-file limit so thousands of connections are not refused (one descriptor
/// each).
fn raise_fd_limit() {
    if let Some(lim) = crate::fdlimit::raise()
        && lim.soft < 10_000
    {
        eprintln!(
            "note: at most {} open files (hard limit); connections beyond that are refused",
            lim.soft
        );
    }
}

async fn serve_sim(addr: SocketAddr, args: &ServeArgs) -> anyhow::Result<()> {
    let (config, deployment) = sim_config(args)?;
    let p = config.params;
    eprintln!(
        "simulating {} on {} × {} (preset `{}`, noise cv {}): KV cache {} tokens, max_num_seqs {}, max_num_batched_tokens {}",
        deployment.model().name,
        deployment.tp(),
        deployment.gpu().name,
        args.preset,
        p.noise_cv,
        p.kv_capacity_tokens,
        p.max_num_seqs,
        p.max_num_batched_tokens,
    );
    let handle = sim::spawn_sim(addr, config).await?;
    eprintln!(
        "serving on {} (metrics at http://{}/metrics; Ctrl-C to stop)",
        handle.base_url(),
        handle.addr()
    );
    tokio::signal::ctrl_c().await?;
    let lag = handle.stats().lag;
    handle.shutdown().await?;
    if lag.count > 0 {
        eprintln!(
            "emission lag over {} tokens: p50 {:?}, p99 {:?}, max {:?}",
            lag.count, lag.p50, lag.p99, lag.max
        );
    }
    Ok(())
}

/// The simulated server's configuration from `exp serve --sim` arguments, and the deployment
/// it models (shared with the config as its step cost).
pub(crate) fn sim_config(args: &ServeArgs) -> anyhow::Result<(SimServeConfig, Arc<Deployment>)> {
    let model =
        ModelConfig::load(&args.model).with_context(|| format!("--model {}", args.model))?;
    let gpu = Gpu::load(&args.gpu).with_context(|| format!("--gpu {}", args.gpu))?;
    let settings = SimConfig {
        preset: args.preset.clone(),
        noise_cv: args.noise_cv,
        gpu_memory_utilization: args.gpu_memory_utilization,
        block_size: EngineParams::DEFAULT_BLOCK_SIZE,
    };
    let efficiency = crate::theory::efficiency(&settings, &gpu, model.dtype).context("--preset")?;
    let (weights, kv) = (model.dtype, model.default_kv_dtype());
    let deployment = Deployment::new(model, gpu, args.tp, weights, kv, efficiency)
        .with_context(|| format!("--tp {}", args.tp))?;
    let kv_tokens = crate::theory::kv_capacity_tokens(
        &deployment,
        args.gpu_memory_utilization,
        args.max_num_batched_tokens,
    )
    .with_context(|| format!("--gpu-memory-utilization {}", args.gpu_memory_utilization))?;
    let mut params = EngineParams::new(args.max_num_seqs, args.max_num_batched_tokens, kv_tokens);
    params.noise_cv = crate::theory::noise_cv(&settings);
    params.validate()?;
    let deployment = Arc::new(deployment);
    let config = SimServeConfig {
        cost: deployment.clone(),
        params,
        seed: args.seed,
        model: args
            .served_model_name
            .clone()
            .unwrap_or_else(|| args.model.clone()),
    };
    Ok((config, deployment))
}

#[cfg(test)]
#[path = "serve_tests.rs"]
mod tests;
