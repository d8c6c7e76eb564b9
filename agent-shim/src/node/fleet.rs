//! Many node agents in one process: a simulated fleet for scale tests (1000+ nodes). One Pod watch
//! serves every node (dispatching by `spec.nodeName`) instead of one watch per node.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::{Api, Client};

use super::NodeError;
use super::agent::{AgentEvent, NodeAgent, NodeAgentConfig, to_agent_event};
use crate::logs::LogIndex;
use crate::runtime::ContainerRuntime;

/// A set of node agents sharing one API client and one Pod watch.
pub struct Fleet<R: ContainerRuntime> {
    client: Client,
    agents: HashMap<String, Arc<NodeAgent<R>>>,
}

impl<R: ContainerRuntime> std::fmt::Debug for Fleet<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("nodes", &self.agents.len())
            .finish_non_exhaustive()
    }
}

/// Which agents an event goes to: a Pod event to its node's agent, relist boundaries to all.
pub fn route(event: &AgentEvent) -> Route<'_> {
    fn node_of(pod: &Pod) -> Option<&str> {
        pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
    }
    match event {
        AgentEvent::PodChanged(pod) | AgentEvent::RelistPod(pod) => match node_of(pod) {
            Some(node) => Route::Node(node),
            None => Route::Nobody,
        },
        AgentEvent::PodDeleted { .. }
        | AgentEvent::RelistStarted
        | AgentEvent::RelistDone
        | AgentEvent::ResyncAll => Route::All,
        AgentEvent::Reconcile { .. }
        | AgentEvent::StartFinished { .. }
        | AgentEvent::StopFinished { .. } => Route::Nobody,
    }
}

/// Destination of a fleet event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// The agent of this node.
    Node(&'a str),
    /// Every agent (a deleted Pod's uid is unknown to the others and ignored).
    All,
    /// None (unscheduled Pods, agent-internal events).
    Nobody,
}

impl<R: ContainerRuntime> Fleet<R> {
    /// Registers and starts one agent per config, each with the runtime `runtime_for` makes,
    /// `parallel` registrations at a time.
    ///
    /// # Errors
    /// The first registration that fails.
    pub async fn start(
        client: Client,
        configs: Vec<NodeAgentConfig>,
        runtime_for: impl Fn(&NodeAgentConfig) -> Arc<R>,
        logs: Arc<LogIndex>,
        parallel: usize,
    ) -> Result<Self, NodeError> {
        let starts = configs.into_iter().map(|config| {
            let runtime = runtime_for(&config);
            NodeAgent::start(client.clone(), runtime, config, logs.clone())
        });
        let mut started = futures::stream::iter(starts).buffer_unordered(parallel.max(1));
        let mut agents = HashMap::new();
        while let Some(agent) = started.next().await {
            let agent = agent?;
            agents.insert(agent.node_name().to_owned(), agent);
        }
        drop(started);
        Ok(Self { client, agents })
    }

    /// The agents, by node name.
    pub fn agents(&self) -> impl Iterator<Item = &Arc<NodeAgent<R>>> {
        self.agents.values()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// Whether the fleet has no node.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// Watches all Pods and dispatches them to their nodes until the watch ends.
    pub async fn watch_pods(&self) {
        let pods: Api<Pod> = Api::all(self.client.clone());
        // Only Pods bound to some node concern an agent.
        let config = watcher::Config::default().fields("spec.nodeName!=");
        let mut stream = watcher(pods, config).boxed();
        while let Some(event) = stream.next().await {
            let Ok(event) = event else {
                tracing::warn!("fleet pod watch error; the watcher retries");
                continue;
            };
            self.dispatch(to_agent_event(event));
        }
    }

    /// Sends a watch event to the agents it concerns (see [`route`]).
    pub fn dispatch(&self, event: AgentEvent) {
        match route(&event) {
            Route::Node(node) => {
                if let Some(agent) = self.agents.get(node) {
                    let _ = agent.send(event);
                }
            }
            Route::All => {
                for agent in self.agents.values() {
                    let copy = match &event {
                        AgentEvent::PodDeleted { uid } => {
                            AgentEvent::PodDeleted { uid: uid.clone() }
                        }
                        AgentEvent::RelistStarted => AgentEvent::RelistStarted,
                        AgentEvent::RelistDone => AgentEvent::RelistDone,
                        AgentEvent::ResyncAll => AgentEvent::ResyncAll,
                        AgentEvent::PodChanged(_)
                        | AgentEvent::RelistPod(_)
                        | AgentEvent::Reconcile { .. }
                        | AgentEvent::StartFinished { .. }
                        | AgentEvent::StopFinished { .. } => continue,
                    };
                    let _ = agent.send(copy);
                }
            }
            Route::Nobody => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_on(node: Option<&str>) -> Box<Pod> {
        Box::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "p", "uid": "u"},
                "spec": {"containers": [], "nodeName": node}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn pod_events_go_to_their_node_and_relists_to_everyone() {
        assert_eq!(
            route(&AgentEvent::PodChanged(pod_on(Some("n7")))),
            Route::Node("n7")
        );
        assert_eq!(
            route(&AgentEvent::RelistPod(pod_on(Some("n1")))),
            Route::Node("n1")
        );
        assert_eq!(route(&AgentEvent::PodChanged(pod_on(None))), Route::Nobody);
        assert_eq!(
            route(&AgentEvent::PodDeleted { uid: "u".into() }),
            Route::All
        );
        assert_eq!(route(&AgentEvent::RelistStarted), Route::All);
        assert_eq!(route(&AgentEvent::RelistDone), Route::All);
        assert_eq!(
            route(&AgentEvent::Reconcile { uid: "u".into() }),
            Route::Nobody
        );
    }
}
