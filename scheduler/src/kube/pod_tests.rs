//! Pod → view → task request, one case per rule.

#![allow(clippy::unwrap_used)]

use serde_json::json;
use titus_crds::{CapacityGroup, CapacityGroupSpec, TitusJob, TitusJobSpec};

use super::*;
use crate::kube::job::job_view;
use crate::model::Tier;

/// A task Pod as the task controller creates it.
fn task_pod() -> Pod {
    serde_json::from_value(json!({
        "metadata": {
            "name": "0b9f1c9e-task", "namespace": "prod",
            "creationTimestamp": "2026-01-01T00:00:01Z",
            "labels": {
                "v3.job.titus.netflix.com/job-id": "job-uid",
                "titus.dev/job-name": "web",
                "titus.netflix.com/capacity-group": "web_app"
            },
            "annotations": {"v3.job.titus.netflix.com/type": "SERVICE"},
            "ownerReferences": [{"apiVersion": "titus.dev/v1alpha1", "kind": "TitusTask",
                                 "name": "0b9f1c9e-task", "uid": "task-uid", "controller": true}]
        },
        "spec": {
            "schedulerName": "titus-scheduler",
            "containers": [{"name": "main", "image": "busybox",
                "resources": {
                    "requests": {"cpu": "1500m", "memory": "512Mi", "ephemeral-storage": "10000Mi",
                                 "titus/network": "128M"},
                    "limits": {"cpu": "1500m", "memory": "512Mi", "nvidia.com/gpu": "1"}}}]
        },
        "status": {"phase": "Pending",
                   "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                   "message": "0/3 offers: 3 insufficient cpu"}]}
    }))
    .unwrap()
}

fn view(pod: &Pod) -> PodView {
    pod_view(pod, "titus-scheduler").unwrap()
}

#[test]
fn a_task_pod_is_read_as_the_task_controller_wrote_it() {
    let v = view(&task_pod());
    assert_eq!(v.key, "prod/0b9f1c9e-task");
    assert!(v.ours && v.is_pending() && !v.holds_resources());
    assert_eq!(v.job_id.as_deref(), Some("job-uid"));
    assert_eq!(v.job_name.as_deref(), Some("web"));
    assert_eq!(v.job_type, Some(JobType::Service));
    assert_eq!(v.capacity_group.as_deref(), Some("web_app"));
    assert_eq!(v.created_ms, 1_767_225_601_000);
    let task = v.task_ref.as_ref().unwrap();
    assert_eq!(task.kind.as_deref(), Some("TitusTask"));
    assert_eq!(task.namespace.as_deref(), Some("prod"));
    assert_eq!(
        v.scheduled.as_ref().unwrap().message.as_deref(),
        Some("0/3 offers: 3 insufficient cpu")
    );
    assert_eq!(
        v.resources.unwrap(),
        Resources {
            cpu_milli: 1500,
            memory_mb: 512,
            disk_mb: 10_000,
            network_mbps: 128,
            gpu: 1,
            pods: 1,
        },
        "a missing request falls back to the limit"
    );
}

#[test]
fn pods_of_other_schedulers_bound_finished_or_deleting_pods_are_not_pending() {
    let mut other = task_pod();
    other.spec.as_mut().unwrap().scheduler_name = Some("default-scheduler".into());
    let mut bound = task_pod();
    bound.spec.as_mut().unwrap().node_name = Some("n1".into());
    let mut finished = task_pod();
    finished.status.as_mut().unwrap().phase = Some("Failed".into());
    let mut deleting = task_pod();
    deleting.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-01-01T00:00:00Z".parse().unwrap(),
        ));
    for pod in [other, bound.clone(), finished, deleting] {
        assert!(!view(&pod).is_pending());
    }
    assert!(view(&bound).holds_resources());
}

#[test]
fn containers_are_summed_init_containers_take_the_max_and_overhead_is_added() {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}}
            ],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2", "memory": "128Mi"}}}],
            "overhead": {"cpu": "100m"}
        }
    }))
    .unwrap();
    let r = pod_resources(&pod).unwrap();
    assert_eq!(r.cpu_milli, 2100);
    assert_eq!(r.memory_mb, 1280);
    assert_eq!(r.pods, 1);
    let mut bad = pod;
    bad.spec.as_mut().unwrap().containers[0]
        .resources
        .as_mut()
        .unwrap()
        .requests
        .as_mut()
        .unwrap()
        .insert("memory".into(), Quantity("x".into()));
    assert!(pod_resources(&bad).is_err());
}

#[test]
fn the_job_gives_constraints_and_capacity_group_which_gives_the_tier() {
    let mut groups = GroupIndex::default();
    groups.upsert(
        "prod/web",
        &CapacityGroup::new(
            "web",
            CapacityGroupSpec {
                capacity_group_name: "Web_App".into(),
                tier: titus_crds::Tier::Critical,
                ..CapacityGroupSpec::default()
            },
        ),
    );
    let mut job = TitusJob::new(
        "web",
        TitusJobSpec::batch(3)
            .with_capacity_group("WEB_APP")
            .with_hard_constraint("uniqueHost", "true")
            .with_hard_constraint("exclusiveHost", "TRUE")
            .with_soft_constraint("zoneBalance", "true"),
    );
    job.metadata.uid = Some("job-uid".into());
    let job = job_view(&job).unwrap();
    let request = task_request(&view(&task_pod()), Some(&job), &groups).unwrap();
    assert_eq!(request.task_id, "prod/0b9f1c9e-task");
    assert_eq!(request.job_id, "job-uid");
    assert_eq!(request.capacity_group, "Web_App");
    assert_eq!(request.tier, Tier::Critical);
    assert_eq!(
        request.job_type,
        JobType::Service,
        "the pod annotation wins"
    );
    assert_eq!(request.hard_constraints.len(), 2);
    assert_eq!(request.soft_constraints.len(), 1);
    assert_eq!(request.order_key, 1_767_225_601_000);
    let placed = placed_task(&request);
    assert!(placed.exclusive_host);
    assert_eq!(placed.capacity_group, "Web_App");
}

#[test]
fn a_pod_without_a_job_uses_its_labels_and_defaults() {
    let mut pod = task_pod();
    pod.metadata.labels = None;
    pod.metadata.annotations = None;
    let request = task_request(&view(&pod), None, &GroupIndex::default()).unwrap();
    assert_eq!(request.job_id, "prod/0b9f1c9e-task", "its own job");
    assert_eq!(request.capacity_group, "DEFAULT");
    assert_eq!(request.tier, Tier::Flex);
    assert_eq!(request.job_type, JobType::Batch);
    assert!(request.hard_constraints.is_empty());
}
