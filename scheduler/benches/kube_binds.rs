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
use titus_apiserver::ApiServerConfig;
use titus_scheduler::kube::SchedulerConfig;

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

/// The scheduler's `/metrics` text.
async fn scrape(addr: std::net::SocketAddr) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    Ok(body)
}

fn main() -> anyhow::Result<()> {
    let options = options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let api = titus_apiserver::start(ApiServerConfig {
            data_dir: None,
            bind: "127.0.0.1:0".parse()?,
            fsync: false,
            extra_sans: vec![],
        })
        .await?;
        let client = titus_runtime::client_from_yaml(&api.kubeconfig()).await?;
        let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
            Api::all(client.clone());
        for crd in titus_crds::crd::crds() {
            crds.create(&PostParams::default(), &crd).await?;
        }
        let t = Instant::now();
        create_nodes(&client, options.nodes).await?;
        let nodes_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        create_pods(&client, &options).await?;
        let pods_s = t.elapsed().as_secs_f64();
        let health = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let started = Instant::now();
        let watch = tokio::spawn(watch_binds(client.clone(), options.pods, started));
        let scheduler = tokio::spawn(titus_scheduler::kube::run(
            SchedulerConfig {
                identity: "bench".into(),
                health_bind: Some(health),
                ..SchedulerConfig::default()
            },
            client.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        let (first, all) = watch.await??;
        let metrics = scrape(health).await?;
        let _ = stop.send(());
        scheduler.await??;
        let sample = |name: &str| {
            metrics
                .lines()
                .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
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
            sample("titus_scheduler_iteration_duration_seconds_count"),
            sample("titus_scheduler_placement_duration_seconds_sum") * 1000.0,
            sample("titus_scheduler_iteration_duration_seconds_sum") * 1000.0,
        );
        api.stop().await;
        anyhow::Ok(())
    })
}
