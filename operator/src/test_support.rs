//! Builders shared by the table-driven tests of the pure decisions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use titus_crds::common::StatusEntry;
use titus_crds::constants::{finalizers, labels, task_context};
use titus_crds::ids::{TaskIdKey, task_id};
use titus_crds::job::status::{JobState, JobStatusEntry};
use titus_crds::task::{TitusTaskSpec, TitusTaskStatus};
use titus_crds::{
    TaskKillReason, TaskKillRequest, TaskReasonCode, TaskState, TitusJob, TitusJobSpec,
    TitusJobStatus, TitusTask,
};

use crate::job::new_task;

/// The uid of every test job.
pub const JOB_UID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
/// When test jobs were accepted.
pub const ACCEPTED_AT: u64 = 1_000_000;

/// A job the controller has already adopted and accepted.
pub fn job(spec: TitusJobSpec) -> TitusJob {
    let mut job = new_job(spec);
    job.metadata.finalizers = Some(vec![finalizers::JOB_CONTROLLER.into()]);
    job.metadata.labels = Some([(labels::JOB_ID.to_string(), JOB_UID.to_string())].into());
    let mut status = TitusJobStatus {
        job_id: JOB_UID.into(),
        ..TitusJobStatus::default()
    };
    status.transition(JobStatusEntry {
        state: JobState::Accepted,
        reason_code: TaskReasonCode::Unknown,
        reason_message: crate::job::NEW_JOB_MESSAGE.into(),
        timestamp: ACCEPTED_AT,
    });
    job.status = Some(status);
    job
}

/// A job as a user created it: no status, no finalizer.
pub fn new_job(spec: TitusJobSpec) -> TitusJob {
    let mut job = TitusJob::new("job", spec);
    job.metadata.namespace = Some("default".into());
    job.metadata.uid = Some(JOB_UID.into());
    job.metadata.generation = Some(1);
    job.metadata.creation_timestamp = Some(Time(
        jiff::Timestamp::from_millisecond(ACCEPTED_AT as i64).unwrap(),
    ));
    job
}

/// Marks the job deleted (KillJob).
pub fn deleted(mut job: TitusJob) -> TitusJob {
    job.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
    job
}

/// The id of batch attempt `resubmit` of `index`.
pub fn batch_id(index: u32, resubmit: u32) -> String {
    task_id(
        JOB_UID,
        &TaskIdKey::Batch {
            index,
            resubmit_number: resubmit,
        },
    )
}

/// The id of service slot `n`.
pub fn slot_id(n: u64) -> String {
    task_id(JOB_UID, &TaskIdKey::ServiceSlot { sequence: n })
}

/// A batch attempt of `index`, first in its chain when `resubmit` is 0, in `Accepted`.
pub fn batch_task(job: &TitusJob, index: u32, resubmit: u32) -> TitusTask {
    let id = batch_id(index, resubmit);
    let spec = TitusTaskSpec {
        index: Some(index),
        original_id: batch_id(index, 0),
        resubmit_of: (resubmit > 0).then(|| batch_id(index, resubmit - 1)),
        resubmit_number: resubmit,
        ..TitusTaskSpec::default()
    };
    new_task(job, JOB_UID, &id, spec)
}

/// A first service attempt in slot `n`, in `Accepted`.
pub fn service_task(job: &TitusJob, n: u64) -> TitusTask {
    let id = slot_id(n);
    let spec = TitusTaskSpec {
        original_id: id.clone(),
        ..TitusTaskSpec::default()
    };
    new_task(job, JOB_UID, &id, spec)
}

/// Puts a task in `state` (reason `normal`) since `at`, on agent `agent` in `zone`.
pub fn in_state(mut task: TitusTask, state: TaskState, at: u64) -> TitusTask {
    let status = task.status.get_or_insert_with(TitusTaskStatus::default);
    status.apply(StatusEntry {
        state,
        reason_code: TaskReasonCode::Normal,
        reason_message: String::new(),
        timestamp: at,
    });
    if state == TaskState::Started {
        status.started_at = Some(at);
    }
    task
}

/// Places a task on an agent.
pub fn on_agent(mut task: TitusTask, zone: &str, agent: &str) -> TitusTask {
    let status = task.status.get_or_insert_with(TitusTaskStatus::default);
    status
        .task_context
        .insert(task_context::AGENT_ZONE.into(), zone.into());
    status
        .task_context
        .insert(task_context::AGENT_INSTANCE_ID.into(), agent.into());
    status.node_name = agent.into();
    task
}

/// Finishes a task with `reason` at `at`, after it ran from `started` (if given), killed for
/// `kill` (if given).
pub fn finished(
    mut task: TitusTask,
    reason: TaskReasonCode,
    kill: Option<TaskReasonCode>,
    started: Option<u64>,
    at: u64,
) -> TitusTask {
    let status = task.status.get_or_insert_with(TitusTaskStatus::default);
    let mut push = |state, reason_code, timestamp| {
        status.apply(StatusEntry {
            state,
            reason_code,
            reason_message: String::new(),
            timestamp,
        });
    };
    if let Some(s) = started {
        push(TaskState::Started, TaskReasonCode::Normal, s);
    }
    if let Some(k) = kill {
        push(TaskState::KillInitiated, k, at);
    }
    push(TaskState::Finished, reason, at);
    status.started_at = started;
    status.finished_at = Some(at);
    task
}

/// Sets a kill request on a task.
pub fn kill_requested(mut task: TitusTask, reason: TaskKillReason) -> TitusTask {
    task.spec.kill_request = Some(TaskKillRequest {
        reason,
        requested_by: "test".into(),
        message: String::new(),
        requested_at: 1,
    });
    task
}
