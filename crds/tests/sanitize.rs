//! Titus's sanitization, applied before validation.

// Test helpers may unwrap: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use titus_crds::job::NetworkMode;
use titus_crds::job::container::{EfsMount, MountPerm};
use titus_crds::job::disruption::RelocationLimitPolicy;
use titus_crds::sanitize::default_disruption_budget;
use titus_crds::{
    JobDisruptionBudget, MigrationPolicy, SanitizeConfig, TitusJobSpec, ValidationConfig, sanitize,
    sanitize_with, validate_job,
};

fn sanitized(mut spec: TitusJobSpec) -> TitusJobSpec {
    sanitize(&mut spec);
    spec
}

#[test]
fn resources_below_minimums_are_raised_and_others_kept() {
    let cases = [
        // (cpu, memory, disk, network, shm) in, expected out
        ((0.5, 100, 0, 1, 0), (1.0, 512, 10_000, 128, 64)),
        ((0.0, 0, 9_999, 0, 0), (1.0, 512, 10_000, 128, 64)),
        (
            (2.5, 4096, 20_000, 1000, 128),
            (2.5, 4096, 20_000, 1000, 128),
        ),
    ];
    for ((cpu, mem, disk, net, shm), expected) in cases {
        let mut spec = TitusJobSpec::batch(1);
        let r = &mut spec.container.resources;
        (r.cpu, r.memory_mb, r.disk_mb, r.network_mbps, r.shm_size_mb) = (cpu, mem, disk, net, shm);
        let r = sanitized(spec).container.resources;
        assert_eq!(
            (r.cpu, r.memory_mb, r.disk_mb, r.network_mbps, r.shm_size_mb),
            expected
        );
    }
}

#[test]
fn efs_mounts_get_read_write_by_default_and_are_sorted_by_mount_point() {
    let mut spec = TitusJobSpec::batch(1);
    spec.container.resources.efs_mounts = vec![
        EfsMount {
            efs_id: "fs-b".into(),
            mount_point: "/z".into(),
            mount_perm: None,
            ..Default::default()
        },
        EfsMount {
            efs_id: "fs-a".into(),
            mount_point: "/a".into(),
            mount_perm: Some(MountPerm::Ro),
            ..Default::default()
        },
    ];
    let mounts = sanitized(spec).container.resources.efs_mounts;
    let got: Vec<_> = mounts
        .iter()
        .map(|m| (m.mount_point.as_str(), m.mount_perm))
        .collect();
    assert_eq!(
        got,
        [("/a", Some(MountPerm::Ro)), ("/z", Some(MountPerm::Rw))]
    );
}

#[test]
fn empty_capacity_group_becomes_default_and_a_named_one_is_kept() {
    assert_eq!(sanitized(TitusJobSpec::batch(1)).capacity_group, "DEFAULT");
    assert_eq!(
        sanitized(TitusJobSpec::batch(1).with_capacity_group("flex")).capacity_group,
        "flex"
    );
}

#[test]
fn service_without_migration_policy_gets_system_default() {
    let spec = sanitized(TitusJobSpec::service(0, 1, 1));
    assert_eq!(
        spec.service.unwrap().migration_policy,
        Some(MigrationPolicy::system_default())
    );
}

#[test]
fn client_supplied_system_attributes_are_stripped_and_others_kept() {
    let spec = TitusJobSpec::batch(1)
        .with_attribute("titus.sanitization.skipped.image", "true")
        .with_attribute("titus.runtimePrediction.predictedRuntime", "10")
        .with_attribute("titus.noncompliant.features", "x")
        .with_attribute("titus.createdBy", "me")
        .with_attribute("team", "a");
    let attrs = sanitized(spec).attributes;
    assert!(!attrs.contains_key("titus.sanitization.skipped.image"));
    assert!(!attrs.contains_key("titus.runtimePrediction.predictedRuntime"));
    assert_ne!(
        attrs.get("titus.noncompliant.features").map(String::as_str),
        Some("x")
    );
    assert_eq!(attrs.get("titus.createdBy").map(String::as_str), Some("me"));
    assert_eq!(attrs.get("team").map(String::as_str), Some("a"));
}

#[test]
fn default_disruption_budgets_follow_the_job_type() {
    let config = SanitizeConfig::default();
    let cases = [
        (
            TitusJobSpec::batch(1).with_runtime_limit_sec(3_600),
            4_320_000,
        ),
        (TitusJobSpec::batch(1).with_runtime_limit_sec(10), 60_000),
        (TitusJobSpec::service(0, 1, 1), 60_000),
    ];
    for (spec, relocation_ms) in cases {
        assert_eq!(
            sanitized(spec.clone()).disruption_budget,
            Some(JobDisruptionBudget::self_managed_unlimited(relocation_ms))
        );
        assert_eq!(
            default_disruption_budget(&spec, &config),
            JobDisruptionBudget::self_managed_unlimited(relocation_ms)
        );
    }
    let mut self_managed = TitusJobSpec::service(0, 1, 1);
    self_managed.service.as_mut().unwrap().migration_policy = Some(MigrationPolicy::self_managed());
    assert_eq!(
        sanitized(self_managed).disruption_budget,
        Some(JobDisruptionBudget::self_managed_unlimited(
            7 * 24 * 3_600_000
        ))
    );
}

#[test]
fn a_legacy_budget_is_replaced_and_a_real_one_only_gains_a_rate() {
    let legacy = TitusJobSpec::batch(1)
        .with_disruption_budget(JobDisruptionBudget::self_managed_unlimited(0));
    assert_eq!(
        sanitized(legacy).disruption_budget,
        Some(JobDisruptionBudget::self_managed_unlimited(4_320_000))
    );
    let no_rate = JobDisruptionBudget {
        relocation_limit: Some(RelocationLimitPolicy { limit: 2 }),
        ..Default::default()
    };
    let budget = sanitized(TitusJobSpec::batch(1).with_disruption_budget(no_rate.clone()))
        .disruption_budget
        .unwrap();
    assert_eq!(budget.relocation_limit, no_rate.relocation_limit);
    assert!(budget.rate_unlimited.is_some());
    assert_eq!(budget.rates_set(), 1);
}

#[test]
fn non_compliance_is_recorded_in_attributes() {
    let spec = sanitized(TitusJobSpec::batch(1).with_entry_point(["/bin/sh -c 'echo hi'"]));
    let attrs = &spec.attributes;
    assert_eq!(
        attrs.get("titus.noncompliant.features").map(String::as_str),
        Some("entryPointStrictValidation,disruptionBudget")
    );
    assert_eq!(
        attrs
            .get("titus.noncompliant.details.disruptionBudget.legacyMigration")
            .map(String::as_str),
        Some("no migration policy (batch job)")
    );
    assert_eq!(
        attrs
            .get("titus.noncompliant.details.entryPointStrictValidation.entryPointBinaryWithSpaces")
            .map(String::as_str),
        Some("First entry point value cannot contain spaces")
    );
}

#[test]
fn a_compliant_job_gets_no_non_compliance_attributes() {
    let spec = TitusJobSpec::batch(1)
        .with_disruption_budget(JobDisruptionBudget::self_managed_unlimited(60_000));
    assert!(sanitized(spec).attributes.is_empty());
}

#[test]
fn configured_security_defaults_fill_missing_values_except_in_high_scale_mode() {
    let config = SanitizeConfig {
        default_security_groups: vec!["sg-default".into()],
        default_iam_role: "defaultRole".into(),
        ..SanitizeConfig::default()
    };
    let mut spec = TitusJobSpec::batch(1);
    spec.container.security_profile = Default::default();
    let mut filled = spec.clone();
    sanitize_with(&mut filled, &config, &ValidationConfig::default());
    assert_eq!(
        filled.container.security_profile.security_groups,
        ["sg-default"]
    );
    assert_eq!(filled.container.security_profile.iam_role, "defaultRole");
    let features = &filled.attributes["titus.noncompliant.features"];
    assert!(
        features.starts_with("securityGroupsRequired,iamRoleRequired"),
        "{features}"
    );
    validate_job(&filled).unwrap();

    spec.network_configuration.network_mode = NetworkMode::HighScale;
    sanitize_with(&mut spec, &config, &ValidationConfig::default());
    assert!(spec.container.security_profile.security_groups.is_empty());
}

#[test]
fn without_security_defaults_a_missing_profile_is_refused() {
    let mut spec = TitusJobSpec::batch(1);
    spec.container.security_profile = Default::default();
    sanitize(&mut spec);
    let errors = validate_job(&spec).unwrap_err();
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.container.securityProfile.securityGroups",
            "spec.container.securityProfile.iamRole"
        ]
    );
}
