//! Titus jobs as Kubernetes custom resources: the job and task controllers, Titus admission,
//! and (feature `testing`) a pod driver that plays scheduler and agent for tests.
//!
//! # Where to start reading
//!
//! * [`job::plan`] — the job controller's pure decision: tasks to create (batch indexes, service
//!   slots, replacements after the retry delay), kill requests (KillJob, scale-down victims in
//!   Titus's order), the job status; [`job::retry`] and [`job::victims`] hold the Titus rules.
//! * [`task::machine::next`] — the task state machine over the task's pod and node.
//! * [`admission`] — sanitize-then-validate admission of `TitusJob`s, in process
//!   ([`admission::register`]) and as an HTTPS webhook ([`admission::webhook`]).
//! * [`run()`] with [`OperatorConfig`] — everything wired: caches fed by watches, both controllers
//!   (writing only while this instance holds the `titus-operator` Lease), node liveness,
//!   metrics and health endpoints, Events, graceful shutdown.
//!
//! # Model
//!
//! Job id = `TitusJob.metadata.uid`; a `TitusTask` per attempt, named by a deterministic UUID
//! (`titus_crds::ids`), owned by its job; one Pod per task, named like it, owned by it. The job
//! controller writes job status and task creation/kill requests; the task controller writes task
//! status and the pods. Every write is conditioned on the resourceVersion it was decided from.

#![warn(missing_docs)]

pub mod admission;
pub mod clock;
pub mod context;
pub mod crds_install;
pub mod error;
pub mod job;
pub mod liveness;
pub mod metrics;
mod run;
pub mod task;
#[cfg(feature = "testing")]
pub mod testing;

#[cfg(test)]
mod test_support;

pub use admission::{TitusAdmission, register};
pub use crds_install::install_crds;
pub use run::{LEASE_NAME, OperatorConfig, OperatorError, default_identity, run};
