//! Titus's sanitization: the defaults and corrections applied to a job descriptor BEFORE it is
//! validated (Titus's order is strip -> sanitize -> validate).
//!
//! * client-supplied `titus.sanitization.*`, `titus.runtimePrediction.*` and `titus.noncompliant*`
//!   attributes are removed (on create only: on update those attributes are the system's own);
//! * resources below the minimums are raised (cpu 1.0, memory 512 MiB, disk 10 000 MiB,
//!   network 128 Mbps), `shmSizeMB` 0 becomes 64, EFS mounts get `RW` when no permission is given
//!   and are sorted by mount point;
//! * an empty capacity group becomes `DEFAULT`; a service job without a migration policy gets
//!   `systemDefault`;
//! * missing security groups / IAM role are filled from configured defaults when there are any
//!   (Titus's per-caller rollout; with no defaults, validation refuses the job);
//! * a job without a disruption budget (or with Titus's legacy marker, `selfManaged` with
//!   `relocationTimeMs = 0`) gets the job-type default (§8.1), and a budget without a rate gets
//!   `rateUnlimited`;
//! * Titus's non-compliance findings are recorded in `titus.noncompliant.features` and
//!   `titus.noncompliant.details.<feature>.<key>` (on create; an update keeps that record).

use std::collections::BTreeMap;

use crate::common::Empty;
use crate::constants::{DEFAULT_CAPACITY_GROUP, attributes};
use crate::job::TitusJobSpec;
use crate::job::container::MountPerm;
use crate::job::disruption::JobDisruptionBudget;
use crate::job::ext::MigrationPolicy;
use crate::validation::ValidationConfig;
use crate::validation::container::{ENTRY_POINT_SPACES_MESSAGE, ENV_NAMES_MESSAGE};

/// Smallest relocation time of the batch default budget (60 s).
pub const MIN_BATCH_RELOCATION_TIME_MS: u64 = 60_000;
/// Relocation time of the default budget of a service without a self-managed migration policy.
pub const DEFAULT_SERVICE_RELOCATION_TIME_MS: u64 = 60_000;

/// Sanitizer settings. [`Default`] gives Titus's configured defaults and no security defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct SanitizeConfig {
    /// Smallest `cpu` (1.0).
    pub min_cpu: f64,
    /// Smallest `memoryMB` (512).
    pub min_memory_mb: u32,
    /// Smallest `diskMB` (10 000).
    pub min_disk_mb: u32,
    /// Smallest `networkMbps` (128).
    pub min_network_mbps: u32,
    /// `shmSizeMB` used when 0 (64).
    pub default_shm_mb: u32,
    /// Security groups given to jobs that have none; empty = leave missing (refused).
    pub default_security_groups: Vec<String>,
    /// IAM role given to jobs that have none; empty = leave missing (refused).
    pub default_iam_role: String,
    /// Relocation time of the default budget of a service with a `selfManaged` migration policy
    /// (7 days).
    pub service_self_managed_relocation_time_ms: u64,
}

impl Default for SanitizeConfig {
    fn default() -> Self {
        SanitizeConfig {
            min_cpu: 1.0,
            min_memory_mb: 512,
            min_disk_mb: 10_000,
            min_network_mbps: 128,
            default_shm_mb: 64,
            default_security_groups: Vec::new(),
            default_iam_role: String::new(),
            service_self_managed_relocation_time_ms: 7 * 24 * 3_600_000,
        }
    }
}

/// When sanitization runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// A new job.
    Create,
    /// An update of a stored job.
    Update,
}

/// Sanitizes a new job spec with the default settings.
pub fn sanitize(spec: &mut TitusJobSpec) {
    sanitize_with(
        spec,
        &SanitizeConfig::default(),
        &ValidationConfig::default(),
    );
}

/// Sanitizes a new job spec. `validation` decides which findings are non-compliance (soft).
pub fn sanitize_with(
    spec: &mut TitusJobSpec,
    config: &SanitizeConfig,
    validation: &ValidationConfig,
) {
    sanitize_phase(spec, config, validation, Phase::Create);
}

pub(crate) fn sanitize_phase(
    spec: &mut TitusJobSpec,
    config: &SanitizeConfig,
    validation: &ValidationConfig,
    phase: Phase,
) {
    if phase == Phase::Create {
        strip_attributes(&mut spec.attributes);
    }
    sanitize_resources(spec, config);
    if spec.capacity_group.is_empty() {
        spec.capacity_group = DEFAULT_CAPACITY_GROUP.to_string();
    }
    if let Some(service) = spec.service.as_mut()
        && service.migration_policy.unwrap_or_default() == MigrationPolicy::default()
    {
        service.migration_policy = Some(MigrationPolicy::system_default());
    }
    let findings = compliance_findings(spec, config, validation);
    fill_security_defaults(spec, config);
    sanitize_budget(spec, config);
    // Findings are recorded once, at creation; an update keeps that record as it is.
    if phase == Phase::Create {
        record_findings(&mut spec.attributes, &findings);
    }
}

/// Attributes only the system writes: `titus.sanitization.*`, `titus.runtimePrediction.*`,
/// `titus.noncompliant*`.
pub fn is_system_attribute(key: &str) -> bool {
    key.starts_with(attributes::SANITIZATION_PREFIX)
        || key.starts_with(attributes::RUNTIME_PREDICTION_PREFIX)
        || key.starts_with(attributes::NONCOMPLIANT_PREFIX)
}

fn strip_attributes(attrs: &mut BTreeMap<String, String>) {
    attrs.retain(|key, _| !is_system_attribute(key));
}

fn sanitize_resources(spec: &mut TitusJobSpec, config: &SanitizeConfig) {
    let r = &mut spec.container.resources;
    if r.cpu.is_nan() || r.cpu < config.min_cpu {
        r.cpu = config.min_cpu;
    }
    r.memory_mb = r.memory_mb.max(config.min_memory_mb);
    r.disk_mb = r.disk_mb.max(config.min_disk_mb);
    r.network_mbps = r.network_mbps.max(config.min_network_mbps);
    if r.shm_size_mb == 0 {
        r.shm_size_mb = config.default_shm_mb;
    }
    for mount in &mut r.efs_mounts {
        mount.mount_perm.get_or_insert(MountPerm::Rw);
    }
    r.efs_mounts
        .sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
}

/// One Titus non-compliance finding: feature id and context (key -> detail).
type Finding = (&'static str, Vec<(String, String)>);

fn compliance_findings(
    spec: &TitusJobSpec,
    config: &SanitizeConfig,
    validation: &ValidationConfig,
) -> Vec<Finding> {
    let mut findings: Vec<Finding> = Vec::new();
    let profile = &spec.container.security_profile;
    let high_scale = spec.network_configuration.network_mode == crate::job::NetworkMode::HighScale;
    if profile.security_groups.is_empty()
        && !high_scale
        && !config.default_security_groups.is_empty()
    {
        findings.push((
            "securityGroupsRequired",
            detail("noSecurityGroups", "Security groups not set"),
        ));
    }
    if profile.iam_role.is_empty() && !config.default_iam_role.is_empty() {
        findings.push(("iamRoleRequired", detail("noIamRole", "IAM role not set")));
    }
    if !validation.strict_env_names {
        let mut context = Vec::new();
        for name in spec.container.env.keys() {
            if let Some(reason) = crate::validation::patterns::env_name_violation(name) {
                context.push((name.clone(), format!("{ENV_NAMES_MESSAGE} ({reason})")));
            }
        }
        if !context.is_empty() {
            findings.push(("environmentVariableNamesStrictValidation", context));
        }
    }
    let container = &spec.container;
    let first_has_space = container
        .entry_point
        .first()
        .is_some_and(|first| first.chars().any(char::is_whitespace));
    if first_has_space && container.command.is_empty() {
        findings.push((
            "entryPointStrictValidation",
            detail("entryPointBinaryWithSpaces", ENTRY_POINT_SPACES_MESSAGE),
        ));
    }
    if spec
        .disruption_budget
        .as_ref()
        .is_none_or(JobDisruptionBudget::is_legacy)
    {
        let info = match &spec.service {
            None => "no migration policy (batch job)".to_string(),
            Some(service) => format!(
                "service job with legacy migration policy: {}",
                serde_json::to_string(&service.migration_policy)
                    .unwrap_or_else(|e| format!("<{e}>"))
            ),
        };
        findings.push((
            "disruptionBudget",
            vec![("legacyMigration".to_string(), info)],
        ));
    }
    findings
}

fn detail(key: &str, value: &str) -> Vec<(String, String)> {
    vec![(key.to_string(), value.to_string())]
}

fn fill_security_defaults(spec: &mut TitusJobSpec, config: &SanitizeConfig) {
    let high_scale = spec.network_configuration.network_mode == crate::job::NetworkMode::HighScale;
    let profile = &mut spec.container.security_profile;
    if profile.security_groups.is_empty() && !high_scale {
        profile.security_groups = config.default_security_groups.clone();
    }
    if profile.iam_role.is_empty() {
        profile.iam_role = config.default_iam_role.clone();
    }
}

/// The disruption budget Titus gives a job that has none (§8.1): `selfManaged` + `rateUnlimited`
/// with 7 days (self-managed service migration), 60 s (other services) or
/// `max(60 s, 1.2 × runtime limit)` (batch).
pub fn default_disruption_budget(
    spec: &TitusJobSpec,
    config: &SanitizeConfig,
) -> JobDisruptionBudget {
    let relocation_time_ms = match (&spec.batch, &spec.service) {
        (Some(batch), _) => {
            let runtime_ms = batch.runtime_limit_sec.saturating_mul(1000);
            // 1.2 × runtime, in integers: runtime + runtime / 5.
            MIN_BATCH_RELOCATION_TIME_MS.max(runtime_ms.saturating_add(runtime_ms / 5))
        }
        (None, Some(service)) => {
            if service
                .migration_policy
                .is_some_and(|p| p.is_self_managed())
            {
                config.service_self_managed_relocation_time_ms
            } else {
                DEFAULT_SERVICE_RELOCATION_TIME_MS
            }
        }
        (None, None) => DEFAULT_SERVICE_RELOCATION_TIME_MS,
    };
    JobDisruptionBudget::self_managed_unlimited(relocation_time_ms)
}

fn sanitize_budget(spec: &mut TitusJobSpec, config: &SanitizeConfig) {
    let legacy = spec
        .disruption_budget
        .as_ref()
        .is_none_or(JobDisruptionBudget::is_legacy);
    if legacy {
        spec.disruption_budget = Some(default_disruption_budget(spec, config));
    } else if let Some(budget) = spec.disruption_budget.as_mut()
        && budget.rates_set() == 0
    {
        budget.rate_unlimited = Some(Empty {});
    }
}

fn record_findings(attrs: &mut BTreeMap<String, String>, findings: &[Finding]) {
    if findings.is_empty() {
        return;
    }
    let features: Vec<&str> = findings.iter().map(|(feature, _)| *feature).collect();
    attrs.insert(
        attributes::NONCOMPLIANT_FEATURES.to_string(),
        features.join(","),
    );
    for (feature, context) in findings {
        for (key, value) in context {
            attrs.insert(
                format!("{}{feature}.{key}", attributes::NONCOMPLIANT_DETAILS_PREFIX),
                value.clone(),
            );
        }
    }
}
