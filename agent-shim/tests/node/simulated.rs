//! Simulated runtime: the Kubernetes side of the agent without containers.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node as K8sNode;
use kube::api::{Api, DeleteParams};
use titus_agent_shim::labels;
use titus_agent_shim::node::NodeCapacity;
use titus_agent_shim::simulated::{SimulatedConfig, SimulatedRuntime};
use titus_agent_shim::{AgentConfig, RuntimeConfig};

use crate::fixture::{Cluster, Node, phase_of, pod, terminated};

fn simulated() -> Arc<SimulatedRuntime> {
    Arc::new(SimulatedRuntime::new(SimulatedConfig::default()))
}

fn timings(run: &str) -> [(&'static str, &str); 3] {
    [
        (labels::MOCK_PREPARE_TIME, "200ms"),
        (labels::MOCK_RUN_TIME, run),
        (labels::MOCK_KILL_TIME, "100ms"),
    ]
}

#[tokio::test]
async fn the_node_registers_with_titus_labels_addresses_its_log_port_and_a_lease()
-> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let dir = tempfile::tempdir()?;
    let node = Node::start(&cluster, simulated(), "sim-1", dir.path()).await?;
    let nodes: Api<K8sNode> = Api::all(cluster.client.clone());
    let got = nodes.get("sim-1").await?;
    let labels = got.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["kubernetes.io/hostname"], "sim-1");
    assert_eq!(
        labels["failure-domain.beta.kubernetes.io/zone"],
        "us-east-1a"
    );
    assert_eq!(labels["beta.kubernetes.io/instance-type"], "m5.large");
    assert_eq!(labels["node.titus.netflix.com/asg"], "titus-agents");
    let taints = got
        .spec
        .clone()
        .unwrap_or_default()
        .taints
        .unwrap_or_default();
    assert!(
        taints
            .iter()
            .any(|t| t.key == "virtual-kubelet.io/provider")
    );
    let status = got.status.clone().unwrap_or_default();
    assert_eq!(status.capacity.unwrap_or_default()["cpu"].0, "4000m");
    let ready = status.conditions.unwrap_or_default();
    assert!(
        ready
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );
    let addresses = status.addresses.unwrap_or_default();
    assert!(
        addresses
            .iter()
            .any(|a| a.type_ == "InternalIP" && a.address == "127.0.0.1")
    );
    let port = status
        .daemon_endpoints
        .and_then(|d| d.kubelet_endpoint)
        .map(|k| k.port);
    assert_eq!(port, Some(i32::from(node.agent_port())));
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), "kube-node-lease");
    let lease = leases.get("sim-1").await?;
    assert_eq!(
        lease.spec.unwrap_or_default().holder_identity.as_deref(),
        Some("sim-1")
    );
    Ok(())
}

#[tokio::test]
async fn a_bound_pod_is_reported_starting_running_then_finished_through_the_real_watch()
-> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let dir = tempfile::tempdir()?;
    let _node = Node::start(&cluster, simulated(), "sim-1", dir.path()).await?;
    let history = cluster.history("t1");
    cluster
        .create(
            pod("t1", "sim-1", "registry.test/app:1")
                .annotations(&timings("500ms"))
                .build(),
        )
        .await?;
    let done = cluster.wait_phase("t1", "Succeeded").await?;
    let status = done.status.clone().unwrap_or_default();
    assert_eq!(status.reason.as_deref(), Some("TASK_FINISHED"));
    assert!(status.start_time.is_some());
    let conditions = status.conditions.unwrap_or_default();
    for type_ in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
        assert!(conditions.iter().any(|c| c.type_ == type_), "{type_}");
    }
    let exit = terminated(&done).unwrap();
    assert_eq!(exit.exit_code, 0);
    assert!(exit.started_at.is_some() && exit.finished_at.is_some());
    assert_eq!(
        history.until_last("TASK_FINISHED").await?,
        ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    );
    Ok(())
}

#[tokio::test]
async fn deleting_a_running_pod_kills_it_and_the_agent_removes_the_pod() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let dir = tempfile::tempdir()?;
    let _node = Node::start(&cluster, simulated(), "sim-1", dir.path()).await?;
    let history = cluster.history("t2");
    cluster
        .create(
            pod("t2", "sim-1", "registry.test/app:1")
                .annotations(&timings("1h"))
                .build(),
        )
        .await?;
    cluster.wait_phase("t2", "Running").await?;
    cluster
        .pods()
        .delete("t2", &DeleteParams::default())
        .await?;
    cluster.wait_gone("t2", Duration::from_secs(20)).await?;
    assert_eq!(
        history.until_last("TASK_KILLED").await?,
        ["TASK_STARTING", "TASK_RUNNING", "TASK_KILLED"]
    );
    Ok(())
}

#[tokio::test]
async fn the_agent_deregisters_gracefully_after_its_pods_finish() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let dir = tempfile::tempdir()?;
    let node = Node::start(&cluster, simulated(), "sim-1", dir.path()).await?;
    cluster
        .create(
            pod("t3", "sim-1", "registry.test/app:1")
                .annotations(&timings("1s"))
                .build(),
        )
        .await?;
    cluster.wait_phase("t3", "Running").await?;
    let agent = node.agent.clone();
    let deregistered = tokio::spawn(async move { agent.deregister(Duration::from_secs(30)).await });
    let nodes: Api<K8sNode> = Api::all(cluster.client.clone());
    // Cordoned first, while the task still runs.
    let cordoned = nodes.get("sim-1").await?;
    assert_eq!(cordoned.spec.unwrap_or_default().unschedulable, Some(true));
    deregistered.await??;
    assert_eq!(
        phase_of(&cluster.pods().get("t3").await?),
        "Succeeded",
        "the task finished on its own"
    );
    assert!(nodes.get_opt("sim-1").await?.is_none(), "node deleted");
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), "kube-node-lease");
    assert!(leases.get_opt("sim-1").await?.is_none(), "lease deleted");
    Ok(())
}

#[tokio::test]
async fn one_agent_process_registers_a_thousand_simulated_nodes_and_runs_their_pods()
-> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let dir = tempfile::tempdir()?;
    let capacity = NodeCapacity {
        cpu: 16.0,
        memory_mb: 65536,
        disk_mb: 100_000,
        network_mbps: 10_000,
        gpu: 0,
        pods: 110,
    };
    let config = AgentConfig {
        node: titus_agent_shim::node::NodeConfig::named("fleet", capacity),
        runtime: RuntimeConfig::Simulated {
            nodes: 1000,
            config: SimulatedConfig::default(),
        },
        data_dir: dir.path().to_owned(),
        log_bind: "127.0.0.1:0".parse()?,
        advertise_ip: None,
        log_token: None,
        host: Default::default(),
        resync: Duration::from_secs(30),
        deregister_on_shutdown: None,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(titus_agent_shim::run(
        config,
        cluster.client.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while cluster.node_names().await?.len() < 1000 {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "1000 nodes not registered in 120 s"
        );
        anyhow::ensure!(!agent.is_finished(), "the agent stopped: {:?}", agent.await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster
        .create(
            pod("t4", "fleet-777", "registry.test/app:1")
                .annotations(&timings("100ms"))
                .build(),
        )
        .await?;
    cluster.wait_phase("t4", "Succeeded").await?;
    let _ = stop.send(());
    agent.await??;
    Ok(())
}
