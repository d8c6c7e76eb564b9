//! An in-process embedded API server, node agents started on it (with their log endpoint), Pods
//! created bound to a node the way the scheduler binds them, and waits on what the API shows.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams, PostParams};
use kube::runtime::watcher;
use titus_agent_shim::ContainerRuntime;
use titus_agent_shim::logs::{self, LogIndex};
use titus_agent_shim::node::{NodeAgent, NodeAgentConfig, NodeCapacity, NodeConfig};
use titus_agent_shim::titus_env::HostFacts;
use titus_apiserver::RunningApiServer;

/// The embedded API server, started in this process.
pub struct Cluster {
    pub client: kube::Client,
    pub server: RunningApiServer,
}

impl Cluster {
    pub async fn start() -> anyhow::Result<Self> {
        let (server, client) = titus_agent_shim::testsupport::api_server().await?;
        Ok(Self { client, server })
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    /// Creates `pod` as it is (bound when it names a node).
    pub async fn create(&self, pod: Pod) -> anyhow::Result<Pod> {
        Ok(self.pods().create(&PostParams::default(), &pod).await?)
    }

    /// The Pod's logs through the API server's `log` subresource.
    pub async fn logs(&self, name: &str) -> anyhow::Result<String> {
        Ok(self.pods().logs(name, &LogParams::default()).await?)
    }

    /// Waits (at most `limit`) until the Pod satisfies `done`, and returns it.
    pub async fn wait_pod(
        &self,
        name: &str,
        what: &str,
        limit: Duration,
        done: impl Fn(&Pod) -> bool,
    ) -> anyhow::Result<Pod> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(pod) = self.pods().get_opt(name).await?
                && done(&pod)
            {
                return Ok(pod);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "pod {name}: not {what} after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until the Pod has the phase (and returns it).
    pub async fn wait_phase(&self, name: &str, phase: &str) -> anyhow::Result<Pod> {
        self.wait_pod(name, phase, Duration::from_secs(60), |p| {
            phase_of(p) == phase
        })
        .await
    }

    /// Waits until the Pod is gone.
    pub async fn wait_gone(&self, name: &str, limit: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        while self.pods().get_opt(name).await?.is_some() {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "pod {name} still there after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(())
    }

    /// Records every distinct Titus reason (`status.reason`) the Pod shows, in order.
    pub fn history(&self, name: &str) -> History {
        let reasons = Arc::new(Mutex::new(Vec::<String>::new()));
        let api = self.pods();
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let sink = reasons.clone();
        let task = tokio::spawn(async move {
            let mut events = watcher(api, config).boxed();
            while let Some(event) = events.next().await {
                // A DELETED event carries the Pod's last state too.
                let pod = match event {
                    Ok(
                        watcher::Event::Apply(p)
                        | watcher::Event::InitApply(p)
                        | watcher::Event::Delete(p),
                    ) => p,
                    _ => continue,
                };
                if let Some(reason) = pod.status.and_then(|s| s.reason)
                    && let Ok(mut seen) = sink.lock()
                    && seen.last() != Some(&reason)
                {
                    seen.push(reason);
                }
            }
        });
        History { reasons, task }
    }

    /// Names of the registered Nodes.
    pub async fn node_names(&self) -> anyhow::Result<Vec<String>> {
        let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(self.client.clone());
        Ok(nodes
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect())
    }
}

/// Reasons a Pod went through.
pub struct History {
    reasons: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl History {
    pub fn reasons(&self) -> Vec<String> {
        self.reasons.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Waits (at most 20 s) until the last reason seen is `reason`, and returns them all.
    pub async fn until_last(&self, reason: &str) -> anyhow::Result<Vec<String>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let reasons = self.reasons();
            if reasons.last().map(String::as_str) == Some(reason) {
                return Ok(reasons);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the pod never showed {reason}; it showed {reasons:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for History {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn phase_of(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

/// The main container's terminated state.
pub fn terminated(pod: &Pod) -> Option<k8s_openapi::api::core::v1::ContainerStateTerminated> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()?
        .terminated
        .clone()
}

/// A node agent on the cluster with its log endpoint; stopped (containers left alone) on drop.
pub struct Node<R: ContainerRuntime> {
    pub agent: Arc<NodeAgent<R>>,
    port: u16,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl<R: ContainerRuntime> Node<R> {
    pub async fn start(
        cluster: &Cluster,
        runtime: Arc<R>,
        name: &str,
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let capacity = NodeCapacity {
            cpu: 4.0,
            memory_mb: 8192,
            disk_mb: 10_000,
            network_mbps: 1000,
            gpu: 0,
            pods: 110,
        };
        let mut node = NodeConfig::named(name, capacity);
        let listener_port = listener.local_addr()?.port();
        node.daemon_port = listener_port;
        let config = NodeAgentConfig {
            node,
            log_dir: log_dir.to_owned(),
            host: HostFacts::default(),
            oci_runtime: "runc".into(),
            resync: Duration::from_secs(5),
        };
        let index = Arc::new(LogIndex::default());
        let agent = NodeAgent::start(cluster.client.clone(), runtime, config, index.clone())
            .await
            .context("starting the node agent")?;
        let token = cluster.server.credentials.token.clone();
        let tasks = vec![
            tokio::spawn(agent.clone().watch_pods()),
            tokio::spawn(async move {
                let _ = logs::serve(listener, index, Some(token), std::future::pending()).await;
            }),
        ];
        Ok(Self {
            agent,
            port: listener_port,
            tasks,
        })
    }

    /// The port of the node's log endpoint.
    pub fn agent_port(&self) -> u16 {
        self.port
    }
}

impl<R: ContainerRuntime> Drop for Node<R> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.agent.shutdown();
    }
}

/// A Pod bound to `node` running `image` with Titus's layout (container `main`).
pub fn pod(name: &str, node: &str, image: &str) -> PodBuilder {
    PodBuilder {
        value: serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"v3.job.titus.netflix.com/task-id": name}},
            "spec": {
                "nodeName": node,
                "restartPolicy": "Never",
                "schedulerName": "titus-scheduler",
                "terminationGracePeriodSeconds": 30,
                "containers": [{"name": "main", "image": image, "imagePullPolicy": "IfNotPresent"}]
            }
        }),
    }
}

/// Builds a test Pod.
pub struct PodBuilder {
    value: serde_json::Value,
}

impl PodBuilder {
    fn main(&mut self) -> &mut serde_json::Value {
        &mut self.value["spec"]["containers"][0]
    }

    pub fn command(mut self, command: &[&str]) -> Self {
        self.main()["command"] = serde_json::json!(command);
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.main()["args"] = serde_json::json!(args);
        self
    }

    pub fn env(mut self, env: &[(&str, &str)]) -> Self {
        let env: Vec<_> = env
            .iter()
            .map(|(k, v)| serde_json::json!({"name": k, "value": v}))
            .collect();
        self.main()["env"] = serde_json::json!(env);
        self
    }

    pub fn memory(mut self, quantity: &str) -> Self {
        self.main()["resources"] = serde_json::json!({"limits": {"memory": quantity, "cpu": "1"}, "requests": {"memory": quantity, "cpu": "1"}});
        self
    }

    pub fn grace(mut self, seconds: i64) -> Self {
        self.value["spec"]["terminationGracePeriodSeconds"] = serde_json::json!(seconds);
        self
    }

    pub fn annotations(mut self, annotations: &[(&str, &str)]) -> Self {
        let map: BTreeMap<_, _> = annotations.iter().copied().collect();
        self.value["metadata"]["annotations"] = serde_json::json!(map);
        self
    }

    pub fn build(self) -> Pod {
        serde_json::from_value(self.value).unwrap_or_default()
    }
}
