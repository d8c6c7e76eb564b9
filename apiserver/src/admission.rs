//! In-process admission: mutating and validating hooks keyed by (group, kind), called on every
//! create, update and delete of that kind, the way admission webhooks are in a real cluster.
//! The Titus validator registers here in `titus up`, so bad TitusJobs are refused at the door.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::Value;

use crate::error::FieldError;

/// What is being done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Create (including server-side apply that creates).
    Create,
    /// Update, patch, apply.
    Update,
    /// Delete.
    Delete,
}

/// What a hook sees of a request.
#[derive(Clone, Copy, Debug)]
pub struct AdmissionRequest<'a> {
    /// The operation.
    pub operation: Operation,
    /// API group.
    pub group: &'a str,
    /// API version of the request.
    pub version: &'a str,
    /// Kind.
    pub kind: &'a str,
    /// Resource plural.
    pub resource: &'a str,
    /// Subresource ("" for the main resource, e.g. "status", "scale").
    pub subresource: &'a str,
    /// Namespace ("" when cluster-scoped).
    pub namespace: &'a str,
    /// Object name.
    pub name: &'a str,
    /// The object after the change (absent on delete).
    pub object: Option<&'a Value>,
    /// The object before the change (absent on create).
    pub old_object: Option<&'a Value>,
    /// Authenticated user.
    pub user: &'a str,
    /// Nothing will be persisted.
    pub dry_run: bool,
}

/// Why a hook refused a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Rejection {
    /// The object is invalid: 422 with these field causes.
    Invalid(Vec<FieldError>),
    /// The operation is not allowed: 403 with this message.
    Forbidden(String),
}

/// A mutating and/or validating admission hook.
pub trait AdmissionHook: Send + Sync {
    /// Changes the object before validation (create and update only).
    ///
    /// # Errors
    /// A rejection stops the request.
    fn mutate(
        &self,
        _request: &AdmissionRequest<'_>,
        _object: &mut Value,
    ) -> Result<(), Rejection> {
        Ok(())
    }

    /// Accepts or refuses the request after schema validation.
    ///
    /// # Errors
    /// A rejection stops the request.
    fn validate(&self, request: &AdmissionRequest<'_>) -> Result<(), Rejection>;
}

type HookMap = HashMap<(String, String), Vec<Arc<dyn AdmissionHook>>>;

/// Hooks by (group, kind).
#[derive(Default, Clone)]
pub struct Admission {
    hooks: Arc<RwLock<HookMap>>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("kinds", &self.hooks.read().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Admission {
    /// Registers a hook for a (group, kind).
    pub fn register(&self, group: &str, kind: &str, hook: Arc<dyn AdmissionHook>) {
        self.hooks
            .write()
            .entry((group.to_owned(), kind.to_owned()))
            .or_default()
            .push(hook);
    }

    fn hooks_for(&self, group: &str, kind: &str) -> Vec<Arc<dyn AdmissionHook>> {
        self.hooks
            .read()
            .get(&(group.to_owned(), kind.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// Runs the mutating hooks in registration order.
    ///
    /// # Errors
    /// The first rejection.
    pub fn mutate(
        &self,
        request: &AdmissionRequest<'_>,
        object: &mut Value,
    ) -> Result<(), Rejection> {
        for hook in self.hooks_for(request.group, request.kind) {
            hook.mutate(request, object)?;
        }
        Ok(())
    }

    /// Runs the validating hooks.
    ///
    /// # Errors
    /// The first rejection.
    pub fn validate(&self, request: &AdmissionRequest<'_>) -> Result<(), Rejection> {
        for hook in self.hooks_for(request.group, request.kind) {
            hook.validate(request)?;
        }
        Ok(())
    }
}
