//! The Titus scheduler on Kubernetes: it watches Nodes, node Leases, Pods, `TitusJob`s and
//! `CapacityGroup`s into an incremental index of the cluster ([`index`]), places pending task
//! Pods (`spec.schedulerName: titus-scheduler`) with the placement core, and binds them through
//! the `pods/binding` subresource. Optionally it also drives a Mesos master ([`mesos`]), whose
//! agents appear as virtual Nodes the same loop binds to.
//!
//! Start with [`run`]. Reading order: [`node`] and [`pod`] (what is read from Nodes and Pods),
//! [`job`] (jobs and capacity groups), [`index`] (the state fed by watches), [`plan`] (the
//! decide step after `schedule()`), [`act`] (the writes), then `runner.rs` (the loop).
//!
//! What it writes, and nothing else: Pod bindings; the `PodScheduled=False, Unschedulable`
//! condition of Pods it cannot place, with the aggregated reasons as message; `FailedScheduling`
//! Events on the Pods' `TitusTask`s; ConfigMap `titus-scheduler-demand` (unmet demand by
//! resource shape, for the capacity manager); its leader Lease `titus-scheduler`; and, with
//! Mesos, the virtual Nodes, their Leases, the status of Pods running on them and ConfigMap
//! `titus-scheduler-mesos`.

pub mod act;
pub mod index;
pub mod job;
pub mod mesos;
pub mod metrics;
pub mod node;
pub mod plan;
pub mod pod;
pub mod quantity;
mod runner;
pub mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use titus_runtime::leader::LeaderElection;
use tokio::sync::{mpsc, watch as channel};
use tokio_util::sync::CancellationToken;

pub use mesos::MesosBridgeConfig;
pub use metrics::SchedulerMetrics;
pub use node::NodeRules;

use crate::placement::PlacementConfig;

/// Name of the leader-election Lease.
pub const LEADER_LEASE: &str = "titus-scheduler";

/// Settings of the Kubernetes scheduler (plain data; the CLI and `titus up` fill it in).
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// `spec.schedulerName` of the Pods it places (`titus-scheduler`).
    pub scheduler_name: String,
    /// Namespace of its Lease and ConfigMaps.
    pub namespace: String,
    /// Namespace of the Pods, `TitusJob`s and `CapacityGroup`s it reads; `None`: all.
    pub watch_namespace: Option<String>,
    /// This instance's identity in leader election and Events.
    pub identity: String,
    /// Placement rules (fitness, zones, GPU policy).
    pub placement: PlacementConfig,
    /// How Nodes are judged.
    pub nodes: NodeRules,
    /// Changes arriving within this window after the first one join one iteration.
    pub batch_window: Duration,
    /// While Pods are pending, an iteration runs at least this often.
    pub resync_interval: Duration,
    /// Period of the liveness and assumption checks.
    pub tick_interval: Duration,
    /// Pending tasks one iteration considers at most (Critical first, then oldest).
    pub max_tasks_per_iteration: usize,
    /// Binds and condition writes in flight at once.
    pub write_concurrency: usize,
    /// `PodScheduled` condition writes per iteration at most; the rest wait.
    pub max_condition_writes_per_iteration: usize,
    /// How long an assignment waits for its bind to be observed before it is released.
    pub assume_ttl: Duration,
    /// Where `/healthz`, `/readyz` and `/metrics` are served; `None`: not served.
    pub health_bind: Option<SocketAddr>,
    /// The Mesos adapter; `None`: Kubernetes Nodes only.
    pub mesos: Option<MesosBridgeConfig>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            scheduler_name: titus_crds::constants::SCHEDULER_NAME.to_string(),
            namespace: "default".to_string(),
            watch_namespace: None,
            identity: default_identity(),
            placement: PlacementConfig::default(),
            nodes: NodeRules::default(),
            batch_window: Duration::from_millis(50),
            resync_interval: Duration::from_secs(10),
            tick_interval: Duration::from_secs(1),
            max_tasks_per_iteration: 10_000,
            write_concurrency: 64,
            max_condition_writes_per_iteration: 1000,
            assume_ttl: Duration::from_secs(30),
            health_bind: None,
            mesos: None,
        }
    }
}

/// `<hostname>-<random>`: unique per process.
pub fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "titus-scheduler".to_string());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}", &suffix[..8])
}

/// Errors of [`run`].
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The health address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Runs the scheduler until `shutdown` resolves.
///
/// Watches start at once and keep the index warm on every instance; only the leader (Lease
/// `titus-scheduler` in `config.namespace`) schedules and runs the Mesos adapter. On shutdown
/// the Lease is released so another instance takes over at once.
///
/// # Errors
/// [`SchedulerError::Bind`] when `health_bind` is taken.
pub async fn run(
    config: SchedulerConfig,
    client: kube::Client,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SchedulerError> {
    let config = Arc::new(config);
    let cancel = CancellationToken::new();
    let metrics = SchedulerMetrics::default();
    let (ready_tx, ready_rx) = channel::channel(false);
    let health = match config.health_bind {
        Some(addr) => {
            let listener = titus_runtime::bind(addr)
                .await
                .map_err(|source| SchedulerError::Bind { addr, source })?;
            let mut registry = Registry::default();
            metrics.register(&mut registry);
            let stop = cancel.clone().cancelled_owned();
            Some(tokio::spawn(async move {
                if let Err(error) =
                    titus_runtime::serve_health(listener, Arc::new(registry), ready_rx, stop).await
                {
                    tracing::warn!(%error, "health endpoint failed");
                }
            }))
        }
        None => None,
    };
    tokio::spawn({
        let cancel = cancel.clone();
        async move {
            tokio::select! {
                () = shutdown => cancel.cancel(),
                () = cancel.cancelled() => {}
            }
        }
    });
    let (leading_tx, leading_rx) = channel::channel(false);
    let election = LeaderElection::new(LEADER_LEASE, &config.namespace, &config.identity);
    let election =
        tokio::spawn(election.run(client.clone(), leading_tx, cancel.clone().cancelled_owned()));
    let (events_tx, events_rx) = mpsc::channel(8192);
    let watches = watch::spawn(&client, config.watch_namespace.as_deref(), &events_tx);
    drop(events_tx);
    let bridge = config.mesos.clone().map(|mesos| {
        tokio::spawn(mesos::supervise(
            mesos,
            mesos::BridgeContext {
                client: client.clone(),
                namespace: config.namespace.clone(),
                scheduler_name: config.scheduler_name.clone(),
                watch_namespace: config.watch_namespace.clone(),
                metrics: metrics.clone(),
            },
            leading_rx.clone(),
            cancel.clone(),
        ))
    });
    tracing::info!(identity = %config.identity, namespace = %config.namespace, mesos = config.mesos.is_some(), "titus scheduler starting");
    let writer = act::Writer::new(client, &config.namespace, &config.identity);
    runner::Runner::new(config.clone(), writer, metrics, ready_tx)
        .run(events_rx, leading_rx, cancel.clone())
        .await;
    cancel.cancel();
    for watch in watches {
        watch.abort();
    }
    if let Some(bridge) = bridge {
        let _ = bridge.await;
    }
    let _ = election.await;
    if let Some(health) = health {
        let _ = health.await;
    }
    tracing::info!("titus scheduler stopped");
    Ok(())
}
