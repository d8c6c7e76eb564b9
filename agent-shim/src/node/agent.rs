//! One node's agent: an event loop that keeps the Pods bound to the node (fed by a watch) and, for
//! each Pod that changed, observes its container in the runtime, [`decide`]s and acts. Slow work
//! (pull and start, stop, wait for exit) runs in tasks that feed a `Reconcile` event back, so the
//! loop itself never blocks on a container.
//!
//! Recovery is not a special path: after a restart the watch delivers every Pod again, the
//! runtime still has the containers (labelled with the Pod uid), and deciding from those two
//! re-adopts running containers, reports exits that happened meanwhile, and never starts a task
//! whose Pod already shows a terminal phase. A container is treated as an orphan only after the
//! first complete list of Pods, so a restart never kills what it has not yet seen the Pod of.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::sync::mpsc;

use super::NodeError;
use super::decide::{Action, LocalView, PodView, decide};
use super::pod_spec::{container_spec, main_container};
use super::registration::{self, FIELD_MANAGER, NodeConfig};
use super::status::{StatusReport, TaskState, pod_status};
use crate::labels;
use crate::logs::{LogIndex, LogTarget};
use crate::runtime::{
    ContainerId, ContainerRuntime, ContainerState, LogPaths, RegistryAuth, RuntimeError,
};
use crate::titus_env::HostFacts;

/// Grace period when a Pod gives none (Titus's `killWaitSeconds` default is 600 s, but Pods
/// always carry `terminationGracePeriodSeconds`).
const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// Configuration of one node agent.
#[derive(Debug, Clone)]
pub struct NodeAgentConfig {
    /// The Node.
    pub node: NodeConfig,
    /// Where container logs go.
    pub log_dir: PathBuf,
    /// Host facts for the container environment.
    pub host: HostFacts,
    /// OCI runtime name reported in `TITUS_OCI_RUNTIME`.
    pub oci_runtime: String,
    /// How often every Pod and container is reconciled even without events.
    pub resync: Duration,
}

/// Input of the agent's loop.
#[derive(Debug)]
pub enum AgentEvent {
    /// A Pod bound to the node was created or changed.
    PodChanged(Box<Pod>),
    /// A Pod bound to the node is gone.
    PodDeleted {
        /// Its uid.
        uid: String,
    },
    /// The watch restarts: the Pods that follow (until `RelistDone`) are all there are.
    RelistStarted,
    /// A Pod of the relist.
    RelistPod(Box<Pod>),
    /// The relist is complete.
    RelistDone,
    /// Look at this Pod again (work finished).
    Reconcile {
        /// Pod uid.
        uid: String,
    },
    /// Look at every Pod and every container again.
    ResyncAll,
    /// Sent by the agent's own start task: the start ended, with the error if it failed.
    StartFinished {
        /// Pod uid.
        uid: String,
        /// Why the task could not start.
        error: Option<String>,
    },
    /// Sent by the agent's own stop task: the stop ended.
    StopFinished {
        /// Pod uid.
        uid: String,
    },
}

/// What the agent remembers about a Pod's container between reconciles.
#[derive(Debug, Default, Clone)]
struct Flags {
    start_error: Option<String>,
    starting: bool,
    stopping: bool,
    watching: bool,
}

/// A node agent over runtime `R`.
pub struct NodeAgent<R: ContainerRuntime> {
    pub(super) client: Client,
    pub(super) runtime: Arc<R>,
    pub(super) config: NodeAgentConfig,
    events: mpsc::UnboundedSender<AgentEvent>,
    /// The loop, heartbeat and resync tasks, stopped by [`NodeAgent::shutdown`].
    tasks: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
    /// When the agent registered (the Ready condition's transition time).
    since: Timestamp,
    /// Where the log endpoint finds each Pod's logs.
    logs: Arc<LogIndex>,
}

impl<R: ContainerRuntime> std::fmt::Debug for NodeAgent<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeAgent")
            .field("node", &self.config.node.name)
            .finish_non_exhaustive()
    }
}

/// The loop's state.
struct Loop<R: ContainerRuntime> {
    agent: Arc<NodeAgent<R>>,
    pods: HashMap<String, Pod>,
    flags: HashMap<String, Flags>,
    relist: Option<HashMap<String, Pod>>,
    /// The first complete list of the node's Pods has arrived. Until then a container without a
    /// known Pod is not an orphan: its Pod may simply not have been listed yet.
    synced: bool,
}

impl<R: ContainerRuntime> NodeAgent<R> {
    /// Registers the node and starts the agent's loop and heartbeat; Pods arrive through
    /// [`NodeAgent::send`] (see [`NodeAgent::watch_pods`] for a single node).
    ///
    /// # Errors
    /// [`NodeError::Api`] when the Node cannot be registered.
    pub async fn start(
        client: Client,
        runtime: Arc<R>,
        config: NodeAgentConfig,
        logs: Arc<LogIndex>,
    ) -> Result<Arc<Self>, NodeError> {
        let since = Timestamp::now();
        registration::register(&client, &config.node, since).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let agent = Arc::new(Self {
            client,
            runtime,
            config,
            events: tx,
            tasks: Default::default(),
            since,
            logs,
        });
        let state = Loop {
            agent: agent.clone(),
            pods: HashMap::new(),
            flags: HashMap::new(),
            relist: None,
            synced: false,
        };
        let handles = [
            tokio::spawn(state.run(rx)).abort_handle(),
            tokio::spawn(heartbeats(agent.clone())).abort_handle(),
            tokio::spawn(resyncs(agent.clone())).abort_handle(),
        ];
        if let Ok(mut tasks) = agent.tasks.lock() {
            tasks.extend(handles);
        }
        Ok(agent)
    }

    /// Stops the agent's loop, heartbeat and resync (containers keep running: a new agent
    /// re-adopts them).
    pub fn shutdown(&self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
    }

    /// The runtime the agent drives.
    pub fn runtime(&self) -> &Arc<R> {
        &self.runtime
    }

    /// The node's name.
    pub fn node_name(&self) -> &str {
        &self.config.node.name
    }

    /// Feeds an event to the loop.
    ///
    /// # Errors
    /// [`NodeError::Stopped`] when the loop has ended.
    pub fn send(&self, event: AgentEvent) -> Result<(), NodeError> {
        self.events.send(event).map_err(|_| NodeError::Stopped {
            node: self.config.node.name.clone(),
        })
    }

    /// Watches the Pods bound to this node and feeds them to the loop until the watch ends.
    pub async fn watch_pods(self: Arc<Self>) {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let config =
            watcher::Config::default().fields(&format!("spec.nodeName={}", self.config.node.name));
        let mut stream = watcher(pods, config).boxed();
        while let Some(event) = stream.next().await {
            let sent = match event {
                Ok(event) => self.send(to_agent_event(event)),
                Err(error) => {
                    tracing::warn!(node = %self.config.node.name, %error, "pod watch error; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Ok(())
                }
            };
            if sent.is_err() {
                return;
            }
        }
    }
}

/// A watcher event as an agent event.
pub fn to_agent_event(event: watcher::Event<Pod>) -> AgentEvent {
    match event {
        watcher::Event::Apply(pod) => AgentEvent::PodChanged(Box::new(pod)),
        watcher::Event::Delete(pod) => AgentEvent::PodDeleted {
            uid: pod.metadata.uid.unwrap_or_default(),
        },
        watcher::Event::Init => AgentEvent::RelistStarted,
        watcher::Event::InitApply(pod) => AgentEvent::RelistPod(Box::new(pod)),
        watcher::Event::InitDone => AgentEvent::RelistDone,
    }
}

/// Renews the Lease every heartbeat interval and writes the Node status every status interval
/// (like the kubelet: the Lease is the cheap liveness signal, the Node status changes rarely).
async fn heartbeats<R: ContainerRuntime>(agent: Arc<NodeAgent<R>>) {
    let node = &agent.config.node;
    let mut lease_tick = tokio::time::interval(node.heartbeat_interval);
    let mut status_tick = tokio::time::interval(node.status_interval);
    lease_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Both were just written by the registration.
    lease_tick.tick().await;
    status_tick.tick().await;
    loop {
        let result = tokio::select! {
            _ = lease_tick.tick() => {
                registration::renew_lease(&agent.client, node, Timestamp::now()).await
            }
            _ = status_tick.tick() => {
                registration::report_node_status(&agent.client, node, agent.since, Timestamp::now())
                    .await
            }
        };
        if agent.events.is_closed() {
            return;
        }
        if let Err(error) = result {
            tracing::warn!(node = %node.name, %error, "heartbeat failed");
        }
    }
}

async fn resyncs<R: ContainerRuntime>(agent: Arc<NodeAgent<R>>) {
    let mut tick = tokio::time::interval(agent.config.resync);
    loop {
        tick.tick().await;
        if agent.send(AgentEvent::ResyncAll).is_err() {
            return;
        }
    }
}

/// Whether `known` is a later version of the Pod than `incoming` (resource versions compared as
/// numbers when both are numbers, as with etcd and the embedded API server).
fn newer(known: &Pod, incoming: &Pod) -> bool {
    let version = |p: &Pod| {
        p.metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
    };
    matches!((version(known), version(incoming)), (Some(k), Some(i)) if k > i)
}

fn uid_of(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn grace_of(pod: &Pod) -> Duration {
    let seconds = pod.metadata.deletion_grace_period_seconds.or_else(|| {
        pod.spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
    });
    seconds
        .map(|s| Duration::from_secs(s.max(0) as u64))
        .unwrap_or(DEFAULT_GRACE)
}

/// The user-facing message of a failed start.
pub fn start_error_message(error: &RuntimeError) -> String {
    error.to_string()
}

impl<R: ContainerRuntime> Loop<R> {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<AgentEvent>) {
        while let Some(event) = rx.recv().await {
            match event {
                AgentEvent::PodChanged(pod) => {
                    let uid = uid_of(&pod);
                    if self.pods.get(&uid).is_some_and(|known| newer(known, &pod)) {
                        // An event from before our own status write: the write wins.
                        continue;
                    }
                    self.pods.insert(uid.clone(), *pod);
                    self.reconcile(&uid).await;
                }
                AgentEvent::PodDeleted { uid } => {
                    self.pods.remove(&uid);
                    self.reconcile(&uid).await;
                }
                AgentEvent::RelistStarted => self.relist = Some(HashMap::new()),
                AgentEvent::RelistPod(pod) => {
                    if let Some(relist) = self.relist.as_mut() {
                        relist.insert(uid_of(&pod), *pod);
                    }
                }
                AgentEvent::RelistDone => {
                    if let Some(relist) = self.relist.take() {
                        self.pods = relist;
                    }
                    self.synced = true;
                    self.resync_all().await;
                }
                AgentEvent::Reconcile { uid } => self.reconcile(&uid).await,
                AgentEvent::ResyncAll => self.resync_all().await,
                AgentEvent::StartFinished { uid, error } => {
                    let flags = self.flags.entry(uid.clone()).or_default();
                    flags.starting = false;
                    if let Some(error) = error {
                        tracing::info!(pod_uid = %uid, %error, "task failed to start");
                        flags.start_error = Some(error);
                    }
                    self.reconcile(&uid).await;
                }
                AgentEvent::StopFinished { uid } => {
                    self.flags.entry(uid.clone()).or_default().stopping = false;
                    self.reconcile(&uid).await;
                }
            }
        }
    }

    /// Every known Pod and every container of the runtime (orphans included).
    async fn resync_all(&mut self) {
        let mut uids: HashSet<String> = self.pods.keys().cloned().collect();
        match self.agent.runtime.list().await {
            Ok(containers) => uids.extend(
                containers
                    .into_iter()
                    .filter_map(|c| c.labels.get(labels::POD_UID).cloned()),
            ),
            Err(error) => {
                tracing::warn!(node = %self.agent.config.node.name, %error, "listing containers failed")
            }
        }
        for uid in uids {
            self.reconcile(&uid).await;
        }
    }

    async fn reconcile(&mut self, uid: &str) {
        if !self.synced && !self.pods.contains_key(uid) {
            return;
        }
        let Ok(id) = ContainerId::new(uid) else {
            tracing::warn!(uid, "pod uid is not a valid container id");
            return;
        };
        let container = match self.agent.runtime.status(&id).await {
            Ok(state) => Some(state),
            Err(RuntimeError::ContainerNotFound { .. }) => None,
            Err(error) => {
                tracing::warn!(container = %id, %error, "container status unavailable");
                return;
            }
        };
        let flags = self.flags.entry(uid.to_owned()).or_default().clone();
        let view = self.pods.get(uid).map(|pod| PodView {
            deleting: pod.metadata.deletion_timestamp.is_some(),
            grace: grace_of(pod),
            reported: pod.status.clone(),
        });
        if matches!(container, Some(ContainerState::Running { .. })) && !flags.watching {
            self.watch_exit(uid, &id);
        }
        self.index_logs(uid, &id, container.as_ref(), flags.start_error.is_some());
        let local = LocalView {
            container,
            start_error: flags.start_error.clone(),
            stopping: flags.stopping,
            starting: flags.starting,
        };
        for action in decide(view.as_ref(), &local) {
            if let Err(error) = self.act(uid, &id, action).await {
                tracing::warn!(pod_uid = uid, %error, "action failed; retried at the next resync");
                return;
            }
        }
    }

    /// Tells the log endpoint where this Pod's logs are and whether more can come.
    fn index_logs(
        &self,
        uid: &str,
        id: &ContainerId,
        container: Option<&ContainerState>,
        start_failed: bool,
    ) {
        let Some(pod) = self.pods.get(uid) else {
            self.agent.logs.remove_uid(uid);
            return;
        };
        let finished = match container {
            Some(ContainerState::Exited(_)) => true,
            Some(ContainerState::Running { .. } | ContainerState::Created) => false,
            None => {
                start_failed
                    || matches!(
                        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                        Some("Succeeded" | "Failed")
                    )
            }
        };
        self.agent.logs.upsert(LogTarget {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            pod: pod.metadata.name.clone().unwrap_or_default(),
            uid: uid.to_owned(),
            container: main_container(pod)
                .map(|c| c.name.clone())
                .unwrap_or_default(),
            paths: LogPaths::in_dir(&self.agent.config.log_dir, id),
            finished,
        });
    }

    fn watch_exit(&mut self, uid: &str, id: &ContainerId) {
        self.flags.entry(uid.to_owned()).or_default().watching = true;
        let agent = self.agent.clone();
        let (uid, id) = (uid.to_owned(), id.clone());
        tokio::spawn(async move {
            if let Err(error) = agent.runtime.wait(&id).await {
                tracing::warn!(container = %id, %error, "waiting for exit failed");
            }
            let _ = agent.send(AgentEvent::Reconcile { uid });
        });
    }

    async fn act(&mut self, uid: &str, id: &ContainerId, action: Action) -> Result<(), NodeError> {
        match action {
            Action::Start => self.start(uid),
            Action::Stop { grace } => {
                self.flags.entry(uid.to_owned()).or_default().stopping = true;
                let agent = self.agent.clone();
                let (uid, id) = (uid.to_owned(), id.clone());
                tokio::spawn(async move {
                    if let Err(error) = agent.runtime.stop(&id, grace).await {
                        tracing::warn!(container = %id, %error, "stop failed");
                    }
                    let _ = agent.send(AgentEvent::StopFinished { uid });
                });
            }
            Action::Report(state) => self.report(uid, id, state).await?,
            Action::RemoveContainer => {
                if let Err(error) = self.agent.runtime.remove(id).await {
                    tracing::warn!(container = %id, %error, "remove failed");
                }
                if !self.pods.contains_key(uid) {
                    self.flags.remove(uid);
                }
            }
            Action::DeletePod => self.delete_pod(uid).await?,
        }
        Ok(())
    }

    fn start(&mut self, uid: &str) {
        let Some(pod) = self.pods.get(uid).cloned() else {
            return;
        };
        let flags = self.flags.entry(uid.to_owned()).or_default();
        flags.starting = true;
        let agent = self.agent.clone();
        let uid = uid.to_owned();
        tokio::spawn(async move {
            let error = start_pod(&agent, &pod).await.err();
            let _ = agent.send(AgentEvent::StartFinished { uid, error });
        });
    }

    async fn report(
        &mut self,
        uid: &str,
        id: &ContainerId,
        state: TaskState,
    ) -> Result<(), NodeError> {
        let Some(pod) = self.pods.get_mut(uid) else {
            return Ok(());
        };
        let image = main_container(pod)
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        let report = StatusReport {
            image: &image,
            container_id: &format!("containerd://{id}"),
            host_ip: &self.agent.config.node.internal_ip.to_string(),
            previous: pod.status.as_ref(),
            now: Timestamp::now(),
        };
        let status = pod_status(&state, &report);
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.agent.client.clone(), &namespace);
        let patch = serde_json::json!({ "status": status });
        let written = api
            .patch_status(
                &name,
                &PatchParams::apply(FIELD_MANAGER),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(|source| NodeError::Api {
                action: "reporting status of pod",
                name,
                source,
            })?;
        // Keep the server's version (a later stale watch event is recognised by it).
        pod.status = written.status.or(Some(status));
        pod.metadata.resource_version = written.metadata.resource_version;
        Ok(())
    }

    async fn delete_pod(&mut self, uid: &str) -> Result<(), NodeError> {
        let Some(pod) = self.pods.get(uid) else {
            return Ok(());
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.agent.client.clone(), &namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_owned()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(source) => Err(NodeError::Api {
                action: "deleting pod",
                name,
                source,
            }),
        }
    }
}

/// Whether the image must come from its registry, by Kubernetes' `imagePullPolicy` rules:
/// `Always` pulls, `Never` never does, `IfNotPresent` pulls only what is missing; without a
/// policy, `:latest` and untagged references are pulled every time.
fn must_pull(container: &k8s_openapi::api::core::v1::Container, present: bool) -> Option<bool> {
    let image = container.image.as_deref().unwrap_or_default();
    let by_digest = image.contains('@');
    let tag = image
        .rsplit_once('/')
        .map_or(image, |(_, last)| last)
        .split_once(':')
        .map(|(_, tag)| tag);
    let policy = container.image_pull_policy.as_deref().unwrap_or(
        if by_digest || tag.is_some_and(|t| t != "latest") {
            "IfNotPresent"
        } else {
            "Always"
        },
    );
    match policy {
        "Always" => Some(true),
        "Never" if present => Some(false),
        "Never" => None,
        _ => Some(!present),
    }
}

/// Gets the image (by the pull policy) and creates and starts the Pod's container.
async fn start_pod<R: ContainerRuntime>(agent: &NodeAgent<R>, pod: &Pod) -> Result<(), String> {
    let container = main_container(pod).ok_or("pod has no containers")?;
    let image = container.image.clone().ok_or("pod has no image")?;
    let present = agent
        .runtime
        .present(&image)
        .await
        .map_err(|e| start_error_message(&e))?;
    let info = match (must_pull(container, present.is_some()), present) {
        (Some(false), Some(info)) => info,
        (Some(_), _) => agent
            .runtime
            .pull(&image, &RegistryAuth::Anonymous)
            .await
            .map_err(|e| start_error_message(&e))?,
        (None, _) => {
            return Err(format!(
                "image {image} is not present on this node and imagePullPolicy is Never"
            ));
        }
    };
    let spec = container_spec(
        pod,
        &info.config,
        &agent.config.host,
        &agent.config.log_dir,
        &agent.config.oci_runtime,
    )
    .map_err(|e| e.to_string())?;
    agent
        .runtime
        .create_and_start(&spec)
        .await
        .map_err(|e| start_error_message(&e))?;
    // Report Running as soon as it is true, not at the next resync.
    if let Err(error) = agent.runtime.wait_started(&spec.id).await {
        tracing::warn!(container = %spec.id, %error, "waiting for the start failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Container;

    use super::must_pull;

    #[test]
    fn the_pull_policy_decides_like_kubernetes() {
        let container = |image: &str, policy: Option<&str>| Container {
            name: "main".into(),
            image: Some(image.into()),
            image_pull_policy: policy.map(str::to_owned),
            ..Container::default()
        };
        let cases = [
            ("r/app:1", None, true, Some(false)),
            ("r/app:1", None, false, Some(true)),
            ("r/app:latest", None, true, Some(true)),
            ("r/app", None, true, Some(true)),
            ("r/app@sha256:ab", None, true, Some(false)),
            ("localhost:5000/app", None, true, Some(true)),
            ("r/app:1", Some("Always"), true, Some(true)),
            ("r/app:1", Some("Never"), true, Some(false)),
            ("r/app:1", Some("Never"), false, None),
            ("r/app:latest", Some("IfNotPresent"), true, Some(false)),
        ];
        for (image, policy, present, want) in cases {
            assert_eq!(
                must_pull(&container(image, policy), present),
                want,
                "{image} {policy:?} present={present}"
            );
        }
    }
}
