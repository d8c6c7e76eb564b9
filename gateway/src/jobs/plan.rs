//! The decide step of every write: pure functions from the current `TitusJob` / `TitusTask` and
//! the request to the object to write, or the Titus error that refuses the request. `Ok(None)`
//! means "nothing to change" (Titus accepts no-op updates silently).
//!
//! Rules follow the semantics reference: capacity, enable and process updates need an `Accepted`
//! service job (§4.1, §6.2, §6.5); kill-and-shrink lowers `desired` (and `min` with it) and names
//! the victim in `scaleDownTaskIds`, refusing with `preventMinSizeUpdate` when `desired <= min`
//! (§6.4); MoveTask's checks run in Titus's order (§6.5). Spec changes go through the shared
//! validator's `validate_update`.

use std::collections::BTreeMap;

use titus_crds::constants::attributes as attrs;
use titus_crds::job::disruption::JobDisruptionBudget;
use titus_crds::job::ext::{Capacity, ServiceJobProcesses, ServiceJobSpec};
use titus_crds::sanitize::default_disruption_budget;
use titus_crds::validation::update::validate_update_with;
use titus_crds::{
    AdmissionConfig, TaskKillReason, TaskKillRequest, TitusJob, TitusJobSpec, TitusTask,
};

use crate::cache::CacheView;
use crate::error::ApiError;

/// Refuses changes that need an `Accepted` job (`JobTerminating`). A job being deleted counts as
/// terminating even before the job controller records `KillInitiated`.
pub fn ensure_accepted(job: &TitusJob, job_id: &str) -> Result<(), ApiError> {
    let state = job.state();
    if state.is_terminating() || job.metadata.deletion_timestamp.is_some() {
        return Err(ApiError::JobTerminating {
            job_id: job_id.to_string(),
            finished: state == titus_crds::JobState::Finished,
        });
    }
    Ok(())
}

/// The service spec, or `NotServiceJob`.
pub fn service_of<'a>(job: &'a TitusJob, job_id: &str) -> Result<&'a ServiceJobSpec, ApiError> {
    job.spec
        .service
        .as_ref()
        .ok_or_else(|| ApiError::NotServiceJob(job_id.to_string()))
}

/// A capacity change; `None` leaves a bound as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapacityChange {
    /// New `min`.
    pub min: Option<u32>,
    /// New `desired`.
    pub desired: Option<u32>,
    /// New `max`.
    pub max: Option<u32>,
}

/// The capacity after a change: given bounds replace the current ones; when `desired` is not
/// given it is clamped into the new `[min, max]` (raised to `min` first, then lowered to `max`).
pub fn plan_capacity(current: Capacity, change: CapacityChange) -> Capacity {
    let min = change.min.unwrap_or(current.min);
    let max = change.max.unwrap_or(current.max);
    let desired = change
        .desired
        .unwrap_or_else(|| current.desired.max(min).min(max));
    Capacity { min, desired, max }
}

fn with_service(job: &TitusJob, update: impl FnOnce(&mut ServiceJobSpec)) -> TitusJob {
    let mut next = job.clone();
    if let Some(service) = next.spec.service.as_mut() {
        update(service);
    }
    next
}

fn validated(
    old: &TitusJob,
    next: TitusJob,
    cfg: &AdmissionConfig,
) -> Result<Option<TitusJob>, ApiError> {
    if next.spec == old.spec {
        return Ok(None);
    }
    validate_update_with(old, &next, &cfg.validation).map_err(ApiError::Validation)?;
    Ok(Some(next))
}

/// UpdateJobCapacity / UpdateJobCapacityWithOptionalAttributes.
pub fn plan_capacity_update(
    job: &TitusJob,
    job_id: &str,
    change: CapacityChange,
    cfg: &AdmissionConfig,
) -> Result<Option<TitusJob>, ApiError> {
    let current = service_of(job, job_id)?.capacity;
    ensure_accepted(job, job_id)?;
    let capacity = plan_capacity(current, change);
    let next = with_service(job, |s| s.capacity = capacity);
    validated(job, next, cfg).map_err(|e| match e {
        ApiError::Validation(errors) => ApiError::Capacity { current, errors },
        other => other,
    })
}

/// UpdateJobStatus (the service `enabled` flag).
pub fn plan_enable(
    job: &TitusJob,
    job_id: &str,
    enabled: bool,
    cfg: &AdmissionConfig,
) -> Result<Option<TitusJob>, ApiError> {
    service_of(job, job_id)?;
    ensure_accepted(job, job_id)?;
    validated(job, with_service(job, |s| s.enabled = enabled), cfg)
}

/// UpdateJobProcesses.
pub fn plan_processes(
    job: &TitusJob,
    job_id: &str,
    processes: ServiceJobProcesses,
    cfg: &AdmissionConfig,
) -> Result<Option<TitusJob>, ApiError> {
    service_of(job, job_id)?;
    ensure_accepted(job, job_id)?;
    validated(
        job,
        with_service(job, |s| s.service_job_processes = processes),
        cfg,
    )
}

/// UpdateJobDisruptionBudget. A budget without a policy (or `selfManaged` with
/// `relocationTimeMs = 0`, Titus's legacy marker) is replaced by the job-type default, as at
/// creation.
pub fn plan_budget(
    job: &TitusJob,
    budget: JobDisruptionBudget,
    cfg: &AdmissionConfig,
) -> Result<Option<TitusJob>, ApiError> {
    let budget = if budget.is_legacy() {
        default_disruption_budget(&job.spec, &cfg.sanitize)
    } else {
        budget
    };
    let mut next = job.clone();
    next.spec.disruption_budget = Some(budget);
    validated(job, next, cfg)
}

/// UpdateJobAttributes: upserts keys.
pub fn plan_job_attributes(
    job: &TitusJob,
    updates: &BTreeMap<String, String>,
    cfg: &AdmissionConfig,
) -> Result<Option<TitusJob>, ApiError> {
    let mut next = job.clone();
    next.spec
        .attributes
        .extend(updates.iter().map(|(k, v)| (k.clone(), v.clone())));
    validated(job, next, cfg)
}

/// DeleteJobAttributes: removes keys; at least one key is required.
pub fn plan_delete_job_attributes(
    job: &TitusJob,
    keys: &[String],
    cfg: &AdmissionConfig,
) -> Result<Option<TitusJob>, ApiError> {
    require_keys(keys)?;
    let mut next = job.clone();
    for key in keys {
        next.spec.attributes.remove(key);
    }
    validated(job, next, cfg)
}

/// Refuses an attribute delete without keys.
pub fn require_keys(keys: &[String]) -> Result<(), ApiError> {
    if keys.iter().all(|k| k.is_empty()) {
        return Err(ApiError::InvalidArgument(
            "attribute keys must be provided".to_string(),
        ));
    }
    Ok(())
}

/// Refuses to kill a task that is already being killed or has finished (`TaskTerminating`):
/// `KillInitiated`/`Finished`, a kill already requested, or already named for scale-down.
pub fn ensure_killable(
    task: &TitusTask,
    task_id: &str,
    job: Option<&TitusJob>,
) -> Result<(), ApiError> {
    let state = task.state();
    let scaled_down = job
        .and_then(|j| j.spec.service.as_ref())
        .is_some_and(|s| s.scale_down_task_ids.iter().any(|id| id == task_id));
    let terminating = matches!(
        state,
        titus_crds::TaskState::KillInitiated | titus_crds::TaskState::Finished
    ) || task.spec.kill_request.is_some()
        || scaled_down;
    if terminating {
        return Err(ApiError::TaskTerminating {
            task_id: task_id.to_string(),
            finished: state.is_terminal(),
        });
    }
    Ok(())
}

/// KillTask without shrink: the task with `spec.killRequest` set (reason `killed`).
pub fn plan_kill_request(
    task: &TitusTask,
    caller: &str,
    reason: &str,
    now_ms: u64,
) -> Option<TitusTask> {
    if task.spec.kill_request.is_some() {
        return None;
    }
    let mut next = task.clone();
    next.spec.kill_request = Some(TaskKillRequest {
        reason: TaskKillReason::Killed,
        requested_by: caller.to_string(),
        message: if reason.is_empty() {
            format!("Killed by {caller}")
        } else {
            format!("Killed by {caller}: {reason}")
        },
        requested_at: now_ms,
    });
    Some(next)
}

/// KillTask with shrink on a service job: ONE write of the job that lowers `desired` by one (and
/// `min` with it when needed), appends the task to `scaleDownTaskIds` and prunes ids of tasks
/// that no longer exist. Like Titus, `disableDecreaseDesired` does not block it.
pub fn plan_kill_and_shrink(
    job: &TitusJob,
    job_id: &str,
    task_id: &str,
    prevent_min_size_update: bool,
    task_exists: impl Fn(&str) -> bool,
    cfg: &AdmissionConfig,
) -> Result<TitusJob, ApiError> {
    let capacity = service_of(job, job_id)?.capacity;
    ensure_accepted(job, job_id)?;
    if prevent_min_size_update && capacity.desired <= capacity.min {
        return Err(ApiError::TerminateAndShrinkNotAllowed {
            job_id: job_id.to_string(),
            task_id: task_id.to_string(),
            capacity,
        });
    }
    let next = with_service(job, |s| {
        s.capacity.desired = capacity.desired.saturating_sub(1);
        s.capacity.min = capacity.min.min(s.capacity.desired);
        s.scale_down_task_ids
            .retain(|id| id != task_id && task_exists(id));
        s.scale_down_task_ids.push(task_id.to_string());
    });
    validate_update_with(job, &next, &cfg.validation).map_err(|errors| ApiError::Capacity {
        current: capacity,
        errors,
    })?;
    Ok(next)
}

/// MoveTask's checks, in Titus's order, once both jobs and the task are known.
pub fn check_move(
    source: &TitusJob,
    source_id: &str,
    target: &TitusJob,
    target_id: &str,
    task: &TitusTask,
    task_id: &str,
) -> Result<(), ApiError> {
    let source_service = service_of(source, source_id)?;
    let target_service = service_of(target, target_id)?;
    ensure_accepted(source, source_id)?;
    ensure_accepted(target, target_id)?;
    if task.spec.job_id != source_id {
        return Err(ApiError::TaskJobMismatch {
            job_id: source_id.to_string(),
            task_id: task_id.to_string(),
        });
    }
    if source_service.capacity.desired <= source_service.capacity.min {
        return Err(ApiError::BelowMinCapacity {
            job_id: source_id.to_string(),
            capacity: source_service.capacity,
        });
    }
    if target_service.capacity.desired >= target_service.capacity.max {
        return Err(ApiError::AboveMaxCapacity {
            job_id: target_id.to_string(),
            capacity: target_service.capacity,
        });
    }
    check_compatible(&source.spec, &target.spec)
}

/// Titus's descriptor compatibility for MoveTask: equal after ignoring owner, application name,
/// job group, disruption budget, the service spec, and attributes that are not `titus.` /
/// `titusParameter.` keys (job, container and security profile attributes).
pub fn check_compatible(a: &TitusJobSpec, b: &TitusJobSpec) -> Result<(), ApiError> {
    let (a, b) = (comparable(a), comparable(b));
    if a == b {
        return Ok(());
    }
    let (ja, jb) = (
        serde_json::to_value(&a).unwrap_or_default(),
        serde_json::to_value(&b).unwrap_or_default(),
    );
    let keys: std::collections::BTreeSet<&String> = ja
        .as_object()
        .into_iter()
        .chain(jb.as_object())
        .flat_map(|m| m.keys())
        .collect();
    let differing: Vec<&str> = keys
        .into_iter()
        .filter(|k| ja.get(k.as_str()) != jb.get(k.as_str()))
        .map(String::as_str)
        .collect();
    Err(ApiError::JobsNotCompatible(format!(
        "descriptors differ in [{}]",
        differing.join(", ")
    )))
}

fn system_keys_only(map: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    map.iter()
        .filter(|(k, _)| k.starts_with("titus.") || k.starts_with("titusParameter."))
        .filter(|(k, _)| k.as_str() != attrs::CREATED_BY && k.as_str() != attrs::CALL_REASON)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn comparable(spec: &TitusJobSpec) -> TitusJobSpec {
    let mut s = spec.clone();
    s.owner = Default::default();
    s.application_name.clear();
    s.job_group_info = Default::default();
    s.disruption_budget = None;
    s.service = None;
    s.attributes = system_keys_only(&s.attributes);
    s.container.attributes = system_keys_only(&s.container.attributes);
    s.container.security_profile.attributes =
        system_keys_only(&s.container.security_profile.attributes);
    s
}

/// CreateJob's admission limits on the current jobs: at most `max_active` active jobs, and a
/// job group name (when `sequence` is set) unique among active jobs.
pub fn check_create_limits(
    view: &CacheView<'_>,
    spec: &TitusJobSpec,
    max_active: usize,
) -> Result<(), ApiError> {
    let active = view.active_job_count();
    if active >= max_active {
        return Err(ApiError::JobCreateLimited {
            active,
            limit: max_active,
        });
    }
    if let Some(name) = spec.job_group_name() {
        let finished = titus_crds::JobState::Finished;
        if let Some(existing) = view.jobs().find(|j| {
            j.object.state() != finished && j.object.spec.job_group_name().as_deref() == Some(&name)
        }) {
            return Err(ApiError::InvalidSequenceId {
                name,
                existing: existing.key.1.clone(),
            });
        }
    }
    Ok(())
}

/// A DNS-1123 `generateName` prefix for a job object: the lower-cased application name with
/// other characters turned into `-`, at most 40 characters, then `-`.
pub fn object_name_prefix(application_name: &str) -> String {
    let mut name: String = application_name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() { c } else { '-' }
        })
        .collect();
    name.truncate(40);
    let name = name.trim_matches('-');
    if name.is_empty() {
        "job-".to_string()
    } else {
        format!("{name}-")
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
