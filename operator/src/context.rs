//! What the controllers share: the client, the clock, the caches fed by watches, the recent
//! writes not yet seen in those caches, metrics, Events and leadership.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use parking_lot::Mutex;
use titus_crds::capacity_group::capacity_group_matches;
use titus_crds::{CapacityGroup, TitusJob, TitusTask};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::job::JobLimits;
use crate::metrics::Metrics;
use crate::task::facts::NodeFacts;
use crate::task::machine::TaskTimeouts;

/// Namespace of the nodes' heartbeat Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// How long a recent write stands in for what the caches have not shown yet.
const RECENT_TTL: Duration = Duration::from_secs(60);

/// The caches both controllers read.
#[derive(Clone)]
pub struct Caches {
    /// `TitusJob`s.
    pub jobs: Store<TitusJob>,
    /// `TitusTask`s.
    pub tasks: Store<TitusTask>,
    /// Task pods.
    pub pods: Store<Pod>,
    /// Nodes.
    pub nodes: Store<Node>,
    /// Node heartbeat Leases.
    pub leases: Store<Lease>,
    /// Capacity groups.
    pub groups: Store<CapacityGroup>,
}

/// Tasks this instance created or changed that the task cache may not show yet, by job uid: a
/// pass that follows a write closely must not decide from a cache that lags it (the job
/// controller's equivalent of Kubernetes controllers' "expectations").
#[derive(Default)]
struct RecentWrites {
    by_job: HashMap<String, HashMap<String, (Arc<TitusTask>, Instant)>>,
}

/// State shared by the controllers.
pub struct Shared {
    /// Kubernetes client.
    pub client: kube::Client,
    /// The clock decisions are made with.
    pub clock: Arc<dyn Clock>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Whether this instance leads (writers act only then).
    pub leading: watch::Receiver<bool>,
    /// Caches.
    pub caches: Caches,
    /// Event recorder.
    pub recorder: Recorder,
    /// Job controller bounds.
    pub limits: JobLimits,
    /// Task controller timeouts.
    pub timeouts: TaskTimeouts,
    recent: Mutex<RecentWrites>,
    status_written: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Assembles the shared state.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: kube::Client,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        leading: watch::Receiver<bool>,
        caches: Caches,
        recorder: Recorder,
        limits: JobLimits,
        timeouts: TaskTimeouts,
    ) -> Self {
        Self {
            client,
            clock,
            metrics,
            leading,
            caches,
            recorder,
            limits,
            timeouts,
            recent: Mutex::new(RecentWrites::default()),
            status_written: Mutex::new(HashMap::new()),
        }
    }

    /// When this instance last wrote the status of job `uid`.
    pub fn status_written_at(&self, uid: &str) -> Option<Instant> {
        self.status_written.lock().get(uid).copied()
    }

    /// Records a status write of job `uid` (and forgets jobs not written for ten minutes).
    pub fn status_written(&self, uid: &str) {
        let mut written = self.status_written.lock();
        written.retain(|_, at| at.elapsed() < Duration::from_secs(600));
        written.insert(uid.to_string(), Instant::now());
    }

    /// Whether this instance may write.
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// Publishes an Event in the background (Events are best effort; a pass never waits or
    /// fails on them).
    pub fn publish(&self, regarding: ObjectReference, reason: &str, note: String, warning: bool) {
        let recorder = self.recorder.clone();
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_string(),
            note: Some(note),
            action: reason.to_string(),
            secondary: None,
        };
        tokio::spawn(async move {
            if let Err(error) = recorder.publish(&event, &regarding).await {
                tracing::debug!(%error, reason = %event.reason, "could not publish an event");
            }
        });
    }

    /// The tasks of job `uid` in `namespace`: the cache, overlaid with this instance's recent
    /// writes that the cache does not show yet.
    pub fn job_tasks(&self, namespace: &str, uid: &str) -> Vec<Arc<TitusTask>> {
        let mut tasks: HashMap<String, Arc<TitusTask>> = self
            .caches
            .tasks
            .state()
            .into_iter()
            .filter(|t| t.spec.job_id == uid && t.metadata.namespace.as_deref() == Some(namespace))
            .map(|t| (t.metadata.name.clone().unwrap_or_default(), t))
            .collect();
        let mut recent = self.recent.lock();
        if let Some(writes) = recent.by_job.get_mut(uid) {
            writes.retain(|name, (written, at)| {
                let seen = tasks.get(name).is_some_and(|cached| {
                    cached.metadata.generation.unwrap_or(0)
                        >= written.metadata.generation.unwrap_or(0)
                });
                if seen || at.elapsed() > RECENT_TTL {
                    return false;
                }
                tasks.insert(name.clone(), written.clone());
                true
            });
            if writes.is_empty() {
                recent.by_job.remove(uid);
            }
        }
        tasks.into_values().collect()
    }

    /// Remembers a task this instance created or changed.
    pub fn remember(&self, task: TitusTask) {
        let name = task.metadata.name.clone().unwrap_or_default();
        let job = task.spec.job_id.clone();
        self.recent
            .lock()
            .by_job
            .entry(job)
            .or_default()
            .insert(name, (Arc::new(task), Instant::now()));
    }

    /// The job of a task, from the cache.
    pub fn cached_job(&self, namespace: &str, name: &str) -> Option<Arc<TitusJob>> {
        self.caches
            .jobs
            .get(&ObjectRef::new(name).within(namespace))
    }

    /// The capacity group a job names, if one exists in its namespace.
    pub fn capacity_group(&self, namespace: &str, job: &TitusJob) -> Option<Arc<CapacityGroup>> {
        self.caches.groups.state().into_iter().find(|g| {
            g.metadata.namespace.as_deref() == Some(namespace)
                && capacity_group_matches(g, &job.spec.capacity_group)
        })
    }

    /// The facts of node `name` (object and heartbeat Lease, either may be missing).
    pub fn node_facts(&self, name: &str) -> NodeFacts {
        let node = self.caches.nodes.get(&ObjectRef::new(name));
        let lease = self
            .caches
            .leases
            .get(&ObjectRef::new(name).within(NODE_LEASE_NAMESPACE));
        NodeFacts::of(name, node.as_deref(), lease.as_deref())
    }
}
