//! Job-level rules: owner, application name, exactly one of batch/service, batch size and
//! runtime limit, service capacity, retry and migration policies, and the entry points
//! [`validate_job`], [`validate_job_with`] and [`check_job`].

use std::collections::BTreeSet;

use super::budget::check_budget;
use super::container::check_container;
use super::patterns::is_email;
use super::{Collector, SizeLimits, ValidationConfig, ValidationErrors};
use crate::ids::is_uuid;
use crate::job::TitusJobSpec;
use crate::job::ext::{BatchJobSpec, Capacity, RetryPolicy, ServiceJobSpec};

/// Validates a (sanitized) job spec with Titus's default limits.
///
/// # Errors
/// Every violation, soft ones included, when at least one is hard.
pub fn validate_job(spec: &TitusJobSpec) -> Result<(), ValidationErrors> {
    validate_job_with(spec, &ValidationConfig::default())
}

/// Validates a (sanitized) job spec with the given limits.
///
/// # Errors
/// Every violation, soft ones included, when at least one is hard.
pub fn validate_job_with(
    spec: &TitusJobSpec,
    cfg: &ValidationConfig,
) -> Result<(), ValidationErrors> {
    check_job(spec, cfg).into_result()
}

/// Every violation of `spec`, hard and soft, in a stable order.
pub fn check_job(spec: &TitusJobSpec, cfg: &ValidationConfig) -> ValidationErrors {
    let mut c = Collector::default();
    if !is_email(&spec.owner.team_email) {
        c.hard(
            "spec.owner.teamEmail",
            "owner.teamEmail",
            "Invalid email address",
        );
    }
    if spec.application_name.is_empty() {
        c.hard(
            "spec.applicationName",
            "applicationName",
            "Empty string not allowed",
        );
    }
    match (&spec.batch, &spec.service) {
        (Some(batch), None) => check_batch(spec, batch, cfg, &mut c),
        (None, Some(service)) => check_service(spec, service, cfg, &mut c),
        (Some(_), Some(_)) | (None, None) => c.hard(
            "spec",
            "extensions",
            "exactly one of batch or service must be set",
        ),
    }
    check_container(spec, cfg, &mut c);
    if let Some(budget) = &spec.disruption_budget {
        check_budget(budget, cfg, &mut c);
    }
    c.finish()
}

fn application_limits(spec: &TitusJobSpec, cfg: &ValidationConfig) -> SizeLimits {
    cfg.application_size_limits
        .get(&spec.application_name)
        .copied()
        .unwrap_or(cfg.default_application_size_limits)
}

fn check_batch(
    spec: &TitusJobSpec,
    batch: &BatchJobSpec,
    cfg: &ValidationConfig,
    c: &mut Collector,
) {
    if batch.size < 1 {
        c.hard(
            "spec.batch.size",
            "extensions.size",
            "Batch job must have at least one task",
        );
    } else if batch.size > cfg.max_batch_job_size {
        c.hard(
            "spec.batch.size",
            "extensions.size",
            format!(
                "Batch job too big {} > {}",
                batch.size, cfg.max_batch_job_size
            ),
        );
    } else {
        let limit = application_limits(spec, cfg).batch;
        if batch.size > limit {
            c.hard(
                "spec.batch.size",
                "jobDescriptor.extensions.size",
                format!(
                    "Batch job size is limited to {limit}, but is {}",
                    batch.size
                ),
            );
        }
    }
    let runtime_limit_ms = batch.runtime_limit_sec.saturating_mul(1000);
    let max_ms = cfg.max_runtime_limit_sec.saturating_mul(1000);
    if runtime_limit_ms < cfg.min_runtime_limit_ms {
        c.hard(
            "spec.batch.runtimeLimitSec",
            "extensions.runtimeLimitMs",
            format!("Runtime limit too low (must be at least 5sec, but is {runtime_limit_ms}[ms])"),
        );
    } else if runtime_limit_ms > max_ms {
        c.hard(
            "spec.batch.runtimeLimitSec",
            "extensions.runtimeLimitMs",
            format!("Runtime limit too high {runtime_limit_ms} > {max_ms}"),
        );
    }
    check_retry_policy(batch.retry_policy.as_ref(), "spec.batch.retryPolicy", c);
}

fn check_service(
    spec: &TitusJobSpec,
    service: &ServiceJobSpec,
    cfg: &ValidationConfig,
    c: &mut Collector,
) {
    check_capacity(&service.capacity, c);
    let max = service.capacity.max;
    if max > cfg.max_service_job_size {
        c.hard(
            "spec.service.capacity.max",
            "extensions.capacity",
            format!("Service job too big {max} > {}", cfg.max_service_job_size),
        );
    } else {
        let limit = application_limits(spec, cfg).service;
        if max > limit {
            c.hard(
                "spec.service.capacity.max",
                "jobDescriptor.extensions.capacity.max",
                format!("Service job size is limited to {limit}, but is {max}"),
            );
        }
    }
    check_retry_policy(service.retry_policy.as_ref(), "spec.service.retryPolicy", c);
    if let Some(policy) = &service.migration_policy
        && policy.system_default.is_some()
        && policy.self_managed.is_some()
    {
        c.hard(
            "spec.service.migrationPolicy",
            "extensions.migrationPolicy",
            "only one of systemDefault or selfManaged may be set",
        );
    }
    check_scale_down_task_ids(&service.scale_down_task_ids, c);
}

/// Titus's `Capacity` invariants: `min <= desired`, `desired <= max`, `min <= max`.
pub(crate) fn check_capacity(capacity: &Capacity, c: &mut Collector) {
    let Capacity { min, desired, max } = *capacity;
    let f = "spec.service.capacity";
    let t = "extensions.capacity";
    if min > desired {
        c.hard(
            f,
            t,
            format!("'min'({min}) must be <= 'desired'({desired})"),
        );
    }
    if desired > max {
        c.hard(
            f,
            t,
            format!("'desired'({desired}) must be <= 'max'({max})"),
        );
    }
    if min > max {
        c.hard(f, t, format!("'min'({min}) must be <= 'max'({max})"));
    }
}

pub(crate) fn check_scale_down_task_ids(ids: &[String], c: &mut Collector) {
    let mut seen = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        let field = format!("spec.service.scaleDownTaskIds[{i}]");
        if !is_uuid(id) {
            c.hard(
                field,
                "taskId",
                format!("Task id must be UUID string, but is: {id}"),
            );
        } else if !seen.insert(id.as_str()) {
            c.hard(field, "taskId", format!("duplicate task id {id}"));
        }
    }
}

fn check_retry_policy(policy: Option<&RetryPolicy>, field: &str, c: &mut Collector) {
    let Some(policy) = policy else {
        c.hard(
            field,
            "extensions.retryPolicy",
            "Unknown retry policy POLICY_NOT_SET",
        );
        return;
    };
    match policy.members_set() {
        0 => c.hard(
            field,
            "extensions.retryPolicy",
            "Unknown retry policy POLICY_NOT_SET",
        ),
        1 => {}
        _ => c.hard(
            field,
            "extensions.retryPolicy",
            "only one of immediate, delayed or exponentialBackOff may be set",
        ),
    }
    // Titus accepted this at admission and then failed inside its retryer; refuse it here.
    if let Some(exp) = policy.exponential_back_off
        && exp.max_delay_interval_ms < exp.initial_delay_ms
    {
        c.hard(
            format!("{field}.exponentialBackOff.maxDelayIntervalMs"),
            "extensions.retryPolicy.maxDelayMs",
            format!(
                "Max delay ({}) must be >= initial delay ({})",
                exp.max_delay_interval_ms, exp.initial_delay_ms
            ),
        );
    }
}
