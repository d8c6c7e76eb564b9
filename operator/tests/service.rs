//! Service jobs end to end: scaling with Titus's victim order, replacement of failed tasks,
//! enable/disable, kill-with-shrink; and KillJob and node loss for any job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use serde_json::json;
use titus_crds::{RetryPolicy, TaskState, TitusJobSpec, TitusTask};
use titus_operator::OperatorConfig;
use titus_operator::task::machine::TaskTimeouts;
use titus_operator::testing::{Behavior, DriverConfig};

use support::*;

fn live(tasks: &[TitusTask]) -> Vec<&TitusTask> {
    tasks
        .iter()
        .filter(|t| t.state() != TaskState::Finished)
        .collect()
}

/// Waits until job `name` has exactly `n` live tasks, all `Started` and without kill requests.
async fn wait_started(env: &Env, name: &str, n: usize) -> anyhow::Result<Vec<TitusTask>> {
    wait_for(
        &format!("{n} started tasks of {name}"),
        Duration::from_secs(30),
        || async {
            let tasks = env.job_tasks(name).await?;
            let live: Vec<TitusTask> = live(&tasks).into_iter().cloned().collect();
            let ok = live.len() == n
                && live
                    .iter()
                    .all(|t| t.state() == TaskState::Started && t.spec.kill_request.is_none());
            Ok(ok.then_some(live))
        },
    )
    .await
}

fn node_of(t: &TitusTask) -> String {
    t.status
        .as_ref()
        .map(|s| s.node_name.clone())
        .unwrap_or_default()
}

async fn scale(env: &Env, name: &str, replicas: u32) -> anyhow::Result<()> {
    env.jobs()
        .patch_scale(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": replicas}})),
        )
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_job_scales_up_and_down_choosing_victims_as_titus_does() -> anyhow::Result<()> {
    let env = start(test_config(), 3, behavior(|_| Behavior::run_until_killed())).await?;
    env.create_job("web", TitusJobSpec::service(0, 3, 10))
        .await?;
    let first = wait_started(&env, "web", 3).await?;
    scale(&env, "web", 5).await?;
    let five = wait_started(&env, "web", 5).await?;
    // Count-only status writes are spaced out (COUNTS_WRITE_INTERVAL): wait for the count.
    let job = wait_for("status.replicas = 5", Duration::from_secs(10), || async {
        let job = env.jobs().get("web").await?;
        Ok((job.status.as_ref().is_some_and(|s| s.replicas == 5)).then_some(job))
    })
    .await?;
    assert_eq!(
        job.status.as_ref().unwrap().selector,
        "titus.dev/job-name=web"
    );
    // Placement is round-robin over node-0..2, so node-0 and node-1 run two tasks each.
    let mut per_node: BTreeMap<String, Vec<&TitusTask>> = BTreeMap::new();
    for t in &five {
        per_node.entry(node_of(t)).or_default().push(t);
    }
    let loads: Vec<usize> = per_node.values().map(Vec::len).collect();
    assert_eq!(loads, [2, 2, 1], "{per_node:?}");
    scale(&env, "web", 2).await?;
    let two = wait_started(&env, "web", 2).await?;
    // Titus's order: node-0's oldest (zone-a wins the tie), node-1's oldest, node-0's other.
    let survivors: BTreeSet<String> = two.iter().map(node_of).collect();
    assert_eq!(
        survivors,
        BTreeSet::from(["node-1".to_string(), "node-2".to_string()])
    );
    let newest_on_node_1 = per_node["node-1"]
        .iter()
        .max_by_key(|t| t.status.as_ref().unwrap().timestamp)
        .unwrap();
    assert!(
        two.iter()
            .any(|t| t.metadata.name == newest_on_node_1.metadata.name)
    );
    let tasks = env.job_tasks("web").await?;
    let scaled: Vec<&TitusTask> = tasks
        .iter()
        .filter(|t| t.state() == TaskState::Finished)
        .collect();
    assert_eq!(scaled.len(), 3);
    for t in scaled {
        let kill = t
            .status
            .as_ref()
            .unwrap()
            .status_history
            .iter()
            .find(|e| e.state == TaskState::KillInitiated)
            .unwrap();
        assert_eq!(kill.reason_code.as_str(), "scaledDown");
    }
    // Nothing replaces scaled-down tasks.
    assert_eq!(live(&env.job_tasks("web").await?).len(), 2);
    assert!(first.iter().all(|t| t.spec.resubmit_number == 0));
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_job_replaces_failed_tasks_and_ignores_disable() -> anyhow::Result<()> {
    // The first attempt of every chain fails after a moment; replacements run until killed.
    let env = start(
        test_config(),
        2,
        behavior(|p| {
            if p.attempt == 0 {
                Behavior::fail(2, "crash loop").running_for(Duration::from_millis(200))
            } else {
                Behavior::run_until_killed()
            }
        }),
    )
    .await?;
    let spec = TitusJobSpec::service(1, 3, 5).with_retry_policy(RetryPolicy::delayed(500, 0));
    env.create_job("api", spec).await?;
    wait_for(
        "three failures and their replacements",
        Duration::from_secs(30),
        || async {
            let tasks = env.job_tasks("api").await?;
            let replaced = tasks.iter().filter(|t| t.spec.resubmit_number == 1).count();
            Ok((replaced == 3).then_some(()))
        },
    )
    .await?;
    let running = wait_started(&env, "api", 3).await?;
    let tasks = env.job_tasks("api").await?;
    let failed: Vec<&TitusTask> = tasks
        .iter()
        .filter(|t| t.state() == TaskState::Finished)
        .collect();
    assert_eq!(failed.len(), 3, "every first attempt failed once");
    for f in &failed {
        assert_eq!(f.status.as_ref().unwrap().reason_code.as_str(), "failed");
        let replacement = running
            .iter()
            .find(|t| t.spec.resubmit_of.as_deref() == f.metadata.name.as_deref())
            .expect("every failed task has a replacement");
        assert_eq!(replacement.spec.original_id, f.spec.original_id);
        assert_eq!(replacement.spec.resubmit_number, f.spec.resubmit_number + 1);
    }
    // Disable and re-enable: stored only; the same tasks keep running.
    for enabled in [false, true] {
        env.jobs()
            .patch(
                "api",
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": {"service": {"enabled": enabled}}})),
            )
            .await?;
        let job = env.jobs().get("api").await?;
        assert_eq!(job.spec.service.as_ref().unwrap().enabled, enabled);
        let after = wait_started(&env, "api", 3).await?;
        let names = |ts: &[TitusTask]| {
            ts.iter()
                .map(|t| t.metadata.name.clone())
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(names(&after), names(&running));
    }
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_with_shrink_removes_exactly_the_named_task() -> anyhow::Result<()> {
    let env = start(test_config(), 3, behavior(|_| Behavior::run_until_killed())).await?;
    env.create_job("shrink", TitusJobSpec::service(0, 3, 5))
        .await?;
    let tasks = wait_started(&env, "shrink", 3).await?;
    let victim = tasks[1].metadata.name.clone().unwrap();
    env.jobs()
        .patch(
            "shrink",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"service": {"capacity": {"min": 0, "desired": 2, "max": 5}, "scaleDownTaskIds": [victim]}}})),
        )
        .await?;
    let left = wait_started(&env, "shrink", 2).await?;
    assert!(
        left.iter()
            .all(|t| t.metadata.name.as_deref() != Some(victim.as_str()))
    );
    let gone = env.tasks().get(&victim).await?;
    let s = gone.status.unwrap();
    assert_eq!(s.state, TaskState::Finished);
    assert_eq!(
        s.status_history
            .iter()
            .find(|e| e.state == TaskState::KillInitiated)
            .map(|e| e.reason_code.to_string()),
        Some("scaledDown".to_string())
    );
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_job_finishes_its_tasks_then_the_job() -> anyhow::Result<()> {
    let env = start(test_config(), 2, behavior(|_| Behavior::run_until_killed())).await?;
    env.create_job("doomed", TitusJobSpec::batch(3)).await?;
    wait_started(&env, "doomed", 3).await?;
    let job_watch = watcher::watcher(
        env.jobs(),
        watcher::Config::default().fields("metadata.name=doomed"),
    );
    tokio::pin!(job_watch);
    let mut annotated = env.jobs().get("doomed").await?;
    annotated
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert("titus.dev/kill-requested-by".into(), "alice".into());
    env.jobs()
        .patch(
            "doomed",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": annotated.metadata.annotations}})),
        )
        .await?;
    let task_names: Vec<String> = env
        .job_tasks("doomed")
        .await?
        .iter()
        .filter_map(|t| t.metadata.name.clone())
        .collect();
    env.jobs()
        .delete("doomed", &DeleteParams::default())
        .await?;
    let mut states = Vec::new();
    let mut final_status = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let event = tokio::time::timeout_at(deadline, job_watch.next()).await?;
        match event {
            Some(Ok(Event::Apply(j) | Event::InitApply(j))) => {
                if let Some(s) = &j.status {
                    if states.last() != Some(&s.state) {
                        states.push(s.state);
                    }
                    final_status = Some(s.clone());
                }
            }
            Some(Ok(Event::Delete(_))) => break,
            Some(Ok(Event::Init | Event::InitDone)) | Some(Err(_)) => {}
            None => anyhow::bail!("watch ended"),
        }
    }
    use titus_crds::job::status::JobState;
    assert_eq!(states.last(), Some(&JobState::Finished), "{states:?}");
    assert!(states.contains(&JobState::KillInitiated), "{states:?}");
    let status = final_status.unwrap();
    let kill = status
        .status_history
        .iter()
        .find(|e| e.state == JobState::KillInitiated)
        .unwrap();
    assert_eq!(kill.reason_code.as_str(), "killed");
    assert_eq!(kill.reason_message, "Job killed by alice");
    assert_eq!(
        status.task_counts.finished, 3,
        "all tasks finished before the job went"
    );
    for name in task_names {
        // The tasks were Finished (counted above), then collected with the job.
        wait_for(
            "tasks garbage-collected with the job",
            Duration::from_secs(10),
            || async { Ok(env.tasks().get_opt(&name).await?.is_none().then_some(())) },
        )
        .await?;
    }
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_stops_reporting_disconnects_then_loses_its_tasks() -> anyhow::Result<()> {
    let config = OperatorConfig {
        task_timeouts: TaskTimeouts {
            node_lease_ms: 1_500,
            lost_ms: 3_000,
            ..TaskTimeouts::default()
        },
        ..test_config()
    };
    let driver = DriverConfig {
        heartbeat: Duration::from_millis(200),
        ..DriverConfig::fleet(2)
    };
    let env = start_with(config, driver, behavior(|_| Behavior::run_until_killed())).await?;
    env.create_job(
        "svc",
        TitusJobSpec::service(0, 2, 4).with_retry_policy(RetryPolicy::immediate(0)),
    )
    .await?;
    let tasks = wait_started(&env, "svc", 2).await?;
    let on_node_0 = tasks
        .iter()
        .find(|t| node_of(t) == "node-0")
        .unwrap()
        .metadata
        .name
        .clone()
        .unwrap();
    env.driver().silence("node-0");
    let disconnected = wait_for(
        "the task to be Disconnected",
        Duration::from_secs(15),
        || async {
            let t = env.tasks().get(&on_node_0).await?;
            Ok((t.state() == TaskState::Disconnected).then_some(t))
        },
    )
    .await?;
    assert!(
        disconnected
            .status
            .unwrap()
            .reason_message
            .contains("node-0")
    );
    let lost = wait_for("the task to be lost", Duration::from_secs(15), || async {
        let t = env.tasks().get(&on_node_0).await?;
        Ok((t.state() == TaskState::Finished).then_some(t))
    })
    .await?;
    let s = lost.status.unwrap();
    assert_eq!(s.reason_code.as_str(), "lost");
    let waited = s.timestamp - s.status_history.last().unwrap().timestamp;
    assert!(waited >= 3_000, "lost after {waited} ms in Disconnected");
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(env.client.clone(), "default");
    wait_for(
        "the lost task's pod to be force-deleted",
        Duration::from_secs(10),
        || async { Ok(pods.get_opt(&on_node_0).await?.is_none().then_some(())) },
    )
    .await?;
    // The service keeps desired tasks: a replacement runs on the live node.
    let now = wait_started(&env, "svc", 2).await?;
    assert!(
        now.iter().all(|t| node_of(t) == "node-1"),
        "{:?}",
        now.iter().map(node_of).collect::<Vec<_>>()
    );
    env.shutdown().await;
    Ok(())
}
