//! CreateJob, FindJob(s) and FindTask(s) against an embedded API server: the gateway's jobs are
//! the cluster's `TitusJob`s, and `TitusJob`s created directly are the gateway's jobs.

mod support;

use std::collections::BTreeMap;

use kube::api::PostParams;
use support::{Env, batch_descriptor, lifecycle, request, service_descriptor};
use titus_crds::{TitusJob, TitusJobSpec};
use titus_gateway::pb;
use tonic::Code;

fn page(size: i32) -> Option<pb::Page> {
    Some(pb::Page {
        page_size: size,
        ..Default::default()
    })
}

fn criteria(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn a_job_created_through_the_gateway_is_the_titusjob_the_cluster_shows() -> anyhow::Result<()>
{
    let env = Env::start().await?;
    let mut grpc = env.grpc().await?;
    let id = grpc
        .create_job(request(batch_descriptor("reports", 2)))
        .await?
        .into_inner()
        .id;
    let stored = lifecycle::job_by_id(&env.jobs(), &id).await?;
    assert_eq!(stored.metadata.uid.as_deref(), Some(id.as_str()));
    assert_eq!(stored.spec.application_name, "reports");
    assert_eq!(stored.spec.batch.as_ref().map(|b| b.size), Some(2));
    assert_eq!(stored.spec.attributes["titus.createdBy"], support::CALLER);
    // Sanitized on the way in: minimums raised, default budget and capacity group filled.
    assert_eq!(stored.spec.container.resources.cpu, 1.0);
    assert_eq!(stored.spec.capacity_group, "DEFAULT");
    assert!(stored.spec.disruption_budget.is_some());

    // Read-your-writes: found at once, equal to the stored object's rendering.
    let found = grpc
        .find_job(request(pb::JobId { id: id.clone() }))
        .await?
        .into_inner();
    assert_eq!(found, titus_gateway::translate::job_to_proto(&stored));
    assert_eq!(
        found.status.as_ref().map(|s| s.state),
        Some(pb::job_status::JobState::Accepted as i32)
    );
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_titusjob_created_directly_is_found_and_observed_through_the_gateway()
-> anyhow::Result<()> {
    let env = Env::start().await?;
    let mut grpc = env.grpc().await?;
    let mut observer = grpc
        .observe_jobs(request(pb::ObserveJobsQuery::default()))
        .await?
        .into_inner();
    let first = support::next(&mut observer)
        .await?
        .and_then(|n| n.notification);
    assert!(matches!(
        first,
        Some(pb::job_change_notification::Notification::SnapshotEnd(_))
    ));

    let mut spec = TitusJobSpec::service(1, 1, 2);
    spec.application_name = "direct".into();
    let job = TitusJob::new("direct-job", spec);
    let created = env.jobs().create(&PostParams::default(), &job).await?;
    let id = created.metadata.uid.clone().unwrap_or_default();

    let update = support::next(&mut observer)
        .await?
        .and_then(|n| n.notification);
    match update {
        Some(pb::job_change_notification::Notification::JobUpdate(u)) => {
            let job = u.job.unwrap_or_default();
            assert_eq!(job.id, id);
            assert_eq!(
                job.job_descriptor.unwrap_or_default().application_name,
                "direct"
            );
        }
        other => panic!("expected the job's update, got {other:?}"),
    }
    let found = grpc
        .find_jobs(request(pb::JobQuery {
            page: page(10),
            filtering_criteria: criteria(&[("applicationName", "direct")]),
            ..Default::default()
        }))
        .await?
        .into_inner();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].id, id);
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn find_jobs_filters_pages_and_projects_like_titus() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let mut grpc = env.grpc().await?;
    let mut ids = Vec::new();
    for (i, app) in ["alpha", "beta", "alpha", "gamma", "alpha"]
        .iter()
        .enumerate()
    {
        let mut d = if i % 2 == 0 {
            batch_descriptor(app, 1)
        } else {
            service_descriptor(app, 0, 1, 1)
        };
        d.attributes.insert("team".into(), format!("t{}", i % 3));
        if i == 4 {
            d.attributes.insert("canary".into(), "yes".into());
        }
        ids.push(grpc.create_job(request(d)).await?.into_inner().id);
    }
    let find = |c: BTreeMap<String, String>, size: i32, cursor: String| pb::JobQuery {
        page: Some(pb::Page {
            page_size: size,
            cursor,
            ..Default::default()
        }),
        filtering_criteria: c,
        ..Default::default()
    };
    let two_ids = format!("{}, {}", ids[3], ids[1]);
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<usize>);
    let cases: Vec<Case<'_>> = vec![
        (vec![("applicationName", "alpha")], vec![0, 2, 4]),
        (vec![("appName", "beta")], vec![1]),
        (vec![("jobType", "SERVICE")], vec![1, 3]),
        (
            vec![("jobType", "batch"), ("applicationName", "alpha")],
            vec![0, 2, 4],
        ),
        (vec![("attributes", "team:t0")], vec![0, 3]),
        (
            vec![("attributes", "team:t1,canary"), ("attributes.op", "or")],
            vec![1, 4],
        ),
        (vec![("attributes", "team:t1,canary")], vec![4]),
        (vec![("attributes", "canary")], vec![4]),
        (vec![("jobState", "accepted")], vec![0, 1, 2, 3, 4]),
        (vec![("jobState", "Finished")], vec![]),
        (vec![("jobIds", &two_ids)], vec![1, 3]),
        (
            vec![
                ("owner", "titus-dev@example.com"),
                ("capacityGroup", "DEFAULT"),
            ],
            vec![0, 1, 2, 3, 4],
        ),
        (
            vec![
                ("imageName", "localhost:5000/titus/busybox"),
                ("imageTag", "1"),
            ],
            vec![0, 1, 2, 3, 4],
        ),
        (vec![("taskStates", "Started")], vec![]),
        (vec![("taskStates", "any")], vec![0, 1, 2, 3, 4]),
        (vec![("applicationName", " ")], vec![0, 1, 2, 3, 4]),
    ];
    for (c, expected) in cases {
        let result = grpc
            .find_jobs(request(find(criteria(&c), 100, String::new())))
            .await?
            .into_inner();
        // Order is (creation time, id); creation times have second resolution before the
        // job controller records the Accepted time, so compare as sets here.
        let mut got: Vec<&str> = result.items.iter().map(|j| j.id.as_str()).collect();
        let mut want: Vec<&str> = expected.iter().map(|&i| ids[i].as_str()).collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "criteria {c:?}");
        assert_eq!(
            result.pagination.unwrap_or_default().total_items as usize,
            want.len()
        );
    }

    // Cursor paging walks every job once, in the order of an unpaged query.
    let everything: Vec<String> = grpc
        .find_jobs(request(find(BTreeMap::new(), 100, String::new())))
        .await?
        .into_inner()
        .items
        .into_iter()
        .map(|j| j.id)
        .collect();
    let mut sorted_ids = ids.clone();
    sorted_ids.sort_unstable();
    let mut sorted_everything = everything.clone();
    sorted_everything.sort_unstable();
    assert_eq!(sorted_everything, sorted_ids);
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let result = grpc
            .find_jobs(request(find(BTreeMap::new(), 2, cursor.clone())))
            .await?
            .into_inner();
        let p = result.pagination.unwrap_or_default();
        assert_eq!(p.total_items, 5);
        seen.extend(result.items.into_iter().map(|j| j.id));
        if !p.has_more {
            break;
        }
        cursor = p.cursor;
    }
    assert_eq!(seen, everything);

    // Page numbers too (deprecated but served).
    #[allow(deprecated)]
    let second = pb::Page {
        page_number: 1,
        page_size: 2,
        cursor: String::new(),
    };
    let result = grpc
        .find_jobs(request(pb::JobQuery {
            page: Some(second),
            ..Default::default()
        }))
        .await?
        .into_inner();
    assert_eq!(
        result
            .items
            .iter()
            .map(|j| j.id.clone())
            .collect::<Vec<_>>(),
        everything[2..4].to_vec()
    );

    // Projection keeps the id and the named fields only.
    let result = grpc
        .find_jobs(request(pb::JobQuery {
            page: page(1),
            fields: vec![
                "status.state".into(),
                "jobDescriptor.applicationName".into(),
            ],
            ..Default::default()
        }))
        .await?
        .into_inner();
    let job = &result.items[0];
    assert_eq!(job.id, everything[0]);
    let d = job.job_descriptor.clone().unwrap_or_default();
    assert!(!d.application_name.is_empty());
    assert!(d.owner.is_none() && d.container.is_none());
    assert!(job.status_history.is_empty() && job.version.is_none());

    // Unknown keys and bad pages are refused.
    let err = grpc
        .find_jobs(request(find(criteria(&[("cell", "x")]), 1, String::new())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().ends_with("Unrecognized field(s) [cell]"),
        "{}",
        err.message()
    );
    let err = grpc
        .find_jobs(request(find(BTreeMap::new(), 0, String::new())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("Page size must be > 0 (is 0)"));
    let err = grpc
        .find_jobs(request(find(BTreeMap::new(), 1, "%%%".into())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal);
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn find_tasks_serves_task_queries_and_projections() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let mut grpc = env.grpc().await?;
    let batch = grpc
        .create_job(request(batch_descriptor("b", 3)))
        .await?
        .into_inner()
        .id;
    let service = grpc
        .create_job(request(service_descriptor("s", 1, 2, 3)))
        .await?
        .into_inner()
        .id;
    let batch_tasks = lifecycle::accept_job(&env.jobs(), &env.tasks(), &batch).await?;
    let service_tasks = lifecycle::accept_job(&env.jobs(), &env.tasks(), &service).await?;
    lifecycle::set_task_state(
        &env.tasks(),
        &batch_tasks[0],
        titus_crds::TaskState::Started,
        titus_crds::TaskReasonCode::Normal,
    )
    .await?;
    lifecycle::set_task_state(
        &env.tasks(),
        &batch_tasks[1],
        titus_crds::TaskState::Finished,
        titus_crds::TaskReasonCode::Crashed,
    )
    .await?;
    let last = service_tasks[1].clone();
    support::wait_for(
        std::time::Duration::from_secs(10),
        "tasks in the cache",
        || async {
            let cache = env.gateway.jobs.cache();
            let ready = cache.read(|v| {
                v.task(&last).is_some()
                    && v.task(&batch_tasks[1]).is_some_and(|t| {
                        t.proto
                            .status
                            .as_ref()
                            .is_some_and(|s| s.state == pb::task_status::TaskState::Finished as i32)
                    })
            });
            ready.then_some(())
        },
    )
    .await?;

    let query = |c: &[(&str, &str)], fields: Vec<String>| pb::TaskQuery {
        page: page(100),
        filtering_criteria: criteria(c),
        fields,
    };
    // Sorted: order is (Accepted time, id) and these tasks may share a millisecond.
    let ids = |r: pb::TaskQueryResult| {
        let mut ids: Vec<String> = r.items.into_iter().map(|t| t.id).collect();
        ids.sort_unstable();
        ids
    };
    let sorted = |mut v: Vec<String>| {
        v.sort_unstable();
        v
    };
    let all = grpc
        .find_tasks(request(query(&[], vec![])))
        .await?
        .into_inner();
    assert_eq!(all.items.len(), 5);
    let of_batch = grpc
        .find_tasks(request(query(&[("jobIds", &batch)], vec![])))
        .await?
        .into_inner();
    assert_eq!(ids(of_batch), sorted(batch_tasks.clone()));
    let started = grpc
        .find_tasks(request(query(&[("taskStates", "started")], vec![])))
        .await?
        .into_inner();
    assert_eq!(ids(started), vec![batch_tasks[0].clone()]);
    let crashed = grpc
        .find_tasks(request(query(&[("taskStateReasons", "crashed")], vec![])))
        .await?
        .into_inner();
    assert_eq!(ids(crashed), vec![batch_tasks[1].clone()]);
    let no_system_failures = grpc
        .find_tasks(request(query(
            &[("jobIds", &batch), ("skipSystemFailures", "true")],
            vec![],
        )))
        .await?
        .into_inner();
    assert_eq!(
        ids(no_system_failures),
        sorted(vec![batch_tasks[0].clone(), batch_tasks[2].clone()])
    );
    let services = grpc
        .find_tasks(request(query(&[("jobType", "service")], vec![])))
        .await?
        .into_inner();
    assert_eq!(ids(services), sorted(service_tasks.clone()));

    // Task context carries the identity keys; a map path keeps only the named key.
    let task = grpc
        .find_task(request(pb::TaskId {
            id: batch_tasks[2].clone(),
        }))
        .await?
        .into_inner();
    assert_eq!(task.job_id, batch);
    assert_eq!(task.task_context["task.index"], "2");
    assert_eq!(task.task_context["task.originalId"], batch_tasks[2]);
    assert_eq!(task.task_context["task.resubmitNumber"], "0");
    let projected = grpc
        .find_tasks(request(query(
            &[("jobIds", &batch)],
            vec!["taskContext.task.index".into()],
        )))
        .await?
        .into_inner();
    assert!(
        projected
            .items
            .iter()
            .all(|t| t.task_context.len() == 1 && t.job_id.is_empty())
    );

    let err = grpc
        .find_task(request(pb::TaskId {
            id: "not-a-uuid".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .contains("Task id must be UUID string, but is: not-a-uuid")
    );
    let err = grpc
        .find_task(request(pb::TaskId {
            id: uuid::Uuid::new_v4().to_string(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    env.stop().await;
    Ok(())
}
