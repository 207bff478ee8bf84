//! `exp serve`: an OpenAI-compatible streaming server with fixed timing, until Ctrl-C.

use std::net::SocketAddr;

use anyhow::{Context, bail};

use crate::cli::ServeArgs;
use crate::serve::{self, FixedTiming};

/// Serves until Ctrl-C.
pub(super) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .with_context(|| format!("--host {} --port {}: not an address", args.host, args.port))?;
    let Some(spec) = &args.fixed else {
        if args.sim {
            bail!(
                "`exp serve --sim` (the simulated engine in real time) is not built yet; use `exp serve --fixed ttft=100ms,itl=10ms`, or run scenarios with kind = \"sim\" in virtual time"
            );
        }
        bail!("say what to serve: --fixed ttft=100ms,itl=10ms");
    };
    let mut timing: FixedTiming = spec.parse()?;
    timing.keep_truth = false;
    let handle = serve::spawn_fixed(addr, timing).await?;
    eprintln!("serving on {} (Ctrl-C to stop)", handle.base_url());
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await?;
    Ok(())
}
