//! Pure pieces of a task's Pod, as final Titus built them: environment (§10.4 and the parts of
//! §13.2 that follow from the job), annotations (§10.3), labels (§10.1), resources as Kubernetes
//! quantities (§10.2) and the Docker entry point / command mapping (§2.6) with its shell-splitting
//! quirk. The task controller assembles the Pod from these; the agent uses [`shell_split`].

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::constants::{annotations, attributes, env, labels};
use crate::job::TitusJobSpec;
use crate::job::container::{Container, ContainerResources};
use crate::job::status::TitusJobStatus;

/// Errors of the pod helpers.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PodError {
    /// The entry point string could not be split with shell rules.
    #[error("cannot shell-split entry point {entry_point:?}: unbalanced quotes or trailing escape")]
    ShellSplit {
        /// The string.
        entry_point: String,
    },
}

/// Identity of the task attempt a pod runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskIdentity {
    /// Titus job id.
    pub job_id: String,
    /// Titus task id.
    pub task_id: String,
    /// First attempt id of the chain.
    pub original_id: String,
    /// Batch index.
    pub index: Option<u32>,
}

/// A task's environment and which names the system provided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskEnvironment {
    /// Final variables, after Titus's precedence.
    pub vars: BTreeMap<String, String>,
    /// Names set by the system (for annotation `pod.titus.netflix.com/system-env-var-names`),
    /// sorted.
    pub system_names: Vec<String>,
}

/// The container environment of a task, lowest to highest priority:
/// hard-coded values, resources (`TITUS_NUM_*`), naming (`NETFLIX_APP`, `NETFLIX_CLUSTER`, ...),
/// the user's `env`, the control-plane identity variables (`TITUS_JOB_ID`, `TITUS_TASK_ID`, ...),
/// then image and IAM overrides. Host-derived variables (`EC2_*` of the node, IPs, container id)
/// are the agent's to add.
pub fn task_env(spec: &TitusJobSpec, task: &TaskIdentity) -> TaskEnvironment {
    let mut system: BTreeMap<String, String> = BTreeMap::new();
    let mut set = |name: &str, value: String| {
        system.insert(name.to_string(), value);
    };
    set(env::NETFLIX_APPUSER, "appuser".into());
    set(env::EC2_DOMAIN, "amazonaws.com".into());
    set(env::AWS_METADATA_SERVICE_TIMEOUT, "5".into());
    set(env::AWS_METADATA_SERVICE_NUM_ATTEMPTS, "3".into());
    let r = &spec.container.resources;
    set(env::TITUS_NUM_CPU, format_cpu(r.cpu));
    set(env::TITUS_NUM_MEM, r.memory_mb.to_string());
    set(env::TITUS_NUM_DISK, r.disk_mb.to_string());
    set(env::TITUS_NUM_GPU, r.gpu.to_string());
    set(env::TITUS_NUM_NETWORK_BANDWIDTH, r.network_mbps.to_string());
    for (name, value) in naming_env(spec) {
        set(name, value);
    }
    let mut vars = system.clone();
    for (name, value) in &spec.container.env {
        vars.insert(name.clone(), value.clone());
        system.remove(name);
    }
    let mut overrides = vec![
        (env::TITUS_JOB_ID, task.job_id.clone()),
        (env::TITUS_TASK_ID, task.task_id.clone()),
        (env::NETFLIX_EXECUTOR, "titus".to_string()),
        (env::NETFLIX_INSTANCE_ID, task.task_id.clone()),
        (env::TITUS_TASK_INSTANCE_ID, task.task_id.clone()),
        (env::TITUS_TASK_ORIGINAL_ID, task.original_id.clone()),
    ];
    if let Some(index) = task.index {
        overrides.push((env::TITUS_TASK_INDEX, index.to_string()));
    }
    let image = &spec.container.image;
    for (name, value) in [
        (env::TITUS_IMAGE_NAME, &image.name),
        (env::TITUS_IMAGE_TAG, &image.tag),
        (env::TITUS_IMAGE_DIGEST, &image.digest),
        (
            env::TITUS_IAM_ROLE,
            &spec.container.security_profile.iam_role,
        ),
    ] {
        if !value.is_empty() {
            overrides.push((name, value.clone()));
        }
    }
    for (name, value) in overrides {
        vars.insert(name.to_string(), value.clone());
        system.insert(name.to_string(), value);
    }
    TaskEnvironment {
        vars,
        system_names: system.into_keys().collect(),
    }
}

/// `NETFLIX_APP` (image name when no application name), `NETFLIX_STACK`, `NETFLIX_DETAIL`,
/// `NETFLIX_CLUSTER` (`app[-stack[-detail]]`, frigga style) and `NETFLIX_AUTO_SCALE_GROUP`.
fn naming_env(spec: &TitusJobSpec) -> Vec<(&'static str, String)> {
    let app = if spec.application_name.is_empty() {
        spec.container.image.name.clone()
    } else {
        spec.application_name.clone()
    };
    let group = &spec.job_group_info;
    let cluster = match (group.stack.is_empty(), group.detail.is_empty()) {
        (true, true) => app.clone(),
        (false, true) => format!("{app}-{}", group.stack),
        (_, false) => format!("{app}-{}-{}", group.stack, group.detail),
    };
    let sequence = if group.sequence.is_empty() {
        "v000"
    } else {
        &group.sequence
    };
    vec![
        (env::NETFLIX_APP, app),
        (env::NETFLIX_STACK, group.stack.clone()),
        (env::NETFLIX_DETAIL, group.detail.clone()),
        (
            env::NETFLIX_AUTO_SCALE_GROUP,
            format!("{cluster}-{sequence}"),
        ),
        (env::NETFLIX_CLUSTER, cluster),
    ]
}

/// CPU cores as Titus writes them: `2` for whole numbers, `1.5` otherwise.
fn format_cpu(cpu: f64) -> String {
    if cpu.fract() == 0.0 {
        format!("{cpu:.0}")
    } else {
        cpu.to_string()
    }
}

/// Pod resources (requests = limits): `cpu`, `memory` (`<memoryMB>Mi`), `ephemeral-storage`
/// (`<diskMB>Mi`), `titus/network` (`<networkMbps>M`) and, when any, `nvidia.com/gpu`. A
/// fractional CPU is given in millicores, rounded up (what the API server would do).
pub fn pod_resources(r: &ContainerResources) -> BTreeMap<String, Quantity> {
    let cpu = if r.cpu.fract() == 0.0 {
        format_cpu(r.cpu)
    } else {
        format!("{:.0}m", (r.cpu * 1000.0).ceil())
    };
    let mut out = BTreeMap::from([
        ("cpu".to_string(), Quantity(cpu)),
        ("memory".to_string(), Quantity(format!("{}Mi", r.memory_mb))),
        (
            "ephemeral-storage".to_string(),
            Quantity(format!("{}Mi", r.disk_mb)),
        ),
        (
            "titus/network".to_string(),
            Quantity(format!("{}M", r.network_mbps)),
        ),
    ]);
    if r.gpu > 0 {
        out.insert("nvidia.com/gpu".to_string(), Quantity(r.gpu.to_string()));
    }
    out
}

/// The main container's `command` and `args`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodCommand {
    /// Pod `command` (replaces the image ENTRYPOINT); empty = image ENTRYPOINT.
    pub command: Vec<String>,
    /// Pod `args` (replaces the image CMD); empty = image CMD (when `command` is empty too).
    pub args: Vec<String>,
    /// The agent must shell-split `command[0]`
    /// (annotation `pod.titus.netflix.com/entrypoint-shell-splitting-enabled=true`).
    pub shell_splitting: bool,
}

/// Maps Docker entry point / command to Pod command / args (§2.6).
///
/// * Legacy quirk kept from Titus: when `command` is empty and job attribute
///   `titusParameter.entryPoint.skipShellParsing` is not `true`, the entry point is joined with
///   spaces into one string for the agent to shell-split.
/// * Otherwise `entryPoint` -> `command` and `command` -> `args` unchanged.
/// * `entryPoint: [""]` clears the image ENTRYPOINT: the Docker command becomes the Pod command.
///   `command: [""]` clears the image CMD: Pod args stay empty. (A Pod cannot keep an image
///   ENTRYPOINT while dropping its CMD; in that one case the image CMD still applies.)
pub fn pod_command(container: &Container, job_attributes: &BTreeMap<String, String>) -> PodCommand {
    let cleared = |v: &[String]| v.len() == 1 && v[0].is_empty();
    let entry_point: &[String] = &container.entry_point;
    let command: &[String] = if cleared(&container.command) {
        &[]
    } else {
        &container.command
    };
    if cleared(entry_point) {
        return PodCommand {
            command: command.to_vec(),
            args: Vec::new(),
            shell_splitting: false,
        };
    }
    let skip_parsing = job_attributes
        .get(attributes::ENTRY_POINT_SKIP_SHELL_PARSING)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if command.is_empty()
        && container.command.is_empty()
        && !entry_point.is_empty()
        && !skip_parsing
    {
        return PodCommand {
            command: vec![entry_point.join(" ")],
            args: Vec::new(),
            shell_splitting: true,
        };
    }
    PodCommand {
        command: entry_point.to_vec(),
        args: command.to_vec(),
        shell_splitting: false,
    }
}

/// Splits a legacy entry point string into argv with shell word rules (quotes and backslash
/// escapes; no expansion), as the agent does when shell splitting is enabled.
///
/// # Errors
/// [`PodError::ShellSplit`] on unbalanced quotes or a trailing backslash.
pub fn shell_split(entry_point: &str) -> Result<Vec<String>, PodError> {
    shell_words::split(entry_point).map_err(|_| PodError::ShellSplit {
        entry_point: entry_point.to_string(),
    })
}

/// Pod annotations of a task (§10.3) that follow from the job. `system_env_names` comes from
/// [`task_env`]; task-specific ones (static IP allocation) are the caller's to add.
pub fn pod_annotations(
    spec: &TitusJobSpec,
    job_id: &str,
    job_status: Option<&TitusJobStatus>,
    system_env_names: &[String],
) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    let mut put = |key: &str, value: String| {
        if !value.is_empty() {
            a.insert(key.to_string(), value);
        }
    };
    put(annotations::POD_SCHEMA_VERSION, "1".into());
    put(annotations::JOB_ID, job_id.to_string());
    if let Some(job_type) = spec.job_type() {
        put(annotations::JOB_TYPE, job_type.as_annotation_value().into());
    }
    if let Some(policy) = spec.disruption_budget.as_ref().and_then(|b| b.policy()) {
        put(
            annotations::DISRUPTION_BUDGET_POLICY,
            policy.class_name().into(),
        );
    }
    if let Some(accepted) = job_status.and_then(TitusJobStatus::accepted_timestamp) {
        put(annotations::JOB_ACCEPTED_TIMESTAMP_MS, accepted.to_string());
    }
    put(annotations::WORKLOAD_NAME, spec.application_name.clone());
    put(
        annotations::WORKLOAD_STACK,
        spec.job_group_info.stack.clone(),
    );
    put(
        annotations::WORKLOAD_DETAIL,
        spec.job_group_info.detail.clone(),
    );
    put(
        annotations::WORKLOAD_SEQUENCE,
        spec.job_group_info.sequence.clone(),
    );
    put(
        annotations::WORKLOAD_OWNER_EMAIL,
        spec.owner.team_email.clone(),
    );
    let bandwidth = format!("{}M", spec.container.resources.network_mbps);
    put(annotations::EGRESS_BANDWIDTH, bandwidth.clone());
    put(annotations::INGRESS_BANDWIDTH, bandwidth);
    let profile = &spec.container.security_profile;
    put(
        annotations::SECURITY_GROUPS,
        profile.security_groups.join(","),
    );
    put(annotations::IAM_ROLE, profile.iam_role.clone());
    let mode = spec.network_configuration.network_mode;
    if mode != crate::job::NetworkMode::UnknownNetworkMode {
        put(annotations::NETWORK_MODE, mode.as_str().into());
    }
    put(
        annotations::SYSTEM_ENV_VAR_NAMES,
        system_env_names.join(","),
    );
    put(
        annotations::IMAGE_TAG_MAIN,
        spec.container.image.tag.clone(),
    );
    if pod_command(&spec.container, &spec.attributes).shell_splitting {
        put(
            annotations::ENTRYPOINT_SHELL_SPLITTING_ENABLED,
            "true".into(),
        );
    }
    for (attribute, annotation) in [
        (
            attributes::MOCK_PREPARE_TIME,
            annotations::MOCK_PREPARE_TIME,
        ),
        (attributes::MOCK_RUN_TIME, annotations::MOCK_RUN_TIME),
        (attributes::MOCK_KILL_TIME, annotations::MOCK_KILL_TIME),
    ] {
        if let Some(value) = spec.attributes.get(attribute) {
            put(annotation, value.clone());
        }
    }
    for sidecar in &spec.platform_sidecars {
        let base = format!("{}{}", sidecar.name, annotations::PLATFORM_SIDECAR_SUFFIX);
        put(&base, "true".into());
        put(&format!("{base}/channel"), sidecar.channel.clone());
        if let Some(arguments) = &sidecar.arguments {
            put(
                &format!("{base}/arguments"),
                serde_json::Value::Object(arguments.clone()).to_string(),
            );
        }
    }
    for (key, value) in &spec.container.attributes {
        let Some(name) = key.strip_prefix(attributes::AGENT_PREFIX) else {
            continue;
        };
        if name == "schedBatch" {
            // A flag whose annotation value is the policy name.
            if value.eq_ignore_ascii_case("true") {
                put(&agent_annotation(name, key), "batch".into());
            }
        } else {
            put(&agent_annotation(name, key), value.clone());
        }
    }
    a
}

/// Maps a `titusParameter.agent.<name>` container attribute to its pod annotation.
fn agent_annotation(name: &str, full_key: &str) -> String {
    let mapped = match name {
        "allowCpuBursting" => "pod.netflix.com/cpu-bursting-enabled",
        "allowNetworkBursting" => "network.netflix.com/network-bursting-enabled",
        "elasticIPPool" => "network.netflix.com/elastic-ip-pool",
        "elasticIPs" => "network.netflix.com/elastic-ips",
        "schedBatch" => "pod.netflix.com/sched-policy",
        "subnets" => "network.netflix.com/subnet-ids",
        "accountId" => "network.netflix.com/account-id",
        "hostnameStyle" => "pod.netflix.com/hostname-style",
        "allowNetworkJumbo" => "network.netflix.com/jumbo-frames-enabled",
        "fuseEnabled" => "pod.netflix.com/fuse-enabled",
        "assignIPv6Address" => "network.netflix.com/assign-ipv6-address",
        "seccompAgentEnabledForPerfSyscalls" => "pod.netflix.com/seccomp-agent-perf-enabled",
        "seccompAgentEnabledForNetSyscalls" => "pod.netflix.com/seccomp-agent-net-enabled",
        "trafficSteeringEnabled" => "pod.netflix.com/traffic-steering-enabled",
        "imds.requireToken" => "network.netflix.com/imds-require-token",
        other => {
            return match other.strip_prefix("log.") {
                Some(log_key) => format!("log.netflix.com/{log_key}"),
                None => full_key.to_string(),
            };
        }
    };
    mapped.to_string()
}

/// Pod labels of a task (§10.1 plus this project's `titus.dev/*`).
pub fn pod_labels(
    spec: &TitusJobSpec,
    job_name: &str,
    task: &TaskIdentity,
) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([
        (labels::JOB_NAME.to_string(), job_name.to_string()),
        (labels::JOB_ID.to_string(), task.job_id.clone()),
        (labels::TASK_ID.to_string(), task.task_id.clone()),
        (labels::TITUS_JOB_ID.to_string(), task.job_id.clone()),
        (labels::TITUS_TASK_ID.to_string(), task.task_id.clone()),
        (
            labels::CAPACITY_GROUP.to_string(),
            spec.effective_capacity_group().to_lowercase(),
        ),
    ]);
    if let Some(index) = task.index {
        l.insert(labels::TASK_INDEX.to_string(), index.to_string());
    }
    let self_managed = spec
        .disruption_budget
        .as_ref()
        .is_some_and(|b| b.self_managed.is_some());
    if self_managed {
        l.insert(
            labels::RELOCATION_BINPACK.to_string(),
            "SelfManaged".to_string(),
        );
    }
    l
}

/// The label selector string of a job's pods (`status.selector`).
pub fn job_selector(job_name: &str) -> String {
    format!("{}={job_name}", labels::JOB_NAME)
}

/// `terminationGracePeriodSeconds`: job attribute `titusParameter.agent.killWaitSeconds`, else
/// 600.
pub fn termination_grace_period_seconds(spec: &TitusJobSpec) -> i64 {
    spec.attributes
        .get(attributes::KILL_WAIT_SECONDS)
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|v| *v >= 0)
        .unwrap_or(600)
}
