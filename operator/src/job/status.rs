//! The parts of a job's status that summarise its tasks: counts by state, `replicas` (non-finished
//! tasks, the `scale` subresource's status replicas) and the conditions. Pure.

use titus_crds::common::{condition, condition_status, set_condition};
use titus_crds::constants::conditions;
use titus_crds::job::status::{JobState, TaskCounts};
use titus_crds::{JobType, TaskState, TitusJob, TitusJobStatus, TitusTask};

use super::service::{is_dying, is_scaled_down};

/// Recomputes counts, replicas and conditions of `status` from the tasks.
pub fn refresh(job: &TitusJob, tasks: &[&TitusTask], now: u64, status: &mut TitusJobStatus) {
    status.task_counts = TaskCounts::from_states(tasks.iter().map(|t| t.state()));
    status.replicas = status.task_counts.non_finished();
    let generation = job.metadata.generation;
    let (ready, reason, message) = readiness(job, tasks, status.state);
    let flag = |b: bool| {
        if b {
            condition_status::TRUE
        } else {
            condition_status::FALSE
        }
    };
    let conds = &mut status.conditions;
    set_condition(
        conds,
        condition(
            conditions::READY,
            flag(ready),
            reason,
            message,
            generation,
            now,
        ),
    );
    let finished = status.state == JobState::Finished;
    set_condition(
        conds,
        condition(
            conditions::FINISHED,
            flag(finished),
            if finished {
                "JobFinished"
            } else {
                "JobRunning"
            },
            status.state.as_str(),
            generation,
            now,
        ),
    );
    let terminating = status.state == JobState::KillInitiated
        || (job.metadata.deletion_timestamp.is_some() && !finished);
    set_condition(
        conds,
        condition(
            conditions::TERMINATING,
            flag(terminating),
            if terminating {
                "JobKilled"
            } else {
                "NotKilled"
            },
            if terminating {
                status.reason_message.clone()
            } else {
                String::new()
            },
            generation,
            now,
        ),
    );
}

/// Ready: the job is `Accepted`, every live task is `Started`, and a service job runs `desired`
/// of them.
fn readiness(
    job: &TitusJob,
    tasks: &[&TitusTask],
    state: JobState,
) -> (bool, &'static str, String) {
    if state != JobState::Accepted {
        return (false, "JobNotRunning", format!("job is {}", state.as_str()));
    }
    let live: Vec<&&TitusTask> = tasks
        .iter()
        .filter(|t| !t.state().is_terminal() && !is_dying(t) && !is_scaled_down(t))
        .collect();
    let started = live
        .iter()
        .filter(|t| t.state() == TaskState::Started)
        .count();
    match job.spec.job_type() {
        Some(JobType::Service) => {
            let desired = job
                .spec
                .service
                .as_ref()
                .map_or(0, |s| s.capacity.desired as usize);
            let ready = started == desired && live.len() == desired;
            (
                ready,
                if ready {
                    "AllTasksStarted"
                } else {
                    "TasksNotReady"
                },
                format!("{started}/{desired} tasks started"),
            )
        }
        Some(JobType::Batch) | None => {
            let ready = started == live.len() && !live.is_empty();
            (
                ready,
                if ready {
                    "AllTasksStarted"
                } else {
                    "TasksNotReady"
                },
                format!("{started}/{} running tasks started", live.len()),
            )
        }
    }
}
