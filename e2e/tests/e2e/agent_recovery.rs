//! A `titus agent` killed with SIGKILL while its containers run: after a restart the containers
//! are the same processes (not restarted), and exits that happened while it was down, and later
//! ones, are reported.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use titus_e2e::{Cluster, wait_for};

use crate::agent_support::{Agent, pod_manifest, wait_phase};

fn container_state(pod: &Pod) -> Option<k8s_openapi::api::core::v1::ContainerState> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .clone()
}

fn started_at(pod: &Pod) -> Option<String> {
    let state = container_state(pod)?;
    let time = state
        .running
        .and_then(|r| r.started_at)
        .or_else(|| state.terminated.and_then(|t| t.started_at))?;
    Some(time.0.to_string())
}

fn exit_code(pod: &Pod) -> Option<i32> {
    container_state(pod)?.terminated.map(|t| t.exit_code)
}

#[tokio::test]
async fn a_killed_agent_restarts_without_restarting_its_containers_and_reports_their_exits()
-> anyhow::Result<()> {
    let cluster = Cluster::apiserver().await?;
    let mut agent = Agent::start(&cluster, "e2e-recovery").await?;
    let node = agent.node.clone();
    let pods: Api<Pod> = Api::namespaced(cluster.client().await?, "default");
    // `long` runs across the agent's absence; `short` exits while no agent runs.
    cluster.kubectl_stdin(
        &["apply", "-f", "-"],
        &pod_manifest("long", &node, "echo started; sleep 12; echo done"),
    )?;
    cluster.kubectl_stdin(
        &["apply", "-f", "-"],
        &pod_manifest("short", &node, "sleep 4; exit 4"),
    )?;
    let long = wait_phase(&cluster, "long", "Running").await?;
    wait_phase(&cluster, "short", "Running").await?;
    let long_uid = long.metadata.uid.clone().unwrap_or_default();
    let short_uid = pods.get("short").await?.metadata.uid.unwrap_or_default();
    let long_started = started_at(&long);
    let pids_before = agent.cleanup.pids_of(&long_uid);
    assert!(!pids_before.is_empty(), "the container runs");

    agent.kill9()?;
    // Wait, with the agent down, until `short` has exited.
    wait_for(
        "short to exit while the agent is down",
        Duration::from_secs(30),
        || async { Ok(agent.cleanup.pids_of(&short_uid).is_empty().then_some(())) },
    )
    .await?;
    assert_eq!(
        pods.get("short")
            .await?
            .status
            .and_then(|s| s.phase)
            .as_deref(),
        Some("Running"),
        "nobody reported the exit yet"
    );
    assert_eq!(
        agent.cleanup.pids_of(&long_uid),
        pids_before,
        "long keeps running"
    );

    agent.launch(&cluster).await?;
    let short = wait_phase(&cluster, "short", "Failed").await?;
    assert_eq!(
        exit_code(&short),
        Some(4),
        "the exit while down is reported: {:?}",
        short.status
    );
    assert_eq!(
        agent.cleanup.pids_of(&long_uid),
        pids_before,
        "not restarted"
    );
    let long = wait_phase(&cluster, "long", "Succeeded").await?;
    assert_eq!(started_at(&long), long_started, "same start time");
    assert_eq!(exit_code(&long), Some(0));
    assert_eq!(
        cluster.kubectl(&["logs", "long"])?,
        "started\ndone\n",
        "ran once"
    );
    Ok(())
}
