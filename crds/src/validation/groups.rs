//! Rules for `CapacityGroup` (Titus's ApplicationSLA messages) and `InstanceGroup`
//! (Kubernetes-style messages; Titus's agent-management validation was removed with Fenzo).

use super::patterns::is_dns_label;
use super::{Collector, ValidationErrors, java_double};
use crate::capacity_group::CapacityGroup;
use crate::instance_group::InstanceGroup;

/// Validates a capacity group: a name, `cpu`, `memoryMB`, `diskMB`, `networkMbps` and
/// `instanceCount` at least 1 (GPU may be 0).
///
/// # Errors
/// The violations, when any.
pub fn validate_capacity_group(group: &CapacityGroup) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    if group.titus_name().is_empty() {
        c.hard(
            "spec.capacityGroupName",
            "appName",
            "'appName' is a required property",
        );
    }
    let d = &group.spec.resource_dimension;
    let f = "spec.resourceDimension";
    if d.cpu.is_nan() || d.cpu < 1.0 {
        c.hard(
            format!("{f}.cpu"),
            "instanceCPU",
            "'instanceCPU' must be at least 1",
        );
    }
    if d.memory_mb < 1 {
        c.hard(
            format!("{f}.memoryMB"),
            "instanceMemoryMB",
            "'instanceMemoryMB' must be at least 1MB",
        );
    }
    if d.disk_mb < 1 {
        c.hard(
            format!("{f}.diskMB"),
            "instanceDiskMB",
            "'instanceDiskMB' must be at least 1MB",
        );
    }
    if d.network_mbps < 1 {
        c.hard(
            format!("{f}.networkMbps"),
            "instanceNetworkMbs",
            "'instanceNetworkMbs' must be at least 1Mbs",
        );
    }
    if group.spec.instance_count < 1 {
        c.hard(
            "spec.instanceCount",
            "instanceCount",
            "'instanceCount' must be at least 1",
        );
    }
    c.finish().into_result()
}

/// Validates an instance group: an instance type, `min <= desired <= max`, positive instance
/// resources, and well-formed zones, subnets and resource pool.
///
/// # Errors
/// The violations, when any.
pub fn validate_instance_group(group: &InstanceGroup) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    let s = &group.spec;
    if s.instance_type.trim().is_empty() {
        c.hard("spec.instanceType", "instanceType", "Required value");
    }
    if s.min > s.desired {
        c.hard(
            "spec.min",
            "min",
            format!("'min'({}) must be <= 'desired'({})", s.min, s.desired),
        );
    }
    if s.desired > s.max {
        c.hard(
            "spec.desired",
            "desired",
            format!("'desired'({}) must be <= 'max'({})", s.desired, s.max),
        );
    }
    if s.min > s.max {
        c.hard(
            "spec.min",
            "min",
            format!("'min'({}) must be <= 'max'({})", s.min, s.max),
        );
    }
    let r = &s.instance_resources;
    let f = "spec.instanceResources";
    if r.cpu.is_nan() || r.cpu <= 0.0 {
        c.hard(
            format!("{f}.cpu"),
            "instanceResources.cpu",
            format!(
                "Invalid value: {}: must be greater than 0",
                java_double(r.cpu)
            ),
        );
    }
    for (name, value) in [
        ("memoryMB", r.memory_mb),
        ("diskMB", r.disk_mb),
        ("networkMbps", r.network_mbps),
    ] {
        if value == 0 {
            c.hard(
                format!("{f}.{name}"),
                format!("instanceResources.{name}"),
                "Invalid value: 0: must be greater than 0",
            );
        }
    }
    for (i, zone) in s.zones.iter().enumerate() {
        if zone.trim().is_empty() {
            c.hard(format!("spec.zones[{i}]"), "zones", "Required value");
        }
    }
    for (i, subnet) in s.subnets.iter().enumerate() {
        if !subnet.starts_with("subnet-") {
            c.hard(
                format!("spec.subnets[{i}]"),
                "subnets",
                format!("Invalid value: {subnet:?}: must be a subnet id (subnet-...)"),
            );
        }
    }
    if !s.resource_pool.is_empty() && !is_dns_label(&s.resource_pool) {
        c.hard(
            "spec.resourcePool",
            "resourcePool",
            format!("Invalid value: {:?}: must be a DNS label", s.resource_pool),
        );
    }
    c.finish().into_result()
}
