//! The bridge's event loop: framework events, watches of task Pods and virtual Nodes, and a
//! housekeeping tick, all handled by one task that owns the bridge's state (see the module
//! docs of [`super`] for what it does).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::launch::task_info;
use super::status::{is_terminal, pod_status, same_report};
use super::virtual_node::{
    self, HOSTNAME_ANNOTATION, Readiness, VIRTUAL_NODE_SELECTOR, node_object, node_status,
};
use super::{
    BridgeContext, FIELD_MANAGER, FRAMEWORK_ID_KEY, MesosBridgeConfig, POD_AGENT_ID_ANNOTATION,
    STATE_CONFIG_MAP,
};
use crate::kube::act::apply_config_map;
use crate::kube::index::NODE_LEASE_NAMESPACE;
use crate::kube::metrics::{SchedulerMetrics, StateLabel};
use crate::kube::pod::pod_resources;
use crate::kube::watch::{LIVE_PODS, forward};
use crate::mesos::framework::{
    FrameworkError, FrameworkEvent, HostOffers, MesosFramework, StatusUpdate,
};
use crate::mesos::types::{Id, TaskInfo};
use crate::model::Agent;
use crate::resources::Resources;

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

    /// Reads the held offers into the hosts and writes what changed.
    async fn refresh_offers(&mut self) {
        let offers = match self.framework.offers().await {
            Ok(offers) => offers,
            Err(error) => {
                tracing::warn!(%error, "cannot read held offers");
                return;
            }
        };
        let mut offered: HashSet<String> = HashSet::new();
        for HostOffers {
            host,
            agent_id,
            agent,
            ..
        } in offers
        {
            let Some(name) = virtual_node::node_name(&host) else {
                tracing::warn!(%host, "host name cannot be a node name; declining its offers");
                if let Err(error) = self.framework.decline(&host).await {
                    tracing::warn!(%host, %error, "decline failed");
                }
                continue;
            };
            let entry = self.hosts.entry(name.clone()).or_insert_with(|| Host {
                host: host.clone(),
                agent_id: None,
                agent: None,
                offered: None,
                lost: false,
                exists: false,
                metadata_written: false,
                written: None,
                last_seen: Instant::now(),
            });
            let changed_metadata = entry.agent_id.as_deref() != Some(agent_id.as_str())
                || entry
                    .agent
                    .as_ref()
                    .is_none_or(|a| !same_attributes(a, &agent));
            if changed_metadata {
                entry.metadata_written = false;
            }
            entry.host = host;
            entry.agent_id = Some(agent_id);
            entry.offered = Some(agent.allocatable);
            entry.agent = Some(agent);
            entry.lost = false;
            entry.last_seen = Instant::now();
            offered.insert(name);
        }
        for (name, host) in &mut self.hosts {
            if !offered.contains(name) {
                host.offered = None;
            }
        }
        self.sync_nodes().await;
    }

    // --- virtual nodes ---

    fn readiness(&self, host: &Host) -> Readiness {
        if !self.subscribed {
            Readiness::Disconnected
        } else if host.lost {
            Readiness::AgentLost
        } else {
            Readiness::Active
        }
    }

    /// What the Titus tasks launched on each virtual node hold.
    fn launched_by_node(&self) -> HashMap<String, Resources> {
        let mut out: HashMap<String, Resources> = HashMap::new();
        for pod in self.pods.values() {
            let (Some(node), Some(_)) = (node_of(pod), launched_agent(pod)) else {
                continue;
            };
            if is_terminal(pod.status.as_ref()) {
                continue;
            }
            if let Ok(r) = pod_resources(pod) {
                let sum = out.entry(node.clone()).or_default();
                *sum = sum.saturating_add(&r);
            }
        }
        out
    }

    /// Writes every virtual node whose metadata or status is not what it should be.
    async fn sync_nodes(&mut self) {
        let launched = self.launched_by_node();
        let pods_per_agent = self.config.framework.offer_mapping.pods_per_agent;
        let names: Vec<String> = self.hosts.keys().cloned().collect();
        for name in names {
            let Some(host) = self.hosts.get(&name) else {
                continue;
            };
            let readiness = self.readiness(host);
            let held = launched.get(&name).copied().unwrap_or_default();
            let desired = (
                virtual_node::allocatable(host.offered.as_ref(), &held, pods_per_agent),
                readiness,
            );
            let write_metadata = !host.exists || !host.metadata_written;
            if host.written == Some(desired) && !write_metadata {
                continue;
            }
            let agent = host.agent.clone();
            let agent_id = host.agent_id.clone().unwrap_or_default();
            let nodes: Api<Node> = Api::all(self.ctx.client.clone());
            if write_metadata {
                let Some(agent) = agent else {
                    // Known only from an earlier run: keep its metadata until it offers again.
                    if !host.exists {
                        continue;
                    }
                    self.write_status(&name, desired).await;
                    continue;
                };
                let node = node_object(&name, &agent, &agent_id);
                match nodes
                    .patch(
                        &name,
                        &PatchParams::apply(FIELD_MANAGER).force(),
                        &Patch::Apply(&node),
                    )
                    .await
                {
                    Ok(_) => {
                        if let Some(h) = self.hosts.get_mut(&name) {
                            h.exists = true;
                            h.metadata_written = true;
                            h.written = None;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(node = %name, %error, "cannot write virtual node");
                        continue;
                    }
                }
            }
            self.write_status(&name, desired).await;
        }
    }

    async fn write_status(&mut self, name: &str, desired: (Resources, Readiness)) {
        let nodes: Api<Node> = Api::all(self.ctx.client.clone());
        let status = node_status(&desired.0, desired.1, Timestamp::now());
        let patch = json!({"status": status});
        match nodes
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                if let Some(h) = self.hosts.get_mut(name) {
                    h.written = Some(desired);
                }
            }
            Err(error) => tracing::warn!(node = %name, %error, "cannot write virtual node status"),
        }
    }

    fn on_node(&mut self, event: Event<Node>) {
        match event {
            Event::Apply(node) | Event::InitApply(node) => {
                let Some(name) = node.metadata.name.clone() else {
                    return;
                };
                let host_name = node
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(HOSTNAME_ANNOTATION).cloned())
                    .unwrap_or_else(|| name.clone());
                let agent_id = node
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(virtual_node::AGENT_ID_ANNOTATION).cloned());
                let host = self.hosts.entry(name).or_insert_with(|| Host {
                    host: host_name,
                    agent_id,
                    agent: None,
                    offered: None,
                    lost: false,
                    exists: true,
                    metadata_written: true,
                    written: None,
                    last_seen: Instant::now(),
                });
                host.exists = true;
            }
            Event::Delete(node) => {
                if let Some(host) = node.metadata.name.and_then(|n| self.hosts.get_mut(&n)) {
                    host.exists = false;
                    host.written = None;
                }
            }
            Event::Init | Event::InitDone => {}
        }
    }

    async fn renew_leases(&mut self) {
        let leases: Api<Lease> = Api::namespaced(self.ctx.client.clone(), NODE_LEASE_NAMESPACE);
        let seconds = i32::try_from(self.config.node_lease_duration.as_secs()).unwrap_or(40);
        let active: Vec<String> = self
            .hosts
            .iter()
            .filter(|(_, h)| h.exists && self.readiness(h) == Readiness::Active)
            .map(|(n, _)| n.clone())
            .collect();
        for name in active {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(NODE_LEASE_NAMESPACE.to_string()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(name.clone()),
                    lease_duration_seconds: Some(seconds),
                    renew_time: Some(MicroTime(Timestamp::now())),
                    ..LeaseSpec::default()
                }),
            };
            let mut value = serde_json::to_value(&lease).unwrap_or_default();
            value["apiVersion"] = json!("coordination.k8s.io/v1");
            value["kind"] = json!("Lease");
            if let Err(error) = leases
                .patch(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(value),
                )
                .await
            {
                tracing::warn!(node = %name, %error, "cannot renew virtual node lease");
            }
        }
    }

    /// Deletes virtual nodes that have neither offers nor Pods for `virtual_node_gc_after`.
    async fn collect_garbage(&mut self) {
        let busy: HashSet<&String> = self.pods.values().filter_map(node_of).collect();
        let idle: Vec<String> = self
            .hosts
            .iter()
            .filter(|(name, h)| {
                h.offered.is_none()
                    && !busy.contains(name)
                    && h.last_seen.elapsed() >= self.config.virtual_node_gc_after
            })
            .map(|(n, _)| n.clone())
            .collect();
        let nodes: Api<Node> = Api::all(self.ctx.client.clone());
        let leases: Api<Lease> = Api::namespaced(self.ctx.client.clone(), NODE_LEASE_NAMESPACE);
        for name in idle {
            tracing::info!(node = %name, "deleting idle virtual node");
            let _ = nodes.delete(&name, &DeleteParams::default()).await;
            let _ = leases.delete(&name, &DeleteParams::default()).await;
            self.hosts.remove(&name);
        }
    }

    // --- pods ---

    async fn on_pod(&mut self, event: Event<Pod>) {
        match event {
            Event::Init => self.relisted_pods = Some(HashSet::new()),
            Event::InitApply(pod) => {
                if let Some(key) = pod_key(&pod) {
                    if let Some(seen) = &mut self.relisted_pods {
                        seen.insert(key.clone());
                    }
                    self.pod_changed(key, pod).await;
                }
            }
            Event::Apply(pod) => {
                if let Some(key) = pod_key(&pod) {
                    self.pod_changed(key, pod).await;
                }
            }
            Event::Delete(pod) => {
                if let Some(key) = pod_key(&pod) {
                    self.pod_gone(&key).await;
                }
            }
            Event::InitDone => {
                let seen = self.relisted_pods.take().unwrap_or_default();
                let gone: Vec<String> = self
                    .pods
                    .keys()
                    .filter(|k| !seen.contains(*k))
                    .cloned()
                    .collect();
                for key in gone {
                    self.pod_gone(&key).await;
                }
                if !self.pods_synced {
                    self.pods_synced = true;
                    self.reconcile_launched().await;
                }
            }
        }
    }

    fn on_virtual_node(&self, pod: &Pod) -> bool {
        node_of(pod).is_some_and(|n| self.hosts.contains_key(n))
    }

    async fn pod_changed(&mut self, key: String, pod: Pod) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if launched_agent(&pod).is_some() {
            self.tasks.insert(name, key.clone());
            self.waiting.remove(&key);
        } else if self.on_virtual_node(&pod)
            && pod.metadata.deletion_timestamp.is_none()
            && !is_terminal(pod.status.as_ref())
        {
            self.waiting.entry(key.clone()).or_insert_with(Instant::now);
            if let Some(host) = node_of(&pod).and_then(|n| self.hosts.get_mut(n)) {
                host.last_seen = Instant::now();
            }
        }
        let deleting = pod.metadata.deletion_timestamp.is_some();
        self.pods.insert(key.clone(), pod);
        if deleting {
            self.deleting(&key).await;
        }
    }

    /// A Pod that is gone (deleted, or finished and out of the watch).
    async fn pod_gone(&mut self, key: &str) {
        self.waiting.remove(key);
        self.kills.remove(key);
        let Some(pod) = self.pods.remove(key) else {
            return;
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        if launched_agent(&pod).is_some() && !is_terminal(pod.status.as_ref()) {
            // Deleted without waiting for its task (grace period 0): stop the task.
            self.kill(&name, launched_agent(&pod).cloned()).await;
        }
        self.tasks.remove(&name);
        self.sync_nodes().await;
    }

    /// A Pod being deleted: kill its task, or delete it at once when nothing runs.
    async fn deleting(&mut self, key: &str) {
        let Some(pod) = self.pods.get(key) else {
            return;
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        let agent = launched_agent(pod).cloned();
        if agent.is_none() || is_terminal(pod.status.as_ref()) {
            if agent.is_none() && !self.on_virtual_node(pod) {
                return;
            }
            let api = pods_api(&self.ctx, pod);
            self.waiting.remove(key);
            match api
                .delete(&name, &DeleteParams::default().grace_period(0))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(error) => tracing::warn!(pod = %key, %error, "cannot delete pod"),
            }
            return;
        }
        let due = self
            .kills
            .get(key)
            .is_none_or(|at| at.elapsed() >= self.config.kill_retry);
        if due {
            self.kills.insert(key.to_string(), Instant::now());
            self.kill(&name, agent).await;
        }
    }

    async fn kill(&self, task_id: &str, agent_id: Option<String>) {
        let mut outcome = self.framework.kill(task_id).await;
        if let Err(FrameworkError::UnknownTask { .. }) = outcome {
            let _ = self
                .framework
                .track_task(task_id, agent_id.as_deref())
                .await;
            outcome = self.framework.kill(task_id).await;
        }
        if let Err(error) = outcome {
            tracing::warn!(task = %task_id, %error, "KILL failed; retried later");
        }
    }

    /// After a (re)start or subscription: every Pod launched earlier is reconciled.
    async fn reconcile_launched(&mut self) {
        for pod in self.pods.values() {
            let Some(agent) = launched_agent(pod) else {
                continue;
            };
            if is_terminal(pod.status.as_ref()) {
                continue;
            }
            let name = pod.metadata.name.clone().unwrap_or_default();
            let _ = self.framework.track_task(&name, Some(agent)).await;
        }
        if self.subscribed
            && let Err(error) = self.framework.reconcile().await
        {
            tracing::warn!(%error, "reconciliation failed; the driver retries");
        }
    }

    // --- launches ---

    async fn try_launch(&mut self) {
        if !self.subscribed || self.waiting.is_empty() {
            return;
        }
        let mut by_node: BTreeMap<String, Vec<(String, Instant)>> = BTreeMap::new();
        for (key, since) in &self.waiting {
            if let Some(node) = self.pods.get(key).and_then(node_of) {
                by_node
                    .entry(node.clone())
                    .or_default()
                    .push((key.clone(), *since));
            }
        }
        for (node, pods) in by_node {
            let Some(host) = self.hosts.get(&node) else {
                continue;
            };
            let newest = pods.iter().map(|(_, s)| *s).max();
            let gathered = newest.is_some_and(|s| s.elapsed() >= self.config.launch_delay);
            let host_name = host.host.clone();
            if host.offered.is_some() && gathered && self.readiness(host) == Readiness::Active {
                let keys = pods.into_iter().map(|(k, _)| k).collect();
                self.launch(&node, keys).await;
                continue;
            }
            for (key, since) in pods {
                if since.elapsed() >= self.config.launch_timeout {
                    let message = format!(
                        "no Mesos offer for host {host_name} within {:?}",
                        self.config.launch_timeout
                    );
                    self.fail(&key, "TASK_LOST", &message).await;
                }
            }
        }
    }

    async fn launch(&mut self, node: &str, keys: Vec<String>) {
        let Some(host) = self.hosts.get(node) else {
            return;
        };
        let (host_name, offered) = (host.host.clone(), host.offered.unwrap_or_default());
        let agent_id = host.agent_id.clone().unwrap_or_default();
        let mut tasks: Vec<(String, TaskInfo)> = Vec::new();
        for key in keys {
            let Some(pod) = self.pods.get(&key) else {
                self.waiting.remove(&key);
                continue;
            };
            match task_info(pod, &offered) {
                Ok(task) => tasks.push((key, task)),
                Err(error) => {
                    let message = format!("cannot launch on Mesos: {error}");
                    self.fail(&key, "TASK_FAILED", &message).await;
                }
            }
        }
        let mut marked: Vec<(String, TaskInfo)> = Vec::new();
        for (key, task) in tasks {
            match self.annotate(&key, Some(&agent_id)).await {
                Ok(()) => marked.push((key, task)),
                Err(error) => {
                    tracing::warn!(pod = %key, %error, "cannot record the launch; not launched");
                    self.waiting.remove(&key);
                }
            }
        }
        if marked.is_empty() {
            return;
        }
        let infos: Vec<TaskInfo> = marked.iter().map(|(_, t)| t.clone()).collect();
        let outcome = self.framework.launch(&host_name, infos).await;
        SchedulerMetrics::count(&self.ctx.metrics.mesos_launches, outcome.is_ok());
        match outcome {
            Ok(()) => {
                tracing::info!(host = %host_name, tasks = marked.len(), "launched on Mesos");
                for (key, task) in &marked {
                    self.waiting.remove(key);
                    self.tasks.insert(task.task_id.value.clone(), key.clone());
                    if let Some(pod) = self.pods.get_mut(key) {
                        pod.metadata
                            .annotations
                            .get_or_insert_with(Default::default)
                            .insert(POD_AGENT_ID_ANNOTATION.to_string(), agent_id.clone());
                    }
                }
                if let Some(h) = self.hosts.get_mut(node) {
                    h.offered = None;
                }
                self.sync_nodes().await;
            }
            Err(
                error @ (FrameworkError::NoOffers { .. }
                | FrameworkError::NotSubscribed
                | FrameworkError::Stopped
                | FrameworkError::UnknownTask { .. }),
            ) => {
                tracing::info!(host = %host_name, %error, "not launched; waiting for offers");
                for (key, _) in &marked {
                    if let Err(error) = self.annotate(key, None).await {
                        tracing::warn!(pod = %key, %error, "cannot clear the launch record");
                    }
                }
            }
            Err(error @ FrameworkError::Status { .. }) => {
                let message = format!("launch refused by the Mesos master: {error}");
                for (key, _) in &marked {
                    self.fail(key, "TASK_LOST", &message).await;
                }
            }
            Err(error @ FrameworkError::Transport { .. }) => {
                // The master may have launched them: reconciliation will tell.
                tracing::warn!(host = %host_name, %error, "launch outcome unknown; reconciling");
                for (key, task) in &marked {
                    self.waiting.remove(key);
                    self.tasks.insert(task.task_id.value.clone(), key.clone());
                }
            }
        }
    }

    /// Sets or clears the launch record on a Pod.
    async fn annotate(&self, key: &str, agent_id: Option<&str>) -> Result<(), kube::Error> {
        let Some(pod) = self.pods.get(key) else {
            return Ok(());
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        let patch = json!({"metadata": {"annotations": {POD_AGENT_ID_ANNOTATION: agent_id}}});
        pods_api(&self.ctx, pod)
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
    }

    /// Fails a Pod that could not be launched, as Mesos would have reported it.
    async fn fail(&mut self, key: &str, reason: &str, message: &str) {
        self.waiting.remove(key);
        let Some(pod) = self.pods.get(key) else {
            return;
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        tracing::warn!(pod = %key, %reason, %message, "pod fails without running");
        let state = match reason {
            "TASK_FAILED" => crate::mesos::types::TaskState::TaskFailed,
            _ => crate::mesos::types::TaskState::TaskLost,
        };
        let update = StatusUpdate {
            task_id: name.clone(),
            agent_id: None,
            state,
            titus: None,
            reason: None,
            message: Some(message.to_string()),
            source: None,
            ack: None,
        };
        if let Some(status) = pod_status(&update, &image(pod), None, Timestamp::now()) {
            let patch = json!({"status": status});
            if let Err(error) = pods_api(&self.ctx, pod)
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::warn!(pod = %key, %error, "cannot write pod status");
            }
        }
    }

    // --- status updates ---

    async fn on_update(&mut self, update: StatusUpdate) {
        self.ctx
            .metrics
            .mesos_updates
            .get_or_create(&StateLabel {
                state: update.state.as_str().to_string(),
            })
            .inc();
        let key = self
            .tasks
            .get(&update.task_id)
            .cloned()
            .filter(|k| self.pods.contains_key(k));
        let Some(key) = key else {
            if !update.state.is_terminal() {
                tracing::warn!(task = %update.task_id, "update for a task no pod knows; killing it");
                self.kill(&update.task_id, update.agent_id.clone()).await;
            }
            self.acknowledge(&update).await;
            return;
        };
        let Some(pod) = self.pods.get(&key) else {
            return;
        };
        if is_terminal(pod.status.as_ref()) {
            if !update.state.is_terminal() {
                // Titus: a task already finished must not come back (TASK_LOST then RUNNING).
                self.kill(&update.task_id, update.agent_id.clone()).await;
            }
            self.acknowledge(&update).await;
            return;
        }
        let started = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0);
        let Some(desired) = pod_status(
            &update,
            &image(pod),
            started.or(Some(Timestamp::now())),
            Timestamp::now(),
        ) else {
            self.acknowledge(&update).await;
            return;
        };
        if same_report(pod.status.as_ref(), &desired) {
            self.acknowledge(&update).await;
            return;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api = pods_api(&self.ctx, pod);
        let patch = json!({"status": desired});
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(written) => {
                self.acknowledge(&update).await;
                let deleting = written.metadata.deletion_timestamp.is_some();
                self.pods.insert(key.clone(), written);
                if update.state.is_terminal() {
                    self.sync_nodes().await;
                    if deleting {
                        self.deleting(&key).await;
                    }
                }
            }
            Err(kube::Error::Api(s)) if s.code == 404 => self.acknowledge(&update).await,
            Err(error) => {
                // Not recorded: no ACK, so the agent sends the update again.
                tracing::warn!(pod = %key, %error, "cannot record task status");
            }
        }
    }

    async fn acknowledge(&self, update: &StatusUpdate) {
        if let Some(token) = update.ack.clone()
            && let Err(error) = self.framework.acknowledge(token).await
        {
            tracing::warn!(task = %update.task_id, %error, "ACKNOWLEDGE failed");
        }
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
