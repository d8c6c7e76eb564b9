//! Names shared across the project: API group, labels, annotations, finalizers, condition types,
//! Event reasons, environment variables, job attributes, task context keys and node metadata.
//!
//! Titus's own names (`v3.job.titus.netflix.com/...`, `pod.titus.netflix.com/...`, `TITUS_*`) are
//! kept exactly so existing tooling that reads pods keeps working; this project's own names live
//! under `titus.dev/`.

/// API group of every kind.
pub const API_GROUP: &str = "titus.dev";
/// API version of every kind.
pub const API_VERSION: &str = "v1alpha1";
/// `apiVersion` value of every kind.
pub const API_GROUP_VERSION: &str = "titus.dev/v1alpha1";
/// Scheduler name set on task pods; the Titus scheduler only places pods carrying it.
pub const SCHEDULER_NAME: &str = "titus-scheduler";
/// Capacity group used when a job names none.
pub const DEFAULT_CAPACITY_GROUP: &str = "DEFAULT";
/// Name of the main container of a task pod.
pub const MAIN_CONTAINER_NAME: &str = "main";

/// Labels this project sets (on `TitusTask`s and pods).
pub mod labels {
    /// Titus job id (the `TitusJob`'s uid).
    pub const JOB_ID: &str = "titus.dev/job-id";
    /// Titus task id.
    pub const TASK_ID: &str = "titus.dev/task-id";
    /// `TitusJob` object name; the job's `status.selector` selects on it.
    pub const JOB_NAME: &str = "titus.dev/job-name";
    /// Batch task index.
    pub const TASK_INDEX: &str = "titus.dev/task-index";
    /// Titus pod label: job id.
    pub const TITUS_JOB_ID: &str = "v3.job.titus.netflix.com/job-id";
    /// Titus pod label: task id.
    pub const TITUS_TASK_ID: &str = "v3.job.titus.netflix.com/task-id";
    /// Titus pod label: effective capacity group, lower-cased.
    pub const CAPACITY_GROUP: &str = "titus.netflix.com/capacity-group";
    /// Titus pod label: `SelfManaged` when the budget policy is self-managed.
    pub const RELOCATION_BINPACK: &str = "pod.titus.netflix.com/relocation-binpack";
}

/// Pod annotations (Titus §10.3).
pub mod annotations {
    /// Pod schema version (`1`).
    pub const POD_SCHEMA_VERSION: &str = "pod.netflix.com/pod-schema-version";
    /// Job id.
    pub const JOB_ID: &str = "v3.job.titus.netflix.com/job-id";
    /// `BATCH` / `SERVICE`.
    pub const JOB_TYPE: &str = "v3.job.titus.netflix.com/type";
    /// Disruption budget policy class name.
    pub const DISRUPTION_BUDGET_POLICY: &str = "v3.job.titus.netflix.com/disruption-budget-policy";
    /// Job `Accepted` timestamp in ms.
    pub const JOB_ACCEPTED_TIMESTAMP_MS: &str = "v3.job.titus.netflix.com/accepted-timestamp-ms";
    /// applicationName.
    pub const WORKLOAD_NAME: &str = "workload.netflix.com/name";
    /// jobGroupInfo.stack.
    pub const WORKLOAD_STACK: &str = "workload.netflix.com/stack";
    /// jobGroupInfo.detail.
    pub const WORKLOAD_DETAIL: &str = "workload.netflix.com/detail";
    /// jobGroupInfo.sequence.
    pub const WORKLOAD_SEQUENCE: &str = "workload.netflix.com/sequence";
    /// owner.teamEmail.
    pub const WORKLOAD_OWNER_EMAIL: &str = "workload.netflix.com/owner-email";
    /// `<networkMbps>M`.
    pub const EGRESS_BANDWIDTH: &str = "kubernetes.io/egress-bandwidth";
    /// `<networkMbps>M`.
    pub const INGRESS_BANDWIDTH: &str = "kubernetes.io/ingress-bandwidth";
    /// Comma list of security groups.
    pub const SECURITY_GROUPS: &str = "network.netflix.com/security-groups";
    /// IAM role.
    pub const IAM_ROLE: &str = "iam.amazonaws.com/role";
    /// Network mode name.
    pub const NETWORK_MODE: &str = "network.netflix.com/network-mode";
    /// Task's static IP allocation.
    pub const STATIC_IP_ALLOCATION_UUID: &str = "network.netflix.com/static-ip-allocation-uuid";
    /// Comma list of system-provided env names.
    pub const SYSTEM_ENV_VAR_NAMES: &str = "pod.titus.netflix.com/system-env-var-names";
    /// Original image tag.
    pub const IMAGE_TAG_MAIN: &str = "pod.titus.netflix.com/image-tag-main";
    /// `true` when the agent must shell-split the entry point.
    pub const ENTRYPOINT_SHELL_SPLITTING_ENABLED: &str =
        "pod.titus.netflix.com/entrypoint-shell-splitting-enabled";
    /// Predicted runtime `<sec>s`.
    pub const RUNTIME_PREDICTION: &str = "predictions.scheduler.titus.netflix.com/runtime";
    /// Log upload IAM role.
    pub const LOG_S3_WRITER_IAM_ROLE: &str = "log.netflix.com/s3-writer-iam-role";
    /// Log bucket.
    pub const LOG_S3_BUCKET_NAME: &str = "log.netflix.com/s3-bucket-name";
    /// Resource pool resolution rule.
    pub const RESOURCE_POOL_SELECTION: &str = "scaler.titus.netflix.com/resource-pool-selection";
    /// Resource pools.
    pub const RESOURCE_POOL: &str = "scaler.titus.netflix.com/resource-pool";
    /// Simulated agent: prepare time.
    pub const MOCK_PREPARE_TIME: &str = "github.com.netflix.titus.executor/prepareTime";
    /// Simulated agent: run time.
    pub const MOCK_RUN_TIME: &str = "github.com.netflix.titus.executor/runTime";
    /// Simulated agent: kill time.
    pub const MOCK_KILL_TIME: &str = "github.com.netflix.titus.executor/killTime";
    /// Suffix of the platform sidecar annotation `<name>.platform-sidecars.netflix.com`.
    pub const PLATFORM_SIDECAR_SUFFIX: &str = ".platform-sidecars.netflix.com";
    /// EBS volume id.
    pub const EBS_VOLUME_ID: &str = "ebs.volume.netflix.com/volume-id";
    /// EBS mount path.
    pub const EBS_MOUNT_PATH: &str = "ebs.volume.netflix.com/mount-path";
    /// EBS mount permission.
    pub const EBS_MOUNT_PERM: &str = "ebs.volume.netflix.com/mount-perm";
    /// EBS file system type.
    pub const EBS_FS_TYPE: &str = "ebs.volume.netflix.com/fs-type";
    /// Security attribute forwarded from `securityProfile.attributes`.
    pub const WORKLOAD_METADATA: &str = "security.netflix.com/workload-metadata";
    /// Security attribute forwarded from `securityProfile.attributes`.
    pub const WORKLOAD_METADATA_SIG: &str = "security.netflix.com/workload-metadata-sig";
    /// Written by the agent: effective network mode.
    pub const EFFECTIVE_NETWORK_MODE: &str = "network.netflix.com/effective-network-mode";
    /// Written by the agent: primary IP.
    pub const ADDRESS_IP: &str = "network.netflix.com/address-ip";
    /// Written by the agent: IPv4.
    pub const ADDRESS_IPV4: &str = "network.netflix.com/address-ipv4";
    /// Written by the agent: IPv6.
    pub const ADDRESS_IPV6: &str = "network.netflix.com/address-ipv6";
    /// Written by the agent: transition IPv4.
    pub const ADDRESS_TRANSITION_IPV4: &str = "network.netflix.com/address-transition-ipv4";
    /// Written by the agent: elastic IPv4.
    pub const ADDRESS_ELASTIC_IPV4: &str = "network.netflix.com/address-elastic-ipv4";
    /// Written by the agent: branch ENI id.
    pub const BRANCH_ENI_ID: &str = "network.netflix.com/branch-eni-id";
    /// On a `TitusJob`: who asked for KillJob (the caller id), written by the gateway just
    /// before it deletes the job; the job controller puts it in the `KillInitiated` message.
    pub const KILL_REQUESTED_BY: &str = "titus.dev/kill-requested-by";
    /// On a `TitusJob`: the call reason given with KillJob, if any.
    pub const KILL_REASON: &str = "titus.dev/kill-reason";
}

/// Finalizers.
pub mod finalizers {
    /// On `TitusJob`s: the job controller finishes the job's tasks before the job goes away.
    pub const JOB_CONTROLLER: &str = "titus.dev/job-controller";
    /// On `TitusTask`s: the task controller records the final status before the task goes away.
    pub const TASK_CONTROLLER: &str = "titus.dev/task-controller";
}

/// Condition types.
pub mod conditions {
    /// Job: all desired tasks are `Started` (service) / tasks are running (batch).
    pub const READY: &str = "Ready";
    /// Job: Titus job state `Finished`.
    pub const FINISHED: &str = "Finished";
    /// Job: KillJob received (`KillInitiated`).
    pub const TERMINATING: &str = "Terminating";
    /// Task: the scheduler could not place the task's pod; the message says why.
    pub const UNSCHEDULABLE: &str = "Unschedulable";
    /// Task: the pod object exists.
    pub const POD_CREATED: &str = "PodCreated";
    /// Task: the pod is bound to a node.
    pub const SCHEDULED: &str = "Scheduled";
    /// Capacity group / instance group: usage or size is over what the spec allows.
    pub const OVER_CAPACITY: &str = "OverCapacity";
    /// Instance group: the capacity manager could not reach `desired`.
    pub const SCALING_LIMITED: &str = "ScalingLimited";
}

/// Event reasons.
pub mod events {
    /// A task attempt was created.
    pub const TASK_CREATED: &str = "TaskCreated";
    /// A finished attempt was replaced.
    pub const TASK_REPLACED: &str = "TaskReplaced";
    /// A kill was requested for a task.
    pub const TASK_KILL_REQUESTED: &str = "TaskKillRequested";
    /// A task was chosen as a scale-down victim.
    pub const SCALED_DOWN: &str = "ScaledDown";
    /// A task attempt finished.
    pub const TASK_FINISHED: &str = "TaskFinished";
    /// A pod was created for a task.
    pub const POD_CREATED: &str = "PodCreated";
    /// Pod creation failed.
    pub const POD_CREATE_FAILED: &str = "PodCreateFailed";
    /// The scheduler bound a pod.
    pub const SCHEDULED: &str = "Scheduled";
    /// The scheduler could not place a pod.
    pub const FAILED_SCHEDULING: &str = "FailedScheduling";
    /// A batch attempt exceeded its runtime limit.
    pub const RUNTIME_LIMIT_EXCEEDED: &str = "RuntimeLimitExceeded";
    /// A task timed out in a state.
    pub const STUCK_IN_STATE: &str = "StuckInState";
    /// A task was evicted.
    pub const EVICTED: &str = "Evicted";
    /// KillJob received.
    pub const JOB_KILLED: &str = "JobKilled";
    /// The job finished.
    pub const JOB_FINISHED: &str = "JobFinished";
    /// A job was refused by validation.
    pub const INVALID_JOB: &str = "InvalidJob";
}

/// Environment variable names.
pub mod env {
    /// Job id.
    pub const TITUS_JOB_ID: &str = "TITUS_JOB_ID";
    /// Task id.
    pub const TITUS_TASK_ID: &str = "TITUS_TASK_ID";
    /// `titus`.
    pub const NETFLIX_EXECUTOR: &str = "NETFLIX_EXECUTOR";
    /// Task id.
    pub const NETFLIX_INSTANCE_ID: &str = "NETFLIX_INSTANCE_ID";
    /// Task id.
    pub const TITUS_TASK_INSTANCE_ID: &str = "TITUS_TASK_INSTANCE_ID";
    /// Original task id.
    pub const TITUS_TASK_ORIGINAL_ID: &str = "TITUS_TASK_ORIGINAL_ID";
    /// Batch index.
    pub const TITUS_TASK_INDEX: &str = "TITUS_TASK_INDEX";
    /// CPU cores.
    pub const TITUS_NUM_CPU: &str = "TITUS_NUM_CPU";
    /// Memory MiB.
    pub const TITUS_NUM_MEM: &str = "TITUS_NUM_MEM";
    /// Disk MiB.
    pub const TITUS_NUM_DISK: &str = "TITUS_NUM_DISK";
    /// GPUs.
    pub const TITUS_NUM_GPU: &str = "TITUS_NUM_GPU";
    /// Network Mbps.
    pub const TITUS_NUM_NETWORK_BANDWIDTH: &str = "TITUS_NUM_NETWORK_BANDWIDTH";
    /// applicationName (image name when empty).
    pub const NETFLIX_APP: &str = "NETFLIX_APP";
    /// jobGroupInfo.stack.
    pub const NETFLIX_STACK: &str = "NETFLIX_STACK";
    /// jobGroupInfo.detail.
    pub const NETFLIX_DETAIL: &str = "NETFLIX_DETAIL";
    /// `app[-stack[-detail]]`.
    pub const NETFLIX_CLUSTER: &str = "NETFLIX_CLUSTER";
    /// `<cluster>-<sequence>` or `<cluster>-v000`.
    pub const NETFLIX_AUTO_SCALE_GROUP: &str = "NETFLIX_AUTO_SCALE_GROUP";
    /// Image name.
    pub const TITUS_IMAGE_NAME: &str = "TITUS_IMAGE_NAME";
    /// Image tag.
    pub const TITUS_IMAGE_TAG: &str = "TITUS_IMAGE_TAG";
    /// Image digest.
    pub const TITUS_IMAGE_DIGEST: &str = "TITUS_IMAGE_DIGEST";
    /// IAM role.
    pub const TITUS_IAM_ROLE: &str = "TITUS_IAM_ROLE";
    /// Hard-coded `appuser`.
    pub const NETFLIX_APPUSER: &str = "NETFLIX_APPUSER";
    /// Hard-coded `amazonaws.com`.
    pub const EC2_DOMAIN: &str = "EC2_DOMAIN";
    /// Hard-coded `5`.
    pub const AWS_METADATA_SERVICE_TIMEOUT: &str = "AWS_METADATA_SERVICE_TIMEOUT";
    /// Hard-coded `3`.
    pub const AWS_METADATA_SERVICE_NUM_ATTEMPTS: &str = "AWS_METADATA_SERVICE_NUM_ATTEMPTS";
}

/// Job and container attribute keys.
pub mod attributes {
    /// Caller that created the job.
    pub const CREATED_BY: &str = "titus.createdBy";
    /// Call reason.
    pub const CALL_REASON: &str = "titus.callReason";
    /// Cell name.
    pub const CELL: &str = "titus.cell";
    /// Stack name.
    pub const STACK: &str = "titus.stack";
    /// Prefix of attributes written when an admission step failed open.
    pub const SANITIZATION_PREFIX: &str = "titus.sanitization.";
    /// Prefix of runtime prediction attributes.
    pub const RUNTIME_PREDICTION_PREFIX: &str = "titus.runtimePrediction.";
    /// Prefix of non-compliance attributes (`titus.noncompliant.features`, `...details.*`).
    pub const NONCOMPLIANT_PREFIX: &str = "titus.noncompliant";
    /// Comma list of violated soft rules.
    pub const NONCOMPLIANT_FEATURES: &str = "titus.noncompliant.features";
    /// Prefix of non-compliance details: `titus.noncompliant.details.<feature>.<key>`.
    pub const NONCOMPLIANT_DETAILS_PREFIX: &str = "titus.noncompliant.details.";
    /// Do not join the entry point for shell splitting.
    pub const ENTRY_POINT_SKIP_SHELL_PARSING: &str = "titusParameter.entryPoint.skipShellParsing";
    /// Pod termination grace period in seconds.
    pub const KILL_WAIT_SECONDS: &str = "titusParameter.agent.killWaitSeconds";
    /// Prefix of container attributes that become pod annotations.
    pub const AGENT_PREFIX: &str = "titusParameter.agent.";
    /// Explicit resource pools.
    pub const RESOURCE_POOLS: &str = "titusParameter.resourcePools";
    /// Spreading switch.
    pub const SPREADING_ENABLED: &str = "titusParameter.spreading.enabled";
    /// Spreading max skew.
    pub const SPREADING_MAX_SKEW: &str = "titusParameter.spreading.maxSkew";
    /// Extra tolerations.
    pub const TOLERATIONS: &str = "titusParameter.tolerations";
    /// Simulated agent: prepare time.
    pub const MOCK_PREPARE_TIME: &str = "titusParameter.mockVK.prepareTime";
    /// Simulated agent: run time.
    pub const MOCK_RUN_TIME: &str = "titusParameter.mockVK.runTime";
    /// Simulated agent: kill time.
    pub const MOCK_KILL_TIME: &str = "titusParameter.mockVK.killTime";
}

/// Titus task context keys (§3.1).
pub mod task_context {
    /// First attempt id.
    pub const ORIGINAL_ID: &str = "task.originalId";
    /// Replaced attempt id.
    pub const RESUBMIT_OF: &str = "task.resubmitOf";
    /// Resubmit number.
    pub const RESUBMIT_NUMBER: &str = "task.resubmitNumber";
    /// System resubmit number.
    pub const SYSTEM_RESUBMIT_NUMBER: &str = "task.systemResubmitNumber";
    /// Eviction resubmit number.
    pub const EVICTION_RESUBMIT_NUMBER: &str = "task.evictionResubmitNumber";
    /// Batch index.
    pub const INDEX: &str = "task.index";
    /// Retry delay of a finished attempt (human string, e.g. `1s`).
    pub const RETRY_DELAY: &str = "task.retryDelay";
    /// Cell.
    pub const CELL: &str = "titus.cell";
    /// Stack.
    pub const STACK: &str = "titus.stack";
    /// Resource pool.
    pub const RESOURCE_POOL: &str = "resourcePool";
    /// Tier.
    pub const TIER: &str = "task.tier";
    /// `true` once the pod exists.
    pub const POD_CREATED: &str = "kube.podCreated";
    /// Node name.
    pub const NODE_NAME: &str = "kube.nodeName";
    /// Node IPv4 address.
    pub const AGENT_HOST: &str = "agent.host";
    /// Node IPv4 address.
    pub const AGENT_HOST_IP: &str = "agent.hostIp";
    /// Region.
    pub const AGENT_REGION: &str = "agent.region";
    /// Zone.
    pub const AGENT_ZONE: &str = "agent.zone";
    /// AMI.
    pub const AGENT_AMI: &str = "agent.ami";
    /// ASG / instance group.
    pub const AGENT_ASG: &str = "agent.asg";
    /// Cluster.
    pub const AGENT_CLUSTER: &str = "agent.cluster";
    /// Stack.
    pub const AGENT_STACK: &str = "agent.stack";
    /// Instance type.
    pub const AGENT_ITYPE: &str = "agent.itype";
    /// Instance id.
    pub const AGENT_INSTANCE_ID: &str = "agent.instanceId";
    /// Agent id.
    pub const AGENT_ID: &str = "agent.id";
    /// Resources.
    pub const AGENT_RES: &str = "agent.res";
    /// Container IP.
    pub const CONTAINER_IP: &str = "task.containerIp";
    /// Container IPv4.
    pub const CONTAINER_IPV4: &str = "task.containerIPv4";
    /// Container IPv6.
    pub const CONTAINER_IPV6: &str = "task.containerIPv6";
    /// Elastic IPv4.
    pub const ELASTIC_IPV4: &str = "task.elasticIPv4";
    /// Transition IPv4.
    pub const TRANSITION_IPV4: &str = "task.transitionIPv4";
    /// ENI id.
    pub const NETWORK_INTERFACE_ID: &str = "task.networkInterfaceId";
    /// Effective network mode.
    pub const EFFECTIVE_NETWORK_MODE: &str = "task.effectiveNetworkMode";
    /// Source job of a moved task.
    pub const MOVED_FROM_JOB: &str = "task.movedFromJob";
}

/// Node labels, annotations and taints (§10.5).
pub mod node {
    /// Zone label.
    pub const ZONE: &str = "failure-domain.beta.kubernetes.io/zone";
    /// Region label.
    pub const REGION: &str = "failure-domain.beta.kubernetes.io/region";
    /// Instance type label.
    pub const INSTANCE_TYPE: &str = "beta.kubernetes.io/instance-type";
    /// Node (agent) id label.
    pub const ID: &str = "node.titus.netflix.com/id";
    /// Instance group (ASG) label.
    pub const ASG: &str = "node.titus.netflix.com/asg";
    /// Account id label.
    pub const ACCOUNT_ID: &str = "node.titus.netflix.com/accountId";
    /// Backend label (`kubeBackend` constraint).
    pub const BACKEND: &str = "node.titus.netflix.com/backend";
    /// CPU model label (`cpuModel` constraint).
    pub const CPU_MODEL_NAME: &str = "node.titus.netflix.com/cpu-model-name";
    /// Resource pool label.
    pub const RESOURCE_POOL: &str = "scaler.titus.netflix.com/resource-pool";
    /// Taint tolerated by every task pod (`virtual-kubelet.io/provider=titus`).
    pub const TAINT_PROVIDER: &str = "virtual-kubelet.io/provider";
    /// Taint: `node.titus.netflix.com/scheduler=kubeScheduler`.
    pub const TAINT_SCHEDULER: &str = "node.titus.netflix.com/scheduler";
    /// Taint: tier (`critical` / `flex`).
    pub const TAINT_TIER: &str = "node.titus.netflix.com/tier";
    /// Taint: decommissioning (draining or evacuating).
    pub const TAINT_DECOMMISSIONING: &str = "node.titus.netflix.com/decommissioning";
    /// Taint: GPU nodes.
    pub const TAINT_GPU: &str = "node.titus.netflix.com/gpu";
    /// Taint: farzone.
    pub const TAINT_FARZONE: &str = "node.titus.netflix.com/farzone";
    /// Taint: not yet initialised.
    pub const TAINT_UNINITIALIZED: &str = "node.titus.netflix.com/uninitialized";
}
