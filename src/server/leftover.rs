//! Servers left running by an exp that did not stop them (`kill -9`, a crash, a power-cut
//! client): `exp run --resume` finds each launch of the run directory that was never recorded
//! as stopped and stops its process group if it still lives, before launching anything.
//!
//! A group is this launch's when its leader is the same process (same pid and start time),
//! or when the leader is gone and members of its group remain: Linux does not hand out a pid
//! that is still some group's id, so the group is still the one the launch made. A leader
//! with the pid but another start time is someone else's process, and is left alone.

use std::time::Duration;

use super::process::{group_members, proc_stat, signal_group};

/// What became of a launch's process group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    /// Nothing of it lives (the parent-death signal did its job, or it ended on its own).
    Gone,
    /// The pid now names another process: not touched.
    Reused,
    /// It was running and got SIGTERM; `killed` when SIGKILL had to follow after `grace`.
    Stopped {
        /// Live members found.
        members: Vec<u32>,
        /// SIGKILL was needed.
        killed: bool,
    },
}

/// Stops what is left of the group of the launch whose leader was `pid`, started at
/// `start_ticks` (unknown for run directories written before it was recorded: then only a
/// group whose leader is gone is stopped).
pub async fn stop_leftover(pid: u32, start_ticks: Option<u64>, grace: Duration) -> Leftover {
    let ours = match (proc_stat(pid), start_ticks) {
        (Some(leader), Some(start)) => leader.start_ticks == start,
        (Some(_), None) => false,
        (None, _) => true,
    };
    if !ours {
        return Leftover::Reused;
    }
    let members = group_members(pid);
    if members.is_empty() {
        return Leftover::Gone;
    }
    signal_group(pid, libc::SIGTERM);
    let gone = super::wait_gone(pid, grace).await;
    let killed = !gone && signal_group(pid, libc::SIGKILL);
    if killed {
        super::wait_gone(pid, Duration::from_secs(5)).await;
    }
    Leftover::Stopped { members, killed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// `sh -c script` in a group of its own; returns the leader's pid.
    fn group(script: &str) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap()
    }

    #[tokio::test]
    async fn a_live_group_of_the_same_process_is_stopped_and_another_process_is_not() {
        let mut child = group("sleep 30 & wait");
        let pid = child.id();
        // Lets the shell start its `sleep`.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let start = proc_stat(pid).unwrap().start_ticks;
        // Another start time: the pid would be someone else's now.
        let other = stop_leftover(pid, Some(start + 1), Duration::from_secs(1)).await;
        assert_eq!(other, Leftover::Reused);
        assert!(!group_members(pid).is_empty());
        let stopped = stop_leftover(pid, Some(start), Duration::from_secs(5)).await;
        assert!(
            matches!(&stopped, Leftover::Stopped { members, killed: false } if members.len() == 2),
            "{stopped:?}"
        );
        assert!(group_members(pid).is_empty());
        let _ = child.wait();
        assert_eq!(
            stop_leftover(pid, Some(start), Duration::from_secs(1)).await,
            Leftover::Gone
        );
    }

    #[tokio::test]
    async fn members_whose_leader_is_gone_are_stopped() {
        // The leader exits at once; its background `sleep` stays in the group.
        let mut child = group("sleep 30 & exit 0");
        let pid = child.id();
        let _ = child.wait();
        let left = stop_leftover(pid, Some(1), Duration::from_secs(5)).await;
        assert!(
            matches!(&left, Leftover::Stopped { members, .. } if members.len() == 1),
            "{left:?}"
        );
        assert!(group_members(pid).is_empty());
    }
}
