//! The v3 REST API: Titus JSON in and out, Titus's status codes and error bodies.

mod support;

use serde_json::json;
use support::rest::call;
use support::{Env, lifecycle};

fn job_json(app: &str) -> serde_json::Value {
    let descriptor = support::batch_descriptor(app, 2);
    titus_gateway::rest::json::to_json(&descriptor, "JobDescriptor")
}

#[tokio::test]
async fn jobs_are_created_found_scaled_and_killed_over_rest() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let base = env.rest_url();
    let (code, body) = call(
        "POST",
        &format!("{base}/api/v3/jobs"),
        Some(job_json("restapp")),
    )
    .await?;
    assert_eq!(code, 202, "{body}");
    let id = body["id"].as_str().unwrap_or_default().to_string();
    assert!(titus_crds::ids::is_uuid(&id), "{body}");

    let (code, body) = call(
        "GET",
        &format!("{base}/api/v3/jobs?applicationName=restapp"),
        None,
    )
    .await?;
    assert_eq!(code, 200);
    assert_eq!(body["pagination"]["totalItems"], 1);
    assert_eq!(body["pagination"]["currentPage"]["pageSize"], 10);
    let job = &body["items"][0];
    assert_eq!(job["id"], id.as_str());
    assert_eq!(
        job["jobDescriptor"]["container"]["resources"]["memoryMB"],
        512
    );
    assert_eq!(job["jobDescriptor"]["batch"]["size"], 2);
    assert_eq!(job["status"]["state"], "Accepted");
    assert!(
        job["status"]["timestamp"].is_u64(),
        "64-bit integers are JSON numbers: {job}"
    );
    assert_eq!(
        job["jobDescriptor"]["attributes"]["titus.createdBy"],
        support::CALLER
    );

    let (code, body) = call(
        "GET",
        &format!("{base}/api/v3/jobs/{id}?fields=status.state"),
        None,
    )
    .await?;
    assert_eq!(code, 200);
    assert_eq!(body["status"]["state"], "Accepted");
    assert_eq!(body["jobDescriptor"], serde_json::Value::Null);

    // Tasks.
    let tasks = lifecycle::accept_job(&env.jobs(), &env.tasks(), &id).await?;
    let last = tasks[1].clone();
    support::wait_for(
        std::time::Duration::from_secs(10),
        "tasks in the cache",
        || async {
            env.gateway
                .jobs
                .cache()
                .read(|v| v.task(&last).is_some())
                .then_some(())
        },
    )
    .await?;
    let (code, body) = call(
        "GET",
        &format!("{base}/api/v3/tasks?jobIds={id}&pageSize=1"),
        None,
    )
    .await?;
    assert_eq!(code, 200);
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["pagination"]["hasMore"], true);
    let (code, body) = call("GET", &format!("{base}/api/v3/tasks/{}", tasks[0]), None).await?;
    assert_eq!(code, 200);
    assert_eq!(body["jobId"], id.as_str());
    assert_eq!(body["taskContext"]["task.index"], "0");
    let (code, _) = call("DELETE", &format!("{base}/api/v3/tasks/{}", tasks[0]), None).await?;
    assert_eq!(code, 200);
    let (code, body) = call("DELETE", &format!("{base}/api/v3/tasks/{}", tasks[0]), None).await?;
    assert_eq!(code, 412, "{body}");
    assert_eq!(body["statusCode"], 412);
    let (code, body) = call(
        "DELETE",
        &format!("{base}/api/v3/tasks/{}?shrink=true", tasks[1]),
        None,
    )
    .await?;
    assert_eq!(code, 400, "batch tasks cannot shrink: {body}");

    // Attributes.
    let (code, _) = call(
        "PUT",
        &format!("{base}/api/v3/jobs/{id}/attributes"),
        Some(json!({"attributes": {"k": "v"}})),
    )
    .await?;
    assert_eq!(code, 200);
    let (code, body) = call(
        "PUT",
        &format!("{base}/api/v3/jobs/{id}/attributes"),
        Some(json!({"jobId": "other", "attributes": {}})),
    )
    .await?;
    assert_eq!(code, 400, "{body}");
    let (code, _) = call(
        "DELETE",
        &format!("{base}/api/v3/jobs/{id}/attributes?keys=k"),
        None,
    )
    .await?;
    assert_eq!(code, 200);
    let (code, _) = call(
        "PUT",
        &format!("{base}/api/v3/tasks/{}/attributes", tasks[1]),
        Some(json!({"attributes": {"t": "1"}})),
    )
    .await?;
    assert_eq!(code, 200);
    let (_, body) = call("GET", &format!("{base}/api/v3/tasks/{}", tasks[1]), None).await?;
    assert_eq!(body["attributes"]["t"], "1");

    let (code, _) = call("DELETE", &format!("{base}/api/v3/jobs/{id}"), None).await?;
    assert_eq!(code, 200);
    let job = lifecycle::job_by_id(&env.jobs(), &id).await?;
    assert!(job.metadata.deletion_timestamp.is_some());
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn service_jobs_scale_and_toggle_over_rest() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let base = env.rest_url();
    let descriptor = titus_gateway::rest::json::to_json(
        &support::service_descriptor("svc", 1, 1, 3),
        "JobDescriptor",
    );
    let (_, body) = call("POST", &format!("{base}/api/v3/jobs"), Some(descriptor)).await?;
    let id = body["id"].as_str().unwrap_or_default().to_string();
    let (code, _) = call(
        "PUT",
        &format!("{base}/api/v3/jobs/{id}/instances"),
        Some(json!({"min": 1, "desired": 2, "max": 4})),
    )
    .await?;
    assert_eq!(code, 200);
    let (code, _) = call(
        "PUT",
        &format!("{base}/api/v3/jobs/{id}/capacityAttributes"),
        Some(json!({"desired": 3})),
    )
    .await?;
    assert_eq!(code, 200);
    let job = lifecycle::job_by_id(&env.jobs(), &id).await?;
    assert_eq!(
        job.spec.service.as_ref().map(|s| s.capacity),
        Some(titus_crds::Capacity {
            min: 1,
            desired: 3,
            max: 4
        })
    );
    let (code, body) = call(
        "PUT",
        &format!("{base}/api/v3/jobs/{id}/instances"),
        Some(json!({"min": 5, "desired": 2, "max": 4})),
    )
    .await?;
    assert_eq!(code, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Current Capacity{min=1, desired=3, max=4}."),
        "{body}"
    );
    assert!(
        body["errorDetails"]["fieldViolations"]
            .as_array()
            .is_some_and(|v| !v.is_empty()),
        "{body}"
    );
    let (code, _) = call("POST", &format!("{base}/api/v3/jobs/{id}/disable"), None).await?;
    assert_eq!(code, 200);
    assert_eq!(
        lifecycle::job_by_id(&env.jobs(), &id)
            .await?
            .spec
            .service
            .map(|s| s.enabled),
        Some(false)
    );
    let (code, _) = call("POST", &format!("{base}/api/v3/jobs/{id}/enable"), None).await?;
    assert_eq!(code, 200);
    let (code, _) = call(
        "PUT",
        &format!("{base}/api/v3/jobs/{id}/jobprocesses"),
        Some(json!({"disableDecreaseDesired": true})),
    )
    .await?;
    assert_eq!(code, 200);
    let (code, _) = call(
        "PUT",
        &format!("{base}/api/v3/jobs/{id}/disruptionBudget"),
        Some(json!({"relocationLimit": {"limit": 2}, "rateUnlimited": {}})),
    )
    .await?;
    assert_eq!(code, 200);
    let job = lifecycle::job_by_id(&env.jobs(), &id).await?;
    assert!(
        job.spec
            .service
            .unwrap_or_default()
            .service_job_processes
            .disable_decrease_desired
    );
    assert_eq!(
        job.spec
            .disruption_budget
            .and_then(|b| b.relocation_limit)
            .map(|r| r.limit),
        Some(2)
    );
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn rest_errors_have_titus_shape_and_codes() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let base = env.rest_url();
    let mut bad = job_json("bad");
    bad["container"]["resources"]["cpu"] = json!(200);
    let (code, body) = call("POST", &format!("{base}/api/v3/jobs?debug=true"), Some(bad)).await?;
    assert_eq!(code, 400);
    assert_eq!(body["statusCode"], 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Above maximum allowed value 96.0")
    );
    assert_eq!(
        body["errorDetails"]["fieldViolations"][0]["field"],
        "container.containerResources.cpu"
    );
    assert_eq!(
        body["errorContext"]["constraintViolations"]["container.containerResources.cpu"],
        "Above maximum allowed value 96.0"
    );

    let missing = uuid::Uuid::new_v4();
    let cases = [
        ("GET", format!("/api/v3/jobs/{missing}"), None, 404),
        ("GET", "/api/v3/jobs/nope".to_string(), None, 400),
        ("GET", format!("/api/v3/tasks/{missing}"), None, 404),
        ("GET", "/api/v3/jobs?cell=x".to_string(), None, 400),
        ("GET", "/api/v3/jobs?pageSize=0".to_string(), None, 400),
        ("GET", "/api/v3/jobs?pageSize=ten".to_string(), None, 400),
        ("GET", "/api/v3/jobs?cursor=!!".to_string(), None, 500),
        (
            "POST",
            "/api/v3/jobs".to_string(),
            Some(json!({"container": "not an object"})),
            400,
        ),
        ("DELETE", format!("/api/v3/jobs/{missing}"), None, 404),
        (
            "PUT",
            format!("/api/v3/jobs/{missing}/instances"),
            Some(json!({"min": 0, "desired": 0, "max": 0})),
            404,
        ),
        (
            "POST",
            "/api/v3/tasks/move".to_string(),
            Some(
                json!({"sourceJobId": missing.to_string(), "targetJobId": missing.to_string(), "taskId": missing.to_string()}),
            ),
            400,
        ),
    ];
    for (method, path, body, expected) in cases {
        let (code, response) = call(method, &format!("{base}{path}"), body).await?;
        assert_eq!(code, expected, "{method} {path}: {response}");
        assert_eq!(
            response["statusCode"], expected,
            "{method} {path}: {response}"
        );
        assert!(
            response["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{response}"
        );
    }
    let (code, body) = call("GET", &format!("{base}/api/v3/status"), None).await?;
    assert_eq!((code, body["status"].as_str()), (200, Some("SERVING")));
    env.stop().await;
    Ok(())
}
