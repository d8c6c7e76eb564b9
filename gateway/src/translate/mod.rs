//! Translation between the Titus protos and this project's custom resources.
//!
//! * [`descriptor_to_spec`] / [`spec_to_descriptor`]: `JobDescriptor` <-> `TitusJobSpec`, field by
//!   field. Lossless both ways for every field Titus returns: `spec_to_descriptor(descriptor_to_spec(d))
//!   == d` for any descriptor whose enums are known (tested over a descriptor with every field set
//!   and over random ones).
//! * [`job_to_proto`] / [`task_to_proto`]: a `TitusJob` / `TitusTask` as the Titus `Job` / `Task`
//!   clients see (ids, status and history, task context, versions).
//!
//! Proto `bytes` travel as base64 strings in the custom resources, `google.protobuf.Struct` as a
//! JSON object, proto oneofs as optional sibling fields.

mod entity;
mod to_proto;
mod to_spec;

pub use entity::{
    job_accepted_ms, job_to_proto, last_change_ms, task_accepted_ms, task_context, task_to_proto,
};
pub use to_proto::{budget_to_proto, processes_to_proto, spec_to_descriptor};
pub use to_spec::{budget_to_spec, descriptor_to_spec, processes_to_spec};

/// Why a proto message cannot become a custom resource spec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TranslateError {
    /// An enum number this gateway does not know (proto enums are open on the wire).
    #[error("unrecognized value {value} for enum field '{field}'")]
    UnknownEnum {
        /// Titus field path, e.g. `networkConfiguration.networkMode`.
        field: &'static str,
        /// The number received.
        value: i32,
    },
    /// A number that JSON, and so the custom resource, cannot hold (NaN or infinite).
    #[error("non-finite number {value} in '{field}'")]
    NonFiniteNumber {
        /// Titus field path.
        field: &'static str,
        /// The number received.
        value: f64,
    },
}
