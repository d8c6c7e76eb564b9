//! `InstanceGroup`: a pool of agent machines (Titus `AgentInstanceGroup`) that the capacity
//! manager scales: instance type, zones/subnets, min/desired/max, lifecycle and tier.
//!
//! Lifecycle decides placement: `Active` groups are used, `PhasedOut` groups are used only when
//! nothing else fits, `Inactive` and `Removable` groups get no placement (idle instances of a
//! `Removable` group are terminated).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{ResourceDimension, StringMap, Tier, is_zero_u32};

/// A pool of agent instances.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "titus.dev",
    version = "v1alpha1",
    kind = "InstanceGroup",
    plural = "instancegroups",
    singular = "instancegroup",
    namespaced,
    status = "InstanceGroupStatus",
    shortname = "ig",
    category = "titus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A pool of Titus agent instances scaled by the capacity manager.",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.instanceType"}"#,
    printcolumn = r#"{"name":"Lifecycle","type":"string","jsonPath":".spec.lifecycle"}"#,
    printcolumn = r#"{"name":"Tier","type":"string","jsonPath":".spec.tier"}"#,
    printcolumn = r#"{"name":"Min","type":"integer","jsonPath":".spec.min"}"#,
    printcolumn = r#"{"name":"Desired","type":"integer","jsonPath":".spec.desired"}"#,
    printcolumn = r#"{"name":"Max","type":"integer","jsonPath":".spec.max"}"#,
    printcolumn = r#"{"name":"Current","type":"integer","jsonPath":".status.current"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct InstanceGroupSpec {
    /// EC2 instance type, e.g. `m5.large`.
    #[serde(default)]
    pub instance_type: String,
    /// Resources of one instance as offered to tasks.
    #[serde(default)]
    pub instance_resources: ResourceDimension,
    /// Availability zones instances may be launched in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// Subnet ids instances may be launched in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<String>,
    /// EC2 launch template (name or id) used to launch instances.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub launch_template: String,
    /// Minimum number of instances.
    #[serde(default)]
    pub min: u32,
    /// Desired number of instances (the capacity manager's target).
    #[serde(default)]
    pub desired: u32,
    /// Maximum number of instances.
    #[serde(default)]
    pub max: u32,
    /// Lifecycle state.
    #[serde(default)]
    pub lifecycle: InstanceGroupLifecycle,
    /// Tier served by this group.
    #[serde(default)]
    pub tier: Tier,
    /// Resource pool label value (`scaler.titus.netflix.com/resource-pool`) of its nodes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_pool: String,
    /// Free attributes.
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub attributes: StringMap,
}

/// Instance group lifecycle (Titus `InstanceGroupLifecycleState`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum InstanceGroupLifecycle {
    /// No placement, no autoscaling.
    #[default]
    Inactive,
    /// Used for placement and scaled.
    Active,
    /// Usable, but other groups are preferred.
    PhasedOut,
    /// No placement; idle instances are terminated.
    Removable,
}

impl InstanceGroupLifecycle {
    /// Whether new tasks may be placed on this group's instances.
    pub fn accepts_placement(self) -> bool {
        match self {
            InstanceGroupLifecycle::Active | InstanceGroupLifecycle::PhasedOut => true,
            InstanceGroupLifecycle::Inactive | InstanceGroupLifecycle::Removable => false,
        }
    }
}

/// `InstanceGroup` status, written by the capacity manager.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceGroupStatus {
    /// Instances currently existing (launched and not terminated).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub current: u32,
    /// Their instance ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_ids: Vec<String>,
    /// Kubernetes-style conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
