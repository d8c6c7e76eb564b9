//! Throughput and memory of the job and task controllers on the embedded API server.
//!
//! For each task count, starts a fresh in-memory API server, the CRDs and the pod driver (20
//! fake nodes, pods start and succeed at once), then the operator — as a child process (this
//! binary re-executed) so its resident memory is its own — and creates batch jobs of 1000
//! tasks. It measures the time from the first job create to every job `Finished` (tasks created
//! and driven to `Finished` per second) and samples the operator's `VmRSS` (peak reported).
//!
//! ```text
//! cargo build -p titus-operator --features testing --profile bench --bin operator-bench
//! target/bench/operator-bench --tasks 1000,10000
//! ```

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kube::Api;
use kube::api::PostParams;
use titus_crds::{TitusJob, TitusJobSpec};
use titus_operator::OperatorConfig;
use titus_operator::testing::{Behavior, DriverConfig, PodDriver};

const JOB_SIZE: u32 = 1_000;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.get(1).map(String::as_str) == Some("operator-child") {
        let kubeconfig = args
            .get(2)
            .context("operator-child needs a kubeconfig path")?;
        let metrics = args
            .get(3)
            .context("operator-child needs a metrics address")?;
        return runtime.block_on(child(kubeconfig, metrics.parse()?));
    }
    let mut counts = vec![1_000usize, 10_000];
    let mut in_process = false;
    let mut nodes = 20usize;
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--tasks" => {
                let list = iter.next().context("--tasks needs a list")?;
                counts = list.split(',').map(str::parse).collect::<Result<_, _>>()?;
            }
            "--nodes" => nodes = iter.next().context("--nodes needs a number")?.parse()?,
            "--in-process" => in_process = true,
            other => bail!("unknown argument {other}"),
        }
    }
    println!(
        "| tasks | jobs | seconds | tasks/s | operator peak RSS (MiB) | operator RSS at end (MiB) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for tasks in counts {
        let result = runtime.block_on(measure(tasks, nodes, in_process))?;
        println!(
            "| {} | {} | {:.1} | {:.0} | {} | {} |",
            tasks,
            result.jobs,
            result.seconds,
            tasks as f64 / result.seconds,
            result
                .peak_rss_kib
                .map_or("-".into(), |k| format!("{:.0}", k as f64 / 1024.0)),
            result
                .end_rss_kib
                .map_or("-".into(), |k| format!("{:.0}", k as f64 / 1024.0)),
        );
    }
    Ok(())
}

/// The operator child process: runs until killed.
async fn child(kubeconfig: &str, metrics: std::net::SocketAddr) -> anyhow::Result<()> {
    let client = titus_runtime::client(Some(std::path::Path::new(kubeconfig))).await?;
    let config = OperatorConfig {
        metrics_addr: Some(metrics),
        ..OperatorConfig::default()
    };
    titus_operator::run(config, client, std::future::pending()).await?;
    Ok(())
}

/// The operator's reconcile and error counters, from its `/metrics`.
async fn counters(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut tcp) = tokio::net::TcpStream::connect(addr).await else {
        return String::new();
    };
    let request = "GET /metrics HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";
    if tcp.write_all(request.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut body = String::new();
    let _ = tcp.read_to_string(&mut body).await;
    body.lines()
        .filter(|l| {
            l.starts_with("titus_operator_reconcile")
                && (!l.contains("duration") || l.contains("_sum") || l.contains("_count"))
        })
        .map(|l| l.trim_start_matches("titus_operator_"))
        .collect::<Vec<_>>()
        .join("; ")
}

struct Measured {
    jobs: usize,
    seconds: f64,
    peak_rss_kib: Option<u64>,
    end_rss_kib: Option<u64>,
}

/// CPU seconds (user + system) a process used so far.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// `VmRSS` of a process, KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn measure(tasks: usize, nodes: usize, in_process: bool) -> anyhow::Result<Measured> {
    let server = titus_apiserver::start(titus_apiserver::ApiServerConfig {
        data_dir: None,
        bind: "127.0.0.1:0".parse()?,
        fsync: false,
        extra_sans: vec![],
    })
    .await?;
    let client = titus_runtime::client_from_yaml(&server.kubeconfig()).await?;
    titus_operator::install_crds(&client, Duration::from_secs(30)).await?;
    let driver = PodDriver::start(
        client.clone(),
        DriverConfig::fleet(nodes),
        Arc::new(|_| Behavior::succeed()),
    )
    .await?;
    let dir = std::env::temp_dir().join(format!("operator-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let kubeconfig = dir.join("kubeconfig");
    let metrics_addr: std::net::SocketAddr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?
    };
    std::fs::write(&kubeconfig, server.kubeconfig())?;
    let (operator, _guard) = if in_process {
        let client = client.clone();
        let handle = tokio::spawn(async move {
            let _ = titus_operator::run(OperatorConfig::default(), client, std::future::pending())
                .await;
        });
        (Some(handle), None)
    } else {
        let child = Command::new(std::env::current_exe()?)
            .arg("operator-child")
            .arg(&kubeconfig)
            .arg(metrics_addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        (None, Some(ChildGuard(child)))
    };
    let pid = _guard.as_ref().map(|g| g.0.id());
    let jobs_api: Api<TitusJob> = Api::namespaced(client.clone(), "default");
    let jobs = tasks.div_ceil(JOB_SIZE as usize);
    let cpu_before = cpu_seconds(std::process::id()).unwrap_or_default();
    let started = Instant::now();
    for j in 0..jobs {
        let size = (tasks - j * JOB_SIZE as usize).min(JOB_SIZE as usize) as u32;
        jobs_api
            .create(
                &PostParams::default(),
                &TitusJob::new(&format!("bench-{j}"), TitusJobSpec::batch(size)),
            )
            .await?;
    }
    let mut peak = None;
    loop {
        if let Some(pid) = pid {
            peak = peak.max(rss_kib(pid));
        }
        let list = jobs_api.list(&Default::default()).await?;
        let done = list
            .items
            .iter()
            .filter(|j| {
                j.status
                    .as_ref()
                    .is_some_and(|s| s.state.as_str() == "Finished")
            })
            .count();
        if done == jobs {
            break;
        }
        if started.elapsed() > Duration::from_secs(1_800) {
            bail!("{done}/{jobs} jobs finished after 30 min");
        }
        // Sampling memory and progress (a measurement loop, not synchronisation).
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let end = pid.and_then(rss_kib);
    if let Some(pid) = pid {
        eprintln!(
            "{tasks} tasks: operator CPU {:.1} s, API server + driver CPU {:.1} s; {}",
            cpu_seconds(pid).unwrap_or_default(),
            cpu_seconds(std::process::id()).unwrap_or_default() - cpu_before,
            counters(metrics_addr).await
        );
    }
    if let Some(handle) = operator {
        handle.abort();
    }
    let stats = driver.stats();
    if stats.ended < tasks as u64 {
        bail!("the driver ended {} pods for {tasks} tasks", stats.ended);
    }
    driver.stop().await;
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Measured {
        jobs,
        seconds,
        peak_rss_kib: peak.max(end),
        end_rss_kib: end,
    })
}
