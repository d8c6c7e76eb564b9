//! The gateway's errors and the one place they become gRPC statuses and REST responses.
//!
//! Codes follow Titus (§9.4 of the semantics reference): not-found errors are `NOT_FOUND`,
//! validation and request errors `INVALID_ARGUMENT`, terminating jobs and tasks
//! `FAILED_PRECONDITION`, the job limit `RESOURCE_EXHAUSTED`, bad cursors and incompatible jobs
//! `INTERNAL`. A status description is `<TitusExceptionName>: <message>` as Titus wrote it; the same
//! text travels in the `X-Titus-Error` trailer, and with `X-Titus-Debug: true` the
//! `X-Titus-Error-bin` trailer carries a `google.rpc.Status` with a `BadRequest` (one field
//! violation per validation error) and a `DebugInfo`.

use http::StatusCode;
use prost::Message;
use titus_crds::ValidationErrors;
use titus_crds::job::ext::Capacity;
use tonic::Code;
use tonic::metadata::{MetadataMap, MetadataValue};

use crate::translate::TranslateError;

/// Everything a Titus API call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No job with this id.
    #[error("Job with id {0} does not exist")]
    JobNotFound(String),
    /// No task with this id.
    #[error("Task with id {0} does not exist")]
    TaskNotFound(String),
    /// A job id that is not a UUID.
    #[error("Job id must be UUID string, but is: {0}")]
    InvalidJobId(String),
    /// A task id that is not a UUID.
    #[error("Task id must be UUID string, but is: {0}")]
    InvalidTaskId(String),
    /// The descriptor cannot become a job spec (unknown enum numbers, ...).
    #[error("Error creating core job descriptor: {0}")]
    BadDescriptor(#[from] TranslateError),
    /// The shared validator refused the job or the update.
    #[error("{}", .0.titus_message())]
    Validation(ValidationErrors),
    /// A capacity update broke a capacity rule.
    #[error(
        "Current Capacity{{min={}, desired={}, max={}}}. {}",
        current.min,
        current.desired,
        current.max,
        errors.titus_message()
    )]
    Capacity {
        /// The job's capacity before the update.
        current: Capacity,
        /// What the validator said.
        errors: ValidationErrors,
    },
    /// The job is being killed or has finished.
    #[error("Job {job_id} is {}", if *finished { "terminated" } else { "in the termination process" })]
    JobTerminating {
        /// Job id.
        job_id: String,
        /// `true` once the job is `Finished`.
        finished: bool,
    },
    /// The task is being killed or has finished.
    #[error("Task {task_id} is {}", if *finished { "terminated" } else { "in the termination process" })]
    TaskTerminating {
        /// Task id.
        task_id: String,
        /// `true` once the task is `Finished`.
        finished: bool,
    },
    /// A service-only operation on a batch job.
    #[error("Operation restricted to service jobs, and {0} is not a service job")]
    NotServiceJob(String),
    /// Kill-and-shrink with `preventMinSizeUpdate` would go below `min`.
    #[error(
        "Terminate and shrink would make desired job size go below the configured minimum, which is not allowed for this request: jobId={job_id}, taskId={task_id}, min={}, desired={}, max={}",
        capacity.min,
        capacity.desired,
        capacity.max
    )]
    TerminateAndShrinkNotAllowed {
        /// Job id.
        job_id: String,
        /// Task id.
        task_id: String,
        /// The job's capacity.
        capacity: Capacity,
    },
    /// Another active job already has this job group name.
    #[error("Constraint violation - job with group sequence {name} exists ({existing})")]
    InvalidSequenceId {
        /// `<app>-<stack>-<detail>-<sequence>`.
        name: String,
        /// Id of the job holding the name.
        existing: String,
    },
    /// Too many active jobs.
    #[error("Reached a limit of active jobs Titus can run (active={active}, limit={limit})")]
    JobCreateLimited {
        /// Active jobs now.
        active: usize,
        /// The limit.
        limit: usize,
    },
    /// Query criteria keys Titus does not know.
    #[error("Unrecognized field(s) [{}]", .0.join(", "))]
    UnrecognizedCriteria(Vec<String>),
    /// Any other malformed request (bad criteria value, page, missing part).
    #[error("{0}")]
    InvalidArgument(String),
    /// A cursor that does not decode (Titus answered `INTERNAL`).
    #[error("Invalid cursor: {0}")]
    InvalidCursor(String),
    /// MoveTask with the same source and target.
    #[error(
        "Operation requires two different job, but the same job provided as the source and target: {0}"
    )]
    SameJobIds(String),
    /// MoveTask of a task that is not in the source job.
    #[error(
        "Operation requires task id to belong to the source job id. Task id {task_id} does not belong to job id {job_id}"
    )]
    TaskJobMismatch {
        /// Source job id.
        job_id: String,
        /// Task id.
        task_id: String,
    },
    /// MoveTask would take the source below its minimum.
    #[error(
        "Cannot decrement job {job_id} desired size by 1, as it violates the minimum job size constraint: min={}, desired={}, max={}",
        capacity.min,
        capacity.desired,
        capacity.max
    )]
    BelowMinCapacity {
        /// Source job id.
        job_id: String,
        /// Its capacity.
        capacity: Capacity,
    },
    /// MoveTask would take the target above its maximum.
    #[error(
        "Cannot increment job {job_id} desired size by 1, as it violates the maximum job size constraint: min={}, desired={}, max={}",
        capacity.min,
        capacity.desired,
        capacity.max
    )]
    AboveMaxCapacity {
        /// Target job id.
        job_id: String,
        /// Its capacity.
        capacity: Capacity,
    },
    /// MoveTask between jobs with different descriptors.
    #[error("Jobs are not compatible: {0}")]
    JobsNotCompatible(String),
    /// The job cache has not synced, or an observer fell behind.
    #[error("{0}")]
    Unavailable(String),
    /// An observer fell too far behind the change stream.
    #[error("{0}")]
    Aborted(String),
    /// The Kubernetes API refused a write (admission, schema, conflict that outlived retries).
    #[error("the Kubernetes API refused the request ({code}): {message}")]
    KubeRejected {
        /// HTTP status from the API server.
        code: u16,
        /// Its message.
        message: String,
    },
    /// The Kubernetes API could not be reached or failed.
    #[error("Kubernetes API error: {0}")]
    Kube(#[source] kube::Error),
}

impl From<kube::Error> for ApiError {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => ApiError::KubeRejected {
                code: status.code,
                message: status.message,
            },
            other => ApiError::Kube(other),
        }
    }
}

impl ApiError {
    /// The gRPC code Titus used for this error.
    pub fn code(&self) -> Code {
        match self {
            ApiError::JobNotFound(_) | ApiError::TaskNotFound(_) => Code::NotFound,
            ApiError::InvalidJobId(_)
            | ApiError::InvalidTaskId(_)
            | ApiError::BadDescriptor(_)
            | ApiError::Validation(_)
            | ApiError::Capacity { .. }
            | ApiError::NotServiceJob(_)
            | ApiError::InvalidSequenceId { .. }
            | ApiError::UnrecognizedCriteria(_)
            | ApiError::InvalidArgument(_)
            | ApiError::SameJobIds(_)
            | ApiError::TaskJobMismatch { .. }
            | ApiError::BelowMinCapacity { .. }
            | ApiError::AboveMaxCapacity { .. } => Code::InvalidArgument,
            ApiError::JobTerminating { .. }
            | ApiError::TaskTerminating { .. }
            | ApiError::TerminateAndShrinkNotAllowed { .. } => Code::FailedPrecondition,
            ApiError::JobCreateLimited { .. } => Code::ResourceExhausted,
            ApiError::InvalidCursor(_) | ApiError::JobsNotCompatible(_) => Code::Internal,
            ApiError::Unavailable(_) | ApiError::Kube(_) => Code::Unavailable,
            ApiError::Aborted(_) => Code::Aborted,
            ApiError::KubeRejected { code, .. } => match code {
                400 | 422 => Code::InvalidArgument,
                403 => Code::PermissionDenied,
                404 => Code::NotFound,
                409 => Code::Aborted,
                429 => Code::ResourceExhausted,
                500..=599 => Code::Unavailable,
                _ => Code::Internal,
            },
        }
    }

    /// Titus's exception class name, the prefix of its status descriptions.
    pub fn exception_name(&self) -> &'static str {
        match self {
            ApiError::JobNotFound(_)
            | ApiError::TaskNotFound(_)
            | ApiError::JobTerminating { .. }
            | ApiError::TaskTerminating { .. }
            | ApiError::NotServiceJob(_)
            | ApiError::TerminateAndShrinkNotAllowed { .. }
            | ApiError::InvalidSequenceId { .. }
            | ApiError::JobCreateLimited { .. }
            | ApiError::SameJobIds(_)
            | ApiError::TaskJobMismatch { .. }
            | ApiError::BelowMinCapacity { .. }
            | ApiError::AboveMaxCapacity { .. }
            | ApiError::JobsNotCompatible(_) => "JobManagerException",
            ApiError::InvalidCursor(_) => "IllegalArgumentException",
            ApiError::InvalidJobId(_)
            | ApiError::InvalidTaskId(_)
            | ApiError::BadDescriptor(_)
            | ApiError::Validation(_)
            | ApiError::Capacity { .. }
            | ApiError::UnrecognizedCriteria(_)
            | ApiError::InvalidArgument(_)
            | ApiError::Unavailable(_)
            | ApiError::Aborted(_)
            | ApiError::KubeRejected { .. }
            | ApiError::Kube(_) => "TitusServiceException",
        }
    }

    /// The REST status Titus's gateway answered with (§9.4, "direct" column).
    pub fn http_status(&self) -> StatusCode {
        match self.code() {
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::InvalidArgument => StatusCode::BAD_REQUEST,
            Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Code::Aborted => StatusCode::CONFLICT,
            Code::Ok
            | Code::Cancelled
            | Code::Unknown
            | Code::AlreadyExists
            | Code::OutOfRange
            | Code::Unimplemented
            | Code::Internal
            | Code::DataLoss
            | Code::Unauthenticated => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Field-level violations: `(Titus field path, description)` per hard or soft finding.
    pub fn field_violations(&self) -> Vec<(String, String)> {
        let errors = match self {
            ApiError::Validation(errors) | ApiError::Capacity { errors, .. } => errors,
            _ => return Vec::new(),
        };
        errors
            .iter()
            .map(|e| (e.titus_field.clone(), e.description.clone()))
            .collect()
    }

    /// The gRPC status clients receive; `debug` adds the `X-Titus-Error-bin` trailer.
    pub fn to_status(&self, debug: bool) -> tonic::Status {
        let description = format!("{}: {self}", self.exception_name());
        let mut metadata = MetadataMap::new();
        metadata.insert("x-titus-error", ascii_header_value(&description));
        if debug {
            let rpc = rpc_status(self.code(), &description, &self.field_violations());
            metadata.insert_bin(
                "x-titus-error-bin",
                MetadataValue::from_bytes(&rpc.encode_to_vec()),
            );
        }
        tonic::Status::with_metadata(self.code(), description, metadata)
    }
}

/// A header value holding `text`, with characters a header cannot carry replaced by `?`.
fn ascii_header_value(text: &str) -> MetadataValue<tonic::metadata::Ascii> {
    let printable: String = text
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect();
    MetadataValue::try_from(printable.as_str()).unwrap_or_else(|_| MetadataValue::from_static(""))
}

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// gRPC code.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// Message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// `BadRequest`, `DebugInfo`, ... packed as `Any`.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<prost_types::Any>,
}

/// `google.rpc.BadRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BadRequest {
    /// One entry per invalid field.
    #[prost(message, repeated, tag = "1")]
    pub field_violations: Vec<FieldViolation>,
}

/// `google.rpc.BadRequest.FieldViolation`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FieldViolation {
    /// Field path.
    #[prost(string, tag = "1")]
    pub field: String,
    /// What is wrong with it.
    #[prost(string, tag = "2")]
    pub description: String,
}

/// `google.rpc.DebugInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DebugInfo {
    /// Stack entries (none: the gateway does not expose its internals).
    #[prost(string, repeated, tag = "1")]
    pub stack_entries: Vec<String>,
    /// Detail.
    #[prost(string, tag = "2")]
    pub detail: String,
}

/// Type URL of `google.rpc.BadRequest` inside an `Any`.
pub const BAD_REQUEST_TYPE_URL: &str = "type.googleapis.com/google.rpc.BadRequest";
/// Type URL of `google.rpc.DebugInfo` inside an `Any`.
pub const DEBUG_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.DebugInfo";

fn rpc_status(code: Code, message: &str, violations: &[(String, String)]) -> RpcStatus {
    let mut details = vec![prost_types::Any {
        type_url: DEBUG_INFO_TYPE_URL.to_string(),
        value: DebugInfo {
            stack_entries: Vec::new(),
            detail: message.to_string(),
        }
        .encode_to_vec(),
    }];
    if !violations.is_empty() {
        details.push(prost_types::Any {
            type_url: BAD_REQUEST_TYPE_URL.to_string(),
            value: BadRequest {
                field_violations: violations
                    .iter()
                    .map(|(field, description)| FieldViolation {
                        field: field.clone(),
                        description: description.clone(),
                    })
                    .collect(),
            }
            .encode_to_vec(),
        });
    }
    RpcStatus {
        code: code as i32,
        message: message.to_string(),
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use titus_crds::{ValidationError, ViolationKind};

    fn violation() -> ValidationErrors {
        ValidationErrors(vec![ValidationError {
            field: "spec.container.resources.cpu".into(),
            titus_field: "container.containerResources.cpu".into(),
            description: "Above maximum allowed value 96".into(),
            kind: ViolationKind::Hard,
        }])
    }

    #[test]
    fn validation_errors_use_titus_description_and_trailers() {
        let status = ApiError::Validation(violation()).to_status(true);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "TitusServiceException: Invalid Argument: {Validation failed: 'field: 'container.containerResources.cpu', description: 'Above maximum allowed value 96', type: 'HARD''}"
        );
        let trailer = status.metadata().get("x-titus-error").unwrap();
        assert_eq!(trailer.to_str().unwrap(), status.message());
        let bin = status
            .metadata()
            .get_bin("x-titus-error-bin")
            .unwrap()
            .to_bytes()
            .unwrap();
        let rpc = RpcStatus::decode(bin).unwrap();
        assert_eq!(rpc.code, Code::InvalidArgument as i32);
        let bad = rpc
            .details
            .iter()
            .find(|d| d.type_url == BAD_REQUEST_TYPE_URL)
            .unwrap();
        let bad = BadRequest::decode(bad.value.as_slice()).unwrap();
        assert_eq!(
            bad.field_violations[0].field,
            "container.containerResources.cpu"
        );
    }

    #[test]
    fn without_debug_there_is_no_binary_trailer() {
        let status = ApiError::JobNotFound("x".into()).to_status(false);
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(
            status.message(),
            "JobManagerException: Job with id x does not exist"
        );
        assert!(status.metadata().get_bin("x-titus-error-bin").is_none());
    }

    #[test]
    fn codes_and_rest_statuses_follow_titus() {
        let cases = [
            (ApiError::TaskNotFound("t".into()), Code::NotFound, 404),
            (
                ApiError::JobTerminating {
                    job_id: "j".into(),
                    finished: false,
                },
                Code::FailedPrecondition,
                412,
            ),
            (
                ApiError::JobCreateLimited {
                    active: 2,
                    limit: 1,
                },
                Code::ResourceExhausted,
                429,
            ),
            (ApiError::InvalidCursor("x".into()), Code::Internal, 500),
            (
                ApiError::UnrecognizedCriteria(vec!["cell".into()]),
                Code::InvalidArgument,
                400,
            ),
        ];
        for (error, code, http) in cases {
            assert_eq!(error.code(), code, "{error}");
            assert_eq!(error.http_status().as_u16(), http, "{error}");
        }
        assert_eq!(
            ApiError::UnrecognizedCriteria(vec!["cell".into(), "x".into()]).to_string(),
            "Unrecognized field(s) [cell, x]"
        );
    }

    #[test]
    fn a_message_with_a_newline_still_fits_in_the_trailer() {
        let status = ApiError::InvalidArgument("bad\nvalue é".into()).to_status(false);
        assert_eq!(
            status
                .metadata()
                .get("x-titus-error")
                .unwrap()
                .to_str()
                .unwrap(),
            "TitusServiceException: bad?value ?"
        );
    }
}
