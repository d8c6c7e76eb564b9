//! `TitusTask`: the durable record of ONE task attempt, created by the job controller and driven
//! by the task controller.
//!
//! `metadata.name` is the Titus task id (a UUID, derived deterministically, see [`crate::ids`]).
//! The spec holds the identity and resubmit counters of the attempt, plus `killRequest`, the one
//! way a user, the gateway or a controller asks for the task to be killed. The status holds the
//! Titus task state, its history and the task context.

mod state;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{StatusEntry, StringMap, is_zero_u32, is_zero_u64};
pub use state::{TaskReasonCode, TaskState};

/// One Titus task attempt.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "titus.dev",
    version = "v1alpha1",
    kind = "TitusTask",
    plural = "titustasks",
    singular = "titustask",
    namespaced,
    status = "TitusTaskStatus",
    shortname = "tt",
    category = "titus",
    derive = "PartialEq",
    derive = "Default",
    doc = "One attempt of a Titus task; metadata.name is the Titus task id.",
    printcolumn = r#"{"name":"Job","type":"string","jsonPath":".spec.jobName"}"#,
    printcolumn = r#"{"name":"Index","type":"integer","jsonPath":".spec.index"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.state"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.reasonCode"}"#,
    printcolumn = r#"{"name":"Node","type":"string","jsonPath":".status.nodeName"}"#,
    printcolumn = r#"{"name":"Resubmit","type":"integer","priority":1,"jsonPath":".spec.resubmitNumber"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TitusTaskSpec {
    /// Titus job id (the `TitusJob`'s `metadata.uid`).
    #[serde(default)]
    pub job_id: String,
    /// Name of the `TitusJob` object (same namespace).
    #[serde(default)]
    pub job_name: String,
    /// Batch task index `0..size`, stable across replacements; `None` for service tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// Id of the first attempt of this chain (equals the task's own id for first attempts).
    #[serde(default)]
    pub original_id: String,
    /// Id of the attempt this one replaces; `None` for first attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resubmit_of: Option<String>,
    /// 0 for the first attempt, +1 per replacement.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub resubmit_number: u32,
    /// Replacements caused by system errors, over the chain.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub system_resubmit_number: u32,
    /// Replacements caused by evictions, over the chain.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub eviction_resubmit_number: u32,
    /// Exponential back-off delay (the policy value, before Titus's 1 s minimum retry interval)
    /// that preceded this attempt, in ms: when the attempt fails, the chain's next delay doubles
    /// it (capped at `maxDelayIntervalMs`). 0 for first attempts and after a back-off reset (an
    /// attempt that stayed `Started` for 5 min). Written by the job controller at creation, so the
    /// back-off survives controller restarts and the removal of finished records.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub back_off_delay_ms: u64,
    /// Set to ask for this task to be killed. Writing it is the whole request: the task
    /// controller moves the task to `KillInitiated` with the matching reason code and deletes its
    /// pod. Once set it should not be changed (the first request wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_request: Option<TaskKillRequest>,
}

/// A request to kill one task.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskKillRequest {
    /// Why; decides the `KillInitiated` reason code and whether a replacement follows.
    #[serde(default)]
    pub reason: TaskKillReason,
    /// Who asked (a caller id, `gateway`, `job-controller`, `eviction`, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub requested_by: String,
    /// Human message, copied into the status `reasonMessage`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When it was asked, ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub requested_at: u64,
}

/// Why a task is killed. Serialized as the Titus reason code it produces.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum TaskKillReason {
    /// A user KillTask (or KillJob); retried for batch if the budget allows, replaced for
    /// service.
    #[default]
    #[serde(rename = "killed")]
    Killed,
    /// Service capacity decrease or kill-with-shrink: not replaced.
    #[serde(rename = "scaledDown")]
    ScaledDown,
    /// Eviction service: replaced; the replacement's `evictionResubmitNumber` increments.
    #[serde(rename = "evicted")]
    Evicted,
    /// Batch attempt exceeded `runtimeLimitSec`: retried only with `retryOnRuntimeLimit`.
    #[serde(rename = "runtimeLimitExceeded")]
    RuntimeLimitExceeded,
    /// Timed out in `Launched`/`StartInitiated`: a system error, always retried.
    #[serde(rename = "stuckInState")]
    StuckInState,
    /// Timed out in `KillInitiated`: kill again.
    #[serde(rename = "stuckInKillingState")]
    StuckInKillingState,
    /// Kill requested by the scheduler or the platform (a system error).
    #[serde(rename = "transientSystemError")]
    TransientSystemError,
}

impl TaskKillReason {
    /// The reason code of the resulting `KillInitiated` status.
    pub fn reason_code(self) -> TaskReasonCode {
        match self {
            TaskKillReason::Killed => TaskReasonCode::Killed,
            TaskKillReason::ScaledDown => TaskReasonCode::ScaledDown,
            TaskKillReason::Evicted => TaskReasonCode::Evicted,
            TaskKillReason::RuntimeLimitExceeded => TaskReasonCode::RuntimeLimitExceeded,
            TaskKillReason::StuckInState => TaskReasonCode::StuckInState,
            TaskKillReason::StuckInKillingState => TaskReasonCode::StuckInKillingState,
            TaskKillReason::TransientSystemError => TaskReasonCode::TransientSystemError,
        }
    }
}

/// One task status (proto `TaskStatus` without container states); also a `statusHistory` entry.
pub type TaskStatusEntry = StatusEntry<TaskState>;

/// Proto `MigrationDetails`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationDetails {
    /// The task's node is being drained and the owner must move the task.
    #[serde(default)]
    pub needs_migration: bool,
    /// When the decision was made, ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub started: u64,
    /// When the system relocates the task itself, ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub deadline: u64,
}

/// `TitusTask` status, written by the task controller (and the scheduler for its condition).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TitusTaskStatus {
    /// Current Titus task state.
    #[serde(default)]
    pub state: TaskState,
    /// Reason code of the current state.
    #[serde(default)]
    pub reason_code: TaskReasonCode,
    /// Reason message of the current state.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason_message: String,
    /// Time of the transition into the current state, ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub timestamp: u64,
    /// Previous statuses in order (the current one is not included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_history: Vec<TaskStatusEntry>,
    /// Titus task context (`agent.host`, `task.containerIp`, `kube.podCreated`, ...; see
    /// [`crate::constants::task_context`]). The identity keys (`task.originalId`, ...) are
    /// rendered from the spec by the gateway and need not be stored here.
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub task_context: StringMap,
    /// User task attributes (Titus `Task.attributes`, UpdateTaskAttributes).
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub attributes: StringMap,
    /// Name of the pod running this attempt.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod_name: String,
    /// Node the pod is bound to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_name: String,
    /// When the attempt entered `Started`, ms since the Unix epoch (the runtime-limit clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
    /// When the attempt reached `Finished`, ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
    /// Retry delay computed when the attempt finished (also `taskContext["task.retryDelay"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay_ms: Option<u64>,
    /// Earliest time a replacement may be created, ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<u64>,
    /// Relocation details (self-managed disruption budgets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_details: Option<MigrationDetails>,
    /// Kubernetes-style conditions, e.g. `Unschedulable` written by the scheduler.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl TitusTaskStatus {
    /// The current status as a history entry.
    pub fn current(&self) -> TaskStatusEntry {
        TaskStatusEntry {
            state: self.state,
            reason_code: self.reason_code.clone(),
            reason_message: self.reason_message.clone(),
            timestamp: self.timestamp,
        }
    }

    /// Applies a status update with Titus's rules: only forward moves (an update to an earlier
    /// state, or anything after `Finished`, is ignored); a repeat of the same state, reason and
    /// message is dropped and a repeated `Launched` always is; a same-state update with a new
    /// reason or message (`Accepted`/`podCreated`, `KillInitiated`/`stuckInKillingState`) is
    /// kept. An accepted update pushes the current status to `statusHistory`.
    /// Returns `true` when the status changed.
    pub fn apply(&mut self, next: TaskStatusEntry) -> bool {
        let current = self.current();
        let same_state = current.state == next.state;
        if same_state {
            let duplicate = current.reason_code == next.reason_code
                && current.reason_message == next.reason_message;
            if duplicate || next.state == TaskState::Launched || next.state.is_terminal() {
                return false;
            }
        } else if !current.state.can_transition_to(next.state) {
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
}

impl TitusTask {
    /// The Titus task id (`metadata.name`).
    pub fn task_id(&self) -> Option<&str> {
        self.metadata.name.as_deref()
    }

    /// The current task state (`Accepted` before a status is written).
    pub fn state(&self) -> TaskState {
        self.status.as_ref().map(|s| s.state).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(state: TaskState, reason: TaskReasonCode, at: u64) -> TaskStatusEntry {
        TaskStatusEntry {
            state,
            reason_code: reason,
            reason_message: String::new(),
            timestamp: at,
        }
    }

    #[test]
    fn task_status_ignores_backward_moves_and_duplicates() {
        let mut status = TitusTaskStatus::default();
        assert!(status.apply(entry(TaskState::Accepted, TaskReasonCode::Normal, 1)));
        assert!(status.apply(entry(TaskState::Accepted, TaskReasonCode::PodCreated, 2)));
        assert!(!status.apply(entry(TaskState::Accepted, TaskReasonCode::PodCreated, 3)));
        assert!(status.apply(entry(TaskState::Started, TaskReasonCode::Normal, 4)));
        assert!(!status.apply(entry(TaskState::Launched, TaskReasonCode::PodScheduled, 5)));
        assert!(!status.apply(entry(TaskState::Started, TaskReasonCode::Normal, 6)));
        assert!(status.apply(entry(TaskState::Finished, TaskReasonCode::Failed, 7)));
        assert!(!status.apply(entry(TaskState::Disconnected, TaskReasonCode::Unknown, 8)));
        assert_eq!(status.state, TaskState::Finished);
        assert_eq!(status.status_history.len(), 3);
        assert_eq!(
            status.status_history[1].reason_code,
            TaskReasonCode::PodCreated
        );
    }

    #[test]
    fn kill_reasons_serialize_as_their_reason_codes() {
        for reason in [
            TaskKillReason::Killed,
            TaskKillReason::ScaledDown,
            TaskKillReason::Evicted,
            TaskKillReason::RuntimeLimitExceeded,
            TaskKillReason::StuckInState,
            TaskKillReason::StuckInKillingState,
            TaskKillReason::TransientSystemError,
        ] {
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.reason_code().as_str()));
        }
    }
}
