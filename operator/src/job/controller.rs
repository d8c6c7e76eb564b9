//! The job controller's observe and act steps around [`super::plan`].
//!
//! Observe: the job from the controller's cache, its tasks from the task cache overlaid with this
//! instance's recent writes. Act, in this order, each write conditioned on the resourceVersion it
//! was decided from: adopt (label + finalizer), record the status (which also reserves service
//! slot numbers), create / kill / delete tasks, and release the finalizer last.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;
use titus_crds::constants::{finalizers, labels};
use titus_crds::{TaskKillRequest, TitusJob, TitusJobStatus, TitusTask};

use super::{JobAction, JobPlan, plan};
use crate::context::Shared;
use crate::error::{ReconcileError, api_code};
use crate::metrics::ControllerName;

/// Creates issued at once by one pass.
const CREATE_CONCURRENCY: usize = 16;
/// Look at every job at least this often, whatever happens.
const RESYNC: Duration = Duration::from_secs(300);
/// Status writes that would only refresh task counts or conditions are spaced this far apart.
const COUNTS_WRITE_INTERVAL: Duration = Duration::from_secs(1);

/// `true` when two job statuses differ at most in their task counts, replicas and conditions
/// (nothing Titus clients act on).
fn only_counts_differ(stored: &TitusJobStatus, planned: &TitusJobStatus) -> bool {
    let normalized = TitusJobStatus {
        task_counts: planned.task_counts,
        replicas: planned.replicas,
        conditions: planned.conditions.clone(),
        ..stored.clone()
    };
    normalized == *planned
}

/// One pass of the job controller.
///
/// # Errors
/// A failed write; the pass is retried (see [`crate::error::ErrorCategory::retry_after`]).
pub async fn reconcile(job: Arc<TitusJob>, ctx: Arc<Shared>) -> Result<Action, ReconcileError> {
    if !ctx.is_leader() {
        ctx.metrics.skipped(ControllerName::Job);
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let result = pass(&job, &ctx).await;
    ctx.metrics.reconciled(
        ControllerName::Job,
        result.as_ref().err().map(ReconcileError::category),
        started.elapsed(),
    );
    result
}

async fn pass(job: &TitusJob, ctx: &Shared) -> Result<Action, ReconcileError> {
    let (Some(uid), Some(namespace)) = (job.metadata.uid.clone(), job.namespace()) else {
        return Ok(Action::await_change());
    };
    let name = job.name_any();
    let tasks = ctx.job_tasks(&namespace, &uid);
    let refs: Vec<&TitusTask> = tasks.iter().map(AsRef::as_ref).collect();
    let now = ctx.clock.now_ms();
    let decided = plan(job, &refs, now, &ctx.limits);
    let span = tracing::debug_span!("job", job = %name, job_id = %uid);
    let _enter = span.enter();
    let jobs: Api<TitusJob> = Api::namespaced(ctx.client.clone(), &namespace);
    let api_error = |action: &'static str| {
        let (namespace, name) = (namespace.clone(), name.clone());
        move |source| ReconcileError::Api {
            action,
            kind: "TitusJob",
            namespace,
            name,
            source,
        }
    };
    let mut current = job.clone();
    if decided.actions.contains(&JobAction::Adopt) {
        current = adopt(&jobs, &current, &uid)
            .await
            .map_err(api_error("adopt"))?;
    }
    let mut decided = decided;
    let since_write = ctx.status_written_at(&uid).map(|at| at.elapsed());
    let cosmetic_only = current
        .status
        .as_ref()
        .is_some_and(|stored| only_counts_differ(stored, &decided.status));
    let hold = match since_write {
        Some(elapsed) if cosmetic_only && elapsed < COUNTS_WRITE_INTERVAL => {
            Some(COUNTS_WRITE_INTERVAL - elapsed)
        }
        Some(_) | None => None,
    };
    if let Some(wait) = hold {
        // Only counts or conditions changed, and they were written a moment ago: write them a
        // little later instead of on every task transition.
        let at = now.saturating_add(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
        decided.requeue_at = Some(decided.requeue_at.map_or(at, |t| t.min(at)));
    } else if current.status.as_ref() != Some(&decided.status) {
        let mut desired = current.clone();
        desired.status = Some(decided.status.clone());
        current = jobs
            .replace_status(&name, &PostParams::default(), &desired)
            .await
            .map_err(api_error("replace status of"))?;
        ctx.status_written(&uid);
    }
    let reference = job.object_ref(&());
    for event in &decided.events {
        ctx.publish(
            reference.clone(),
            event.reason,
            event.note.clone(),
            event.warning,
        );
    }
    act_on_tasks(ctx, &namespace, &decided).await?;
    if decided.actions.contains(&JobAction::ReleaseFinalizer) {
        release(&jobs, &current)
            .await
            .map_err(api_error("release finalizer of"))?;
        return Ok(Action::await_change());
    }
    Ok(requeue(&decided, now))
}

fn requeue(decided: &JobPlan, now: u64) -> Action {
    match decided.requeue_at {
        Some(at) => Action::requeue(Duration::from_millis(at.saturating_sub(now).max(50))),
        None => Action::requeue(RESYNC),
    }
}

/// Labels the job with its id and adds the finalizer, conditioned on the version decided from.
async fn adopt(api: &Api<TitusJob>, job: &TitusJob, uid: &str) -> Result<TitusJob, kube::Error> {
    let mut finalizer_list = job.finalizers().to_vec();
    if !finalizer_list
        .iter()
        .any(|f| f == finalizers::JOB_CONTROLLER)
    {
        finalizer_list.push(finalizers::JOB_CONTROLLER.into());
    }
    let patch = json!({
        "metadata": {
            "resourceVersion": job.resource_version(),
            "labels": { labels::JOB_ID: uid },
            "finalizers": finalizer_list,
        }
    });
    api.patch(
        &job.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
}

/// Removes the finalizer, conditioned on the version decided from.
async fn release(api: &Api<TitusJob>, job: &TitusJob) -> Result<(), kube::Error> {
    let remaining: Vec<&String> = job
        .finalizers()
        .iter()
        .filter(|f| *f != finalizers::JOB_CONTROLLER)
        .collect();
    let patch = json!({
        "metadata": {
            "resourceVersion": job.resource_version(),
            "finalizers": remaining,
        }
    });
    match api
        .patch(
            &job.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if api_code(&e) == Some(404) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates, kills and deletes tasks.
async fn act_on_tasks(
    ctx: &Shared,
    namespace: &str,
    decided: &JobPlan,
) -> Result<(), ReconcileError> {
    let tasks: Api<TitusTask> = Api::namespaced(ctx.client.clone(), namespace);
    let creates: Vec<_> = decided
        .actions
        .iter()
        .filter_map(|a| match a {
            JobAction::CreateTask(t) => Some(create_task(tasks.clone(), t.as_ref().clone())),
            JobAction::Adopt
            | JobAction::KillTask { .. }
            | JobAction::DeleteTask { .. }
            | JobAction::ReleaseFinalizer => None,
        })
        .collect();
    let results: Vec<Result<TitusTask, ReconcileError>> = futures::stream::iter(creates)
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect()
        .await;
    for result in results {
        ctx.remember(result?);
    }
    for action in &decided.actions {
        match action {
            JobAction::KillTask {
                name,
                resource_version,
                request,
            } => {
                kill_task(
                    ctx,
                    &tasks,
                    namespace,
                    name,
                    resource_version.as_deref(),
                    request,
                )
                .await?;
            }
            JobAction::DeleteTask { name } => {
                match tasks.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(e) if api_code(&e) == Some(404) => {}
                    Err(source) => {
                        return Err(ReconcileError::Api {
                            action: "delete",
                            kind: "TitusTask",
                            namespace: namespace.into(),
                            name: name.clone(),
                            source,
                        });
                    }
                }
            }
            JobAction::Adopt | JobAction::CreateTask(_) | JobAction::ReleaseFinalizer => {}
        }
    }
    Ok(())
}

/// Creates one task; returns what to remember of it.
async fn create_task(api: Api<TitusTask>, task: TitusTask) -> Result<TitusTask, ReconcileError> {
    match api.create(&PostParams::default(), &task).await {
        Ok(created) => Ok(created),
        // The same attempt was created before (a retried pass): the id is deterministic.
        Err(e) if api_code(&e) == Some(409) => Ok(task),
        Err(source) => Err(ReconcileError::Api {
            action: "create",
            kind: "TitusTask",
            namespace: task.namespace().unwrap_or_default(),
            name: task.name_any(),
            source,
        }),
    }
}

/// Sets `spec.killRequest`, conditioned on the version the decision saw (so the first request
/// wins and a stale decision is retried from fresh state).
async fn kill_task(
    ctx: &Shared,
    api: &Api<TitusTask>,
    namespace: &str,
    name: &str,
    seen: Option<&str>,
    request: &TaskKillRequest,
) -> Result<(), ReconcileError> {
    let patch = json!({
        "metadata": { "resourceVersion": seen },
        "spec": { "killRequest": request },
    });
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(patched) => {
            ctx.remember(patched);
            Ok(())
        }
        Err(e) if api_code(&e) == Some(404) => Ok(()),
        Err(source) => Err(ReconcileError::Api {
            action: "request kill of",
            kind: "TitusTask",
            namespace: namespace.into(),
            name: name.into(),
            source,
        }),
    }
}
