//! `mesos.v1.scheduler.Call` and `mesos.v1.scheduler.Event` in Mesos JSON
//! (mesos-offers.md §2, §3): an envelope with a `type` and one sub-message named after it.
//! Build calls with the constructors, which always set the sub-message the type requires
//! (`reconcile` even when empty, as the master insists).

use serde::{Deserialize, Serialize};

use crate::mesos::types::{Filters, FrameworkInfo, Id, Offer, TaskInfo, TaskStatus};

/// `Call.Type`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CallType {
    /// Open the event stream.
    Subscribe,
    /// Remove the framework (kills its tasks).
    Teardown,
    /// Use offers.
    Accept,
    /// Return offers.
    Decline,
    /// Un-suppress and clear filters.
    Revive,
    /// Kill a task.
    Kill,
    /// Shut down an executor.
    Shutdown,
    /// Acknowledge a status update.
    Acknowledge,
    /// Ask for task states.
    Reconcile,
    /// Message to an executor.
    Message,
    /// Resource request.
    Request,
    /// Stop offers.
    Suppress,
    /// A type this version does not know (or `UNKNOWN`).
    #[serde(other)]
    Unknown,
}

/// `Call.Subscribe`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Subscribe {
    /// The framework.
    pub framework_info: FrameworkInfo,
    /// Roles to subscribe suppressed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressed_roles: Vec<String>,
}

/// `Offer.Operation.Launch`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Launch {
    /// Tasks to launch.
    #[serde(default)]
    pub task_infos: Vec<TaskInfo>,
}

/// `Offer.Operation` (only LAUNCH is typed; others are not used by the adapter).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Operation {
    /// `LAUNCH`, `LAUNCH_GROUP`, `RESERVE`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Set for LAUNCH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<Launch>,
}

/// `Call.Accept`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Accept {
    /// Offers of one agent and role.
    #[serde(default)]
    pub offer_ids: Vec<Id>,
    /// Operations, applied in order.
    #[serde(default)]
    pub operations: Vec<Operation>,
    /// Filter for the unused remainder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

/// `Call.Decline`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Decline {
    /// Offers returned.
    #[serde(default)]
    pub offer_ids: Vec<Id>,
    /// Refusal filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

/// `Call.Kill`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Kill {
    /// The task.
    pub task_id: Id,
    /// Its agent, for a faster answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Id>,
}

/// `Call.Acknowledge`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Acknowledge {
    /// The update's agent.
    pub agent_id: Id,
    /// The update's task.
    pub task_id: Id,
    /// The update's `status.uuid`, echoed unchanged.
    pub uuid: String,
}

/// `Call.Reconcile.Task`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ReconcileTask {
    /// The task.
    pub task_id: Id,
    /// Its agent, for precise answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Id>,
}

/// `Call.Reconcile`; empty `tasks` asks for every task (implicit reconciliation).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconcile {
    /// Tasks to reconcile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<ReconcileTask>,
}

/// `Call.Revive` / `Call.Suppress`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Roles {
    /// Roles; empty means all subscribed roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// `mesos.v1.scheduler.Call`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Call {
    /// Required on every call but a first SUBSCRIBE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<Id>,
    /// The call type.
    #[serde(rename = "type", default = "unknown_call")]
    pub kind: CallType,
    /// SUBSCRIBE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<Subscribe>,
    /// ACCEPT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept: Option<Accept>,
    /// DECLINE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline: Option<Decline>,
    /// KILL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill: Option<Kill>,
    /// ACKNOWLEDGE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledge: Option<Acknowledge>,
    /// RECONCILE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<Reconcile>,
    /// REVIVE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revive: Option<Roles>,
    /// SUPPRESS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppress: Option<Roles>,
}

fn unknown_call() -> CallType {
    CallType::Unknown
}

impl Call {
    fn new(kind: CallType, framework_id: Option<Id>) -> Call {
        Call {
            framework_id,
            kind,
            subscribe: None,
            accept: None,
            decline: None,
            kill: None,
            acknowledge: None,
            reconcile: None,
            revive: None,
            suppress: None,
        }
    }

    /// SUBSCRIBE; a re-subscription carries the framework id both at the top and in
    /// `framework_info.id`, as the master requires.
    pub fn subscribe(framework_info: FrameworkInfo) -> Call {
        let mut call = Call::new(CallType::Subscribe, framework_info.id.clone());
        call.subscribe = Some(Subscribe {
            framework_info,
            suppressed_roles: Vec::new(),
        });
        call
    }

    /// ACCEPT with one LAUNCH operation.
    pub fn launch(
        framework_id: &Id,
        offer_ids: Vec<Id>,
        tasks: Vec<TaskInfo>,
        refuse_seconds: f64,
    ) -> Call {
        let mut call = Call::new(CallType::Accept, Some(framework_id.clone()));
        call.accept = Some(Accept {
            offer_ids,
            operations: vec![Operation {
                kind: "LAUNCH".to_string(),
                launch: Some(Launch { task_infos: tasks }),
            }],
            filters: Some(Filters {
                refuse_seconds: Some(refuse_seconds),
            }),
        });
        call
    }

    /// DECLINE with a refusal filter.
    pub fn decline(framework_id: &Id, offer_ids: Vec<Id>, refuse_seconds: f64) -> Call {
        let mut call = Call::new(CallType::Decline, Some(framework_id.clone()));
        call.decline = Some(Decline {
            offer_ids,
            filters: Some(Filters {
                refuse_seconds: Some(refuse_seconds),
            }),
        });
        call
    }

    /// ACKNOWLEDGE of a status update.
    pub fn acknowledge(framework_id: &Id, agent_id: Id, task_id: Id, uuid: String) -> Call {
        let mut call = Call::new(CallType::Acknowledge, Some(framework_id.clone()));
        call.acknowledge = Some(Acknowledge {
            agent_id,
            task_id,
            uuid,
        });
        call
    }

    /// KILL.
    pub fn kill(framework_id: &Id, task_id: Id, agent_id: Option<Id>) -> Call {
        let mut call = Call::new(CallType::Kill, Some(framework_id.clone()));
        call.kill = Some(Kill { task_id, agent_id });
        call
    }

    /// RECONCILE; an empty list is implicit reconciliation (`"reconcile": {}`).
    pub fn reconcile(framework_id: &Id, tasks: Vec<ReconcileTask>) -> Call {
        let mut call = Call::new(CallType::Reconcile, Some(framework_id.clone()));
        call.reconcile = Some(Reconcile { tasks });
        call
    }

    /// REVIVE of the given roles (empty: all).
    pub fn revive(framework_id: &Id, roles: Vec<String>) -> Call {
        let mut call = Call::new(CallType::Revive, Some(framework_id.clone()));
        call.revive = Some(Roles { roles });
        call
    }

    /// SUPPRESS of the given roles (empty: all).
    pub fn suppress(framework_id: &Id, roles: Vec<String>) -> Call {
        let mut call = Call::new(CallType::Suppress, Some(framework_id.clone()));
        call.suppress = Some(Roles { roles });
        call
    }
}

/// `Event.Type`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    /// First event of a subscription.
    Subscribed,
    /// New offers.
    Offers,
    /// Maintenance offers.
    InverseOffers,
    /// An offer is no longer valid.
    Rescind,
    /// An inverse offer is no longer valid.
    RescindInverseOffer,
    /// A task status update.
    Update,
    /// An operation status update.
    UpdateOperationStatus,
    /// Executor message.
    Message,
    /// Agent or executor failure.
    Failure,
    /// Subscription error; the stream ends.
    Error,
    /// Liveness.
    Heartbeat,
    /// A type this version does not know; ignored.
    #[serde(other)]
    Unknown,
}

/// `Event.Subscribed`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Subscribed {
    /// The framework's id.
    pub framework_id: Id,
    /// Heartbeat period (15 s in Mesos).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_seconds: Option<f64>,
    /// Master info, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_info: Option<serde_json::Value>,
}

/// `Event.Offers`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Offers {
    /// The offers.
    #[serde(default)]
    pub offers: Vec<Offer>,
}

/// `Event.Rescind`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Rescind {
    /// The offer.
    pub offer_id: Id,
}

/// `Event.Update`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Update {
    /// The status.
    pub status: TaskStatus,
}

/// `Event.Failure`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Failure {
    /// The agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Id>,
    /// The executor; absent when the whole agent was lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<Id>,
    /// POSIX wait status of the executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
}

/// `Event.Error`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ErrorEvent {
    /// Why the subscription ended.
    pub message: String,
}

/// `mesos.v1.scheduler.Event`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Event {
    /// The event type.
    #[serde(rename = "type", default = "unknown_event")]
    pub kind: EventType,
    /// SUBSCRIBED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribed: Option<Subscribed>,
    /// OFFERS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offers: Option<Offers>,
    /// RESCIND.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescind: Option<Rescind>,
    /// UPDATE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<Update>,
    /// FAILURE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// ERROR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorEvent>,
}

fn unknown_event() -> EventType {
    EventType::Unknown
}

impl Event {
    /// An event of a type with no payload (HEARTBEAT).
    pub fn bare(kind: EventType) -> Event {
        Event {
            kind,
            subscribed: None,
            offers: None,
            rescind: None,
            update: None,
            failure: None,
            error: None,
        }
    }
}

#[cfg(test)]
#[path = "calls_tests.rs"]
mod tests;
