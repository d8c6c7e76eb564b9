//! Titus jobs as Kubernetes custom resources: the job and task controllers.
#![warn(missing_docs)]

pub mod clock;
pub mod job;
pub mod task;

#[cfg(test)]
mod test_support;
