//! Wiring: caches fed by watches, the two controllers, node liveness, leader election, metrics
//! and health endpoints, the admission webhook, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store, reflector as reflect};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{Controller, WatchStreamExt};
use titus_crds::constants::labels;
use titus_crds::{AdmissionConfig, CapacityGroup, TitusJob, TitusTask};
use titus_runtime::leader::LeaderElection;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::admission::TitusAdmission;
use crate::admission::webhook::{self, WebhookConfig, WebhookError};
use crate::clock::{Clock, SystemClock};
use crate::context::{Caches, NODE_LEASE_NAMESPACE, Shared};
use crate::crds_install::{CrdInstallError, install_crds};
use crate::error::ReconcileError;
use crate::job::JobLimits;
use crate::job::gate::JobTriggerGate;
use crate::metrics::Metrics;
use crate::task::machine::TaskTimeouts;

/// Name of the leader-election Lease.
pub const LEASE_NAME: &str = "titus-operator";
/// Reporting controller name of this operator's Events.
pub const REPORTER: &str = "titus-operator";

/// How to run the operator (a plain struct; the CLI maps its flags onto it).
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    /// Watch one namespace; `None` watches all.
    pub namespace: Option<String>,
    /// This instance's identity (leader election, Events).
    pub identity: String,
    /// Lease-based leader election; `None` runs as the only writer.
    pub leader_election: Option<LeaderElection>,
    /// Serve `/healthz`, `/readyz` and `/metrics` here.
    pub metrics_addr: Option<SocketAddr>,
    /// Serve the HTTPS admission webhook.
    pub webhook: Option<WebhookConfig>,
    /// Admission settings (webhook).
    pub admission: AdmissionConfig,
    /// Job controller bounds.
    pub job_limits: JobLimits,
    /// Task controller timeouts and classification.
    pub task_timeouts: TaskTimeouts,
    /// Job passes run at once.
    pub job_concurrency: u16,
    /// Task passes run at once.
    pub task_concurrency: u16,
    /// Job triggers closer together than this are merged into one pass. kube-runtime restarts
    /// the debounce with every trigger, so a steady stream of task events would starve the
    /// job: keep it 0 unless the stream is bursty. (Triggers arriving while a pass runs are
    /// merged anyway.)
    pub job_debounce: Duration,
    /// Job passes woken by task changes are spaced at least this far apart per job (the first
    /// change of a quiet job goes at once). `Duration::ZERO`: every change wakes the job.
    pub job_trigger_interval: Duration,
    /// How often node liveness is checked.
    pub liveness_tick: Duration,
    /// Install (server-side apply) the CRDs at start.
    pub install_crds: bool,
    /// The clock decisions use.
    pub clock: Arc<dyn Clock>,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            namespace: None,
            identity: default_identity(),
            leader_election: None,
            metrics_addr: None,
            webhook: None,
            admission: AdmissionConfig::default(),
            job_limits: JobLimits::default(),
            task_timeouts: TaskTimeouts::default(),
            job_concurrency: 8,
            task_concurrency: 64,
            job_debounce: Duration::ZERO,
            job_trigger_interval: Duration::from_millis(200),
            liveness_tick: Duration::from_secs(1),
            install_crds: false,
            clock: Arc::new(SystemClock),
        }
    }
}

impl OperatorConfig {
    /// Leader election on Lease `titus-operator` in `namespace` with client-go's timings.
    pub fn with_leader_election(mut self, namespace: &str) -> Self {
        self.leader_election = Some(LeaderElection::new(LEASE_NAME, namespace, &self.identity));
        self
    }
}

/// `<hostname>-<random>`: unique per process.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "titus-operator".into());
    format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Failures of the operator as a whole.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The CRDs could not be installed.
    #[error(transparent)]
    Crds(#[from] CrdInstallError),
    /// The metrics address could not be bound.
    #[error("cannot listen on {addr} for metrics: {source}")]
    MetricsBind {
        /// The address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The webhook could not start.
    #[error(transparent)]
    Webhook(#[from] WebhookError),
}

fn api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Reflects `api` into a store driven in the background until `stop`.
fn background_store<K>(api: Api<K>, config: watcher::Config, stop: &CancellationToken) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflect(
        writer,
        slim(watcher::watcher(api, config).default_backoff()),
    );
    let stop = stop.clone();
    tokio::spawn(async move {
        tokio::pin!(stream);
        loop {
            tokio::select! {
                item = stream.next() => match item {
                    Some(Ok(_)) => {}
                    Some(Err(error)) => tracing::warn!(%error, "watch failed; retrying"),
                    None => return,
                },
                () = stop.cancelled() => return,
            }
        }
    });
    reader
}

/// Drops `managedFields` from watched objects: nothing here reads them, they are most of a
/// small object's size in memory, and writes that omit them keep the server's copy.
fn slim<K, S>(events: S) -> impl Stream<Item = watcher::Result<Event<K>>> + Send
where
    K: kube::Resource + Send,
    S: Stream<Item = watcher::Result<Event<K>>> + Send,
{
    events.modify(|obj: &mut K| obj.meta_mut().managed_fields = None)
}

/// A cache of `api` fed by a watch, and the stream of objects whose changes should trigger
/// reconciles, each yielded only once the cache shows it.
///
/// kube's reflector buffers the objects of a re-list (`InitApply`) and swaps them into the cache
/// at `InitDone`; a controller triggered by a new `InitApply` object would look it up before the
/// swap, find nothing and drop the trigger (an object created while a watch re-lists would then
/// wait for its next change). So those objects are held back until `InitDone`.
fn triggers<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send,
)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflect(
        writer,
        slim(watcher::watcher(api, config).default_backoff()),
    )
    .scan(Vec::new(), |relisted: &mut Vec<K>, event| {
        let out: Vec<Result<K, watcher::Error>> = match event {
            Ok(Event::Apply(obj) | Event::Delete(obj)) => vec![Ok(obj)],
            Ok(Event::Init) => {
                relisted.clear();
                Vec::new()
            }
            Ok(Event::InitApply(obj)) => {
                relisted.push(obj);
                Vec::new()
            }
            Ok(Event::InitDone) => std::mem::take(relisted).into_iter().map(Ok).collect(),
            Err(error) => vec![Err(error)],
        };
        futures::future::ready(Some(futures::stream::iter(out)))
    })
    .flatten();
    (reader, stream)
}

/// A stream that yields once each time this instance becomes the leader.
fn leadership_gained(leading: watch::Receiver<bool>) -> impl Stream<Item = ()> + Send {
    futures::stream::unfold((leading, false), |(mut rx, mut was)| async move {
        loop {
            let now = *rx.borrow_and_update();
            if now && !was {
                return Some(((), (rx, true)));
            }
            was = now;
            rx.changed().await.ok()?;
        }
    })
}

fn error_policy<K>(_: Arc<K>, error: &ReconcileError, _: Arc<Shared>) -> Action {
    let category = error.category();
    match category {
        crate::error::ErrorCategory::Conflict | crate::error::ErrorCategory::NotFound => {
            tracing::debug!(%error, "reconcile raced a concurrent change; retrying");
        }
        crate::error::ErrorCategory::Throttled
        | crate::error::ErrorCategory::Refused
        | crate::error::ErrorCategory::Unavailable
        | crate::error::ErrorCategory::Internal => {
            tracing::warn!(%error, category = category.as_str(), "reconcile failed");
        }
    }
    Action::requeue(category.retry_after())
}

/// Runs the operator until `shutdown` resolves: the job and task controllers (writing only while
/// this instance leads), node liveness, and, when configured, leader election, the metrics and
/// health endpoints and the admission webhook.
///
/// # Errors
/// Start-up failures (CRD install, binding the metrics or webhook address).
pub async fn run(
    config: OperatorConfig,
    client: kube::Client,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), OperatorError> {
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            stop.cancel();
        });
    }
    if config.install_crds {
        install_crds(&client, Duration::from_secs(60)).await?;
    }
    let metrics = Arc::new(Metrics::new());
    let (ready_tx, ready_rx) = watch::channel(false);
    let mut background = tokio::task::JoinSet::new();
    if let Some(addr) = config.metrics_addr {
        let listener = titus_runtime::bind(addr)
            .await
            .map_err(|source| OperatorError::MetricsBind { addr, source })?;
        let (registry, stop) = (metrics.registry.clone(), stop.clone());
        background.spawn(async move {
            if let Err(error) =
                titus_runtime::serve_health(listener, registry, ready_rx, stop.cancelled_owned())
                    .await
            {
                tracing::warn!(%error, "health endpoint failed");
            }
        });
    }
    if let Some(webhook_config) = config.webhook.clone() {
        let tls = webhook::tls_config(&webhook_config.cert_path, &webhook_config.key_path)?;
        let listener = tokio::net::TcpListener::bind(webhook_config.addr)
            .await
            .map_err(|source| WebhookError::Bind {
                addr: webhook_config.addr,
                source,
            })?;
        let admission = Arc::new(TitusAdmission::new(config.admission.clone()));
        background.spawn(webhook::serve_on(
            listener,
            tls,
            admission,
            stop.clone().cancelled_owned(),
        ));
    }
    let (leading_tx, leading_rx) = watch::channel(config.leader_election.is_none());
    if let Some(election) = config.leader_election.clone() {
        let (client, stop) = (client.clone(), stop.clone());
        background.spawn(async move {
            election
                .run(client, leading_tx, stop.cancelled_owned())
                .await
        });
    }
    {
        let (metrics, mut leading, stop) = (metrics.clone(), leading_rx.clone(), stop.clone());
        background.spawn(async move {
            loop {
                metrics.set_leader(*leading.borrow_and_update());
                tokio::select! {
                    changed = leading.changed() => if changed.is_err() { return },
                    () = stop.cancelled() => return,
                }
            }
        });
    }

    let ns = config.namespace.as_deref();
    let (job_reader, job_triggers) =
        triggers(api::<TitusJob>(&client, ns), watcher::Config::default());
    // One TitusTask watch feeds both controllers, after the shared cache has applied each event.
    let (task_reader, task_triggers) =
        triggers(api::<TitusTask>(&client, ns), watcher::Config::default());
    let (to_jobs, for_jobs) = mpsc::unbounded_channel::<TitusTask>();
    let (to_tasks, for_tasks) = mpsc::unbounded_channel::<TitusTask>();
    {
        let stop = stop.clone();
        let interval = config.job_trigger_interval;
        tokio::spawn(async move {
            tokio::pin!(task_triggers);
            let mut gate = JobTriggerGate::new(interval);
            let mut tick = tokio::time::interval((interval / 4).max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let item = tokio::select! {
                    item = task_triggers.next() => item,
                    _ = tick.tick() => {
                        for task in gate.due(Instant::now()) {
                            if to_jobs.send(task).is_err() {
                                return;
                            }
                        }
                        continue;
                    }
                    () = stop.cancelled() => return,
                };
                let task = match item {
                    Some(Ok(task)) => task,
                    Some(Err(error)) => {
                        tracing::warn!(%error, "TitusTask watch failed; retrying");
                        continue;
                    }
                    None => return,
                };
                // Unbounded: the hub never waits for one controller while the other starves.
                let wake_job = gate.offer(&task.spec.job_id, task.clone(), Instant::now());
                if wake_job.is_some_and(|t| to_jobs.send(t).is_err())
                    || to_tasks.send(task).is_err()
                {
                    return;
                }
            }
        });
    }
    let (pod_reader, pod_triggers) = triggers(
        api::<Pod>(&client, ns),
        watcher::Config::default().labels(labels::TASK_ID),
    );
    let nodes: Store<Node> =
        background_store(Api::all(client.clone()), watcher::Config::default(), &stop);
    let leases: Store<Lease> = background_store(
        Api::namespaced(client.clone(), NODE_LEASE_NAMESPACE),
        watcher::Config::default(),
        &stop,
    );
    let groups: Store<CapacityGroup> = background_store(
        api::<CapacityGroup>(&client, ns),
        watcher::Config::default(),
        &stop,
    );
    // Deciding about tasks from empty node or Lease caches would disconnect every task.
    let all_ready = async {
        let _ = futures::join!(
            nodes.wait_until_ready(),
            leases.wait_until_ready(),
            groups.wait_until_ready()
        );
    };
    tokio::select! {
        () = all_ready => {}
        () = stop.cancelled() => return Ok(()),
    }
    let _ = ready_tx.send(true);
    let caches = Caches {
        jobs: job_reader.clone(),
        tasks: task_reader.clone(),
        pods: pod_reader,
        nodes,
        leases,
        groups,
    };
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: REPORTER.into(),
            instance: Some(config.identity.clone()),
        },
    );
    let shared = Arc::new(Shared::new(
        client.clone(),
        config.clock.clone(),
        metrics.clone(),
        leading_rx.clone(),
        caches,
        recorder,
        config.job_limits.clone(),
        config.task_timeouts.clone(),
    ));
    let (wake_tx, wake_rx) = mpsc::channel::<ObjectRef<TitusTask>>(4096);
    background.spawn(crate::liveness::run(
        shared.clone(),
        wake_tx,
        config.liveness_tick,
        stop.clone(),
    ));
    let jobs = Controller::for_stream(job_triggers, job_reader)
        .with_config(
            ControllerConfig::default()
                .concurrency(config.job_concurrency)
                .debounce(config.job_debounce),
        )
        .owns_stream(unbounded_stream_of(for_jobs).map(Ok))
        .reconcile_all_on(leadership_gained(leading_rx.clone()))
        .graceful_shutdown_on(stop.clone().cancelled_owned())
        .run(
            crate::job::controller::reconcile,
            error_policy,
            shared.clone(),
        )
        .for_each(|_| futures::future::ready(()));
    let tasks = Controller::for_stream(unbounded_stream_of(for_tasks).map(Ok), task_reader)
        .with_config(ControllerConfig::default().concurrency(config.task_concurrency))
        .owns_stream(pod_triggers)
        .reconcile_on(tokio_stream_of(wake_rx))
        .reconcile_all_on(leadership_gained(leading_rx))
        .graceful_shutdown_on(stop.clone().cancelled_owned())
        .run(crate::task::controller::reconcile, error_policy, shared)
        .for_each(|_| futures::future::ready(()));
    tracing::info!(identity = %config.identity, namespace = ?config.namespace, "titus operator running");
    futures::join!(jobs, tasks);
    stop.cancel();
    // Let the election release its Lease and the servers close.
    while background.join_next().await.is_some() {}
    tracing::info!("titus operator stopped");
    Ok(())
}

/// An unbounded receiver as a stream.
fn unbounded_stream_of<T: Send + 'static>(
    rx: mpsc::UnboundedReceiver<T>,
) -> impl Stream<Item = T> + Send {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
}

/// A receiver as a stream.
fn tokio_stream_of<T: Send + 'static>(rx: mpsc::Receiver<T>) -> impl Stream<Item = T> + Send {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
}
