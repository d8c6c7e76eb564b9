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

/// Pod annotation: the entry point is one string to shell-split (legacy Titus jobs).
pub const ENTRYPOINT_SHELL_SPLITTING: &str =
    "pod.titus.netflix.com/entrypoint-shell-splitting-enabled";
/// Pod annotation: the image tag the job asked for (the Pod references the digest).
pub const IMAGE_TAG_MAIN: &str = "pod.titus.netflix.com/image-tag-main";
/// Pod annotation: CPU bursting (no CFS quota).
pub const CPU_BURSTING: &str = "pod.netflix.com/cpu-bursting-enabled";
/// Pod annotation: IAM role.
pub const IAM_ROLE: &str = "iam.amazonaws.com/role";
/// Pod annotations with the job group names.
pub const WORKLOAD_NAME: &str = "workload.netflix.com/name";
/// Job group stack.
pub const WORKLOAD_STACK: &str = "workload.netflix.com/stack";
/// Job group detail.
pub const WORKLOAD_DETAIL: &str = "workload.netflix.com/detail";
/// Job group sequence.
pub const WORKLOAD_SEQUENCE: &str = "workload.netflix.com/sequence";
/// Pod label with the Titus task id.
pub const POD_TASK_ID: &str = "v3.job.titus.netflix.com/task-id";
/// Prefix of annotations passed to the runtime (the simulated runtime reads its timings there).
pub const EXECUTOR_ANNOTATION_PREFIX: &str = "github.com.netflix.titus.executor/";

// Node labels and taints (titus-semantics §10.5); the same names as titus-crds' `node` constants.
/// Zone label.
pub const NODE_ZONE: &str = "failure-domain.beta.kubernetes.io/zone";
/// Region label.
pub const NODE_REGION: &str = "failure-domain.beta.kubernetes.io/region";
/// Instance type label.
pub const NODE_INSTANCE_TYPE: &str = "beta.kubernetes.io/instance-type";
/// Node id label.
pub const NODE_ID: &str = "node.titus.netflix.com/id";
/// Instance group (ASG) label.
pub const NODE_ASG: &str = "node.titus.netflix.com/asg";
/// Backend label.
pub const NODE_BACKEND: &str = "node.titus.netflix.com/backend";
/// Tier label and taint.
pub const NODE_TIER: &str = "node.titus.netflix.com/tier";
/// Taint every Titus Pod tolerates.
pub const TAINT_PROVIDER: &str = "virtual-kubelet.io/provider";
