//! Label and annotation names the agent reads and writes, in one place.
//!
//! Container labels (on containerd containers) let the agent find and re-adopt its containers
//! after a restart; the Titus annotation names are re-exported from `titus_crds::constants`.

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

// Titus names come from `titus_crds::constants`, so the agent reads exactly what the control
// plane writes.
pub use titus_crds::constants::annotations::{
    ENTRYPOINT_SHELL_SPLITTING_ENABLED as ENTRYPOINT_SHELL_SPLITTING, IAM_ROLE, IMAGE_TAG_MAIN,
    MOCK_KILL_TIME, MOCK_PREPARE_TIME, MOCK_RUN_TIME, WORKLOAD_DETAIL, WORKLOAD_NAME,
    WORKLOAD_SEQUENCE, WORKLOAD_STACK,
};
pub use titus_crds::constants::labels::TITUS_TASK_ID as POD_TASK_ID;

/// Pod annotation: CPU bursting (no CFS quota), from `titusParameter.agent.allowCpuBursting`.
pub const CPU_BURSTING: &str = "pod.netflix.com/cpu-bursting-enabled";
/// Prefix of annotations passed to the runtime (the simulated runtime reads its timings there).
pub const EXECUTOR_ANNOTATION_PREFIX: &str = "github.com.netflix.titus.executor/";
/// Well-known Kubernetes node label with the node's host name.
pub const NODE_HOSTNAME: &str = "kubernetes.io/hostname";
