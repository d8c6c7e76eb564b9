//! How a containerd task ended: exit code and time from containerd, start time and stop request
//! from the container's labels, OOM kills from the cgroup v1 memory controller.
//!
//! OOM evidence: runc leaves a container's cgroup in place until the task is deleted, and the
//! kernel counts OOM kills in `memory.oom_control` (`oom_kill N`, Linux ≥ 4.13). Reading it when
//! the exit is observed (and before the task is deleted) is reliable whether or not the agent was
//! running when the kill happened, unlike the `/tasks/oom` event which a restarted agent misses.

use std::collections::HashMap;
use std::path::Path;

use jiff::Timestamp;

use crate::labels;
use crate::runtime::{ExitStatus, TerminationReason};

/// The `oom_kill` counter of a cgroup v1 `memory.oom_control` file (0 when absent).
pub(crate) fn parse_oom_kill(oom_control: &str) -> u64 {
    oom_control
        .lines()
        .filter_map(|line| line.strip_prefix("oom_kill "))
        .filter_map(|n| n.trim().parse().ok())
        .next()
        .unwrap_or(0)
}

/// Whether the OOM killer killed a process in the cgroup at `memory_cgroup_dir`. A missing
/// cgroup (already deleted, or another cgroup layout) counts as no evidence.
pub(crate) async fn oom_killed(memory_cgroup_dir: &Path) -> bool {
    match tokio::fs::read_to_string(memory_cgroup_dir.join("memory.oom_control")).await {
        Ok(text) => parse_oom_kill(&text) > 0,
        Err(_) => false,
    }
}

/// The start time the agent recorded in the container's labels.
pub(crate) fn started_at(labels: &HashMap<String, String>) -> Option<Timestamp> {
    labels.get(labels::STARTED_AT)?.parse().ok()
}

/// Whether the agent asked the container to stop.
pub(crate) fn stop_requested(labels: &HashMap<String, String>) -> bool {
    labels
        .get(labels::STOP_REQUESTED)
        .is_some_and(|v| v == "true")
}

/// The exit status from containerd's exit code and time plus the label and cgroup evidence.
pub(crate) fn exit_status(
    code: u32,
    finished_at: Option<Timestamp>,
    labels: &HashMap<String, String>,
    oom_killed: bool,
    now: Timestamp,
) -> ExitStatus {
    let code = i32::try_from(code).unwrap_or(i32::MAX);
    ExitStatus {
        code,
        started_at: started_at(labels),
        finished_at: finished_at.unwrap_or(now),
        oom_killed,
        reason: TerminationReason::classify(code, oom_killed, stop_requested(labels)),
        message: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kill_counter_is_read_from_memory_oom_control() {
        let cases = [
            ("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", 2),
            ("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", 0),
            ("oom_kill_disable 0\nunder_oom 0\n", 0),
            ("", 0),
        ];
        for (text, want) in cases {
            assert_eq!(parse_oom_kill(text), want, "{text:?}");
        }
    }

    #[test]
    fn exit_status_combines_code_labels_and_oom_evidence() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:00:05Z".parse().unwrap();
        let started = HashMap::from([(labels::STARTED_AT.to_string(), t0.to_string())]);
        let mut stopped = started.clone();
        stopped.insert(labels::STOP_REQUESTED.into(), "true".into());

        let done = exit_status(0, Some(t1), &started, false, t1);
        assert_eq!(done.reason, TerminationReason::Completed);
        assert_eq!(done.started_at, Some(t0));
        assert_eq!(done.finished_at, t1);

        assert_eq!(
            exit_status(3, Some(t1), &started, false, t1).reason,
            TerminationReason::Error
        );
        let oom = exit_status(137, Some(t1), &started, true, t1);
        assert!(oom.oom_killed);
        assert_eq!(oom.reason, TerminationReason::OomKilled);
        let killed = exit_status(143, None, &stopped, false, t1);
        assert_eq!(killed.reason, TerminationReason::Killed);
        assert_eq!(
            killed.finished_at, t1,
            "missing exit time falls back to now"
        );
        assert_eq!(
            exit_status(0, None, &HashMap::new(), false, t1).started_at,
            None
        );
    }
}
