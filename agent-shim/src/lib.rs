//! The Titus agent: everything that runs a task's container on one machine.
//!
//! Start reading at [`runtime::ContainerRuntime`], the one narrow trait the node half (registering
//! a Node, watching the Pods bound to it, reporting their status) drives. It has two
//! implementations:
//! - [`containerd::ContainerdRuntime`]: real containers through containerd's gRPC API (client-side
//!   image pull into containerd's content store, runc v2 shim, overlayfs, cgroup v1 limits);
//! - [`simulated::SimulatedRuntime`]: no containers, timings and outcomes from Titus's mock-agent
//!   annotations, cheap enough for thousands of containers in one process.
//!
//! The node half, [`node`], registers a Node, renews its Lease, watches the Pods bound to it and
//! drives them through a runtime (one node, or a fleet of simulated nodes in one process).
//! [`logs`] serves container logs to the API server like the kubelet's `/containerLogs`, and
//! [`run`] ([`service`]) puts it all together for `titus agent` and `titus up`.
//!
//! Pure helpers the node half calls: [`process`] (Docker entryPoint/command rules, env merge,
//! shell splitting) and [`titus_env`] (the environment the Titus agent injects).
//! With the `test-support` feature, `testsupport` starts a private OCI registry and a private
//! containerd and builds the test images.

// Tests may unwrap: a panic is a test failure with a location.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod containerd;
pub mod labels;
pub mod logs;
pub mod node;
pub mod process;
pub mod runtime;
pub mod service;
pub mod simulated;
#[cfg(feature = "test-support")]
pub mod testsupport;
pub mod titus_env;

pub use service::{AgentConfig, AgentError, ContainerdSource, ImageImport, RuntimeConfig, run};

pub use runtime::{
    ContainerHandle, ContainerId, ContainerRuntime, ContainerSpec, ContainerState, CpuLimit,
    ExitStatus, ImageConfig, ImageInfo, LogPaths, ManagedContainer, ProcessSpec, RegistryAuth,
    Resources, RuntimeError, TerminationReason,
};
