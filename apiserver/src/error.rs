//! API errors and their Kubernetes `Status` representation.
//!
//! Every failure a client can see goes through [`ApiError`], which knows its HTTP code, its
//! `reason` and its message in the exact shape kubectl, helm and client libraries parse.

use serde_json::{Value, json};

use crate::store::StoreError;

/// The kind of a field-level problem, as Kubernetes names it in `Status.details.causes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorType {
    /// A value is wrong.
    Invalid,
    /// A required value is missing.
    Required,
    /// A value is not one of the allowed values.
    NotSupported,
    /// A string is too long.
    TooLong,
    /// A list has too many items.
    TooMany,
    /// A value appears twice.
    Duplicate,
    /// A field may not be set or changed.
    Forbidden,
}

impl FieldErrorType {
    fn reason(self) -> &'static str {
        match self {
            FieldErrorType::Invalid => "FieldValueInvalid",
            FieldErrorType::Required => "FieldValueRequired",
            FieldErrorType::NotSupported => "FieldValueNotSupported",
            FieldErrorType::TooLong => "FieldValueTooLong",
            FieldErrorType::TooMany => "FieldValueTooMany",
            FieldErrorType::Duplicate => "FieldValueDuplicate",
            FieldErrorType::Forbidden => "FieldValueForbidden",
        }
    }
}

/// One problem with one field.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// What kind of problem.
    pub kind: FieldErrorType,
    /// Path of the field, e.g. `spec.batch.size`.
    pub field: String,
    /// The detail after the field, e.g. `Invalid value: 0: must be at least 1`.
    pub detail: String,
}

impl FieldError {
    /// `Invalid value: <value>: <message>`.
    pub fn invalid(
        field: impl Into<String>,
        value: &Value,
        message: impl std::fmt::Display,
    ) -> Self {
        Self {
            kind: FieldErrorType::Invalid,
            field: field.into(),
            detail: format!("Invalid value: {}: {message}", render(value)),
        }
    }

    /// `Required value`.
    pub fn required(field: impl Into<String>) -> Self {
        Self {
            kind: FieldErrorType::Required,
            field: field.into(),
            detail: "Required value".into(),
        }
    }

    /// `Required value: <message>`.
    pub fn required_because(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self {
            kind: FieldErrorType::Required,
            field: field.into(),
            detail: format!("Required value: {message}"),
        }
    }

    /// `Forbidden: <message>`.
    pub fn forbidden(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self {
            kind: FieldErrorType::Forbidden,
            field: field.into(),
            detail: format!("Forbidden: {message}"),
        }
    }

    /// Any other kind with a ready-made detail.
    pub fn new(kind: FieldErrorType, field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind,
            field: field.into(),
            detail: detail.into(),
        }
    }

    /// `field: detail`, as Kubernetes prints it.
    pub fn message(&self) -> String {
        format!("{}: {}", self.field, self.detail)
    }
}

/// Renders a value the way Kubernetes quotes it in messages (strings quoted).
pub fn render(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "\"null\"".into(),
        other => other.to_string(),
    }
}

/// What resource an error is about, for `Status.details`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target {
    /// API group ("" for core).
    pub group: String,
    /// Resource plural (NotFound/Conflict) or Kind (Invalid), as Kubernetes does.
    pub kind: String,
    /// Object name.
    pub name: String,
}

impl Target {
    /// Builds a target.
    pub fn new(group: &str, kind: &str, name: &str) -> Self {
        Self {
            group: group.into(),
            kind: kind.into(),
            name: name.into(),
        }
    }

    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404.
    #[error("{} {:?} not found", .0.qualified(), .0.name)]
    NotFound(Target),
    /// 409 on create.
    #[error("{} {:?} already exists", .0.qualified(), .0.name)]
    AlreadyExists(Target),
    /// 409 on a failed precondition or an apply conflict.
    #[error("Operation cannot be fulfilled on {} {:?}: {}", .target.qualified(), .target.name, .message)]
    Conflict {
        /// The object.
        target: Target,
        /// Why.
        message: String,
    },
    /// 409 for server-side apply conflicts (message carries the field list).
    #[error("{message}")]
    ApplyConflict {
        /// The object.
        target: Target,
        /// Summary.
        message: String,
        /// (field, manager) pairs.
        causes: Vec<(String, String)>,
    },
    /// 422 with field causes.
    #[error("{} {:?} is invalid: {}", .target.qualified(), .target.name, join_causes(.causes))]
    Invalid {
        /// The object (`kind` is the Kind).
        target: Target,
        /// The problems.
        causes: Vec<FieldError>,
    },
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 401.
    #[error("Unauthorized")]
    Unauthorized,
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 405.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 406.
    #[error("{0}")]
    NotAcceptable(String),
    /// 410 (expired resourceVersion).
    #[error("{0}")]
    Gone(String),
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429 with a cause (e.g. a disruption budget).
    #[error("{message}")]
    TooManyRequests {
        /// Summary.
        message: String,
        /// (reason, message) causes.
        causes: Vec<(String, String)>,
    },
    /// 504.
    #[error("{0}")]
    Timeout(String),
    /// 500.
    #[error("Internal error occurred: {0}")]
    Internal(String),
}

fn join_causes(causes: &[FieldError]) -> String {
    match causes {
        [one] => one.message(),
        many => format!(
            "[{}]",
            many.iter()
                .map(FieldError::message)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl ApiError {
    /// HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound(_) => 404,
            ApiError::AlreadyExists(_)
            | ApiError::Conflict { .. }
            | ApiError::ApplyConflict { .. } => 409,
            ApiError::Invalid { .. } => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::NotAcceptable(_) => 406,
            ApiError::Gone(_) => 410,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::TooManyRequests { .. } => 429,
            ApiError::Timeout(_) => 504,
            ApiError::Internal(_) => 500,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) => "NotFound",
            ApiError::AlreadyExists(_) => "AlreadyExists",
            ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::Gone(_) => "Expired",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::TooManyRequests { .. } => "TooManyRequests",
            ApiError::Timeout(_) => "Timeout",
            ApiError::Internal(_) => "InternalError",
        }
    }

    /// The `Status` object clients receive.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.to_string(), "reason": self.reason(), "code": self.code(),
        });
        let details = match self {
            ApiError::NotFound(t) | ApiError::AlreadyExists(t) | ApiError::Conflict { target: t, .. } => {
                Some(details(t, Vec::new()))
            }
            ApiError::ApplyConflict { target, causes, .. } => Some(details(
                target,
                causes
                    .iter()
                    .map(|(field, manager)| {
                        json!({"reason": "FieldManagerConflict", "message": format!("conflict with {manager:?}"), "field": field})
                    })
                    .collect(),
            )),
            ApiError::Invalid { target, causes } => Some(details(
                target,
                causes
                    .iter()
                    .map(|c| json!({"reason": c.kind.reason(), "message": c.detail, "field": c.field}))
                    .collect(),
            )),
            ApiError::TooManyRequests { causes, .. } => Some(json!({
                "causes": causes.iter().map(|(r, m)| json!({"reason": r, "message": m})).collect::<Vec<_>>()
            })),
            _ => None,
        };
        if let Some(details) = details {
            status["details"] = details;
        }
        status
    }
}

fn details(target: &Target, causes: Vec<Value>) -> Value {
    let mut d = json!({"name": target.name, "kind": target.kind});
    if !target.group.is_empty() {
        d["group"] = json!(target.group);
    }
    if !causes.is_empty() {
        d["causes"] = Value::Array(causes);
    }
    d
}

/// Maps a store failure onto the API error for `target` (resource plural as kind).
pub fn from_store(error: StoreError, target: Target) -> ApiError {
    match error {
        StoreError::AlreadyExists { .. } => ApiError::AlreadyExists(target),
        StoreError::NotFound { .. } => ApiError::NotFound(target),
        StoreError::Conflict { .. } => ApiError::Conflict {
            target,
            message: "the object has been modified; please apply your changes to the latest version and try again".into(),
        },
        StoreError::TooOld { requested, oldest } => {
            ApiError::Gone(format!("too old resource version: {requested} ({oldest})"))
        }
        StoreError::Serialize(e) => ApiError::Internal(e.to_string()),
        StoreError::Io { .. } => ApiError::Internal(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_objects_render_like_kubernetes() {
        let error = ApiError::Invalid {
            target: Target::new("titus.dev", "TitusJob", "j1"),
            causes: vec![FieldError::invalid(
                "spec.batch.size",
                &json!(0),
                "spec.batch.size in body should be greater than or equal to 1",
            )],
        };
        let status = error.status();
        assert_eq!(status["code"], 422);
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(
            status["message"],
            "TitusJob.titus.dev \"j1\" is invalid: spec.batch.size: Invalid value: 0: spec.batch.size in body should be greater than or equal to 1"
        );
        assert_eq!(status["details"]["causes"][0]["field"], "spec.batch.size");
        assert_eq!(
            status["details"]["causes"][0]["reason"],
            "FieldValueInvalid"
        );
    }

    #[test]
    fn not_found_names_the_resource() {
        let status = ApiError::NotFound(Target::new("", "pods", "p")).status();
        assert_eq!(status["message"], "pods \"p\" not found");
        assert_eq!(status["details"], json!({"name": "p", "kind": "pods"}));
    }
}
