//! Titus job management on top of the Kubernetes API: the write RPCs (decide in [`plan`], act
//! here) and the read RPCs ([`reads`], served from the cache).
//!
//! Writes go to the API server, never to the cache: each one reads the object fresh, applies the
//! pure plan and replaces it with a `resourceVersion` precondition, retrying on a conflict. Then
//! it waits (bounded) until the cache has caught up, so a client that reads right after a write
//! sees it.
//!
//! * CreateJob: translate, sanitize and validate with the shared `titus-crds` admission, record
//!   the caller in `titus.createdBy` (and `titus.callReason`), check the active-job limit and job
//!   group uniqueness, create the `TitusJob`; the job id is its `metadata.uid`.
//! * KillJob: record the caller in annotations, then delete the `TitusJob` (the job controller
//!   holds it with a finalizer until its tasks are finished).
//! * KillTask: set `spec.killRequest`; with shrink, one write of the job (see
//!   [`plan::plan_kill_and_shrink`]).
//! * Capacity, status, processes, budget and attribute updates: writes of the `TitusJob` spec the
//!   shared validator's `validate_update` accepts. Task attributes live in the task's status.

pub mod plan;
pub mod reads;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Api, Resource};
use serde_json::json;
use titus_crds::constants::{annotations, attributes as attrs, labels, task_context};
use titus_crds::job::disruption::JobDisruptionBudget;
use titus_crds::job::ext::ServiceJobProcesses;
use titus_crds::{AdmissionConfig, TitusJob, TitusTask, admit};

use crate::cache::{Cache, CacheView, now_ms, resource_version};
use crate::call::CallMetadata;
use crate::error::ApiError;
use crate::pb;
use crate::translate::descriptor_to_spec;
use plan::CapacityChange;
use reads::{check_job_id, check_task_id};

/// How many times a write is retried after a `resourceVersion` conflict.
const CONFLICT_RETRIES: usize = 8;

/// Knobs of the job service.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Sanitizer and validator settings (the same code the API server's admission runs).
    pub admission: AdmissionConfig,
    /// Largest number of active (not `Finished`) jobs.
    pub max_active_jobs: usize,
    /// How long a request waits for the cache's first sync.
    pub cache_sync_timeout: Duration,
    /// How long a write waits for the cache to show it.
    pub write_visibility_timeout: Duration,
}

/// The job service: writes through the Kubernetes API, reads from the cache.
#[derive(Debug)]
pub struct JobService {
    jobs: Api<TitusJob>,
    tasks: Api<TitusTask>,
    namespace: String,
    cache: Arc<Cache>,
    settings: Settings,
    /// Serialises creates so the job group uniqueness check sees every earlier create.
    create_lock: tokio::sync::Mutex<()>,
}

impl JobService {
    /// A service writing to `namespace` through `client`, reading from `cache`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        cache: Arc<Cache>,
        settings: Settings,
    ) -> JobService {
        JobService {
            jobs: Api::namespaced(client.clone(), namespace),
            tasks: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            cache,
            settings,
            create_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The cache this service reads from.
    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    /// Waits (bounded) for the cache's first sync.
    ///
    /// # Errors
    /// `Unavailable` when the cache has not synced in time.
    pub async fn ensure_ready(&self) -> Result<(), ApiError> {
        if self.cache.is_ready()
            || self
                .cache
                .wait_until(self.settings.cache_sync_timeout, |v| v.is_synced())
                .await
        {
            Ok(())
        } else {
            Err(ApiError::Unavailable(
                "the gateway's job cache has not synced with the Kubernetes API yet".to_string(),
            ))
        }
    }

    /// Runs a read on the synced cache.
    ///
    /// # Errors
    /// `Unavailable` before the first sync, else whatever `f` returns.
    pub async fn read<R>(
        &self,
        f: impl FnOnce(&CacheView<'_>) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        self.ensure_ready().await?;
        self.cache.read(f)
    }

    fn cached_job(&self, job_id: &str) -> Result<Arc<TitusJob>, ApiError> {
        self.cache
            .read(|v| v.job(job_id).map(|j| j.object.clone()))
            .ok_or_else(|| ApiError::JobNotFound(job_id.to_string()))
    }

    fn cached_task(&self, task_id: &str) -> Result<Arc<TitusTask>, ApiError> {
        self.cache
            .read(|v| v.task(task_id).map(|t| t.object.clone()))
            .ok_or_else(|| ApiError::TaskNotFound(task_id.to_string()))
    }

    /// `CreateJob`: returns the new job id.
    ///
    /// # Errors
    /// `BadDescriptor`, `Validation`, `JobCreateLimited`, `InvalidSequenceId`, API errors.
    pub async fn create_job(
        &self,
        call: &CallMetadata,
        descriptor: &pb::JobDescriptor,
    ) -> Result<String, ApiError> {
        self.ensure_ready().await?;
        let mut spec = descriptor_to_spec(descriptor)?;
        admit(&mut spec, &self.settings.admission).map_err(ApiError::Validation)?;
        spec.attributes
            .insert(attrs::CREATED_BY.to_string(), call.caller().to_string());
        spec.attributes.remove(attrs::CALL_REASON);
        if !call.call_reason.is_empty() {
            spec.attributes
                .insert(attrs::CALL_REASON.to_string(), call.call_reason.clone());
        }
        let _serialised = self.create_lock.lock().await;
        self.cache
            .read(|v| plan::check_create_limits(v, &spec, self.settings.max_active_jobs))?;
        let job = TitusJob {
            metadata: ObjectMeta {
                generate_name: Some(plan::object_name_prefix(&spec.application_name)),
                namespace: Some(self.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        };
        let created = self.jobs.create(&PostParams::default(), &job).await?;
        let id = created
            .metadata
            .uid
            .clone()
            .ok_or_else(|| ApiError::KubeRejected {
                code: 500,
                message: "the API server returned a job without a uid".to_string(),
            })?;
        tracing::info!(job_id = %id, name = ?created.metadata.name, caller = call.caller(), "job created");
        self.await_job(&id, resource_version(&created.metadata))
            .await;
        Ok(id)
    }

    /// `KillJob`: records the caller, then deletes the `TitusJob`.
    ///
    /// # Errors
    /// `InvalidJobId`, `JobNotFound`, `JobTerminating`, API errors.
    pub async fn kill_job(&self, call: &CallMetadata, job_id: &str) -> Result<(), ApiError> {
        check_job_id(job_id)?;
        self.ensure_ready().await?;
        let job = self.cached_job(job_id)?;
        plan::ensure_accepted(&job, job_id)?;
        let name = job.meta().name.clone().unwrap_or_default();
        let record = json!({"metadata": {"annotations": {
            annotations::KILL_REQUESTED_BY: call.caller(),
            annotations::KILL_REASON: call.call_reason,
        }}});
        self.jobs
            .patch(&name, &PatchParams::default(), &Patch::Merge(&record))
            .await
            .map_err(|e| not_found_as(e, || ApiError::JobNotFound(job_id.to_string())))?;
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: job.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        self.jobs
            .delete(&name, &params)
            .await
            .map_err(|e| not_found_as(e, || ApiError::JobNotFound(job_id.to_string())))?;
        tracing::info!(job_id, caller = call.caller(), "job kill requested");
        let id = job_id.to_string();
        self.cache
            .wait_until(self.settings.write_visibility_timeout, |v| {
                v.job(&id)
                    .is_none_or(|j| j.object.metadata.deletion_timestamp.is_some())
            })
            .await;
        Ok(())
    }

    /// `KillTask`, with or without shrink.
    ///
    /// # Errors
    /// `InvalidTaskId`, `TaskNotFound`, `TaskTerminating`, `NotServiceJob`,
    /// `TerminateAndShrinkNotAllowed`, `JobTerminating`, API errors.
    pub async fn kill_task(
        &self,
        call: &CallMetadata,
        request: &pb::TaskKillRequest,
    ) -> Result<(), ApiError> {
        let task_id = request.task_id.as_str();
        check_task_id(task_id)?;
        self.ensure_ready().await?;
        let task = self.cached_task(task_id)?;
        let job_id = task.spec.job_id.clone();
        let job = self.cached_job(&job_id).ok();
        plan::ensure_killable(&task, task_id, job.as_deref())?;
        if !request.shrink {
            let (caller, reason, now) = (call.caller(), call.call_reason.as_str(), now_ms());
            return self
                .write_task(task_id, |t| {
                    plan::ensure_killable(t, task_id, None)?;
                    Ok(plan::plan_kill_request(t, caller, reason, now))
                })
                .await;
        }
        let job = job.ok_or_else(|| ApiError::JobNotFound(job_id.clone()))?;
        let existing: BTreeSet<String> = self.cache.read(|v| {
            v.tasks_of(&job_id)
                .iter()
                .map(|t| t.proto.id.clone())
                .collect()
        });
        let cfg = &self.settings.admission;
        let name = job.meta().name.clone().unwrap_or_default();
        self.write_job(&job_id, &name, |j| {
            plan::ensure_killable(&task, task_id, Some(j))?;
            plan::plan_kill_and_shrink(
                j,
                &job_id,
                task_id,
                request.prevent_min_size_update,
                |id| existing.contains(id),
                cfg,
            )
            .map(Some)
        })
        .await
    }

    /// `UpdateJobCapacity` / `UpdateJobCapacityWithOptionalAttributes`.
    ///
    /// # Errors
    /// `InvalidJobId`, `JobNotFound`, `NotServiceJob`, `JobTerminating`, `Capacity`, API errors.
    pub async fn update_capacity(
        &self,
        job_id: &str,
        change: CapacityChange,
    ) -> Result<(), ApiError> {
        let cfg = &self.settings.admission;
        self.update_job(job_id, |j| {
            plan::plan_capacity_update(j, job_id, change, cfg)
        })
        .await
    }

    /// `UpdateJobStatus`.
    ///
    /// # Errors
    /// `InvalidJobId`, `JobNotFound`, `NotServiceJob`, `JobTerminating`, API errors.
    pub async fn update_enabled(&self, job_id: &str, enabled: bool) -> Result<(), ApiError> {
        let cfg = &self.settings.admission;
        self.update_job(job_id, |j| plan::plan_enable(j, job_id, enabled, cfg))
            .await
    }

    /// `UpdateJobProcesses`.
    ///
    /// # Errors
    /// `InvalidJobId`, `JobNotFound`, `NotServiceJob`, `JobTerminating`, API errors.
    pub async fn update_processes(
        &self,
        job_id: &str,
        processes: ServiceJobProcesses,
    ) -> Result<(), ApiError> {
        let cfg = &self.settings.admission;
        self.update_job(job_id, |j| plan::plan_processes(j, job_id, processes, cfg))
            .await
    }

    /// `UpdateJobDisruptionBudget`.
    ///
    /// # Errors
    /// `InvalidJobId`, `JobNotFound`, `Validation`, API errors.
    pub async fn update_budget(
        &self,
        job_id: &str,
        budget: JobDisruptionBudget,
    ) -> Result<(), ApiError> {
        let cfg = &self.settings.admission;
        self.update_job(job_id, |j| plan::plan_budget(j, budget.clone(), cfg))
            .await
    }

    /// `UpdateJobAttributes`.
    ///
    /// # Errors
    /// `InvalidJobId`, `JobNotFound`, API errors.
    pub async fn update_job_attributes(
        &self,
        job_id: &str,
        updates: &BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        let cfg = &self.settings.admission;
        self.update_job(job_id, |j| plan::plan_job_attributes(j, updates, cfg))
            .await
    }

    /// `DeleteJobAttributes`.
    ///
    /// # Errors
    /// `InvalidJobId`, `JobNotFound`, `InvalidArgument` (no keys), API errors.
    pub async fn delete_job_attributes(
        &self,
        job_id: &str,
        keys: &[String],
    ) -> Result<(), ApiError> {
        plan::require_keys(keys)?;
        let cfg = &self.settings.admission;
        self.update_job(job_id, |j| plan::plan_delete_job_attributes(j, keys, cfg))
            .await
    }

    /// `UpdateTaskAttributes`: merged into the task's `status.attributes`.
    ///
    /// # Errors
    /// `InvalidTaskId`, `TaskNotFound`, API errors.
    pub async fn update_task_attributes(
        &self,
        task_id: &str,
        updates: &BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        self.patch_task_attributes(task_id, json!(updates)).await
    }

    /// `DeleteTaskAttributes`.
    ///
    /// # Errors
    /// `InvalidTaskId`, `TaskNotFound`, `InvalidArgument` (no keys), API errors.
    pub async fn delete_task_attributes(
        &self,
        task_id: &str,
        keys: &[String],
    ) -> Result<(), ApiError> {
        plan::require_keys(keys)?;
        let nulls: serde_json::Map<String, serde_json::Value> = keys
            .iter()
            .map(|k| (k.clone(), serde_json::Value::Null))
            .collect();
        self.patch_task_attributes(task_id, serde_json::Value::Object(nulls))
            .await
    }

    async fn patch_task_attributes(
        &self,
        task_id: &str,
        attributes: serde_json::Value,
    ) -> Result<(), ApiError> {
        check_task_id(task_id)?;
        self.ensure_ready().await?;
        self.cached_task(task_id)?;
        let patch = json!({"status": {"attributes": attributes}});
        let written = self
            .tasks
            .patch_status(task_id, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| not_found_as(e, || ApiError::TaskNotFound(task_id.to_string())))?;
        self.await_task(task_id, resource_version(&written.metadata))
            .await;
        Ok(())
    }

    /// `MoveTask`: the task changes job; the source shrinks by one and the target grows by one.
    ///
    /// # Errors
    /// Titus's MoveTask errors (§6.5), API errors.
    pub async fn move_task(&self, request: &pb::TaskMoveRequest) -> Result<(), ApiError> {
        let (source_id, target_id, task_id) = (
            request.source_job_id.as_str(),
            request.target_job_id.as_str(),
            request.task_id.as_str(),
        );
        check_job_id(source_id)?;
        check_job_id(target_id)?;
        check_task_id(task_id)?;
        if source_id == target_id {
            return Err(ApiError::SameJobIds(source_id.to_string()));
        }
        self.ensure_ready().await?;
        let source = self.cached_job(source_id)?;
        let target = self.cached_job(target_id)?;
        let task = self.cached_task(task_id)?;
        plan::check_move(&source, source_id, &target, target_id, &task, task_id)?;
        let target_name = target.meta().name.clone().unwrap_or_default();
        let target_uid = target.meta().uid.clone().unwrap_or_default();
        self.write_task(task_id, |t| {
            if t.spec.job_id != source_id {
                return Err(ApiError::TaskJobMismatch {
                    job_id: source_id.to_string(),
                    task_id: task_id.to_string(),
                });
            }
            Ok(Some(moved_task(
                t,
                source_id,
                target_id,
                &target_name,
                &target_uid,
            )))
        })
        .await?;
        let context = json!({"status": {"taskContext": {task_context::MOVED_FROM_JOB: source_id}}});
        self.tasks
            .patch_status(task_id, &PatchParams::default(), &Patch::Merge(&context))
            .await?;
        self.update_job(source_id, |j| Ok(Some(resize(j, -1))))
            .await?;
        self.update_job(target_id, |j| Ok(Some(resize(j, 1)))).await
    }

    /// Reads the job fresh from the API server, plans, writes with a `resourceVersion`
    /// precondition, retries on conflict, then waits for the cache to show the write.
    async fn update_job(
        &self,
        job_id: &str,
        plan: impl Fn(&TitusJob) -> Result<Option<TitusJob>, ApiError>,
    ) -> Result<(), ApiError> {
        check_job_id(job_id)?;
        self.ensure_ready().await?;
        let job = self.cached_job(job_id)?;
        let name = job.meta().name.clone().unwrap_or_default();
        self.write_job(job_id, &name, plan).await
    }

    async fn write_job(
        &self,
        job_id: &str,
        name: &str,
        plan: impl Fn(&TitusJob) -> Result<Option<TitusJob>, ApiError>,
    ) -> Result<(), ApiError> {
        for _ in 0..CONFLICT_RETRIES {
            let current = match self.jobs.get_opt(name).await? {
                Some(job)
                    if job.metadata.uid.as_deref() == Some(job_id)
                        || job.job_id() == Some(job_id) =>
                {
                    job
                }
                Some(_) | None => return Err(ApiError::JobNotFound(job_id.to_string())),
            };
            let Some(next) = plan(&current)? else {
                return Ok(());
            };
            match self.jobs.replace(name, &PostParams::default(), &next).await {
                Ok(written) => {
                    self.await_job(job_id, resource_version(&written.metadata))
                        .await;
                    return Ok(());
                }
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(e) => {
                    return Err(not_found_as(e, || {
                        ApiError::JobNotFound(job_id.to_string())
                    }));
                }
            }
        }
        Err(ApiError::Aborted(format!(
            "job {job_id} kept changing while it was being updated; retry"
        )))
    }

    async fn write_task(
        &self,
        task_id: &str,
        plan: impl Fn(&TitusTask) -> Result<Option<TitusTask>, ApiError>,
    ) -> Result<(), ApiError> {
        for _ in 0..CONFLICT_RETRIES {
            let Some(current) = self.tasks.get_opt(task_id).await? else {
                return Err(ApiError::TaskNotFound(task_id.to_string()));
            };
            let Some(next) = plan(&current)? else {
                return Ok(());
            };
            match self
                .tasks
                .replace(task_id, &PostParams::default(), &next)
                .await
            {
                Ok(written) => {
                    self.await_task(task_id, resource_version(&written.metadata))
                        .await;
                    return Ok(());
                }
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(e) => {
                    return Err(not_found_as(e, || {
                        ApiError::TaskNotFound(task_id.to_string())
                    }));
                }
            }
        }
        Err(ApiError::Aborted(format!(
            "task {task_id} kept changing while it was being updated; retry"
        )))
    }

    async fn await_job(&self, job_id: &str, version: u64) {
        let seen = self
            .cache
            .wait_until(self.settings.write_visibility_timeout, |v| {
                v.job(job_id).is_some_and(|j| j.resource_version >= version)
            })
            .await;
        if !seen {
            tracing::warn!(
                job_id,
                version,
                "the cache did not show a written job in time"
            );
        }
    }

    async fn await_task(&self, task_id: &str, version: u64) {
        let seen = self
            .cache
            .wait_until(self.settings.write_visibility_timeout, |v| {
                v.task(task_id)
                    .is_some_and(|t| t.resource_version >= version)
            })
            .await;
        if !seen {
            tracing::warn!(
                task_id,
                version,
                "the cache did not show a written task in time"
            );
        }
    }
}

fn not_found_as(error: kube::Error, not_found: impl FnOnce() -> ApiError) -> ApiError {
    match &error {
        kube::Error::Api(status) if status.code == 404 => not_found(),
        _ => error.into(),
    }
}

/// The task re-pointed at its new job: job id and name, owner reference and labels.
fn moved_task(
    task: &TitusTask,
    source_id: &str,
    target_id: &str,
    target_name: &str,
    target_uid: &str,
) -> TitusTask {
    let mut next = task.clone();
    next.spec.job_id = target_id.to_string();
    next.spec.job_name = target_name.to_string();
    if let Some(owners) = next.metadata.owner_references.as_mut() {
        for owner in owners.iter_mut().filter(|o| o.uid == source_id) {
            owner.uid = target_uid.to_string();
            owner.name = target_name.to_string();
        }
    }
    if let Some(values) = next.metadata.labels.as_mut() {
        if values.contains_key(labels::JOB_ID) {
            values.insert(labels::JOB_ID.to_string(), target_id.to_string());
        }
        if values.contains_key(labels::JOB_NAME) {
            values.insert(labels::JOB_NAME.to_string(), target_name.to_string());
        }
    }
    next
}

/// The job with `desired` moved by `delta` (MoveTask's source and target sides).
fn resize(job: &TitusJob, delta: i64) -> TitusJob {
    let mut next = job.clone();
    if let Some(service) = next.spec.service.as_mut() {
        let desired = i64::from(service.capacity.desired).saturating_add(delta);
        service.capacity.desired = u32::try_from(desired.max(0)).unwrap_or(u32::MAX);
    }
    next
}
