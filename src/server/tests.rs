//! One server's life with tiny `sh` servers: start failures with the log's tail, slow and
//! never-ready servers, SIGTERM ignored (SIGKILL follows), the stop command, and no process
//! of the group left alive afterwards, whatever path ends the server.

use std::time::{Duration, Instant};

use super::process::group_members;
use super::*;
use crate::scenario::model::{LogPattern, Readiness, RestartPolicy};

fn config(script: &str, ready: Readiness) -> ServerConfig {
    ServerConfig {
        command: Some(vec!["sh".into(), "-c".into(), script.into()]),
        stop_command: None,
        version_command: None,
        env: vec![("FAKE_GREETING".into(), "hello from env".into())],
        cwd: None,
        port: None,
        bound_port: None,
        ready,
        ready_timeout: Duration::from_secs(20),
        warmup_requests: 0,
        stop_grace: Duration::from_secs(5),
        restart: RestartPolicy::PerCell,
        reset_url: None,
    }
}

fn log_ready(text: &str) -> Readiness {
    Readiness::Log(LogPattern::Substring(text.into()))
}

#[tokio::test]
async fn a_server_that_exits_at_start_fails_with_the_tail_of_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("servers/launch-000.log");
    let script =
        "echo \"$FAKE_GREETING\"; echo 'error: unrecognized arguments: --bogus' >&2; exit 2";
    let server = Server::launch(&config(script, log_ready("never")), &log).unwrap();
    let err = server.wait_ready().await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("the server exited (exit status: 2) before it was ready"),
        "{text}"
    );
    assert!(text.contains("| hello from env"), "{text}");
    assert!(
        text.contains("| error: unrecognized arguments: --bogus"),
        "{text}"
    );
    let report = server.stop().await;
    assert_eq!(report.exit.as_deref(), Some("exit status: 2"));
    assert!(report.strays.is_empty());
}

#[tokio::test]
async fn a_slow_server_is_waited_for_and_stopped_with_its_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    // A child in the background: SIGTERM to the group must reach it too.
    let script = "sleep 60 & sleep 0.6; echo 'INFO: server ready on port 1'; wait";
    let server = Server::launch(&config(script, log_ready("server ready")), &log).unwrap();
    let pid = server.pid();
    let took = server.wait_ready().await.unwrap();
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert_eq!(group_members(pid).len(), 2, "sh and its sleep");
    let report = server.stop().await;
    assert!(!report.killed, "{report:?}");
    assert_eq!(report.exit.as_deref(), Some("signal: 15 (SIGTERM)"));
    assert!(group_members(pid).is_empty());
}

#[tokio::test]
async fn a_server_that_never_gets_ready_times_out_with_what_was_seen() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(
        "echo starting; exec sleep 60",
        Readiness::Log(LogPattern::Regex("ready on \\d+".into())),
    );
    cfg.ready_timeout = Duration::from_millis(400);
    let server = Server::launch(&cfg, &dir.path().join("a.log")).unwrap();
    let err = server.wait_ready().await.unwrap_err().to_string();
    assert!(
        err.starts_with(
            "the server was not ready within 400ms (no log line matching /ready on \\d+/ yet)"
        ),
        "{err}"
    );
    assert!(err.contains("| starting"), "{err}");
    let pid = server.pid();
    server.stop().await;
    assert!(group_members(pid).is_empty());
}

#[tokio::test]
async fn a_server_ignoring_sigterm_gets_sigkill_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config("trap '' TERM; sleep 60 & echo up; wait", log_ready("up"));
    cfg.stop_grace = Duration::from_millis(300);
    let server = Server::launch(&cfg, &dir.path().join("a.log")).unwrap();
    server.wait_ready().await.unwrap();
    let pid = server.pid();
    let t = Instant::now();
    let report = server.stop().await;
    assert!(report.killed, "{report:?}");
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(report.exit.as_deref(), Some("signal: 9 (SIGKILL)"));
    assert!(report.strays.is_empty() && group_members(pid).is_empty());
}

#[tokio::test]
async fn dropping_a_server_kills_its_group_and_runs_the_stop_command() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("stopped");
    let mut cfg = config("sleep 60 & echo up; wait", log_ready("up"));
    cfg.stop_command = Some(vec!["touch".into(), marker.display().to_string()]);
    let server = Server::launch(&cfg, &dir.path().join("a.log")).unwrap();
    server.wait_ready().await.unwrap();
    let pid = server.pid();
    drop(server);
    assert!(group_members(pid).is_empty());
    assert!(marker.exists(), "the stop command ran");
}

#[tokio::test]
async fn url_readiness_version_command_and_a_taken_port() {
    let fixed = crate::serve::FixedTiming::new(Duration::ZERO, Duration::ZERO);
    let http = crate::serve::spawn_fixed("127.0.0.1:0".parse().unwrap(), fixed)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}/health", http.addr());
    let mut cfg = config("exec sleep 60", Readiness::Url(url));
    cfg.version_command = Some(vec![
        "sh".into(),
        "-c".into(),
        "echo; echo 'engine 1.2.3'".into(),
    ]);
    let server = Server::launch(&cfg, &dir.path().join("a.log")).unwrap();
    server.wait_ready().await.unwrap();
    assert_eq!(
        engine_version(&cfg, None).await.as_deref(),
        Some("engine 1.2.3")
    );
    server.stop().await;

    cfg.port = Some(PortChoice::Fixed(http.addr().port()));
    let err = Server::launch(&cfg, &dir.path().join("b.log")).unwrap_err();
    assert!(matches!(err, ServerError::PortInUse { .. }), "{err}");
    cfg.command = Some(vec!["/nonexistent/vllm".into()]);
    cfg.port = None;
    let err = Server::launch(&cfg, &dir.path().join("c.log"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot start `/nonexistent/vllm`: No such file"),
        "{err}"
    );
}

/// The parent-death signal fires when the thread that spawned the server ends: a launch asked
/// for from a thread that then ends (as tokio's blocking-pool threads do after 10 s idle)
/// must not stop the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_outlives_the_thread_that_launched_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("servers/launch-000.log");
    let cfg = config("echo ready; exec sleep 30", log_ready("ready"));
    let runtime = tokio::runtime::Handle::current();
    let server = std::thread::spawn(move || {
        let _entered = runtime.enter();
        Server::launch(&cfg, &log).unwrap()
    })
    .join()
    .unwrap();
    server.wait_ready().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.exit(), None, "the server was signalled");
    let stop = server.stop().await;
    assert_eq!(stop.exit.as_deref(), Some("signal: 15 (SIGTERM)"));
}
