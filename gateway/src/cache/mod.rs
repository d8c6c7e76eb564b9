//! The gateway's in-memory view of every `TitusJob` and `TitusTask` in its namespace, fed by
//! kube-runtime watchers ([`watch`]), and the ordered stream of changes observers follow.
//!
//! Reads (`FindJob(s)`, `FindTask(s)`) and streams (`ObserveJob(s)`) are served from here, never
//! from per-request lists. Each object is rendered to its Titus proto once, when it changes. Every
//! change gets a sequence number and is broadcast while the write lock is held, so an observer
//! that takes a snapshot and subscribes under the read lock sees each change exactly once: in the
//! snapshot or on the stream.
//!
//! Titus clients see entities leave only after they finished. When an object disappears (KillJob
//! without a job controller holding it, a task deleted by garbage collection) while its last
//! status is not `Finished`, the cache first emits a `Finished` update for it, then the
//! `archived` event.

mod state;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use titus_crds::{TitusJob, TitusTask};
use tokio::sync::{broadcast, watch as tokio_watch};

use crate::pb;
use state::State;
pub use state::{CacheView, JobEntry, TaskEntry};

/// One change, in the order the cache applied it.
#[derive(Clone, Debug)]
pub enum Change {
    /// A job changed (or left: `archived`).
    Job {
        /// Sequence number.
        seq: u64,
        /// The job as clients see it.
        job: Arc<pb::Job>,
        /// The job left the active set; this is its last event.
        archived: bool,
    },
    /// A task changed (or left: `archived`).
    Task {
        /// Sequence number.
        seq: u64,
        /// The task as clients see it.
        task: Arc<pb::Task>,
        /// Its job at that moment, if known.
        job: Option<Arc<pb::Job>>,
        /// The task left the active set; this is its last event.
        archived: bool,
        /// The task moved here from another job (MoveTask).
        moved_from_another_job: bool,
    },
}

impl Change {
    /// Sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            Change::Job { seq, .. } | Change::Task { seq, .. } => *seq,
        }
    }
}

/// The cache. Cheap to share (`Arc<Cache>`).
#[derive(Debug)]
pub struct Cache {
    state: RwLock<State>,
    changes: broadcast::Sender<Arc<Change>>,
    /// Bumped after every applied event; waiters re-check their condition on each bump.
    tick: tokio_watch::Sender<u64>,
    /// Turns true when the gateway stops: open streams end.
    closed: tokio_watch::Sender<bool>,
}

/// A watcher event, kind-independent.
#[derive(Debug)]
pub enum Event<K> {
    /// The (re)list starts.
    Init,
    /// An object of the (re)list.
    InitApply(K),
    /// The (re)list is complete.
    InitDone,
    /// An object was added or changed.
    Apply(K),
    /// An object was deleted.
    Delete(K),
}

impl Cache {
    /// An empty cache whose change stream holds up to `capacity` changes per slow observer.
    pub fn new(capacity: usize) -> Cache {
        let (changes, _) = broadcast::channel(capacity.max(16));
        let (tick, _) = tokio_watch::channel(0);
        let (closed, _) = tokio_watch::channel(false);
        Cache {
            state: RwLock::new(State::default()),
            changes,
            tick,
            closed,
        }
    }

    /// Applies a `TitusJob` watcher event.
    pub fn apply_job_event(&self, event: Event<TitusJob>) {
        let mut state = self.state.write();
        let changes = state.apply_job_event(event, now_ms());
        self.publish(&state, changes);
    }

    /// Applies a `TitusTask` watcher event.
    pub fn apply_task_event(&self, event: Event<TitusTask>) {
        let mut state = self.state.write();
        let changes = state.apply_task_event(event, now_ms());
        self.publish(&state, changes);
    }

    fn publish(&self, _locked: &State, changes: Vec<Change>) {
        for change in changes {
            // No subscribers is fine: nobody is observing.
            let _ = self.changes.send(Arc::new(change));
        }
        self.tick.send_modify(|t| *t = t.wrapping_add(1));
    }

    /// Ends every open stream (the gateway is stopping).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Completes once [`Cache::close`] was called.
    pub async fn closed(&self) {
        let mut closed = self.closed.subscribe();
        let _ = closed.wait_for(|c| *c).await;
    }

    /// Whether both watchers have completed their first list.
    pub fn is_ready(&self) -> bool {
        self.state.read().is_synced()
    }

    /// The sequence number of the last applied change.
    pub fn seq(&self) -> u64 {
        self.state.read().seq()
    }

    /// Runs `f` on a consistent view of the cache.
    pub fn read<R>(&self, f: impl FnOnce(&CacheView<'_>) -> R) -> R {
        let state = self.state.read();
        f(&state.view())
    }

    /// Runs `f` on a consistent view and subscribes to every change after it, atomically: each
    /// change is either reflected in what `f` saw or delivered by the receiver. Also returns the
    /// sequence number `f` saw.
    pub fn snapshot_and_subscribe<R>(
        &self,
        f: impl FnOnce(&CacheView<'_>) -> R,
    ) -> (R, u64, broadcast::Receiver<Arc<Change>>) {
        let state = self.state.read();
        let receiver = self.changes.subscribe();
        (f(&state.view()), state.seq(), receiver)
    }

    /// Waits until `condition` holds on the cache, or `timeout` passes. Returns whether it held.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        condition: impl Fn(&CacheView<'_>) -> bool,
    ) -> bool {
        let mut ticks = self.tick.subscribe();
        let now = tokio::time::Instant::now();
        // A timeout too large to add (Duration::MAX) means "no deadline" in practice.
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        loop {
            if self.read(&condition) {
                return true;
            }
            tokio::select! {
                changed = ticks.changed() => {
                    if changed.is_err() {
                        return self.read(&condition);
                    }
                }
                () = tokio::time::sleep_until(deadline) => return self.read(&condition),
            }
        }
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Parses a Kubernetes `resourceVersion`. Both etcd and the embedded API server hand out
/// increasing integers, which lets a writer wait until the cache has caught up with its write.
pub fn resource_version(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
