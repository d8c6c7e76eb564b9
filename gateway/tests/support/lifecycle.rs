//! A stand-in for the job and task controllers (the operator is written separately): tests call
//! these steps explicitly to move jobs and tasks through their Titus life, writing exactly what
//! the controllers are specified to write (finalizer, `status.jobId`, TitusTasks with owner
//! references and deterministic ids, Titus statuses). Tests using it switch to the real operator
//! once it lands.

use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use titus_crds::common::StatusEntry;
use titus_crds::constants::{finalizers, labels};
use titus_crds::ids::{TaskIdKey, task_id};
use titus_crds::job::status::{JobState, TitusJobStatus};
use titus_crds::task::{TitusTaskSpec, TitusTaskStatus};
use titus_crds::{TaskReasonCode, TaskState, TitusJob, TitusTask};

use super::wait_for;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Finds the TitusJob whose uid is `job_id`.
pub async fn job_by_id(jobs: &Api<TitusJob>, job_id: &str) -> anyhow::Result<TitusJob> {
    let list = jobs.list(&Default::default()).await?;
    list.items
        .into_iter()
        .find(|j| j.metadata.uid.as_deref() == Some(job_id))
        .with_context(|| format!("no TitusJob with uid {job_id}"))
}

/// What the job controller does with a new job: add its finalizer, write `status` (job id,
/// `Accepted`) and create the tasks (batch: one per index; service: `desired`). Returns the task
/// ids in creation order.
pub async fn accept_job(
    jobs: &Api<TitusJob>,
    tasks: &Api<TitusTask>,
    job_id: &str,
) -> anyhow::Result<Vec<String>> {
    let job = job_by_id(jobs, job_id).await?;
    let name = job.metadata.name.clone().context("job name")?;
    jobs.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": [finalizers::JOB_CONTROLLER]}})),
    )
    .await?;
    let mut status = TitusJobStatus {
        job_id: job_id.to_string(),
        ..TitusJobStatus::default()
    };
    status.transition(StatusEntry {
        state: JobState::Accepted,
        reason_code: TaskReasonCode::Unknown,
        reason_message: "New Job created. Next tasks will be launched.".into(),
        timestamp: now_ms(),
    });
    write_job_status(jobs, &name, &status).await?;
    let (count, batch) = match (&job.spec.batch, &job.spec.service) {
        (Some(b), _) => (b.size, true),
        (None, Some(s)) => (s.capacity.desired, false),
        (None, None) => bail!("job {job_id} has neither batch nor service"),
    };
    let mut ids = Vec::new();
    for i in 0..count {
        let key = if batch {
            TaskIdKey::Batch {
                index: i,
                resubmit_number: 0,
            }
        } else {
            TaskIdKey::ServiceSlot {
                sequence: u64::from(i),
            }
        };
        let id = task_id(job_id, &key);
        create_task(tasks, &job, job_id, &id, batch.then_some(i)).await?;
        ids.push(id);
    }
    Ok(ids)
}

/// Creates one TitusTask owned by `job` and sets its first status (`Accepted`/`normal`).
pub async fn create_task(
    tasks: &Api<TitusTask>,
    job: &TitusJob,
    job_id: &str,
    id: &str,
    index: Option<u32>,
) -> anyhow::Result<()> {
    let name = job.metadata.name.clone().unwrap_or_default();
    let task = TitusTask {
        metadata: ObjectMeta {
            name: Some(id.to_string()),
            labels: Some(
                [
                    (labels::JOB_ID.to_string(), job_id.to_string()),
                    (labels::JOB_NAME.to_string(), name.clone()),
                ]
                .into(),
            ),
            owner_references: Some(vec![OwnerReference {
                api_version: titus_crds::constants::API_GROUP_VERSION.to_string(),
                kind: "TitusJob".to_string(),
                name: name.clone(),
                uid: job_id.to_string(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        spec: TitusTaskSpec {
            job_id: job_id.to_string(),
            job_name: name,
            index,
            original_id: id.to_string(),
            ..TitusTaskSpec::default()
        },
        status: None,
    };
    tasks.create(&PostParams::default(), &task).await?;
    set_task_state(tasks, id, TaskState::Accepted, TaskReasonCode::Normal).await
}

/// Moves a task to `state` with Titus's status rules (history kept).
pub async fn set_task_state(
    tasks: &Api<TitusTask>,
    id: &str,
    state: TaskState,
    reason: TaskReasonCode,
) -> anyhow::Result<()> {
    let task = tasks.get(id).await?;
    let mut status = task.status.unwrap_or_default();
    status.apply(StatusEntry {
        state,
        reason_code: reason,
        reason_message: String::new(),
        timestamp: now_ms(),
    });
    write_task_status(tasks, id, &status).await
}

async fn write_task_status(
    tasks: &Api<TitusTask>,
    id: &str,
    status: &TitusTaskStatus,
) -> anyhow::Result<()> {
    tasks
        .patch_status(
            id,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await?;
    Ok(())
}

async fn write_job_status(
    jobs: &Api<TitusJob>,
    name: &str,
    status: &TitusJobStatus,
) -> anyhow::Result<()> {
    jobs.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await?;
    Ok(())
}

/// Moves a job to `state` (reason `killed` for `KillInitiated`, `normal` for `Finished`).
pub async fn set_job_state(
    jobs: &Api<TitusJob>,
    job_id: &str,
    state: JobState,
) -> anyhow::Result<()> {
    let job = job_by_id(jobs, job_id).await?;
    let name = job.metadata.name.clone().context("job name")?;
    let mut status = job.status.unwrap_or_default();
    let reason = match state {
        JobState::Accepted => TaskReasonCode::Unknown,
        JobState::KillInitiated => TaskReasonCode::Killed,
        JobState::Finished => TaskReasonCode::Normal,
    };
    status.transition(StatusEntry {
        state,
        reason_code: reason,
        reason_message: String::new(),
        timestamp: now_ms(),
    });
    write_job_status(jobs, &name, &status).await
}

/// What the controllers do after KillJob: once the job is being deleted, `KillInitiated`, every
/// task `KillInitiated` then `Finished`/`killed`, the job `Finished`, then the finalizer goes.
pub async fn process_job_kill(
    jobs: &Api<TitusJob>,
    tasks: &Api<TitusTask>,
    job_id: &str,
) -> anyhow::Result<()> {
    let job = wait_for(Duration::from_secs(10), "job deletion", || async {
        job_by_id(jobs, job_id)
            .await
            .ok()
            .filter(|j| j.metadata.deletion_timestamp.is_some())
    })
    .await?;
    let name = job.metadata.name.clone().context("job name")?;
    set_job_state(jobs, job_id, JobState::KillInitiated).await?;
    for task in job_tasks(tasks, job_id).await? {
        let id = task.metadata.name.clone().context("task name")?;
        if task.state() != TaskState::Finished {
            set_task_state(tasks, &id, TaskState::KillInitiated, TaskReasonCode::Killed).await?;
            set_task_state(tasks, &id, TaskState::Finished, TaskReasonCode::Killed).await?;
        }
    }
    set_job_state(jobs, job_id, JobState::Finished).await?;
    jobs.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await?;
    Ok(())
}

/// What the task controller does with `spec.killRequest`: `KillInitiated`, then `Finished`, both
/// with the request's reason.
pub async fn process_task_kill(tasks: &Api<TitusTask>, id: &str) -> anyhow::Result<()> {
    let task = wait_for(Duration::from_secs(10), "kill request", || async {
        tasks
            .get(id)
            .await
            .ok()
            .filter(|t| t.spec.kill_request.is_some())
    })
    .await?;
    let reason = task
        .spec
        .kill_request
        .map(|k| k.reason.reason_code())
        .unwrap_or(TaskReasonCode::Killed);
    set_task_state(tasks, id, TaskState::KillInitiated, reason.clone()).await?;
    set_task_state(tasks, id, TaskState::Finished, reason).await
}

/// The TitusTasks of a job.
pub async fn job_tasks(tasks: &Api<TitusTask>, job_id: &str) -> anyhow::Result<Vec<TitusTask>> {
    let list = tasks.list(&Default::default()).await?;
    Ok(list
        .items
        .into_iter()
        .filter(|t| t.spec.job_id == job_id)
        .collect())
}
