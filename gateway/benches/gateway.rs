//! Gateway benchmark: CreateJob and FindTasks latency and throughput, and ObserveJobs event rate
//! with many subscribers, against an in-process embedded API server.
//!
//! Run: `cargo bench -p titus-gateway --bench gateway` (the `bench` profile), optionally with
//! `-- --jobs 200 --tasks-per-job 10 --subscribers 100 --events 500`. Prints a Markdown report.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use titus_crds::task::TitusTaskSpec;
use titus_crds::{TaskReasonCode, TaskState, TitusTask, TitusTaskStatus};
use titus_gateway::cache::Event;
use titus_gateway::pb;
use titus_gateway::pb::job_change_notification::Notification;

struct Args {
    jobs: usize,
    tasks_per_job: u32,
    subscribers: usize,
    events: usize,
    concurrency: usize,
}

fn args() -> Args {
    let mut a = Args {
        jobs: 200,
        tasks_per_job: 10,
        subscribers: 100,
        events: 500,
        concurrency: 8,
    };
    let raw: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        raw.iter()
            .position(|r| r == name)
            .and_then(|i| raw.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
    };
    if let Some(v) = value("--jobs") {
        a.jobs = v;
    }
    if let Some(v) = value("--tasks-per-job") {
        a.tasks_per_job = u32::try_from(v).unwrap_or(10);
    }
    if let Some(v) = value("--subscribers") {
        a.subscribers = v;
    }
    if let Some(v) = value("--events") {
        a.events = v;
    }
    if let Some(v) = value("--concurrency") {
        a.concurrency = v;
    }
    a
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn row(what: &str, mut latencies: Vec<Duration>, wall: Duration) -> String {
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "| {what} | {} | {:.2} | {:.2} | {:.0} |",
        latencies.len(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        latencies.len() as f64 / wall.as_secs_f64()
    )
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args()))
}

async fn run(a: Args) -> anyhow::Result<()> {
    let env = support::Env::start().await?;
    let grpc = env.grpc().await?;
    println!("| operation | calls | p50 ms | p99 ms | calls/s |");
    println!("|---|---|---|---|---|");

    // CreateJob, one client.
    let mut latencies = Vec::new();
    let start = Instant::now();
    let mut ids = Vec::new();
    for i in 0..a.jobs {
        let mut client = grpc.clone();
        let d = support::service_descriptor(
            &format!("bench{}", i % 20),
            0,
            a.tasks_per_job,
            a.tasks_per_job,
        );
        let t = Instant::now();
        ids.push(
            client
                .create_job(support::request(d))
                .await?
                .into_inner()
                .id,
        );
        latencies.push(t.elapsed());
    }
    println!(
        "{}",
        row("CreateJob (1 client)", latencies, start.elapsed())
    );

    // CreateJob, concurrent clients.
    let start = Instant::now();
    let mut handles = Vec::new();
    for c in 0..a.concurrency {
        let mut client = grpc.clone();
        let per_client = a.jobs / a.concurrency;
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in 0..per_client {
                let d = support::batch_descriptor(&format!("conc{c}x{i}"), 1);
                let t = Instant::now();
                client.create_job(support::request(d)).await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.await??);
    }
    println!(
        "{}",
        row(
            &format!("CreateJob ({} clients)", a.concurrency),
            latencies,
            start.elapsed()
        )
    );

    // Tasks for FindTasks: the job controller's work, done by the test stand-in.
    let setup = Instant::now();
    for id in &ids {
        support::lifecycle::accept_job(&env.jobs(), &env.tasks(), id).await?;
    }
    let total_tasks = a.jobs * a.tasks_per_job as usize;
    support::wait_for(Duration::from_secs(120), "tasks in the cache", || async {
        (env.gateway.jobs.cache().read(|v| v.tasks().count()) >= total_tasks).then_some(())
    })
    .await?;
    eprintln!(
        "setup: {} jobs x {} tasks accepted in {:?}",
        a.jobs,
        a.tasks_per_job,
        setup.elapsed()
    );

    for (what, criteria) in [
        ("FindTasks by jobIds, page 100", Some("jobIds")),
        ("FindTasks all tasks, page 100", None),
    ] {
        let mut latencies = Vec::new();
        let start = Instant::now();
        let mut client = grpc.clone();
        for i in 0..500 {
            let filtering_criteria = match criteria {
                Some(key) => [(key.to_string(), ids[i % ids.len()].clone())].into(),
                None => Default::default(),
            };
            let query = pb::TaskQuery {
                page: Some(pb::Page {
                    page_size: 100,
                    ..Default::default()
                }),
                filtering_criteria,
                fields: vec![],
            };
            let t = Instant::now();
            let result = client
                .find_tasks(support::request(query))
                .await?
                .into_inner();
            latencies.push(t.elapsed());
            assert!(!result.items.is_empty());
        }
        println!("{}", row(what, latencies, start.elapsed()));
    }

    // ObserveJobs fan-out: subscribers read their snapshot, then every injected change.
    let mut streams = Vec::new();
    for _ in 0..a.subscribers {
        let mut client = grpc.clone();
        let query = pb::ObserveJobsQuery {
            filtering_criteria: [("jobIds".to_string(), ids[0].clone())].into(),
            ..Default::default()
        };
        let mut stream = client
            .observe_jobs(support::request(query))
            .await?
            .into_inner();
        while let Some(n) = stream.message().await? {
            if matches!(n.notification, Some(Notification::SnapshotEnd(_))) {
                break;
            }
        }
        streams.push(stream);
    }
    let expected = a.events;
    let start = Instant::now();
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut got = 0;
                while got < expected {
                    match stream.message().await? {
                        Some(n) if matches!(n.notification, Some(Notification::TaskUpdate(_))) => {
                            got += 1
                        }
                        Some(_) => {}
                        None => anyhow::bail!("stream ended after {got} events"),
                    }
                }
                anyhow::Ok(start.elapsed())
            })
        })
        .collect();
    // Changes are injected into the gateway's cache as the watcher would apply them, so the
    // number measures the gateway's fan-out rather than the API server's write rate.
    let cache = Arc::clone(env.gateway.jobs.cache());
    for i in 0..a.events {
        cache.apply_task_event(Event::Apply(synthetic_task(&ids[0], i)));
    }
    let mut finish = Duration::ZERO;
    for r in readers {
        finish = finish.max(r.await??);
    }
    let delivered = a.events * a.subscribers;
    println!();
    println!("| ObserveJobs fan-out | value |");
    println!("|---|---|");
    println!("| subscribers | {} |", a.subscribers);
    println!("| changes | {} |", a.events);
    println!("| events delivered | {delivered} |");
    println!(
        "| time to deliver all | {:.1} ms |",
        finish.as_secs_f64() * 1000.0
    );
    println!(
        "| events/s (all subscribers) | {:.0} |",
        delivered as f64 / finish.as_secs_f64()
    );
    env.stop().await;
    Ok(())
}

fn synthetic_task(job_id: &str, i: usize) -> TitusTask {
    let id = titus_crds::ids::task_id(
        job_id,
        &titus_crds::ids::TaskIdKey::ServiceSlot {
            sequence: 10_000 + i as u64,
        },
    );
    TitusTask {
        metadata: ObjectMeta {
            name: Some(id.clone()),
            resource_version: Some((1_000_000_000 + i).to_string()),
            ..ObjectMeta::default()
        },
        spec: TitusTaskSpec {
            job_id: job_id.to_string(),
            original_id: id,
            ..TitusTaskSpec::default()
        },
        status: Some(TitusTaskStatus {
            state: TaskState::Started,
            reason_code: TaskReasonCode::Normal,
            timestamp: 1 + i as u64,
            ..TitusTaskStatus::default()
        }),
    }
}
