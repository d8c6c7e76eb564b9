//! From a Titus Pod (titus-semantics §10) to the runtime's [`ContainerSpec`]: main container,
//! argv by the Docker rules (with legacy shell splitting), the agent's environment (§13.2),
//! limits from the resources, labels for recovery. Pure.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::labels;
use crate::process::{ProcessError, resolve_process, shell_split};
use crate::runtime::{
    ContainerId, ContainerSpec, CpuLimit, ImageConfig, LogPaths, Resources, RuntimeError,
};
use crate::titus_env::{HostFacts, TaskFacts, titus_environment};

/// Why a Pod cannot be turned into a container.
#[derive(Debug, thiserror::Error)]
pub enum PodSpecError {
    /// The Pod has no containers.
    #[error("pod {pod} has no containers")]
    NoContainer {
        /// Pod name.
        pod: String,
    },
    /// The Pod has no uid (not from the API server).
    #[error("pod {pod} has no uid")]
    NoUid {
        /// Pod name.
        pod: String,
    },
    /// The uid is not a valid container id.
    #[error("pod {pod}: {source}")]
    Id {
        /// Pod name.
        pod: String,
        /// Cause.
        #[source]
        source: RuntimeError,
    },
    /// No command could be resolved.
    #[error("pod {pod}: {source}")]
    Process {
        /// Pod name.
        pod: String,
        /// Cause.
        #[source]
        source: ProcessError,
    },
}

/// Name of the main container in Titus Pods.
const MAIN: &str = "main";
/// Limits the agent applies to every container.
const DEFAULT_PIDS_LIMIT: i64 = 32_768;

/// The Pod's main container (`main`, else the first).
pub fn main_container(pod: &Pod) -> Option<&Container> {
    let containers = &pod.spec.as_ref()?.containers;
    containers
        .iter()
        .find(|c| c.name == MAIN)
        .or_else(|| containers.first())
}

/// The container id of a Pod: its uid (unique across namespaces and Pod re-creations).
pub fn container_id(pod: &Pod) -> Result<ContainerId, PodSpecError> {
    let name = pod_name(pod);
    let uid = pod
        .metadata
        .uid
        .clone()
        .ok_or_else(|| PodSpecError::NoUid { pod: name.clone() })?;
    ContainerId::new(uid).map_err(|source| PodSpecError::Id { pod: name, source })
}

fn pod_name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// Decimal value of a Kubernetes quantity (`500m`, `2`, `512Mi`, `1G`, `1e3`); `None` when
/// malformed.
pub fn quantity_value(q: &Quantity) -> Option<f64> {
    let s = q.0.trim();
    let suffixes: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024.0f64.powi(4)),
        ("Pi", 1024.0f64.powi(5)),
        ("Ei", 1024.0f64.powi(6)),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    for (suffix, factor) in suffixes {
        if let Some(number) = s.strip_suffix(suffix) {
            return number.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    s.parse::<f64>().ok()
}

fn limit(container: &Container, name: &str) -> Option<f64> {
    let resources = container.resources.as_ref()?;
    resources
        .limits
        .as_ref()
        .and_then(|l| l.get(name))
        .or_else(|| resources.requests.as_ref().and_then(|r| r.get(name)))
        .and_then(quantity_value)
}

/// `/dev/shm` size from the `dev-shm` memory emptyDir (Titus's layout).
fn shm_bytes(pod: &Pod) -> Option<u64> {
    let volumes = pod.spec.as_ref()?.volumes.as_ref()?;
    let shm = volumes.iter().find(|v| v.name == "dev-shm")?;
    let size = shm.empty_dir.as_ref()?.size_limit.as_ref()?;
    quantity_value(size).map(|b| b as u64)
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// Image name (repository path without registry, tag or digest) of a reference.
pub fn image_name(image: &str) -> String {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last_slash = without_digest.rfind('/');
    let without_tag = match without_digest.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => &without_digest[..colon],
        _ => without_digest,
    };
    match without_tag.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest.to_owned()
        }
        _ => without_tag.to_owned(),
    }
}

/// Task facts for the agent environment, from the Pod.
pub fn task_facts(pod: &Pod, container: &Container, container_id: &ContainerId) -> TaskFacts {
    let env: BTreeMap<String, String> = container
        .env
        .iter()
        .flatten()
        .filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v)))
        .collect();
    let image = container.image.clone().unwrap_or_default();
    let digest = image.split_once('@').map(|(_, d)| d.to_owned());
    let get = |key| annotation(pod, key).unwrap_or_default().to_owned();
    TaskFacts {
        app_name: get(labels::WORKLOAD_NAME),
        stack: get(labels::WORKLOAD_STACK),
        detail: get(labels::WORKLOAD_DETAIL),
        sequence: get(labels::WORKLOAD_SEQUENCE),
        cpu: limit(container, "cpu").unwrap_or(0.0),
        memory_mb: (limit(container, "memory").unwrap_or(0.0) / (1024.0 * 1024.0)) as u64,
        disk_mb: (limit(container, "ephemeral-storage").unwrap_or(0.0) / (1024.0 * 1024.0)) as u64,
        gpu: limit(container, "nvidia.com/gpu").unwrap_or(0.0) as u32,
        network_mbps: (limit(container, "titus/network").unwrap_or(0.0) / 1e6) as u64,
        container_env: env,
        image_name: Some(image_name(&image)),
        image_tag: annotation(pod, labels::IMAGE_TAG_MAIN).map(str::to_owned),
        image_digest: digest,
        iam_role: annotation(pod, labels::IAM_ROLE).map(str::to_owned),
        container_id: Some(container_id.to_string()),
        ..TaskFacts::default()
    }
}

/// The container to run for `pod`, given the pulled image's config.
///
/// # Errors
/// [`PodSpecError`] when the Pod has no container or no command can be resolved.
pub fn container_spec(
    pod: &Pod,
    image_config: &ImageConfig,
    host: &HostFacts,
    log_dir: &Path,
    oci_runtime: &str,
) -> Result<ContainerSpec, PodSpecError> {
    let name = pod_name(pod);
    let container =
        main_container(pod).ok_or_else(|| PodSpecError::NoContainer { pod: name.clone() })?;
    let id = container_id(pod)?;
    let mut entry_point = container.command.clone().unwrap_or_default();
    let command = container.args.clone().unwrap_or_default();
    if annotation(pod, labels::ENTRYPOINT_SHELL_SPLITTING) == Some("true") && entry_point.len() == 1
    {
        entry_point = shell_split(&entry_point[0]).map_err(|source| PodSpecError::Process {
            pod: name.clone(),
            source,
        })?;
    }
    let mut facts = task_facts(pod, container, &id);
    facts.oci_runtime = oci_runtime.to_owned();
    let env = titus_environment(&facts, host);
    let working_dir = container.working_dir.clone().unwrap_or_default();
    let process = resolve_process(image_config, &entry_point, &command, &env, &working_dir)
        .map_err(|source| PodSpecError::Process {
            pod: name.clone(),
            source,
        })?;
    let bursting = annotation(pod, labels::CPU_BURSTING) == Some("true");
    let resources = Resources {
        cpu: limit(container, "cpu").map(|cpus| CpuLimit::from_cpus(cpus, bursting)),
        memory_bytes: limit(container, "memory").map(|b| b as u64),
        pids_limit: Some(DEFAULT_PIDS_LIMIT),
        shm_bytes: shm_bytes(pod),
    };
    let mut container_labels = BTreeMap::from([
        (labels::POD_UID.to_owned(), id.to_string()),
        (
            labels::POD_NAMESPACE.to_owned(),
            pod.metadata.namespace.clone().unwrap_or_default(),
        ),
        (labels::POD_NAME.to_owned(), name.clone()),
    ]);
    let task_id = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::POD_TASK_ID))
        .cloned()
        .unwrap_or(name);
    container_labels.insert(labels::TASK_ID.to_owned(), task_id);
    let annotations = pod
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| k.starts_with(labels::EXECUTOR_ANNOTATION_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(ContainerSpec {
        logs: LogPaths::in_dir(log_dir, &id),
        id,
        image: container.image.clone().unwrap_or_default(),
        process,
        resources,
        hostname: None,
        labels: container_labels,
        annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml_json: serde_json::Value) -> Pod {
        serde_json::from_value(yaml_json).unwrap()
    }

    fn titus_pod() -> Pod {
        pod(serde_json::json!({
            "metadata": {
                "name": "task-1", "namespace": "default", "uid": "0b3c3a6f-8f2e-4a5b-9c4d-7e1f2a3b4c5d",
                "labels": {"v3.job.titus.netflix.com/task-id": "task-1"},
                "annotations": {
                    "workload.netflix.com/name": "app", "workload.netflix.com/stack": "prod",
                    "pod.titus.netflix.com/image-tag-main": "latest",
                    "pod.netflix.com/cpu-bursting-enabled": "false",
                    "github.com.netflix.titus.executor/runTime": "10s",
                    "unrelated": "x"
                }
            },
            "spec": {
                "containers": [{
                    "name": "main",
                    "image": "registry.test/team/app@sha256:abc",
                    "command": ["/bin/sh", "-c"], "args": ["echo hi"],
                    "env": [{"name": "TITUS_TASK_ID", "value": "task-1"}, {"name": "USER_VAR", "value": "u"}],
                    "resources": {"limits": {"cpu": "2", "memory": "512Mi", "ephemeral-storage": "10000Mi", "titus/network": "128M"}}
                }],
                "volumes": [{"name": "dev-shm", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}]
            }
        }))
    }

    #[test]
    fn a_titus_pod_becomes_a_container_spec() {
        let spec = container_spec(
            &titus_pod(),
            &ImageConfig::default(),
            &HostFacts::default(),
            Path::new("/logs"),
            "runc",
        )
        .unwrap();
        assert_eq!(spec.id.as_str(), "0b3c3a6f-8f2e-4a5b-9c4d-7e1f2a3b4c5d");
        assert_eq!(spec.image, "registry.test/team/app@sha256:abc");
        assert_eq!(spec.process.args, vec!["/bin/sh", "-c", "echo hi"]);
        let env: BTreeMap<_, _> = spec.process.env.iter().cloned().collect();
        assert_eq!(env["TITUS_TASK_ID"], "task-1");
        assert_eq!(env["USER_VAR"], "u");
        assert_eq!(env["NETFLIX_CLUSTER"], "app-prod");
        assert_eq!(env["TITUS_NUM_CPU"], "2");
        assert_eq!(env["TITUS_NUM_MEM"], "512");
        assert_eq!(env["TITUS_NUM_NETWORK_BANDWIDTH"], "128");
        assert_eq!(env["TITUS_IMAGE_NAME"], "team/app");
        assert_eq!(env["TITUS_IMAGE_DIGEST"], "sha256:abc");
        assert_eq!(env["TITUS_IMAGE_TAG"], "latest");
        assert_eq!(env["TITUS_CONTAINER_ID"], spec.id.as_str());
        assert_eq!(spec.resources.cpu, Some(CpuLimit::from_cpus(2.0, false)));
        assert_eq!(spec.resources.memory_bytes, Some(512 << 20));
        assert_eq!(spec.resources.shm_bytes, Some(64 << 20));
        assert_eq!(spec.labels[labels::TASK_ID], "task-1");
        assert_eq!(spec.labels[labels::POD_NAMESPACE], "default");
        assert_eq!(spec.annotations.len(), 1, "only executor annotations pass");
        assert_eq!(
            spec.logs.stdout,
            Path::new("/logs/0b3c3a6f-8f2e-4a5b-9c4d-7e1f2a3b4c5d/stdout")
        );
    }

    #[test]
    fn legacy_entry_points_are_shell_split() {
        let mut p = titus_pod();
        p.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(labels::ENTRYPOINT_SHELL_SPLITTING.into(), "true".into());
        let c = &mut p.spec.as_mut().unwrap().containers[0];
        c.command = Some(vec!["/bin/sh -c 'echo a b'".into()]);
        c.args = None;
        let spec = container_spec(
            &p,
            &ImageConfig::default(),
            &HostFacts::default(),
            Path::new("/l"),
            "runc",
        )
        .unwrap();
        assert_eq!(spec.process.args, vec!["/bin/sh", "-c", "echo a b"]);
    }

    #[test]
    fn a_pod_without_a_command_uses_the_image_and_fails_without_one() {
        let mut p = titus_pod();
        let c = &mut p.spec.as_mut().unwrap().containers[0];
        c.command = None;
        c.args = None;
        let image = ImageConfig {
            cmd: vec!["/bin/true".into()],
            ..ImageConfig::default()
        };
        let spec =
            container_spec(&p, &image, &HostFacts::default(), Path::new("/l"), "runc").unwrap();
        assert_eq!(spec.process.args, vec!["/bin/true"]);
        let err = container_spec(
            &p,
            &ImageConfig::default(),
            &HostFacts::default(),
            Path::new("/l"),
            "runc",
        );
        assert!(matches!(err, Err(PodSpecError::Process { .. })));
    }

    #[test]
    fn quantities_parse_with_binary_and_decimal_suffixes() {
        let cases = [
            ("2", 2.0),
            ("500m", 0.5),
            ("512Mi", 536_870_912.0),
            ("1Gi", 1_073_741_824.0),
            ("128M", 128e6),
            ("1e3", 1000.0),
        ];
        for (q, want) in cases {
            assert_eq!(quantity_value(&Quantity(q.into())), Some(want), "{q}");
        }
        assert_eq!(quantity_value(&Quantity("x".into())), None);
    }

    #[test]
    fn image_names_drop_registry_tag_and_digest() {
        let cases = [
            ("registry.test/team/app@sha256:abc", "team/app"),
            ("127.0.0.1:5000/busybox:1", "busybox"),
            ("busybox", "busybox"),
            ("library/busybox:latest", "library/busybox"),
            ("localhost/app", "app"),
        ];
        for (image, name) in cases {
            assert_eq!(image_name(image), name, "{image}");
        }
    }
}
