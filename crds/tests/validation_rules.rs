//! One case per Titus validation rule of the descriptor and its container: the spec breaks
//! exactly that rule, and the test asserts the Kubernetes field path, the Titus core-model path
//! and Titus's message. Batch, service, retry and budget rules are in `validation_job_type_rules`.

// Test helpers may unwrap: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{Case, allocation, batch, case, service};
use titus_crds::job::container::{
    BasicContainer, EfsMount, PlatformSidecar, SaaSVolumeSource, SharedContainerVolumeSource,
    StaticIpAddressIds, Volume, VolumeMount,
};
use titus_crds::validation::{SizeLimits, check_job};
use titus_crds::{Image, ValidationConfig, ViolationKind, validate_job};

fn descriptor_and_container_cases() -> Vec<Case> {
    let digest = format!("sha256:{}", "ab".repeat(32));
    vec![
        case(
            "owner email",
            batch(),
            |s| s.owner.team_email = "nobody".into(),
            "spec.owner.teamEmail",
            "owner.teamEmail",
            "Invalid email address",
        ),
        case(
            "application name",
            batch(),
            |s| s.application_name.clear(),
            "spec.applicationName",
            "applicationName",
            "Empty string not allowed",
        ),
        case(
            "neither batch nor service",
            batch(),
            |s| s.batch = None,
            "spec",
            "extensions",
            "exactly one of batch or service must be set",
        ),
        case(
            "both batch and service",
            batch(),
            |s| s.service = service().service,
            "spec",
            "extensions",
            "exactly one of batch or service must be set",
        ),
        case(
            "cpu above maximum",
            batch(),
            |s| s.container.resources.cpu = 96.5,
            "spec.container.resources.cpu",
            "container.containerResources.cpu",
            "Above maximum allowed value 96.0",
        ),
        case(
            "cpu not positive",
            batch(),
            |s| s.container.resources.cpu = 0.0,
            "spec.container.resources.cpu",
            "container.containerResources.cpu",
            "'cpu'(0.0) must be > 0",
        ),
        case(
            "gpu above maximum",
            batch(),
            |s| s.container.resources.gpu = 17,
            "spec.container.resources.gpu",
            "container.containerResources.gpu",
            "Above maximum allowed value 16",
        ),
        case(
            "memory above maximum",
            batch(),
            |s| s.container.resources.memory_mb = 1_152_001,
            "spec.container.resources.memoryMB",
            "container.containerResources.memoryMB",
            "Above maximum allowed value 1152000",
        ),
        case(
            "memory not positive",
            batch(),
            |s| {
                s.container.resources.memory_mb = 0;
                s.container.resources.shm_size_mb = 0;
            },
            "spec.container.resources.memoryMB",
            "container.containerResources.memoryMB",
            "'memoryMB'(0) must be > 0",
        ),
        case(
            "disk above maximum",
            batch(),
            |s| s.container.resources.disk_mb = 1_550_001,
            "spec.container.resources.diskMB",
            "container.containerResources.diskMB",
            "Above maximum allowed value 1550000",
        ),
        case(
            "network above maximum",
            batch(),
            |s| s.container.resources.network_mbps = 400_001,
            "spec.container.resources.networkMbps",
            "container.containerResources.networkMbps",
            "Above maximum allowed value 400000",
        ),
        case(
            "shm above memory",
            batch(),
            |s| {
                s.container.resources.shm_size_mb = 1024;
                s.container.resources.memory_mb = 512;
            },
            "spec.container.resources.shmSizeMB",
            "container.containerResources",
            "'shmMB' (1024) must be <= 'memoryMB' (512)",
        ),
        case(
            "efs id empty",
            batch(),
            |s| {
                s.container.resources.efs_mounts = vec![EfsMount {
                    mount_point: "/efs".into(),
                    mount_perm: Some(Default::default()),
                    ..Default::default()
                }]
            },
            "spec.container.resources.efsMounts[0].efsId",
            "container.containerResources.efsMounts[0].efsId",
            "Empty value not allowed",
        ),
        case(
            "efs mount point empty",
            batch(),
            |s| {
                s.container.resources.efs_mounts = vec![EfsMount {
                    efs_id: "fs-1".into(),
                    mount_perm: Some(Default::default()),
                    ..Default::default()
                }]
            },
            "spec.container.resources.efsMounts[0].mountPoint",
            "container.containerResources.efsMounts[0].mountPoint",
            "Empty value not allowed",
        ),
        case(
            "efs permission missing",
            batch(),
            |s| {
                s.container.resources.efs_mounts = vec![EfsMount {
                    efs_id: "fs-1".into(),
                    mount_point: "/efs".into(),
                    ..Default::default()
                }]
            },
            "spec.container.resources.efsMounts[0].mountPerm",
            "container.containerResources.efsMounts[0].mountPerm",
            "'mountPerm' is null",
        ),
        case(
            "fewer static IPs than tasks",
            batch(),
            |s| s.container.resources.signed_address_allocations = vec![allocation("a")],
            "spec.container.resources.signedAddressAllocations",
            "container.containerResources.signedIpAllocations",
            "Above number of max task instances 3",
        ),
        case(
            "duplicate static IPs",
            batch(),
            |s| {
                s.container.resources.signed_address_allocations =
                    vec![allocation("a"), allocation("a"), allocation("b")]
            },
            "spec.container.resources.signedAddressAllocations",
            "container.containerResources.signedIpAddressAllocations",
            "duplicate values not allowed",
        ),
        case(
            "static IP pool and ids",
            batch(),
            |s| {
                s.container.resources.pool = "p".into();
                s.container.resources.static_ip_address_ids = Some(StaticIpAddressIds::default());
            },
            "spec.container.resources.staticIPAddressIDs",
            "container.containerResources.staticIPAddresses",
            "only one of pool or staticIPAddressIDs may be set",
        ),
        case(
            "no security group",
            batch(),
            |s| s.container.security_profile.security_groups.clear(),
            "spec.container.securityProfile.securityGroups",
            "container.securityProfile.securityGroups",
            "Number of security groups must be between 1 and 6",
        ),
        case(
            "seven security groups",
            batch(),
            |s| {
                s.container.security_profile.security_groups =
                    (0..7).map(|i| format!("sg-{i}")).collect()
            },
            "spec.container.securityProfile.securityGroups",
            "container.securityProfile.securityGroups",
            "Number of security groups must be between 1 and 6",
        ),
        case(
            "security group syntax",
            batch(),
            |s| {
                s.container
                    .security_profile
                    .security_groups
                    .push("web".into())
            },
            "spec.container.securityProfile.securityGroups",
            "container.securityProfile.securityGroups",
            "Syntactically invalid security group ids: [sg-titusdefault, web]",
        ),
        case(
            "IAM role with space",
            batch(),
            |s| s.container.security_profile.iam_role = "my role".into(),
            "spec.container.securityProfile.iamRole",
            "container.securityProfile.iamRole",
            "Syntactically invalid IAM role: my role",
        ),
        case(
            "IAM role blank",
            batch(),
            |s| s.container.security_profile.iam_role = "  ".into(),
            "spec.container.securityProfile.iamRole",
            "container.securityProfile.iamRole",
            "Syntactically invalid IAM role:   ",
        ),
        case(
            "image name",
            batch(),
            |s| s.container.image.name = "bad name".into(),
            "spec.container.image.name",
            "container.image.name",
            "image name is not valid",
        ),
        case(
            "image without tag or digest",
            batch(),
            |s| s.container.image.tag.clear(),
            "spec.container.image.tag",
            "container.image.noValidImageDigestOrTag",
            "must specify a valid digest or tag",
        ),
        case(
            "image with a bad digest only",
            batch(),
            |s| {
                s.container.image.tag.clear();
                s.container.image.digest = "sha256:xyz".into();
            },
            "spec.container.image.digest",
            "container.image.noValidImageDigestOrTag",
            "must specify a valid digest or tag",
        ),
        case(
            "image with a bad tag only",
            batch(),
            |s| s.container.image.tag = "a:b".into(),
            "spec.container.image.tag",
            "container.image.noValidImageDigestOrTag",
            "must specify a valid digest or tag",
        ),
        case(
            "entry point too large",
            batch(),
            |s| s.container.entry_point = vec!["x".repeat(16 * 1024 + 1)],
            "spec.container.entryPoint",
            "container.entryPoint",
            "Entry point size exceeds the limit 16KB",
        ),
        case(
            "environment too large",
            batch(),
            |s| {
                s.container.env.insert("BIG".into(), "x".repeat(32 * 1024));
            },
            "spec.container.env",
            "container.env",
            "Container environment variables size exceeds the limit",
        ),
        case(
            "empty environment name",
            batch(),
            |s| {
                s.container.env.insert(String::new(), "v".into());
            },
            "spec.container.env",
            "container.env",
            "empty key names not allowed",
        ),
        case(
            "lower-case environment name",
            batch(),
            |s| {
                s.container.env.insert("path".into(), "v".into());
            },
            "spec.container.env[path]",
            "container.env",
            "Environment variable validation error: Environment variable names may include only ASCII letters, digits and '_', and the first letter cannot be a digit. (the environment name must start with an upper case ASCII letter or '_')",
        ),
        case(
            "environment name with a dash",
            batch(),
            |s| {
                s.container.env.insert("A-B".into(), "v".into());
            },
            "spec.container.env[A-B]",
            "container.env",
            "Environment variable validation error: Environment variable names may include only ASCII letters, digits and '_', and the first letter cannot be a digit. (the environment name characters may be an upper case ASCII letter, a digit or '_')",
        ),
        case(
            "unknown hard constraint",
            batch(),
            |s| {
                s.container
                    .hard_constraints
                    .constraints
                    .insert("Foo".into(), "x".into());
            },
            "spec.container.hardConstraints.constraints",
            "container.hardConstraints",
            "Unrecognized constraints [foo]",
        ),
        case(
            "toleration soft constraint",
            batch(),
            |s| {
                s.container
                    .soft_constraints
                    .constraints
                    .insert("toleration".into(), "x".into());
            },
            "spec.container.softConstraints.constraints",
            "container.softConstraints",
            "Unrecognized constraints [toleration]",
        ),
        case(
            "same constraint soft and hard",
            batch(),
            |s| {
                s.container
                    .soft_constraints
                    .constraints
                    .insert("uniqueHost".into(), "true".into());
                s.container
                    .hard_constraints
                    .constraints
                    .insert("uniqueHost".into(), "true".into());
            },
            "spec.container",
            "container",
            "Soft and hard constraints not unique. Shared constraints: [uniqueHost]",
        ),
        case(
            "volume mount name",
            batch(),
            |s| {
                s.container.volume_mounts = vec![VolumeMount {
                    volume_name: "Data".into(),
                    mount_path: "/d".into(),
                    ..Default::default()
                }]
            },
            "spec.container.volumeMounts[0].volumeName",
            "container.volumeMounts[0].volumeName",
            "volume name must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        ),
        case(
            "volume mount of an unknown volume",
            batch(),
            |s| {
                s.container.volume_mounts = vec![VolumeMount {
                    volume_name: "data".into(),
                    mount_path: "/d".into(),
                    ..Default::default()
                }]
            },
            "spec.container.volumeMounts[0].volumeName",
            "container.volumeMounts[0].volumeName",
            "volume mount refers to unknown volume data",
        ),
        case(
            "relative mount path",
            batch(),
            |s| {
                s.volumes = vec![Volume {
                    name: "data".into(),
                    saas_volume_source: Some(SaaSVolumeSource {
                        saas_volume_id: "v".into(),
                    }),
                    ..Default::default()
                }];
                s.container.volume_mounts = vec![VolumeMount {
                    volume_name: "data".into(),
                    mount_path: "d".into(),
                    ..Default::default()
                }];
            },
            "spec.container.volumeMounts[0].mountPath",
            "container.volumeMounts[0].mountPath",
            "path must start with a leading slash",
        ),
        case(
            "extra container name",
            batch(),
            |s| {
                s.extra_containers = vec![BasicContainer {
                    name: "Side".into(),
                    image: Image::tagged("sidecar", "1"),
                    ..Default::default()
                }]
            },
            "spec.extraContainers[0].name",
            "extraContainers[0].name",
            "container name must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        ),
        case(
            "extra container named main",
            batch(),
            |s| {
                s.extra_containers = vec![BasicContainer {
                    name: "main".into(),
                    image: Image::tagged("sidecar", "1"),
                    ..Default::default()
                }]
            },
            "spec.extraContainers[0].name",
            "extraContainers[0].name",
            "container name main is already used in the task's pod",
        ),
        case(
            "extra container image",
            batch(),
            |s| {
                s.extra_containers = vec![BasicContainer {
                    name: "side".into(),
                    image: Image::tagged("sidecar", ""),
                    ..Default::default()
                }]
            },
            "spec.extraContainers[0].image.tag",
            "extraContainers[0].image.noValidImageDigestOrTag",
            "must specify a valid digest or tag",
        ),
        case(
            "extra container environment",
            batch(),
            |s| {
                s.extra_containers = vec![BasicContainer {
                    name: "side".into(),
                    image: Image::tagged("sidecar", "1"),
                    env: [(String::new(), "v".to_string())].into(),
                    ..Default::default()
                }]
            },
            "spec.extraContainers[0].env",
            "extraContainers[0].env",
            "empty key names not allowed",
        ),
        case(
            "volume name",
            batch(),
            |s| {
                s.volumes = vec![Volume {
                    name: "Data".into(),
                    saas_volume_source: Some(SaaSVolumeSource::default()),
                    ..Default::default()
                }]
            },
            "spec.volumes[0].name",
            "volumes[0].name",
            "volume name must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        ),
        case(
            "volume without source",
            batch(),
            |s| {
                s.volumes = vec![Volume {
                    name: "data".into(),
                    ..Default::default()
                }]
            },
            "spec.volumes[0]",
            "volumes[0].volumeSource",
            "must not be null",
        ),
        case(
            "volume with two sources",
            batch(),
            |s| {
                s.volumes = vec![Volume {
                    name: "data".into(),
                    saas_volume_source: Some(SaaSVolumeSource::default()),
                    shared_container_volume_source: Some(SharedContainerVolumeSource::default()),
                }]
            },
            "spec.volumes[0]",
            "volumes[0].volumeSource",
            "only one of sharedContainerVolumeSource or SaaSVolumeSource may be set",
        ),
        case(
            "platform sidecar name",
            batch(),
            |s| {
                s.platform_sidecars = vec![PlatformSidecar {
                    name: "Bad_Name".into(),
                    channel: "stable".into(),
                    arguments: None,
                }]
            },
            "spec.platformSidecars[0].name",
            "platformSidecars[0].name",
            "platform sidecar names must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        ),
        case(
            "platform sidecar channel",
            batch(),
            |s| {
                s.platform_sidecars = vec![PlatformSidecar {
                    name: "logs.v2".into(),
                    channel: "".into(),
                    arguments: None,
                }]
            },
            "spec.platformSidecars[0].channel",
            "platformSidecars[0].channel",
            "channel names must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        ),
        case(
            "empty image name with a valid digest",
            batch(),
            |s| {
                s.container.image.digest = digest;
                s.container.image.name = String::new();
            },
            "spec.container.image.name",
            "container.image.name",
            "image name is not valid",
        ),
    ]
}

#[test]
fn each_descriptor_and_container_rule_reports_its_field_paths_and_titus_message() {
    support::assert_cases(descriptor_and_container_cases());
}

#[test]
fn the_builders_produce_valid_jobs() {
    validate_job(&batch()).unwrap();
    validate_job(&service()).unwrap();
}

#[test]
fn image_tag_and_digest_together_are_accepted() {
    let mut spec = batch();
    spec.container.image.digest = format!("sha256:{}", "ab".repeat(32));
    validate_job(&spec).unwrap();
    spec.container.image.tag.clear();
    validate_job(&spec).unwrap();
}

#[test]
fn constraint_names_are_case_insensitive_but_soft_hard_duplicates_are_case_sensitive() {
    let mut spec = batch();
    spec.container
        .soft_constraints
        .constraints
        .insert("UniqueHost".into(), "true".into());
    spec.container
        .hard_constraints
        .constraints
        .insert("uniqueHost".into(), "true".into());
    spec.container
        .hard_constraints
        .constraints
        .insert("AVAILABILITYZONE".into(), "us-east-1a".into());
    validate_job(&spec).unwrap();
}

#[test]
fn runtime_limit_bounds_are_inclusive() {
    for seconds in [5, 864_000] {
        let mut spec = batch();
        spec.batch.as_mut().unwrap().runtime_limit_sec = seconds;
        validate_job(&spec).unwrap();
    }
}

#[test]
fn lenient_environment_names_are_soft_and_do_not_refuse_the_job() {
    let mut spec = batch();
    spec.container.env.insert("lower".into(), "v".into());
    let config = ValidationConfig {
        strict_env_names: false,
        ..ValidationConfig::default()
    };
    let errors = check_job(&spec, &config);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors.iter().next().unwrap().kind, ViolationKind::Soft);
    titus_crds::validation::validate_job_with(&spec, &config).unwrap();
    assert!(validate_job(&spec).is_err(), "strict by default");
}

#[test]
fn an_entry_point_relying_on_shell_splitting_is_soft() {
    let mut spec = batch();
    spec.container.entry_point = vec!["/bin/sh -c 'echo hi'".into()];
    let errors = check_job(&spec, &ValidationConfig::default());
    let e = errors.iter().next().unwrap();
    assert_eq!(
        (e.field.as_str(), e.kind),
        ("spec.container.entryPoint", ViolationKind::Soft)
    );
    assert_eq!(
        e.description,
        "First entry point value cannot contain spaces"
    );
    validate_job(&spec).unwrap();
}

#[test]
fn per_application_batch_limit_applies() {
    let mut spec = batch();
    spec.batch.as_mut().unwrap().size = 11;
    let mut config = ValidationConfig::default();
    config.application_size_limits.insert(
        spec.application_name.clone(),
        SizeLimits {
            batch: 10,
            service: 10,
        },
    );
    let errors = check_job(&spec, &config);
    let e = errors.iter().next().unwrap();
    assert_eq!(e.titus_field, "jobDescriptor.extensions.size");
    assert_eq!(e.description, "Batch job size is limited to 10, but is 11");
}

#[test]
fn errors_display_readably_and_render_titus_status_text() {
    let mut spec = batch();
    spec.owner.team_email.clear();
    spec.application_name.clear();
    let errors = validate_job(&spec).unwrap_err();
    assert_eq!(
        errors.to_string(),
        "spec.owner.teamEmail: Invalid email address; spec.applicationName: Empty string not allowed"
    );
    assert_eq!(
        errors.titus_message(),
        "Invalid Argument: {Validation failed: 'field: 'owner.teamEmail', description: 'Invalid email address', type: 'HARD''}, \
         {Validation failed: 'field: 'applicationName', description: 'Empty string not allowed', type: 'HARD''}"
    );
    assert_eq!(errors.into_iter().count(), 2);
}
