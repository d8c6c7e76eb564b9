//! The bridge's event loop: framework events, watches of task Pods and virtual Nodes, and a
//! housekeeping tick, all handled by one task that owns the bridge's state (see the module
//! docs of [`super`] for what it does).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::virtual_node::{Readiness, VIRTUAL_NODE_SELECTOR};
use super::{
    BridgeContext, FIELD_MANAGER, FRAMEWORK_ID_KEY, MesosBridgeConfig, POD_AGENT_ID_ANNOTATION,
    STATE_CONFIG_MAP,
};
use crate::kube::act::apply_config_map;
use crate::kube::watch::{LIVE_PODS, forward};
use crate::mesos::framework::{FrameworkEvent, MesosFramework};
use crate::mesos::types::Id;
use crate::model::Agent;
use crate::resources::Resources;

mod nodes;
mod tasks;

/// What the bridge watches in Kubernetes.
enum KubeEvent {
    Pod(Box<Event<Pod>>),
    Node(Box<Event<Node>>),
}

/// One Mesos agent and its virtual node.
#[derive(Debug)]
struct Host {
    /// Mesos host name.
    host: String,
    /// Mesos agent id, once known.
    agent_id: Option<String>,
    /// The agent as its offers describe it (attributes), once offered.
    agent: Option<Agent>,
    /// What the held offers give.
    offered: Option<Resources>,
    lost: bool,
    /// The Node object exists.
    exists: bool,
    /// Metadata written since the last offers changed it.
    metadata_written: bool,
    /// Status last written.
    written: Option<(Resources, Readiness)>,
    /// Last offer or Pod seen.
    last_seen: Instant,
}

struct Bridge {
    config: MesosBridgeConfig,
    ctx: BridgeContext,
    framework: MesosFramework,
    subscribed: bool,
    hosts: BTreeMap<String, Host>,
    pods: HashMap<String, Pod>,
    /// Pod name (Mesos task id) → Pod key.
    tasks: HashMap<String, String>,
    /// Pods bound to a virtual node and not launched: when first seen.
    waiting: HashMap<String, Instant>,
    /// Deleted Pods: when KILL was last sent.
    kills: HashMap<String, Instant>,
    pods_synced: bool,
    relisted_pods: Option<HashSet<String>>,
    last_lease_renewal: Option<Instant>,
}

/// Runs the bridge until `cancel`.
pub(super) async fn run(config: MesosBridgeConfig, ctx: BridgeContext, cancel: CancellationToken) {
    let mut framework_config = config.framework.clone();
    match read_framework_id(&ctx).await {
        Ok(Some(id)) => framework_config.framework_info.id = Some(Id::new(id)),
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(%error, "cannot read the Mesos framework id; not subscribing yet");
            return;
        }
    }
    let (framework, mut framework_events) = MesosFramework::start(framework_config);
    let (kube_tx, mut kube_events) = mpsc::channel(1024);
    let pods: Api<Pod> = match &ctx.watch_namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let fields = format!("spec.schedulerName={},{LIVE_PODS}", ctx.scheduler_name);
    let watches = [
        forward(
            "mesos task pods",
            pods,
            watcher::Config::default().fields(&fields),
            kube_tx.clone(),
            |e| KubeEvent::Pod(Box::new(e)),
        ),
        forward(
            "mesos virtual nodes",
            Api::<Node>::all(ctx.client.clone()),
            watcher::Config::default().labels(VIRTUAL_NODE_SELECTOR),
            kube_tx,
            |e| KubeEvent::Node(Box::new(e)),
        ),
    ];
    let mut bridge = Bridge {
        config,
        ctx,
        framework,
        subscribed: false,
        hosts: BTreeMap::new(),
        pods: HashMap::new(),
        tasks: HashMap::new(),
        waiting: HashMap::new(),
        kills: HashMap::new(),
        pods_synced: false,
        relisted_pods: None,
        last_lease_renewal: None,
    };
    let mut tick = tokio::time::interval(bridge.config.housekeeping_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            event = framework_events.recv() => match event {
                Some(event) => bridge.on_framework(event).await,
                None => break,
            },
            event = kube_events.recv() => match event {
                Some(KubeEvent::Pod(e)) => bridge.on_pod(*e).await,
                Some(KubeEvent::Node(e)) => bridge.on_node(*e),
                None => break,
            },
            _ = tick.tick() => bridge.housekeeping().await,
        }
    }
    for watch in watches {
        watch.abort();
    }
    bridge.subscribed = false;
    bridge.sync_nodes().await;
}

async fn read_framework_id(ctx: &BridgeContext) -> Result<Option<String>, kube::Error> {
    let maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    Ok(maps
        .get_opt(STATE_CONFIG_MAP)
        .await?
        .and_then(|m| m.data)
        .and_then(|d| d.get(FRAMEWORK_ID_KEY).cloned())
        .filter(|id| !id.is_empty()))
}

fn pod_key(pod: &Pod) -> Option<String> {
    Some(format!(
        "{}/{}",
        pod.metadata.namespace.as_ref()?,
        pod.metadata.name.as_ref()?
    ))
}

fn launched_agent(pod: &Pod) -> Option<&String> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_AGENT_ID_ANNOTATION))
}

fn node_of(pod: &Pod) -> Option<&String> {
    pod.spec.as_ref().and_then(|s| s.node_name.as_ref())
}

fn pods_api(ctx: &BridgeContext, pod: &Pod) -> Api<Pod> {
    Api::namespaced(
        ctx.client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
    )
}

impl Bridge {
    // --- framework events ---

    async fn on_framework(&mut self, event: FrameworkEvent) {
        match event {
            FrameworkEvent::Subscribed { framework_id } => {
                tracing::info!(%framework_id, "subscribed to the Mesos master");
                self.subscribed = true;
                for host in self.hosts.values_mut() {
                    host.lost = false;
                }
                if let Err(error) = self.save_framework_id(&framework_id).await {
                    tracing::warn!(%error, "cannot record the Mesos framework id");
                }
                self.refresh_offers().await;
                if self.pods_synced {
                    self.reconcile_launched().await;
                }
            }
            FrameworkEvent::OffersChanged { .. } => {
                self.refresh_offers().await;
                self.try_launch().await;
            }
            FrameworkEvent::TaskStatus(update) => self.on_update(update).await,
            FrameworkEvent::AgentLost { agent_id } => {
                for host in self.hosts.values_mut() {
                    if host.agent_id.as_deref() == Some(agent_id.as_str()) {
                        host.lost = true;
                    }
                }
                self.refresh_offers().await;
            }
            FrameworkEvent::Error { message } => {
                tracing::warn!(%message, "the Mesos master sent ERROR");
            }
            FrameworkEvent::Disconnected { reason } => {
                tracing::warn!(%reason, "disconnected from the Mesos master");
                self.subscribed = false;
                for host in self.hosts.values_mut() {
                    host.offered = None;
                }
                self.sync_nodes().await;
            }
        }
    }

    async fn save_framework_id(&self, framework_id: &str) -> Result<(), kube::Error> {
        apply_config_map(
            &self.ctx.client,
            &self.ctx.namespace,
            STATE_CONFIG_MAP,
            FIELD_MANAGER,
            FRAMEWORK_ID_KEY,
            framework_id,
        )
        .await
    }

    // --- housekeeping ---

    async fn housekeeping(&mut self) {
        self.try_launch().await;
        let deleting: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, p)| p.metadata.deletion_timestamp.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        for key in deleting {
            self.deleting(&key).await;
        }
        let due = self
            .last_lease_renewal
            .is_none_or(|at| at.elapsed() >= self.config.node_lease_interval);
        if due && self.subscribed {
            self.last_lease_renewal = Some(Instant::now());
            self.renew_leases().await;
            self.collect_garbage().await;
        }
        self.sync_nodes().await;
    }
}

fn image(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

fn same_attributes(a: &Agent, b: &Agent) -> bool {
    a.zone == b.zone
        && a.instance_type == b.instance_type
        && a.instance_group == b.instance_group
        && a.machine_id == b.machine_id
        && a.cpu_model == b.cpu_model
        && a.tier == b.tier
        && a.attributes == b.attributes
}
