//! What the agent reports for a Pod: the Titus executor state (§13.1) derived from the runtime's
//! container state, and the Pod status it maps to, in the shape the Titus control plane reads
//! (§10.6: `status.reason` `TASK_STARTING` with a waiting container is StartInitiated, phase
//! Running is Started, terminal phases are Finished). Pure.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerState as K8sContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::runtime::{ContainerState, ExitStatus, TerminationReason};

/// Name of a Titus task's main container.
pub const MAIN_CONTAINER: &str = "main";

/// The executor's view of one task (titus-executor states).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// Pulling the image, creating or starting the container.
    Starting,
    /// The main process runs.
    Running {
        /// When it started.
        started_at: Timestamp,
    },
    /// Exited 0 on its own.
    Finished(ExitStatus),
    /// Exited non-zero on its own, or could not be started (bad image, bad command).
    Failed {
        /// The exit, when the container ran.
        exit: Option<ExitStatus>,
        /// Why.
        message: String,
    },
    /// Ended because the control plane asked (Pod deleted).
    Killed {
        /// The exit, when the container ran.
        exit: Option<ExitStatus>,
    },
    /// The runtime lost the container.
    Lost {
        /// Why.
        message: String,
    },
}

impl TaskState {
    /// The Pod `status.reason` the executor reports.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Starting => "TASK_STARTING",
            Self::Running { .. } => "TASK_RUNNING",
            Self::Finished(_) => "TASK_FINISHED",
            Self::Failed { .. } => "TASK_FAILED",
            Self::Killed { .. } => "TASK_KILLED",
            Self::Lost { .. } => "TASK_LOST",
        }
    }

    /// Whether the task is over.
    pub fn is_terminal(&self) -> bool {
        match self {
            Self::Starting | Self::Running { .. } => false,
            Self::Finished(_) | Self::Failed { .. } | Self::Killed { .. } | Self::Lost { .. } => {
                true
            }
        }
    }

    /// The Pod phase.
    pub fn phase(&self) -> &'static str {
        match self {
            Self::Starting => "Pending",
            Self::Running { .. } => "Running",
            Self::Finished(_) => "Succeeded",
            Self::Failed { .. } | Self::Killed { .. } | Self::Lost { .. } => "Failed",
        }
    }
}

/// The executor state from the runtime's container state.
///
/// `kill_requested`: the Pod is being deleted. A container that exited on its own before the
/// kill took effect reports how it exited (Titus: a task that exited by itself while a kill
/// arrived is `Finished`).
pub fn task_state(container: Option<&ContainerState>, kill_requested: bool) -> TaskState {
    match container {
        None | Some(ContainerState::Created) => TaskState::Starting,
        Some(ContainerState::Running { started_at, .. }) => TaskState::Running {
            started_at: *started_at,
        },
        Some(ContainerState::Exited(exit)) => match exit.reason {
            TerminationReason::Killed if kill_requested => TaskState::Killed {
                exit: Some(exit.clone()),
            },
            TerminationReason::Completed => TaskState::Finished(exit.clone()),
            TerminationReason::Killed | TerminationReason::Error | TerminationReason::OomKilled => {
                TaskState::Failed {
                    exit: Some(exit.clone()),
                    message: exit_message(exit),
                }
            }
        },
    }
}

/// The human message of a failed exit.
pub fn exit_message(exit: &ExitStatus) -> String {
    if !exit.message.is_empty() {
        return exit.message.clone();
    }
    match exit.reason {
        TerminationReason::OomKilled => format!(
            "container was OOM killed (memory limit exceeded), exit code {}",
            exit.code
        ),
        TerminationReason::Killed => format!("container was killed, exit code {}", exit.code),
        TerminationReason::Completed | TerminationReason::Error => {
            format!("container exited with code {}", exit.code)
        }
    }
}

fn terminated(exit: &ExitStatus, reason: &str, container_id: &str) -> ContainerStateTerminated {
    ContainerStateTerminated {
        container_id: Some(container_id.to_owned()),
        exit_code: exit.code,
        finished_at: Some(Time(exit.finished_at)),
        message: (!exit.message.is_empty()).then(|| exit.message.clone()),
        reason: Some(reason.to_owned()),
        signal: (exit.code > 128 && exit.code < 160).then_some(exit.code - 128),
        started_at: exit.started_at.map(Time),
    }
}

/// What a status report needs besides the task state.
#[derive(Debug, Clone, Copy)]
pub struct StatusReport<'a> {
    /// The main container's image reference.
    pub image: &'a str,
    /// The runtime container (`containerd://<id>`).
    pub container_id: &'a str,
    /// The node's address (`status.hostIP`).
    pub host_ip: &'a str,
    /// The status the Pod has now: its `startTime` and unchanged conditions' transition times
    /// are kept.
    pub previous: Option<&'a PodStatus>,
    /// The time of the report.
    pub now: Timestamp,
}

/// A condition whose transition time is kept from `previous` when its status did not change.
fn condition(
    type_: &str,
    status: bool,
    reason: Option<&str>,
    report: &StatusReport<'_>,
) -> PodCondition {
    let status = if status { "True" } else { "False" }.to_owned();
    let unchanged_since = report
        .previous
        .and_then(|p| p.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_ && c.status == status))
        .and_then(|c| c.last_transition_time.clone());
    PodCondition {
        type_: type_.to_owned(),
        status,
        last_transition_time: unchanged_since.or(Some(Time(report.now))),
        reason: reason.map(str::to_owned),
        ..PodCondition::default()
    }
}

/// The Pod status for `state`. `status.startTime` is when the agent first reported the Pod
/// (kept across reports and agent restarts).
pub fn pod_status(state: &TaskState, report: &StatusReport<'_>) -> PodStatus {
    let (container_id, now) = (report.container_id, report.now);
    let waiting = |reason: &str, message: Option<String>| K8sContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_owned()),
            message,
        }),
        ..K8sContainerState::default()
    };
    let terminated_state = |t: ContainerStateTerminated| K8sContainerState {
        terminated: Some(t),
        ..K8sContainerState::default()
    };
    let no_exit = |message: &str| ContainerStateTerminated {
        container_id: None,
        exit_code: 128,
        finished_at: Some(Time(now)),
        message: Some(message.to_owned()),
        reason: Some("ContainerCannotRun".to_owned()),
        ..ContainerStateTerminated::default()
    };
    let (container_state, message) = match state {
        TaskState::Starting => (
            waiting("TASK_STARTING", None),
            "creating main container".into(),
        ),
        TaskState::Running { started_at } => (
            K8sContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(Time(*started_at)),
                }),
                ..K8sContainerState::default()
            },
            format!("main container ({container_id}) started"),
        ),
        TaskState::Finished(exit) => (
            terminated_state(terminated(exit, exit.reason.as_str(), container_id)),
            "main container completed".into(),
        ),
        TaskState::Failed { exit, message } => (
            terminated_state(match exit {
                Some(exit) => terminated(exit, exit.reason.as_str(), container_id),
                None => no_exit(message),
            }),
            message.clone(),
        ),
        TaskState::Killed { exit } => (
            terminated_state(match exit {
                Some(exit) => terminated(exit, "Killed", container_id),
                None => no_exit("killed before it started"),
            }),
            "Pod killed on behalf of the control plane".into(),
        ),
        TaskState::Lost { message } => (terminated_state(no_exit(message)), message.clone()),
    };
    let running = matches!(state, TaskState::Running { .. });
    let container = ContainerStatus {
        name: MAIN_CONTAINER.to_owned(),
        image: report.image.to_owned(),
        image_id: String::new(),
        container_id: Some(container_id.to_owned()),
        ready: running,
        started: Some(running),
        restart_count: 0,
        state: Some(container_state),
        ..ContainerStatus::default()
    };
    let ready_reason = (!running).then_some(if state.is_terminal() {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    });
    let start_time = report
        .previous
        .and_then(|p| p.start_time.clone())
        .unwrap_or(Time(now));
    PodStatus {
        phase: Some(state.phase().to_owned()),
        reason: Some(state.reason().to_owned()),
        message: Some(message),
        start_time: Some(start_time),
        host_ip: Some(report.host_ip.to_owned()),
        conditions: Some(vec![
            condition("PodScheduled", true, None, report),
            condition("Initialized", true, None, report),
            condition("ContainersReady", running, ready_reason, report),
            condition("Ready", running, ready_reason, report),
        ]),
        container_statuses: Some(vec![container]),
        ..PodStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn status_at(state: &TaskState, previous: Option<&PodStatus>, now: Timestamp) -> PodStatus {
        pod_status(
            state,
            &StatusReport {
                image: "img",
                container_id: "containerd://t1",
                host_ip: "10.0.0.1",
                previous,
                now,
            },
        )
    }

    fn exit(code: i32, reason: TerminationReason) -> ExitStatus {
        ExitStatus {
            code,
            started_at: Some(ts("2026-01-01T00:00:00Z")),
            finished_at: ts("2026-01-01T00:01:00Z"),
            oom_killed: reason == TerminationReason::OomKilled,
            reason,
            message: String::new(),
        }
    }

    #[test]
    fn task_state_follows_the_container_and_the_kill_request() {
        use TerminationReason::*;
        let t0 = ts("2026-01-01T00:00:00Z");
        let running = ContainerState::Running {
            started_at: t0,
            pid: Some(1),
        };
        let cases: Vec<(Option<ContainerState>, bool, &str)> = vec![
            (None, false, "TASK_STARTING"),
            (Some(ContainerState::Created), false, "TASK_STARTING"),
            (Some(running.clone()), false, "TASK_RUNNING"),
            (Some(running), true, "TASK_RUNNING"),
            (
                Some(ContainerState::Exited(exit(0, Completed))),
                false,
                "TASK_FINISHED",
            ),
            (
                Some(ContainerState::Exited(exit(0, Completed))),
                true,
                "TASK_FINISHED",
            ),
            (
                Some(ContainerState::Exited(exit(3, Error))),
                false,
                "TASK_FAILED",
            ),
            (
                Some(ContainerState::Exited(exit(3, Error))),
                true,
                "TASK_FAILED",
            ),
            (
                Some(ContainerState::Exited(exit(137, OomKilled))),
                true,
                "TASK_FAILED",
            ),
            (
                Some(ContainerState::Exited(exit(143, Killed))),
                true,
                "TASK_KILLED",
            ),
            // Stopped by an earlier agent run for a kill this Pod no longer shows.
            (
                Some(ContainerState::Exited(exit(143, Killed))),
                false,
                "TASK_FAILED",
            ),
        ];
        for (container, kill, reason) in cases {
            assert_eq!(
                task_state(container.as_ref(), kill).reason(),
                reason,
                "{container:?} kill={kill}"
            );
        }
    }

    #[test]
    fn pod_status_has_the_phase_reason_and_container_state_titus_reads() {
        let t0 = ts("2026-01-01T00:00:00Z");
        let now = ts("2026-01-01T00:02:00Z");
        let cases = [
            (TaskState::Starting, "Pending", "TASK_STARTING", "waiting"),
            (
                TaskState::Running { started_at: t0 },
                "Running",
                "TASK_RUNNING",
                "running",
            ),
            (
                TaskState::Finished(exit(0, TerminationReason::Completed)),
                "Succeeded",
                "TASK_FINISHED",
                "terminated",
            ),
            (
                TaskState::Failed {
                    exit: None,
                    message: "image x not found".into(),
                },
                "Failed",
                "TASK_FAILED",
                "terminated",
            ),
            (
                TaskState::Killed {
                    exit: Some(exit(143, TerminationReason::Killed)),
                },
                "Failed",
                "TASK_KILLED",
                "terminated",
            ),
            (
                TaskState::Lost {
                    message: "gone".into(),
                },
                "Failed",
                "TASK_LOST",
                "terminated",
            ),
        ];
        for (state, phase, reason, kind) in cases {
            let status = status_at(&state, None, now);
            assert_eq!(status.phase.as_deref(), Some(phase));
            assert_eq!(status.reason.as_deref(), Some(reason));
            let c = &status.container_statuses.as_ref().unwrap()[0];
            assert_eq!(c.name, "main");
            let s = c.state.as_ref().unwrap();
            let got = if s.waiting.is_some() {
                "waiting"
            } else if s.running.is_some() {
                "running"
            } else {
                "terminated"
            };
            assert_eq!(got, kind, "{reason}");
            let ready = status
                .conditions
                .as_ref()
                .unwrap()
                .iter()
                .find(|c| c.type_ == "Ready")
                .unwrap();
            assert_eq!(ready.status == "True", phase == "Running", "{reason}");
        }
    }

    #[test]
    fn waiting_container_carries_task_starting_so_titus_sees_start_initiated() {
        let t0 = ts("2026-01-01T00:00:00Z");
        let status = status_at(&TaskState::Starting, None, t0);
        let waiting = status.container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .waiting
            .unwrap();
        assert_eq!(waiting.reason.as_deref(), Some("TASK_STARTING"));
    }

    #[test]
    fn terminated_state_carries_exit_code_times_signal_and_oom_reason() {
        let t0 = ts("2026-01-01T00:00:00Z");
        let oom = exit(137, TerminationReason::OomKilled);
        let state = task_state(Some(&ContainerState::Exited(oom.clone())), false);
        let status = status_at(&state, None, t0);
        let t = status.container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .terminated
            .unwrap();
        assert_eq!(t.exit_code, 137);
        assert_eq!(t.signal, Some(9));
        assert_eq!(t.reason.as_deref(), Some("OOMKilled"));
        assert_eq!(t.started_at, oom.started_at.map(Time));
        assert_eq!(t.finished_at, Some(Time(oom.finished_at)));
        assert!(status.message.unwrap().contains("OOM"));
    }

    #[test]
    fn start_time_and_unchanged_condition_times_are_kept_across_reports() {
        let t0 = ts("2026-01-01T00:00:00Z");
        let t1 = ts("2026-01-01T00:00:09Z");
        let starting = status_at(&TaskState::Starting, None, t0);
        let running = status_at(&TaskState::Running { started_at: t1 }, Some(&starting), t1);
        assert_eq!(running.start_time, Some(Time(t0)));
        assert_eq!(running.host_ip.as_deref(), Some("10.0.0.1"));
        let time_of = |s: &PodStatus, type_: &str| {
            s.conditions
                .as_ref()
                .unwrap()
                .iter()
                .find(|c| c.type_ == type_)
                .unwrap()
                .last_transition_time
                .clone()
        };
        assert_eq!(time_of(&running, "PodScheduled"), Some(Time(t0)));
        assert_eq!(time_of(&running, "Ready"), Some(Time(t1)));
    }
}
