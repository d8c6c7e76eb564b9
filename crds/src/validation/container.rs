//! Rules for the container part of a job: resources, security profile, image, entry point,
//! environment, constraints, volume mounts, and the extra containers, volumes and platform
//! sidecars of the descriptor.

use std::collections::{BTreeMap, BTreeSet};

use super::patterns::{
    env_name_violation, is_absolute_path, is_dns_label, is_dotted_label, is_image_digest,
    is_image_name, is_image_tag, is_security_group,
};
use super::{Collector, ValidationConfig, ViolationKind, java_double, java_list};
use crate::constants::MAIN_CONTAINER_NAME;
use crate::job::TitusJobSpec;
use crate::job::container::{Container, ContainerResources, SecurityProfile, VolumeMount};

/// Constraint names Titus recognizes (compared lower-cased).
pub const CONSTRAINT_NAMES: [&str; 10] = [
    "uniquehost",
    "exclusivehost",
    "zonebalance",
    "activehost",
    "availabilityzone",
    "machineid",
    "machinegroup",
    "machinetype",
    "kubebackend",
    "cpumodel",
];

const VOLUME_NAME_MESSAGE: &str = "volume name must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const CONTAINER_NAME_MESSAGE: &str = "container name must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";

/// Titus's non-compliance message for environment names.
pub const ENV_NAMES_MESSAGE: &str = "Environment variable names may include only ASCII letters, digits and '_', and the first letter cannot be a digit.";
/// Titus's non-compliance message for an entry point that relies on shell splitting.
pub const ENTRY_POINT_SPACES_MESSAGE: &str = "First entry point value cannot contain spaces";

pub(crate) fn check_container(spec: &TitusJobSpec, cfg: &ValidationConfig, c: &mut Collector) {
    let container = &spec.container;
    check_resources(&container.resources, spec.max_size(), cfg, c);
    check_security_profile(&container.security_profile, c);
    check_image(
        &container.image.name,
        &container.image.tag,
        &container.image.digest,
        "spec.container.image",
        "container.image",
        c,
    );
    check_command(
        &container.entry_point,
        &container.env,
        "spec.container",
        "container",
        cfg,
        c,
    );
    check_env_names(&container.env, cfg, c);
    check_entry_point_compliance(container, c);
    check_constraints(container, c);
    let volumes: BTreeSet<&str> = spec.volumes.iter().map(|v| v.name.as_str()).collect();
    check_mounts(
        &container.volume_mounts,
        &volumes,
        "spec.container.volumeMounts",
        "container.volumeMounts",
        c,
    );
    check_extra_containers(spec, &volumes, cfg, c);
    check_volumes(spec, c);
    check_platform_sidecars(spec, c);
}

fn check_resources(
    r: &ContainerResources,
    max_size: u32,
    cfg: &ValidationConfig,
    c: &mut Collector,
) {
    let f = "spec.container.resources";
    let t = "container.containerResources";
    if r.cpu.is_nan() || r.cpu <= 0.0 {
        c.hard(
            format!("{f}.cpu"),
            format!("{t}.cpu"),
            format!("'cpu'({}) must be > 0", java_double(r.cpu)),
        );
    }
    if r.cpu > cfg.max_cpu {
        c.hard(
            format!("{f}.cpu"),
            format!("{t}.cpu"),
            format!("Above maximum allowed value {}", java_double(cfg.max_cpu)),
        );
    }
    let integers = [
        ("gpu", "gpu", r.gpu, cfg.max_gpu, false),
        ("memoryMB", "memoryMB", r.memory_mb, cfg.max_memory_mb, true),
        ("diskMB", "diskMB", r.disk_mb, cfg.max_disk_mb, true),
        (
            "networkMbps",
            "networkMbps",
            r.network_mbps,
            cfg.max_network_mbps,
            true,
        ),
    ];
    for (field, titus, value, max, positive) in integers {
        if positive && value == 0 {
            c.hard(
                format!("{f}.{field}"),
                format!("{t}.{titus}"),
                format!("'{titus}'(0) must be > 0"),
            );
        }
        if value > max {
            c.hard(
                format!("{f}.{field}"),
                format!("{t}.{titus}"),
                format!("Above maximum allowed value {max}"),
            );
        }
    }
    if r.shm_size_mb > r.memory_mb {
        c.hard(
            format!("{f}.shmSizeMB"),
            t,
            format!(
                "'shmMB' ({}) must be <= 'memoryMB' ({})",
                r.shm_size_mb, r.memory_mb
            ),
        );
    }
    for (i, mount) in r.efs_mounts.iter().enumerate() {
        let (mf, mt) = (format!("{f}.efsMounts[{i}]"), format!("{t}.efsMounts[{i}]"));
        if mount.efs_id.is_empty() {
            c.hard(
                format!("{mf}.efsId"),
                format!("{mt}.efsId"),
                "Empty value not allowed",
            );
        }
        if mount.mount_point.is_empty() {
            c.hard(
                format!("{mf}.mountPoint"),
                format!("{mt}.mountPoint"),
                "Empty value not allowed",
            );
        }
        if mount.mount_perm.is_none() {
            c.hard(
                format!("{mf}.mountPerm"),
                format!("{mt}.mountPerm"),
                "'mountPerm' is null",
            );
        }
    }
    let allocations = &r.signed_address_allocations;
    let distinct = allocations
        .iter()
        .enumerate()
        .all(|(i, a)| !allocations[..i].contains(a));
    if !distinct {
        c.hard(
            format!("{f}.signedAddressAllocations"),
            format!("{t}.signedIpAddressAllocations"),
            "duplicate values not allowed",
        );
    }
    let count = u32::try_from(allocations.len()).unwrap_or(u32::MAX);
    if count > 0 && max_size > count {
        c.hard(
            format!("{f}.signedAddressAllocations"),
            format!("{t}.signedIpAllocations"),
            format!("Above number of max task instances {max_size}"),
        );
    }
    if !r.pool.is_empty() && r.static_ip_address_ids.is_some() {
        c.hard(
            format!("{f}.staticIPAddressIDs"),
            format!("{t}.staticIPAddresses"),
            "only one of pool or staticIPAddressIDs may be set",
        );
    }
}

fn check_security_profile(p: &SecurityProfile, c: &mut Collector) {
    let n = p.security_groups.len();
    if !(1..=6).contains(&n) {
        c.hard(
            "spec.container.securityProfile.securityGroups",
            "container.securityProfile.securityGroups",
            "Number of security groups must be between 1 and 6",
        );
    }
    if !p.security_groups.iter().all(|sg| is_security_group(sg)) {
        c.hard(
            "spec.container.securityProfile.securityGroups",
            "container.securityProfile.securityGroups",
            format!(
                "Syntactically invalid security group ids: {}",
                java_list(&p.security_groups)
            ),
        );
    }
    let trimmed = p.iam_role.trim();
    if trimmed.is_empty() || trimmed.contains(' ') {
        c.hard(
            "spec.container.securityProfile.iamRole",
            "container.securityProfile.iamRole",
            format!("Syntactically invalid IAM role: {}", p.iam_role),
        );
    }
}

pub(crate) fn check_image(
    name: &str,
    tag: &str,
    digest: &str,
    field: &str,
    titus: &str,
    c: &mut Collector,
) {
    if !is_image_name(name) {
        c.hard(
            format!("{field}.name"),
            format!("{titus}.name"),
            "image name is not valid",
        );
    }
    let valid_tag = !tag.is_empty() && is_image_tag(tag);
    let valid_digest = !digest.is_empty() && is_image_digest(digest);
    if !valid_tag && !valid_digest {
        c.hard(
            format!(
                "{field}.{}",
                if digest.is_empty() { "tag" } else { "digest" }
            ),
            format!("{titus}.noValidImageDigestOrTag"),
            "must specify a valid digest or tag",
        );
    }
}

/// Entry point size, environment size and empty environment keys.
fn check_command(
    entry_point: &[String],
    env: &BTreeMap<String, String>,
    field: &str,
    titus: &str,
    cfg: &ValidationConfig,
    c: &mut Collector,
) {
    let entry_point_bytes: usize = entry_point.iter().map(String::len).sum();
    if entry_point_bytes > cfg.max_entry_point_bytes {
        c.hard(
            format!("{field}.entryPoint"),
            format!("{titus}.entryPoint"),
            format!(
                "Entry point size exceeds the limit {}KB",
                cfg.max_entry_point_bytes / 1024
            ),
        );
    }
    let env_bytes: usize = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    if env_bytes > cfg.max_env_bytes {
        c.hard(
            format!("{field}.env"),
            format!("{titus}.env"),
            "Container environment variables size exceeds the limit",
        );
    }
    if env.contains_key("") {
        c.hard(
            format!("{field}.env"),
            format!("{titus}.env"),
            "empty key names not allowed",
        );
    }
}

fn check_env_names(env: &BTreeMap<String, String>, cfg: &ValidationConfig, c: &mut Collector) {
    let kind = if cfg.strict_env_names {
        ViolationKind::Hard
    } else {
        ViolationKind::Soft
    };
    for name in env.keys().filter(|k| !k.is_empty()) {
        if let Some(reason) = env_name_violation(name) {
            c.push(
                kind,
                format!("spec.container.env[{name}]"),
                "container.env",
                format!("Environment variable validation error: {ENV_NAMES_MESSAGE} ({reason})"),
            );
        }
    }
}

/// Titus's `entryPointStrictValidation` finding: an entry point whose first element contains
/// whitespace, with no command, relies on the legacy shell splitting. Recorded, not refused.
fn check_entry_point_compliance(container: &Container, c: &mut Collector) {
    let first_has_space = container
        .entry_point
        .first()
        .is_some_and(|first| first.chars().any(char::is_whitespace));
    if first_has_space && container.command.is_empty() {
        c.push(
            ViolationKind::Soft,
            "spec.container.entryPoint",
            "container.entryPoint",
            ENTRY_POINT_SPACES_MESSAGE,
        );
    }
}

fn check_constraints(container: &Container, c: &mut Collector) {
    let sets = [
        ("softConstraints", &container.soft_constraints.constraints),
        ("hardConstraints", &container.hard_constraints.constraints),
    ];
    for (name, constraints) in sets {
        let unknown: BTreeSet<String> = constraints
            .keys()
            .map(|k| k.to_lowercase())
            .filter(|k| !CONSTRAINT_NAMES.contains(&k.as_str()))
            .collect();
        if !unknown.is_empty() {
            let unknown: Vec<String> = unknown.into_iter().collect();
            c.hard(
                format!("spec.container.{name}.constraints"),
                format!("container.{name}"),
                format!("Unrecognized constraints {}", java_list(&unknown)),
            );
        }
    }
    let shared: Vec<&String> = container
        .soft_constraints
        .constraints
        .keys()
        .filter(|k| container.hard_constraints.constraints.contains_key(*k))
        .collect();
    if !shared.is_empty() {
        c.hard(
            "spec.container",
            "container",
            format!(
                "Soft and hard constraints not unique. Shared constraints: {}",
                java_list(&shared)
            ),
        );
    }
}

fn check_mounts(
    mounts: &[VolumeMount],
    volumes: &BTreeSet<&str>,
    field: &str,
    titus: &str,
    c: &mut Collector,
) {
    for (i, mount) in mounts.iter().enumerate() {
        let (mf, mt) = (format!("{field}[{i}]"), format!("{titus}[{i}]"));
        if !is_dns_label(&mount.volume_name) {
            c.hard(
                format!("{mf}.volumeName"),
                format!("{mt}.volumeName"),
                VOLUME_NAME_MESSAGE,
            );
        } else if !volumes.contains(mount.volume_name.as_str()) {
            c.hard(
                format!("{mf}.volumeName"),
                format!("{mt}.volumeName"),
                format!(
                    "volume mount refers to unknown volume {}",
                    mount.volume_name
                ),
            );
        }
        if !is_absolute_path(&mount.mount_path) {
            c.hard(
                format!("{mf}.mountPath"),
                format!("{mt}.mountPath"),
                "path must start with a leading slash",
            );
        }
    }
}

fn check_extra_containers(
    spec: &TitusJobSpec,
    volumes: &BTreeSet<&str>,
    cfg: &ValidationConfig,
    c: &mut Collector,
) {
    let mut seen = BTreeSet::new();
    for (i, extra) in spec.extra_containers.iter().enumerate() {
        let (f, t) = (
            format!("spec.extraContainers[{i}]"),
            format!("extraContainers[{i}]"),
        );
        if !is_dns_label(&extra.name) {
            c.hard(
                format!("{f}.name"),
                format!("{t}.name"),
                CONTAINER_NAME_MESSAGE,
            );
        } else if extra.name == MAIN_CONTAINER_NAME || !seen.insert(extra.name.as_str()) {
            c.hard(
                format!("{f}.name"),
                format!("{t}.name"),
                format!(
                    "container name {} is already used in the task's pod",
                    extra.name
                ),
            );
        }
        let image = &extra.image;
        check_image(
            &image.name,
            &image.tag,
            &image.digest,
            &format!("{f}.image"),
            &format!("{t}.image"),
            c,
        );
        check_command(&extra.entry_point, &extra.env, &f, &t, cfg, c);
        check_mounts(
            &extra.volume_mounts,
            volumes,
            &format!("{f}.volumeMounts"),
            &format!("{t}.volumeMounts"),
            c,
        );
    }
}

fn check_volumes(spec: &TitusJobSpec, c: &mut Collector) {
    let mut seen = BTreeSet::new();
    for (i, volume) in spec.volumes.iter().enumerate() {
        let (f, t) = (format!("spec.volumes[{i}]"), format!("volumes[{i}]"));
        if !is_dns_label(&volume.name) {
            c.hard(
                format!("{f}.name"),
                format!("{t}.name"),
                VOLUME_NAME_MESSAGE,
            );
        } else if !seen.insert(volume.name.as_str()) {
            c.hard(
                format!("{f}.name"),
                format!("{t}.name"),
                format!("duplicate volume name {}", volume.name),
            );
        }
        match (
            &volume.shared_container_volume_source,
            &volume.saas_volume_source,
        ) {
            (None, None) => c.hard(f, format!("{t}.volumeSource"), "must not be null"),
            (Some(_), Some(_)) => c.hard(
                f,
                format!("{t}.volumeSource"),
                "only one of sharedContainerVolumeSource or SaaSVolumeSource may be set",
            ),
            (Some(_), None) | (None, Some(_)) => {}
        }
    }
}

fn check_platform_sidecars(spec: &TitusJobSpec, c: &mut Collector) {
    for (i, sidecar) in spec.platform_sidecars.iter().enumerate() {
        let (f, t) = (
            format!("spec.platformSidecars[{i}]"),
            format!("platformSidecars[{i}]"),
        );
        if !is_dotted_label(&sidecar.name) {
            c.hard(
                format!("{f}.name"),
                format!("{t}.name"),
                "platform sidecar names must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            );
        }
        if !is_dotted_label(&sidecar.channel) {
            c.hard(
                format!("{f}.channel"),
                format!("{t}.channel"),
                "channel names must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            );
        }
    }
}
