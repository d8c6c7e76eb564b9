//! The task controller's observe and act steps around [`super::machine::next`].
//!
//! Observe: the task, its job (cache, else a read), the job's capacity group, the pod (cache;
//! when the cache has none for a task whose pod was created, a fresh read confirms it is gone
//! before the task is finished), the node and its heartbeat Lease. Act: record the status
//! (conditioned on the task's resourceVersion), then create or delete the pod. A pod is created
//! only while the task is `Accepted` without `kube.podCreated`, and deleted only after a status
//! recording `KillInitiated` or `Finished` was written, so a crash between the two steps never
//! runs an attempt twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use titus_crds::task::TitusTaskStatus;
use titus_crds::{TaskState, TitusJob, TitusTask};

use super::facts::{JobFacts, PodFacts};
use super::machine::{PodAction, TaskEvent, next, pod_create_failed, pod_created, pod_was_created};
use super::pod::{PodInputs, build_pod};
use crate::context::Shared;
use crate::error::{ReconcileError, api_code};
use crate::metrics::ControllerName;

/// One pass of the task controller.
///
/// # Errors
/// A failed read or write; the pass is retried.
pub async fn reconcile(task: Arc<TitusTask>, ctx: Arc<Shared>) -> Result<Action, ReconcileError> {
    if !ctx.is_leader() {
        ctx.metrics.skipped(ControllerName::Task);
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let result = pass(&task, &ctx).await;
    ctx.metrics.reconciled(
        ControllerName::Task,
        result.as_ref().err().map(ReconcileError::category),
        started.elapsed(),
    );
    result
}

async fn pass(task: &TitusTask, ctx: &Shared) -> Result<Action, ReconcileError> {
    let Some(namespace) = task.namespace() else {
        return Ok(Action::await_change());
    };
    let name = task.name_any();
    let Some(job) = find_job(ctx, &namespace, task).await? else {
        // The job is gone: the garbage collector removes its tasks and pods.
        return Ok(Action::await_change());
    };
    let group = ctx.capacity_group(&namespace, &job);
    let job_facts = JobFacts::of(&job, group.as_deref());
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let pod = observe_pod(ctx, &pods, &namespace, task).await?;
    if let Some(stranger) = pod.as_ref().filter(|p| !owned_by(p, task)) {
        // A pod of the same name left by an earlier object of this name: remove it first.
        delete_pod(&pods, &namespace, stranger, 0).await?;
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    let pod_facts = pod.as_deref().map(PodFacts::of);
    let node = pod_facts
        .as_ref()
        .filter(|p| p.is_bound())
        .map(|p| ctx.node_facts(&p.node_name));
    let now = ctx.clock.now_ms();
    let transition = next(
        task,
        &job_facts,
        pod_facts.as_ref(),
        node.as_ref(),
        now,
        &ctx.timeouts,
    );
    let tasks: Api<TitusTask> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut events = transition.events.clone();
    match transition.pod {
        PodAction::Create => {
            let base = transition
                .status
                .clone()
                .or_else(|| task.status.clone())
                .unwrap_or_default();
            let inputs = PodInputs {
                task,
                job: &job,
                capacity_group: group.as_deref(),
            };
            let status = match pods
                .create(&PostParams::default(), &build_pod(&inputs))
                .await
            {
                Ok(_) => pod_created(&base, task),
                Err(e) if api_code(&e) == Some(409) => pod_created(&base, task),
                Err(e) if is_permanent(&e) => {
                    let (status, failed) = pod_create_failed(
                        &base,
                        task,
                        &job_facts,
                        &message_of(&e),
                        now,
                        &ctx.timeouts,
                    );
                    events.extend(failed);
                    status
                }
                Err(source) => {
                    return Err(ReconcileError::Api {
                        action: "create",
                        kind: "Pod",
                        namespace,
                        name,
                        source,
                    });
                }
            };
            write_status(&tasks, &namespace, task, status).await?;
        }
        PodAction::Delete {
            grace_period_seconds,
        } => {
            if let Some(status) = transition.status.clone() {
                write_status(&tasks, &namespace, task, status).await?;
            }
            if let Some(pod) = &pod {
                let already = pod.metadata.deletion_grace_period_seconds;
                if already.is_none_or(|g| g > grace_period_seconds) {
                    delete_pod(&pods, &namespace, pod, grace_period_seconds).await?;
                }
            }
        }
        PodAction::Keep => {
            if let Some(status) = transition.status.clone() {
                write_status(&tasks, &namespace, task, status).await?;
            }
        }
    }
    publish(ctx, task, events);
    Ok(match transition.recheck_at {
        Some(at) => Action::requeue(Duration::from_millis(at.saturating_sub(now).max(50))),
        None => Action::await_change(),
    })
}

fn publish(ctx: &Shared, task: &TitusTask, events: Vec<TaskEvent>) {
    if events.is_empty() {
        return;
    }
    let reference = task.object_ref(&());
    for event in events {
        ctx.publish(reference.clone(), event.reason, event.note, event.warning);
    }
}

/// The task's job: from the cache, else read (the job cache may lag the task cache).
async fn find_job(
    ctx: &Shared,
    namespace: &str,
    task: &TitusTask,
) -> Result<Option<Arc<TitusJob>>, ReconcileError> {
    let matches = |j: &TitusJob| j.metadata.uid.as_deref() == Some(task.spec.job_id.as_str());
    if let Some(job) = ctx
        .cached_job(namespace, &task.spec.job_name)
        .filter(|j| matches(j))
    {
        return Ok(Some(job));
    }
    let jobs: Api<TitusJob> = Api::namespaced(ctx.client.clone(), namespace);
    let fresh = jobs
        .get_opt(&task.spec.job_name)
        .await
        .map_err(|source| ReconcileError::Api {
            action: "read",
            kind: "TitusJob",
            namespace: namespace.into(),
            name: task.spec.job_name.clone(),
            source,
        })?;
    Ok(fresh.filter(|j| matches(j)).map(Arc::new))
}

/// The task's pod from the cache; when the cache has none although the pod was created, a fresh
/// read decides (a destructive conclusion is never drawn from a lagging cache).
async fn observe_pod(
    ctx: &Shared,
    pods: &Api<Pod>,
    namespace: &str,
    task: &TitusTask,
) -> Result<Option<Arc<Pod>>, ReconcileError> {
    let name = task.name_any();
    if let Some(pod) = ctx
        .caches
        .pods
        .get(&ObjectRef::new(&name).within(namespace))
    {
        return Ok(Some(pod));
    }
    let status = task.status.clone().unwrap_or_default();
    if status.state == TaskState::Finished || !pod_was_created(&status) {
        return Ok(None);
    }
    pods.get_opt(&name)
        .await
        .map(|p| p.map(Arc::new))
        .map_err(|source| ReconcileError::Api {
            action: "read",
            kind: "Pod",
            namespace: namespace.into(),
            name,
            source,
        })
}

fn owned_by(pod: &Pod, task: &TitusTask) -> bool {
    let Some(uid) = task.metadata.uid.as_deref() else {
        return true;
    };
    pod.owner_references()
        .iter()
        .filter(|o| o.controller == Some(true))
        .all(|o| o.uid == uid)
}

/// Records the task status with a PUT of the status subresource carrying the resourceVersion
/// the decision saw: a concurrent change makes it fail (409) and the pass is retried.
async fn write_status(
    api: &Api<TitusTask>,
    namespace: &str,
    task: &TitusTask,
    mut status: TitusTaskStatus,
) -> Result<(), ReconcileError> {
    status.observed_generation = task.metadata.generation;
    let mut desired = task.clone();
    desired.status = Some(status);
    let name = task.name_any();
    api.replace_status(&name, &PostParams::default(), &desired)
        .await
        .map(|_| ())
        .map_err(|source| ReconcileError::Api {
            action: "replace status of",
            kind: "TitusTask",
            namespace: namespace.into(),
            name,
            source,
        })
}

async fn delete_pod(
    pods: &Api<Pod>,
    namespace: &str,
    pod: &Pod,
    grace_period_seconds: i64,
) -> Result<(), ReconcileError> {
    let params = DeleteParams {
        grace_period_seconds: Some(u32::try_from(grace_period_seconds.max(0)).unwrap_or(0)),
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match pods.delete(&pod.name_any(), &params).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(api_code(&e), Some(404 | 409)) => Ok(()),
        Err(source) => Err(ReconcileError::Api {
            action: "delete",
            kind: "Pod",
            namespace: namespace.into(),
            name: pod.name_any(),
            source,
        }),
    }
}

/// Pod-create refusals that retrying cannot fix (the request itself is refused).
fn is_permanent(error: &kube::Error) -> bool {
    matches!(api_code(error), Some(400 | 403 | 404 | 422))
}

fn message_of(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}
