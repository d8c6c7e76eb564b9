//! `TitusJob` / `TitusTask` -> the Titus `Job` / `Task` clients see.
//!
//! * Ids: the job id is the job's `status.jobId`, else its `metadata.uid`; the task id is the
//!   task's `metadata.name`.
//! * Status: the stored Titus status and history. Before the job controller has written a status,
//!   a job is shown `Accepted` as of its creation time, with Titus's creation message. A job
//!   being deleted (KillJob) whose status still says `Accepted` is shown `KillInitiated`, which is
//!   what the deletion means, until the job controller records it.
//! * Task context: what the controllers stored, plus the identity keys Titus renders from the
//!   task record (`task.originalId`, `task.resubmitOf`, `task.resubmitNumber`,
//!   `task.systemResubmitNumber`, `task.evictionResubmitNumber`, `task.index`).
//! * `Version.timestamp`: the latest of the creation time, the status time, the deletion time
//!   and the `managedFields` write times, so every replica of the gateway reports the same value.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use titus_crds::constants::{annotations, task_context as keys};
use titus_crds::job::status::{JobState, JobStatusEntry};
use titus_crds::task::TaskStatusEntry;
use titus_crds::{TaskReasonCode, TaskState, TitusJob, TitusTask};

use super::spec_to_descriptor;
use crate::pb;

/// Reason message of a job's first status, as Titus wrote it.
pub const NEW_JOB_MESSAGE: &str = "New Job created. Next tasks will be launched.";

/// Renders a `TitusJob` as the Titus `Job`.
pub fn job_to_proto(job: &TitusJob) -> pb::Job {
    let created = creation_ms(&job.metadata);
    let (mut current, mut history) = match &job.status {
        Some(s) if s.timestamp != 0 => (s.current(), s.status_history.clone()),
        Some(_) | None => (
            JobStatusEntry {
                state: JobState::Accepted,
                reason_code: TaskReasonCode::Unknown,
                reason_message: NEW_JOB_MESSAGE.to_string(),
                timestamp: created,
            },
            Vec::new(),
        ),
    };
    if let Some(deleted) = &job.metadata.deletion_timestamp
        && current.state == JobState::Accepted
    {
        history.push(current);
        current = JobStatusEntry {
            state: JobState::KillInitiated,
            reason_code: TaskReasonCode::Killed,
            reason_message: kill_message(&job.metadata),
            timestamp: time_ms(deleted),
        };
    }
    let version = last_change_ms(&job.metadata, current.timestamp);
    pb::Job {
        id: job.job_id().unwrap_or_default().to_string(),
        job_descriptor: Some(spec_to_descriptor(&job.spec)),
        status: Some(job_status(&current)),
        status_history: history.iter().map(job_status).collect(),
        version: Some(pb::Version { timestamp: version }),
    }
}

/// `Killed by <caller>[: <reason>]`, from the annotations KillJob writes.
fn kill_message(meta: &ObjectMeta) -> String {
    let values = meta.annotations.clone().unwrap_or_default();
    let by = values
        .get(annotations::KILL_REQUESTED_BY)
        .map_or("unknown", String::as_str);
    match values.get(annotations::KILL_REASON) {
        Some(reason) if !reason.is_empty() => format!("Killed by {by}: {reason}"),
        Some(_) | None => format!("Killed by {by}"),
    }
}

fn job_status(s: &JobStatusEntry) -> pb::JobStatus {
    let state = match s.state {
        JobState::Accepted => pb::job_status::JobState::Accepted,
        JobState::KillInitiated => pb::job_status::JobState::KillInitiated,
        JobState::Finished => pb::job_status::JobState::Finished,
    };
    pb::JobStatus {
        state: state as i32,
        reason_code: s.reason_code.as_str().to_string(),
        reason_message: s.reason_message.clone(),
        timestamp: s.timestamp,
    }
}

/// Renders a `TitusTask` as the Titus `Task`.
pub fn task_to_proto(task: &TitusTask) -> pb::Task {
    let created = creation_ms(&task.metadata);
    let (current, history) = match &task.status {
        Some(s) if s.timestamp != 0 => (s.current(), s.status_history.clone()),
        Some(_) | None => (
            TaskStatusEntry {
                state: TaskState::Accepted,
                reason_code: TaskReasonCode::Normal,
                reason_message: String::new(),
                timestamp: created,
            },
            Vec::new(),
        ),
    };
    let status = task.status.as_ref();
    pb::Task {
        id: task.metadata.name.clone().unwrap_or_default(),
        job_id: task.spec.job_id.clone(),
        task_context: task_context(task),
        status: Some(task_status(&current)),
        status_history: history.iter().map(task_status).collect(),
        log_location: None,
        migration_details: status
            .and_then(|s| s.migration_details)
            .map(|m| pb::MigrationDetails {
                needs_migration: m.needs_migration,
                deadline: m.deadline,
                started: m.started,
            }),
        attributes: status.map(|s| s.attributes.clone()).unwrap_or_default(),
        version: Some(pb::Version {
            timestamp: last_change_ms(&task.metadata, current.timestamp),
        }),
    }
}

/// The task context Titus clients see: the stored context plus the identity keys.
pub fn task_context(task: &TitusTask) -> BTreeMap<String, String> {
    let mut context = task
        .status
        .as_ref()
        .map(|s| s.task_context.clone())
        .unwrap_or_default();
    let spec = &task.spec;
    let own_id = task.metadata.name.clone().unwrap_or_default();
    let original = if spec.original_id.is_empty() {
        own_id
    } else {
        spec.original_id.clone()
    };
    context.insert(keys::ORIGINAL_ID.to_string(), original);
    if let Some(of) = &spec.resubmit_of {
        context.insert(keys::RESUBMIT_OF.to_string(), of.clone());
    }
    context.insert(
        keys::RESUBMIT_NUMBER.to_string(),
        spec.resubmit_number.to_string(),
    );
    context.insert(
        keys::SYSTEM_RESUBMIT_NUMBER.to_string(),
        spec.system_resubmit_number.to_string(),
    );
    context.insert(
        keys::EVICTION_RESUBMIT_NUMBER.to_string(),
        spec.eviction_resubmit_number.to_string(),
    );
    if let Some(index) = spec.index {
        context.insert(keys::INDEX.to_string(), index.to_string());
    }
    context
}

fn task_status(s: &TaskStatusEntry) -> pb::TaskStatus {
    use pb::task_status::TaskState as P;
    let state = match s.state {
        TaskState::Accepted => P::Accepted,
        TaskState::Launched => P::Launched,
        TaskState::StartInitiated => P::StartInitiated,
        TaskState::Started => P::Started,
        TaskState::KillInitiated => P::KillInitiated,
        TaskState::Disconnected => P::Disconnected,
        TaskState::Finished => P::Finished,
    };
    pb::TaskStatus {
        state: state as i32,
        reason_code: s.reason_code.as_str().to_string(),
        reason_message: s.reason_message.clone(),
        timestamp: s.timestamp,
        container_state: Vec::new(),
    }
}

/// Milliseconds since the Unix epoch of a Kubernetes time (0 before the epoch).
pub fn time_ms(t: &Time) -> u64 {
    u64::try_from(t.0.as_millisecond()).unwrap_or(0)
}

fn creation_ms(meta: &ObjectMeta) -> u64 {
    meta.creation_timestamp.as_ref().map_or(0, time_ms)
}

/// The latest known change time of an object: creation, deletion, `managedFields` write times,
/// and the given status time.
pub fn last_change_ms(meta: &ObjectMeta, status_ms: u64) -> u64 {
    let managed = meta
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.time.as_ref())
        .map(time_ms);
    let deleted = meta.deletion_timestamp.as_ref().map(time_ms);
    managed
        .chain(deleted)
        .chain([creation_ms(meta), status_ms])
        .max()
        .unwrap_or(0)
}

/// The job's creation time as Titus sorts by it: its first `Accepted` status, else the object's
/// creation time.
pub fn job_accepted_ms(job: &TitusJob) -> u64 {
    job.status
        .as_ref()
        .and_then(|s| s.accepted_timestamp())
        .unwrap_or_else(|| creation_ms(&job.metadata))
}

/// The task's creation time as Titus sorts by it: its first `Accepted` status, else the object's
/// creation time.
pub fn task_accepted_ms(task: &TitusTask) -> u64 {
    task.status
        .as_ref()
        .and_then(|s| {
            s.status_history
                .iter()
                .chain(std::iter::once(&s.current()))
                .find(|e| e.state == TaskState::Accepted && e.timestamp != 0)
                .map(|e| e.timestamp)
        })
        .unwrap_or_else(|| creation_ms(&task.metadata))
}
