//! Mesos task states to Titus task states, as Titus's Mesos-era control plane mapped them
//! (titus-semantics §13.1; mesos-offers §8.2, column "Titus (Mesos era)").
//!
//! | Mesos | Titus |
//! | --- | --- |
//! | `TASK_STAGING` | `Launched` |
//! | `TASK_STARTING` | `StartInitiated` |
//! | `TASK_RUNNING` | `Started` |
//! | `TASK_FINISHED` | `Finished` / `normal` |
//! | `TASK_FAILED`, `TASK_DROPPED` | `Finished` / `failed` |
//! | `TASK_KILLED` | `Finished` / `killed` |
//! | `TASK_ERROR` | `Finished` / `invalidRequest` |
//! | `TASK_LOST`, `TASK_UNKNOWN`, `TASK_GONE`, `TASK_GONE_BY_OPERATOR` | `Finished` / `lost` |
//! | `TASK_KILLING`, `TASK_UNREACHABLE` | ignored |
//!
//! Message patterns that refine the reason (`crashed`, `transientSystemError`, ...) belong to
//! the task controller, which owns the configurable expressions.

use serde::{Deserialize, Serialize};

use crate::mesos::types::TaskState;

/// Titus task state (`TaskState` in the Titus API).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TitusTaskState {
    /// Task record exists, no resources yet.
    Accepted,
    /// Resources assigned, handed to the runtime.
    Launched,
    /// The agent is preparing the container.
    StartInitiated,
    /// The container runs.
    Started,
    /// Termination requested.
    KillInitiated,
    /// Agent unreachable.
    Disconnected,
    /// Terminal.
    Finished,
}

/// Titus reason code of a status (`TaskStatus.reasonCode`), the subset Mesos states produce.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TitusReasonCode {
    /// `normal`.
    Normal,
    /// `failed`.
    Failed,
    /// `killed`.
    Killed,
    /// `invalidRequest`.
    InvalidRequest,
    /// `lost`.
    Lost,
}

impl TitusReasonCode {
    /// The exact Titus string.
    pub fn as_str(self) -> &'static str {
        match self {
            TitusReasonCode::Normal => "normal",
            TitusReasonCode::Failed => "failed",
            TitusReasonCode::Killed => "killed",
            TitusReasonCode::InvalidRequest => "invalidRequest",
            TitusReasonCode::Lost => "lost",
        }
    }
}

/// The Titus state and reason code of a Mesos state; `None` when Titus ignored the state.
pub fn titus_state(state: TaskState) -> Option<(TitusTaskState, TitusReasonCode)> {
    use TitusReasonCode as R;
    use TitusTaskState as T;
    match state {
        TaskState::TaskStaging => Some((T::Launched, R::Normal)),
        TaskState::TaskStarting => Some((T::StartInitiated, R::Normal)),
        TaskState::TaskRunning => Some((T::Started, R::Normal)),
        TaskState::TaskFinished => Some((T::Finished, R::Normal)),
        TaskState::TaskFailed | TaskState::TaskDropped => Some((T::Finished, R::Failed)),
        TaskState::TaskKilled => Some((T::Finished, R::Killed)),
        TaskState::TaskError => Some((T::Finished, R::InvalidRequest)),
        TaskState::TaskLost
        | TaskState::TaskUnknown
        | TaskState::TaskGone
        | TaskState::TaskGoneByOperator => Some((T::Finished, R::Lost)),
        TaskState::TaskKilling | TaskState::TaskUnreachable | TaskState::Unrecognized => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mesos_state_maps_as_titus_did() {
        use TitusReasonCode as R;
        use TitusTaskState as T;
        let table = [
            (TaskState::TaskStaging, Some((T::Launched, R::Normal))),
            (
                TaskState::TaskStarting,
                Some((T::StartInitiated, R::Normal)),
            ),
            (TaskState::TaskRunning, Some((T::Started, R::Normal))),
            (TaskState::TaskFinished, Some((T::Finished, R::Normal))),
            (TaskState::TaskFailed, Some((T::Finished, R::Failed))),
            (TaskState::TaskDropped, Some((T::Finished, R::Failed))),
            (TaskState::TaskKilled, Some((T::Finished, R::Killed))),
            (TaskState::TaskError, Some((T::Finished, R::InvalidRequest))),
            (TaskState::TaskLost, Some((T::Finished, R::Lost))),
            (TaskState::TaskUnknown, Some((T::Finished, R::Lost))),
            (TaskState::TaskGone, Some((T::Finished, R::Lost))),
            (TaskState::TaskGoneByOperator, Some((T::Finished, R::Lost))),
            (TaskState::TaskKilling, None),
            (TaskState::TaskUnreachable, None),
        ];
        for (mesos, titus) in table {
            assert_eq!(titus_state(mesos), titus, "{mesos:?}");
        }
        assert_eq!(R::InvalidRequest.as_str(), "invalidRequest");
    }
}
