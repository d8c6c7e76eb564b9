//! Titus admission for `TitusJob`s: sanitize, then validate, with Titus's rules
//! (`titus_crds::admit` / `admit_update`), refusing with the field path of every violation.
//!
//! [`TitusAdmission`] is the in-process hook of the embedded API server ([`register`]) and the
//! logic behind the HTTPS admission webhook for real clusters ([`webhook`]). The mutating step
//! writes the sanitized spec back into the object (so the stored job is what Titus would store);
//! the validating step checks again from the final object.

pub mod webhook;

use std::sync::Arc;

use serde_json::Value;
use titus_apiserver::error::{FieldError, FieldErrorType};
use titus_apiserver::{AdmissionHook, AdmissionRequest, Operation, Rejection, Server};
use titus_crds::{AdmissionConfig, TitusJob, ValidationErrors, admit, admit_update};

/// API group of the kinds admitted here.
pub const GROUP: &str = "titus.dev";
/// Kind admitted here.
pub const KIND: &str = "TitusJob";

/// Titus admission of `TitusJob`s.
#[derive(Clone, Debug, Default)]
pub struct TitusAdmission {
    config: AdmissionConfig,
}

impl TitusAdmission {
    /// Admission with the given sanitizer and validator settings.
    pub fn new(config: AdmissionConfig) -> Self {
        Self { config }
    }

    /// The mutating step: sanitizes (create; on update also keeps the system attributes recorded
    /// at creation), validates, and writes the sanitized spec into `object`.
    ///
    /// Objects that do not parse as a `TitusJob` are left to the schema validation.
    ///
    /// # Errors
    /// [`Rejection::Invalid`] with one cause per violation, named by field path.
    pub fn mutate_object(
        &self,
        operation: Operation,
        subresource: &str,
        object: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), Rejection> {
        let Some(job) = self.admitted(operation, subresource, object, old)? else {
            return Ok(());
        };
        if let (Some(obj), Ok(spec)) = (object.as_object_mut(), serde_json::to_value(&job.spec)) {
            obj.insert("spec".into(), spec);
        }
        Ok(())
    }

    /// The validating step: the same checks on a copy, without changing anything.
    ///
    /// # Errors
    /// [`Rejection::Invalid`] with one cause per violation, named by field path.
    pub fn validate_object(
        &self,
        operation: Operation,
        subresource: &str,
        object: Option<&Value>,
        old: Option<&Value>,
    ) -> Result<(), Rejection> {
        let Some(object) = object else {
            return Ok(());
        };
        self.admitted(operation, subresource, object, old)
            .map(|_| ())
    }

    /// Runs Titus admission on a copy; `None` when there is nothing to admit.
    fn admitted(
        &self,
        operation: Operation,
        subresource: &str,
        object: &Value,
        old: Option<&Value>,
    ) -> Result<Option<TitusJob>, Rejection> {
        if subresource == "status" {
            return Ok(None);
        }
        let Ok(mut job) = serde_json::from_value::<TitusJob>(object.clone()) else {
            return Ok(None);
        };
        let result = match (operation, old) {
            (Operation::Create, _) | (Operation::Update, None) => {
                admit(&mut job.spec, &self.config)
            }
            (Operation::Update, Some(old)) => {
                let Ok(old) = serde_json::from_value::<TitusJob>(old.clone()) else {
                    return Ok(None);
                };
                admit_update(&old, &mut job, &self.config)
            }
            (Operation::Delete, _) => return Ok(None),
        };
        match result {
            Ok(()) => Ok(Some(job)),
            Err(errors) => Err(Rejection::Invalid(field_errors(&errors, &job))),
        }
    }
}

impl AdmissionHook for TitusAdmission {
    fn mutate(&self, request: &AdmissionRequest<'_>, object: &mut Value) -> Result<(), Rejection> {
        if request.group != GROUP || request.kind != KIND {
            return Ok(());
        }
        self.mutate_object(
            request.operation,
            request.subresource,
            object,
            request.old_object,
        )
    }

    fn validate(&self, request: &AdmissionRequest<'_>) -> Result<(), Rejection> {
        if request.group != GROUP || request.kind != KIND {
            return Ok(());
        }
        self.validate_object(
            request.operation,
            request.subresource,
            request.object,
            request.old_object,
        )
    }
}

/// Registers Titus admission for `TitusJob`s on an embedded API server.
pub fn register(server: &Server, config: AdmissionConfig) {
    server
        .admission
        .register(GROUP, KIND, Arc::new(TitusAdmission::new(config)));
}

/// One Kubernetes field cause per hard violation (soft ones do not refuse): `Invalid value:
/// <value>: <Titus message>` when the field has a value, `Required value: <message>` when not.
pub fn field_errors(errors: &ValidationErrors, job: &TitusJob) -> Vec<FieldError> {
    let object = serde_json::to_value(job).unwrap_or(Value::Null);
    errors
        .hard()
        .map(|e| match object.pointer(&json_pointer(&e.field)) {
            Some(value) if !value.is_null() => FieldError::invalid(&e.field, value, &e.description),
            Some(_) | None => FieldError::new(
                FieldErrorType::Required,
                &e.field,
                format!("Required value: {}", e.description),
            ),
        })
        .collect()
}

/// `spec.a[0].b[key]` -> `/spec/a/0/b/key`.
pub fn json_pointer(field: &str) -> String {
    let mut out = String::new();
    for part in field.split('.') {
        let mut rest = part;
        let name_end = rest.find('[').unwrap_or(rest.len());
        push_segment(&mut out, &rest[..name_end]);
        rest = &rest[name_end..];
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped.find(']').unwrap_or(stripped.len());
            push_segment(&mut out, &stripped[..end]);
            rest = stripped.get(end + 1..).unwrap_or_default();
        }
    }
    out
}

fn push_segment(out: &mut String, segment: &str) {
    if segment.is_empty() {
        return;
    }
    out.push('/');
    out.push_str(&segment.replace('~', "~0").replace('/', "~1"));
}

#[cfg(test)]
mod tests;
