//! KillTask (with and without shrink) and KillJob over gRPC, with the job and task controllers
//! played by `support::lifecycle` until the operator lands.

mod support;

use support::flow::{accepted_service, capacity, describe, step};
use support::{Env, batch_descriptor, lifecycle, next, request};
use titus_gateway::pb;
use tonic::Code;

#[tokio::test]
async fn kill_task_sets_a_kill_request_and_kill_with_shrink_lowers_desired_in_one_write()
-> anyhow::Result<()> {
    let env = Env::start().await?;
    let mut grpc = env.grpc().await?;
    let (id, tasks) = accepted_service(&env, &mut grpc, 1, 3, 5).await?;

    grpc.kill_task(request(pb::TaskKillRequest {
        task_id: tasks[0].clone(),
        ..Default::default()
    }))
    .await?;
    let killed = env.tasks().get(&tasks[0]).await?;
    let kill = killed.spec.kill_request.clone().unwrap_or_default();
    assert_eq!(kill.reason, titus_crds::TaskKillReason::Killed);
    assert_eq!(kill.requested_by, support::CALLER);
    let err = grpc
        .kill_task(request(pb::TaskKillRequest {
            task_id: tasks[0].clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("is in the termination process"));
    // The task controller acts on the request.
    lifecycle::process_task_kill(&env.tasks(), &tasks[0]).await?;
    let task = grpc
        .find_task(request(pb::TaskId {
            id: tasks[0].clone(),
        }))
        .await?
        .into_inner();
    let status = task.status.unwrap_or_default();
    assert_eq!(
        (status.state, status.reason_code.as_str()),
        (pb::task_status::TaskState::Finished as i32, "killed")
    );

    grpc.kill_task(request(pb::TaskKillRequest {
        task_id: tasks[1].clone(),
        shrink: true,
        prevent_min_size_update: false,
    }))
    .await?;
    let job = lifecycle::job_by_id(&env.jobs(), &id).await?;
    let service = job.spec.service.unwrap_or_default();
    assert_eq!(
        service.capacity,
        titus_crds::Capacity {
            min: 1,
            desired: 2,
            max: 5
        }
    );
    assert_eq!(service.scale_down_task_ids, vec![tasks[1].clone()]);
    assert!(
        env.tasks()
            .get(&tasks[1])
            .await?
            .spec
            .kill_request
            .is_none(),
        "the job controller picks the victim"
    );
    let err = grpc
        .kill_task(request(pb::TaskKillRequest {
            task_id: tasks[1].clone(),
            shrink: true,
            prevent_min_size_update: false,
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // Down to min with preventMinSizeUpdate: refused; without it: min follows.
    grpc.kill_task(request(pb::TaskKillRequest {
        task_id: tasks[2].clone(),
        shrink: true,
        prevent_min_size_update: true,
    }))
    .await?;
    assert_eq!(
        capacity(&env, &id).await?,
        titus_crds::Capacity {
            min: 1,
            desired: 1,
            max: 5
        }
    );
    let (id2, tasks2) = accepted_service(&env, &mut grpc, 2, 2, 4).await?;
    let err = grpc
        .kill_task(request(pb::TaskKillRequest {
            task_id: tasks2[0].clone(),
            shrink: true,
            prevent_min_size_update: true,
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains(
        "Terminate and shrink would make desired job size go below the configured minimum"
    ));
    grpc.kill_task(request(pb::TaskKillRequest {
        task_id: tasks2[0].clone(),
        shrink: true,
        prevent_min_size_update: false,
    }))
    .await?;
    assert_eq!(
        capacity(&env, &id2).await?,
        titus_crds::Capacity {
            min: 1,
            desired: 1,
            max: 4
        }
    );

    // Batch tasks cannot be killed with shrink.
    let batch = grpc
        .create_job(request(batch_descriptor("b", 1)))
        .await?
        .into_inner()
        .id;
    let batch_tasks = lifecycle::accept_job(&env.jobs(), &env.tasks(), &batch).await?;
    let batch_task = batch_tasks[0].clone();
    support::wait_for(
        std::time::Duration::from_secs(10),
        "batch task in the cache",
        || async {
            env.gateway
                .jobs
                .cache()
                .read(|v| v.task(&batch_task).is_some())
                .then_some(())
        },
    )
    .await?;
    let err = grpc
        .kill_task(request(pb::TaskKillRequest {
            task_id: batch_task,
            shrink: true,
            prevent_min_size_update: false,
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn kill_job_records_the_caller_and_observers_see_the_job_finish_then_leave()
-> anyhow::Result<()> {
    let env = Env::start().await?;
    let mut grpc = env.grpc().await?;
    let (id, tasks) = accepted_service(&env, &mut grpc, 0, 2, 2).await?;
    let mut stream = grpc
        .observe_job(request(pb::JobId { id: id.clone() }))
        .await?
        .into_inner();
    let mut snapshot = Vec::new();
    loop {
        let step = describe(next(&mut stream).await?);
        if step.0 == "end" {
            break;
        }
        snapshot.push(step);
    }
    assert_eq!(snapshot.len(), 3, "job then its two tasks: {snapshot:?}");

    grpc.kill_job(request(pb::JobId { id: id.clone() })).await?;
    let job = lifecycle::job_by_id(&env.jobs(), &id).await?;
    let annotations = job.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(annotations["titus.dev/kill-requested-by"], support::CALLER);
    assert!(
        job.metadata.deletion_timestamp.is_some(),
        "held by the job controller's finalizer"
    );
    // Until the controller records it, the deletion shows as KillInitiated.
    assert_eq!(
        describe(next(&mut stream).await?),
        step("job", &id, "KillInitiated")
    );
    assert_eq!(
        grpc.find_job(request(pb::JobId { id: id.clone() }))
            .await?
            .into_inner()
            .status
            .map(|s| (s.state, s.reason_message)),
        Some((
            pb::job_status::JobState::KillInitiated as i32,
            format!("Killed by {}", support::CALLER)
        ))
    );
    let err = grpc
        .kill_job(request(pb::JobId { id: id.clone() }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("is in the termination process"));

    lifecycle::process_job_kill(&env.jobs(), &env.tasks(), &id).await?;
    let mut rest = Vec::new();
    while let Some(n) = next(&mut stream).await? {
        rest.push(describe(Some(n)));
    }
    let last = rest.last().cloned();
    assert_eq!(last, Some(step("job", &id, "Finished")), "{rest:?}");
    for task in &tasks {
        assert!(rest.contains(&step("task", task, "Finished")), "{rest:?}");
    }
    support::wait_for(
        std::time::Duration::from_secs(10),
        "the job to leave",
        || async {
            lifecycle::job_by_id(&env.jobs(), &id)
                .await
                .is_err()
                .then_some(())
        },
    )
    .await?;
    let err = grpc.find_job(request(pb::JobId { id: id.clone() })).await;
    let err = match err {
        Err(e) => e,
        Ok(_) => {
            support::wait_for(
                std::time::Duration::from_secs(10),
                "the cache to drop the job",
                || async {
                    env.gateway
                        .jobs
                        .cache()
                        .read(|v| v.job(&id).is_none())
                        .then_some(())
                },
            )
            .await?;
            grpc.find_job(request(pb::JobId { id: id.clone() }))
                .await
                .unwrap_err()
        }
    };
    assert_eq!(err.code(), Code::NotFound);
    env.stop().await;
    Ok(())
}
