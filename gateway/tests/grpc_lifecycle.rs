//! Jobs through their life over gRPC: observe a batch job from creation to `Finished`, scale,
//! disable and enable a service job, update attributes, move a task, and the keep-alive stream.
//! The job and task controllers are played by `support::lifecycle` until the operator lands.

mod support;

use std::collections::BTreeMap;

use support::flow::{accepted_service, capacity, describe, step};
use support::{Env, batch_descriptor, lifecycle, next, request, service_descriptor};
use titus_crds::job::status::JobState;
use titus_crds::{TaskReasonCode, TaskState};
use titus_gateway::pb;
use titus_gateway::pb::job_change_notification::Notification;
use tonic::Code;

#[tokio::test]
async fn observe_job_follows_a_batch_job_from_creation_to_finished() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let mut grpc = env.grpc().await?;
    let id = grpc
        .create_job(request(batch_descriptor("life", 2)))
        .await?
        .into_inner()
        .id;
    let mut stream = grpc
        .observe_job(request(pb::JobId { id: id.clone() }))
        .await?
        .into_inner();
    assert_eq!(
        describe(next(&mut stream).await?),
        step("job", &id, "Accepted")
    );
    assert_eq!(describe(next(&mut stream).await?).0, "end");

    let (jobs, tasks) = (env.jobs(), env.tasks());
    let task_ids = lifecycle::accept_job(&jobs, &tasks, &id).await?;
    // The controller's writes (finalizer, status), then each task's creation and first status
    // write: Accepted updates of the job and the tasks, up to the podCreated status of task 1.
    lifecycle::set_task_state(
        &tasks,
        &task_ids[1],
        TaskState::Accepted,
        TaskReasonCode::PodCreated,
    )
    .await?;
    let mut seen = std::collections::BTreeSet::new();
    loop {
        match next(&mut stream).await?.and_then(|n| n.notification) {
            Some(Notification::JobUpdate(u)) => {
                let job = u.job.unwrap_or_default();
                assert_eq!(job.id, id);
                assert_eq!(
                    job.status.unwrap_or_default().state,
                    pb::job_status::JobState::Accepted as i32
                );
            }
            Some(Notification::TaskUpdate(u)) => {
                let task = u.task.unwrap_or_default();
                let status = task.status.unwrap_or_default();
                assert_eq!(status.state, pb::task_status::TaskState::Accepted as i32);
                assert!(task_ids.contains(&task.id));
                seen.insert(task.id.clone());
                if task.id == task_ids[1] && status.reason_code == "podCreated" {
                    break;
                }
            }
            other => anyhow::bail!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen.len(), task_ids.len());
    for state in [
        TaskState::Launched,
        TaskState::StartInitiated,
        TaskState::Started,
    ] {
        lifecycle::set_task_state(&tasks, &task_ids[0], state, TaskReasonCode::Normal).await?;
        assert_eq!(
            describe(next(&mut stream).await?),
            step("task", &task_ids[0], state.as_str())
        );
    }
    for task in &task_ids {
        lifecycle::set_task_state(&tasks, task, TaskState::Finished, TaskReasonCode::Normal)
            .await?;
        assert_eq!(
            describe(next(&mut stream).await?),
            step("task", task, "Finished")
        );
    }
    lifecycle::set_job_state(&jobs, &id, JobState::Finished).await?;
    assert_eq!(
        describe(next(&mut stream).await?),
        step("job", &id, "Finished")
    );
    // The stream completes after the job's Finished update.
    assert!(next(&mut stream).await?.is_none());

    // A finished batch job stays findable, with its status history.
    let job = grpc
        .find_job(request(pb::JobId { id: id.clone() }))
        .await?
        .into_inner();
    assert_eq!(
        job.status.map(|s| s.state),
        Some(pb::job_status::JobState::Finished as i32)
    );
    assert_eq!(job.status_history.len(), 1);
    let task = grpc
        .find_task(request(pb::TaskId {
            id: task_ids[0].clone(),
        }))
        .await?
        .into_inner();
    let history: Vec<i32> = task.status_history.iter().map(|s| s.state).collect();
    assert_eq!(history, vec![0, 1, 2, 3]);
    let other = grpc
        .find_task(request(pb::TaskId {
            id: task_ids[1].clone(),
        }))
        .await?
        .into_inner();
    let reasons: Vec<&str> = other
        .status_history
        .iter()
        .map(|s| s.reason_code.as_str())
        .collect();
    assert_eq!(reasons, vec!["normal", "podCreated"]);
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_service_job_scales_and_is_disabled_and_enabled() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let mut grpc = env.grpc().await?;
    let id = grpc
        .create_job(request(service_descriptor("svc", 1, 2, 5)))
        .await?
        .into_inner()
        .id;
    grpc.update_job_capacity(request(pb::JobCapacityUpdate {
        job_id: id.clone(),
        capacity: Some(pb::Capacity {
            min: 2,
            max: 6,
            desired: 3,
        }),
    }))
    .await?;
    assert_eq!(
        capacity(&env, &id).await?,
        titus_crds::Capacity {
            min: 2,
            desired: 3,
            max: 6
        }
    );
    // Read-your-writes through the gateway as well.
    let found = grpc
        .find_job(request(pb::JobId { id: id.clone() }))
        .await?
        .into_inner();
    let d = found.job_descriptor.unwrap_or_default();
    match d.job_spec {
        Some(pb::job_descriptor::JobSpec::Service(s)) => {
            assert_eq!(
                s.capacity,
                Some(pb::Capacity {
                    min: 2,
                    max: 6,
                    desired: 3
                })
            );
        }
        other => panic!("expected a service job, got {other:?}"),
    }

    // Only desired given: min and max stay.
    grpc.update_job_capacity_with_optional_attributes(request(
        pb::JobCapacityUpdateWithOptionalAttributes {
            job_id: id.clone(),
            job_capacity_with_optional_attributes: Some(pb::JobCapacityWithOptionalAttributes {
                desired: Some(5),
                ..Default::default()
            }),
        },
    ))
    .await?;
    assert_eq!(
        capacity(&env, &id).await?,
        titus_crds::Capacity {
            min: 2,
            desired: 5,
            max: 6
        }
    );
    // Only max given, below desired: desired is clamped.
    grpc.update_job_capacity_with_optional_attributes(request(
        pb::JobCapacityUpdateWithOptionalAttributes {
            job_id: id.clone(),
            job_capacity_with_optional_attributes: Some(pb::JobCapacityWithOptionalAttributes {
                max: Some(4),
                ..Default::default()
            }),
        },
    ))
    .await?;
    assert_eq!(
        capacity(&env, &id).await?,
        titus_crds::Capacity {
            min: 2,
            desired: 4,
            max: 4
        }
    );

    // Outside the limits.
    let err = grpc
        .update_job_capacity(request(pb::JobCapacityUpdate {
            job_id: id.clone(),
            capacity: Some(pb::Capacity {
                min: 5,
                max: 4,
                desired: 4,
            }),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("'min'(5) must be <= 'desired'(4)"),
        "{}",
        err.message()
    );

    // Processes block increases.
    grpc.update_job_processes(request(pb::JobProcessesUpdate {
        job_id: id.clone(),
        service_job_processes: Some(pb::service_job_spec::ServiceJobProcesses {
            disable_increase_desired: true,
            disable_decrease_desired: false,
        }),
    }))
    .await?;
    let err = grpc
        .update_job_capacity_with_optional_attributes(request(
            pb::JobCapacityUpdateWithOptionalAttributes {
                job_id: id.clone(),
                job_capacity_with_optional_attributes: Some(
                    pb::JobCapacityWithOptionalAttributes {
                        max: Some(9),
                        desired: Some(9),
                        ..Default::default()
                    },
                ),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("disableIncreaseDesired true"),
        "{}",
        err.message()
    );

    // Disable and enable.
    for enabled in [false, true] {
        grpc.update_job_status(request(pb::JobStatusUpdate {
            id: id.clone(),
            enable_status: enabled,
        }))
        .await?;
        let job = lifecycle::job_by_id(&env.jobs(), &id).await?;
        assert_eq!(job.spec.service.map(|s| s.enabled), Some(enabled));
    }

    // Disruption budget: validated, then replaced.
    let bad_budget = pb::JobDisruptionBudget {
        policy: Some(
            pb::job_disruption_budget::Policy::AvailabilityPercentageLimit(
                pb::job_disruption_budget::AvailabilityPercentageLimit {
                    percentage_of_healthy_containers: 150.0,
                },
            ),
        ),
        rate: Some(pb::job_disruption_budget::Rate::RateUnlimited(
            Default::default(),
        )),
        ..Default::default()
    };
    let err = grpc
        .update_job_disruption_budget(request(pb::JobDisruptionBudgetUpdate {
            job_id: id.clone(),
            disruption_budget: Some(bad_budget.clone()),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut good_budget = bad_budget;
    good_budget.policy = Some(pb::job_disruption_budget::Policy::UnhealthyTasksLimit(
        pb::job_disruption_budget::UnhealthyTasksLimit {
            limit_of_unhealthy_containers: 2,
        },
    ));
    grpc.update_job_disruption_budget(request(pb::JobDisruptionBudgetUpdate {
        job_id: id.clone(),
        disruption_budget: Some(good_budget),
    }))
    .await?;
    let job = lifecycle::job_by_id(&env.jobs(), &id).await?;
    let budget = job.spec.disruption_budget.unwrap_or_default();
    assert_eq!(
        budget
            .unhealthy_tasks_limit
            .map(|p| p.limit_of_unhealthy_containers),
        Some(2)
    );

    // Service-only operations refuse batch jobs.
    let batch = grpc
        .create_job(request(batch_descriptor("b", 1)))
        .await?
        .into_inner()
        .id;
    let err = grpc
        .update_job_status(request(pb::JobStatusUpdate {
            id: batch.clone(),
            enable_status: false,
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("is not a service job"));
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn job_and_task_attributes_are_updated_and_deleted() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let mut grpc = env.grpc().await?;
    let (id, tasks) = accepted_service(&env, &mut grpc, 0, 1, 1).await?;
    let attrs: BTreeMap<String, String> = [
        ("a".to_string(), "1".to_string()),
        ("b".to_string(), "2".to_string()),
    ]
    .into();
    grpc.update_job_attributes(request(pb::JobAttributesUpdate {
        job_id: id.clone(),
        attributes: attrs.clone(),
    }))
    .await?;
    grpc.delete_job_attributes(request(pb::JobAttributesDeleteRequest {
        job_id: id.clone(),
        keys: vec!["a".into()],
    }))
    .await?;
    let job = grpc
        .find_job(request(pb::JobId { id: id.clone() }))
        .await?
        .into_inner();
    let d = job.job_descriptor.unwrap_or_default();
    assert_eq!(d.attributes.get("b").map(String::as_str), Some("2"));
    assert!(!d.attributes.contains_key("a"));
    assert_eq!(
        d.attributes.get("titus.createdBy").map(String::as_str),
        Some(support::CALLER)
    );
    let err = grpc
        .delete_job_attributes(request(pb::JobAttributesDeleteRequest {
            job_id: id.clone(),
            keys: vec![],
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    grpc.update_task_attributes(request(pb::TaskAttributesUpdate {
        task_id: tasks[0].clone(),
        attributes: attrs,
    }))
    .await?;
    grpc.delete_task_attributes(request(pb::TaskAttributesDeleteRequest {
        task_id: tasks[0].clone(),
        keys: vec!["b".into()],
    }))
    .await?;
    let task = grpc
        .find_task(request(pb::TaskId {
            id: tasks[0].clone(),
        }))
        .await?
        .into_inner();
    assert_eq!(task.attributes, [("a".to_string(), "1".to_string())].into());
    let missing = uuid::Uuid::new_v4().to_string();
    let err = grpc
        .update_task_attributes(request(pb::TaskAttributesUpdate {
            task_id: missing,
            attributes: BTreeMap::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn move_task_moves_a_task_between_compatible_service_jobs() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let mut grpc = env.grpc().await?;
    let (source, tasks) = accepted_service(&env, &mut grpc, 0, 2, 3).await?;
    let (target, _) = accepted_service(&env, &mut grpc, 0, 1, 3).await?;
    let mut stream = grpc
        .observe_jobs(request(pb::ObserveJobsQuery {
            filtering_criteria: [("jobIds".to_string(), target.clone())].into(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    while describe(next(&mut stream).await?).0 != "end" {}

    let err = grpc
        .move_task(request(pb::TaskMoveRequest {
            source_job_id: source.clone(),
            target_job_id: source.clone(),
            task_id: tasks[0].clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    grpc.move_task(request(pb::TaskMoveRequest {
        source_job_id: source.clone(),
        target_job_id: target.clone(),
        task_id: tasks[0].clone(),
    }))
    .await?;
    let moved = env.tasks().get(&tasks[0]).await?;
    assert_eq!(moved.spec.job_id, target);
    assert_eq!(
        moved
            .status
            .unwrap_or_default()
            .task_context
            .get("task.movedFromJob"),
        Some(&source)
    );
    assert_eq!(capacity(&env, &source).await?.desired, 1);
    assert_eq!(capacity(&env, &target).await?.desired, 2);
    // The target's observers see the task arrive, flagged as moved.
    let arrived = loop {
        match next(&mut stream).await?.and_then(|n| n.notification) {
            Some(Notification::TaskUpdate(u)) => break u,
            Some(_) => continue,
            None => anyhow::bail!("stream ended"),
        }
    };
    assert!(arrived.moved_from_another_job);
    assert_eq!(arrived.task.unwrap_or_default().id, tasks[0]);
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn keep_alive_answers_come_after_every_earlier_change() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let mut grpc = env.grpc().await?;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tx.send(pb::ObserveJobsWithKeepAliveRequest {
        kind: Some(pb::observe_jobs_with_keep_alive_request::Kind::Query(
            Default::default(),
        )),
    })
    .await?;
    let mut stream = grpc
        .observe_jobs_with_keep_alive(request(tokio_stream::wrappers::ReceiverStream::new(rx)))
        .await?
        .into_inner();
    assert_eq!(describe(next(&mut stream).await?).0, "end");
    // Changes committed before the keep-alive must come before its answer.
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            grpc.create_job(request(batch_descriptor(&format!("k{i}"), 1)))
                .await?
                .into_inner()
                .id,
        );
    }
    tx.send(pb::ObserveJobsWithKeepAliveRequest {
        kind: Some(
            pb::observe_jobs_with_keep_alive_request::Kind::KeepAliveRequest(
                pb::KeepAliveRequest {
                    request_id: 7,
                    timestamp: 1,
                },
            ),
        ),
    })
    .await?;
    let mut seen = Vec::new();
    loop {
        let step = describe(next(&mut stream).await?);
        if step.0 == "keepalive" {
            assert_eq!(step.1, "7");
            break;
        }
        seen.push(step.1);
    }
    assert_eq!(seen, ids);
    // A client half-close does not end the stream; archived events are kept on this stream.
    drop(tx);
    grpc.kill_job(request(pb::JobId { id: ids[0].clone() }))
        .await?;
    let mut archived = false;
    while !archived {
        match next(&mut stream).await?.and_then(|n| n.notification) {
            Some(Notification::JobUpdate(u)) => archived = u.archived,
            Some(_) => {}
            None => anyhow::bail!("the stream ended after the half-close"),
        }
    }
    env.stop().await;
    Ok(())
}
