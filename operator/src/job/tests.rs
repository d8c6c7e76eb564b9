//! Table-driven tests of the job controller's decision: one case per rule.

#![allow(clippy::type_complexity)] // case tables are tuples

use titus_crds::job::status::JobState;
use titus_crds::{
    RetryPolicy, TaskKillReason, TaskReasonCode as R, TaskState as S, TitusJob, TitusJobSpec,
    TitusTask,
};

use super::{JobAction, JobLimits, plan};
use crate::test_support::*;

const NOW: u64 = 2_000_000;

/// What a plan does, in a comparable form.
#[derive(Debug, Default, PartialEq)]
struct Summary {
    state: Option<JobState>,
    adopt: bool,
    creates: Vec<String>,
    kills: Vec<(String, TaskKillReason)>,
    deletes: Vec<String>,
    release: bool,
    requeue_at: Option<u64>,
}

fn summary(job: &TitusJob, tasks: &[TitusTask], now: u64, limits: &JobLimits) -> Summary {
    let refs: Vec<&TitusTask> = tasks.iter().collect();
    let p = plan(job, &refs, now, limits);
    let mut s = Summary {
        state: Some(p.status.state),
        requeue_at: p.requeue_at,
        ..Summary::default()
    };
    for action in p.actions {
        match action {
            JobAction::Adopt => s.adopt = true,
            JobAction::CreateTask(t) => s.creates.push(t.metadata.name.unwrap_or_default()),
            JobAction::KillTask { name, request, .. } => s.kills.push((name, request.reason)),
            JobAction::DeleteTask { name } => s.deletes.push(name),
            JobAction::ReleaseFinalizer => s.release = true,
        }
    }
    s
}

fn accepted(creates: Vec<String>) -> Summary {
    Summary {
        state: Some(JobState::Accepted),
        creates,
        ..Summary::default()
    }
}

fn batch(size: u32, policy: RetryPolicy) -> TitusJob {
    job(TitusJobSpec::batch(size).with_retry_policy(policy))
}

#[test]
fn batch_rules() {
    let limits = JobLimits::default();
    let j = batch(3, RetryPolicy::immediate(2));
    let t = |i, r| batch_task(&j, i, r);
    let ok = |i| finished(t(i, 0), R::Normal, None, Some(10), 100);
    let exp = batch(1, RetryPolicy::exponential_back_off(4_000, 60_000, 5));
    let runtime = job({
        let mut s = TitusJobSpec::batch(1).with_retry_policy(RetryPolicy::immediate(5));
        s.batch.as_mut().unwrap().retry_on_runtime_limit = true;
        s
    });
    #[rustfmt::skip]
    let cases: Vec<(&str, TitusJob, Vec<TitusTask>, u64, Summary)> = vec![
        ("a new job is accepted, adopted and gets one task per index",
         new_job(TitusJobSpec::batch(3)), vec![], NOW,
         Summary { adopt: true, ..accepted(vec![batch_id(0, 0), batch_id(1, 0), batch_id(2, 0)]) }),
        ("indexes that have an attempt are not created again",
         j.clone(), vec![t(0, 0), in_state(t(2, 0), S::Started, 5)], NOW, accepted(vec![batch_id(1, 0)])),
        ("running attempts need nothing", j.clone(), vec![t(0, 0), t(1, 0), t(2, 0)], NOW, accepted(vec![])),
        ("a failed attempt waits for the 1 s minimum retry interval",
         j.clone(), vec![finished(t(0, 0), R::Failed, None, Some(NOW - 600), NOW - 500), ok(1), ok(2)], NOW,
         Summary { requeue_at: Some(NOW + 500), ..accepted(vec![]) }),
        ("a failed attempt is replaced once the delay passed",
         j.clone(), vec![finished(t(0, 0), R::Failed, None, Some(10), NOW - 1_000), ok(1), ok(2)], NOW,
         accepted(vec![batch_id(0, 1)])),
        ("the last allowed retry is created",
         j.clone(), vec![finished(t(0, 1), R::Failed, None, None, 100), ok(1), ok(2)], NOW,
         accepted(vec![batch_id(0, 2)])),
        ("no retry when the budget is used up; the job finishes",
         j.clone(), vec![finished(t(0, 2), R::Failed, None, None, 100), ok(1), ok(2)], NOW,
         Summary { state: Some(JobState::Finished), ..Summary::default() }),
        ("all indexes succeeded: Finished",
         j.clone(), vec![ok(0), ok(1), ok(2)], NOW, Summary { state: Some(JobState::Finished), ..Summary::default() }),
        ("a runtime-limit kill is retried with retryOnRuntimeLimit",
         runtime.clone(), vec![finished(batch_task(&runtime, 0, 0), R::Killed, Some(R::RuntimeLimitExceeded), Some(10), 100)], NOW,
         accepted(vec![batch_id(0, 1)])),
        ("a runtime-limit kill is final by default",
         batch(1, RetryPolicy::immediate(5)),
         vec![finished(batch_task(&j, 0, 0), R::Killed, Some(R::RuntimeLimitExceeded), Some(10), 100)], NOW,
         Summary { state: Some(JobState::Finished), ..Summary::default() }),
        ("exponential back-off: the first retry waits initialDelayMs",
         exp.clone(), vec![finished(batch_task(&exp, 0, 0), R::Failed, None, None, NOW - 3_999)], NOW,
         Summary { requeue_at: Some(NOW + 1), ..accepted(vec![]) }),
        ("at most activeNotStartedTasksLimit tasks wait to start",
         new_job(TitusJobSpec::batch(5)), vec![], NOW,
         Summary { adopt: true, requeue_at: Some(NOW + 1_000), ..accepted(vec![batch_id(0, 0), batch_id(1, 0)]) }),
    ];
    for (name, job, tasks, now, expected) in cases {
        let limits = if name.starts_with("at most") {
            JobLimits {
                active_not_started: 2,
                ..limits.clone()
            }
        } else {
            limits.clone()
        };
        assert_eq!(summary(&job, &tasks, now, &limits), expected, "{name}");
    }
}

#[test]
fn replacements_carry_titus_resubmit_bookkeeping() {
    let exp = batch(2, RetryPolicy::exponential_back_off(4_000, 60_000, 5));
    let mut first = batch_task(&exp, 1, 0);
    first.spec.system_resubmit_number = 0;
    let failed = finished(first, R::LocalSystemError, None, Some(10), 100);
    let ok = finished(batch_task(&exp, 0, 0), R::Normal, None, Some(10), 100);
    let p = plan(&exp, &[&failed, &ok], NOW, &JobLimits::default());
    let [JobAction::CreateTask(replacement)] = p.actions.as_slice() else {
        panic!("expected one create, got {:?}", p.actions);
    };
    let spec = &replacement.spec;
    assert_eq!(
        replacement.metadata.name.as_deref(),
        Some(batch_id(1, 1).as_str())
    );
    assert_eq!(spec.index, Some(1));
    assert_eq!(spec.original_id, batch_id(1, 0));
    assert_eq!(spec.resubmit_of.as_deref(), Some(batch_id(1, 0).as_str()));
    assert_eq!(
        (
            spec.resubmit_number,
            spec.system_resubmit_number,
            spec.eviction_resubmit_number
        ),
        (1, 1, 0)
    );
    assert_eq!(
        spec.back_off_delay_ms, 4_000,
        "the chain's back-off travels with the attempt"
    );
    let owner = &replacement.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("TitusJob", JOB_UID, Some(true))
    );
}

#[test]
fn kill_job_rules() {
    let limits = JobLimits::default();
    let j = batch(2, RetryPolicy::immediate(2));
    let killed = deleted(j.clone());
    let done = finished(batch_task(&j, 0, 0), R::Normal, None, None, 100);
    let mut finished_job = j.clone();
    finished_job.status.as_mut().unwrap().state = JobState::Finished;
    #[rustfmt::skip]
    let cases: Vec<(&str, TitusJob, Vec<TitusTask>, Summary)> = vec![
        ("a deleted job is KillInitiated and every live task gets a kill request",
         killed.clone(), vec![batch_task(&j, 1, 0), done.clone()],
         Summary { state: Some(JobState::KillInitiated), kills: vec![(batch_id(1, 0), TaskKillReason::Killed)], ..Summary::default() }),
        ("tasks already asked to die are not asked again; no replacement is made",
         killed.clone(), vec![kill_requested(batch_task(&j, 1, 0), TaskKillReason::Killed),
                              finished(batch_task(&j, 0, 0), R::Failed, None, None, 100)],
         Summary { state: Some(JobState::KillInitiated), ..Summary::default() }),
        ("with every task finished the job is Finished and the finalizer released",
         killed.clone(), vec![done.clone()],
         Summary { state: Some(JobState::Finished), release: true, ..Summary::default() }),
        ("a batch job that had finished is just released",
         deleted(finished_job), vec![done.clone()],
         Summary { state: Some(JobState::Finished), release: true, ..Summary::default() }),
    ];
    for (name, job, tasks, expected) in cases {
        assert_eq!(summary(&job, &tasks, NOW, &limits), expected, "{name}");
    }
}

#[test]
fn the_kill_message_names_the_caller() {
    let mut j = deleted(batch(1, RetryPolicy::immediate(0)));
    j.metadata.annotations = Some(
        [
            (
                titus_crds::constants::annotations::KILL_REQUESTED_BY.to_string(),
                "alice".to_string(),
            ),
            (
                titus_crds::constants::annotations::KILL_REASON.to_string(),
                "done testing".to_string(),
            ),
        ]
        .into(),
    );
    let p = plan(&j, &[&batch_task(&j, 0, 0)], NOW, &JobLimits::default());
    assert_eq!(p.status.reason_code, R::Killed);
    assert_eq!(p.status.reason_message, "Job killed by alice: done testing");
    assert_eq!(
        p.status.status_history.last().map(|e| e.state),
        Some(JobState::Accepted)
    );
}

fn service(min: u32, desired: u32, max: u32) -> TitusJob {
    job(TitusJobSpec::service(min, desired, max))
}

#[test]
fn service_rules() {
    let limits = JobLimits {
        finished_task_retention_ms: 60_000,
        ..JobLimits::default()
    };
    let j = service(0, 2, 10);
    let st =
        |n, zone, agent, at| on_agent(in_state(service_task(&j, n), S::Started, at), zone, agent);
    let mut seq4 = service(0, 4, 10);
    seq4.status.as_mut().unwrap().next_service_task_sequence = 2;
    let mut down = service(0, 1, 10);
    down.status.as_mut().unwrap().next_service_task_sequence = 3;
    let mut shrink = down.clone();
    shrink.spec.service.as_mut().unwrap().scale_down_task_ids = vec![slot_id(2)];
    let failed = |n, at: u64| finished(service_task(&j, n), R::Failed, None, Some(at - 100), at);
    let replacement_of = |n: u64| {
        titus_crds::ids::task_id(
            JOB_UID,
            &titus_crds::ids::TaskIdKey::Replacement {
                original_id: &slot_id(n),
                resubmit_number: 1,
            },
        )
    };
    let mut replaced = service_task(&j, 9);
    replaced.spec.resubmit_of = Some(slot_id(0));
    let mut disabled = service(0, 2, 10);
    disabled.spec.service.as_mut().unwrap().enabled = false;
    #[rustfmt::skip]
    let cases: Vec<(&str, TitusJob, Vec<TitusTask>, u64, Summary)> = vec![
        ("a new service job creates desired tasks in fresh slots",
         new_job(TitusJobSpec::service(1, 2, 3)), vec![], NOW,
         Summary { adopt: true, ..accepted(vec![slot_id(0), slot_id(1)]) }),
        ("desired tasks running: nothing to do", j.clone(), vec![st(0, "z1", "i1", 5), st(1, "z1", "i2", 5)], NOW, accepted(vec![])),
        ("scaling up uses the next slot numbers",
         seq4, vec![st(0, "z1", "i1", 5), st(1, "z1", "i2", 5)], NOW, accepted(vec![slot_id(2), slot_id(3)])),
        ("scaling down kills the oldest task of the most loaded agent",
         down.clone(), vec![st(0, "z1", "i1", 7), st(1, "z1", "i1", 5), st(2, "z2", "i2", 1)], NOW,
         Summary { kills: vec![(slot_id(1), TaskKillReason::ScaledDown), (slot_id(0), TaskKillReason::ScaledDown)], ..accepted(vec![]) }),
        ("kill-with-shrink picks the listed task first",
         shrink, vec![st(0, "z1", "i1", 7), st(1, "z1", "i1", 5), st(2, "z2", "i2", 1)], NOW,
         Summary { kills: vec![(slot_id(2), TaskKillReason::ScaledDown), (slot_id(1), TaskKillReason::ScaledDown)], ..accepted(vec![]) }),
        ("unplaced tasks go before started ones",
         down.clone(), vec![st(0, "z1", "i1", 7), service_task(&j, 1)], NOW,
         Summary { kills: vec![(slot_id(1), TaskKillReason::ScaledDown)], ..accepted(vec![]) }),
        ("a task already being killed counts as a victim and is not killed twice",
         down.clone(), vec![st(0, "z1", "i1", 7), kill_requested(st(1, "z1", "i2", 7), TaskKillReason::Killed)], NOW,
         accepted(vec![])),
        ("scaled-down tasks no longer count toward desired",
         j.clone(), vec![st(0, "z1", "i1", 5), st(1, "z1", "i2", 5), kill_requested(st(2, "z1", "i3", 5), TaskKillReason::ScaledDown)], NOW,
         accepted(vec![])),
        ("a failed task is replaced after the retry delay (same chain)",
         j.clone(), vec![st(1, "z1", "i1", 5), failed(0, NOW - 1_000)], NOW, accepted(vec![replacement_of(0)])),
        ("a failed task waits for the delay before its replacement, and no new slot is made",
         j.clone(), vec![st(1, "z1", "i1", 5), failed(0, NOW - 10)], NOW,
         Summary { requeue_at: Some(NOW + 990), ..accepted(vec![]) }),
        ("a user-killed task is replaced",
         j.clone(), vec![st(1, "z1", "i1", 5), finished(service_task(&j, 0), R::Killed, Some(R::Killed), Some(10), NOW - 5_000)], NOW,
         accepted(vec![replacement_of(0)])),
        ("a scaled-down task is not replaced; its record goes after the retention",
         j.clone(), vec![st(1, "z1", "i1", 5), st(2, "z1", "i2", 5), finished(service_task(&j, 0), R::Killed, Some(R::ScaledDown), None, NOW - 60_000)], NOW,
         Summary { deletes: vec![slot_id(0)], ..accepted(vec![]) }),
        ("a replaced record is kept until the retention passes",
         j.clone(), vec![replaced.clone(), st(1, "z1", "i1", 5), failed(0, NOW - 59_000)], NOW,
         Summary { requeue_at: Some(NOW + 1_000), ..accepted(vec![]) }),
        ("a service job with no tasks wanted does not finish by itself",
         service(0, 0, 10), vec![], NOW, accepted(vec![])),
        ("disabling a job changes nothing", disabled, vec![st(0, "z1", "i1", 5), st(1, "z1", "i2", 5)], NOW, accepted(vec![])),
    ];
    for (name, job, tasks, now, expected) in cases {
        assert_eq!(summary(&job, &tasks, now, &limits), expected, "{name}");
    }
}

#[test]
fn new_slots_are_reserved_in_the_status_written_before_the_creates() {
    let j = service(0, 3, 10);
    let p = plan(&j, &[], NOW, &JobLimits::default());
    assert_eq!(p.status.next_service_task_sequence, 3);
    let again = {
        let mut j = j.clone();
        j.status = Some(p.status.clone());
        plan(&j, &[], NOW, &JobLimits::default())
    };
    let names: Vec<_> = again
        .actions
        .iter()
        .filter_map(|a| match a {
            JobAction::CreateTask(t) => t.metadata.name.clone(),
            JobAction::Adopt
            | JobAction::KillTask { .. }
            | JobAction::DeleteTask { .. }
            | JobAction::ReleaseFinalizer => None,
        })
        .collect();
    assert_eq!(
        names,
        vec![slot_id(3), slot_id(4), slot_id(5)],
        "a pass that saw the reservation never reuses a slot"
    );
}

#[test]
fn status_counts_tasks_and_reports_replicas_and_selector() {
    let j = service(0, 2, 10);
    let tasks = [
        in_state(service_task(&j, 0), S::Started, 5),
        in_state(service_task(&j, 1), S::Launched, 5),
        finished(service_task(&j, 2), R::Failed, None, None, 5),
    ];
    let refs: Vec<&TitusTask> = tasks.iter().collect();
    let p = plan(&j, &refs, NOW, &JobLimits::default());
    assert_eq!(p.status.task_counts.started, 1);
    assert_eq!(p.status.task_counts.launched, 1);
    assert_eq!(p.status.task_counts.finished, 1);
    assert_eq!(p.status.replicas, 2);
    assert_eq!(p.status.selector, "titus.dev/job-name=job");
    assert_eq!(p.status.job_id, JOB_UID);
    let ready = titus_crds::common::find_condition(&p.status.conditions, "Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.message.as_str()),
        ("False", "1/2 tasks started")
    );
}
