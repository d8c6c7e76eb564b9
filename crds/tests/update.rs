//! What may change in a `TitusJob` after creation, and when.

// Test helpers may unwrap: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use titus_crds::job::container::SignedAddressAllocation;
use titus_crds::job::disruption::RelocationLimitPolicy;
use titus_crds::validation::admit_update;
use titus_crds::{
    AdmissionConfig, JobDisruptionBudget, JobState, TitusJob, TitusJobSpec, TitusJobStatus, admit,
    validate_update,
};

const JOB_ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
const TASK_A: &str = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";

fn stored(spec: TitusJobSpec, state: JobState) -> TitusJob {
    let mut spec = spec;
    admit(&mut spec, &AdmissionConfig::default()).unwrap();
    let mut job = TitusJob::new("job", spec);
    job.metadata.uid = Some(JOB_ID.to_string());
    job.status = Some(TitusJobStatus {
        job_id: JOB_ID.to_string(),
        state,
        ..Default::default()
    });
    job
}

fn service_job(state: JobState) -> TitusJob {
    stored(TitusJobSpec::service(1, 2, 10), state)
}

/// Applies `change` to a copy of `old` and returns the `(field, description)` of each violation.
fn update(old: &TitusJob, change: impl FnOnce(&mut TitusJobSpec)) -> Vec<(String, String)> {
    let mut new = old.clone();
    change(&mut new.spec);
    match validate_update(old, &new) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .into_iter()
            .map(|e| (e.field, e.description))
            .collect(),
    }
}

#[track_caller]
fn assert_refused(violations: &[(String, String)], field: &str, description: &str) {
    assert!(
        violations
            .iter()
            .any(|(f, d)| f == field && d == description),
        "expected {field}: {description}, got {violations:#?}"
    );
}

#[test]
fn descriptor_fields_are_immutable() {
    let batch = stored(TitusJobSpec::batch(3), JobState::Accepted);
    let service = service_job(JobState::Accepted);
    let immutable = "field is immutable";
    assert_refused(
        &update(&batch, |s| s.container.image.tag = "2".into()),
        "spec.container.image",
        immutable,
    );
    assert_refused(
        &update(&batch, |s| s.batch.as_mut().unwrap().size = 4),
        "spec.batch.size",
        immutable,
    );
    assert_refused(
        &update(&batch, |s| s.batch.as_mut().unwrap().runtime_limit_sec = 7),
        "spec.batch.runtimeLimitSec",
        immutable,
    );
    assert_refused(
        &update(&batch, |s| s.application_name = "other".into()),
        "spec.applicationName",
        immutable,
    );
    assert_refused(
        &update(&batch, |s| s.owner.team_email = "x@y".into()),
        "spec.owner",
        immutable,
    );
    assert_refused(
        &update(&batch, |s| s.capacity_group = "flex".into()),
        "spec.capacityGroup",
        immutable,
    );
    assert_refused(
        &update(&batch, |s| {
            s.container.attributes.insert("k".into(), "v".into());
        }),
        "spec.container.attributes",
        immutable,
    );
    assert_refused(
        &update(&batch, |s| {
            s.container.env.insert("NEW".into(), "v".into());
        }),
        "spec.container.env",
        immutable,
    );
    assert_refused(
        &update(&batch, |s| s.service = service.spec.service.clone()),
        "spec.service",
        immutable,
    );
    assert_refused(
        &update(&service, |s| {
            s.service.as_mut().unwrap().retry_policy = Some(titus_crds::RetryPolicy::immediate(1))
        }),
        "spec.service.retryPolicy",
        immutable,
    );
}

#[test]
fn mutable_fields_may_change_while_accepted() {
    let job = service_job(JobState::Accepted);
    assert_eq!(
        update(&job, |s| {
            s.attributes.insert("team".into(), "b".into());
        }),
        []
    );
    assert_eq!(
        update(&job, |s| s.service.as_mut().unwrap().capacity.desired = 5),
        []
    );
    assert_eq!(
        update(&job, |s| s.service.as_mut().unwrap().enabled = false),
        []
    );
    assert_eq!(
        update(&job, |s| s
            .service
            .as_mut()
            .unwrap()
            .service_job_processes
            .disable_increase_desired = true),
        []
    );
    assert_eq!(
        update(&job, |s| s.disruption_budget =
            Some(JobDisruptionBudget::self_managed_unlimited(1_000))),
        []
    );
}

#[test]
fn capacity_updates_keep_min_desired_max_in_order() {
    let job = service_job(JobState::Accepted);
    let v = update(&job, |s| s.service.as_mut().unwrap().capacity.desired = 11);
    assert_refused(
        &v,
        "spec.service.capacity",
        "'desired'(11) must be <= 'max'(10)",
    );
    let v = update(&job, |s| s.service.as_mut().unwrap().capacity.min = 3);
    assert_refused(
        &v,
        "spec.service.capacity",
        "'min'(3) must be <= 'desired'(2)",
    );
}

#[test]
fn the_create_time_size_limit_is_not_rechecked_on_update() {
    let job = service_job(JobState::Accepted);
    assert_eq!(
        update(&job, |s| s.service.as_mut().unwrap().capacity.max = 20_000),
        []
    );
}

#[test]
fn service_processes_block_desired_changes() {
    let mut spec = TitusJobSpec::service(1, 2, 10);
    let processes = &mut spec.service.as_mut().unwrap().service_job_processes;
    processes.disable_increase_desired = true;
    processes.disable_decrease_desired = true;
    let job = stored(spec, JobState::Accepted);
    let v = update(&job, |s| s.service.as_mut().unwrap().capacity.desired = 3);
    assert_refused(
        &v,
        "spec.service.capacity.desired",
        &format!(
            "Job {JOB_ID} can not be updated to desired capacity of 3, disableIncreaseDesired true, disableDecreaseDesired true"
        ),
    );
    let v = update(&job, |s| s.service.as_mut().unwrap().capacity.desired = 1);
    assert_refused(
        &v,
        "spec.service.capacity.desired",
        &format!(
            "Job {JOB_ID} can not be updated to desired capacity of 1, disableIncreaseDesired true, disableDecreaseDesired true"
        ),
    );
    assert_eq!(
        update(&job, |s| s.service.as_mut().unwrap().capacity.max = 12),
        []
    );
}

#[test]
fn a_kill_with_shrink_is_exempt_from_disable_decrease_desired() {
    let mut spec = TitusJobSpec::service(1, 2, 10);
    spec.service
        .as_mut()
        .unwrap()
        .service_job_processes
        .disable_decrease_desired = true;
    let job = stored(spec, JobState::Accepted);
    let shrink = |s: &mut TitusJobSpec| {
        let service = s.service.as_mut().unwrap();
        service.capacity.desired = 1;
        service.scale_down_task_ids.push(TASK_A.into());
    };
    assert_eq!(update(&job, shrink), []);
    let too_much = |s: &mut TitusJobSpec| {
        let service = s.service.as_mut().unwrap();
        service.capacity.desired = 0;
        service.capacity.min = 0;
        service.scale_down_task_ids.push(TASK_A.into());
    };
    assert_eq!(update(&job, too_much).len(), 1);
}

#[test]
fn a_terminating_job_refuses_capacity_status_and_process_changes_but_not_attributes_or_budget() {
    for (state, message) in [
        (
            JobState::KillInitiated,
            format!("Job {JOB_ID} is in the termination process"),
        ),
        (JobState::Finished, format!("Job {JOB_ID} is terminated")),
    ] {
        let job = service_job(state);
        let v = update(&job, |s| s.service.as_mut().unwrap().capacity.desired = 3);
        assert_refused(&v, "spec.service.capacity", &message);
        let v = update(&job, |s| s.service.as_mut().unwrap().enabled = false);
        assert_refused(&v, "spec.service.enabled", &message);
        let v = update(&job, |s| {
            s.service
                .as_mut()
                .unwrap()
                .service_job_processes
                .disable_decrease_desired = true
        });
        assert_refused(&v, "spec.service.serviceJobProcesses", &message);
        assert_eq!(
            update(&job, |s| {
                s.attributes.insert("k".into(), "v".into());
            }),
            []
        );
        assert_eq!(
            update(&job, |s| s.disruption_budget =
                Some(JobDisruptionBudget::self_managed_unlimited(5))),
            []
        );
    }
}

#[test]
fn a_changed_budget_is_validated() {
    let job = service_job(JobState::Accepted);
    let v = update(&job, |s| {
        s.disruption_budget = Some(JobDisruptionBudget {
            relocation_limit: Some(RelocationLimitPolicy { limit: 0 }),
            ..Default::default()
        })
    });
    assert_refused(
        &v,
        "spec.disruptionBudget.relocationLimit.limit",
        "must be greater than or equal to 1",
    );
}

#[test]
fn max_may_not_exceed_the_static_ip_allocations() {
    let mut spec = TitusJobSpec::service(1, 1, 2);
    spec.container.resources.signed_address_allocations = (0..2)
        .map(|i| {
            let mut a = SignedAddressAllocation::default();
            a.address_allocation.uuid = format!("ip-{i}");
            a
        })
        .collect();
    let job = stored(spec, JobState::Accepted);
    let v = update(&job, |s| s.service.as_mut().unwrap().capacity.max = 3);
    assert_refused(
        &v,
        "spec.service.capacity.max",
        &format!(
            "Job {JOB_ID} can not be updated to max capacity of 3 due to only 2 IP allocations"
        ),
    );
}

#[test]
fn scale_down_task_ids_must_be_uuids() {
    let job = service_job(JobState::Accepted);
    let v = update(&job, |s| {
        s.service
            .as_mut()
            .unwrap()
            .scale_down_task_ids
            .push("nope".into())
    });
    assert_refused(
        &v,
        "spec.service.scaleDownTaskIds[0]",
        "Task id must be UUID string, but is: nope",
    );
}

#[test]
fn reapplying_the_original_manifest_compares_equal_to_the_sanitized_object() {
    let original = TitusJobSpec::service(1, 2, 10).with_entry_point(["/bin/sh -c 'x'"]);
    let old = stored(original.clone(), JobState::Accepted);
    let mut new = old.clone();
    new.spec = original;
    admit_update(&old, &mut new, &AdmissionConfig::default()).unwrap();
    assert_eq!(
        new.spec, old.spec,
        "the update kept the stored sanitization and its record"
    );
}
