//! The Pod of a task attempt (titus-semantics §10), assembled from `titus_crds::pod`'s pure
//! pieces: name = task id, the Titus scheduler, requests = limits, Titus's environment, labels
//! and annotations, `/dev/shm`, `restartPolicy: Never`, the grace period, the tolerations of the
//! taints Titus agents carry, and an owner reference to the `TitusTask`. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, Pod, PodSpec, ResourceRequirements, Toleration,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use titus_crds::constants::{MAIN_CONTAINER_NAME, SCHEDULER_NAME, node};
use titus_crds::job::container::BasicContainer;
use titus_crds::pod::{
    TaskIdentity, pod_annotations, pod_command, pod_labels, pod_resources, task_env,
    termination_grace_period_seconds,
};
use titus_crds::{CapacityGroup, Tier, TitusJob, TitusTask};

/// Everything the pod of `task` is built from.
#[derive(Clone, Copy, Debug)]
pub struct PodInputs<'a> {
    /// The task attempt.
    pub task: &'a TitusTask,
    /// Its job.
    pub job: &'a TitusJob,
    /// The job's capacity group, when one matches (tier, scheduler name).
    pub capacity_group: Option<&'a CapacityGroup>,
}

/// The image reference: `<name>@<digest>` when a digest is known (Titus always ran by digest),
/// else `<name>:<tag>`.
pub fn image_ref(name: &str, tag: &str, digest: &str) -> String {
    if !digest.is_empty() {
        format!("{name}@{digest}")
    } else if !tag.is_empty() {
        format!("{name}:{tag}")
    } else {
        name.to_string()
    }
}

/// Builds the pod of a task.
pub fn build_pod(inputs: &PodInputs<'_>) -> Pod {
    let PodInputs {
        task,
        job,
        capacity_group,
    } = *inputs;
    let spec = &job.spec;
    let task_id = task.metadata.name.clone().unwrap_or_default();
    let identity = TaskIdentity {
        job_id: task.spec.job_id.clone(),
        task_id: task_id.clone(),
        original_id: task.spec.original_id.clone(),
        index: task.spec.index,
    };
    let env = task_env(spec, &identity);
    let annotations = pod_annotations(
        spec,
        &identity.job_id,
        job.status.as_ref(),
        &env.system_names,
    );
    let labels = pod_labels(spec, &task.spec.job_name, &identity);
    let command = pod_command(&spec.container, &spec.attributes);
    let resources = pod_resources(&spec.container.resources);
    let shm_mb = spec.container.resources.shm_size_mb.max(64);
    let image = &spec.container.image;
    let mut containers = vec![Container {
        name: MAIN_CONTAINER_NAME.into(),
        image: Some(image_ref(&image.name, &image.tag, &image.digest)),
        image_pull_policy: Some("IfNotPresent".into()),
        command: (!command.command.is_empty()).then_some(command.command),
        args: (!command.args.is_empty()).then_some(command.args),
        env: Some(env_vars(&env.vars)),
        resources: Some(ResourceRequirements {
            requests: Some(resources.clone()),
            limits: Some(resources),
            ..ResourceRequirements::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "dev-shm".into(),
            mount_path: "/dev/shm".into(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    }];
    containers.extend(spec.extra_containers.iter().map(extra_container));
    let scheduler = capacity_group
        .map(|g| g.spec.scheduler_name.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(SCHEDULER_NAME);
    let tier = capacity_group.map(|g| g.spec.tier).unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            name: Some(task_id.clone()),
            namespace: task.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: titus_crds::constants::API_GROUP_VERSION.into(),
                kind: "TitusTask".into(),
                name: task_id,
                uid: task.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            scheduler_name: Some(scheduler.into()),
            restart_policy: Some("Never".into()),
            dns_policy: Some("Default".into()),
            termination_grace_period_seconds: Some(termination_grace_period_seconds(spec)),
            containers,
            volumes: Some(vec![Volume {
                name: "dev-shm".into(),
                empty_dir: Some(EmptyDirVolumeSource {
                    medium: Some("Memory".into()),
                    size_limit: Some(Quantity(format!("{shm_mb}Mi"))),
                }),
                ..Volume::default()
            }]),
            tolerations: Some(tolerations(tier, spec.container.resources.gpu > 0)),
            ..PodSpec::default()
        }),
        status: None,
    }
}

fn env_vars(vars: &BTreeMap<String, String>) -> Vec<EnvVar> {
    vars.iter()
        .map(|(name, value)| EnvVar {
            name: name.clone(),
            value: Some(value.clone()),
            value_from: None,
        })
        .collect()
}

fn extra_container(c: &BasicContainer) -> Container {
    Container {
        name: c.name.clone(),
        image: Some(image_ref(&c.image.name, &c.image.tag, &c.image.digest)),
        image_pull_policy: Some("IfNotPresent".into()),
        command: (!c.entry_point.is_empty()).then(|| c.entry_point.clone()),
        args: (!c.command.is_empty()).then(|| c.command.clone()),
        env: (!c.env.is_empty()).then(|| env_vars(&c.env)),
        ..Container::default()
    }
}

/// The taints every Titus pod tolerates (§10.5): the agent provider, the Titus scheduler taint,
/// its tier, draining (`decommissioning:NoSchedule` keeps only new placements away) and, for
/// GPU jobs, GPU nodes.
pub fn tolerations(tier: Tier, gpu: bool) -> Vec<Toleration> {
    let equal = |key: &str, value: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Equal".into()),
        value: Some(value.into()),
        effect: Some("NoSchedule".into()),
        toleration_seconds: None,
    };
    let mut out = vec![
        equal(node::TAINT_PROVIDER, "titus"),
        equal(node::TAINT_SCHEDULER, "kubeScheduler"),
        equal(node::TAINT_TIER, tier.as_label_value()),
        Toleration {
            key: Some(node::TAINT_DECOMMISSIONING.into()),
            operator: Some("Exists".into()),
            effect: Some("NoSchedule".into()),
            ..Toleration::default()
        },
    ];
    if gpu {
        out.push(Toleration {
            key: Some(node::TAINT_GPU.into()),
            operator: Some("Exists".into()),
            ..Toleration::default()
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use titus_crds::TitusJobSpec;

    #[test]
    fn a_task_pod_is_built_the_way_titus_builds_it() {
        let j = job(TitusJobSpec::batch(2)
            .with_entry_point(["/bin/sh", "-c"])
            .with_command(["echo hi"])
            .with_cpu_memory(2.0, 1024)
            .with_env("LOG_LEVEL", "info")
            .with_attribute("titusParameter.agent.killWaitSeconds", "30"));
        let mut task = batch_task(&j, 1, 0);
        task.metadata.uid = Some("task-uid".into());
        let pod = build_pod(&PodInputs {
            task: &task,
            job: &j,
            capacity_group: None,
        });
        let name = batch_id(1, 0);
        assert_eq!(pod.metadata.name.as_deref(), Some(name.as_str()));
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("TitusTask", "task-uid", Some(true))
        );
        let labels = pod.metadata.labels.as_ref().unwrap();
        assert_eq!(
            labels.get("titus.dev/task-index").map(String::as_str),
            Some("1")
        );
        assert_eq!(
            labels
                .get("v3.job.titus.netflix.com/job-id")
                .map(String::as_str),
            Some(JOB_UID)
        );
        let annotations = pod.metadata.annotations.as_ref().unwrap();
        assert_eq!(
            annotations
                .get("v3.job.titus.netflix.com/type")
                .map(String::as_str),
            Some("BATCH")
        );
        let spec = pod.spec.unwrap();
        assert_eq!(spec.scheduler_name.as_deref(), Some("titus-scheduler"));
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(spec.termination_grace_period_seconds, Some(30));
        let main = &spec.containers[0];
        assert_eq!(main.name, "main");
        assert_eq!(
            main.image.as_deref(),
            Some("localhost:5000/titus/busybox:1")
        );
        assert_eq!(
            main.command.as_deref(),
            Some(&["/bin/sh".to_string(), "-c".to_string()][..])
        );
        assert_eq!(main.args.as_deref(), Some(&["echo hi".to_string()][..]));
        let r = main.resources.as_ref().unwrap();
        assert_eq!(r.requests, r.limits);
        assert_eq!(
            r.requests.as_ref().unwrap().get("cpu"),
            Some(&Quantity("2".into()))
        );
        let env: BTreeMap<_, _> = main
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_deref().unwrap_or_default()))
            .collect();
        assert_eq!(env.get("TITUS_TASK_ID"), Some(&name.as_str()));
        assert_eq!(env.get("TITUS_TASK_INDEX"), Some(&"1"));
        assert_eq!(env.get("LOG_LEVEL"), Some(&"info"));
        let keys: Vec<_> = spec
            .tolerations
            .unwrap()
            .iter()
            .filter_map(|t| t.key.clone())
            .collect();
        assert!(keys.contains(&"virtual-kubelet.io/provider".to_string()));
        assert!(keys.contains(&"node.titus.netflix.com/tier".to_string()));
    }

    #[test]
    fn images_run_by_digest_when_one_is_known() {
        assert_eq!(image_ref("r/app", "1", "sha256:ab"), "r/app@sha256:ab");
        assert_eq!(image_ref("r/app", "1", ""), "r/app:1");
    }
}
