//! The Titus v3 REST API (§12) on axum, over the same job service as gRPC.
//!
//! Bodies and responses are Titus REST JSON ([`json`](mod@json)). Query parameters `page` (default 0),
//! `pageSize` (default 10), `cursor` and `fields` page and project; `debug=true` adds error
//! context; every other parameter is a filtering criterion. Errors are
//! `{"statusCode", "message", "errorDetails"}` with Titus's status mapping (404, 400, 412, ...).

pub mod json;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::json;

use crate::call::CallMetadata;
use crate::error::ApiError;
use crate::jobs::JobService;
use crate::jobs::plan::CapacityChange;
use crate::jobs::reads;
use crate::pb;
use crate::query::Projection;
use crate::translate::{budget_to_spec, processes_to_spec};
use json::{parse_body, to_json};

/// The REST router.
pub fn router(jobs: Arc<JobService>) -> Router {
    Router::new()
        .route("/api/v3/jobs", post(create_job).get(find_jobs))
        .route("/api/v3/jobs/{id}", get(find_job).delete(kill_job))
        .route("/api/v3/jobs/{id}/instances", put(update_instances))
        .route(
            "/api/v3/jobs/{id}/capacityAttributes",
            put(update_capacity_attributes),
        )
        .route("/api/v3/jobs/{id}/jobprocesses", put(update_processes))
        .route("/api/v3/jobs/{id}/disruptionBudget", put(update_budget))
        .route(
            "/api/v3/jobs/{id}/attributes",
            put(update_job_attributes).delete(delete_job_attributes),
        )
        .route("/api/v3/jobs/{id}/enable", post(enable_job))
        .route("/api/v3/jobs/{id}/disable", post(disable_job))
        .route("/api/v3/tasks", get(find_tasks))
        .route("/api/v3/tasks/move", post(move_task))
        .route("/api/v3/tasks/{id}", get(find_task).delete(kill_task))
        .route(
            "/api/v3/tasks/{id}/attributes",
            put(update_task_attributes).delete(delete_task_attributes),
        )
        .route("/api/v3/status", get(status))
        .route("/health", get(status))
        .with_state(jobs)
}

/// A REST failure: the error and whether the caller asked for debug details.
struct RestError {
    error: ApiError,
    debug: bool,
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let status = self.error.http_status();
        let violations: Vec<serde_json::Value> = self
            .error
            .field_violations()
            .into_iter()
            .map(|(field, description)| json!({"field": field, "description": description}))
            .collect();
        let mut body = json!({
            "statusCode": status.as_u16(),
            "message": self.error.to_string(),
        });
        if !violations.is_empty() {
            body["errorDetails"] = json!({"fieldViolations": violations});
        }
        if self.debug {
            let constraints: serde_json::Map<String, serde_json::Value> = self
                .error
                .field_violations()
                .into_iter()
                .map(|(f, d)| (f, serde_json::Value::String(d)))
                .collect();
            body["errorContext"] = json!({
                "exception": self.error.exception_name(),
                "constraintViolations": constraints,
            });
        }
        (status, axum::Json(body)).into_response()
    }
}

/// What every handler needs: the job service, the caller and the query parameters.
struct Call {
    jobs: Arc<JobService>,
    metadata: CallMetadata,
    params: BTreeMap<String, String>,
}

impl FromRequestParts<Arc<JobService>> for Call {
    type Rejection = RestError;

    async fn from_request_parts(
        parts: &mut Parts,
        jobs: &Arc<JobService>,
    ) -> Result<Call, RestError> {
        let mut metadata = CallMetadata::from_headers(&parts.headers);
        let params = Query::<BTreeMap<String, String>>::try_from_uri(&parts.uri)
            .map(|q| q.0)
            .map_err(|e| RestError {
                error: ApiError::InvalidArgument(format!("Invalid query string: {e}")),
                debug: false,
            })?;
        if params
            .get("debug")
            .is_some_and(|d| d.eq_ignore_ascii_case("true"))
        {
            metadata.debug = true;
        }
        Ok(Call {
            jobs: jobs.clone(),
            metadata,
            params,
        })
    }
}

impl Call {
    fn fail(&self, error: ApiError) -> RestError {
        RestError {
            error,
            debug: self.metadata.debug,
        }
    }

    fn done(&self, result: Result<(), ApiError>) -> Result<StatusCode, RestError> {
        result.map(|()| StatusCode::OK).map_err(|e| self.fail(e))
    }

    fn body<M: prost::Message + Default>(&self, body: &[u8], name: &str) -> Result<M, RestError> {
        parse_body(body, name).map_err(|e| self.fail(e))
    }

    fn flag(&self, key: &str) -> bool {
        self.params
            .get(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    fn fields(&self) -> Vec<String> {
        self.params.get("fields").cloned().into_iter().collect()
    }

    fn keys(&self) -> Vec<String> {
        self.params
            .get("keys")
            .map(|k| {
                k.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Splits the query parameters into a page, a projection and filtering criteria.
    fn query(&self) -> Result<QueryParts, RestError> {
        let number = |key: &str, default: i32| -> Result<i32, RestError> {
            self.params.get(key).map_or(Ok(default), |v| {
                v.trim().parse().map_err(|_| {
                    self.fail(ApiError::InvalidArgument(format!(
                        "Invalid {key} value {v}"
                    )))
                })
            })
        };
        #[allow(deprecated)] // pageNumber is still how REST pages
        let page = pb::Page {
            page_number: number("page", 0)?,
            page_size: number("pageSize", 10)?,
            cursor: self.params.get("cursor").cloned().unwrap_or_default(),
        };
        let criteria = self
            .params
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "page" | "pageSize" | "cursor" | "fields" | "debug"
                )
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(QueryParts {
            page,
            fields: self.fields(),
            criteria,
        })
    }
}

/// A REST query: page, projection and filtering criteria.
struct QueryParts {
    page: pb::Page,
    fields: Vec<String>,
    criteria: BTreeMap<String, String>,
}

type Reply = Result<Response, RestError>;
type Done = Result<StatusCode, RestError>;

fn json_reply<M: prost::Message>(status: StatusCode, message: &M, name: &str) -> Response {
    (status, axum::Json(to_json(message, name))).into_response()
}

fn capacity_change(min: Option<u32>, desired: Option<u32>, max: Option<u32>) -> CapacityChange {
    CapacityChange { min, desired, max }
}

async fn create_job(call: Call, body: Bytes) -> Reply {
    let descriptor: pb::JobDescriptor = call.body(&body, "JobDescriptor")?;
    let id = call
        .jobs
        .create_job(&call.metadata, &descriptor)
        .await
        .map_err(|e| call.fail(e))?;
    Ok(json_reply(StatusCode::ACCEPTED, &pb::JobId { id }, "JobId"))
}

async fn find_jobs(call: Call) -> Reply {
    let parts = call.query()?;
    let query = pb::JobQuery {
        page: Some(parts.page),
        filtering_criteria: parts.criteria,
        fields: parts.fields,
    };
    let result = call
        .jobs
        .read(|v| reads::find_jobs(v, &query))
        .await
        .map_err(|e| call.fail(e))?;
    Ok(json_reply(StatusCode::OK, &result, "JobQueryResult"))
}

async fn find_job(call: Call, Path(id): Path<String>) -> Reply {
    let job = call
        .jobs
        .read(|v| reads::find_job(v, &id))
        .await
        .map_err(|e| call.fail(e))?;
    let job = reads::project(Projection::job(&call.fields()).as_ref(), &job);
    Ok(json_reply(StatusCode::OK, &job, "Job"))
}

async fn kill_job(call: Call, Path(id): Path<String>) -> Done {
    call.done(call.jobs.kill_job(&call.metadata, &id).await)
}

async fn update_instances(call: Call, Path(id): Path<String>, body: Bytes) -> Done {
    let c: pb::Capacity = call.body(&body, "Capacity")?;
    let change = capacity_change(Some(c.min), Some(c.desired), Some(c.max));
    call.done(call.jobs.update_capacity(&id, change).await)
}

async fn update_capacity_attributes(call: Call, Path(id): Path<String>, body: Bytes) -> Done {
    let c: pb::JobCapacityWithOptionalAttributes =
        call.body(&body, "JobCapacityWithOptionalAttributes")?;
    let change = capacity_change(c.min, c.desired, c.max);
    call.done(call.jobs.update_capacity(&id, change).await)
}

async fn update_processes(call: Call, Path(id): Path<String>, body: Bytes) -> Done {
    let processes: pb::service_job_spec::ServiceJobProcesses =
        call.body(&body, "ServiceJobSpec.ServiceJobProcesses")?;
    let processes = processes_to_spec(&processes);
    call.done(call.jobs.update_processes(&id, processes).await)
}

async fn update_budget(call: Call, Path(id): Path<String>, body: Bytes) -> Done {
    let budget: pb::JobDisruptionBudget = call.body(&body, "JobDisruptionBudget")?;
    let budget = budget_to_spec(&budget).map_err(|e| call.fail(ApiError::BadDescriptor(e)))?;
    call.done(call.jobs.update_budget(&id, budget).await)
}

/// Titus's rule for attribute bodies: an id in the body must match the path (or be empty).
fn same_id(call: &Call, kind: &str, body_id: &str, path_id: &str) -> Result<(), RestError> {
    if body_id.is_empty() || body_id == path_id {
        return Ok(());
    }
    Err(call.fail(ApiError::InvalidArgument(format!(
        "{kind} id in the body ({body_id}) does not match the path ({path_id})"
    ))))
}

async fn update_job_attributes(call: Call, Path(id): Path<String>, body: Bytes) -> Done {
    let update: pb::JobAttributesUpdate = call.body(&body, "JobAttributesUpdate")?;
    same_id(&call, "Job", &update.job_id, &id)?;
    call.done(
        call.jobs
            .update_job_attributes(&id, &update.attributes)
            .await,
    )
}

async fn delete_job_attributes(call: Call, Path(id): Path<String>) -> Done {
    call.done(call.jobs.delete_job_attributes(&id, &call.keys()).await)
}

async fn enable_job(call: Call, Path(id): Path<String>) -> Done {
    call.done(call.jobs.update_enabled(&id, true).await)
}

async fn disable_job(call: Call, Path(id): Path<String>) -> Done {
    call.done(call.jobs.update_enabled(&id, false).await)
}

async fn find_tasks(call: Call) -> Reply {
    let parts = call.query()?;
    let query = pb::TaskQuery {
        page: Some(parts.page),
        filtering_criteria: parts.criteria,
        fields: parts.fields,
    };
    let result = call
        .jobs
        .read(|v| reads::find_tasks(v, &query))
        .await
        .map_err(|e| call.fail(e))?;
    Ok(json_reply(StatusCode::OK, &result, "TaskQueryResult"))
}

async fn find_task(call: Call, Path(id): Path<String>) -> Reply {
    let task = call
        .jobs
        .read(|v| reads::find_task(v, &id))
        .await
        .map_err(|e| call.fail(e))?;
    let task = reads::project(Projection::task(&call.fields()).as_ref(), &task);
    Ok(json_reply(StatusCode::OK, &task, "Task"))
}

async fn kill_task(call: Call, Path(id): Path<String>) -> Done {
    let request = pb::TaskKillRequest {
        task_id: id,
        shrink: call.flag("shrink"),
        prevent_min_size_update: call.flag("preventMinSizeUpdate"),
    };
    call.done(call.jobs.kill_task(&call.metadata, &request).await)
}

async fn update_task_attributes(call: Call, Path(id): Path<String>, body: Bytes) -> Done {
    let update: pb::TaskAttributesUpdate = call.body(&body, "TaskAttributesUpdate")?;
    same_id(&call, "Task", &update.task_id, &id)?;
    call.done(
        call.jobs
            .update_task_attributes(&id, &update.attributes)
            .await,
    )
}

async fn delete_task_attributes(call: Call, Path(id): Path<String>) -> Done {
    call.done(call.jobs.delete_task_attributes(&id, &call.keys()).await)
}

async fn move_task(call: Call, body: Bytes) -> Done {
    let request: pb::TaskMoveRequest = call.body(&body, "TaskMoveRequest")?;
    call.done(call.jobs.move_task(&request).await)
}

async fn status(call: Call) -> Response {
    let ready = call.jobs.cache().is_ready();
    let (code, state) = if ready {
        (StatusCode::OK, "SERVING")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "NOT_SERVING")
    };
    (
        code,
        axum::Json(json!({"status": state, "cacheSynced": ready})),
    )
        .into_response()
}
