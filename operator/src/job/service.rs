//! Service jobs (titus-semantics §6): keep `desired` tasks; replace finished ones (after the retry
//! delay, without a retry limit) unless they were scaled down or enough tasks run; scale down in
//! Titus's victim order; finished records that will not be replaced again are deleted after a
//! retention time (Titus archived them). Pure.

use std::collections::BTreeSet;

use titus_crds::constants::task_context;
use titus_crds::ids::{TaskIdKey, task_id};
use titus_crds::task::TitusTaskSpec;
use titus_crds::{TaskKillReason, TaskReasonCode, TaskState, TitusJob, TitusTask};

use super::retry::{Ending, ending, next_counters, retry_delay};
use super::victims::{Candidate, Group, select_victims};
use super::{JobAction, JobEvent, JobLimits, JobPlan, create_budget, kill_request, new_task};

/// `true` when a live task was chosen as a scale-down victim (its kill reason is `scaledDown`).
pub fn is_scaled_down(task: &TitusTask) -> bool {
    if task
        .spec
        .kill_request
        .as_ref()
        .is_some_and(|k| k.reason == TaskKillReason::ScaledDown)
    {
        return true;
    }
    task.status.as_ref().is_some_and(|s| {
        std::iter::once(&s.current())
            .chain(s.status_history.iter())
            .any(|e| {
                e.state == TaskState::KillInitiated && e.reason_code == TaskReasonCode::ScaledDown
            })
    })
}

/// `true` for a live task that is being killed (kill request or `KillInitiated`).
pub fn is_dying(task: &TitusTask) -> bool {
    task.spec.kill_request.is_some() || task.state() == TaskState::KillInitiated
}

fn group(task: &TitusTask) -> Group {
    if is_dying(task) {
        return Group::Dying;
    }
    match task.state() {
        TaskState::Accepted => Group::Accepted,
        TaskState::Launched | TaskState::StartInitiated | TaskState::Disconnected => {
            Group::Launching
        }
        TaskState::Started | TaskState::KillInitiated | TaskState::Finished => Group::Started,
    }
}

fn candidate(task: &TitusTask) -> Candidate<'_> {
    let context = task.status.as_ref().map(|s| &s.task_context);
    let get = |key: &str| context.and_then(|c| c.get(key)).map(String::as_str);
    let node = task.status.as_ref().map_or("", |s| s.node_name.as_str());
    Candidate {
        name: task.metadata.name.as_deref().unwrap_or_default(),
        group: group(task),
        zone: get(task_context::AGENT_ZONE).unwrap_or("default"),
        agent: get(task_context::AGENT_INSTANCE_ID).unwrap_or(node),
        timestamp: task.status.as_ref().map_or(0, |s| s.timestamp),
    }
}

/// Plans a service job that is `Accepted`.
pub fn plan_service(
    job: &TitusJob,
    uid: &str,
    tasks: &[&TitusTask],
    now: u64,
    limits: &JobLimits,
    plan: &mut JobPlan,
) {
    let Some(service) = job.spec.service.as_ref() else {
        return;
    };
    let desired = service.capacity.desired as usize;
    let effective: Vec<&TitusTask> = tasks
        .iter()
        .copied()
        .filter(|t| !t.state().is_terminal() && !is_scaled_down(t))
        .collect();
    let successors: BTreeSet<&str> = tasks
        .iter()
        .filter_map(|t| t.spec.resubmit_of.as_deref())
        .collect();
    let mut awaiting: Vec<(&TitusTask, Ending)> = tasks
        .iter()
        .filter_map(|t| ending(t).map(|e| (*t, e)))
        .filter(|(t, e)| {
            !e.scaled_down() && !successors.contains(t.metadata.name.as_deref().unwrap_or_default())
        })
        .collect();
    let policy = service.retry_policy.as_ref().and_then(|p| p.resolved());
    let due_at = |t: &TitusTask, e: &Ending| {
        let delay = retry_delay(policy, t.spec.back_off_delay_ms, e.started_for_ms);
        (
            e.finished_at.saturating_add(delay.delay_ms),
            delay.back_off_ms,
        )
    };
    awaiting.sort_by_key(|(t, e)| (due_at(t, e).0, t.metadata.name.clone()));
    let mut replaced: BTreeSet<&str> = BTreeSet::new();
    if effective.len() > desired {
        scale_down(
            &effective,
            &service.scale_down_task_ids,
            effective.len() - desired,
            now,
            limits,
            plan,
        );
    } else if effective.len() < desired {
        let deficit = desired - effective.len();
        let mut budget = create_budget(tasks, limits);
        if deficit > budget {
            plan.requeue_at(now.saturating_add(1_000));
        }
        let chosen = deficit.min(awaiting.len());
        for (task, end) in awaiting.iter().take(chosen) {
            let name = task.metadata.name.as_deref().unwrap_or_default();
            replaced.insert(name);
            let (due, back_off) = due_at(task, end);
            if now < due {
                plan.requeue_at(due);
                continue;
            }
            if budget == 0 {
                continue;
            }
            budget -= 1;
            let counters = next_counters(&task.spec, end);
            let id = task_id(
                uid,
                &TaskIdKey::Replacement {
                    original_id: &task.spec.original_id,
                    resubmit_number: counters.resubmit_number,
                },
            );
            let spec = TitusTaskSpec {
                original_id: task.spec.original_id.clone(),
                resubmit_of: Some(name.to_string()),
                resubmit_number: counters.resubmit_number,
                system_resubmit_number: counters.system_resubmit_number,
                eviction_resubmit_number: counters.eviction_resubmit_number,
                back_off_delay_ms: back_off,
                ..TitusTaskSpec::default()
            };
            plan.events.push(JobEvent {
                reason: titus_crds::constants::events::TASK_REPLACED,
                note: format!("Task {name} ({}) replaced by {id}", end.reason),
                warning: false,
            });
            plan.actions.push(JobAction::CreateTask(Box::new(new_task(
                job, uid, &id, spec,
            ))));
        }
        let slots = (deficit - chosen).min(budget);
        let first = plan.status.next_service_task_sequence;
        for sequence in first..first + slots as u64 {
            let id = task_id(uid, &TaskIdKey::ServiceSlot { sequence });
            let spec = TitusTaskSpec {
                original_id: id.clone(),
                ..TitusTaskSpec::default()
            };
            plan.actions.push(JobAction::CreateTask(Box::new(new_task(
                job, uid, &id, spec,
            ))));
        }
        // Reserved in the status write that precedes the creates: a retried pass that sees this
        // status uses new slot numbers, and one that does not re-creates the same ids.
        plan.status.next_service_task_sequence = first + slots as u64;
    }
    archive(tasks, &replaced, now, limits, plan);
}

fn scale_down(
    effective: &[&TitusTask],
    explicit: &[String],
    excess: usize,
    now: u64,
    limits: &JobLimits,
    plan: &mut JobPlan,
) {
    let candidates: Vec<Candidate<'_>> = effective.iter().map(|t| candidate(t)).collect();
    let victims = select_victims(&candidates, explicit, excess);
    let mut kills = 0;
    for name in victims {
        let Some(task) = effective
            .iter()
            .find(|t| t.metadata.name.as_deref() == Some(name))
        else {
            continue;
        };
        if is_dying(task) {
            // Already being killed: it just will not be replaced.
            continue;
        }
        if kills == limits.kills_per_pass {
            plan.requeue_at(now.saturating_add(1_000));
            break;
        }
        kills += 1;
        let message = if explicit.iter().any(|id| id == name) {
            "Killed with shrink (scaleDownTaskIds)".to_string()
        } else {
            "Scaled down: job desired size decreased".to_string()
        };
        plan.events.push(JobEvent {
            reason: titus_crds::constants::events::SCALED_DOWN,
            note: format!("Task {name}: {message}"),
            warning: false,
        });
        plan.actions.push(JobAction::KillTask {
            name: name.to_string(),
            resource_version: task.metadata.resource_version.clone(),
            request: kill_request(TaskKillReason::ScaledDown, &message, now),
        });
    }
}

/// Deletes finished records that will not be replaced again, once their retention has passed.
fn archive(
    tasks: &[&TitusTask],
    replaced: &BTreeSet<&str>,
    now: u64,
    limits: &JobLimits,
    plan: &mut JobPlan,
) {
    for task in tasks {
        let Some(end) = ending(task) else {
            continue;
        };
        let name = task.metadata.name.as_deref().unwrap_or_default();
        if replaced.contains(name) {
            // Waiting for its replacement: keep it, it carries the chain.
            continue;
        }
        let expires = end
            .finished_at
            .saturating_add(limits.finished_task_retention_ms);
        if now >= expires {
            plan.actions.push(JobAction::DeleteTask {
                name: name.to_string(),
            });
        } else {
            plan.requeue_at(expires);
        }
    }
}
