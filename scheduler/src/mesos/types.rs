//! Mesos v1 messages in Mesos' own JSON mapping (mesos-offers.md §1.1): proto field names in
//! snake_case, enums as their names, `bytes` as standard base64 strings, IDs wrapped as
//! `{"value": ...}`. Only the messages and fields the adapter reads or writes are typed; fields
//! copied through verbatim (reservations, disk info, container status) stay JSON values.
//! Deserialisation is lenient: unknown fields are ignored, missing ones default, unknown enum
//! names become `Unknown`.

use serde::{Deserialize, Serialize};

/// A Mesos ID message (`FrameworkID`, `AgentID`, `OfferID`, `TaskID`, `ExecutorID`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id {
    /// The id.
    pub value: String,
}

impl Id {
    /// Wraps a string.
    pub fn new(value: impl Into<String>) -> Id {
        Id {
            value: value.into(),
        }
    }
}

/// `Value.Type`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ValueType {
    /// A double.
    Scalar,
    /// Inclusive integer ranges.
    Ranges,
    /// A set of strings.
    Set,
    /// A string.
    Text,
    /// A name this version does not know.
    #[serde(other)]
    Unknown,
}

/// `Value.Scalar`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct Scalar {
    /// The value (3 decimal digits of precision in Mesos).
    pub value: f64,
}

/// `Value.Range` (inclusive).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    /// First value.
    pub begin: u64,
    /// Last value.
    pub end: u64,
}

/// `Value.Ranges`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Ranges {
    /// The ranges.
    #[serde(default)]
    pub range: Vec<Range>,
}

/// `Value.Set`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ValueSet {
    /// The items.
    #[serde(default)]
    pub item: Vec<String>,
}

/// `Value.Text`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Text {
    /// The text.
    pub value: String,
}

/// `Resource.AllocationInfo`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct AllocationInfo {
    /// The role the resources are allocated to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// `Resource`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Resource {
    /// `cpus`, `mem`, `disk`, `network`, `gpus`, `ports`, ...
    pub name: String,
    /// The value type.
    #[serde(rename = "type")]
    pub kind: ValueType,
    /// Set for `SCALAR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalar: Option<Scalar>,
    /// Set for `RANGES`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Ranges>,
    /// Set for `SET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<ValueSet>,
    /// Deprecated role (`*` = unreserved) in the pre-refinement format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The allocation role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_info: Option<AllocationInfo>,
    /// Pre-refinement dynamic reservation, copied verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<serde_json::Value>,
    /// Post-refinement reservations, copied verbatim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reservations: Vec<serde_json::Value>,
    /// Disk info (persistent volumes, MOUNT/BLOCK/RAW sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<serde_json::Value>,
    /// Present for revocable (oversubscribed) resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocable: Option<serde_json::Value>,
}

impl Resource {
    /// An unreserved scalar resource.
    pub fn scalar(name: &str, value: f64) -> Resource {
        Resource {
            name: name.to_string(),
            kind: ValueType::Scalar,
            scalar: Some(Scalar { value }),
            ranges: None,
            set: None,
            role: None,
            allocation_info: None,
            reservation: None,
            reservations: Vec::new(),
            disk: None,
            revocable: None,
        }
    }
}

/// `Attribute`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Attribute {
    /// Name.
    pub name: String,
    /// Value type.
    #[serde(rename = "type")]
    pub kind: ValueType,
    /// Set for `SCALAR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalar: Option<Scalar>,
    /// Set for `RANGES`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Ranges>,
    /// Set for `SET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<ValueSet>,
    /// Set for `TEXT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Text>,
}

impl Attribute {
    /// A TEXT attribute.
    pub fn text(name: &str, value: &str) -> Attribute {
        Attribute {
            name: name.to_string(),
            kind: ValueType::Text,
            scalar: None,
            ranges: None,
            set: None,
            text: Some(Text {
                value: value.to_string(),
            }),
        }
    }
}

/// `DomainInfo.FaultDomain.{Region,Zone}Info`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Named {
    /// Name.
    pub name: String,
}

/// `DomainInfo.FaultDomain`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultDomain {
    /// Region.
    #[serde(default)]
    pub region: Option<Named>,
    /// Zone.
    #[serde(default)]
    pub zone: Option<Named>,
}

/// `DomainInfo`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainInfo {
    /// Fault domain.
    #[serde(default)]
    pub fault_domain: Option<FaultDomain>,
}

/// `Offer`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Offer {
    /// Offer id (single use).
    pub id: Id,
    /// The framework.
    pub framework_id: Id,
    /// The agent (changes when an agent re-registers).
    pub agent_id: Id,
    /// The agent's host name (stable).
    pub hostname: String,
    /// Agent endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<serde_json::Value>,
    /// Fault domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<DomainInfo>,
    /// Offered resources.
    #[serde(default)]
    pub resources: Vec<Resource>,
    /// Agent attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
    /// This framework's executors on the agent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub executor_ids: Vec<Id>,
    /// The role the offer is allocated to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_info: Option<AllocationInfo>,
}

/// `FrameworkInfo.Capability`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Capability {
    /// `MULTI_ROLE`, `PARTITION_AWARE`, `TASK_KILLING_STATE`, `GPU_RESOURCES`, ...
    #[serde(rename = "type")]
    pub kind: String,
}

/// `Label`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// Key.
    pub key: String,
    /// Value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `Labels`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels {
    /// The labels.
    #[serde(default)]
    pub labels: Vec<Label>,
}

/// `FrameworkInfo`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FrameworkInfo {
    /// Unix user tasks run as (required by the HTTP API).
    pub user: String,
    /// Framework name.
    pub name: String,
    /// The id a master assigned, on re-subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
    /// Seconds the master keeps the framework's tasks after a disconnect (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_timeout: Option<f64>,
    /// Whether agents checkpoint the framework's tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<bool>,
    /// Roles (needs `MULTI_ROLE`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Host the framework runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Authentication principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Capabilities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<Capability>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

impl FrameworkInfo {
    /// The adapter's usual framework: one week failover, checkpointing, and the capabilities
    /// `MULTI_ROLE`, `PARTITION_AWARE`, `TASK_KILLING_STATE`, `GPU_RESOURCES`.
    pub fn titus(name: &str, user: &str, role: &str) -> FrameworkInfo {
        let capabilities = [
            "MULTI_ROLE",
            "PARTITION_AWARE",
            "TASK_KILLING_STATE",
            "GPU_RESOURCES",
        ]
        .into_iter()
        .map(|kind| Capability {
            kind: kind.to_string(),
        })
        .collect();
        FrameworkInfo {
            user: user.to_string(),
            name: name.to_string(),
            id: None,
            failover_timeout: Some(604_800.0),
            checkpoint: Some(true),
            roles: vec![role.to_string()],
            hostname: None,
            principal: None,
            capabilities,
            labels: None,
        }
    }

    /// True when the framework declared the capability.
    pub fn has_capability(&self, kind: &str) -> bool {
        self.capabilities.iter().any(|c| c.kind == kind)
    }
}

/// `CommandInfo`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CommandInfo {
    /// `/bin/sh -c value` when true (proto default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<bool>,
    /// The command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// argv when `shell` is false.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    /// Environment, verbatim (`{"variables": [...]}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<serde_json::Value>,
}

/// `TaskInfo`, as sent in a LAUNCH operation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TaskInfo {
    /// Task name.
    pub name: String,
    /// Task id.
    pub task_id: Id,
    /// The offer's agent.
    pub agent_id: Id,
    /// Resources, contained in the offers (non-empty).
    pub resources: Vec<Resource>,
    /// Command for the built-in command executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfo>,
    /// `ContainerInfo`, verbatim (`{"type": "MESOS", "mesos": {"image": ...}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<serde_json::Value>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    /// `KillPolicy`, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<serde_json::Value>,
    /// Opaque data, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// `TaskState`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskState {
    /// Master-side initial state.
    TaskStaging,
    /// The executor learned of the task.
    TaskStarting,
    /// Running.
    TaskRunning,
    /// Being killed (`TASK_KILLING_STATE`).
    TaskKilling,
    /// Exited successfully (terminal).
    TaskFinished,
    /// Exited unsuccessfully (terminal).
    TaskFailed,
    /// Killed (terminal).
    TaskKilled,
    /// Invalid task (terminal).
    TaskError,
    /// Lost (non-partition-aware; not always terminal).
    TaskLost,
    /// Launch failed transiently (terminal, partition-aware).
    TaskDropped,
    /// Agent partitioned (partition-aware).
    TaskUnreachable,
    /// Definitely not running (terminal, partition-aware).
    TaskGone,
    /// Operator marked the agent gone (partition-aware).
    TaskGoneByOperator,
    /// Master has no record (partition-aware).
    TaskUnknown,
    /// A state this version does not know.
    #[serde(other)]
    Unrecognized,
}

impl TaskState {
    /// The Mesos name (`TASK_RUNNING`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::TaskStaging => "TASK_STAGING",
            TaskState::TaskStarting => "TASK_STARTING",
            TaskState::TaskRunning => "TASK_RUNNING",
            TaskState::TaskKilling => "TASK_KILLING",
            TaskState::TaskFinished => "TASK_FINISHED",
            TaskState::TaskFailed => "TASK_FAILED",
            TaskState::TaskKilled => "TASK_KILLED",
            TaskState::TaskError => "TASK_ERROR",
            TaskState::TaskLost => "TASK_LOST",
            TaskState::TaskDropped => "TASK_DROPPED",
            TaskState::TaskUnreachable => "TASK_UNREACHABLE",
            TaskState::TaskGone => "TASK_GONE",
            TaskState::TaskGoneByOperator => "TASK_GONE_BY_OPERATOR",
            TaskState::TaskUnknown => "TASK_UNKNOWN",
            TaskState::Unrecognized => "TASK_UNRECOGNIZED",
        }
    }

    /// True for states after which Mesos holds no resources for the task.
    pub fn is_terminal(self) -> bool {
        match self {
            TaskState::TaskFinished
            | TaskState::TaskFailed
            | TaskState::TaskKilled
            | TaskState::TaskError
            | TaskState::TaskLost
            | TaskState::TaskDropped
            | TaskState::TaskGone
            | TaskState::TaskGoneByOperator
            | TaskState::TaskUnknown => true,
            TaskState::TaskStaging
            | TaskState::TaskStarting
            | TaskState::TaskRunning
            | TaskState::TaskKilling
            | TaskState::TaskUnreachable
            | TaskState::Unrecognized => false,
        }
    }
}

/// `TaskStatus.Source`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Source {
    /// Generated by the master (no uuid, not retried).
    SourceMaster,
    /// Generated by the agent.
    SourceAgent,
    /// Generated by the executor.
    SourceExecutor,
    /// A name this version does not know.
    #[serde(other)]
    Unknown,
}

/// `TaskStatus`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TaskStatus {
    /// The task.
    pub task_id: Id,
    /// Its state.
    pub state: TaskState,
    /// Human message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Who generated the update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// `REASON_*` name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Executor payload, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Id>,
    /// The executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<Id>,
    /// Seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<f64>,
    /// Base64 of a 16-byte UUID; present only on reliably delivered updates, which must be
    /// acknowledged with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Health-check result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// Container status (network infos with the task IP), verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_status: Option<serde_json::Value>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

/// `Filters`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct Filters {
    /// Seconds the declined resources are not re-offered (proto default 5.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_seconds: Option<f64>,
}
