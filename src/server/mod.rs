//! Inference servers that exp launches for a run (`[server]`): spawn the command without a
//! shell in a process group of its own, send its output to a log file, wait until it is
//! ready, ask it for its version, reset it between repetitions, and stop it (stop command,
//! SIGTERM to the group, SIGKILL after the grace period). No process is ever left behind: a
//! [`Server`] that is dropped without [`Server::stop`] (an error, a panic, Ctrl-C while it
//! starts) kills its group.
//!
//! What runs when (launch order, relaunches, failed repetitions) is decided by `run`; this
//! module only owns one server's life.

pub mod leftover;
mod log;
pub mod process;
mod ready;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub use self::log::{LogTail, TAIL_LINES, tail};
pub use leftover::{Leftover, stop_leftover};
pub use ready::{engine_version, reset, wait_external};

use crate::scenario::model::{PortChoice, ServerConfig};
use process::{GroupGuard, group_members, signal_group};

/// Why a server could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The program could not be started (not found, not executable, bad directory).
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The log file could not be created.
    #[error("cannot create the server log {}: {source}", path.display())]
    Log {
        /// The log file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A fixed port is taken before the launch.
    #[error(
        "port {port} is already in use: another server (or a process left by an earlier run) listens there"
    )]
    PortInUse {
        /// The port.
        port: u16,
    },
    /// No free port could be found for `port = "auto"`.
    #[error("cannot find a free port: {0}")]
    NoPort(std::io::Error),
    /// The process ended before it was ready (bad flag, out of memory, port taken…).
    #[error("the server exited ({status}) before it was ready{tail}")]
    Exited {
        /// How it ended.
        status: String,
        /// The end of its log.
        tail: LogTail,
    },
    /// The readiness probe did not pass in time (the server was stopped).
    #[error("the server was not ready within {timeout} ({last}){tail}")]
    NotReady {
        /// `ready_timeout`, formatted.
        timeout: String,
        /// What the last probe saw.
        last: String,
        /// The end of its log.
        tail: LogTail,
    },
    /// An external server (`restart = "never"`) did not answer its readiness probe in time.
    #[error("the external server was not ready within {timeout} ({last})")]
    ExternalNotReady {
        /// `ready_timeout`, formatted.
        timeout: String,
        /// What the last probe saw.
        last: String,
    },
}

/// How a stop went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopReport {
    /// How the launched process ended, when that was observed.
    pub exit: Option<String>,
    /// The group outlived SIGTERM by the grace period and got SIGKILL.
    pub killed: bool,
    /// Processes of the group still alive afterwards (should be none).
    pub strays: Vec<u32>,
}

/// A launched server process group.
#[derive(Debug)]
pub struct Server {
    pid: u32,
    exit: watch::Receiver<Option<String>>,
    guard: GroupGuard,
    config: ServerConfig,
    log_path: PathBuf,
    started: Instant,
}

/// A free TCP port on 127.0.0.1 (bound and released; another process could take it before
/// the server does, which then shows as a start failure).
pub fn pick_port() -> Result<u16, ServerError> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(ServerError::NoPort)?;
    Ok(listener.local_addr().map_err(ServerError::NoPort)?.port())
}

/// Whether nothing listens on `port` of 127.0.0.1 (and it can be bound).
pub fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

impl Server {
    /// Launches `config` (rendered for its port), writing its output to `log_path`.
    ///
    /// A fixed port already in use is refused before anything starts: the readiness probe
    /// would otherwise pass against whatever holds it.
    pub fn launch(config: &ServerConfig, log_path: &Path) -> Result<Server, ServerError> {
        let argv = config
            .command
            .as_deref()
            .filter(|a| !a.is_empty())
            .expect("launch is only called for a server with a command");
        if let Some(PortChoice::Fixed(port)) = config.port
            && !port_is_free(port)
        {
            return Err(ServerError::PortInUse { port });
        }
        let log_error = |source| ServerError::Log {
            path: log_path.to_path_buf(),
            source,
        };
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir).map_err(log_error)?;
        }
        let log = std::fs::File::create(log_path).map_err(log_error)?;
        let spawned =
            process::spawn(argv, &config.env, config.cwd.as_deref(), &log).map_err(|source| {
                ServerError::Spawn {
                    program: argv[0].clone(),
                    source,
                }
            })?;
        Ok(Server {
            pid: spawned.pid,
            exit: spawned.exit,
            guard: GroupGuard {
                pgid: spawned.pid,
                stop_command: config.stop_command.clone(),
                armed: true,
            },
            config: config.clone(),
            log_path: log_path.to_path_buf(),
            started: Instant::now(),
        })
    }

    /// Process id of the launched command (also its process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// When the launched process started (clock ticks after boot), which with the pid names
    /// it; `None` where `/proc` cannot tell.
    pub fn start_ticks(&self) -> Option<u64> {
        process::proc_stat(self.pid).map(|s| s.start_ticks)
    }

    /// The configuration it was launched with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// How the process ended, once it has.
    pub fn exit(&self) -> Option<String> {
        self.exit.borrow().clone()
    }

    /// The exit status once a repetition has ended. When the kernel already shows the
    /// process ending (exiting, a zombie, or gone) but its exit has not been reaped yet,
    /// waits for it (at most 2 s): a server that died as a repetition ended took that
    /// repetition's last requests with it, so it died during it.
    pub async fn exit_after_run(&self) -> Option<String> {
        if let Some(status) = self.exit() {
            return Some(status);
        }
        if !process::is_ending(self.pid) {
            return None;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.exited()).await;
        Some(
            self.exit()
                .unwrap_or_else(|| "exit status not yet known".into()),
        )
    }

    /// A future that resolves when the process exits.
    pub fn exited(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.exit.clone();
        async move {
            let _ = rx.wait_for(Option::is_some).await;
        }
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> LogTail {
        LogTail::read(&self.log_path)
    }

    /// Waits until the readiness probe passes; returns the time since launch. Fails (and
    /// leaves the server for the caller to stop) when the process exits first or the
    /// timeout passes.
    pub async fn wait_ready(&self) -> Result<Duration, ServerError> {
        let outcome = ready::wait(
            &self.config.ready,
            self.started + self.config.ready_timeout,
            Some(&self.log_path),
            Some(self.exit.clone()),
        )
        .await;
        match outcome {
            Ok(()) => Ok(self.started.elapsed()),
            Err(ready::NotReady::Exited(status)) => Err(ServerError::Exited {
                status,
                tail: self.log_tail(),
            }),
            Err(ready::NotReady::Timeout(last)) => Err(ServerError::NotReady {
                timeout: humantime::format_duration(self.config.ready_timeout).to_string(),
                last,
                tail: self.log_tail(),
            }),
        }
    }

    /// Stops the server: the stop command (if any), SIGTERM to the whole group, SIGKILL to
    /// whatever is left after `stop_grace`, then waits until no process of the group lives.
    pub async fn stop(mut self) -> StopReport {
        let (env, cwd) = (&self.config.env, self.config.cwd.as_deref());
        if let Some(argv) = &self.config.stop_command {
            let _ = process::run_for_output(argv, env, cwd, self.config.stop_grace).await;
        }
        signal_group(self.pid, libc::SIGTERM);
        let gone = wait_gone(self.pid, self.config.stop_grace).await;
        let killed = !gone && signal_group(self.pid, libc::SIGKILL);
        if killed {
            wait_gone(self.pid, Duration::from_secs(5)).await;
        }
        // The watcher reaps the leader right after it dies; give it a moment to say how.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.exited()).await;
        self.guard.armed = false;
        // Servers print their arguments (vLLM: `api_key='…'`): no secret stays in the log.
        crate::secrets::scrub_file(&self.log_path);
        StopReport {
            exit: self.exit(),
            killed,
            strays: group_members(self.pid),
        }
    }
}

/// Waits up to `limit` until no live process is left in the group; true when none is.
async fn wait_gone(pgid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if group_members(pgid).is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
