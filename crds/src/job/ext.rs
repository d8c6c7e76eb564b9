//! The job-type part of a descriptor (Titus calls it the job "extensions"): `batch` or `service`,
//! with capacity, retry policy, migration policy and service processes.
//!
//! Proto oneofs are optional sibling fields; the validator enforces that exactly one is set, and
//! the `resolved()` accessors give controllers a plain Rust enum to match on.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Empty, is_default, is_false, is_zero_u32, is_zero_u64};

/// Proto `BatchJobSpec`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchJobSpec {
    /// Number of task indexes `0..size`, 1..1000. Immutable.
    #[serde(default)]
    pub size: u32,
    /// Wall-clock limit of one attempt in seconds, from the attempt entering `Started`;
    /// 5 s .. 10 days. Required (0 is refused).
    #[serde(default)]
    pub runtime_limit_sec: u64,
    /// What to do when an attempt fails. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    /// Retry an attempt killed for exceeding the runtime limit.
    #[serde(default, skip_serializing_if = "is_false")]
    pub retry_on_runtime_limit: bool,
}

/// Proto `ServiceJobSpec`, plus `scaleDownTaskIds`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceJobSpec {
    /// Task count bounds; the job controller keeps `desired` non-finished tasks. Mutable (also
    /// through the `scale` subresource, which writes `desired`).
    #[serde(default)]
    pub capacity: Capacity,
    /// The "in service" flag. Stored and reported; like final Titus, nothing else reads it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub enabled: bool,
    /// Delay before a finished task is replaced. Required; `retries` is not enforced for
    /// services (replacement is unlimited), as in Titus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    /// `systemDefault` (the default applied by `sanitize`) or `selfManaged`; only used to derive
    /// the default disruption budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_policy: Option<MigrationPolicy>,
    /// Switches that block capacity changes of `desired`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub service_job_processes: ServiceJobProcesses,
    /// Tasks (Titus task ids) the job controller must pick first as scale-down victims.
    ///
    /// This is how Titus's `KillTask` with `shrink=true` is ONE atomic write on the `TitusJob`:
    /// the gateway decrements `capacity.desired` (lowering `min` if needed) and appends the task
    /// id here in the same update, so the job controller never sees the smaller `desired` without
    /// knowing which task it must remove. A kill-with-shrink is exempt from
    /// `disableDecreaseDesired`, exactly as in Titus. Ids of tasks that are already finished or
    /// unknown are ignored, and the job controller may prune them. Not part of the Titus proto.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scale_down_task_ids: Vec<String>,
}

/// Proto `Capacity`. `min <= desired <= max`. Always serialized (zero is meaningful).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Capacity {
    /// Minimum number of tasks.
    #[serde(default)]
    pub min: u32,
    /// Desired number of tasks.
    #[serde(default)]
    pub desired: u32,
    /// Maximum number of tasks (at most 10000 at creation).
    #[serde(default)]
    pub max: u32,
}

/// Proto `ServiceJobSpec.ServiceJobProcesses`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceJobProcesses {
    /// Refuse capacity updates that raise `desired`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_increase_desired: bool,
    /// Refuse capacity updates that lower `desired` (a kill-with-shrink is still allowed).
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_decrease_desired: bool,
}

/// Proto `MigrationPolicy` (oneof `Policy`, both members empty messages).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationPolicy {
    /// The system relocates tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_default: Option<Empty>,
    /// The owner relocates its own tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_managed: Option<Empty>,
}

impl MigrationPolicy {
    /// `systemDefault`.
    pub fn system_default() -> Self {
        MigrationPolicy {
            system_default: Some(Empty {}),
            self_managed: None,
        }
    }

    /// `selfManaged`.
    pub fn self_managed() -> Self {
        MigrationPolicy {
            system_default: None,
            self_managed: Some(Empty {}),
        }
    }

    /// `true` when the owner manages relocation (`selfManaged` is set).
    pub fn is_self_managed(&self) -> bool {
        self.self_managed.is_some()
    }
}

/// Proto `RetryPolicy` (oneof `Policy`): exactly one member must be set.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Retry without a policy delay (the 1 s minimum retry interval still applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immediate: Option<ImmediateRetry>,
    /// Retry after a fixed delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayed: Option<DelayedRetry>,
    /// Retry after an exponentially growing delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exponential_back_off: Option<ExponentialBackOffRetry>,
}

/// Proto `RetryPolicy.Immediate`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ImmediateRetry {
    /// Retries after the first attempt (0 = one attempt in total).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub retries: u32,
}

/// Proto `RetryPolicy.Delayed`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DelayedRetry {
    /// Carried but ignored, as by Titus's converter: only `delayMs` is used.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub initial_delay_ms: u64,
    /// Delay before every retry.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub delay_ms: u64,
    /// Retries after the first attempt.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub retries: u32,
}

/// Proto `RetryPolicy.ExponentialBackOff`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExponentialBackOffRetry {
    /// First delay; doubles per consecutive failure.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub initial_delay_ms: u64,
    /// Cap of the delay; must be >= `initialDelayMs`.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub max_delay_interval_ms: u64,
    /// Retries after the first attempt.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub retries: u32,
}

/// A resolved retry policy, for controllers to match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// `immediate`.
    Immediate {
        /// Retries after the first attempt.
        retries: u32,
    },
    /// `delayed` (`initialDelayMs` is ignored, as in Titus).
    Delayed {
        /// Delay before every retry.
        delay_ms: u64,
        /// Retries after the first attempt.
        retries: u32,
    },
    /// `exponentialBackOff`.
    ExponentialBackOff {
        /// First delay.
        initial_delay_ms: u64,
        /// Cap of the delay.
        max_delay_interval_ms: u64,
        /// Retries after the first attempt.
        retries: u32,
    },
}

impl Retry {
    /// Number of retries after the first attempt.
    pub fn retries(&self) -> u32 {
        match *self {
            Retry::Immediate { retries }
            | Retry::Delayed { retries, .. }
            | Retry::ExponentialBackOff { retries, .. } => retries,
        }
    }
}

impl RetryPolicy {
    /// `immediate{retries}`.
    pub fn immediate(retries: u32) -> Self {
        RetryPolicy {
            immediate: Some(ImmediateRetry { retries }),
            ..RetryPolicy::default()
        }
    }

    /// `delayed{delayMs, retries}`.
    pub fn delayed(delay_ms: u64, retries: u32) -> Self {
        RetryPolicy {
            delayed: Some(DelayedRetry {
                initial_delay_ms: 0,
                delay_ms,
                retries,
            }),
            ..RetryPolicy::default()
        }
    }

    /// `exponentialBackOff{initialDelayMs, maxDelayIntervalMs, retries}`.
    pub fn exponential_back_off(
        initial_delay_ms: u64,
        max_delay_interval_ms: u64,
        retries: u32,
    ) -> Self {
        RetryPolicy {
            exponential_back_off: Some(ExponentialBackOffRetry {
                initial_delay_ms,
                max_delay_interval_ms,
                retries,
            }),
            ..RetryPolicy::default()
        }
    }

    /// The set member, taking the first in proto field order if (invalidly) several are set;
    /// `None` when none is set. The validator refuses both of those cases.
    pub fn resolved(&self) -> Option<Retry> {
        if let Some(p) = self.immediate {
            return Some(Retry::Immediate { retries: p.retries });
        }
        if let Some(p) = self.delayed {
            return Some(Retry::Delayed {
                delay_ms: p.delay_ms,
                retries: p.retries,
            });
        }
        self.exponential_back_off
            .map(|p| Retry::ExponentialBackOff {
                initial_delay_ms: p.initial_delay_ms,
                max_delay_interval_ms: p.max_delay_interval_ms,
                retries: p.retries,
            })
    }

    /// How many members are set (valid policies have exactly one).
    pub fn members_set(&self) -> usize {
        usize::from(self.immediate.is_some())
            + usize::from(self.delayed.is_some())
            + usize::from(self.exponential_back_off.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_retry_policy_reports_the_member_that_is_set() {
        assert_eq!(
            RetryPolicy::delayed(2_000, 3).resolved(),
            Some(Retry::Delayed {
                delay_ms: 2_000,
                retries: 3
            })
        );
        assert_eq!(RetryPolicy::default().resolved(), None);
        assert_eq!(
            RetryPolicy::exponential_back_off(1, 2, 5)
                .resolved()
                .map(|r| r.retries()),
            Some(5)
        );
    }

    #[test]
    fn migration_policy_serializes_as_an_empty_member() {
        let json = serde_json::to_string(&MigrationPolicy::self_managed()).unwrap();
        assert_eq!(json, r#"{"selfManaged":{}}"#);
    }
}
