//! The Titus scheduler: a pure core in the style of Netflix Fenzo, the Kubernetes adapter that
//! runs it against an API server, and the Mesos v1 scheduler HTTP API pieces that feed it from a
//! Mesos master.
//!
//! - [`model`]: agents (offers), task requests, capacity groups; [`resources`]: resource vectors.
//! - [`cluster::ClusterState`]: the incremental index adapters feed with events (agent
//!   added/updated/removed, task bound/finished).
//! - [`placement::schedule`]: one scheduling iteration: tiers and capacity groups order the
//!   queue (`queue.rs`), hard constraints filter ([`constraints`]), bin packing and soft
//!   constraints score ([`fitness`]), failures are explained and unmet demand grouped by shape
//!   ([`failure`]).
//! - [`workload`]: the JSON workload format the `scheduler-bench` binary replays.
//! - [`mesos`]: RecordIO, the v1 scheduler Call/Event JSON, offer and task-state mapping, and the
//!   async `MesosFramework` driver.
//! - [`kube`]: the scheduler on Kubernetes ([`kube::run`]): watches into an incremental index,
//!   one `schedule()` per iteration, binds, `PodScheduled` conditions, Events, unmet demand, and
//!   the Mesos adapter that shows a master's agents as virtual Nodes.
//!
//! Start with `docs/scheduler.md` for the rules and formulas, then [`placement::schedule`].

pub mod cluster;
pub mod constraints;
pub mod failure;
pub mod fitness;
pub mod kube;
pub mod mesos;
pub mod model;
pub mod placement;
mod queue;
pub mod resources;
mod slab;
pub mod workload;

pub use cluster::{ClusterError, ClusterState};
pub use constraints::{ConstraintError, ConstraintName, ConstraintSet};
pub use failure::{
    AgentRejection, DemandShape, FailureCause, PlacementFailure, RejectionCount, UnmetDemand,
};
pub use fitness::FitnessConfig;
pub use model::{
    Agent, CapacityGroupSpec, DEFAULT_CAPACITY_GROUP, InstanceGroupLifecycle, JobType, PlacedTask,
    TaskRequest, Tier,
};
pub use placement::{
    Assignment, GpuAgentPolicy, IterationStats, PlacementConfig, SchedulingResult, schedule,
};
pub use resources::{ResourceError, ResourceKind, Resources};
