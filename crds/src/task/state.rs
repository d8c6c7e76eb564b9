//! Titus task states and reason codes, with the ordering rules of the task state machine.
//!
//! States only move forward (`Accepted < Launched < StartInitiated < Started < KillInitiated <
//! Finished`); `Disconnected` is incomparable and `Finished` is absorbing. Reason codes are Titus's
//! exact strings; a code Titus did not define (e.g. a pod's own reason such as `TASK_STARTING`,
//! which Titus copies into `reasonCode`) is kept verbatim in [`TaskReasonCode::Other`].

use std::borrow::Cow;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Titus task state (proto `TaskStatus.TaskState`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum TaskState {
    /// The task record exists; no resources yet.
    #[default]
    Accepted,
    /// Placed on a node and handed to the runtime.
    Launched,
    /// The agent prepares the container (image pull, network, volumes).
    StartInitiated,
    /// The container runs.
    Started,
    /// Termination requested; the agent is stopping it.
    KillInitiated,
    /// Agent unreachable. Never produced by final Titus; kept for the wire.
    Disconnected,
    /// Terminal; resources released.
    Finished,
}

impl TaskState {
    /// All states in proto order.
    pub const ALL: [TaskState; 7] = [
        TaskState::Accepted,
        TaskState::Launched,
        TaskState::StartInitiated,
        TaskState::Started,
        TaskState::KillInitiated,
        TaskState::Disconnected,
        TaskState::Finished,
    ];

    /// Position in the forward-only order; `None` for `Disconnected`, which is incomparable.
    pub fn rank(self) -> Option<u8> {
        match self {
            TaskState::Accepted => Some(0),
            TaskState::Launched => Some(1),
            TaskState::StartInitiated => Some(2),
            TaskState::Started => Some(3),
            TaskState::KillInitiated => Some(4),
            TaskState::Finished => Some(5),
            TaskState::Disconnected => None,
        }
    }

    /// `true` for `Finished`, the absorbing state.
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskState::Finished)
    }

    /// `true` for states that hold resources (Titus's "running" set): `Launched`,
    /// `StartInitiated`, `Started`, `KillInitiated`, `Disconnected`.
    pub fn is_running(self) -> bool {
        match self {
            TaskState::Launched
            | TaskState::StartInitiated
            | TaskState::Started
            | TaskState::KillInitiated
            | TaskState::Disconnected => true,
            TaskState::Accepted | TaskState::Finished => false,
        }
    }

    /// Whether a status update from `self` to `next` is allowed: only forward moves (states may
    /// be skipped); nothing leaves `Finished`; moves to or from `Disconnected` are allowed except
    /// out of `Finished`. A repeated state is not a transition (returns `false`).
    pub fn can_transition_to(self, next: TaskState) -> bool {
        if self.is_terminal() {
            return false;
        }
        match (self.rank(), next.rank()) {
            (Some(current), Some(candidate)) => candidate > current,
            (None, None) => false,
            (None, Some(_)) | (Some(_), None) => true,
        }
    }

    /// The exact Titus name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Accepted => "Accepted",
            TaskState::Launched => "Launched",
            TaskState::StartInitiated => "StartInitiated",
            TaskState::Started => "Started",
            TaskState::KillInitiated => "KillInitiated",
            TaskState::Disconnected => "Disconnected",
            TaskState::Finished => "Finished",
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Titus reason code of a task (and job) status, serialized as Titus's exact string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum TaskReasonCode {
    /// Normal progress; on `Finished`: exit code 0.
    Normal,
    /// Pod object created (second `Accepted` status).
    PodCreated,
    /// Pod scheduled and its status reason was empty.
    PodScheduled,
    /// A missing history entry inserted by the control plane.
    FilledIn,
    /// Killed by a user (KillTask/KillJob), or the pod vanished outside the API.
    Killed,
    /// Killed through the eviction service.
    Evicted,
    /// Removed by a capacity decrease or a kill-with-shrink.
    ScaledDown,
    /// A batch attempt ran longer than `runtimeLimitSec`.
    RuntimeLimitExceeded,
    /// Timed out in `Launched`/`StartInitiated` (a system error).
    StuckInState,
    /// Timed out in `KillInitiated`.
    StuckInKillingState,
    /// Non-zero exit or pod failed.
    Failed,
    /// Node lost.
    Lost,
    /// Bad container definition, or the pod could not be created.
    InvalidRequest,
    /// Container crashed (a system error).
    Crashed,
    /// Not agent specific, e.g. throttling (a system error).
    TransientSystemError,
    /// Agent-scoped failure (a system error).
    LocalSystemError,
    /// Unclassifiable failure (a system error).
    UnknownSystemError,
    /// Default when no code is given.
    #[default]
    Unknown,
    /// Gateway fix-up of an archived task not in `Finished`.
    Inconsistent,
    /// Any other code, kept verbatim (e.g. a pod reason such as `TASK_STARTING`).
    Other(String),
}

impl TaskReasonCode {
    /// Every code Titus defines, in the order of the reference table.
    pub const KNOWN: [TaskReasonCode; 19] = [
        TaskReasonCode::Normal,
        TaskReasonCode::PodCreated,
        TaskReasonCode::PodScheduled,
        TaskReasonCode::FilledIn,
        TaskReasonCode::Killed,
        TaskReasonCode::Evicted,
        TaskReasonCode::ScaledDown,
        TaskReasonCode::RuntimeLimitExceeded,
        TaskReasonCode::StuckInState,
        TaskReasonCode::StuckInKillingState,
        TaskReasonCode::Failed,
        TaskReasonCode::Lost,
        TaskReasonCode::InvalidRequest,
        TaskReasonCode::Crashed,
        TaskReasonCode::TransientSystemError,
        TaskReasonCode::LocalSystemError,
        TaskReasonCode::UnknownSystemError,
        TaskReasonCode::Unknown,
        TaskReasonCode::Inconsistent,
    ];

    /// Titus's exact string.
    pub fn as_str(&self) -> &str {
        match self {
            TaskReasonCode::Normal => "normal",
            TaskReasonCode::PodCreated => "podCreated",
            TaskReasonCode::PodScheduled => "podScheduled",
            TaskReasonCode::FilledIn => "filledIn",
            TaskReasonCode::Killed => "killed",
            TaskReasonCode::Evicted => "evicted",
            TaskReasonCode::ScaledDown => "scaledDown",
            TaskReasonCode::RuntimeLimitExceeded => "runtimeLimitExceeded",
            TaskReasonCode::StuckInState => "stuckInState",
            TaskReasonCode::StuckInKillingState => "stuckInKillingState",
            TaskReasonCode::Failed => "failed",
            TaskReasonCode::Lost => "lost",
            TaskReasonCode::InvalidRequest => "invalidRequest",
            TaskReasonCode::Crashed => "crashed",
            TaskReasonCode::TransientSystemError => "transientSystemError",
            TaskReasonCode::LocalSystemError => "localSystemError",
            TaskReasonCode::UnknownSystemError => "unknownSystemError",
            TaskReasonCode::Unknown => "unknown",
            TaskReasonCode::Inconsistent => "inconsistent",
            TaskReasonCode::Other(code) => code,
        }
    }

    /// Parses Titus's string; unknown strings become [`TaskReasonCode::Other`].
    pub fn parse(code: &str) -> TaskReasonCode {
        TaskReasonCode::KNOWN
            .iter()
            .find(|known| known.as_str() == code)
            .cloned()
            .unwrap_or_else(|| TaskReasonCode::Other(code.to_string()))
    }

    /// `true` for system errors: always retried, not charged to the retry budget, hidden by
    /// `skipSystemFailures`. (Titus evaluates this only on `KillInitiated`/`Finished` statuses.)
    pub fn is_system_error(&self) -> bool {
        match self {
            TaskReasonCode::StuckInState
            | TaskReasonCode::Crashed
            | TaskReasonCode::TransientSystemError
            | TaskReasonCode::LocalSystemError
            | TaskReasonCode::UnknownSystemError => true,
            TaskReasonCode::Normal
            | TaskReasonCode::PodCreated
            | TaskReasonCode::PodScheduled
            | TaskReasonCode::FilledIn
            | TaskReasonCode::Killed
            | TaskReasonCode::Evicted
            | TaskReasonCode::ScaledDown
            | TaskReasonCode::RuntimeLimitExceeded
            | TaskReasonCode::StuckInKillingState
            | TaskReasonCode::Failed
            | TaskReasonCode::Lost
            | TaskReasonCode::InvalidRequest
            | TaskReasonCode::Unknown
            | TaskReasonCode::Inconsistent
            | TaskReasonCode::Other(_) => false,
        }
    }
}

impl fmt::Display for TaskReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TaskReasonCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TaskReasonCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Ok(TaskReasonCode::parse(&code))
    }
}

impl JsonSchema for TaskReasonCode {
    fn schema_name() -> Cow<'static, str> {
        "TaskReasonCode".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "Titus reason code (normal, podCreated, podScheduled, filledIn, killed, evicted, scaledDown, runtimeLimitExceeded, stuckInState, stuckInKillingState, failed, lost, invalidRequest, crashed, transientSystemError, localSystemError, unknownSystemError, unknown, inconsistent) or another code kept verbatim.",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_reason_code_round_trips_through_its_string() {
        for code in TaskReasonCode::KNOWN {
            assert_eq!(TaskReasonCode::parse(code.as_str()), code);
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn an_unknown_reason_code_is_kept_verbatim() {
        let code: TaskReasonCode = serde_json::from_str("\"TASK_STARTING\"").unwrap();
        assert_eq!(code, TaskReasonCode::Other("TASK_STARTING".into()));
        assert_eq!(serde_json::to_string(&code).unwrap(), "\"TASK_STARTING\"");
    }

    #[test]
    fn system_errors_are_exactly_titus_system_error_codes() {
        let system: Vec<&str> = TaskReasonCode::KNOWN
            .iter()
            .filter(|c| c.is_system_error())
            .map(|c| c.as_str())
            .collect();
        assert_eq!(
            system,
            [
                "stuckInState",
                "crashed",
                "transientSystemError",
                "localSystemError",
                "unknownSystemError"
            ]
        );
    }

    #[test]
    fn task_states_move_forward_only_and_disconnected_is_incomparable() {
        use TaskState::*;
        assert!(Accepted.can_transition_to(Started));
        assert!(!Started.can_transition_to(Launched));
        assert!(!Started.can_transition_to(Started));
        assert!(!Finished.can_transition_to(Disconnected));
        assert!(Started.can_transition_to(Disconnected));
        assert!(Disconnected.can_transition_to(Finished));
        assert_eq!(Disconnected.rank(), None);
        assert!(Finished.is_terminal() && !KillInitiated.is_terminal());
        assert!(KillInitiated.is_running() && !Accepted.is_running());
    }
}
