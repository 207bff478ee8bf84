//! Talking to a server that is starting or running: the readiness probe (a URL answering
//! 2xx, or a line in the log), the engine's version, and the reset between repetitions.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::ServerError;
use super::log::LineReader;
use super::process::run_for_output;
use crate::scenario::model::{LogPattern, Readiness, ServerConfig};

/// Time between readiness probes.
const POLL: Duration = Duration::from_millis(200);

/// Why a server did not become ready.
#[derive(Debug)]
pub(super) enum NotReady {
    /// The process ended (how).
    Exited(String),
    /// The deadline passed (what the last probe saw).
    Timeout(String),
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a plain HTTP client builds")
}

/// Polls the readiness probe until it passes, the process exits, or `deadline` passes.
pub(super) async fn wait(
    ready: &Readiness,
    deadline: Instant,
    log: Option<&Path>,
    mut exit: Option<watch::Receiver<Option<String>>>,
) -> Result<(), NotReady> {
    let client = http();
    let mut lines = log.map(LineReader::new);
    let regex = match ready {
        Readiness::Log(LogPattern::Regex(r)) => regex::Regex::new(r).ok(),
        _ => None,
    };
    loop {
        let seen = match ready {
            Readiness::Url(url) => probe_url(&client, url).await,
            Readiness::Log(pattern) => {
                let new = lines
                    .as_mut()
                    .map(LineReader::new_lines)
                    .unwrap_or_default();
                let hit = new.iter().any(|l| match (pattern, &regex) {
                    (LogPattern::Substring(s), _) => l.contains(s.as_str()),
                    (LogPattern::Regex(_), Some(re)) => re.is_match(l),
                    (LogPattern::Regex(_), None) => false,
                });
                if hit {
                    Ok(())
                } else {
                    Err(format!("no log line matching {} yet", describe(pattern)))
                }
            }
        };
        let last = match seen {
            Ok(()) => return Ok(()),
            Err(what) => what,
        };
        if let Some(status) = exit.as_ref().and_then(|rx| rx.borrow().clone()) {
            return Err(NotReady::Exited(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(NotReady::Timeout(last));
        }
        let nap = tokio::time::sleep((deadline - now).min(POLL));
        match exit.as_mut() {
            // Wake at once when the process dies: a bad flag should not cost a poll period.
            Some(rx) => {
                tokio::select! {
                    _ = nap => {}
                    _ = rx.changed() => {}
                }
            }
            None => nap.await,
        }
    }
}

fn describe(p: &LogPattern) -> String {
    match p {
        LogPattern::Substring(s) => format!("{s:?}"),
        LogPattern::Regex(r) => format!("/{r}/"),
    }
}

async fn probe_url(client: &reqwest::Client, url: &str) -> Result<(), String> {
    match client.get(url).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("GET {url}: HTTP {}", r.status().as_u16())),
        Err(e) => Err(format!("GET {url}: {}", crate::backend::error_chain(&e))),
    }
}

/// Waits for an external server (`restart = "never"`) to pass its readiness probe.
pub async fn wait_external(config: &ServerConfig) -> Result<Duration, ServerError> {
    let started = Instant::now();
    match wait(&config.ready, started + config.ready_timeout, None, None).await {
        Ok(()) => Ok(started.elapsed()),
        Err(NotReady::Exited(last) | NotReady::Timeout(last)) => {
            Err(ServerError::ExternalNotReady {
                timeout: humantime::format_duration(config.ready_timeout).to_string(),
                last,
            })
        }
    }
}

/// `POST`s the reset URL; `Err` says why it failed.
pub async fn reset(url: &str) -> Result<(), String> {
    match http().post(url).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("POST {url}: HTTP {}", r.status().as_u16())),
        Err(e) => Err(format!("POST {url}: {}", crate::backend::error_chain(&e))),
    }
}

/// The engine's version: the first non-empty line printed by `version_command`, else what
/// the server reports at `/version` (vLLM), `/get_server_info` (SGLang), `/props`
/// (llama.cpp's `build_info`) or in `/v1/models` metadata. `None` when nothing says.
pub async fn engine_version(config: &ServerConfig, base_url: Option<&str>) -> Option<String> {
    if let Some(argv) = &config.version_command {
        let out = run_for_output(
            argv,
            &config.env,
            config.cwd.as_deref(),
            Duration::from_secs(60),
        );
        return out
            .await
            .ok()?
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string);
    }
    let base = base_url?;
    let origin = crate::scenario::url_origin(base)?;
    let client = http();
    let get = |url: String| {
        let client = client.clone();
        async move {
            let r = client.get(url).send().await.ok()?;
            if !r.status().is_success() {
                return None;
            }
            r.json::<serde_json::Value>().await.ok()
        }
    };
    for (path, field) in [
        ("/version", "version"),
        ("/get_server_info", "version"),
        ("/props", "build_info"),
    ] {
        if let Some(v) = get(format!("{origin}{path}"))
            .await
            .as_ref()
            .and_then(|j| j.get(field))
        {
            return Some(json_text(v));
        }
    }
    let models = get(format!("{}/models", base.trim_end_matches('/'))).await?;
    let first = models.get("data")?.get(0)?;
    first
        .get("version")
        .or_else(|| first.get("meta").and_then(|m| m.get("version")))
        .map(json_text)
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
