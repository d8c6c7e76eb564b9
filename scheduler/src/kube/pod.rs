//! What the scheduler reads of a Pod, and the [`TaskRequest`] a pending task Pod becomes. Pure.
//!
//! The task controller creates each task's Pod with `spec.schedulerName: titus-scheduler`, the
//! task's resources as requests (= limits, §10.2), labels `v3.job.titus.netflix.com/job-id`,
//! `titus.dev/job-name`, `titus.netflix.com/capacity-group` (lower-cased) and annotation
//! `v3.job.titus.netflix.com/type`, and an owner reference to its `TitusTask`. Constraints are
//! not on the Pod: they come from the owning `TitusJob` (found through the job-name label), the
//! tier from the job's `CapacityGroup`. A Pod naming a job the scheduler has not seen waits.
//!
//! Resources are the Kubernetes effective request: the sum over containers, or the largest init
//! container when larger, plus `spec.overhead`; a missing request falls back to the limit (as
//! the API server's defaulting does). Requests are rounded up.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use titus_crds::constants::{annotations, labels};

use crate::constraints::ConstraintSet;
use crate::kube::job::{GroupIndex, JobView};
use crate::kube::quantity::{self, QuantityError, Rounding, Unit};
use crate::model::{JobType, PlacedTask, TaskRequest};
use crate::resources::Resources;

/// `PodScheduled`: the condition a scheduler owns on unbound Pods.
pub const POD_SCHEDULED: &str = "PodScheduled";
/// Reason of `PodScheduled=False` for a Pod no node can take (as kube-scheduler).
pub const UNSCHEDULABLE: &str = "Unschedulable";

/// A Pod's `PodScheduled` condition as last seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScheduledCondition {
    /// `True` / `False` / `Unknown`.
    pub status: String,
    /// Reason.
    pub reason: Option<String>,
    /// Message.
    pub message: Option<String>,
}

/// The scheduling-relevant part of a Pod.
#[derive(Clone, Debug, PartialEq)]
pub struct PodView {
    /// `namespace/name`: the task id in the cluster index.
    pub key: String,
    /// Namespace.
    pub namespace: String,
    /// Name (the Titus task id for task Pods).
    pub name: String,
    /// True when `spec.schedulerName` is the Titus scheduler's.
    pub ours: bool,
    /// `spec.nodeName`, when bound.
    pub node_name: Option<String>,
    /// Phase `Succeeded` or `Failed`: holds nothing any more.
    pub terminal: bool,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// Effective request, or why it cannot be read.
    pub resources: Result<Resources, QuantityError>,
    /// Label `titus.dev/job-name`: the owning `TitusJob` in the same namespace.
    pub job_name: Option<String>,
    /// Titus job id from labels or annotations.
    pub job_id: Option<String>,
    /// Annotation `v3.job.titus.netflix.com/type`.
    pub job_type: Option<JobType>,
    /// Label `titus.netflix.com/capacity-group`.
    pub capacity_group: Option<String>,
    /// Creation time in ms (queue order inside a capacity group).
    pub created_ms: u64,
    /// The controlling `TitusTask`, for Events.
    pub task_ref: Option<ObjectReference>,
    /// `PodScheduled`, when present.
    pub scheduled: Option<ScheduledCondition>,
}

/// The view of a Pod; `None` without a name or namespace.
pub fn pod_view(pod: &Pod, scheduler_name: &str) -> Option<PodView> {
    let name = pod.metadata.name.clone()?;
    let namespace = pod.metadata.namespace.clone()?;
    let empty = BTreeMap::new();
    let pod_labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    let pod_annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or_default();
    let job_id = [
        pod_labels.get(labels::TITUS_JOB_ID),
        pod_annotations.get(annotations::JOB_ID),
        pod_labels.get(labels::JOB_ID),
    ]
    .into_iter()
    .flatten()
    .find(|v| !v.is_empty())
    .cloned();
    let job_type = pod_annotations.get(annotations::JOB_TYPE).and_then(|t| {
        match t.to_ascii_uppercase().as_str() {
            "BATCH" => Some(JobType::Batch),
            "SERVICE" => Some(JobType::Service),
            _ => None,
        }
    });
    let task_ref = pod
        .metadata
        .owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|o| o.kind == "TitusTask" && o.controller.unwrap_or(false))
        .map(|o| ObjectReference {
            api_version: Some(o.api_version.clone()),
            kind: Some(o.kind.clone()),
            name: Some(o.name.clone()),
            namespace: Some(namespace.clone()),
            uid: Some(o.uid.clone()),
            ..ObjectReference::default()
        });
    let scheduled = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == POD_SCHEDULED))
        .map(|c| ScheduledCondition {
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
        });
    Some(PodView {
        key: format!("{namespace}/{name}"),
        ours: spec.and_then(|s| s.scheduler_name.as_deref()) == Some(scheduler_name),
        node_name: spec
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty()),
        terminal: phase == "Succeeded" || phase == "Failed",
        deleting: pod.metadata.deletion_timestamp.is_some(),
        resources: pod_resources(pod),
        job_name: pod_labels.get(labels::JOB_NAME).cloned(),
        job_id,
        job_type,
        capacity_group: pod_labels.get(labels::CAPACITY_GROUP).cloned(),
        created_ms: pod
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| u64::try_from(t.0.as_millisecond()).unwrap_or(0))
            .unwrap_or(0),
        task_ref,
        scheduled,
        namespace,
        name,
    })
}

impl PodView {
    /// True when the scheduler should place this Pod: ours, unbound, not finished, not being
    /// deleted.
    pub fn is_pending(&self) -> bool {
        self.ours && self.node_name.is_none() && !self.terminal && !self.deleting
    }

    /// True when the Pod holds resources on its node.
    pub fn holds_resources(&self) -> bool {
        self.node_name.is_some() && !self.terminal
    }
}

/// The task a Pod asks to place. `job` is the owning job when the Pod names one. Errors when
/// the Pod's resources cannot be read.
///
/// # Errors
/// The unreadable quantity.
pub fn task_request(
    pod: &PodView,
    job: Option<&JobView>,
    groups: &GroupIndex,
) -> Result<TaskRequest, QuantityError> {
    let resources = pod.resources.clone()?;
    let group_name = job
        .map(|j| j.capacity_group.clone())
        .or_else(|| pod.capacity_group.clone())
        .unwrap_or_default();
    let (capacity_group, tier) = groups.resolve(&group_name);
    let job_id = pod
        .job_id
        .clone()
        .or_else(|| job.map(|j| j.job_id.clone()).filter(|id| !id.is_empty()))
        .unwrap_or_else(|| pod.key.clone());
    let mut request = TaskRequest::new(pod.key.clone(), job_id, resources)
        .tier(tier)
        .capacity_group(capacity_group)
        .job_type(
            pod.job_type
                .or_else(|| job.map(|j| j.job_type))
                .unwrap_or_default(),
        )
        .order_key(pod.created_ms);
    if let Some(job) = job {
        request.hard_constraints = job.hard_constraints.clone();
        request.soft_constraints = job.soft_constraints.clone();
    }
    Ok(request)
}

/// The record the cluster index keeps for a task placed by `request` (what `schedule()` records).
pub fn placed_task(request: &TaskRequest) -> PlacedTask {
    PlacedTask {
        job_id: request.job_id.clone(),
        capacity_group: request.capacity_group.clone(),
        tier: request.tier,
        resources: request.resources,
        exclusive_host: ConstraintSet::parse(&request.hard_constraints)
            .map(|c| c.exclusive_host)
            .unwrap_or(false),
    }
}

/// The Pod's effective request (see the module docs).
///
/// # Errors
/// The first quantity that cannot be read.
pub fn pod_resources(pod: &Pod) -> Result<Resources, QuantityError> {
    let Some(spec) = pod.spec.as_ref() else {
        return Ok(Resources {
            pods: 1,
            ..Resources::ZERO
        });
    };
    let mut sum = Resources::ZERO;
    for container in &spec.containers {
        sum = sum.saturating_add(&container_request(container)?);
    }
    for init in spec.init_containers.as_deref().unwrap_or_default() {
        let r = container_request(init)?;
        sum = Resources {
            cpu_milli: sum.cpu_milli.max(r.cpu_milli),
            memory_mb: sum.memory_mb.max(r.memory_mb),
            disk_mb: sum.disk_mb.max(r.disk_mb),
            network_mbps: sum.network_mbps.max(r.network_mbps),
            gpu: sum.gpu.max(r.gpu),
            pods: 0,
        };
    }
    if let Some(overhead) = &spec.overhead {
        sum = sum.saturating_add(&read_resources(|name| overhead.get(name))?);
    }
    sum.pods = 1;
    Ok(sum)
}

fn container_request(container: &Container) -> Result<Resources, QuantityError> {
    let requirements = container.resources.as_ref();
    let requests = requirements.and_then(|r| r.requests.as_ref());
    let limits = requirements.and_then(|r| r.limits.as_ref());
    read_resources(|name| {
        requests
            .and_then(|r| r.get(name))
            .or_else(|| limits.and_then(|l| l.get(name)))
    })
}

fn read_resources<'a>(
    get: impl Fn(&str) -> Option<&'a Quantity>,
) -> Result<Resources, QuantityError> {
    let read = |name: &str, unit: Unit| -> Result<u64, QuantityError> {
        get(name).map_or(Ok(0), |q| quantity::parse(&q.0, unit, Rounding::Up))
    };
    Ok(Resources {
        cpu_milli: read("cpu", Unit::Milli)?,
        memory_mb: read("memory", Unit::Mebibyte)?,
        disk_mb: read("ephemeral-storage", Unit::Mebibyte)?,
        network_mbps: read("titus/network", Unit::Megabit)?,
        gpu: read("nvidia.com/gpu", Unit::Count)?,
        pods: 0,
    })
}

#[cfg(test)]
#[path = "pod_tests.rs"]
mod tests;
