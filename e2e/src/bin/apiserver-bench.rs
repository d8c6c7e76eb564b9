//! Benchmark of the embedded API server, run as a separate `titus apiserver` process (fsync on)
//! and driven by kube-rs over HTTP/2. Prints a table:
//!
//! - writes/s: creates of ConfigMaps and status updates of custom resources (64 in flight);
//! - list latency of a namespace holding 10k and 100k objects (whole list and first page);
//! - watch fan-out: events/s delivered to 10 watchers while objects are created;
//! - resident memory of the server process at each size.
//!
//! Reproduce: `cargo build -p titus --profile bench && cargo run -p titus-e2e --profile bench --bin apiserver-bench`
//! (`-- --quick` for a smaller run).

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use serde_json::json;
use titus_e2e::Cluster;

const IN_FLIGHT: usize = 64;

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn config_map(ns: &str, i: usize) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(format!("cm-{i:06}"));
    cm.metadata.namespace = Some(ns.to_owned());
    cm.metadata.labels = Some(
        [
            ("bench".to_owned(), "true".to_owned()),
            ("shard".to_owned(), (i % 10).to_string()),
        ]
        .into(),
    );
    // About 600 bytes of data, roughly the size of a small TitusTask.
    cm.data = Some(
        (0..8)
            .map(|k| {
                (
                    format!("key-{k}"),
                    format!("value-{i}-{k}-{}", "x".repeat(48)),
                )
            })
            .collect(),
    );
    cm
}

/// Creates `count` ConfigMaps (starting at `from`), returning per-request latencies and wall time.
async fn create_many(
    api: &Api<ConfigMap>,
    ns: &str,
    from: usize,
    count: usize,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(from..from + count)
        .map(|i| {
            let api = api.clone();
            let cm = config_map(ns, i);
            async move {
                let t = Instant::now();
                api.create(&PostParams::default(), &cm).await?;
                Ok::<_, kube::Error>(t.elapsed())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect()
        .await?;
    latencies.sort();
    Ok((latencies, started.elapsed()))
}

fn row(name: &str, value: String) {
    println!("| {name:<58} | {value:>28} |");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let (small, large, updates, fanout) = if quick {
        (2_000, 10_000, 2_000, 2_000)
    } else {
        (10_000, 100_000, 10_000, 10_000)
    };
    let cluster = Cluster::apiserver()
        .await
        .context("starting titus apiserver (build it with --profile bench first)")?;
    let pid = cluster
        .pid()
        .context("the server runs as a child process")?;
    let client = cluster.client().await?;
    let base_rss = rss_mib(pid);
    println!("| {:<58} | {:>28} |", "measure", "result");
    println!("|{}|{}|", "-".repeat(60), "-".repeat(30));
    row("server RSS, empty", format!("{base_rss:.0} MiB"));

    // Writes: creates.
    let ns_api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    ns_api
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "bench"}}))?,
        )
        .await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "bench");
    let (lat, wall) = create_many(&api, "bench", 0, small).await?;
    row(
        &format!("create ConfigMap, {small} objects, {IN_FLIGHT} in flight"),
        format!("{:.0} writes/s", small as f64 / wall.as_secs_f64()),
    );
    row(
        "  create latency p50 / p99",
        format!(
            "{:.1} / {:.1} ms",
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3
        ),
    );

    // Writes: status updates of a custom resource.
    let crd =
        std::fs::read_to_string(titus_e2e::repo_root().join("e2e/testdata/widgets-crd.yaml"))?;
    cluster.kubectl_stdin(&["apply", "-f", "-"], &crd)?;
    cluster.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.e2e.titus.dev",
        "--timeout=30s",
    ])?;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("e2e.titus.dev", "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "bench", &ar);
    let objects = 1_000.min(updates);
    futures::stream::iter(0..objects)
        .map(|i| {
            let widgets = widgets.clone();
            let mut w = DynamicObject::new(&format!("w-{i}"), &ar);
            w.data = json!({"spec": {"color": "red"}});
            async move { widgets.create(&PostParams::default(), &w).await }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await?;
    let started = Instant::now();
    let mut lat: Vec<Duration> = futures::stream::iter(0..updates)
        .map(|i| {
            let widgets = widgets.clone();
            async move {
                let t = Instant::now();
                let patch = json!({"status": {"replicas": i}});
                widgets
                    .patch_status(
                        &format!("w-{}", i % objects),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await?;
                Ok::<_, kube::Error>(t.elapsed())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect()
        .await?;
    lat.sort();
    let wall = started.elapsed();
    row(
        &format!("status update (merge patch), {updates} updates"),
        format!("{:.0} writes/s", updates as f64 / wall.as_secs_f64()),
    );
    row(
        "  status update latency p50 / p99",
        format!(
            "{:.1} / {:.1} ms",
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3
        ),
    );

    // Lists at 10k, then grow to 100k.
    let mut have = small;
    for size in [small, large] {
        let label = if size % 1000 == 0 {
            format!("{}k", size / 1000)
        } else {
            size.to_string()
        };
        if have < size {
            create_many(&api, "bench", have, size - have).await?;
            have = size;
        }
        let mut whole = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let list = api.list(&ListParams::default()).await?;
            whole.push(t.elapsed());
            anyhow::ensure!(
                list.items.len() >= size,
                "listed {} objects, expected {size}",
                list.items.len()
            );
        }
        whole.sort();
        let mut page = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            api.list(&ListParams::default().limit(500)).await?;
            page.push(t.elapsed());
        }
        page.sort();
        let mut selected = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            api.list(&ListParams::default().labels("shard=3")).await?;
            selected.push(t.elapsed());
        }
        selected.sort();
        row(
            &format!("list all {label} ConfigMaps (median of 5, incl. client decode)"),
            format!("{:.0} ms", percentile(&whole, 0.5).as_secs_f64() * 1e3),
        );
        row(
            &format!("list first page of 500 of {label} (median of 20)"),
            format!("{:.1} ms", percentile(&page, 0.5).as_secs_f64() * 1e3),
        );
        row(
            &format!("list with label selector (1/10 of {label}, median of 5)"),
            format!("{:.0} ms", percentile(&selected, 0.5).as_secs_f64() * 1e3),
        );
        row(
            &format!("server RSS with {label} ConfigMaps"),
            format!("{:.0} MiB", rss_mib(pid)),
        );
    }

    // Watch fan-out: 10 watchers on a fresh namespace, then `fanout` creates.
    ns_api
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "fanout"}}))?,
        )
        .await?;
    let fan_api: Api<ConfigMap> = Api::namespaced(client.clone(), "fanout");
    let rv = fan_api
        .list_metadata(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let mut watchers = Vec::new();
    for _ in 0..10 {
        let stream = fan_api
            .watch(&WatchParams::default().timeout(290), &rv)
            .await?;
        watchers.push(tokio::spawn(async move {
            let mut stream = stream.boxed();
            let mut seen = 0usize;
            while seen < fanout {
                match stream.try_next().await {
                    Ok(Some(WatchEvent::Added(_))) => seen += 1,
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            (seen, Instant::now())
        }));
    }
    let started = Instant::now();
    create_many(&fan_api, "fanout", 0, fanout).await?;
    let writes_done = started.elapsed();
    let mut delivered = 0;
    let mut last = started;
    for w in watchers {
        let (seen, at) = w.await?;
        delivered += seen;
        last = last.max(at);
    }
    let total = last.duration_since(started);
    row(
        &format!("watch fan-out: {fanout} creates to 10 watchers"),
        format!("{:.0} events/s", delivered as f64 / total.as_secs_f64()),
    );
    row(
        "  writes done / all events delivered",
        format!(
            "{:.2} s / {:.2} s",
            writes_done.as_secs_f64(),
            total.as_secs_f64()
        ),
    );
    row("server RSS at the end", format!("{:.0} MiB", rss_mib(pid)));
    Ok(())
}
