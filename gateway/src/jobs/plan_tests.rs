use super::*;
use titus_crds::job::status::TitusJobStatus;
use titus_crds::task::TitusTaskSpec;
use titus_crds::{JobState, TaskState, TitusTaskStatus};

const JOB: &str = "0c6f7c1e-4a4f-4f3a-9c53-1a2b3c4d5e6f";
const TASK: &str = "8d1f2e3a-1b2c-4d5e-8f90-a1b2c3d4e5f6";

fn service(min: u32, desired: u32, max: u32) -> TitusJob {
    let mut job = TitusJob::new("svc", TitusJobSpec::service(min, desired, max));
    job.metadata.uid = Some(JOB.to_string());
    job
}

fn batch() -> TitusJob {
    let mut job = TitusJob::new("batch", TitusJobSpec::batch(2));
    job.metadata.uid = Some(JOB.to_string());
    job
}

fn in_state(mut job: TitusJob, state: JobState) -> TitusJob {
    job.status = Some(TitusJobStatus {
        state,
        timestamp: 1,
        ..TitusJobStatus::default()
    });
    job
}

fn capacity(job: &TitusJob) -> Capacity {
    job.spec
        .service
        .as_ref()
        .map(|s| s.capacity)
        .unwrap_or_default()
}

fn change(min: Option<u32>, desired: Option<u32>, max: Option<u32>) -> CapacityChange {
    CapacityChange { min, desired, max }
}

#[test]
fn capacity_changes_clamp_desired_when_it_is_not_given() {
    let current = Capacity {
        min: 1,
        desired: 5,
        max: 10,
    };
    let cases = [
        (
            change(Some(2), Some(3), Some(4)),
            Capacity {
                min: 2,
                desired: 3,
                max: 4,
            },
        ),
        (
            change(None, None, Some(4)),
            Capacity {
                min: 1,
                desired: 4,
                max: 4,
            },
        ),
        (
            change(Some(7), None, None),
            Capacity {
                min: 7,
                desired: 7,
                max: 10,
            },
        ),
        (
            change(None, Some(9), None),
            Capacity {
                min: 1,
                desired: 9,
                max: 10,
            },
        ),
        (change(None, None, None), current),
    ];
    for (c, expected) in cases {
        assert_eq!(plan_capacity(current, c), expected, "{c:?}");
    }
}

#[test]
fn capacity_updates_follow_titus_rules() {
    let cfg = AdmissionConfig::default();
    let job = service(1, 2, 3);
    let next = plan_capacity_update(&job, JOB, change(Some(1), Some(3), Some(5)), &cfg)
        .unwrap()
        .unwrap();
    assert_eq!(
        capacity(&next),
        Capacity {
            min: 1,
            desired: 3,
            max: 5
        }
    );
    assert!(
        plan_capacity_update(&job, JOB, change(None, Some(2), None), &cfg)
            .unwrap()
            .is_none(),
        "a no-op writes nothing"
    );
    let err = plan_capacity_update(&job, JOB, change(Some(4), Some(2), Some(3)), &cfg).unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.to_string()
            .starts_with("Current Capacity{min=1, desired=2, max=3}. Invalid Argument:"),
        "{err}"
    );
    let err = plan_capacity_update(&batch(), JOB, change(None, Some(1), None), &cfg).unwrap_err();
    assert!(matches!(err, ApiError::NotServiceJob(_)));
    let killed = in_state(service(1, 2, 3), JobState::KillInitiated);
    let err = plan_capacity_update(&killed, JOB, change(None, Some(1), None), &cfg).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("Job {JOB} is in the termination process")
    );
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    let mut blocked = service(1, 2, 3);
    if let Some(s) = blocked.spec.service.as_mut() {
        s.service_job_processes.disable_increase_desired = true;
    }
    let err = plan_capacity_update(&blocked, JOB, change(None, Some(3), None), &cfg).unwrap_err();
    assert!(
        err.to_string()
            .contains("can not be updated to desired capacity of 3"),
        "{err}"
    );
}

#[test]
fn enable_and_processes_need_an_accepted_service_job() {
    let cfg = AdmissionConfig::default();
    let next = plan_enable(&service(0, 1, 1), JOB, false, &cfg)
        .unwrap()
        .unwrap();
    assert!(!next.spec.service.unwrap().enabled);
    assert!(
        plan_enable(&service(0, 1, 1), JOB, true, &cfg)
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        plan_enable(&batch(), JOB, true, &cfg),
        Err(ApiError::NotServiceJob(_))
    ));
    let finished = in_state(service(0, 1, 1), JobState::Finished);
    let err = plan_processes(&finished, JOB, ServiceJobProcesses::default(), &cfg).unwrap_err();
    assert_eq!(err.to_string(), format!("Job {JOB} is terminated"));
}

#[test]
fn a_budget_without_a_policy_becomes_the_job_type_default() {
    let cfg = AdmissionConfig::default();
    let next = plan_budget(&service(0, 1, 1), JobDisruptionBudget::default(), &cfg)
        .unwrap()
        .unwrap();
    let budget = next.spec.disruption_budget.unwrap();
    assert_eq!(budget.policies_set(), 1);
}

#[test]
fn kill_and_shrink_is_one_write_that_names_the_victim() {
    let cfg = AdmissionConfig::default();
    const GONE: &str = "aaaaaaaa-0000-4000-8000-000000000001";
    const ALIVE: &str = "aaaaaaaa-0000-4000-8000-000000000002";
    let mut job = service(2, 2, 4);
    if let Some(s) = job.spec.service.as_mut() {
        s.scale_down_task_ids = vec![GONE.into(), ALIVE.into()];
        s.service_job_processes.disable_decrease_desired = true;
    }
    let next = plan_kill_and_shrink(&job, JOB, TASK, false, |id| id == ALIVE, &cfg).unwrap();
    let s = next.spec.service.unwrap();
    assert_eq!(
        s.capacity,
        Capacity {
            min: 1,
            desired: 1,
            max: 4
        }
    );
    assert_eq!(
        s.scale_down_task_ids,
        vec![ALIVE.to_string(), TASK.to_string()]
    );

    let err = plan_kill_and_shrink(&service(2, 2, 4), JOB, TASK, true, |_| true, &cfg).unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert!(err.to_string().starts_with(
        "Terminate and shrink would make desired job size go below the configured minimum"
    ));
    let err = plan_kill_and_shrink(&batch(), JOB, TASK, false, |_| true, &cfg).unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

fn task(state: TaskState) -> TitusTask {
    let mut task = TitusTask::new(
        TASK,
        TitusTaskSpec {
            job_id: JOB.into(),
            ..TitusTaskSpec::default()
        },
    );
    task.status = Some(TitusTaskStatus {
        state,
        timestamp: 1,
        ..TitusTaskStatus::default()
    });
    task
}

#[test]
fn tasks_being_killed_cannot_be_killed_again() {
    assert!(ensure_killable(&task(TaskState::Started), TASK, None).is_ok());
    let cases = [
        (task(TaskState::KillInitiated), "in the termination process"),
        (task(TaskState::Finished), "terminated"),
        (
            plan_kill_request(&task(TaskState::Started), "me", "", 5).unwrap(),
            "in the termination process",
        ),
    ];
    for (t, says) in cases {
        let err = ensure_killable(&t, TASK, None).unwrap_err();
        assert_eq!(err.to_string(), format!("Task {TASK} is {says}"));
    }
    let mut job = service(0, 1, 1);
    if let Some(s) = job.spec.service.as_mut() {
        s.scale_down_task_ids.push(TASK.into());
    }
    assert!(ensure_killable(&task(TaskState::Started), TASK, Some(&job)).is_err());
}

#[test]
fn a_kill_request_records_the_caller_and_is_written_once() {
    let killed = plan_kill_request(&task(TaskState::Started), "alice", "cleanup", 42).unwrap();
    let request = killed.spec.kill_request.clone().unwrap();
    assert_eq!(request.reason, TaskKillReason::Killed);
    assert_eq!(request.requested_by, "alice");
    assert_eq!(request.message, "Killed by alice: cleanup");
    assert_eq!(request.requested_at, 42);
    assert!(plan_kill_request(&killed, "bob", "", 43).is_none());
}

#[test]
fn move_checks_run_in_titus_order() {
    const OTHER: &str = "11111111-2222-4333-8444-555555555555";
    let mut target = service(0, 1, 3);
    target.metadata.uid = Some(OTHER.into());
    let source = service(0, 2, 3);
    assert!(
        check_move(
            &source,
            JOB,
            &target,
            OTHER,
            &task(TaskState::Started),
            TASK
        )
        .is_ok()
    );
    let err = check_move(
        &service(2, 2, 3),
        JOB,
        &target,
        OTHER,
        &task(TaskState::Started),
        TASK,
    )
    .unwrap_err();
    assert!(matches!(err, ApiError::BelowMinCapacity { .. }));
    let full = service(0, 3, 3);
    let err = check_move(&source, JOB, &full, OTHER, &task(TaskState::Started), TASK).unwrap_err();
    assert!(matches!(err, ApiError::AboveMaxCapacity { .. }));
    let mut elsewhere = task(TaskState::Started);
    elsewhere.spec.job_id = OTHER.into();
    let err = check_move(&source, JOB, &target, OTHER, &elsewhere, TASK).unwrap_err();
    assert!(matches!(err, ApiError::TaskJobMismatch { .. }));
    let mut different = target.clone();
    different.spec.container.image.tag = "2".into();
    let err = check_move(
        &source,
        JOB,
        &different,
        OTHER,
        &task(TaskState::Started),
        TASK,
    )
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Internal);
    assert!(err.to_string().contains("container"), "{err}");
    let mut renamed = target.clone();
    renamed.spec.application_name = "other".into();
    renamed.spec.attributes.insert("free".into(), "x".into());
    assert!(
        check_move(
            &source,
            JOB,
            &renamed,
            OTHER,
            &task(TaskState::Started),
            TASK
        )
        .is_ok()
    );
}

#[test]
fn object_names_are_dns_labels_derived_from_the_application() {
    let cases = [
        ("myApp", "myapp-"),
        ("my_app.v2", "my-app-v2-"),
        ("__", "job-"),
        ("", "job-"),
        (&"x".repeat(60), &format!("{}-", "x".repeat(40))),
    ];
    for (app, expected) in cases {
        assert_eq!(object_name_prefix(app), expected);
    }
}
