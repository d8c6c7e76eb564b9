//! What may change in a `TitusJob` after creation.
//!
//! Titus changes a job descriptor only through its APIs, so on update everything is immutable
//! except what those APIs change:
//!
//! | field | Titus API |
//! |---|---|
//! | `spec.service.capacity` | UpdateJobCapacity(WithOptionalAttributes), KillTask with shrink |
//! | `spec.service.enabled` | UpdateJobStatus |
//! | `spec.service.serviceJobProcesses` | UpdateJobProcesses |
//! | `spec.service.scaleDownTaskIds` | KillTask with shrink (this project's addition) |
//! | `spec.disruptionBudget` | UpdateJobDisruptionBudget |
//! | `spec.attributes` | Update/DeleteJobAttributes |
//!
//! Container attributes stay immutable: no Titus API changes them. Capacity, `enabled` and
//! processes may only change while the job is `Accepted` (else Titus's `JobTerminating`); capacity
//! changes obey `serviceJobProcesses` (Titus's `InvalidDesiredCapacity`, with a kill-with-shrink
//! exempt) and the static IP count (`InvalidMaxCapacity`). The create-time size limits are not
//! re-checked, as in Titus. Run `sanitize` on the new spec first (see `admit_update`), so that a
//! re-applied manifest compares equal to the stored, sanitized object.

use super::budget::check_budget;
use super::job::{check_capacity, check_scale_down_task_ids};
use super::{Collector, ValidationConfig, ValidationErrors};
use crate::job::TitusJob;
use crate::job::container::Container;
use crate::job::ext::ServiceJobSpec;
use crate::job::status::JobState;

const IMMUTABLE: &str = "field is immutable";

/// Validates an update of a `TitusJob` with Titus's default limits.
///
/// # Errors
/// Every violation (immutable fields, capacity rules, terminating job) when any is hard.
pub fn validate_update(old: &TitusJob, new: &TitusJob) -> Result<(), ValidationErrors> {
    validate_update_with(old, new, &ValidationConfig::default())
}

/// Validates an update of a `TitusJob`.
///
/// # Errors
/// Every violation (immutable fields, capacity rules, terminating job) when any is hard.
pub fn validate_update_with(
    old: &TitusJob,
    new: &TitusJob,
    cfg: &ValidationConfig,
) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    let (o, n) = (&old.spec, &new.spec);
    immutable(&o.owner, &n.owner, "spec.owner", "owner", &mut c);
    immutable(
        &o.application_name,
        &n.application_name,
        "spec.applicationName",
        "applicationName",
        &mut c,
    );
    immutable(
        &o.capacity_group,
        &n.capacity_group,
        "spec.capacityGroup",
        "capacityGroup",
        &mut c,
    );
    immutable(
        &o.job_group_info,
        &n.job_group_info,
        "spec.jobGroupInfo",
        "jobGroupInfo",
        &mut c,
    );
    immutable(
        &o.network_configuration,
        &n.network_configuration,
        "spec.networkConfiguration",
        "networkConfiguration",
        &mut c,
    );
    immutable(
        &o.extra_containers,
        &n.extra_containers,
        "spec.extraContainers",
        "extraContainers",
        &mut c,
    );
    immutable(&o.volumes, &n.volumes, "spec.volumes", "volumes", &mut c);
    immutable(
        &o.platform_sidecars,
        &n.platform_sidecars,
        "spec.platformSidecars",
        "platformSidecars",
        &mut c,
    );
    check_container_immutable(&o.container, &n.container, &mut c);
    match (&o.batch, &n.batch) {
        (Some(ob), Some(nb)) => {
            immutable(
                &ob.size,
                &nb.size,
                "spec.batch.size",
                "extensions.size",
                &mut c,
            );
            immutable(
                &ob.runtime_limit_sec,
                &nb.runtime_limit_sec,
                "spec.batch.runtimeLimitSec",
                "extensions.runtimeLimitMs",
                &mut c,
            );
            immutable(
                &ob.retry_policy,
                &nb.retry_policy,
                "spec.batch.retryPolicy",
                "extensions.retryPolicy",
                &mut c,
            );
            immutable(
                &ob.retry_on_runtime_limit,
                &nb.retry_on_runtime_limit,
                "spec.batch.retryOnRuntimeLimit",
                "extensions.retryOnRuntimeLimit",
                &mut c,
            );
        }
        (ob, nb) => immutable(
            &ob.is_some(),
            &nb.is_some(),
            "spec.batch",
            "extensions",
            &mut c,
        ),
    }
    match (&o.service, &n.service) {
        (Some(os), Some(ns)) => check_service_update(old, os, ns, &mut c),
        (os, ns) => immutable(
            &os.is_some(),
            &ns.is_some(),
            "spec.service",
            "extensions",
            &mut c,
        ),
    }
    if o.disruption_budget != n.disruption_budget
        && let Some(budget) = &n.disruption_budget
    {
        check_budget(budget, cfg, &mut c);
    }
    c.finish().into_result()
}

fn immutable<T: PartialEq>(old: &T, new: &T, field: &str, titus: &str, c: &mut Collector) {
    if old != new {
        c.hard(field, titus, IMMUTABLE);
    }
}

fn check_container_immutable(o: &Container, n: &Container, c: &mut Collector) {
    let f = "spec.container";
    immutable(
        &o.resources,
        &n.resources,
        &format!("{f}.resources"),
        "container.containerResources",
        c,
    );
    immutable(
        &o.security_profile,
        &n.security_profile,
        &format!("{f}.securityProfile"),
        "container.securityProfile",
        c,
    );
    immutable(
        &o.image,
        &n.image,
        &format!("{f}.image"),
        "container.image",
        c,
    );
    immutable(
        &o.attributes,
        &n.attributes,
        &format!("{f}.attributes"),
        "container.attributes",
        c,
    );
    immutable(
        &o.entry_point,
        &n.entry_point,
        &format!("{f}.entryPoint"),
        "container.entryPoint",
        c,
    );
    immutable(
        &o.command,
        &n.command,
        &format!("{f}.command"),
        "container.command",
        c,
    );
    immutable(&o.env, &n.env, &format!("{f}.env"), "container.env", c);
    immutable(
        &o.soft_constraints,
        &n.soft_constraints,
        &format!("{f}.softConstraints"),
        "container.softConstraints",
        c,
    );
    immutable(
        &o.hard_constraints,
        &n.hard_constraints,
        &format!("{f}.hardConstraints"),
        "container.hardConstraints",
        c,
    );
    immutable(
        &o.experimental,
        &n.experimental,
        &format!("{f}.experimental"),
        "container.experimental",
        c,
    );
    immutable(
        &o.volume_mounts,
        &n.volume_mounts,
        &format!("{f}.volumeMounts"),
        "container.volumeMounts",
        c,
    );
}

fn check_service_update(job: &TitusJob, o: &ServiceJobSpec, n: &ServiceJobSpec, c: &mut Collector) {
    immutable(
        &o.retry_policy,
        &n.retry_policy,
        "spec.service.retryPolicy",
        "extensions.retryPolicy",
        c,
    );
    immutable(
        &o.migration_policy,
        &n.migration_policy,
        "spec.service.migrationPolicy",
        "extensions.migrationPolicy",
        c,
    );
    let job_id = job.job_id().unwrap_or("<unknown>");
    let state = job.state();
    let terminating = match state {
        JobState::Accepted => None,
        JobState::KillInitiated => Some(format!("Job {job_id} is in the termination process")),
        JobState::Finished => Some(format!("Job {job_id} is terminated")),
    };
    let changes = [
        (
            o.capacity != n.capacity,
            "spec.service.capacity",
            "extensions.capacity",
        ),
        (
            o.enabled != n.enabled,
            "spec.service.enabled",
            "extensions.enabled",
        ),
        (
            o.service_job_processes != n.service_job_processes,
            "spec.service.serviceJobProcesses",
            "extensions.serviceJobProcesses",
        ),
    ];
    if let Some(message) = &terminating {
        for (changed, field, titus) in changes {
            if changed {
                c.hard(field, titus, message.clone());
            }
        }
    }
    if o.scale_down_task_ids != n.scale_down_task_ids {
        check_scale_down_task_ids(&n.scale_down_task_ids, c);
    }
    if o.capacity == n.capacity {
        return;
    }
    check_capacity(&n.capacity, c);
    check_desired_change(job_id, o, n, c);
    let allocations = job
        .spec
        .container
        .resources
        .signed_address_allocations
        .len();
    let allocations = u32::try_from(allocations).unwrap_or(u32::MAX);
    if allocations > 0 && n.capacity.max > allocations && n.capacity.max != o.capacity.max {
        c.hard(
            "spec.service.capacity.max",
            "extensions.capacity.max",
            format!(
                "Job {job_id} can not be updated to max capacity of {} due to only {allocations} IP allocations",
                n.capacity.max
            ),
        );
    }
}

/// `serviceJobProcesses` (as they were before this update) block raising or lowering `desired`;
/// lowering it by exactly the number of task ids added to `scaleDownTaskIds` is a
/// kill-with-shrink, which Titus does not check.
fn check_desired_change(job_id: &str, o: &ServiceJobSpec, n: &ServiceJobSpec, c: &mut Collector) {
    let processes = o.service_job_processes;
    let (before, after) = (o.capacity.desired, n.capacity.desired);
    let added_victims = n
        .scale_down_task_ids
        .iter()
        .filter(|id| !o.scale_down_task_ids.contains(id))
        .count();
    let shrink =
        u32::try_from(added_victims).is_ok_and(|k| k > 0 && before.saturating_sub(k) == after);
    let refused = (after > before && processes.disable_increase_desired)
        || (after < before && processes.disable_decrease_desired && !shrink);
    if refused {
        c.hard(
            "spec.service.capacity.desired",
            "extensions.capacity.desired",
            format!(
                "Job {job_id} can not be updated to desired capacity of {after}, disableIncreaseDesired {}, disableDecreaseDesired {}",
                processes.disable_increase_desired, processes.disable_decrease_desired
            ),
        );
    }
}
