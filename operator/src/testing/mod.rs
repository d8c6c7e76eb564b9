//! A pod driver for tests and benchmarks: it plays the Titus scheduler and the agents of a fleet
//! of fake nodes. It registers Nodes and renews their heartbeat Leases; binds the pending pods of
//! the Titus scheduler to them; and reports pod status the way the agent does (titus-semantics
//! §13.1): `Pending`/`TASK_STARTING` with a waiting container, `Running`/`TASK_RUNNING` with the
//! container's start time, then `Succeeded`/`TASK_FINISHED`, `Failed`/`TASK_FAILED` (exit code,
//! message), `TASK_CRASHED` or `TASK_LOST`; a deleted pod is reported `TASK_KILLED` and removed.
//!
//! What each pod does is a [`Behavior`] chosen per pod by a function of [`PodInfo`] (its job,
//! index and attempt number), so a test can make the first attempt of an index fail, a pod hang
//! in `TASK_STARTING`, stay unschedulable or run until killed. [`PodDriver::silence`] stops a
//! node's agent (no Lease renewals, no status, kills not acted upon), as if the host died.
//!
//! The driver also checks a safety property while it runs: it never sees two live pods (bound
//! and not ended) of the same batch index at once ([`PodDriver::violations`]).

mod fleet;
mod pods;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use fleet::FakeNode;

/// What a pod does once it is bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exits 0 after `run`.
    Succeed,
    /// Exits with this code and message after `run`.
    Fail {
        /// Exit code.
        exit_code: i32,
        /// Message.
        message: String,
    },
    /// The agent crashed before the container started (`TASK_CRASHED`).
    Crash {
        /// Message.
        message: String,
    },
    /// The agent lost the container after `run` (`TASK_LOST`).
    Lost,
    /// Runs until the pod is deleted.
    RunUntilKilled,
    /// Never leaves `TASK_STARTING`.
    StayStarting,
    /// Is never bound: `PodScheduled=False/Unschedulable` with this message.
    Unschedulable {
        /// The scheduler's message.
        message: String,
    },
}

/// How one pod behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Behavior {
    /// Time in `TASK_STARTING`.
    pub prepare: Duration,
    /// Time in `TASK_RUNNING`.
    pub run: Duration,
    /// How it ends.
    pub outcome: Outcome,
}

impl Behavior {
    /// Starts and succeeds at once.
    pub fn succeed() -> Self {
        Self {
            prepare: Duration::ZERO,
            run: Duration::ZERO,
            outcome: Outcome::Succeed,
        }
    }

    /// Starts and exits with `exit_code` at once.
    pub fn fail(exit_code: i32, message: &str) -> Self {
        Self {
            outcome: Outcome::Fail {
                exit_code,
                message: message.into(),
            },
            ..Self::succeed()
        }
    }

    /// Starts and runs until killed.
    pub fn run_until_killed() -> Self {
        Self {
            outcome: Outcome::RunUntilKilled,
            ..Self::succeed()
        }
    }

    /// The same behavior after `run` in `TASK_RUNNING`.
    pub fn running_for(mut self, run: Duration) -> Self {
        self.run = run;
        self
    }

    /// The same behavior after `prepare` in `TASK_STARTING`.
    pub fn preparing_for(mut self, prepare: Duration) -> Self {
        self.prepare = prepare;
        self
    }
}

/// What the behavior function knows about a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodInfo {
    /// Namespace.
    pub namespace: String,
    /// Pod (= task) name.
    pub name: String,
    /// `TitusJob` name.
    pub job_name: String,
    /// Batch index.
    pub index: Option<u32>,
    /// Original task id of the chain (`TITUS_TASK_ORIGINAL_ID`).
    pub original_id: String,
    /// How many pods of the same chain (batch index, or service chain) the driver saw before.
    pub attempt: u32,
}

/// Chooses a pod's behavior.
pub type BehaviorFn = Arc<dyn Fn(&PodInfo) -> Behavior + Send + Sync>;

/// Driver settings.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// The fleet.
    pub nodes: Vec<FakeNode>,
    /// Only pods of this namespace (`None`: all).
    pub namespace: Option<String>,
    /// How often the agents renew their Leases.
    pub heartbeat: Duration,
    /// Scheduler name of the pods to drive.
    pub scheduler_name: String,
}

impl DriverConfig {
    /// `count` nodes `node-0..` spread over zones `zone-a`, `zone-b`, `zone-c`.
    pub fn fleet(count: usize) -> Self {
        let zones = ["zone-a", "zone-b", "zone-c"];
        Self {
            nodes: (0..count)
                .map(|i| FakeNode::new(&format!("node-{i}"), zones[i % zones.len()]))
                .collect(),
            namespace: None,
            heartbeat: Duration::from_secs(2),
            scheduler_name: titus_crds::constants::SCHEDULER_NAME.into(),
        }
    }
}

/// Driver failures.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A Kubernetes call failed.
    #[error("{action}: {source}")]
    Api {
        /// What was being done.
        action: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
}

/// Counters of what the driver did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Pods bound.
    pub bound: u64,
    /// Pods that ended (any outcome, kills included).
    pub ended: u64,
    /// Pods killed (deleted while live).
    pub killed: u64,
}

/// State shared by the driver's tasks.
#[derive(Default)]
struct Shared {
    silenced: Mutex<BTreeSet<String>>,
    /// Live pods per (namespace, job, index).
    live: Mutex<HashMap<(String, String, u32), BTreeSet<String>>>,
    attempts: Mutex<HashMap<(String, String, String), u32>>,
    violations: Mutex<Vec<String>>,
    stats: Mutex<DriverStats>,
    next_node: Mutex<usize>,
}

/// A running pod driver; stops when dropped or [`PodDriver::stop`]ped.
pub struct PodDriver {
    shared: Arc<Shared>,
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

impl std::fmt::Debug for PodDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodDriver").finish_non_exhaustive()
    }
}

impl PodDriver {
    /// Registers the fleet and starts driving pods.
    ///
    /// # Errors
    /// The nodes or their Leases could not be created.
    pub async fn start(
        client: kube::Client,
        config: DriverConfig,
        behavior: BehaviorFn,
    ) -> Result<Self, DriverError> {
        let shared = Arc::new(Shared::default());
        let stop = CancellationToken::new();
        fleet::register(&client, &config.nodes).await?;
        let mut tasks = JoinSet::new();
        tasks.spawn(fleet::heartbeat(
            client.clone(),
            config.nodes.clone(),
            config.heartbeat,
            shared.clone(),
            stop.clone(),
        ));
        tasks.spawn(pods::drive(
            client,
            config,
            behavior,
            shared.clone(),
            stop.clone(),
        ));
        Ok(Self {
            shared,
            stop,
            tasks,
        })
    }

    /// Stops `node`'s agent: no Lease renewals, no pod status, kills ignored.
    pub fn silence(&self, node: &str) {
        self.shared.silenced.lock().insert(node.to_string());
    }

    /// Restarts `node`'s agent.
    pub fn resume(&self, node: &str) {
        self.shared.silenced.lock().remove(node);
    }

    /// Safety violations seen (two live pods of one batch index at once).
    pub fn violations(&self) -> Vec<String> {
        self.shared.violations.lock().clone()
    }

    /// What the driver did so far.
    pub fn stats(&self) -> DriverStats {
        *self.shared.stats.lock()
    }

    /// Stops the driver and waits for its tasks.
    pub async fn stop(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for PodDriver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Shared {
    fn is_silenced(&self, node: &str) -> bool {
        self.silenced.lock().contains(node)
    }
}
