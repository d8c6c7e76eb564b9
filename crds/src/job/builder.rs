//! Builder-style constructors for `TitusJobSpec`, for tests and for other crates.
//!
//! `TitusJobSpec::batch(3)` and `TitusJobSpec::service(1, 2, 3)` return a spec that passes
//! `sanitize` + `validate_job` as it is (owner, application name, a tagged busybox image, a
//! security profile, a retry policy and, for batch, a runtime limit); the `with_*` methods change
//! one part each:
//!
//! ```
//! use titus_crds::{RetryPolicy, TitusJobSpec};
//! let spec = TitusJobSpec::batch(3)
//!     .with_image("localhost:5000/titus/busybox", "1")
//!     .with_command(["/bin/sh", "-c", "echo hello"])
//!     .with_retry_policy(RetryPolicy::immediate(2));
//! assert_eq!(spec.batch.as_ref().map(|b| b.size), Some(3));
//! ```

use super::TitusJobSpec;
use super::container::{Container, Image, SecurityProfile};
use super::disruption::JobDisruptionBudget;
use super::ext::{BatchJobSpec, Capacity, RetryPolicy, ServiceJobSpec};
use super::{JobGroupInfo, Owner};

/// Owner email used by the builders.
pub const BUILDER_OWNER_EMAIL: &str = "titus-dev@example.com";
/// Application name used by the builders.
pub const BUILDER_APPLICATION_NAME: &str = "titusapp";
/// Image name used by the builders (the local test registry's busybox).
pub const BUILDER_IMAGE_NAME: &str = "localhost:5000/titus/busybox";
/// Image tag used by the builders.
pub const BUILDER_IMAGE_TAG: &str = "1";
/// Security group used by the builders.
pub const BUILDER_SECURITY_GROUP: &str = "sg-titusdefault";
/// IAM role used by the builders.
pub const BUILDER_IAM_ROLE: &str = "titusAppRole";
/// Batch runtime limit used by the builders (one hour).
pub const BUILDER_RUNTIME_LIMIT_SEC: u64 = 3_600;

impl TitusJobSpec {
    /// A valid batch job of `size` tasks, with `immediate{retries: 0}`.
    pub fn batch(size: u32) -> Self {
        TitusJobSpec {
            batch: Some(BatchJobSpec {
                size,
                runtime_limit_sec: BUILDER_RUNTIME_LIMIT_SEC,
                retry_policy: Some(RetryPolicy::immediate(0)),
                retry_on_runtime_limit: false,
            }),
            ..Self::common()
        }
    }

    /// A valid service job with the given capacity, with `delayed{delayMs: 1000}`.
    pub fn service(min: u32, desired: u32, max: u32) -> Self {
        TitusJobSpec {
            service: Some(ServiceJobSpec {
                capacity: Capacity { min, desired, max },
                enabled: true,
                retry_policy: Some(RetryPolicy::delayed(1_000, 0)),
                ..ServiceJobSpec::default()
            }),
            ..Self::common()
        }
    }

    fn common() -> Self {
        TitusJobSpec {
            owner: Owner {
                team_email: BUILDER_OWNER_EMAIL.to_string(),
            },
            application_name: BUILDER_APPLICATION_NAME.to_string(),
            container: Container {
                image: Image::tagged(BUILDER_IMAGE_NAME, BUILDER_IMAGE_TAG),
                security_profile: SecurityProfile {
                    security_groups: vec![BUILDER_SECURITY_GROUP.to_string()],
                    iam_role: BUILDER_IAM_ROLE.to_string(),
                    ..SecurityProfile::default()
                },
                ..Container::default()
            },
            ..TitusJobSpec::default()
        }
    }

    /// Sets the image by name and tag.
    pub fn with_image(mut self, name: &str, tag: &str) -> Self {
        self.container.image = Image::tagged(name, tag);
        self
    }

    /// Sets the entry point (image ENTRYPOINT override).
    pub fn with_entry_point<I, S>(mut self, entry_point: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.container.entry_point = entry_point.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the command (image CMD override).
    pub fn with_command<I, S>(mut self, command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.container.command = command.into_iter().map(Into::into).collect();
        self
    }

    /// Adds an environment variable.
    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.container
            .env
            .insert(name.to_string(), value.to_string());
        self
    }

    /// Adds a job attribute.
    pub fn with_attribute(mut self, key: &str, value: &str) -> Self {
        self.attributes.insert(key.to_string(), value.to_string());
        self
    }

    /// Sets the retry policy of whichever job type is set.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        if let Some(batch) = self.batch.as_mut() {
            batch.retry_policy = Some(policy);
        }
        if let Some(service) = self.service.as_mut() {
            service.retry_policy = Some(policy);
        }
        self
    }

    /// Sets the batch runtime limit (no effect on service jobs).
    pub fn with_runtime_limit_sec(mut self, seconds: u64) -> Self {
        if let Some(batch) = self.batch.as_mut() {
            batch.runtime_limit_sec = seconds;
        }
        self
    }

    /// Adds a hard constraint.
    pub fn with_hard_constraint(mut self, name: &str, value: &str) -> Self {
        self.container
            .hard_constraints
            .constraints
            .insert(name.to_string(), value.to_string());
        self
    }

    /// Adds a soft constraint.
    pub fn with_soft_constraint(mut self, name: &str, value: &str) -> Self {
        self.container
            .soft_constraints
            .constraints
            .insert(name.to_string(), value.to_string());
        self
    }

    /// Sets the capacity group.
    pub fn with_capacity_group(mut self, name: &str) -> Self {
        self.capacity_group = name.to_string();
        self
    }

    /// Sets CPU cores and memory (MiB).
    pub fn with_cpu_memory(mut self, cpu: f64, memory_mb: u32) -> Self {
        self.container.resources.cpu = cpu;
        self.container.resources.memory_mb = memory_mb;
        self
    }

    /// Sets the job group info.
    pub fn with_job_group(mut self, stack: &str, detail: &str, sequence: &str) -> Self {
        self.job_group_info = JobGroupInfo {
            stack: stack.to_string(),
            detail: detail.to_string(),
            sequence: sequence.to_string(),
        };
        self
    }

    /// Sets the disruption budget.
    pub fn with_disruption_budget(mut self, budget: JobDisruptionBudget) -> Self {
        self.disruption_budget = Some(budget);
        self
    }
}
