//! End-to-end bind throughput through the embedded API server: `--nodes` Ready Nodes and
//! `--pods` pending task Pods are created, then the scheduler starts and the time until every
//! Pod is bound is measured with a watch. Prints one Markdown table row per run.
//!
//! ```sh
//! cargo bench -p titus-scheduler --bench kube-binds -- --nodes 1000 --pods 10000
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use serde_json::json;
use titus_scheduler::kube::SchedulerConfig;

#[path = "../tests/kube_support/mod.rs"]
mod kube_support;

use kube_support::{Harness, metric, wait_for};

struct Options {
    nodes: usize,
    pods: usize,
}

fn options() -> anyhow::Result<Options> {
    let mut out = Options {
        nodes: 1000,
        pods: 10_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--nodes" => out.nodes = args.next().context("--nodes N")?.parse()?,
            "--pods" => out.pods = args.next().context("--pods N")?.parse()?,
            // `cargo bench` passes `--bench`.
            "--bench" => {}
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(out)
}

async fn create_nodes(client: &kube::Client, count: usize) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    futures::stream::iter(0..count)
        .map(|i| {
            let nodes = nodes.clone();
            async move {
                let name = format!("node-{i:05}");
                let zone = ["us-east-1a", "us-east-1b", "us-east-1c"][i % 3];
                let node: Node = serde_json::from_value(json!({
                    "metadata": {"name": name, "labels": {
                        "failure-domain.beta.kubernetes.io/zone": zone,
                        "beta.kubernetes.io/instance-type": "m5.2xlarge"}}
                }))?;
                nodes.create(&PostParams::default(), &node).await?;
                let status = json!({"status": {
                    "allocatable": {"cpu": "8", "memory": "32Gi", "ephemeral-storage": "500Gi",
                                    "titus/network": "10G", "pods": "110"},
                    "conditions": [{"type": "Ready", "status": "True"}]}});
                nodes
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

async fn create_pods(client: &kube::Client, options: &Options) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    futures::stream::iter(0..options.pods)
        .map(|i| {
            let pods = pods.clone();
            async move {
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {"name": format!("task-{i:06}"), "namespace": "default",
                                 "labels": {"v3.job.titus.netflix.com/job-id": format!("job-{}", i % 100)}},
                    "spec": {"schedulerName": "titus-scheduler", "restartPolicy": "Never",
                             "containers": [{"name": "main", "image": "busybox:1",
                                 "resources": {"requests": {"cpu": "500m", "memory": "1Gi",
                                                            "titus/network": "128M"}}}]}
                }))?;
                pods.create(&PostParams::default(), &pod).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Waits until `count` Pods are bound; returns when the first and the last bind were seen.
async fn watch_binds(
    client: kube::Client,
    count: usize,
    started: Instant,
) -> anyhow::Result<(Duration, Duration)> {
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let mut stream = watcher::watcher(pods, watcher::Config::default()).boxed();
    let mut bound: HashSet<String> = HashSet::new();
    let mut first = None;
    while let Some(event) = stream.try_next().await? {
        let pod = match event {
            Event::Apply(pod) | Event::InitApply(pod) => pod,
            Event::Delete(_) | Event::Init | Event::InitDone => continue,
        };
        if pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some()
        {
            bound.insert(pod.metadata.name.unwrap_or_default());
            first.get_or_insert_with(|| started.elapsed());
            if bound.len() == count {
                return Ok((first.unwrap_or_default(), started.elapsed()));
            }
        }
    }
    bail!("the watch ended with {} of {count} pods bound", bound.len())
}

fn main() -> anyhow::Result<()> {
    let options = options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut harness = Harness::api_only().await?;
        let client = harness.client.clone();
        let t = Instant::now();
        create_nodes(&client, options.nodes).await?;
        let nodes_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        create_pods(&client, &options).await?;
        let pods_s = t.elapsed().as_secs_f64();
        let health = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let started = Instant::now();
        let watch = tokio::spawn(watch_binds(client.clone(), options.pods, started));
        harness.start_scheduler(|config| {
            *config = SchedulerConfig {
                identity: "bench".into(),
                health_bind: Some(health),
                ..SchedulerConfig::default()
            }
        });
        let (first, all) = watch.await??;
        let binds = r#"titus_scheduler_binds_total{result="success"}"#;
        wait_for("the iteration's writes to finish", Duration::from_secs(60), || async {
            let count = metric(health, "titus_scheduler_iteration_duration_seconds_count").await?;
            let bound = metric(health, binds).await?;
            Ok((count >= Some(1.0) && bound == Some(options.pods as f64)).then_some(()))
        })
        .await?;
        let sample = async |name: &str| metric(health, name).await.map(|v| v.unwrap_or(f64::NAN));
        let iterations = sample("titus_scheduler_iteration_duration_seconds_count").await?;
        let placement = sample("titus_scheduler_placement_duration_seconds_sum").await?;
        let iterating = sample("titus_scheduler_iteration_duration_seconds_sum").await?;
        harness.stop_scheduler().await?;
        println!(
            "| nodes | pods | create nodes s | create pods/s | first bind s | all bound s | binds/s | iterations | placement ms (sum) | iterations ms (sum) |"
        );
        println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        println!(
            "| {} | {} | {:.1} | {:.0} | {:.2} | {:.2} | {:.0} | {} | {:.0} | {:.0} |",
            options.nodes,
            options.pods,
            nodes_s,
            options.pods as f64 / pods_s,
            first.as_secs_f64(),
            all.as_secs_f64(),
            options.pods as f64 / (all - first).as_secs_f64().max(1e-9),
            iterations,
            placement * 1000.0,
            iterating * 1000.0,
        );
        anyhow::Ok(())
    })
}
