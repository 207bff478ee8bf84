//! Which exp process runs a run, so that a run whose manifest still says `running` after
//! that process was killed (`kill -9`, a crash, a lost machine) reads as interrupted in
//! `exp report` and `exp compare`, not as running.

use crate::server::process::proc_stat;
use crate::store::{Manifest, RunStatus, Session};

/// This process.
pub fn current() -> Session {
    let pid = std::process::id();
    Session {
        host: super::finish::hostname(),
        pid,
        start_ticks: proc_stat(pid).map(|s| s.start_ticks),
    }
}

/// A `running` run whose session is gone, on this host, is shown as interrupted (in memory:
/// the manifest on disk is the record of what the process wrote). On another host, or for a
/// manifest that names no session, nothing can be told and it stays as written.
pub fn settle(manifest: &mut Manifest) {
    if manifest.status != RunStatus::Running {
        return;
    }
    let Some(session) = &manifest.session else {
        return;
    };
    if session.host != super::finish::hostname() {
        return;
    }
    let alive = proc_stat(session.pid)
        .is_some_and(|s| session.start_ticks.is_none_or(|t| t == s.start_ticks));
    if !alive {
        manifest.status = RunStatus::Interrupted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(session: Option<Session>) -> Manifest {
        let text = include_str!("../../tests/fixtures/rundirs/fx_batch/manifest.json");
        let mut m: Manifest = serde_json::from_str(text).unwrap();
        m.status = RunStatus::Running;
        m.session = session;
        m
    }

    #[test]
    fn a_running_run_whose_process_is_gone_reads_as_interrupted() {
        // This process is alive: still running.
        let mut live = manifest(Some(current()));
        settle(&mut live);
        assert_eq!(live.status, RunStatus::Running);
        // Same pid, another start time: the pid was reused, the session is gone.
        let mut reused = current();
        reused.start_ticks = reused.start_ticks.map(|t| t + 1);
        let mut gone = manifest(Some(reused));
        settle(&mut gone);
        assert_eq!(gone.status, RunStatus::Interrupted);
        // No session recorded (exp 0.1), or another host: cannot tell.
        let mut old = manifest(None);
        settle(&mut old);
        assert_eq!(old.status, RunStatus::Running);
        let mut elsewhere = current();
        elsewhere.host = Some("another-host".into());
        elsewhere.pid = u32::MAX;
        let mut far = manifest(Some(elsewhere));
        settle(&mut far);
        assert_eq!(far.status, RunStatus::Running);
    }
}
