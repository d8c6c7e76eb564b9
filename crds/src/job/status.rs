//! `TitusJob` status: the Titus job state and its history, task counts, the `scale` subresource
//! fields and what the job controller needs to be idempotent.
//!
//! Times: every Titus time in this crate (`timestamp`, `startedAt`, `finishedAt`, `retryAt`, ...)
//! is **milliseconds since the Unix epoch** (`u64`), exactly Titus's proto `timestamp` fields: the
//! gateway translates without loss and controllers compare without parsing. Kubernetes-convention
//! times (a condition's `lastTransitionTime`) are RFC 3339 strings.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{StatusEntry, is_zero_u32, is_zero_u64};
use crate::task::{TaskReasonCode, TaskState};

/// Titus job state (proto `JobStatus.JobState`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum JobState {
    /// Persisted; tasks are being created and run.
    #[default]
    Accepted,
    /// KillJob received: tasks are being killed, no new tasks.
    KillInitiated,
    /// No running tasks and none will be created.
    Finished,
}

impl JobState {
    /// The exact Titus name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Accepted => "Accepted",
            JobState::KillInitiated => "KillInitiated",
            JobState::Finished => "Finished",
        }
    }

    /// `true` for `KillInitiated` and `Finished`, where Titus refuses capacity, status and
    /// process updates (`JobTerminating`).
    pub fn is_terminating(self) -> bool {
        match self {
            JobState::Accepted => false,
            JobState::KillInitiated | JobState::Finished => true,
        }
    }
}

/// One job status (proto `JobStatus`); also an entry of `statusHistory`.
pub type JobStatusEntry = StatusEntry<JobState>;

/// Number of this job's tasks (non-archived `TitusTask`s) per Titus task state.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskCounts {
    /// Tasks in `Accepted`.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub accepted: u32,
    /// Tasks in `Launched`.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub launched: u32,
    /// Tasks in `StartInitiated`.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub start_initiated: u32,
    /// Tasks in `Started`.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub started: u32,
    /// Tasks in `KillInitiated`.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub kill_initiated: u32,
    /// Tasks in `Disconnected`.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub disconnected: u32,
    /// Tasks in `Finished`.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub finished: u32,
}

impl TaskCounts {
    /// Counts the given states.
    pub fn from_states(states: impl IntoIterator<Item = TaskState>) -> Self {
        let mut counts = TaskCounts::default();
        for state in states {
            *counts.slot(state) += 1;
        }
        counts
    }

    /// The count of one state.
    pub fn get(&self, state: TaskState) -> u32 {
        match state {
            TaskState::Accepted => self.accepted,
            TaskState::Launched => self.launched,
            TaskState::StartInitiated => self.start_initiated,
            TaskState::Started => self.started,
            TaskState::KillInitiated => self.kill_initiated,
            TaskState::Disconnected => self.disconnected,
            TaskState::Finished => self.finished,
        }
    }

    /// Tasks not `Finished` (what `status.replicas` reports).
    pub fn non_finished(&self) -> u32 {
        TaskState::ALL
            .iter()
            .filter(|s| !s.is_terminal())
            .map(|s| self.get(*s))
            .sum()
    }

    fn slot(&mut self, state: TaskState) -> &mut u32 {
        match state {
            TaskState::Accepted => &mut self.accepted,
            TaskState::Launched => &mut self.launched,
            TaskState::StartInitiated => &mut self.start_initiated,
            TaskState::Started => &mut self.started,
            TaskState::KillInitiated => &mut self.kill_initiated,
            TaskState::Disconnected => &mut self.disconnected,
            TaskState::Finished => &mut self.finished,
        }
    }
}

/// `TitusJob` status, written by the job controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TitusJobStatus {
    /// Titus job id: the object's `metadata.uid`, written by the job controller.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub job_id: String,
    /// Current Titus job state.
    #[serde(default)]
    pub state: JobState,
    /// Reason code of the current state.
    #[serde(default)]
    pub reason_code: TaskReasonCode,
    /// Reason message of the current state.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason_message: String,
    /// Time of the transition into the current state, ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub timestamp: u64,
    /// Previous statuses in order (the current one is not included), as Titus.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_history: Vec<JobStatusEntry>,
    /// Tasks per state.
    #[serde(default)]
    pub task_counts: TaskCounts,
    /// Non-finished tasks (`scale` subresource `statusReplicasPath`).
    #[serde(default)]
    pub replicas: u32,
    /// Label selector of this job's pods, in string form (`scale` subresource
    /// `labelSelectorPath`), e.g. `titus.dev/job-name=my-job`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    /// Kubernetes-style conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Next service task slot number. Monotonic: the job controller derives the id of a new
    /// service task from it (see [`crate::ids`]) and bumps it in the same status write that
    /// records the creation, so a retried pass creates the same task rather than a second one.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub next_service_task_sequence: u64,
}

impl TitusJobStatus {
    /// The current status as a history entry.
    pub fn current(&self) -> JobStatusEntry {
        JobStatusEntry {
            state: self.state,
            reason_code: self.reason_code.clone(),
            reason_message: self.reason_message.clone(),
            timestamp: self.timestamp,
        }
    }

    /// Moves to a new status, pushing the current one to `statusHistory` (Titus keeps only
    /// previous statuses there). A status identical in state, reason and message is ignored.
    /// Returns `true` when the status changed.
    pub fn transition(&mut self, next: JobStatusEntry) -> bool {
        let current = self.current();
        if current.state == next.state
            && current.reason_code == next.reason_code
            && current.reason_message == next.reason_message
        {
            return false;
        }
        if self.timestamp != 0 {
            self.status_history.push(current);
        }
        self.state = next.state;
        self.reason_code = next.reason_code;
        self.reason_message = next.reason_message;
        self.timestamp = next.timestamp;
        true
    }

    /// Time of the first `Accepted` status (Titus's job creation time), if known.
    pub fn accepted_timestamp(&self) -> Option<u64> {
        self.status_history
            .iter()
            .chain(std::iter::once(&self.current()))
            .find(|s| s.state == JobState::Accepted && s.timestamp != 0)
            .map(|s| s.timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_counts_count_each_state_and_report_non_finished() {
        let counts = TaskCounts::from_states([
            TaskState::Started,
            TaskState::Started,
            TaskState::Finished,
            TaskState::Accepted,
        ]);
        assert_eq!(counts.started, 2);
        assert_eq!(counts.finished, 1);
        assert_eq!(counts.non_finished(), 3);
    }

    #[test]
    fn job_transition_keeps_previous_statuses_in_history() {
        let mut status = TitusJobStatus::default();
        status.transition(JobStatusEntry {
            state: JobState::Accepted,
            reason_code: TaskReasonCode::Unknown,
            reason_message: "New Job created. Next tasks will be launched.".into(),
            timestamp: 10,
        });
        assert!(status.status_history.is_empty());
        status.transition(JobStatusEntry {
            state: JobState::KillInitiated,
            reason_code: TaskReasonCode::Killed,
            reason_message: "killed by user".into(),
            timestamp: 20,
        });
        assert_eq!(status.state, JobState::KillInitiated);
        assert_eq!(status.status_history.len(), 1);
        assert_eq!(status.accepted_timestamp(), Some(10));
    }
}
