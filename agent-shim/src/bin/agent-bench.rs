//! Benchmarks of the agent's runtimes; prints Markdown for docs/benchmarks.md.
//!
//! ```text
//! cargo run -p titus-agent-shim --profile bench --features test-support --bin agent-bench -- [all|containerd|simulated]
//! ```
//! containerd: a private registry and containerd (needs root), busybox test image; start latency
//! (`create_and_start` until the task runs) of sequential containers, throughput of concurrent
//! create+start, and a full run (`/bin/true`: create, start, exit observed, remove).
//! simulated: containers/s of the simulated runtime in real time (create, run, exit, remove).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use titus_agent_shim::containerd::ContainerdRuntime;
use titus_agent_shim::labels;
use titus_agent_shim::process::resolve_process;
use titus_agent_shim::simulated::{SimulatedConfig, SimulatedRuntime};
use titus_agent_shim::testsupport::{TestContainerd, TestRegistry};
use titus_agent_shim::{
    ContainerId, ContainerRuntime, ContainerSpec, ContainerState, ImageInfo, LogPaths,
    RegistryAuth, Resources,
};

fn spec(
    id: &str,
    image: &ImageInfo,
    args: &[&str],
    log_dir: &std::path::Path,
) -> anyhow::Result<ContainerSpec> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let process = resolve_process(&image.config, &args, &[], &BTreeMap::new(), "")?;
    let id = ContainerId::new(id)?;
    Ok(ContainerSpec {
        logs: LogPaths::in_dir(log_dir, &id),
        id,
        image: image.reference.clone(),
        process,
        resources: Resources::default(),
        hostname: None,
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn containerd_bench() -> anyhow::Result<()> {
    let (registry, images, containerd) = tokio::task::spawn_blocking(|| {
        let registry = TestRegistry::start()?;
        let images = registry.push_test_images()?;
        let containerd = TestContainerd::start()?;
        anyhow::Ok((registry, images, containerd))
    })
    .await??;
    let runtime = Arc::new(ContainerdRuntime::connect(containerd.runtime_config()).await?);
    let log_dir = containerd.log_dir();

    let cold = Instant::now();
    let image = runtime
        .pull(&images.busybox, &RegistryAuth::Anonymous)
        .await?;
    let cold_pull = cold.elapsed();
    let warm = Instant::now();
    runtime
        .pull(&images.busybox, &RegistryAuth::Anonymous)
        .await?;
    let warm_pull = warm.elapsed();

    // Sequential start latency: create_and_start returns once the task runs.
    let n = 20;
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let s = spec(
            &format!("seq-{i}"),
            &image,
            &["/bin/sleep", "600"],
            &log_dir,
        )?;
        let t = Instant::now();
        runtime.create_and_start(&s).await?;
        latencies.push(t.elapsed());
        anyhow::ensure!(matches!(
            runtime.status(&s.id).await?,
            ContainerState::Running { .. }
        ));
    }
    latencies.sort();
    let stop_start = Instant::now();
    for i in 0..n {
        runtime
            .remove(&ContainerId::new(format!("seq-{i}"))?)
            .await?;
    }
    let remove_each = stop_start.elapsed() / n as u32;

    // Concurrent create+start throughput.
    let concurrent = 40;
    let parallelism = 8;
    let t = Instant::now();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(parallelism));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..concurrent {
        let runtime = runtime.clone();
        let s = spec(
            &format!("par-{i}"),
            &image,
            &["/bin/sleep", "600"],
            &log_dir,
        )?;
        let permit = semaphore.clone().acquire_owned().await?;
        tasks.spawn(async move {
            let _permit = permit;
            runtime.create_and_start(&s).await.map(|_| ())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    let throughput = concurrent as f64 / t.elapsed().as_secs_f64();
    for i in 0..concurrent {
        runtime
            .remove(&ContainerId::new(format!("par-{i}"))?)
            .await?;
    }

    // Full lifecycle of a short task.
    let runs = 10;
    let t = Instant::now();
    for i in 0..runs {
        let s = spec(&format!("true-{i}"), &image, &["/bin/true"], &log_dir)?;
        runtime.create_and_start(&s).await?;
        let exit = runtime.wait(&s.id).await?;
        anyhow::ensure!(exit.code == 0, "exit {}", exit.code);
        runtime.remove(&s.id).await?;
    }
    let full = t.elapsed() / runs;

    let version = std::process::Command::new("containerd")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!("### containerd, private instance, overlayfs, runc v2 (`{version}`)\n");
    println!("| measurement | value |\n|---|---|");
    println!(
        "| pull busybox (1 layer, 1.2 MB) from the local registry, cold | {} |",
        ms(cold_pull)
    );
    println!(
        "| pull again (already present: manifest check only) | {} |",
        ms(warm_pull)
    );
    println!(
        "| start latency, create_and_start → running, sequential, n={n}: p50 | {} |",
        ms(percentile(&latencies, 0.5))
    );
    println!(
        "| start latency p90 | {} |",
        ms(percentile(&latencies, 0.9))
    );
    println!(
        "| start latency max | {} |",
        ms(percentile(&latencies, 1.0))
    );
    println!(
        "| remove of a running container (SIGKILL, delete task/container/snapshot), mean | {} |",
        ms(remove_each)
    );
    println!(
        "| throughput, {concurrent} create_and_start with {parallelism} in flight | {throughput:.1} containers/s |"
    );
    println!(
        "| full run of /bin/true (create, start, exit observed, remove), mean of {runs} | {} |",
        ms(full)
    );
    drop(runtime);
    drop(containerd);
    drop(registry);
    Ok(())
}

async fn simulated_bench() -> anyhow::Result<()> {
    let runtime = Arc::new(SimulatedRuntime::new(SimulatedConfig::default()));
    let image = runtime
        .pull("registry.test/app:1", &RegistryAuth::Anonymous)
        .await?;
    let n = 100_000usize;
    let annotations = BTreeMap::from([
        (labels::MOCK_PREPARE_TIME.to_string(), "10ms".to_string()),
        (
            labels::MOCK_RUN_TIME.to_string(),
            "delay=100ms; jitter=50ms".to_string(),
        ),
    ]);
    let log_dir = std::path::Path::new("/nonexistent");
    let t = Instant::now();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = spec(&format!("sim-{i}"), &image, &["/bin/true"], log_dir)?;
        s.annotations = annotations.clone();
        runtime.create_and_start(&s).await?;
        ids.push(s.id);
    }
    let created = t.elapsed();
    for id in &ids {
        let exit = runtime.wait(id).await?;
        anyhow::ensure!(exit.code == 0);
    }
    let all_done = t.elapsed();
    for id in &ids {
        runtime.remove(id).await?;
    }
    let total = t.elapsed();
    println!("### simulated runtime (prepare 10 ms, run 100 ms ± 50 ms, real time)\n");
    println!("| measurement | value |\n|---|---|");
    println!(
        "| create_and_start of {n} containers | {} ({:.0} containers/s) |",
        ms(created),
        n as f64 / created.as_secs_f64()
    );
    println!(
        "| all {n} exited (includes the 160 ms of simulated time) | {} |",
        ms(all_done)
    );
    println!(
        "| create + run + exit + remove, overall | {:.0} containers/s |",
        n as f64 / total.as_secs_f64()
    );
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
