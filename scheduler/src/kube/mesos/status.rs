//! A Mesos task status update as the Pod status a Titus agent would report (§13.1), so the
//! task controller sees the same lifecycle on a Mesos agent as on any node. Pure.
//!
//! | Mesos | phase | `status.reason` | main container |
//! | --- | --- | --- | --- |
//! | `TASK_STAGING`, `TASK_KILLING`, `TASK_UNREACHABLE` | no change | | |
//! | `TASK_STARTING` | Pending | `TASK_STARTING` | waiting `TASK_STARTING` |
//! | `TASK_RUNNING` | Running | `TASK_RUNNING` | running |
//! | `TASK_FINISHED` | Succeeded | `TASK_FINISHED` | terminated, exit 0 |
//! | `TASK_FAILED` | Failed | `TASK_FAILED` | terminated, the exit status in the message, else 1 |
//! | `TASK_ERROR` | Failed | `TASK_FAILED` | terminated, 128 (never ran) |
//! | `TASK_KILLED` | Failed | `TASK_KILLED` | terminated, the exit status in the message, else 137 |
//! | `TASK_LOST`, `TASK_DROPPED`, `TASK_GONE`, `TASK_GONE_BY_OPERATOR`, `TASK_UNKNOWN` | Failed | `TASK_LOST` | terminated, 128 |
//!
//! `status.message` is `<Mesos state> (<reason>): <message>`, so the precise Mesos state stays
//! visible to the task controller's message patterns (Titus refined reasons from messages).

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use titus_crds::constants::MAIN_CONTAINER_NAME;

use crate::mesos::framework::StatusUpdate;
use crate::mesos::types::TaskState;

/// What a status update means for the Pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Report {
    Starting,
    Running,
    Finished,
    Failed { exit: i32 },
    Killed { exit: i32 },
    Lost,
}

fn report(update: &StatusUpdate) -> Option<Report> {
    let exit = update.message.as_deref().and_then(exit_status);
    match update.state {
        TaskState::TaskStaging
        | TaskState::TaskKilling
        | TaskState::TaskUnreachable
        | TaskState::Unrecognized => None,
        TaskState::TaskStarting => Some(Report::Starting),
        TaskState::TaskRunning => Some(Report::Running),
        TaskState::TaskFinished => Some(Report::Finished),
        TaskState::TaskFailed => Some(Report::Failed {
            exit: exit.unwrap_or(1),
        }),
        TaskState::TaskError => Some(Report::Failed { exit: 128 }),
        TaskState::TaskKilled => Some(Report::Killed {
            exit: exit.unwrap_or(137),
        }),
        TaskState::TaskLost
        | TaskState::TaskDropped
        | TaskState::TaskGone
        | TaskState::TaskGoneByOperator
        | TaskState::TaskUnknown => Some(Report::Lost),
    }
}

/// `Command exited with status 3` → 3; `... terminated with signal Killed` → none.
fn exit_status(message: &str) -> Option<i32> {
    let rest = &message[message.find("exited with status ")? + "exited with status ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The Pod status a Titus agent would write for `update`; `None` when the update changes
/// nothing (staging, killing, unreachable). `started` is when the task was launched.
pub fn pod_status(
    update: &StatusUpdate,
    image: &str,
    started: Option<Timestamp>,
    now: Timestamp,
) -> Option<PodStatus> {
    let report = report(update)?;
    let container_id = format!("mesos://{}", update.task_id);
    let message = {
        let mut m = update.state.as_str().to_string();
        if let Some(reason) = &update.reason {
            m.push_str(&format!(" ({reason})"));
        }
        if let Some(text) = update.message.as_deref().filter(|t| !t.is_empty()) {
            m.push_str(&format!(": {text}"));
        }
        m
    };
    let terminated = |exit: i32, reason: &str| ContainerState {
        terminated: Some(ContainerStateTerminated {
            container_id: Some(container_id.clone()),
            exit_code: exit,
            finished_at: Some(Time(now)),
            message: Some(message.clone()),
            reason: Some(reason.to_string()),
            signal: (exit > 128 && exit < 160).then_some(exit - 128),
            started_at: started.map(Time),
        }),
        ..ContainerState::default()
    };
    let (phase, reason, state) = match report {
        Report::Starting => (
            "Pending",
            "TASK_STARTING",
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("TASK_STARTING".to_string()),
                    message: Some(message.clone()),
                }),
                ..ContainerState::default()
            },
        ),
        Report::Running => (
            "Running",
            "TASK_RUNNING",
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(Time(now)),
                }),
                ..ContainerState::default()
            },
        ),
        Report::Finished => ("Succeeded", "TASK_FINISHED", terminated(0, "Completed")),
        Report::Failed { exit } => ("Failed", "TASK_FAILED", terminated(exit, "Error")),
        Report::Killed { exit } => ("Failed", "TASK_KILLED", terminated(exit, "Killed")),
        Report::Lost => ("Failed", "TASK_LOST", terminated(128, "ContainerCannotRun")),
    };
    let running = report == Report::Running;
    let terminal = matches!(
        report,
        Report::Finished | Report::Failed { .. } | Report::Killed { .. } | Report::Lost
    );
    let ready_reason = (!running).then(|| {
        if terminal {
            "PodCompleted"
        } else {
            "ContainersNotReady"
        }
        .to_string()
    });
    let condition = |type_: &str, status: bool| PodCondition {
        type_: type_.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        last_transition_time: Some(Time(now)),
        reason: if type_ == "Ready" || type_ == "ContainersReady" {
            ready_reason.clone()
        } else {
            None
        },
        ..PodCondition::default()
    };
    Some(PodStatus {
        phase: Some(phase.to_string()),
        reason: Some(reason.to_string()),
        message: Some(message.clone()),
        start_time: started.map(Time),
        conditions: Some(vec![
            condition("PodScheduled", true),
            condition("Initialized", true),
            condition("ContainersReady", running),
            condition("Ready", running),
        ]),
        container_statuses: Some(vec![ContainerStatus {
            name: MAIN_CONTAINER_NAME.to_string(),
            image: image.to_string(),
            image_id: String::new(),
            container_id: Some(container_id.clone()),
            ready: running,
            started: Some(running),
            restart_count: 0,
            state: Some(state),
            ..ContainerStatus::default()
        }]),
        ..PodStatus::default()
    })
}

/// True when `reported` already says what `desired` says (phase, reason, container state
/// kind), so no write is needed.
pub fn same_report(reported: Option<&PodStatus>, desired: &PodStatus) -> bool {
    let kind = |s: &PodStatus| {
        s.container_statuses
            .as_ref()
            .and_then(|c| c.first())
            .and_then(|c| c.state.as_ref())
            .map(|s| {
                (
                    s.waiting.is_some(),
                    s.running.is_some(),
                    s.terminated.is_some(),
                )
            })
    };
    reported.is_some_and(|r| {
        r.phase == desired.phase && r.reason == desired.reason && kind(r) == kind(desired)
    })
}

/// True when a Pod status is terminal (`Succeeded` / `Failed`).
pub fn is_terminal(status: Option<&PodStatus>) -> bool {
    matches!(
        status.and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn update(state: TaskState, reason: Option<&str>, message: Option<&str>) -> StatusUpdate {
        StatusUpdate {
            task_id: "task-1".into(),
            agent_id: Some("S1".into()),
            state,
            titus: None,
            reason: reason.map(str::to_string),
            message: message.map(str::to_string),
            source: None,
            ack: None,
        }
    }

    fn now() -> Timestamp {
        "2026-01-01T00:01:00Z".parse().unwrap()
    }

    /// Phase, reason, container state kind and exit code; `None`: no write.
    type Want = Option<(&'static str, &'static str, &'static str, Option<i32>)>;

    #[test]
    fn each_mesos_state_maps_to_the_agent_report() {
        use TaskState::*;
        let cases: &[(TaskState, Option<&str>, Want)] = &[
            (TaskStaging, None, None),
            (TaskKilling, None, None),
            (TaskUnreachable, None, None),
            (
                TaskStarting,
                None,
                Some(("Pending", "TASK_STARTING", "waiting", None)),
            ),
            (
                TaskRunning,
                None,
                Some(("Running", "TASK_RUNNING", "running", None)),
            ),
            (
                TaskFinished,
                None,
                Some(("Succeeded", "TASK_FINISHED", "terminated", Some(0))),
            ),
            (
                TaskFailed,
                Some("Command exited with status 3"),
                Some(("Failed", "TASK_FAILED", "terminated", Some(3))),
            ),
            (
                TaskFailed,
                None,
                Some(("Failed", "TASK_FAILED", "terminated", Some(1))),
            ),
            (
                TaskError,
                None,
                Some(("Failed", "TASK_FAILED", "terminated", Some(128))),
            ),
            (
                TaskKilled,
                None,
                Some(("Failed", "TASK_KILLED", "terminated", Some(137))),
            ),
            (
                TaskLost,
                None,
                Some(("Failed", "TASK_LOST", "terminated", Some(128))),
            ),
            (
                TaskDropped,
                None,
                Some(("Failed", "TASK_LOST", "terminated", Some(128))),
            ),
            (
                TaskGone,
                None,
                Some(("Failed", "TASK_LOST", "terminated", Some(128))),
            ),
            (
                TaskUnknown,
                None,
                Some(("Failed", "TASK_LOST", "terminated", Some(128))),
            ),
        ];
        for (state, message, want) in cases {
            let got = pod_status(&update(*state, None, *message), "img", None, now());
            let got = got.map(|s| {
                let c = s.container_statuses.unwrap().remove(0).state.unwrap();
                let (kind, exit) = match (c.waiting, c.running, c.terminated) {
                    (Some(_), _, _) => ("waiting", None),
                    (_, Some(_), _) => ("running", None),
                    (_, _, Some(t)) => ("terminated", Some(t.exit_code)),
                    (None, None, None) => ("none", None),
                };
                (s.phase.unwrap(), s.reason.unwrap(), kind, exit)
            });
            let want = want.map(|(p, r, k, e)| (p.to_string(), r.to_string(), k, e));
            assert_eq!(got, want, "{state:?}");
        }
    }

    #[test]
    fn the_message_keeps_the_mesos_state_and_reason() {
        let s = pod_status(
            &update(
                TaskState::TaskLost,
                Some("REASON_AGENT_REMOVED"),
                Some("agent gone"),
            ),
            "img",
            None,
            now(),
        )
        .unwrap();
        assert_eq!(
            s.message.as_deref(),
            Some("TASK_LOST (REASON_AGENT_REMOVED): agent gone")
        );
        assert!(is_terminal(Some(&s)));
        let ready = s
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.reason.as_deref(), Some("PodCompleted"));
    }

    #[test]
    fn an_equal_report_needs_no_write() {
        let running = pod_status(
            &update(TaskState::TaskRunning, None, None),
            "img",
            None,
            now(),
        );
        let running = running.unwrap();
        let again = pod_status(
            &update(TaskState::TaskRunning, Some("REASON_RECONCILIATION"), None),
            "img",
            None,
            now(),
        )
        .unwrap();
        assert!(same_report(Some(&running), &again));
        let finished = pod_status(
            &update(TaskState::TaskFinished, None, None),
            "img",
            None,
            now(),
        )
        .unwrap();
        assert!(!same_report(Some(&running), &finished));
        assert!(!same_report(None, &finished));
    }
}
