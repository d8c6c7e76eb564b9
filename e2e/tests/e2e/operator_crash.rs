//! Crash safety with real processes: `titus operator` is SIGKILLed at random points, again and
//! again, while a batch job of a few hundred tasks (some failing and retried) is driven to
//! completion. Afterwards, and all along, no task is lost and no index ever runs twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::Api;
use kube::api::PostParams;
use kube::runtime::watcher::{self, Event};
use titus_crds::{RetryPolicy, TaskState, TitusJob, TitusJobSpec, TitusTask};
use titus_e2e::{Cluster, scratch_dir, wait_for};
use titus_operator::testing::Behavior;

use crate::operator_support::{Operator, driver, install_titus_crds};

const SIZE: u32 = 300;
const KILLS: usize = 15;

/// Indexes whose first attempt fails (and is retried once).
fn fails_first(index: u32) -> bool {
    index % 10 == 3
}

/// A small deterministic generator (the seed is printed, so a failure can be replayed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What the watch on TitusTasks saw.
#[derive(Default, Debug)]
pub struct Observations {
    /// Live (not Finished) attempts per index, as of the last event.
    pub live: BTreeMap<u32, BTreeSet<String>>,
    /// Every attempt seen, per index.
    pub attempts: BTreeMap<u32, BTreeSet<String>>,
    /// Moments two attempts of one index were live at once.
    pub violations: Vec<String>,
}

impl Observations {
    pub fn apply(&mut self, task: &TitusTask) {
        let (Some(index), Some(name)) = (task.spec.index, task.metadata.name.clone()) else {
            return;
        };
        self.attempts.entry(index).or_default().insert(name.clone());
        let live = self.live.entry(index).or_default();
        if task.state() == TaskState::Finished {
            live.remove(&name);
        } else {
            live.insert(name);
            if live.len() > 1 {
                self.violations
                    .push(format!("index {index}: live attempts {live:?}"));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_killed_again_and_again_loses_and_duplicates_no_task() -> anyhow::Result<()> {
    let cluster = Cluster::apiserver().await?;
    install_titus_crds(&cluster)?;
    let seed = u64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(7) | 1;
    println!("crash test seed: {seed}");
    let driver = driver(&cluster, 5, move |p| {
        let index = p.index.unwrap_or_default();
        let mut rng =
            Rng(seed ^ u64::from(index).wrapping_mul(0x9e37_79b9) ^ u64::from(p.attempt) | 1);
        let run = Duration::from_millis(5_000 + rng.below(10_000));
        if fails_first(index) && p.attempt == 0 {
            Behavior::fail(1, "the first attempt fails").running_for(run)
        } else {
            Behavior::succeed().running_for(run)
        }
    })
    .await?;
    let client = cluster.client().await?;
    let tasks: Api<TitusTask> = Api::namespaced(client.clone(), "default");
    let observations = Arc::new(std::sync::Mutex::new(Observations::default()));
    let watch = {
        let observations = observations.clone();
        let stream = watcher::watcher(tasks.clone(), watcher::Config::default());
        tokio::spawn(async move {
            tokio::pin!(stream);
            while let Some(event) = stream.next().await {
                if let Ok(Event::Apply(t) | Event::InitApply(t)) = event
                    && let Ok(mut o) = observations.lock()
                {
                    o.apply(&t);
                }
            }
        })
    };
    let jobs: Api<TitusJob> = Api::namespaced(client.clone(), "default");
    let spec = TitusJobSpec::batch(SIZE).with_retry_policy(RetryPolicy::immediate(2));
    jobs.create(&PostParams::default(), &TitusJob::new("crashy", spec))
        .await?;

    let log = scratch_dir("operator-crash")?.join("operator.log");
    let args = ["--identity", "crash-test", "--lease-duration-secs", "5"];
    let mut operator = Operator::start(&cluster, log, &args)?;
    let mut rng = Rng(seed);
    let finished = |job: &TitusJob| {
        job.status
            .as_ref()
            .is_some_and(|s| s.state.as_str() == "Finished")
    };
    for kill in 0..KILLS {
        // Random kill points (not synchronisation): the operator runs 0.2-1.0 s between kills.
        tokio::time::sleep(Duration::from_millis(200 + rng.below(800))).await;
        operator.check_alive()?;
        assert!(
            !finished(&jobs.get("crashy").await?),
            "the job finished before kill {kill}; the test would not prove anything"
        );
        operator.restart()?;
        let status = jobs.get("crashy").await?.status.unwrap_or_default();
        println!(
            "kill {kill}: {} tasks, {} started, {} finished",
            status.task_counts.non_finished() + status.task_counts.finished,
            status.task_counts.started,
            status.task_counts.finished
        );
    }
    let job = wait_for(
        "the job to finish after the kills",
        Duration::from_secs(180),
        || async {
            operator.check_alive()?;
            let job = jobs.get("crashy").await?;
            Ok(finished(&job).then_some(job))
        },
    )
    .await?;
    assert_eq!(job.status.as_ref().unwrap().reason_code.as_str(), "normal");

    let all = tasks.list(&Default::default()).await?.items;
    let mut per_index: BTreeMap<u32, Vec<&TitusTask>> = BTreeMap::new();
    for t in &all {
        per_index
            .entry(t.spec.index.unwrap_or(u32::MAX))
            .or_default()
            .push(t);
    }
    assert_eq!(
        per_index.len(),
        SIZE as usize,
        "every index has attempts, no other task exists"
    );
    let expected_total: usize = (0..SIZE).map(|i| if fails_first(i) { 2 } else { 1 }).sum();
    assert_eq!(all.len(), expected_total, "no attempt lost or duplicated");
    for (index, attempts) in &per_index {
        let normal: Vec<_> = attempts
            .iter()
            .filter(|t| {
                t.status.as_ref().is_some_and(|s| {
                    s.state == TaskState::Finished && s.reason_code.as_str() == "normal"
                })
            })
            .collect();
        assert_eq!(
            normal.len(),
            1,
            "index {index}: exactly one Finished/normal attempt"
        );
        assert!(
            attempts.iter().all(|t| t.state() == TaskState::Finished),
            "index {index}"
        );
        let resubmits: BTreeSet<u32> = attempts.iter().map(|t| t.spec.resubmit_number).collect();
        let want: BTreeSet<u32> = (0..attempts.len() as u32).collect();
        assert_eq!(
            resubmits, want,
            "index {index}: one attempt per resubmit number"
        );
        if fails_first(*index) {
            let first = attempts
                .iter()
                .find(|t| t.spec.resubmit_number == 0)
                .unwrap();
            assert_eq!(
                first.status.as_ref().unwrap().reason_code.as_str(),
                "failed",
                "index {index}"
            );
        }
    }
    watch.abort();
    let observed = observations
        .lock()
        .map_err(|_| anyhow::anyhow!("observer poisoned"))?;
    assert!(
        observed.violations.is_empty(),
        "two live attempts of one index: {:?}",
        observed.violations
    );
    let seen: usize = observed.attempts.values().map(BTreeSet::len).sum();
    assert_eq!(
        seen, expected_total,
        "the watch saw exactly the expected attempts"
    );
    assert!(
        driver.violations().is_empty(),
        "two live pods of one index: {:?}",
        driver.violations()
    );
    assert_eq!(
        driver.stats().bound as usize,
        expected_total,
        "one pod per attempt"
    );
    println!(
        "{} kills, {} attempts, log: {}",
        KILLS,
        all.len(),
        operator.log().lines().count()
    );
    Ok(())
}
