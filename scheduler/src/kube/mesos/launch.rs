//! A task Pod bound to a virtual node, as the Mesos `TaskInfo` that launches it. Pure.
//!
//! - `task_id` and `name`: the Pod name (the Titus task id);
//! - `resources`: the Pod's effective request as `cpus`, `mem`, and `disk`/`network`/`gpus`
//!   when asked for and offered by the host;
//! - `container`: the Universal Containerizer with the main container's image
//!   (`{"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": ...}}}}`);
//! - `command`: `shell: false`; with a Pod `command`, `value` = its first word and `arguments`
//!   = command + args (argv\[0\] included); with only `args`, no `value` and `arguments` = args
//!   (the image entry point runs with them); the legacy single-string entry point
//!   (annotation `pod.titus.netflix.com/entrypoint-shell-splitting-enabled`) is shell-split
//!   first; `environment` = the container's literal `env`;
//! - `labels`: `titus.jobId`, `titus.taskId`, `titus.podNamespace`;
//! - `kill_policy`: the Pod's `terminationGracePeriodSeconds`.

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use titus_crds::constants::{MAIN_CONTAINER_NAME, annotations, labels};

use crate::kube::pod::pod_resources;
use crate::mesos::offers::task_resources;
use crate::mesos::types::{CommandInfo, Id, Label, Labels, TaskInfo};
use crate::resources::Resources;

/// Why a Pod cannot be launched on Mesos.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// The Pod has no name or no containers.
    #[error("pod {pod} has no container to run")]
    NoContainer {
        /// The Pod.
        pod: String,
    },
    /// The main container has no image.
    #[error("pod {pod} has no image")]
    NoImage {
        /// The Pod.
        pod: String,
    },
    /// The Pod's resources cannot be read.
    #[error("pod {pod}: {message}")]
    Resources {
        /// The Pod.
        pod: String,
        /// The quantity error.
        message: String,
    },
    /// The legacy entry point string cannot be split.
    #[error("pod {pod}: {message}")]
    EntryPoint {
        /// The Pod.
        pod: String,
        /// The split error.
        message: String,
    },
}

/// The `TaskInfo` of a Pod. `offered` is what the host offers: `disk`, `network` and `gpus`
/// are only asked for when the host offers some (a LAUNCH may only use offered resources).
/// The agent id is filled in by the framework.
///
/// # Errors
/// [`LaunchError`] when the Pod cannot run on Mesos.
pub fn task_info(pod: &Pod, offered: &Resources) -> Result<TaskInfo, LaunchError> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let spec = pod.spec.as_ref();
    let containers = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    let main = containers
        .iter()
        .find(|c| c.name == MAIN_CONTAINER_NAME)
        .or_else(|| containers.first())
        .filter(|_| !name.is_empty())
        .ok_or_else(|| LaunchError::NoContainer { pod: name.clone() })?;
    let image = main
        .image
        .clone()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| LaunchError::NoImage { pod: name.clone() })?;
    let mut resources = pod_resources(pod).map_err(|e| LaunchError::Resources {
        pod: name.clone(),
        message: e.to_string(),
    })?;
    if offered.disk_mb == 0 {
        resources.disk_mb = 0;
    }
    if offered.network_mbps == 0 {
        resources.network_mbps = 0;
    }
    let shell_splitting = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotations::ENTRYPOINT_SHELL_SPLITTING_ENABLED))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut command: Vec<String> = main.command.clone().unwrap_or_default();
    if shell_splitting && let Some(first) = command.first() {
        let mut split =
            titus_crds::pod::shell_split(first).map_err(|e| LaunchError::EntryPoint {
                pod: name.clone(),
                message: e.to_string(),
            })?;
        split.extend(command.iter().skip(1).cloned());
        command = split;
    }
    let args = main.args.clone().unwrap_or_default();
    let variables: Vec<serde_json::Value> = main
        .env
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| {
            e.value
                .as_ref()
                .map(|v| json!({"name": e.name, "type": "VALUE", "value": v}))
        })
        .collect();
    let command_info = CommandInfo {
        shell: Some(false),
        value: command.first().cloned(),
        arguments: command.into_iter().chain(args).collect(),
        environment: (!variables.is_empty()).then(|| json!({"variables": variables})),
    };
    let pod_labels = pod.metadata.labels.clone().unwrap_or_default();
    let mut task_labels = vec![Label {
        key: "titus.taskId".to_string(),
        value: Some(name.clone()),
    }];
    if let Some(job) = pod_labels.get(labels::TITUS_JOB_ID) {
        task_labels.push(Label {
            key: "titus.jobId".to_string(),
            value: Some(job.clone()),
        });
    }
    if let Some(namespace) = &pod.metadata.namespace {
        task_labels.push(Label {
            key: "titus.podNamespace".to_string(),
            value: Some(namespace.clone()),
        });
    }
    let grace_ns = spec
        .and_then(|s| s.termination_grace_period_seconds)
        .map(|s| s.max(0).saturating_mul(1_000_000_000));
    Ok(TaskInfo {
        name: name.clone(),
        task_id: Id::new(name),
        agent_id: Id::new(""),
        resources: task_resources(&resources),
        command: Some(command_info),
        container: Some(json!({
            "type": "MESOS",
            "mesos": {"image": {"type": "DOCKER", "docker": {"name": image}}}
        })),
        labels: Some(Labels {
            labels: task_labels,
        }),
        kill_policy: grace_ns.map(|ns| json!({"grace_period": {"nanoseconds": ns}})),
        data: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pod(extra: serde_json::Value) -> Pod {
        let mut base = json!({
            "metadata": {"name": "task-1", "namespace": "prod",
                         "labels": {"v3.job.titus.netflix.com/job-id": "job-1"}},
            "spec": {
                "terminationGracePeriodSeconds": 30,
                "containers": [{"name": "main", "image": "registry/busybox@sha256:abc",
                    "command": ["/bin/sh", "-c"], "args": ["echo hi"],
                    "env": [{"name": "TITUS_TASK_ID", "value": "task-1"}],
                    "resources": {"requests": {"cpu": "2", "memory": "512Mi",
                                               "ephemeral-storage": "10000Mi", "titus/network": "128M"}}}]
            }
        });
        if let Some(obj) = extra.as_object() {
            for (k, v) in obj {
                base["metadata"][k] = v.clone();
            }
        }
        serde_json::from_value(base).unwrap()
    }

    fn offered(disk: u64, network: u64) -> Resources {
        Resources {
            cpu_milli: 8000,
            memory_mb: 16_384,
            disk_mb: disk,
            network_mbps: network,
            gpu: 0,
            pods: 1000,
        }
    }

    fn resource(task: &TaskInfo, name: &str) -> Option<f64> {
        task.resources
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.scalar.map(|s| s.value))
    }

    #[test]
    fn a_pod_becomes_a_task_with_its_id_resources_image_and_command() {
        let task = task_info(&pod(json!({})), &offered(100_000, 1000)).unwrap();
        assert_eq!(task.task_id.value, "task-1");
        assert_eq!(resource(&task, "cpus"), Some(2.0));
        assert_eq!(resource(&task, "mem"), Some(512.0));
        assert_eq!(resource(&task, "disk"), Some(10_000.0));
        assert_eq!(resource(&task, "network"), Some(128.0));
        let command = task.command.unwrap();
        assert_eq!(command.shell, Some(false));
        assert_eq!(command.value.as_deref(), Some("/bin/sh"));
        assert_eq!(command.arguments, ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(
            command.environment.unwrap()["variables"][0]["name"],
            "TITUS_TASK_ID"
        );
        assert_eq!(
            task.container.unwrap()["mesos"]["image"]["docker"]["name"],
            "registry/busybox@sha256:abc"
        );
        let labels = task.labels.unwrap().labels;
        assert!(
            labels
                .iter()
                .any(|l| l.key == "titus.jobId" && l.value.as_deref() == Some("job-1"))
        );
        assert_eq!(
            task.kill_policy.unwrap()["grace_period"]["nanoseconds"],
            30_000_000_000i64
        );
    }

    #[test]
    fn resources_the_host_does_not_offer_are_not_asked_for() {
        let task = task_info(&pod(json!({})), &offered(0, 0)).unwrap();
        assert_eq!(resource(&task, "disk"), None);
        assert_eq!(resource(&task, "network"), None);
        assert_eq!(resource(&task, "cpus"), Some(2.0));
    }

    #[test]
    fn a_legacy_entry_point_string_is_shell_split() {
        let mut p = pod(json!({"annotations": {
            "pod.titus.netflix.com/entrypoint-shell-splitting-enabled": "true"}}));
        let main = &mut p.spec.as_mut().unwrap().containers[0];
        main.command = Some(vec!["sleep 'ten seconds'".into()]);
        main.args = None;
        let command = task_info(&p, &offered(0, 0)).unwrap().command.unwrap();
        assert_eq!(command.value.as_deref(), Some("sleep"));
        assert_eq!(command.arguments, ["sleep", "ten seconds"]);
    }

    #[test]
    fn a_pod_without_an_image_cannot_be_launched() {
        let mut p = pod(json!({}));
        p.spec.as_mut().unwrap().containers[0].image = None;
        assert_eq!(
            task_info(&p, &offered(0, 0)),
            Err(LaunchError::NoImage {
                pod: "task-1".into()
            })
        );
    }
}
