//! Batch jobs end to end on the embedded API server, with the pod driver as scheduler and agent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::watcher::{self, Event};
use titus_crds::{RetryPolicy, TaskState, TitusJobSpec, TitusTask};
use titus_operator::testing::Behavior;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_job_of_n_tasks_finishes_with_every_task_finished_normal() -> anyhow::Result<()> {
    let env = start(
        test_config(),
        3,
        behavior(|_| Behavior::succeed().running_for(Duration::from_millis(100))),
    )
    .await?;
    env.create_job("hello", TitusJobSpec::batch(20)).await?;
    let job = wait_job_state(&env, "hello", "Finished", Duration::from_secs(60)).await?;
    let status = job.status.unwrap();
    assert_eq!(status.reason_code.as_str(), "normal");
    assert_eq!(status.job_id, job.metadata.uid.clone().unwrap());
    assert_eq!(
        job.metadata.labels.unwrap().get("titus.dev/job-id"),
        job.metadata.uid.as_ref()
    );
    let tasks = env.job_tasks("hello").await?;
    assert_eq!(tasks.len(), 20, "one attempt per index");
    let mut indexes: Vec<u32> = tasks.iter().filter_map(|t| t.spec.index).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, (0..20).collect::<Vec<_>>());
    for t in &tasks {
        let s = t.status.as_ref().unwrap();
        assert_eq!(
            (s.state, s.reason_code.as_str()),
            (TaskState::Finished, "normal"),
            "{:?}",
            t.metadata.name
        );
        let states: Vec<TaskState> = s.status_history.iter().map(|e| e.state).collect();
        assert!(states.contains(&TaskState::Started), "history {states:?}");
        assert_eq!(
            s.task_context.get("kube.podCreated").map(String::as_str),
            Some("true")
        );
        assert!(
            s.task_context.contains_key("agent.zone"),
            "{:?}",
            s.task_context
        );
    }
    assert_eq!(status.task_counts.finished, 20);
    assert_eq!(status.replicas, 0);
    assert!(env.driver().violations().is_empty());
    // The job's state changes are Kubernetes Events (events.k8s.io) about the job.
    let events: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(env.client.clone(), "default");
    let reasons = wait_for("the job's Events", Duration::from_secs(10), || async {
        let reasons: Vec<String> = events
            .list(&Default::default())
            .await?
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("hello"))
            .filter_map(|e| e.reason)
            .collect();
        Ok((reasons.iter().any(|r| r == "JobFinished")).then_some(reasons))
    })
    .await?;
    assert!(reasons.iter().any(|r| r == "JobAccepted"), "{reasons:?}");
    env.shutdown().await;
    Ok(())
}

/// Records, for every task, when it was first seen and how it finished.
async fn record_tasks(
    env: &Env,
    job: &str,
    done: impl Fn(&BTreeMap<String, TitusTask>) -> bool,
    timeout: Duration,
) -> anyhow::Result<(BTreeMap<String, TitusTask>, HashMap<String, u64>)> {
    let stream = watcher::watcher(
        env.tasks(),
        watcher::Config::default().labels(&format!("titus.dev/job-name={job}")),
    );
    tokio::pin!(stream);
    let mut tasks = BTreeMap::new();
    let mut first_seen = HashMap::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while !done(&tasks) {
        let event = tokio::time::timeout_at(deadline, stream.next())
            .await
            .map_err(|_| anyhow::anyhow!("timed out; tasks so far: {:#?}", summary(&tasks)))?;
        if let Some(Ok(Event::Apply(t) | Event::InitApply(t))) = event {
            let name = t.metadata.name.clone().unwrap_or_default();
            first_seen
                .entry(name.clone())
                .or_insert_with(|| jiff::Timestamp::now().as_millisecond() as u64);
            tasks.insert(name, t);
        }
    }
    Ok((tasks, first_seen))
}

fn summary(tasks: &BTreeMap<String, TitusTask>) -> Vec<(Option<u32>, u32, String, String)> {
    tasks
        .values()
        .map(|t| {
            let s = t.status.clone().unwrap_or_default();
            (
                t.spec.index,
                t.spec.resubmit_number,
                s.state.to_string(),
                s.reason_code.to_string(),
            )
        })
        .collect()
}

fn finished_chain(tasks: &BTreeMap<String, TitusTask>, attempts: usize) -> bool {
    tasks.len() == attempts && tasks.values().all(|t| t.state() == TaskState::Finished)
}

/// The chain of attempts of index 0 in resubmit order.
fn chain(tasks: &BTreeMap<String, TitusTask>) -> Vec<&TitusTask> {
    let mut chain: Vec<&TitusTask> = tasks.values().collect();
    chain.sort_by_key(|t| t.spec.resubmit_number);
    chain
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_task_is_retried_exactly_as_the_delayed_policy_says() -> anyhow::Result<()> {
    let env = start(test_config(), 2, behavior(|_| Behavior::fail(3, "exit 3"))).await?;
    let spec = TitusJobSpec::batch(1).with_retry_policy(RetryPolicy::delayed(1_500, 2));
    env.create_job("flaky", spec).await?;
    let (tasks, seen) = record_tasks(
        &env,
        "flaky",
        |t| finished_chain(t, 3),
        Duration::from_secs(60),
    )
    .await?;
    let chain = chain(&tasks);
    assert_eq!(
        chain
            .iter()
            .map(|t| t.spec.resubmit_number)
            .collect::<Vec<_>>(),
        [0, 1, 2]
    );
    for pair in chain.windows(2) {
        let (prev, next) = (pair[0], pair[1]);
        let prev_status = prev.status.as_ref().unwrap();
        assert_eq!(prev_status.reason_code.as_str(), "failed");
        assert_eq!(
            next.spec.resubmit_of.as_deref(),
            prev.metadata.name.as_deref()
        );
        assert_eq!(
            next.spec.original_id,
            chain[0].metadata.name.clone().unwrap()
        );
        assert_eq!(next.spec.index, Some(0));
        let waited =
            seen[next.metadata.name.as_deref().unwrap()] - prev_status.finished_at.unwrap();
        assert!(
            (1_500..3_000).contains(&waited),
            "replacement created {waited} ms after the failure"
        );
        assert_eq!(prev_status.retry_delay_ms, Some(1_500));
    }
    let job = wait_job_state(&env, "flaky", "Finished", Duration::from_secs(20)).await?;
    assert_eq!(job.status.unwrap().reason_code.as_str(), "normal");
    let last = chain.last().unwrap().status.as_ref().unwrap();
    assert_eq!(
        last.reason_code.as_str(),
        "failed",
        "the job ends with the last attempt failed"
    );
    // Nothing more is created once the retries ran out.
    assert_eq!(env.job_tasks("flaky").await?.len(), 3);
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exponential_back_off_doubles_the_delay_up_to_the_max() -> anyhow::Result<()> {
    // Attempts 0..2 fail, attempt 3 succeeds.
    let env = start(
        test_config(),
        2,
        behavior(|p| {
            if p.attempt < 3 {
                Behavior::fail(1, "boom")
            } else {
                Behavior::succeed()
            }
        }),
    )
    .await?;
    let spec = TitusJobSpec::batch(1)
        .with_retry_policy(RetryPolicy::exponential_back_off(1_000, 2_500, 5));
    env.create_job("backoff", spec).await?;
    let (tasks, seen) = record_tasks(
        &env,
        "backoff",
        |t| finished_chain(t, 4),
        Duration::from_secs(60),
    )
    .await?;
    let chain = chain(&tasks);
    let expected = [1_000u64, 2_000, 2_500];
    for (pair, delay) in chain.windows(2).zip(expected) {
        let finished = pair[0].status.as_ref().unwrap().finished_at.unwrap();
        let waited = seen[pair[1].metadata.name.as_deref().unwrap()] - finished;
        assert!(
            (delay..delay + 1_500).contains(&waited),
            "expected ~{delay} ms, waited {waited} ms"
        );
        assert_eq!(pair[1].spec.back_off_delay_ms, delay);
    }
    assert_eq!(
        chain[3].status.as_ref().unwrap().reason_code.as_str(),
        "normal"
    );
    wait_job_state(&env, "backoff", "Finished", Duration::from_secs(20)).await?;
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_limit_kills_the_task_with_the_titus_reason() -> anyhow::Result<()> {
    let env = start(test_config(), 1, behavior(|_| Behavior::run_until_killed())).await?;
    env.create_job("slow", TitusJobSpec::batch(1).with_runtime_limit_sec(5))
        .await?;
    let job = wait_job_state(&env, "slow", "Finished", Duration::from_secs(30)).await?;
    let tasks = env.job_tasks("slow").await?;
    assert_eq!(
        tasks.len(),
        1,
        "a runtime-limit kill is not retried without retryOnRuntimeLimit"
    );
    let s = tasks[0].status.as_ref().unwrap();
    assert_eq!(
        (s.state, s.reason_code.as_str()),
        (TaskState::Finished, "killed")
    );
    let kill = s
        .status_history
        .iter()
        .find(|e| e.state == TaskState::KillInitiated)
        .expect("a KillInitiated entry");
    assert_eq!(kill.reason_code.as_str(), "runtimeLimitExceeded");
    assert_eq!(
        kill.reason_message,
        "Task running too long (runtimeLimit=5000ms)"
    );
    let ran = kill.timestamp - s.started_at.unwrap();
    assert!((5_000..7_000).contains(&ran), "killed after {ran} ms");
    assert_eq!(job.status.unwrap().reason_code.as_str(), "normal");
    env.shutdown().await;
    Ok(())
}
