//! The one Titus validator, shared by the API server's admission hook, the webhook and the gRPC
//! gateway: field-level violations with both the `TitusJob` path and Titus's core-model path, and
//! Titus's message texts.
//!
//! Start with [`admit`] (sanitize, then validate: Titus's order) and [`admit_update`]. The rules
//! live in [`job`] (descriptor, batch/service, retry), [`container`] (resources, security, image,
//! env, constraints, mounts), [`budget`] (disruption budget), [`update`] (what may change after
//! creation) and [`groups`] (capacity and instance groups).
//!
//! Only `Hard` violations refuse a request; `Soft` ones are Titus's non-compliance findings that
//! `sanitize` records in `titus.noncompliant.*` attributes.

pub mod budget;
pub mod container;
pub mod groups;
pub mod job;
pub(crate) mod patterns;
pub mod update;

use std::collections::BTreeMap;
use std::fmt;

use crate::job::{TitusJob, TitusJobSpec};
use crate::sanitize::{Phase, SanitizeConfig, sanitize_phase, sanitize_with};

pub use groups::{validate_capacity_group, validate_instance_group};
pub use job::{check_job, validate_job, validate_job_with};
pub use update::validate_update;

/// Whether a violation refuses the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ViolationKind {
    /// Refuses the request (Titus `HARD`).
    Hard,
    /// Recorded, not refused (Titus `SOFT` / non-compliance).
    Soft,
}

impl ViolationKind {
    /// `HARD` / `SOFT`, as in Titus messages.
    pub fn as_titus_str(self) -> &'static str {
        match self {
            ViolationKind::Hard => "HARD",
            ViolationKind::Soft => "SOFT",
        }
    }
}

/// One violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    /// Path in the Kubernetes object, e.g. `spec.container.resources.cpu`,
    /// `spec.extraContainers[0].name`, `spec.container.env[foo]`.
    pub field: String,
    /// Titus core-model path, e.g. `container.containerResources.cpu`, `extensions.size`.
    pub titus_field: String,
    /// Titus's message text (or a Kubernetes-style one where Titus had none).
    pub description: String,
    /// Hard or soft.
    pub kind: ViolationKind,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)?;
        if self.kind == ViolationKind::Soft {
            f.write_str(" (soft)")?;
        }
        Ok(())
    }
}

/// A list of violations; displayed joined with `; `.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    /// No violations.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of violations.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Iterates over the violations.
    pub fn iter(&self) -> std::slice::Iter<'_, ValidationError> {
        self.0.iter()
    }

    /// `true` when any violation is hard.
    pub fn has_hard(&self) -> bool {
        self.0.iter().any(|e| e.kind == ViolationKind::Hard)
    }

    /// The hard violations.
    pub fn hard(&self) -> impl Iterator<Item = &ValidationError> {
        self.0.iter().filter(|e| e.kind == ViolationKind::Hard)
    }

    /// The soft violations.
    pub fn soft(&self) -> impl Iterator<Item = &ValidationError> {
        self.0.iter().filter(|e| e.kind == ViolationKind::Soft)
    }

    /// `Err(self)` when any violation is hard, else `Ok(())`.
    ///
    /// # Errors
    /// Returns the whole list (soft ones included) when any violation is hard.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.has_hard() { Err(self) } else { Ok(()) }
    }

    /// Titus's gRPC status description for these violations:
    /// `Invalid Argument: {Validation failed: 'field: '<f>', description: '<d>', type: 'HARD''}, ...`
    /// with Titus core-model field paths, for the gateway.
    pub fn titus_message(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|e| {
                format!(
                    "{{Validation failed: 'field: '{}', description: '{}', type: '{}''}}",
                    e.titus_field,
                    e.description,
                    e.kind.as_titus_str()
                )
            })
            .collect();
        format!("Invalid Argument: {}", parts.join(", "))
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for ValidationErrors {}

impl IntoIterator for ValidationErrors {
    type Item = ValidationError;
    type IntoIter = std::vec::IntoIter<ValidationError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a ValidationError;
    type IntoIter = std::slice::Iter<'a, ValidationError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Per-application size limits (Titus's custom job size limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeLimits {
    /// Largest batch `size`.
    pub batch: u32,
    /// Largest service `capacity.max`.
    pub service: u32,
}

/// Limits and switches of the validator. [`Default`] gives Titus's configured defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidationConfig {
    /// Largest `cpu` (96).
    pub max_cpu: f64,
    /// Largest `gpu` (16).
    pub max_gpu: u32,
    /// Largest `memoryMB` (1 152 000).
    pub max_memory_mb: u32,
    /// Largest `diskMB` (1 550 000).
    pub max_disk_mb: u32,
    /// Largest `networkMbps` (400 000).
    pub max_network_mbps: u32,
    /// Largest batch size (1000).
    pub max_batch_job_size: u32,
    /// Largest service `max` at creation (10 000).
    pub max_service_job_size: u32,
    /// Per-application limits applied on top (Titus's custom limits).
    pub application_size_limits: BTreeMap<String, SizeLimits>,
    /// Limits for applications not in `application_size_limits` (batch 1000, service 2500).
    pub default_application_size_limits: SizeLimits,
    /// Smallest runtime limit in ms (5 000).
    pub min_runtime_limit_ms: u64,
    /// Largest runtime limit in seconds (864 000 = 10 days).
    pub max_runtime_limit_sec: u64,
    /// Largest total entry point size in bytes (16 KiB).
    pub max_entry_point_bytes: usize,
    /// Largest total environment size in bytes, Σ(len(key)+len(value)+2) (32 KiB).
    pub max_env_bytes: usize,
    /// Refuse environment names outside `^[A-Z_][A-Z0-9_]*$` (Hard) instead of only recording
    /// them (Soft). On by default: Titus's rollout of this rule was due in 2019, and a name a
    /// shell cannot export is a bug waiting in the container.
    pub strict_env_names: bool,
    /// Known container health provider names (`alwaysHealthy`).
    pub container_health_providers: Vec<String>,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig {
            max_cpu: 96.0,
            max_gpu: 16,
            max_memory_mb: 1_152_000,
            max_disk_mb: 1_550_000,
            max_network_mbps: 400_000,
            max_batch_job_size: 1_000,
            max_service_job_size: 10_000,
            application_size_limits: BTreeMap::new(),
            default_application_size_limits: SizeLimits {
                batch: 1_000,
                service: 2_500,
            },
            min_runtime_limit_ms: 5_000,
            max_runtime_limit_sec: 864_000,
            max_entry_point_bytes: 16 * 1024,
            max_env_bytes: 32 * 1024,
            strict_env_names: true,
            container_health_providers: vec!["alwaysHealthy".to_string()],
        }
    }
}

/// Everything admission needs: sanitizer defaults and validator limits.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdmissionConfig {
    /// Sanitizer settings.
    pub sanitize: SanitizeConfig,
    /// Validator settings.
    pub validation: ValidationConfig,
}

/// Admits a new job the way Titus does: sanitize (defaults, minimums, stripped attributes,
/// non-compliance records), then validate.
///
/// # Errors
/// All violations (soft ones included) when any is hard; `spec` is sanitized either way.
pub fn admit(spec: &mut TitusJobSpec, config: &AdmissionConfig) -> Result<(), ValidationErrors> {
    sanitize_with(spec, &config.sanitize, &config.validation);
    validate_job_with(spec, &config.validation)
}

/// Admits an update: sanitizes the new spec and keeps the system attributes recorded at creation
/// (`titus.noncompliant*`, `titus.sanitization.*`, `titus.runtimePrediction.*`) when the update
/// does not carry them, so re-applying or replacing with the original manifest compares equal to
/// the stored object; then applies [`validate_update`].
///
/// # Errors
/// The violations when the update changes an immutable field or breaks a capacity rule.
pub fn admit_update(
    old: &TitusJob,
    new: &mut TitusJob,
    config: &AdmissionConfig,
) -> Result<(), ValidationErrors> {
    sanitize_phase(
        &mut new.spec,
        &config.sanitize,
        &config.validation,
        Phase::Update,
    );
    for (key, value) in &old.spec.attributes {
        if crate::sanitize::is_system_attribute(key) && !new.spec.attributes.contains_key(key) {
            new.spec.attributes.insert(key.clone(), value.clone());
        }
    }
    update::validate_update_with(old, new, &config.validation)
}

/// Collects violations while a validator walks a spec.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    pub(crate) errors: Vec<ValidationError>,
}

impl Collector {
    pub(crate) fn push(
        &mut self,
        kind: ViolationKind,
        field: impl Into<String>,
        titus_field: impl Into<String>,
        description: impl Into<String>,
    ) {
        self.errors.push(ValidationError {
            field: field.into(),
            titus_field: titus_field.into(),
            description: description.into(),
            kind,
        });
    }

    pub(crate) fn hard(
        &mut self,
        field: impl Into<String>,
        titus_field: impl Into<String>,
        description: impl Into<String>,
    ) {
        self.push(ViolationKind::Hard, field, titus_field, description);
    }

    pub(crate) fn finish(self) -> ValidationErrors {
        ValidationErrors(self.errors)
    }
}

/// Renders a double the way Java's `Double.toString` does for the values used here (`96.0`,
/// `0.5`), so messages match Titus's.
pub(crate) fn java_double(value: f64) -> String {
    format!("{value:?}")
}

/// Renders a list the way Java's `List.toString` does: `[a, b]`.
pub(crate) fn java_list<S: AsRef<str>>(items: &[S]) -> String {
    let parts: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("[{}]", parts.join(", "))
}
