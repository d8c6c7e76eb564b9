//! Table-driven tests of the task state machine: one case per rule and reason.

#![allow(clippy::type_complexity)] // case tables are tuples

use std::collections::BTreeMap;

use titus_crds::constants::task_context;
use titus_crds::task::TitusTaskStatus;
use titus_crds::{
    JobType, RetryPolicy, TaskKillReason, TaskReasonCode as R, TaskState as S, TitusJobSpec,
    TitusTask,
};

use super::*;
use crate::task::facts::{ContainerFacts, JobFacts, NodeFacts, PodFacts};
use crate::test_support::*;

const T: u64 = 5_000_000;

fn batch_job() -> JobFacts {
    JobFacts {
        job_type: JobType::Batch,
        runtime_limit_ms: Some(60_000),
        retry: RetryPolicy::delayed(3_000, 2).resolved(),
        context: BTreeMap::new(),
    }
}

fn service_job() -> JobFacts {
    JobFacts {
        job_type: JobType::Service,
        runtime_limit_ms: None,
        retry: RetryPolicy::immediate(0).resolved(),
        context: BTreeMap::new(),
    }
}

fn pod() -> PodFacts {
    PodFacts {
        phase: "Pending".into(),
        reason: String::new(),
        message: String::new(),
        node_name: String::new(),
        deleting: false,
        deletion_grace_seconds: None,
        grace_period_seconds: 600,
        container: ContainerFacts::Unknown,
        unschedulable: None,
        context: BTreeMap::new(),
    }
}

fn bound() -> PodFacts {
    PodFacts {
        node_name: "node-1".into(),
        ..pod()
    }
}

fn starting() -> PodFacts {
    PodFacts {
        reason: "TASK_STARTING".into(),
        container: ContainerFacts::Waiting {
            reason: "TASK_STARTING".into(),
        },
        ..bound()
    }
}

fn running(started: u64) -> PodFacts {
    PodFacts {
        phase: "Running".into(),
        reason: "TASK_RUNNING".into(),
        container: ContainerFacts::Running {
            started_at: Some(started),
        },
        ..bound()
    }
}

fn ended(phase: &str, reason: &str, message: &str, started: Option<u64>) -> PodFacts {
    PodFacts {
        phase: phase.into(),
        reason: reason.into(),
        message: message.into(),
        container: ContainerFacts::Terminated {
            exit_code: 1,
            started_at: started,
            message: String::new(),
        },
        ..bound()
    }
}

fn deleting(p: PodFacts) -> PodFacts {
    PodFacts {
        deleting: true,
        deletion_grace_seconds: Some(600),
        ..p
    }
}

fn node(renewed: u64) -> NodeFacts {
    NodeFacts {
        name: "node-1".into(),
        lease_renewed_at: Some(renewed),
        context: [(task_context::AGENT_ZONE.to_string(), "z1".to_string())].into(),
    }
}

fn task() -> TitusTask {
    batch_task(&job(TitusJobSpec::batch(1)), 0, 0)
}

/// A task whose pod was created (Accepted/podCreated) at `at`.
fn created(at: u64) -> TitusTask {
    let mut t = task();
    let base = TitusTaskStatus::default();
    let mut s = base.clone();
    s.apply(titus_crds::common::StatusEntry {
        state: S::Accepted,
        reason_code: R::Normal,
        reason_message: String::new(),
        timestamp: at,
    });
    t.status = Some(pod_created(&s, &t));
    t
}

fn with(t: TitusTask, state: S, reason: R, at: u64) -> TitusTask {
    let mut t = t;
    let s = t.status.get_or_insert_with(TitusTaskStatus::default);
    s.apply(titus_crds::common::StatusEntry {
        state,
        reason_code: reason,
        reason_message: String::new(),
        timestamp: at,
    });
    if state == S::Started {
        s.started_at = Some(at);
    }
    t
}

#[derive(Debug, PartialEq)]
struct Got {
    state: S,
    reason: String,
    pod: PodAction,
    recheck: Option<u64>,
}

const KEEP: PodAction = PodAction::Keep;
const FORCE: PodAction = PodAction::Delete {
    grace_period_seconds: 0,
};
const GRACE: PodAction = PodAction::Delete {
    grace_period_seconds: 600,
};

fn got(state: S, reason: &str, pod: PodAction, recheck: Option<u64>) -> Got {
    Got {
        state,
        reason: reason.into(),
        pod,
        recheck,
    }
}

fn run(
    t: &TitusTask,
    job: &JobFacts,
    p: Option<&PodFacts>,
    n: Option<&NodeFacts>,
    now: u64,
) -> (Transition, Got) {
    let tr = next(t, job, p, n, now, &TaskTimeouts::default());
    let status = tr
        .status
        .clone()
        .or_else(|| t.status.clone())
        .unwrap_or_default();
    let g = Got {
        state: status.state,
        reason: status.reason_code.to_string(),
        pod: tr.pod.clone(),
        recheck: tr.recheck_at,
    };
    (tr, g)
}

#[test]
fn pod_facts_map_onto_titus_task_states() {
    let b = batch_job();
    let started = with(created(1), S::Started, R::Normal, T - 1_000);
    let killing = with(started.clone(), S::KillInitiated, R::Killed, T - 10);
    let stuck = with(created(1), S::KillInitiated, R::StuckInState, T - 10);
    #[rustfmt::skip]
    let cases: Vec<(&str, TitusTask, Option<PodFacts>, Got)> = vec![
        ("a new task gets its pod", task(), None, got(S::Accepted, "normal", PodAction::Create, None)),
        ("an unscheduled pod leaves the task Accepted", created(1), Some(pod()), got(S::Accepted, "podCreated", KEEP, None)),
        ("a bound pod without a reason: Launched/podScheduled", created(1), Some(bound()), got(S::Launched, "podScheduled", KEEP, Some(T + 300_000))),
        ("a bound pod keeps its own reason as the code", created(1), Some(PodFacts { reason: "TASK_STARTING".into(), ..bound() }), got(S::Launched, "TASK_STARTING", KEEP, Some(T + 300_000))),
        ("TASK_STARTING with a waiting container: StartInitiated", created(1), Some(starting()), got(S::StartInitiated, "TASK_STARTING", KEEP, Some(T + 720_000))),
        ("phase Running: Started (runtime limit clock starts at the container start)", created(1), Some(running(T - 10)), got(S::Started, "normal", KEEP, Some(T - 10 + 60_000))),
        ("Succeeded: Finished/normal and the pod goes", started.clone(), Some(ended("Succeeded", "TASK_FINISHED", "", Some(T - 1_000))), got(S::Finished, "normal", FORCE, None)),
        ("Failed: Finished/failed", started.clone(), Some(ended("Failed", "TASK_FAILED", "exit 1", Some(T - 1_000))), got(S::Finished, "failed", FORCE, None)),
        ("a crash message is classified crashed", created(1), Some(PodFacts { container: ContainerFacts::Unknown, ..ended("Failed", "TASK_CRASHED", "agent crashed early", None) }), got(S::Finished, "crashed", FORCE, None)),
        ("TASK_CRASHED before Started without a crash message", created(1), Some(PodFacts { container: ContainerFacts::Unknown, ..ended("Failed", "TASK_CRASHED", "agent died", None) }), got(S::Finished, "localSystemError", FORCE, None)),
        ("TASK_CRASHED after Started: failed", started.clone(), Some(ended("Failed", "TASK_CRASHED", "agent died", Some(T - 1_000))), got(S::Finished, "failed", FORCE, None)),
        ("TASK_LOST: lost", started.clone(), Some(ended("Failed", "TASK_LOST", "runtime lost it", Some(T - 1_000))), got(S::Finished, "lost", FORCE, None)),
        ("TASK_KILLED without a kill: killed", started.clone(), Some(ended("Failed", "TASK_KILLED", "stopped", Some(T - 1_000))), got(S::Finished, "killed", FORCE, None)),
        ("message patterns refine the reason", started.clone(), Some(ended("Failed", "TASK_FAILED", "bad image: invalidRequest", Some(T - 1_000))), got(S::Finished, "invalidRequest", FORCE, None)),
        ("any end after KillInitiated is killed", killing.clone(), Some(ended("Succeeded", "TASK_FINISHED", "", Some(T - 1_000))), got(S::Finished, "killed", FORCE, None)),
        ("an end after a stuckInState kill is a transient system error", stuck.clone(), Some(ended("Failed", "TASK_KILLED", "", None)), got(S::Finished, "transientSystemError", FORCE, None)),
        ("the pod vanished without a kill: killed outside the API", started.clone(), None, got(S::Finished, "killed", KEEP, None)),
        ("the pod vanished after the kill: killed", killing.clone(), None, got(S::Finished, "killed", KEEP, None)),
        ("the pod of a stuckInState kill vanished: transientSystemError", stuck.clone(), None, got(S::Finished, "transientSystemError", KEEP, None)),
        ("the pod is deleted behind the API: KillInitiated/killed", started.clone(), Some(deleting(running(T - 1_000))), got(S::KillInitiated, "killed", KEEP, Some(T + 600_000))),
        ("a KillInitiated task whose pod was not deleted gets it deleted", killing.clone(), Some(running(T - 1_000)), got(S::KillInitiated, "killed", GRACE, Some(T - 10 + 600_000))),
        ("a KillInitiated task waits for its pod", killing.clone(), Some(deleting(running(T - 1_000))), got(S::KillInitiated, "killed", KEEP, Some(T - 10 + 600_000))),
        ("a Finished task's pod is removed", with(started.clone(), S::Finished, R::Failed, T - 5), Some(ended("Failed", "TASK_FAILED", "", None)), got(S::Finished, "failed", FORCE, None)),
        ("a Finished task without a pod needs nothing", with(started.clone(), S::Finished, R::Failed, T - 5), None, got(S::Finished, "failed", KEEP, None)),
    ];
    for (name, t, p, expected) in cases {
        let (_, g) = run(&t, &b, p.as_ref(), None, T);
        assert_eq!(g, expected, "{name}");
    }
}

#[test]
fn filled_in_entries_and_timestamps_follow_titus() {
    let b = batch_job();
    // Accepted straight to Running: Launched and StartInitiated are filled in at the start time.
    let (tr, _) = run(&created(1), &b, Some(&running(T - 50)), None, T);
    let s = tr.status.unwrap();
    let history: Vec<(S, String, u64)> = s
        .status_history
        .iter()
        .map(|e| (e.state, e.reason_code.to_string(), e.timestamp))
        .collect();
    assert_eq!(
        history,
        vec![
            (S::Accepted, "normal".into(), 1),
            (S::Accepted, "podCreated".into(), 1),
            (S::Launched, "filledIn".into(), T - 50),
            (S::StartInitiated, "filledIn".into(), T - 50),
        ]
    );
    assert_eq!(
        (s.state, s.timestamp, s.started_at),
        (S::Started, T - 50, Some(T - 50))
    );
    // A container that never started (setup failure): only Launched is filled in, at the end.
    let failed = PodFacts {
        container: ContainerFacts::Terminated {
            exit_code: 128,
            started_at: None,
            message: "no such image".into(),
        },
        ..ended("Failed", "TASK_FAILED", "", None)
    };
    let (tr, _) = run(&created(1), &b, Some(&failed), None, T);
    let s = tr.status.unwrap();
    let states: Vec<(S, String)> = s
        .status_history
        .iter()
        .map(|e| (e.state, e.reason_code.to_string()))
        .collect();
    assert_eq!(states.last(), Some(&(S::Launched, "filledIn".to_string())));
    assert_eq!(
        (s.state, s.reason_message.as_str()),
        (S::Finished, "no such image")
    );
}

#[test]
fn the_same_observation_twice_changes_nothing() {
    let b = batch_job();
    let (tr, _) = run(&created(1), &b, Some(&starting()), None, T);
    let mut t = created(1);
    t.status = tr.status;
    let (again, _) = run(&t, &b, Some(&starting()), None, T + 5);
    assert_eq!(
        again.status, None,
        "a repeat of state, reason and message is dropped"
    );
    // A repeated Launched with another reason is dropped too.
    let (tr, _) = run(&created(1), &b, Some(&bound()), None, T);
    t.status = tr.status;
    let (again, _) = run(
        &t,
        &b,
        Some(&PodFacts {
            reason: "OTHER".into(),
            ..bound()
        }),
        None,
        T + 5,
    );
    assert_eq!(again.status, None);
}

#[test]
fn a_finished_attempt_records_its_retry_delay() {
    let t = with(created(1), S::Started, R::Normal, T - 1_000);
    let (tr, _) = run(
        &t,
        &batch_job(),
        Some(&ended("Failed", "TASK_FAILED", "exit 1", Some(T - 1_000))),
        None,
        T,
    );
    let s = tr.status.unwrap();
    assert_eq!(
        (s.retry_delay_ms, s.retry_at, s.finished_at),
        (Some(3_000), Some(T + 3_000), Some(T))
    );
    assert_eq!(
        s.task_context
            .get(task_context::RETRY_DELAY)
            .map(String::as_str),
        Some("3s")
    );
    assert!(
        tr.events
            .iter()
            .any(|e| e.reason == "TaskFinished" && e.warning)
    );
}

#[test]
fn kill_requests_and_timeouts() {
    let b = batch_job();
    let started = with(created(1), S::Started, R::Normal, T - 1_000);
    let on = |t: TitusTask, r| kill_requested(t, r);
    let launched = with(created(1), S::Launched, R::PodScheduled, T - 300_000);
    let si = with(
        created(1),
        S::StartInitiated,
        R::Other("TASK_STARTING".into()),
        T - 300_000,
    );
    let si_long = with(
        created(1),
        S::StartInitiated,
        R::Other("TASK_STARTING".into()),
        T - 720_000,
    );
    let killing = with(started.clone(), S::KillInitiated, R::Killed, T - 600_000);
    let killing2 = with(
        killing.clone(),
        S::KillInitiated,
        R::StuckInKillingState,
        T - 600_000,
    );
    let mut killing3 = killing2.clone();
    {
        let s = killing3.status.as_mut().unwrap();
        s.apply(titus_crds::common::StatusEntry {
            state: S::KillInitiated,
            reason_code: R::StuckInKillingState,
            reason_message: "again".into(),
            timestamp: T - 600_000,
        });
    }
    let limit = with(created(1), S::Started, R::Normal, T - 60_000);
    #[rustfmt::skip]
    let cases: Vec<(&str, JobFacts, TitusTask, Option<PodFacts>, Got)> = vec![
        ("a kill request: KillInitiated/killed and the pod deleted with its grace period", b.clone(), on(started.clone(), TaskKillReason::Killed), Some(running(T - 1_000)), got(S::KillInitiated, "killed", GRACE, Some(T + 600_000))),
        ("a scale-down: KillInitiated/scaledDown", service_job(), on(started.clone(), TaskKillReason::ScaledDown), Some(running(T - 1_000)), got(S::KillInitiated, "scaledDown", GRACE, Some(T + 600_000))),
        ("an eviction: KillInitiated/evicted", service_job(), on(started.clone(), TaskKillReason::Evicted), Some(running(T - 1_000)), got(S::KillInitiated, "evicted", GRACE, Some(T + 600_000))),
        ("killing an unscheduled pod needs no grace", b.clone(), on(created(1), TaskKillReason::Killed), Some(pod()), got(S::KillInitiated, "killed", FORCE, Some(T + 600_000))),
        ("killing a task that never had a pod finishes it", b.clone(), on(task(), TaskKillReason::Killed), None, got(S::Finished, "killed", KEEP, None)),
        ("batch runtime limit reached: KillInitiated/runtimeLimitExceeded", b.clone(), limit.clone(), Some(running(T - 60_000)), got(S::KillInitiated, "runtimeLimitExceeded", GRACE, Some(T + 600_000))),
        ("runtime limit not reached: look again at the limit", b.clone(), with(created(1), S::Started, R::Normal, T - 59_000), Some(running(T - 59_000)), got(S::Started, "normal", KEEP, Some(T + 1_000))),
        ("service tasks have no runtime limit", service_job(), limit.clone(), Some(running(T - 60_000)), got(S::Started, "normal", KEEP, None)),
        ("Launched for 5 min: stuckInState", b.clone(), launched.clone(), Some(bound()), got(S::KillInitiated, "stuckInState", GRACE, Some(T + 600_000))),
        ("service StartInitiated for 5 min: stuckInState", service_job(), si.clone(), Some(starting()), got(S::KillInitiated, "stuckInState", GRACE, Some(T + 600_000))),
        ("batch StartInitiated for 5 min is fine", b.clone(), si.clone(), Some(starting()), got(S::StartInitiated, "TASK_STARTING", KEEP, Some(T + 420_000))),
        ("batch StartInitiated for 12 min: stuckInState", b.clone(), si_long, Some(starting()), got(S::KillInitiated, "stuckInState", GRACE, Some(T + 600_000))),
        ("KillInitiated for 10 min: kill again", b.clone(), killing, Some(deleting(running(T - 1_000))), got(S::KillInitiated, "stuckInKillingState", GRACE, Some(T + 600_000))),
        ("second kill timed out: kill a third time", b.clone(), killing2, Some(deleting(running(T - 1_000))), got(S::KillInitiated, "stuckInKillingState", GRACE, Some(T + 600_000))),
        ("after 2 more attempts: Finished/stuckInKillingState, pod forced", b.clone(), killing3, Some(deleting(running(T - 1_000))), got(S::Finished, "stuckInKillingState", FORCE, None)),
    ];
    for (name, job, t, p, expected) in cases {
        let (tr, g) = run(&t, &job, p.as_ref(), None, T);
        assert_eq!(g, expected, "{name}");
        if name.starts_with("batch runtime limit") {
            let s = tr.status.unwrap();
            assert_eq!(
                s.reason_message,
                "Task running too long (runtimeLimit=60000ms)"
            );
            assert!(tr.events.iter().any(|e| e.reason == "RuntimeLimitExceeded"));
        }
    }
}

#[test]
fn a_node_that_stops_reporting_disconnects_then_loses_its_tasks() {
    let b = batch_job();
    let started = with(created(1), S::Started, R::Normal, T - 1_000);
    let disconnected = with(started.clone(), S::Disconnected, R::Unknown, T - 600_000);
    let recent = with(started.clone(), S::Disconnected, R::Unknown, T - 1_000);
    let silent = node(T - 40_000);
    let alive = node(T - 1);
    #[rustfmt::skip]
    let cases: Vec<(&str, TitusTask, &NodeFacts, Got)> = vec![
        ("a reporting node: recheck when its lease would expire", with(created(1), S::Started, R::Normal, T - 1_000), &alive, got(S::Started, "normal", KEEP, Some(T - 1 + 40_000))),
        ("lease not renewed for 40 s: Disconnected", started.clone(), &silent, got(S::Disconnected, "unknown", KEEP, Some(T + 600_000))),
        ("Disconnected: wait for the lost timeout", recent, &silent, got(S::Disconnected, "unknown", KEEP, Some(T - 1_000 + 600_000))),
        ("Disconnected for the lost timeout: Finished/lost, pod forced", disconnected.clone(), &silent, got(S::Finished, "lost", FORCE, None)),
        ("the node reports again: back to Started", disconnected, &alive, got(S::Started, "normal", KEEP, Some(T - 1 + 40_000))),
        ("a kill on a silent node forces the pod", kill_requested(started, TaskKillReason::Killed), &silent, got(S::KillInitiated, "killed", FORCE, None)),
    ];
    for (name, t, n, expected) in cases {
        let b = JobFacts {
            runtime_limit_ms: None,
            ..b.clone()
        };
        let (tr, g) = run(&t, &b, Some(&running(T - 1_000)), Some(n), T);
        assert_eq!(g, expected, "{name}");
        if let Some(s) = tr.status.filter(|_| name.starts_with("Disconnected for")) {
            assert!(s.reason_message.contains("node-1"), "{}", s.reason_message);
        }
    }
}

#[test]
fn context_comes_from_the_job_node_and_pod() {
    let mut job = batch_job();
    job.context
        .insert(task_context::CELL.into(), "cell-1".into());
    let p = PodFacts {
        context: [(
            task_context::CONTAINER_IP.to_string(),
            "10.0.0.9".to_string(),
        )]
        .into(),
        ..bound()
    };
    let (tr, _) = run(&task(), &job, None, None, T);
    let s = tr.status.unwrap();
    assert_eq!(
        s.task_context.get(task_context::CELL).map(String::as_str),
        Some("cell-1")
    );
    let mut t = task();
    t.status = Some(pod_created(&s, &t));
    let (tr, _) = run(&t, &job, Some(&p), Some(&node(T)), T);
    let s = tr.status.unwrap();
    assert_eq!(
        s.task_context
            .get(task_context::AGENT_ZONE)
            .map(String::as_str),
        Some("z1")
    );
    assert_eq!(
        s.task_context
            .get(task_context::CONTAINER_IP)
            .map(String::as_str),
        Some("10.0.0.9")
    );
    assert_eq!(s.node_name, "node-1");
}

#[test]
fn the_scheduler_verdict_is_mirrored_into_an_unschedulable_condition() {
    let b = batch_job();
    let refused = PodFacts {
        unschedulable: Some((
            "Unschedulable".into(),
            "0/3 nodes: 3 insufficient cpu".into(),
        )),
        ..pod()
    };
    let (tr, _) = run(&created(1), &b, Some(&refused), None, T);
    let s = tr.status.unwrap();
    let c = titus_crds::common::find_condition(&s.conditions, "Unschedulable").unwrap();
    assert_eq!(
        (c.status.as_str(), c.message.as_str()),
        ("True", "0/3 nodes: 3 insufficient cpu")
    );
    let mut t = created(1);
    t.status = Some(s);
    let (tr, _) = run(&t, &b, Some(&bound()), None, T + 1);
    let c = titus_crds::common::find_condition(&tr.status.unwrap().conditions, "Unschedulable")
        .cloned()
        .unwrap();
    assert_eq!(c.status, "False");
}

#[test]
fn a_refused_pod_create_finishes_the_task_with_a_classified_reason() {
    let b = batch_job();
    let t = task();
    let base = next(&t, &b, None, None, T, &TaskTimeouts::default())
        .status
        .unwrap();
    let cases = [
        ("admission refused: image not found", "invalidRequest"),
        ("", "unknownSystemError"),
        ("node agent crashed", "crashed"),
    ];
    for (error, reason) in cases {
        let (s, events) = pod_create_failed(&base, &t, &b, error, T, &TaskTimeouts::default());
        assert_eq!(
            (s.state, s.reason_code.to_string()),
            (S::Finished, reason.to_string()),
            "{error}"
        );
        assert!(s.reason_message.starts_with("Failed to create pod: "));
        assert_eq!(events[0].reason, "PodCreateFailed");
    }
}
