//! Benchmarks of the node agent through the embedded API server; prints Markdown for
//! docs/benchmarks.md.
//!
//! ```text
//! cargo build -p titus-agent-shim --profile bench --features test-support --bin node-bench --bin titus-log-driver
//! target/release/node-bench [all|containerd|simulated]
//! ```
//! (with `titus-log-driver` next to it, containers log through the log driver, as with
//! `titus agent`).
//! containerd: a private registry and containerd (needs root), one node agent, Pods created
//! already bound; start latency = Pod created → the API server shows phase Running (seen through
//! a watch), sequential and concurrent. simulated: 100 simulated nodes in one agent, 5 000 bound
//! Pods (prepare 10 ms, run 100 ms), created → all Succeeded, as Pods/s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher;
use titus_agent_shim::containerd::{ContainerdRuntime, LogDriver};
use titus_agent_shim::labels;
use titus_agent_shim::logs::LogIndex;
use titus_agent_shim::node::{Fleet, NodeAgent, NodeAgentConfig, NodeCapacity, NodeConfig};
use titus_agent_shim::simulated::{SimulatedConfig, SimulatedRuntime};
use titus_agent_shim::testsupport::{TestContainerd, TestRegistry, api_server};

/// When each Pod was first seen in each phase.
type Seen = Arc<Mutex<HashMap<(String, String), Instant>>>;

fn watch_phases(pods: Api<Pod>) -> (Seen, tokio::task::JoinHandle<()>) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let task = tokio::spawn(async move {
        let mut events = watcher(pods, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            let pod = match event {
                Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => p,
                _ => continue,
            };
            let phase = pod.status.and_then(|s| s.phase).unwrap_or_default();
            let name = pod.metadata.name.unwrap_or_default();
            if let Ok(mut seen) = sink.lock() {
                seen.entry((name, phase)).or_insert_with(Instant::now);
            }
        }
    });
    (seen, task)
}

async fn wait_seen(seen: &Seen, names: &[String], phase: &str) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let last = {
            let seen = seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            names
                .iter()
                .map(|n| seen.get(&(n.clone(), phase.to_owned())).copied())
                .collect::<Option<Vec<_>>>()
                .and_then(|times| times.into_iter().max())
        };
        if let Some(last) = last {
            return Ok(last);
        }
        anyhow::ensure!(Instant::now() < deadline, "pods not {phase} after 300 s");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn pod(name: &str, node: &str, image: &str, args: &[&str], annotations: &[(&str, &str)]) -> Pod {
    let annotations: HashMap<_, _> = annotations.iter().copied().collect();
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "annotations": annotations},
        "spec": {
            "nodeName": node, "restartPolicy": "Never", "terminationGracePeriodSeconds": 5,
            "containers": [{"name": "main", "image": image, "command": args, "imagePullPolicy": "IfNotPresent"}]
        }
    }))
    .unwrap_or_default()
}

fn capacity() -> NodeCapacity {
    NodeCapacity {
        cpu: 64.0,
        memory_mb: 262_144,
        disk_mb: 1_000_000,
        network_mbps: 25_000,
        gpu: 0,
        pods: 1000,
    }
}

fn node_config(name: &str, log_dir: &std::path::Path) -> NodeAgentConfig {
    NodeAgentConfig {
        node: NodeConfig::named(name, capacity()),
        log_dir: log_dir.to_owned(),
        host: Default::default(),
        oci_runtime: "runc".into(),
        resync: Duration::from_secs(30),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

async fn containerd_bench() -> anyhow::Result<()> {
    let (registry, images, containerd) = tokio::task::spawn_blocking(|| {
        let registry = TestRegistry::start()?;
        let images = registry.push_test_images()?;
        let containerd = TestContainerd::start()?;
        anyhow::Ok((registry, images, containerd))
    })
    .await??;
    let (server, client) = api_server().await?;
    // The log driver `titus agent` uses, when it was built next to this program.
    let driver = std::env::current_exe()?.with_file_name("titus-log-driver");
    let mut config = containerd.runtime_config();
    config.log_driver = driver.exists().then(|| LogDriver {
        binary: driver,
        subcommand: "agent".into(),
    });
    let with_driver = config.log_driver.is_some();
    let runtime = Arc::new(ContainerdRuntime::connect(config).await?);
    let agent = NodeAgent::start(
        client.clone(),
        runtime,
        node_config("bench-node", &containerd.log_dir()),
        Arc::new(LogIndex::default()),
    )
    .await?;
    let watch = tokio::spawn(agent.clone().watch_pods());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let (seen, phases) = watch_phases(pods.clone());
    let sleep = ["/bin/sleep", "600"];

    let mut first = None;
    let mut latencies = Vec::new();
    let n = 20;
    for i in 0..=n {
        let name = format!("seq-{i}");
        let t = Instant::now();
        pods.create(
            &PostParams::default(),
            &pod(&name, "bench-node", &images.busybox, &sleep, &[]),
        )
        .await?;
        let running = wait_seen(&seen, std::slice::from_ref(&name), "Running").await?;
        let latency = running.duration_since(t);
        if i == 0 {
            first = Some(latency);
        } else {
            latencies.push(latency);
        }
    }
    latencies.sort();
    let concurrent = 40;
    let names: Vec<String> = (0..concurrent).map(|i| format!("par-{i}")).collect();
    let t = Instant::now();
    let creates = names.iter().map(|name| {
        let pods = pods.clone();
        let p = pod(name, "bench-node", &images.busybox, &sleep, &[]);
        async move { pods.create(&PostParams::default(), &p).await }
    });
    for created in futures::future::join_all(creates).await {
        created?;
    }
    let all_running = wait_seen(&seen, &names, "Running").await?.duration_since(t);
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    for name in (0..=n)
        .map(|i| format!("seq-{i}"))
        .chain(names.iter().cloned())
    {
        pods.delete(&name, &now).await?;
    }
    let runtime = agent.runtime().clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !titus_agent_shim::ContainerRuntime::list(&*runtime)
        .await?
        .is_empty()
    {
        anyhow::ensure!(Instant::now() < deadline, "containers not removed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let p = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    let logs = if with_driver {
        "log driver"
    } else {
        "plain log files"
    };
    println!(
        "### containerd through the API server (Pod bound → phase Running seen by a watch; {logs})\n"
    );
    println!("| measurement | value |\n|---|---|");
    println!(
        "| first Pod (includes the image pull) | {} |",
        ms(first.unwrap_or_default())
    );
    println!(
        "| start latency, sequential, n={n}: p50 / p90 / max | {} / {} / {} |",
        ms(p(0.5)),
        ms(p(0.9)),
        ms(p(1.0))
    );
    println!(
        "| {concurrent} Pods created at once → all Running | {} ({:.1} Pods/s) |",
        ms(all_running),
        concurrent as f64 / all_running.as_secs_f64()
    );
    agent.shutdown();
    watch.abort();
    phases.abort();
    drop(agent);
    server.stop().await;
    drop(containerd);
    drop(registry);
    Ok(())
}

async fn simulated_bench() -> anyhow::Result<()> {
    let (server, client) = api_server().await?;
    let nodes = 100;
    let dir = std::env::temp_dir();
    let configs = (0..nodes)
        .map(|i| node_config(&format!("sim-{i}"), &dir))
        .collect();
    let t = Instant::now();
    let fleet = Fleet::start(
        client.clone(),
        configs,
        |_| Arc::new(SimulatedRuntime::new(SimulatedConfig::default())),
        Arc::new(LogIndex::default()),
        32,
    )
    .await?;
    let registered = t.elapsed();
    let fleet = Arc::new(fleet);
    let watch = tokio::spawn({
        let fleet = fleet.clone();
        async move { fleet.watch_pods().await }
    });
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let (seen, phases) = watch_phases(pods.clone());
    let total = 5000;
    let names: Vec<String> = (0..total).map(|i| format!("sim-pod-{i}")).collect();
    let timings = [
        (labels::MOCK_PREPARE_TIME, "10ms"),
        (labels::MOCK_RUN_TIME, "100ms"),
    ];
    let t = Instant::now();
    let creates = futures::stream::iter(names.iter().enumerate().map(|(i, name)| {
        let pods = pods.clone();
        let p = pod(
            name,
            &format!("sim-{}", i % nodes),
            "registry.test/app:1",
            &["/bin/true"],
            &timings,
        );
        async move { pods.create(&PostParams::default(), &p).await }
    }))
    .buffer_unordered(32);
    let results: Vec<_> = creates.collect().await;
    for r in results {
        r.context("creating a pod")?;
    }
    let created = t.elapsed();
    let done = wait_seen(&seen, &names, "Succeeded")
        .await?
        .duration_since(t);
    println!("### simulated runtime through the API server ({nodes} nodes in one agent)\n");
    println!("| measurement | value |\n|---|---|");
    println!(
        "| {nodes} nodes registered (Node, status, Lease) | {} |",
        ms(registered)
    );
    println!(
        "| {total} bound Pods created (32 in flight) | {} ({:.0} Pods/s) |",
        ms(created),
        total as f64 / created.as_secs_f64()
    );
    println!(
        "| created → all Succeeded (prepare 10 ms, run 100 ms; 3 status writes per Pod) | {} ({:.0} Pods/s) |",
        ms(done),
        total as f64 / done.as_secs_f64()
    );
    watch.abort();
    phases.abort();
    for agent in fleet.agents() {
        agent.shutdown();
    }
    server.stop().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    if matches!(which.as_str(), "all" | "containerd") {
        containerd_bench().await.context("containerd benchmark")?;
        println!();
    }
    if matches!(which.as_str(), "all" | "simulated") {
        simulated_bench().await.context("simulated benchmark")?;
    }
    Ok(())
}
