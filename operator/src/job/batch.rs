//! Batch jobs (titus-semantics §5): one attempt chain per index `0..size`, each retried as the
//! retry policy says; the job finishes when every index has a finished attempt that will not be
//! retried. Pure.

use std::collections::BTreeMap;

use titus_crds::ids::{TaskIdKey, task_id};
use titus_crds::job::status::JobState;
use titus_crds::task::TitusTaskSpec;
use titus_crds::{TaskReasonCode, TitusJob, TitusTask};

use super::retry::{BatchVerdict, batch_verdict, ending, next_counters, retry_delay};
use super::{JobAction, JobEvent, JobLimits, JobPlan, create_budget, new_task};

/// The latest attempt of each index (the one with the highest resubmit number).
pub fn chain_heads<'a>(tasks: &[&'a TitusTask], size: u32) -> BTreeMap<u32, &'a TitusTask> {
    let mut heads: BTreeMap<u32, &TitusTask> = BTreeMap::new();
    for task in tasks {
        let Some(index) = task.spec.index.filter(|i| *i < size) else {
            continue;
        };
        let newer = heads
            .get(&index)
            .is_none_or(|h| task.spec.resubmit_number > h.spec.resubmit_number);
        if newer {
            heads.insert(index, task);
        }
    }
    heads
}

/// Plans a batch job that is `Accepted`.
pub fn plan_batch(
    job: &TitusJob,
    uid: &str,
    tasks: &[&TitusTask],
    now: u64,
    limits: &JobLimits,
    plan: &mut JobPlan,
) {
    let Some(batch) = job.spec.batch.as_ref() else {
        return;
    };
    let policy = batch.retry_policy.as_ref().and_then(|p| p.resolved());
    let heads = chain_heads(tasks, batch.size);
    let mut retries: Vec<TitusTask> = Vec::new();
    let mut fresh: Vec<u32> = Vec::new();
    let mut all_done = true;
    for index in 0..batch.size {
        let Some(head) = heads.get(&index) else {
            all_done = false;
            fresh.push(index);
            continue;
        };
        let Some(end) = ending(head) else {
            all_done = false;
            continue;
        };
        match batch_verdict(true, batch, &head.spec, &end) {
            BatchVerdict::Retry => {
                all_done = false;
                let delay = retry_delay(policy, head.spec.back_off_delay_ms, end.started_for_ms);
                let due = end.finished_at.saturating_add(delay.delay_ms);
                if now < due {
                    plan.requeue_at(due);
                    continue;
                }
                let counters = next_counters(&head.spec, &end);
                let id = task_id(
                    uid,
                    &TaskIdKey::Batch {
                        index,
                        resubmit_number: counters.resubmit_number,
                    },
                );
                let head_id = head.metadata.name.clone().unwrap_or_default();
                let spec = TitusTaskSpec {
                    index: Some(index),
                    original_id: head.spec.original_id.clone(),
                    resubmit_of: Some(head_id),
                    resubmit_number: counters.resubmit_number,
                    system_resubmit_number: counters.system_resubmit_number,
                    eviction_resubmit_number: counters.eviction_resubmit_number,
                    back_off_delay_ms: delay.back_off_ms,
                    ..TitusTaskSpec::default()
                };
                retries.push(new_task(job, uid, &id, spec));
            }
            BatchVerdict::Succeeded
            | BatchVerdict::RetriesExhausted
            | BatchVerdict::RuntimeLimitNotRetried
            | BatchVerdict::JobTerminating => {}
        }
    }
    if all_done {
        plan.transition(
            JobState::Finished,
            TaskReasonCode::Normal,
            format!("All {} tasks finished", batch.size),
            now,
        );
        return;
    }
    let budget = create_budget(tasks, limits);
    let wanted = retries.len() + fresh.len();
    if wanted > budget {
        // More next pass: tasks starting or finishing wake the job too; this is the safety net.
        plan.requeue_at(now.saturating_add(1_000));
    }
    for task in retries.into_iter().take(budget) {
        plan.events.push(JobEvent {
            reason: titus_crds::constants::events::TASK_REPLACED,
            note: format!(
                "Task {} of index {} replaced by {} (resubmit {})",
                task.spec.resubmit_of.as_deref().unwrap_or_default(),
                task.spec.index.unwrap_or_default(),
                task.metadata.name.as_deref().unwrap_or_default(),
                task.spec.resubmit_number
            ),
            warning: false,
        });
        plan.actions.push(JobAction::CreateTask(Box::new(task)));
    }
    let left = budget.saturating_sub(plan_creates(plan));
    for index in fresh.into_iter().take(left) {
        let id = task_id(
            uid,
            &TaskIdKey::Batch {
                index,
                resubmit_number: 0,
            },
        );
        let spec = TitusTaskSpec {
            index: Some(index),
            original_id: id.clone(),
            ..TitusTaskSpec::default()
        };
        plan.actions.push(JobAction::CreateTask(Box::new(new_task(
            job, uid, &id, spec,
        ))));
    }
}

fn plan_creates(plan: &JobPlan) -> usize {
    plan.actions
        .iter()
        .filter(|a| match a {
            JobAction::CreateTask(_) => true,
            JobAction::Adopt
            | JobAction::KillTask { .. }
            | JobAction::DeleteTask { .. }
            | JobAction::ReleaseFinalizer => false,
        })
        .count()
}
