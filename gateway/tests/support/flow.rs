//! Helpers for tests that follow jobs through their life: a compact view of stream
//! notifications and a service job accepted with its tasks `Started`.

use titus_crds::{TaskReasonCode, TaskState};
use titus_gateway::pb;
use titus_gateway::pb::job_change_notification::Notification;

use super::{Env, lifecycle, request, service_descriptor};

/// The generated gRPC client over a plain channel.
pub type Grpc =
    pb::job_management_service_client::JobManagementServiceClient<tonic::transport::Channel>;

/// A compact view of a notification: ("job"|"task"|"end", id, state name).
pub fn describe(n: Option<pb::JobChangeNotification>) -> (String, String, String) {
    use pb::job_status::JobState as J;
    use pb::task_status::TaskState as T;
    match n.and_then(|n| n.notification) {
        Some(Notification::JobUpdate(u)) => {
            let job = u.job.unwrap_or_default();
            let state = job.status.map(|s| s.state).unwrap_or_default();
            let name = J::try_from(state).map_or("?", |s| s.as_str_name());
            ("job".into(), job.id, name.into())
        }
        Some(Notification::TaskUpdate(u)) => {
            let task = u.task.unwrap_or_default();
            let state = task.status.map(|s| s.state).unwrap_or_default();
            let name = T::try_from(state).map_or("?", |s| s.as_str_name());
            ("task".into(), task.id, name.into())
        }
        Some(Notification::SnapshotEnd(_)) => ("end".into(), String::new(), String::new()),
        Some(Notification::KeepAliveResponse(r)) => (
            "keepalive".into(),
            r.request.unwrap_or_default().request_id.to_string(),
            String::new(),
        ),
        None => ("none".into(), String::new(), String::new()),
    }
}

/// One expected `describe` value.
pub fn step(kind: &str, id: &str, state: &str) -> (String, String, String) {
    (kind.into(), id.into(), state.into())
}

/// The service capacity of a job, read from the API server.
pub async fn capacity(env: &Env, id: &str) -> anyhow::Result<titus_crds::Capacity> {
    let job = lifecycle::job_by_id(&env.jobs(), id).await?;
    Ok(job.spec.service.map(|s| s.capacity).unwrap_or_default())
}

/// A service job created through the gateway, accepted by the stand-in controller, with every
/// task `Started` and visible in the gateway's cache. Returns the job id and the task ids.
pub async fn accepted_service(
    env: &Env,
    grpc: &mut Grpc,
    min: u32,
    desired: u32,
    max: u32,
) -> anyhow::Result<(String, Vec<String>)> {
    let id = grpc
        .create_job(request(service_descriptor("svc", min, desired, max)))
        .await?
        .into_inner()
        .id;
    let tasks = lifecycle::accept_job(&env.jobs(), &env.tasks(), &id).await?;
    for task in &tasks {
        lifecycle::set_task_state(
            &env.tasks(),
            task,
            TaskState::Started,
            TaskReasonCode::Normal,
        )
        .await?;
    }
    let last = tasks.last().cloned().unwrap_or_default();
    super::wait_for(
        std::time::Duration::from_secs(10),
        "started tasks in the cache",
        || async {
            env.gateway
                .jobs
                .cache()
                .read(|v| {
                    v.task(&last).is_some_and(|t| {
                        t.proto
                            .status
                            .as_ref()
                            .is_some_and(|s| s.state == pb::task_status::TaskState::Started as i32)
                    })
                })
                .then_some(())
        },
    )
    .await?;
    Ok((id, tasks))
}
