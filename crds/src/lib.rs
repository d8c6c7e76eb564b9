//! Titus on Kubernetes: the API crate every other component depends on.
//!
//! Pure data and pure functions, no network and no runtime: the custom resource types, Titus's
//! sanitization and validation, the names shared across the project, pure pod-building pieces,
//! deterministic task ids, and the generated CRDs.
//!
//! # The model (API group `titus.dev`, version `v1alpha1`, all namespaced)
//!
//! | kind | short | what it is |
//! |---|---|---|
//! | [`TitusJob`] | `tj` | a Titus `JobDescriptor` as spec (exactly one of `batch`/`service`), Titus job state as status; `scale` subresource on `.spec.service.capacity.desired` |
//! | [`TitusTask`] | `tt` | one task attempt: identity and resubmit counters, `killRequest`; Titus task state, history and context |
//! | [`CapacityGroup`] | `cg` | Titus ApplicationSLA: tier and resource guarantee |
//! | [`InstanceGroup`] | `ig` | a pool of agents: instance type, zones, min/desired/max, lifecycle |
//!
//! JSON field names are the Titus proto names, so the gateway translates without loss. Titus
//! times are milliseconds since the Unix epoch (`u64`); condition times are RFC 3339.
//!
//! # Where to start reading
//!
//! * [`job::TitusJobSpec`] and its parts ([`job::container`], [`job::ext`],
//!   [`job::disruption`]), then [`job::status`];
//! * [`task`] for task states, reason codes and kill requests;
//! * [`validation::admit`]: sanitize ([`sanitize()`]) then validate ([`validation::validate_job`]),
//!   and [`validation::admit_update`] / [`validation::validate_update`] for updates;
//! * [`constants`] for label, annotation, finalizer, condition and Event names;
//! * [`pod`] for environment, annotations, resources and command of a task's pod;
//! * [`ids`] for deterministic task ids;
//! * [`crd`] for the generated CRDs and the structural-schema check.

#![warn(missing_docs)]

pub mod capacity_group;
pub mod common;
pub mod constants;
pub mod crd;
pub mod ids;
pub mod instance_group;
pub mod job;
pub mod pod;
pub mod sanitize;
pub mod task;
pub mod validation;

pub use capacity_group::{CapacityGroup, CapacityGroupSpec, CapacityGroupStatus};
pub use common::{ResourceDimension, Tier};
pub use instance_group::{
    InstanceGroup, InstanceGroupLifecycle, InstanceGroupSpec, InstanceGroupStatus,
};
pub use job::container::{Container, ContainerResources, Image, SecurityProfile};
pub use job::disruption::JobDisruptionBudget;
pub use job::ext::{BatchJobSpec, Capacity, MigrationPolicy, Retry, RetryPolicy, ServiceJobSpec};
pub use job::status::{JobState, TitusJobStatus};
pub use job::{JobType, TitusJob, TitusJobSpec};
pub use sanitize::{SanitizeConfig, sanitize, sanitize_with};
pub use task::{
    TaskKillReason, TaskKillRequest, TaskReasonCode, TaskState, TitusTask, TitusTaskSpec,
    TitusTaskStatus,
};
pub use validation::{
    AdmissionConfig, ValidationConfig, ValidationError, ValidationErrors, ViolationKind, admit,
    admit_update, validate_capacity_group, validate_instance_group, validate_job, validate_update,
};
