//! `CapacityGroup`: Titus's ApplicationSLA, a tier plus a resource guarantee (per-instance
//! dimensions × instance count) that orders and limits scheduling.
//!
//! Jobs name their capacity group in `spec.capacityGroup` (empty = `DEFAULT`). Titus names such as
//! `DEFAULT` or `my_app` are not valid Kubernetes object names, so the Titus name is
//! `spec.capacityGroupName` when set, else `metadata.name`, and jobs match it case-insensitively
//! (see [`CapacityGroup::titus_name`] and [`capacity_group_matches`]). This is the shape of final
//! Titus's own `capacitygroups.config.com.netflix.titus` CRD.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{ResourceDimension, Tier, is_zero_u32};

/// A Titus capacity group (ApplicationSLA).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "titus.dev",
    version = "v1alpha1",
    kind = "CapacityGroup",
    plural = "capacitygroups",
    singular = "capacitygroup",
    namespaced,
    status = "CapacityGroupStatus",
    shortname = "cg",
    category = "titus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A Titus capacity group (ApplicationSLA): tier and resource guarantee.",
    printcolumn = r#"{"name":"Tier","type":"string","jsonPath":".spec.tier"}"#,
    printcolumn = r#"{"name":"Instances","type":"integer","jsonPath":".spec.instanceCount"}"#,
    printcolumn = r#"{"name":"CPU","type":"number","jsonPath":".spec.resourceDimension.cpu"}"#,
    printcolumn = r#"{"name":"Memory MB","type":"integer","jsonPath":".spec.resourceDimension.memoryMB"}"#,
    printcolumn = r#"{"name":"Pool","type":"string","priority":1,"jsonPath":".spec.resourcePool"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct CapacityGroupSpec {
    /// The Titus name jobs refer to (case-insensitive), e.g. `DEFAULT`; empty = `metadata.name`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub capacity_group_name: String,
    /// Scheduling tier (default `Flex`).
    #[serde(default)]
    pub tier: Tier,
    /// Resources of one instance of the guarantee (Titus `instanceCPU`, `instanceMemoryMB`, ...).
    #[serde(default)]
    pub resource_dimension: ResourceDimension,
    /// Number of instances guaranteed.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub instance_count: u32,
    /// Resource pool (`reserved` for Critical / `elastic` for Flex when empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_pool: String,
    /// Scheduler that places this group's pods; empty = `titus-scheduler`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scheduler_name: String,
}

/// `CapacityGroup` status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapacityGroupStatus {
    /// Resources currently used by this group's running tasks.
    #[serde(default)]
    pub used: ResourceDimension,
    /// Number of this group's tasks holding resources.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub running_tasks: u32,
    /// Kubernetes-style conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl CapacityGroupSpec {
    /// The guarantee: per-instance dimensions multiplied by `instanceCount`.
    pub fn guarantee(&self) -> ResourceDimension {
        let n = self.instance_count;
        let d = &self.resource_dimension;
        ResourceDimension {
            cpu: d.cpu * f64::from(n),
            gpu: d.gpu.saturating_mul(n),
            memory_mb: d.memory_mb.saturating_mul(n),
            disk_mb: d.disk_mb.saturating_mul(n),
            network_mbps: d.network_mbps.saturating_mul(n),
        }
    }

    /// The resource pool with Titus's tier default (`reserved` / `elastic`).
    pub fn effective_resource_pool(&self) -> &str {
        if !self.resource_pool.is_empty() {
            return &self.resource_pool;
        }
        match self.tier {
            Tier::Critical => "reserved",
            Tier::Flex => "elastic",
        }
    }
}

impl CapacityGroup {
    /// The Titus name: `spec.capacityGroupName`, else `metadata.name`.
    pub fn titus_name(&self) -> &str {
        if self.spec.capacity_group_name.is_empty() {
            self.metadata.name.as_deref().unwrap_or_default()
        } else {
            &self.spec.capacity_group_name
        }
    }
}

/// Whether a job's `capacityGroup` value (empty = `DEFAULT`) names this capacity group.
pub fn capacity_group_matches(group: &CapacityGroup, job_capacity_group: &str) -> bool {
    let wanted = if job_capacity_group.is_empty() {
        crate::constants::DEFAULT_CAPACITY_GROUP
    } else {
        job_capacity_group
    };
    group.titus_name().eq_ignore_ascii_case(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_capacity_group_matches_an_empty_or_differently_cased_job_value() {
        let group = CapacityGroup::new("default", CapacityGroupSpec::default());
        assert!(capacity_group_matches(&group, ""));
        assert!(capacity_group_matches(&group, "DEFAULT"));
        assert!(!capacity_group_matches(&group, "other"));
    }

    #[test]
    fn guarantee_multiplies_instance_dimensions() {
        let spec = CapacityGroupSpec {
            instance_count: 3,
            resource_dimension: ResourceDimension {
                cpu: 1.5,
                memory_mb: 1024,
                ..ResourceDimension::default()
            },
            ..CapacityGroupSpec::default()
        };
        assert_eq!(spec.guarantee().cpu, 4.5);
        assert_eq!(spec.guarantee().memory_mb, 3072);
        assert_eq!(spec.effective_resource_pool(), "elastic");
    }
}
