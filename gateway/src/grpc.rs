//! `com.netflix.titus.JobManagementService` over tonic: request -> call metadata -> job service
//! or cache read -> response, with every error mapped once by [`ApiError::to_status`].

use std::sync::Arc;

use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use crate::call::CallMetadata;
use crate::error::ApiError;
use crate::jobs::JobService;
use crate::jobs::plan::CapacityChange;
use crate::jobs::reads::{self, check_job_id};
use crate::observe::{NotificationStream, ObserveRequest, observe};
use crate::pb;
use crate::pb::job_management_service_server::JobManagementService;
use crate::query::{Criteria, Projection};
use crate::translate::{budget_to_spec, processes_to_spec};

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct GrpcService {
    jobs: Arc<JobService>,
}

impl GrpcService {
    /// A service backed by `jobs`.
    pub fn new(jobs: Arc<JobService>) -> GrpcService {
        GrpcService { jobs }
    }
}

fn call_of<T>(request: &Request<T>) -> CallMetadata {
    CallMetadata::from_headers(&request.metadata().clone().into_headers())
}

fn fail(call: &CallMetadata, method: &str, error: &ApiError) -> Status {
    match error.code() {
        tonic::Code::Internal | tonic::Code::Unavailable => {
            tracing::warn!(method, caller = call.caller(), %error, "request failed");
        }
        _ => tracing::debug!(method, caller = call.caller(), %error, "request refused"),
    }
    error.to_status(call.debug)
}

/// Builds a stream request from an `ObserveJobsQuery`.
///
/// # Errors
/// Bad criteria.
pub fn observe_request(
    query: &pb::ObserveJobsQuery,
    keep_archived: bool,
) -> Result<ObserveRequest, ApiError> {
    Ok(ObserveRequest {
        criteria: Criteria::parse(&query.filtering_criteria)?,
        job_fields: Projection::job(&query.job_fields),
        task_fields: Projection::task(&query.task_fields),
        keep_archived,
        until_finished: None,
    })
}

/// Builds the `ObserveJob` stream request after checking the job exists.
///
/// # Errors
/// `InvalidJobId`, `JobNotFound`, `Unavailable`.
pub async fn observe_job_request(
    jobs: &JobService,
    job_id: &str,
) -> Result<ObserveRequest, ApiError> {
    check_job_id(job_id)?;
    jobs.read(|v| reads::find_job(v, job_id)).await?;
    let criteria = Criteria::parse(&[("jobIds".to_string(), job_id.to_string())].into())?;
    Ok(ObserveRequest {
        criteria,
        until_finished: Some(job_id.to_string()),
        ..ObserveRequest::default()
    })
}

type Unary<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl JobManagementService for GrpcService {
    async fn create_job(&self, request: Request<pb::JobDescriptor>) -> Unary<pb::JobId> {
        let call = call_of(&request);
        match self.jobs.create_job(&call, request.get_ref()).await {
            Ok(id) => Ok(Response::new(pb::JobId { id })),
            Err(e) => Err(fail(&call, "CreateJob", &e)),
        }
    }

    async fn update_job_capacity(&self, request: Request<pb::JobCapacityUpdate>) -> Unary<()> {
        let call = call_of(&request);
        let r = request.get_ref();
        let result = match r.capacity {
            Some(c) => {
                let change = CapacityChange {
                    min: Some(c.min),
                    desired: Some(c.desired),
                    max: Some(c.max),
                };
                self.jobs.update_capacity(&r.job_id, change).await
            }
            None => Err(ApiError::InvalidArgument(
                "Capacity must be provided".to_string(),
            )),
        };
        result
            .map(Response::new)
            .map_err(|e| fail(&call, "UpdateJobCapacity", &e))
    }

    async fn update_job_capacity_with_optional_attributes(
        &self,
        request: Request<pb::JobCapacityUpdateWithOptionalAttributes>,
    ) -> Unary<()> {
        let call = call_of(&request);
        let r = request.get_ref();
        let c = r.job_capacity_with_optional_attributes.unwrap_or_default();
        let change = CapacityChange {
            min: c.min,
            desired: c.desired,
            max: c.max,
        };
        self.jobs
            .update_capacity(&r.job_id, change)
            .await
            .map(Response::new)
            .map_err(|e| fail(&call, "UpdateJobCapacityWithOptionalAttributes", &e))
    }

    async fn update_job_status(&self, request: Request<pb::JobStatusUpdate>) -> Unary<()> {
        let call = call_of(&request);
        let r = request.get_ref();
        self.jobs
            .update_enabled(&r.id, r.enable_status)
            .await
            .map(Response::new)
            .map_err(|e| fail(&call, "UpdateJobStatus", &e))
    }

    async fn update_job_processes(&self, request: Request<pb::JobProcessesUpdate>) -> Unary<()> {
        let call = call_of(&request);
        let r = request.get_ref();
        let processes = processes_to_spec(&r.service_job_processes.unwrap_or_default());
        self.jobs
            .update_processes(&r.job_id, processes)
            .await
            .map(Response::new)
            .map_err(|e| fail(&call, "UpdateJobProcesses", &e))
    }

    async fn update_job_disruption_budget(
        &self,
        request: Request<pb::JobDisruptionBudgetUpdate>,
    ) -> Unary<()> {
        let call = call_of(&request);
        let r = request.get_ref();
        let result = match budget_to_spec(&r.disruption_budget.clone().unwrap_or_default()) {
            Ok(budget) => self.jobs.update_budget(&r.job_id, budget).await,
            Err(e) => Err(ApiError::BadDescriptor(e)),
        };
        result
            .map(Response::new)
            .map_err(|e| fail(&call, "UpdateJobDisruptionBudget", &e))
    }

    async fn find_jobs(&self, request: Request<pb::JobQuery>) -> Unary<pb::JobQueryResult> {
        let call = call_of(&request);
        self.jobs
            .read(|v| reads::find_jobs(v, request.get_ref()))
            .await
            .map(Response::new)
            .map_err(|e| fail(&call, "FindJobs", &e))
    }

    async fn find_job(&self, request: Request<pb::JobId>) -> Unary<pb::Job> {
        let call = call_of(&request);
        self.jobs
            .read(|v| reads::find_job(v, &request.get_ref().id))
            .await
            .map(Response::new)
            .map_err(|e| fail(&call, "FindJob", &e))
    }

    type ObserveJobStream = NotificationStream;

    async fn observe_job(&self, request: Request<pb::JobId>) -> Unary<Self::ObserveJobStream> {
        let call = call_of(&request);
        let observe_request = observe_job_request(&self.jobs, &request.get_ref().id)
            .await
            .map_err(|e| fail(&call, "ObserveJob", &e))?;
        Ok(Response::new(observe(
            self.jobs.cache().clone(),
            observe_request,
            None,
        )))
    }

    type ObserveJobsStream = NotificationStream;

    async fn observe_jobs(
        &self,
        request: Request<pb::ObserveJobsQuery>,
    ) -> Unary<Self::ObserveJobsStream> {
        let call = call_of(&request);
        let observe_request = observe_request(request.get_ref(), false)
            .map_err(|e| fail(&call, "ObserveJobs", &e))?;
        self.jobs
            .ensure_ready()
            .await
            .map_err(|e| fail(&call, "ObserveJobs", &e))?;
        Ok(Response::new(observe(
            self.jobs.cache().clone(),
            observe_request,
            None,
        )))
    }

    type ObserveJobsWithKeepAliveStream = NotificationStream;

    async fn observe_jobs_with_keep_alive(
        &self,
        request: Request<Streaming<pb::ObserveJobsWithKeepAliveRequest>>,
    ) -> Unary<Self::ObserveJobsWithKeepAliveStream> {
        use pb::observe_jobs_with_keep_alive_request::Kind;
        let call = call_of(&request);
        let mut incoming = request.into_inner();
        let first = incoming.message().await?;
        let query = match first.and_then(|m| m.kind) {
            Some(Kind::Query(query)) => query,
            Some(Kind::KeepAliveRequest(_)) | None => {
                let e = ApiError::InvalidArgument(
                    "the first message of ObserveJobsWithKeepAlive must be a query".to_string(),
                );
                return Err(fail(&call, "ObserveJobsWithKeepAlive", &e));
            }
        };
        let observe_request = observe_request(&query, true)
            .map_err(|e| fail(&call, "ObserveJobsWithKeepAlive", &e))?;
        self.jobs
            .ensure_ready()
            .await
            .map_err(|e| fail(&call, "ObserveJobsWithKeepAlive", &e))?;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok(Some(message)) = incoming.message().await {
                if let Some(Kind::KeepAliveRequest(keep_alive)) = message.kind
                    && tx.send(keep_alive).await.is_err()
                {
                    return;
                }
            }
        });
        Ok(Response::new(observe(
            self.jobs.cache().clone(),
            observe_request,
            Some(rx),
        )))
    }

    async fn kill_job(&self, request: Request<pb::JobId>) -> Unary<()> {
        let call = call_of(&request);
        self.jobs
            .kill_job(&call, &request.get_ref().id)
            .await
            .map(Response::new)
            .map_err(|e| fail(&call, "KillJob", &e))
    }

    async fn update_job_attributes(&self, request: Request<pb::JobAttributesUpdate>) -> Unary<()> {
        let call = call_of(&request);
        let r = request.get_ref();
        self.jobs
            .update_job_attributes(&r.job_id, &r.attributes)
            .await
            .map(Response::new)
            .map_err(|e| fail(&call, "UpdateJobAttributes", &e))
    }

    async fn delete_job_attributes(
        &self,
        request: Request<pb::JobAttributesDeleteRequest>,
    ) -> Unary<()> {
        let call = call_of(&request);
        let r = request.get_ref();
        self.jobs
            .delete_job_attributes(&r.job_id, &r.keys)
            .await
            .map(Response::new)
            .map_err(|e| fail(&call, "DeleteJobAttributes", &e))
    }

    async fn find_task(&self, request: Request<pb::TaskId>) -> Unary<pb::Task> {
        let call = call_of(&request);
        self.jobs
            .read(|v| reads::find_task(v, &request.get_ref().id))
            .await
            .map(Response::new)
            .map_err(|e| fail(&call, "FindTask", &e))
    }

    async fn find_tasks(&self, request: Request<pb::TaskQuery>) -> Unary<pb::TaskQueryResult> {
        let call = call_of(&request);
        self.jobs
            .read(|v| reads::find_tasks(v, request.get_ref()))
            .await
            .map(Response::new)
            .map_err(|e| fail(&call, "FindTasks", &e))
    }

    async fn kill_task(&self, request: Request<pb::TaskKillRequest>) -> Unary<()> {
        let call = call_of(&request);
        self.jobs
            .kill_task(&call, request.get_ref())
            .await
            .map(Response::new)
            .map_err(|e| fail(&call, "KillTask", &e))
    }

    async fn update_task_attributes(
        &self,
        request: Request<pb::TaskAttributesUpdate>,
    ) -> Unary<()> {
        let call = call_of(&request);
        let r = request.get_ref();
        self.jobs
            .update_task_attributes(&r.task_id, &r.attributes)
            .await
            .map(Response::new)
            .map_err(|e| fail(&call, "UpdateTaskAttributes", &e))
    }

    async fn delete_task_attributes(
        &self,
        request: Request<pb::TaskAttributesDeleteRequest>,
    ) -> Unary<()> {
        let call = call_of(&request);
        let r = request.get_ref();
        self.jobs
            .delete_task_attributes(&r.task_id, &r.keys)
            .await
            .map(Response::new)
            .map_err(|e| fail(&call, "DeleteTaskAttributes", &e))
    }

    async fn move_task(&self, request: Request<pb::TaskMoveRequest>) -> Unary<()> {
        let call = call_of(&request);
        self.jobs
            .move_task(request.get_ref())
            .await
            .map(Response::new)
            .map_err(|e| fail(&call, "MoveTask", &e))
    }
}
