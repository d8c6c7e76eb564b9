//! The per-Pod decision: from what the API says about a Pod bound to this node and what the
//! runtime says about its container, the actions that bring them together. Pure and
//! level-triggered: the same observation always gives the same plan, so a restarted agent simply
//! decides again.

use std::time::Duration;

use k8s_openapi::api::core::v1::PodStatus;

use super::status::{TaskState, task_state};
use crate::runtime::ContainerState;

/// What the agent reads from one Pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodView {
    /// The Pod is being deleted (`metadata.deletionTimestamp` set): the control plane kills it.
    pub deleting: bool,
    /// Grace period for the kill: `metadata.deletionGracePeriodSeconds`, else
    /// `spec.terminationGracePeriodSeconds`.
    pub grace: Duration,
    /// The status the Pod has now.
    pub reported: Option<PodStatus>,
}

/// What the agent knows locally about the Pod's container.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LocalView {
    /// The container as the runtime reports it; `None` when there is none.
    pub container: Option<ContainerState>,
    /// Why creating it failed (image not found, bad command): the task failed without running.
    pub start_error: Option<String>,
    /// A stop is already in progress.
    pub stopping: bool,
    /// A start is already in progress.
    pub starting: bool,
}

/// One step of a plan, executed in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Pull the image, create and start the container.
    Start,
    /// Stop the container (SIGTERM, SIGKILL after `grace`).
    Stop {
        /// Grace period.
        grace: Duration,
    },
    /// Write this state to the Pod's status.
    Report(TaskState),
    /// Remove the container (its logs stay).
    RemoveContainer,
    /// Delete the Pod object with grace period 0: the kill is complete.
    DeletePod,
}

fn reported_phase(reported: Option<&PodStatus>) -> Option<&str> {
    reported.and_then(|s| s.phase.as_deref())
}

fn reported_reason(reported: Option<&PodStatus>) -> Option<&str> {
    reported.and_then(|s| s.reason.as_deref())
}

/// Whether the Pod status already shows `state` (phase and Titus reason).
pub fn reported_matches(reported: Option<&PodStatus>, state: &TaskState) -> bool {
    reported_phase(reported) == Some(state.phase())
        && reported_reason(reported) == Some(state.reason())
}

/// The plan for one Pod (`None`: the Pod no longer exists) and its container.
pub fn decide(pod: Option<&PodView>, local: &LocalView) -> Vec<Action> {
    let Some(pod) = pod else {
        // Orphan: the Pod is gone (force-deleted, or deleted while the agent was down).
        return match &local.container {
            None => vec![],
            Some(ContainerState::Running { .. } | ContainerState::Created) if !local.stopping => {
                vec![
                    Action::Stop {
                        grace: Duration::ZERO,
                    },
                    Action::RemoveContainer,
                ]
            }
            Some(ContainerState::Running { .. } | ContainerState::Created) => vec![],
            Some(ContainerState::Exited(_)) => vec![Action::RemoveContainer],
        };
    };
    let reported = pod.reported.as_ref();
    let already_terminal = matches!(reported_phase(reported), Some("Succeeded" | "Failed"));
    let state = match &local.start_error {
        Some(message) => TaskState::Failed {
            exit: None,
            message: message.clone(),
        },
        None => task_state(local.container.as_ref(), pod.deleting),
    };
    let mut plan = Vec::new();
    let report = |plan: &mut Vec<Action>, state: TaskState| {
        if !reported_matches(reported, &state) {
            plan.push(Action::Report(state));
        }
    };

    if pod.deleting {
        match &local.container {
            Some(ContainerState::Running { .. } | ContainerState::Created) => {
                if !local.stopping {
                    plan.push(Action::Stop { grace: pod.grace });
                }
            }
            Some(ContainerState::Exited(_)) => {
                report(&mut plan, state);
                plan.extend([Action::RemoveContainer, Action::DeletePod]);
            }
            None if local.starting => {}
            None => {
                let final_state = if already_terminal || local.start_error.is_some() {
                    state
                } else {
                    TaskState::Killed { exit: None }
                };
                if !already_terminal {
                    report(&mut plan, final_state);
                }
                plan.push(Action::DeletePod);
            }
        }
        return plan;
    }

    match &local.container {
        None if local.start_error.is_some() => report(&mut plan, state),
        None if local.starting => {}
        // Finished earlier and already cleaned up: never start a task twice.
        None if already_terminal => {}
        None if reported_phase(reported) == Some("Running") => report(
            &mut plan,
            TaskState::Lost {
                message: "the container disappeared from the runtime".into(),
            },
        ),
        None => {
            report(&mut plan, TaskState::Starting);
            plan.push(Action::Start);
        }
        // Created but never started, and no start in progress: an earlier agent died between
        // create and start. It never ran, so it is safe to create it again.
        Some(ContainerState::Created) if !local.starting => {
            plan.push(Action::RemoveContainer);
            report(&mut plan, TaskState::Starting);
            plan.push(Action::Start);
        }
        // A container that ran and exited before Running was reported (a short task): report
        // Running first, so that the control plane sees Started before Finished.
        Some(ContainerState::Exited(exit))
            if !already_terminal && reported_reason(reported) != Some("TASK_RUNNING") =>
        {
            if let Some(started_at) = exit.started_at {
                report(&mut plan, TaskState::Running { started_at });
            }
            report(&mut plan, state);
        }
        Some(_) => report(&mut plan, state),
    }
    plan
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::runtime::{ExitStatus, TerminationReason};

    fn t0() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn status(phase: &str, reason: &str) -> Option<PodStatus> {
        Some(PodStatus {
            phase: Some(phase.into()),
            reason: Some(reason.into()),
            ..PodStatus::default()
        })
    }

    fn pod(deleting: bool, reported: Option<PodStatus>) -> PodView {
        PodView {
            deleting,
            grace: Duration::from_secs(30),
            reported,
        }
    }

    fn exited(code: i32, reason: TerminationReason) -> Option<ContainerState> {
        Some(ContainerState::Exited(ExitStatus {
            code,
            started_at: Some(t0()),
            finished_at: t0(),
            oom_killed: false,
            reason,
            message: String::new(),
        }))
    }

    fn running() -> Option<ContainerState> {
        Some(ContainerState::Running {
            started_at: t0(),
            pid: Some(7),
        })
    }

    fn local(container: Option<ContainerState>) -> LocalView {
        LocalView {
            container,
            ..LocalView::default()
        }
    }

    fn reasons(plan: &[Action]) -> Vec<String> {
        plan.iter()
            .map(|a| match a {
                Action::Start => "Start".to_string(),
                Action::Stop { grace } => format!("Stop({}s)", grace.as_secs()),
                Action::Report(s) => format!("Report({})", s.reason()),
                Action::RemoveContainer => "RemoveContainer".to_string(),
                Action::DeletePod => "DeletePod".to_string(),
            })
            .collect()
    }

    #[test]
    fn one_rule_per_case() {
        let start_failed = LocalView {
            start_error: Some("image x not found".into()),
            ..LocalView::default()
        };
        let stopping = LocalView {
            container: running(),
            stopping: true,
            ..LocalView::default()
        };
        let starting = LocalView {
            starting: true,
            ..LocalView::default()
        };
        let cases: Vec<(&str, Option<PodView>, LocalView, Vec<&str>)> = vec![
            (
                "new pod: report starting, then start",
                Some(pod(false, None)),
                local(None),
                vec!["Report(TASK_STARTING)", "Start"],
            ),
            (
                "start in flight: wait",
                Some(pod(false, status("Pending", "TASK_STARTING"))),
                starting.clone(),
                vec![],
            ),
            (
                "running: report running",
                Some(pod(false, status("Pending", "TASK_STARTING"))),
                local(running()),
                vec!["Report(TASK_RUNNING)"],
            ),
            (
                "running and reported: nothing",
                Some(pod(false, status("Running", "TASK_RUNNING"))),
                local(running()),
                vec![],
            ),
            (
                "exit 0: finished",
                Some(pod(false, status("Running", "TASK_RUNNING"))),
                local(exited(0, TerminationReason::Completed)),
                vec!["Report(TASK_FINISHED)"],
            ),
            (
                "short task exited before Running was reported: running, then finished",
                Some(pod(false, status("Pending", "TASK_STARTING"))),
                local(exited(0, TerminationReason::Completed)),
                vec!["Report(TASK_RUNNING)", "Report(TASK_FINISHED)"],
            ),
            (
                "exit 3: failed",
                Some(pod(false, status("Running", "TASK_RUNNING"))),
                local(exited(3, TerminationReason::Error)),
                vec!["Report(TASK_FAILED)"],
            ),
            (
                "bad image: failed, no start",
                Some(pod(false, status("Pending", "TASK_STARTING"))),
                start_failed.clone(),
                vec!["Report(TASK_FAILED)"],
            ),
            (
                "finished and cleaned up: never start again",
                Some(pod(false, status("Succeeded", "TASK_FINISHED"))),
                local(None),
                vec![],
            ),
            (
                "was running, container gone: lost",
                Some(pod(false, status("Running", "TASK_RUNNING"))),
                local(None),
                vec!["Report(TASK_LOST)"],
            ),
            (
                "kill: stop with the grace period",
                Some(pod(true, status("Running", "TASK_RUNNING"))),
                local(running()),
                vec!["Stop(30s)"],
            ),
            (
                "kill in progress: wait",
                Some(pod(true, status("Running", "TASK_RUNNING"))),
                stopping,
                vec![],
            ),
            (
                "killed: report, remove, delete pod",
                Some(pod(true, status("Running", "TASK_RUNNING"))),
                local(exited(143, TerminationReason::Killed)),
                vec!["Report(TASK_KILLED)", "RemoveContainer", "DeletePod"],
            ),
            (
                "exited by itself during the kill: finished",
                Some(pod(true, status("Running", "TASK_RUNNING"))),
                local(exited(0, TerminationReason::Completed)),
                vec!["Report(TASK_FINISHED)", "RemoveContainer", "DeletePod"],
            ),
            (
                "kill before start: killed, delete pod",
                Some(pod(true, None)),
                local(None),
                vec!["Report(TASK_KILLED)", "DeletePod"],
            ),
            (
                "kill while starting: wait for the start",
                Some(pod(true, None)),
                starting,
                vec![],
            ),
            (
                "kill after finish and cleanup: delete pod",
                Some(pod(true, status("Succeeded", "TASK_FINISHED"))),
                local(None),
                vec!["DeletePod"],
            ),
            (
                "kill after a failed start: delete pod",
                Some(pod(true, status("Failed", "TASK_FAILED"))),
                start_failed,
                vec!["DeletePod"],
            ),
            (
                "orphan running: stop now and remove",
                None,
                local(running()),
                vec!["Stop(0s)", "RemoveContainer"],
            ),
            (
                "orphan exited: remove",
                None,
                local(exited(0, TerminationReason::Completed)),
                vec!["RemoveContainer"],
            ),
            ("nothing at all", None, local(None), vec![]),
        ];
        for (name, pod, local, want) in cases {
            assert_eq!(reasons(&decide(pod.as_ref(), &local)), want, "{name}");
        }
    }
}
