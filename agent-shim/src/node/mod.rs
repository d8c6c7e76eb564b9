//! The Kubernetes half of the agent, in the virtual-kubelet style: register a Node and renew its
//! Lease, watch the Pods bound to it, run them through a [`ContainerRuntime`], report their status
//! the way the Titus control plane reads it, finish deletions, and recover after a restart.
//!
//! Reading order: [`decide`] (the pure per-Pod plan), [`status`] (executor state → Pod status),
//! [`pod_spec`] (Pod → container), [`registration`] (Node and Lease), then [`agent`] (the loop
//! that observes, decides and acts) and [`fleet`] (many simulated nodes in one process).
//!
//! [`ContainerRuntime`]: crate::runtime::ContainerRuntime

pub mod agent;
pub mod decide;
pub mod drain;
pub mod fleet;
pub mod pod_spec;
pub mod registration;
pub mod status;
#[cfg(test)]
mod tests;

pub use agent::{AgentEvent, NodeAgent, NodeAgentConfig};
pub use fleet::Fleet;
pub use registration::{NodeCapacity, NodeConfig};

/// Errors talking to the Kubernetes API.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// An API call failed.
    #[error("{action} {name}")]
    Api {
        /// What was being done.
        action: &'static str,
        /// Object name.
        name: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// Evicted Pods were still on the node after their grace periods.
    #[error("node {node}: {pods} pods still active after eviction")]
    DrainTimedOut {
        /// Node name.
        node: String,
        /// How many.
        pods: usize,
    },
    /// The agent's event loop is gone.
    #[error("agent for node {node} has stopped")]
    Stopped {
        /// Node name.
        node: String,
    },
}
