//! The container part of a job: resources, security profile, image, command, environment,
//! constraints and mounts (proto `Container` and its parts), plus the extra containers, volumes and
//! platform sidecars of the descriptor.
//!
//! JSON names are the proto field names (`memoryMB`, `staticIPAddressIDs`, `SaaSVolumeSource`), so
//! the gateway translates without loss. Proto `bytes` fields are base64 strings, as in proto3 JSON.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{StringMap, free_form_object, is_default, is_false, is_zero_f64, is_zero_u32};

/// Container descriptor (proto `Container`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// Resources for the whole task. Values below Titus's minimums are raised by `sanitize`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub resources: ContainerResources,
    /// Security groups, IAM role and security attributes.
    #[serde(default, skip_serializing_if = "is_default")]
    pub security_profile: SecurityProfile,
    /// Image reference: a name and a tag and/or a digest.
    #[serde(default, skip_serializing_if = "is_default")]
    pub image: Image,
    /// Free attributes; `titus.` keys are reserved; `titusParameter.agent.*` keys become pod
    /// annotations.
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub attributes: StringMap,
    /// Replaces the image ENTRYPOINT (Docker semantics); `[""]` clears it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_point: Vec<String>,
    /// Replaces the image CMD (Docker semantics); `[""]` clears it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Environment variables of the main container.
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub env: StringMap,
    /// Constraints the scheduler prefers to satisfy.
    #[serde(default, skip_serializing_if = "is_default")]
    pub soft_constraints: Constraints,
    /// Constraints the scheduler must satisfy.
    #[serde(default, skip_serializing_if = "is_default")]
    pub hard_constraints: Constraints,
    /// Proto `experimental` (`google.protobuf.Any`): carried, ignored like Titus does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experimental: Option<ProtoAny>,
    /// Mounts of job volumes into the main container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
}

/// Proto `ContainerResources`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerResources {
    /// CPU cores (a double in Titus); raised to at least 1.0.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub cpu: f64,
    /// GPUs, 0..16.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub gpu: u32,
    /// Memory in MiB; raised to at least 512.
    #[serde(rename = "memoryMB", default, skip_serializing_if = "is_zero_u32")]
    pub memory_mb: u32,
    /// Ephemeral disk in MiB; raised to at least 10000.
    #[serde(rename = "diskMB", default, skip_serializing_if = "is_zero_u32")]
    pub disk_mb: u32,
    /// Network bandwidth in Mbps; raised to at least 128.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub network_mbps: u32,
    /// Deprecated; ignored (an IP is always allocated).
    #[serde(rename = "allocateIP", default, skip_serializing_if = "is_false")]
    pub allocate_ip: bool,
    /// EFS mounts; sorted by mount point and given a default permission by `sanitize`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub efs_mounts: Vec<EfsMount>,
    /// Size of `/dev/shm` in MiB; 0 becomes 64; must not exceed `memoryMB`.
    #[serde(rename = "shmSizeMB", default, skip_serializing_if = "is_zero_u32")]
    pub shm_size_mb: u32,
    /// Static IP allocations from the Titus VPC service; if any, at least one per task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signed_address_allocations: Vec<SignedAddressAllocation>,
    /// Proto oneof `staticIPAddresses`: the name of a static IP pool (exclusive with
    /// `staticIPAddressIDs`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pool: String,
    /// Proto oneof `staticIPAddresses`: explicit static IP address ids (exclusive with `pool`).
    #[serde(
        rename = "staticIPAddressIDs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub static_ip_address_ids: Option<StaticIpAddressIds>,
}

/// Proto `StaticIPAddressIDs`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct StaticIpAddressIds {
    /// Allocation UUIDs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uuids: Vec<String>,
}

/// EFS mount permission (proto `MountPerm`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum MountPerm {
    /// Read only.
    #[default]
    #[serde(rename = "RO")]
    Ro,
    /// Write only.
    #[serde(rename = "WO")]
    Wo,
    /// Read and write (the default `sanitize` applies when none is given).
    #[serde(rename = "RW")]
    Rw,
}

/// Proto `ContainerResources.EfsMount`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EfsMount {
    /// EFS file system id.
    #[serde(default)]
    pub efs_id: String,
    /// Mount point in the container.
    #[serde(default)]
    pub mount_point: String,
    /// Permission; `None` becomes `RW` in `sanitize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_perm: Option<MountPerm>,
    /// Path inside the file system (default `/`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub efs_relative_mount_point: String,
}

/// Proto `AddressLocation`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressLocation {
    /// AWS region.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    /// Availability zone.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub availability_zone: String,
    /// Subnet id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subnet_id: String,
}

/// Proto `AddressAllocation`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressAllocation {
    /// Where the address lives.
    #[serde(default, skip_serializing_if = "is_default")]
    pub address_location: AddressLocation,
    /// Allocation id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uuid: String,
    /// IPv4 address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// IPv6 address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipv6_address: String,
}

/// Proto `SignedAddressAllocation`; the `bytes` fields are base64 strings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedAddressAllocation {
    /// The allocation.
    #[serde(default, skip_serializing_if = "is_default")]
    pub address_allocation: AddressAllocation,
    /// Deprecated signature (base64).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signed_address_allocation: String,
    /// Base64.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub authoritative_public_key: String,
    /// Base64.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host_public_key: String,
    /// Base64.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host_public_key_signature: String,
    /// Base64.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Base64.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message_signature: String,
}

/// Proto `SecurityProfile`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityProfile {
    /// 1..6 security group ids (`sg-...`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    /// IAM role name or ARN: non-blank, no spaces.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub iam_role: String,
    /// Security attributes; `titus.` keys are reserved.
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub attributes: StringMap,
}

/// Proto `Image`. A valid tag or a valid digest is required; both together are accepted.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Image {
    /// Repository name, e.g. `titus/busybox`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Tag, e.g. `latest`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tag: String,
    /// Digest, e.g. `sha256:...`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
}

/// Proto `Constraints`: constraint name -> value. Names are matched case-insensitively.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Constraints {
    /// Constraint name -> value (e.g. `uniqueHost: "true"`, `availabilityZone: us-east-1a`).
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub constraints: StringMap,
    /// Not supported by Titus (ignored); carried for lossless translation.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub expression: String,
}

/// Proto `google.protobuf.Any`, carried opaquely.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProtoAny {
    /// Type URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub type_url: String,
    /// Serialized message, base64.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// Mount propagation (proto `VolumeMount.MountPropagation`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum MountPropagation {
    /// No propagation (default).
    #[default]
    MountPropagationNone,
    /// Host mounts propagate into the container.
    MountPropagationHostToContainer,
    /// Both directions.
    MountPropagationBidirectional,
}

/// Proto `VolumeMount`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    /// Absolute path in the container.
    #[serde(default)]
    pub mount_path: String,
    /// Propagation mode.
    #[serde(default, skip_serializing_if = "is_default")]
    pub mount_propagation: MountPropagation,
    /// Name of a volume in `spec.volumes`.
    #[serde(default)]
    pub volume_name: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// Sub-path inside the volume.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub_path: String,
}

/// Proto `BasicImage` (image of an extra container): the same fields as [`Image`].
pub type BasicImage = Image;

/// Proto `BasicContainer`: an extra user container in the task's pod, sharing its resources.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BasicContainer {
    /// DNS-label-like name.
    #[serde(default)]
    pub name: String,
    /// Image.
    #[serde(default, skip_serializing_if = "is_default")]
    pub image: BasicImage,
    /// ENTRYPOINT override.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_point: Vec<String>,
    /// CMD override.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Environment. (Titus's gRPC converter dropped it; this project keeps it.)
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub env: StringMap,
    /// Mounts of job volumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
}

/// Proto `PlatformSidecar`: a platform-managed sidecar, exposed to the agent as pod annotations.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PlatformSidecar {
    /// Name (DNS-like, dots allowed).
    #[serde(default)]
    pub name: String,
    /// Release channel (DNS-like, dots allowed).
    #[serde(default)]
    pub channel: String,
    /// Free-form arguments (proto `google.protobuf.Struct`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub arguments: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Proto `SharedContainerVolumeSource`: a path in one container exported to the others.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SharedContainerVolumeSource {
    /// Container that owns the path.
    #[serde(default)]
    pub source_container: String,
    /// Path in that container.
    #[serde(default)]
    pub source_path: String,
}

/// Proto `SaaSVolumeSource`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct SaaSVolumeSource {
    /// SaaS (CephFS) volume id.
    #[serde(rename = "SaaSVolumeID", default)]
    pub saas_volume_id: String,
}

/// Proto `Volume`. Exactly one source must be set (proto oneof `VolumeSource`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Volume {
    /// DNS-label-like name referenced by volume mounts.
    #[serde(default)]
    pub name: String,
    /// Shared-container source.
    #[serde(
        rename = "sharedContainerVolumeSource",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub shared_container_volume_source: Option<SharedContainerVolumeSource>,
    /// SaaS source.
    #[serde(
        rename = "SaaSVolumeSource",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub saas_volume_source: Option<SaaSVolumeSource>,
}

impl Image {
    /// An image by name and tag.
    pub fn tagged(name: impl Into<String>, tag: impl Into<String>) -> Self {
        Image {
            name: name.into(),
            tag: tag.into(),
            digest: String::new(),
        }
    }
}
