//! Graceful deregistration of a node: cordon it, let its Pods finish (or evict them when the
//! drain time is up, so that the control plane kills and replaces them the usual way), then
//! remove what is left of their containers and delete the Lease and the Node.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{EvictParams, ListParams};

use super::NodeError;
use super::agent::NodeAgent;
use super::registration;
use crate::runtime::{ContainerRuntime, ContainerState};

/// How often the drain looks at the node's Pods again.
const DRAIN_POLL: Duration = Duration::from_secs(1);
/// Extra time for evicted Pods beyond their grace periods.
const EVICTION_SLACK: Duration = Duration::from_secs(30);

fn is_active(pod: &Pod) -> bool {
    !matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn grace_of(pod: &Pod) -> Duration {
    let seconds = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30);
    Duration::from_secs(seconds.max(0) as u64)
}

impl<R: ContainerRuntime> NodeAgent<R> {
    /// The Pods bound to this node that have not finished.
    async fn active_pods(&self) -> Result<Vec<Pod>, NodeError> {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let params = ListParams::default().fields(&format!("spec.nodeName={}", self.node_name()));
        let list = pods.list(&params).await.map_err(|source| NodeError::Api {
            action: "listing pods of node",
            name: self.node_name().to_owned(),
            source,
        })?;
        Ok(list.items.into_iter().filter(is_active).collect())
    }

    /// Takes the node out of service: cordons it; waits up to `drain_timeout` for its Pods to
    /// finish; evicts the rest (the agent stops them with their grace periods and reports them
    /// killed) and waits for them to go; stops the agent's loops; removes the containers left;
    /// deletes the Lease and the Node.
    ///
    /// # Errors
    /// [`NodeError::Api`] when the API refuses a step; [`NodeError::DrainTimedOut`] when evicted
    /// Pods are still there after their grace periods.
    pub async fn deregister(&self, drain_timeout: Duration) -> Result<(), NodeError> {
        let name = self.node_name().to_owned();
        registration::cordon(&self.client, &self.config.node).await?;
        tracing::info!(node = %name, "cordoned; waiting for pods to finish");
        let deadline = tokio::time::Instant::now() + drain_timeout;
        let mut active = self.active_pods().await?;
        while !active.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(DRAIN_POLL).await;
            active = self.active_pods().await?;
        }
        if !active.is_empty() {
            let longest = active.iter().map(grace_of).max().unwrap_or_default();
            for pod in &active {
                self.evict(pod).await?;
            }
            let deadline = tokio::time::Instant::now() + longest + EVICTION_SLACK;
            while !active.is_empty() {
                if tokio::time::Instant::now() >= deadline {
                    return Err(NodeError::DrainTimedOut {
                        node: name,
                        pods: active.len(),
                    });
                }
                tokio::time::sleep(DRAIN_POLL).await;
                active = self.active_pods().await?;
            }
        }
        self.shutdown();
        self.remove_containers().await;
        registration::unregister(&self.client, &self.config.node).await?;
        tracing::info!(node = %name, "deregistered");
        Ok(())
    }

    /// Evicts `pod` (a graceful delete through the eviction subresource).
    async fn evict(&self, pod: &Pod) -> Result<(), NodeError> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        match pods.evict(&name, &EvictParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(source) => Err(NodeError::Api {
                action: "evicting pod",
                name,
                source,
            }),
        }
    }

    /// Removes every container of this node's runtime (all exited by now; a running one would
    /// belong to a Pod that vanished during the drain).
    async fn remove_containers(&self) {
        let containers = match self.runtime.list().await {
            Ok(containers) => containers,
            Err(error) => {
                tracing::warn!(node = %self.node_name(), %error, "listing containers failed");
                return;
            }
        };
        for container in containers {
            if matches!(container.state, ContainerState::Running { .. }) {
                tracing::warn!(container = %container.id, "removing a running container at deregistration");
            }
            if let Err(error) = self.runtime.remove(&container.id).await {
                tracing::warn!(container = %container.id, %error, "remove failed");
            }
        }
    }
}
