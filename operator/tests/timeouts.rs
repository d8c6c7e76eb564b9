//! Hanging and unplaceable pods end to end: a task stuck in `StartInitiated` is killed for
//! `stuckInState` and retried as a system error; the scheduler's `PodScheduled=False` verdict is
//! mirrored into the task's `Unschedulable` condition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use titus_crds::{RetryPolicy, TaskState, TitusJobSpec};
use titus_operator::OperatorConfig;
use titus_operator::task::machine::TaskTimeouts;
use titus_operator::testing::{Behavior, Outcome};

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_stuck_starting_is_killed_and_retried_as_a_system_error() -> anyhow::Result<()> {
    let config = OperatorConfig {
        task_timeouts: TaskTimeouts {
            start_initiated_batch_ms: 1_500,
            ..TaskTimeouts::default()
        },
        ..test_config()
    };
    let hang = Behavior {
        outcome: Outcome::StayStarting,
        ..Behavior::succeed()
    };
    let env = start(
        config,
        1,
        behavior(move |p| {
            if p.attempt == 0 {
                hang.clone()
            } else {
                Behavior::succeed()
            }
        }),
    )
    .await?;
    // retries = 0: only a system error may be retried.
    env.create_job(
        "hangs",
        TitusJobSpec::batch(1).with_retry_policy(RetryPolicy::immediate(0)),
    )
    .await?;
    wait_job_state(&env, "hangs", "Finished", Duration::from_secs(30)).await?;
    let mut tasks = env.job_tasks("hangs").await?;
    tasks.sort_by_key(|t| t.spec.resubmit_number);
    assert_eq!(tasks.len(), 2);
    let first = tasks[0].status.as_ref().unwrap();
    let kill = first
        .status_history
        .iter()
        .find(|e| e.state == TaskState::KillInitiated)
        .unwrap();
    assert_eq!(kill.reason_code.as_str(), "stuckInState");
    assert!(
        kill.reason_message
            .starts_with("Task stuck in StartInitiated state"),
        "{}",
        kill.reason_message
    );
    assert_eq!(
        (first.state, first.reason_code.as_str()),
        (TaskState::Finished, "transientSystemError")
    );
    let second = &tasks[1];
    assert_eq!(
        (
            second.spec.resubmit_number,
            second.spec.system_resubmit_number
        ),
        (1, 1)
    );
    assert_eq!(
        second.status.as_ref().unwrap().reason_code.as_str(),
        "normal"
    );
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_verdict_on_an_unplaceable_pod_shows_on_the_task() -> anyhow::Result<()> {
    let message = "0/3 nodes are available: 3 Insufficient cpu";
    let env = start(
        test_config(),
        1,
        behavior(move |_| Behavior {
            outcome: Outcome::Unschedulable {
                message: message.into(),
            },
            ..Behavior::succeed()
        }),
    )
    .await?;
    env.create_job("huge", TitusJobSpec::batch(1)).await?;
    let condition = wait_for(
        "the Unschedulable condition",
        Duration::from_secs(20),
        || async {
            let tasks = env.job_tasks("huge").await?;
            Ok(tasks.first().and_then(|t| {
                t.status.as_ref().and_then(|s| {
                    titus_crds::common::find_condition(&s.conditions, "Unschedulable").cloned()
                })
            }))
        },
    )
    .await?;
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("True", "Unschedulable")
    );
    assert_eq!(condition.message, message);
    let task = &env.job_tasks("huge").await?[0];
    assert_eq!(
        task.state(),
        TaskState::Accepted,
        "an unplaced task stays Accepted"
    );
    env.shutdown().await;
    Ok(())
}
