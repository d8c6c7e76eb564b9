//! Label and annotation names the agent reads and writes, in one place.
//!
//! Container labels (on containerd containers) let the agent find and re-adopt its containers
//! after a restart; the Titus annotation names are the ones the Titus control plane puts on Pods.

/// Marks a containerd container as managed by this agent; `list()` filters on it.
pub const MANAGED: &str = "titus.dev/managed";
/// Kubernetes Pod UID the container runs for.
pub const POD_UID: &str = "titus.dev/pod-uid";
/// Kubernetes Pod namespace.
pub const POD_NAMESPACE: &str = "titus.dev/pod-namespace";
/// Kubernetes Pod name (the Titus task id in Titus's Pod layout).
pub const POD_NAME: &str = "titus.dev/pod-name";
/// Titus task id.
pub const TASK_ID: &str = "titus.dev/task-id";
/// RFC 3339 time the container's task was started, written after start so that a restarted agent
/// reports the original start time.
pub const STARTED_AT: &str = "titus.dev/started-at";
/// Set when the agent asked the container to stop, so that a restarted agent still reports the
/// exit as `Killed` rather than as a failure.
pub const STOP_REQUESTED: &str = "titus.dev/stop-requested";

/// Simulated agent: time from create to running (Titus `titusParameter.mockVK.prepareTime`).
pub const MOCK_PREPARE_TIME: &str = "github.com.netflix.titus.executor/prepareTime";
/// Simulated agent: time running before the container exits by itself (`mockVK.runTime`).
pub const MOCK_RUN_TIME: &str = "github.com.netflix.titus.executor/runTime";
/// Simulated agent: time a stop takes (`mockVK.killTime`).
pub const MOCK_KILL_TIME: &str = "github.com.netflix.titus.executor/killTime";
