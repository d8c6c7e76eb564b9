//! The job controller: keeps each `TitusJob`'s tasks and status as Titus's job coordinator would.
//!
//! Observe -> decide -> act: [`plan()`] is the pure decision (from the job, its `TitusTask`s and
//! the time to a [`JobPlan`]: the status to record and the [`JobAction`]s to take); [`controller`]
//! observes (caches fed by watches, plus the controller's own recent writes) and acts.
//!
//! * [`batch`]: one task per index, retried as the retry policy says; the job finishes when every
//!   index is done.
//! * [`service`]: `desired` tasks, replacements without a retry limit, scale-down victims in
//!   Titus's order ([`victims`]); the job finishes only after KillJob.
//! * KillJob is the deletion of the `TitusJob`: the finalizer holds it while every task is killed,
//!   then the job is recorded `Finished` and the finalizer released.
//! * [`retry`]: delays and counting; [`status`]: counts, conditions and the job state history.

pub mod batch;
pub mod controller;
pub mod gate;

pub mod retry;
pub mod service;
pub mod status;
pub mod victims;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use titus_crds::constants::{finalizers, labels};
use titus_crds::job::status::{JobState, JobStatusEntry};
use titus_crds::pod::job_selector;
use titus_crds::task::TitusTaskSpec;
use titus_crds::{
    JobType, TaskKillReason, TaskKillRequest, TaskReasonCode, TaskState, TitusJob, TitusJobStatus,
    TitusTask,
};

use crate::clock::ms_of_time;

/// Who the job controller says it is in kill requests.
pub const REQUESTED_BY: &str = "job-controller";
/// Reason message of a new job, as Titus.
pub const NEW_JOB_MESSAGE: &str = "New Job created. Next tasks will be launched.";

/// Bounds of the work of one pass, and how long finished service records are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobLimits {
    /// Tasks of one job that may be `Accepted`, `Launched` or `StartInitiated` at once (Titus's
    /// `activeNotStartedTasksLimit`, 300); creation waits beyond it.
    pub active_not_started: u32,
    /// Tasks created in one pass at most.
    pub creates_per_pass: u32,
    /// Kill requests made in one pass at most (Titus bounds scale-down at 300).
    pub kills_per_pass: u32,
    /// How long a finished service task record that will not be replaced again is kept before
    /// it is deleted (Titus archived it). Batch records are kept as long as the job.
    pub finished_task_retention_ms: u64,
}

impl Default for JobLimits {
    fn default() -> Self {
        Self {
            active_not_started: 300,
            creates_per_pass: 300,
            kills_per_pass: 300,
            finished_task_retention_ms: 15 * 60 * 1000,
        }
    }
}

/// Something the job controller does, after recording the plan's status.
#[derive(Clone, Debug, PartialEq)]
pub enum JobAction {
    /// Label the job with its id (`titus.dev/job-id`) and add the finalizer.
    Adopt,
    /// Create a task attempt (its name is deterministic, so a retried create cannot duplicate).
    CreateTask(Box<TitusTask>),
    /// Set `spec.killRequest` on a task.
    KillTask {
        /// Task id.
        name: String,
        /// The task's resourceVersion the decision saw: the write is conditioned on it, so the
        /// first request wins and a decision from a stale cache is retried.
        resource_version: Option<String>,
        /// The request.
        request: TaskKillRequest,
    },
    /// Delete a finished service task record (Titus archived it).
    DeleteTask {
        /// Task id.
        name: String,
    },
    /// Remove the finalizer: the job is `Finished` and may go.
    ReleaseFinalizer,
}

/// An Event to publish about the job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobEvent {
    /// Event reason (`titus_crds::constants::events`).
    pub reason: &'static str,
    /// Human message.
    pub note: String,
    /// A warning rather than a normal event.
    pub warning: bool,
}

/// What one pass decides.
#[derive(Clone, Debug, PartialEq)]
pub struct JobPlan {
    /// The status to record (written only when it differs from the stored one).
    pub status: TitusJobStatus,
    /// What to do after recording it.
    pub actions: Vec<JobAction>,
    /// When to look again although nothing changes (a retry delay, a retention, a bounded pass).
    pub requeue_at: Option<u64>,
    /// Events to publish.
    pub events: Vec<JobEvent>,
}

impl JobPlan {
    fn requeue_at(&mut self, at: u64) {
        self.requeue_at = Some(self.requeue_at.map_or(at, |t| t.min(at)));
    }

    fn transition(&mut self, state: JobState, reason: TaskReasonCode, message: String, now: u64) {
        let event = match state {
            JobState::Accepted => JOB_ACCEPTED,
            JobState::KillInitiated => titus_crds::constants::events::JOB_KILLED,
            JobState::Finished => titus_crds::constants::events::JOB_FINISHED,
        };
        let changed = self.status.transition(JobStatusEntry {
            state,
            reason_code: reason,
            reason_message: message.clone(),
            timestamp: now,
        });
        if changed {
            self.events.push(JobEvent {
                reason: event,
                note: message,
                warning: false,
            });
        }
    }
}

/// Event reason of a new job (not in `titus_crds::constants::events`).
pub const JOB_ACCEPTED: &str = "JobAccepted";

/// Decides one pass of the job controller. `tasks` are this job's `TitusTask`s; `now` is ms
/// since the Unix epoch.
///
/// # Guarantees
/// Only forward job transitions (`Accepted -> KillInitiated -> Finished`, batch
/// `Accepted -> Finished`); at most one non-finished attempt per batch index and task ids derived
/// with `titus_crds::ids`; no task is created unless the job is `Accepted` and not being
/// deleted; `ReleaseFinalizer` only with a `Finished` status.
pub fn plan(job: &TitusJob, tasks: &[&TitusTask], now: u64, limits: &JobLimits) -> JobPlan {
    let mut status = job.status.clone().unwrap_or_default();
    let mut plan = JobPlan {
        status: TitusJobStatus::default(),
        actions: Vec::new(),
        requeue_at: None,
        events: Vec::new(),
    };
    let Some(uid) = job.metadata.uid.clone() else {
        plan.status = status;
        return plan;
    };
    let name = job.metadata.name.clone().unwrap_or_default();
    status.job_id = uid.clone();
    status.selector = job_selector(&name);
    status.observed_generation = job.metadata.generation;
    plan.status = status;
    if plan.status.timestamp == 0 {
        let created = job
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(now, ms_of_time);
        plan.transition(
            JobState::Accepted,
            TaskReasonCode::Unknown,
            NEW_JOB_MESSAGE.into(),
            created,
        );
    }
    let deleting = job.metadata.deletion_timestamp.is_some();
    let held = has_finalizer(&job.metadata);
    if !deleting && (!held || !has_job_id_label(&job.metadata, &uid)) {
        plan.actions.push(JobAction::Adopt);
    }
    if deleting || plan.status.state == JobState::KillInitiated {
        kill(job, tasks, now, limits, held, &mut plan);
    } else if plan.status.state == JobState::Accepted {
        match job.spec.job_type() {
            Some(JobType::Batch) => batch::plan_batch(job, &uid, tasks, now, limits, &mut plan),
            Some(JobType::Service) => {
                service::plan_service(job, &uid, tasks, now, limits, &mut plan);
            }
            // An invalid job (admission refuses these): keep the status, create nothing.
            None => {}
        }
    }
    status::refresh(job, tasks, now, &mut plan.status);
    plan
}

/// KillJob: every live task gets a kill request; once none is left the job is `Finished` and
/// the finalizer goes.
fn kill(
    job: &TitusJob,
    tasks: &[&TitusTask],
    now: u64,
    limits: &JobLimits,
    held: bool,
    plan: &mut JobPlan,
) {
    if plan.status.state == JobState::Finished {
        // A batch job that had finished on its own: nothing left to kill.
        if held {
            plan.actions.push(JobAction::ReleaseFinalizer);
        }
        return;
    }
    if plan.status.state == JobState::Accepted {
        plan.transition(
            JobState::KillInitiated,
            TaskReasonCode::Killed,
            kill_message(&job.metadata),
            now,
        );
    }
    let live: Vec<&&TitusTask> = tasks.iter().filter(|t| !t.state().is_terminal()).collect();
    if live.is_empty() {
        plan.transition(
            JobState::Finished,
            TaskReasonCode::Normal,
            "Job killed; all its tasks finished".into(),
            now,
        );
        if held {
            plan.actions.push(JobAction::ReleaseFinalizer);
        }
        return;
    }
    let message = format!("Job {} is being killed", plan.status.job_id);
    for task in live
        .iter()
        .filter(|t| t.spec.kill_request.is_none())
        .take(limits.kills_per_pass as usize)
    {
        plan.actions.push(JobAction::KillTask {
            name: task.metadata.name.clone().unwrap_or_default(),
            resource_version: task.metadata.resource_version.clone(),
            request: kill_request(TaskKillReason::Killed, &message, now),
        });
    }
}

/// The `KillInitiated` message of a job: the caller and reason from the KillJob annotations.
pub fn kill_message(meta: &ObjectMeta) -> String {
    use titus_crds::constants::annotations::{KILL_REASON, KILL_REQUESTED_BY};
    let get = |key: &str| {
        meta.annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .filter(|v| !v.is_empty())
    };
    match (get(KILL_REQUESTED_BY), get(KILL_REASON)) {
        (Some(by), Some(why)) => format!("Job killed by {by}: {why}"),
        (Some(by), None) => format!("Job killed by {by}"),
        (None, Some(why)) => format!("Job killed: {why}"),
        (None, None) => "Job killed".into(),
    }
}

/// A kill request from the job controller.
pub fn kill_request(reason: TaskKillReason, message: &str, now: u64) -> TaskKillRequest {
    TaskKillRequest {
        reason,
        requested_by: REQUESTED_BY.into(),
        message: message.into(),
        requested_at: now,
    }
}

fn has_finalizer(meta: &ObjectMeta) -> bool {
    meta.finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == finalizers::JOB_CONTROLLER))
}

fn has_job_id_label(meta: &ObjectMeta, uid: &str) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(labels::JOB_ID))
        .is_some_and(|v| v == uid)
}

/// `true` for tasks that count against `activeNotStartedTasksLimit`.
pub fn is_active_not_started(task: &TitusTask) -> bool {
    match task.state() {
        TaskState::Accepted | TaskState::Launched | TaskState::StartInitiated => true,
        TaskState::Started
        | TaskState::KillInitiated
        | TaskState::Disconnected
        | TaskState::Finished => false,
    }
}

/// How many tasks may still be created in this pass.
pub fn create_budget(tasks: &[&TitusTask], limits: &JobLimits) -> usize {
    let active = tasks.iter().filter(|t| is_active_not_started(t)).count();
    (limits.active_not_started as usize)
        .saturating_sub(active)
        .min(limits.creates_per_pass as usize)
}

/// A new `TitusTask` of `job` with the given id and spec, owned by the job.
pub fn new_task(job: &TitusJob, uid: &str, id: &str, spec: TitusTaskSpec) -> TitusTask {
    let job_name = job.metadata.name.clone().unwrap_or_default();
    let mut task_labels = BTreeMap::from([
        (labels::JOB_ID.to_string(), uid.to_string()),
        (labels::JOB_NAME.to_string(), job_name.clone()),
        (labels::TASK_ID.to_string(), id.to_string()),
    ]);
    if let Some(index) = spec.index {
        task_labels.insert(labels::TASK_INDEX.to_string(), index.to_string());
    }
    TitusTask {
        metadata: ObjectMeta {
            name: Some(id.to_string()),
            namespace: job.metadata.namespace.clone(),
            labels: Some(task_labels),
            owner_references: Some(vec![OwnerReference {
                api_version: titus_crds::constants::API_GROUP_VERSION.into(),
                kind: "TitusJob".into(),
                name: job_name,
                uid: uid.to_string(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        spec: TitusTaskSpec {
            job_id: uid.to_string(),
            job_name: job.metadata.name.clone().unwrap_or_default(),
            ..spec
        },
        status: None,
    }
}
