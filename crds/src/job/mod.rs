//! `TitusJob`: the Titus `JobDescriptor` as a custom resource spec, and the Titus job status.
//!
//! Every field a Titus user can set is here, under its proto name in camelCase, so the gateway
//! translates a `JobDescriptor` to a `TitusJobSpec` and back without loss. Start with
//! [`TitusJobSpec`]; the parts live in [`container`], [`ext`] (batch/service), [`disruption`] and
//! [`status`]; [`builder`] has test-friendly constructors.

pub mod builder;
pub mod container;
pub mod disruption;
pub mod ext;
pub mod status;

use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{StringMap, is_default};
use container::{BasicContainer, Container, PlatformSidecar, Volume};
use disruption::JobDisruptionBudget;
use ext::{BatchJobSpec, ServiceJobSpec};
pub use status::TitusJobStatus;

/// A Titus job: a batch or service job made of tasks (proto `JobDescriptor`).
///
/// Exactly one of `batch` or `service` must be set (proto oneof `JobSpec`). The Titus job id is
/// the object's `metadata.uid`, reported in `status.jobId`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "titus.dev",
    version = "v1alpha1",
    kind = "TitusJob",
    plural = "titusjobs",
    singular = "titusjob",
    namespaced,
    status = "TitusJobStatus",
    shortname = "tj",
    category = "titus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A Titus job (JobDescriptor): a batch or service job made of tasks.",
    scale(
        spec_replicas_path = ".spec.service.capacity.desired",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn = r#"{"name":"App","type":"string","jsonPath":".spec.applicationName"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.state"}"#,
    printcolumn = r#"{"name":"Size","type":"integer","description":"batch size","jsonPath":".spec.batch.size"}"#,
    printcolumn = r#"{"name":"Desired","type":"integer","description":"service desired capacity","jsonPath":".spec.service.capacity.desired"}"#,
    printcolumn = r#"{"name":"Running","type":"integer","description":"non-finished tasks","jsonPath":".status.replicas"}"#,
    printcolumn = r#"{"name":"Finished","type":"integer","jsonPath":".status.taskCounts.finished"}"#,
    printcolumn = r#"{"name":"Job ID","type":"string","priority":1,"jsonPath":".status.jobId"}"#,
    printcolumn = r#"{"name":"Capacity Group","type":"string","priority":1,"jsonPath":".spec.capacityGroup"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TitusJobSpec {
    /// Owning team. `teamEmail` is required in practice (Titus's implementation refuses a
    /// missing one although the proto says optional).
    #[serde(default, skip_serializing_if = "is_default")]
    pub owner: Owner,
    /// Application name. Required.
    #[serde(default)]
    pub application_name: String,
    /// Capacity group (Titus ApplicationSLA); empty becomes `DEFAULT`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub capacity_group: String,
    /// Spinnaker/frigga-style name parts.
    #[serde(default, skip_serializing_if = "is_default")]
    pub job_group_info: JobGroupInfo,
    /// Job attributes. `titus.` keys are reserved for the system; client-supplied
    /// `titus.sanitization.*`, `titus.runtimePrediction.*` and `titus.noncompliant*` keys are
    /// removed by `sanitize`. `titusParameter.*` keys carry user parameters.
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub attributes: StringMap,
    /// The main container.
    #[serde(default)]
    pub container: Container,
    /// Batch job spec (exclusive with `service`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchJobSpec>,
    /// Service job spec (exclusive with `batch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceJobSpec>,
    /// Disruption budget; `sanitize` fills the job-type default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption_budget: Option<JobDisruptionBudget>,
    /// Network mode.
    #[serde(default, skip_serializing_if = "is_default")]
    pub network_configuration: NetworkConfiguration,
    /// Extra user containers in the task's pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_containers: Vec<BasicContainer>,
    /// Volumes shared between containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Platform-managed sidecars.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platform_sidecars: Vec<PlatformSidecar>,
}

/// Proto `Owner`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    /// Team email; must contain `@`.
    #[serde(default)]
    pub team_email: String,
}

/// Proto `JobGroupInfo`: `<applicationName>-<stack>-<detail>-<sequence>`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct JobGroupInfo {
    /// Stack.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stack: String,
    /// Detail.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Sequence (e.g. `v001`); when set, the four-part name must be unique among active jobs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sequence: String,
}

/// Proto `NetworkConfiguration`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkConfiguration {
    /// Network mode; copied to pod annotation `network.netflix.com/network-mode`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub network_mode: NetworkMode,
}

/// Proto `NetworkConfiguration.NetworkMode`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum NetworkMode {
    /// Not specified.
    #[default]
    UnknownNetworkMode,
    /// IPv4 only.
    Ipv4Only,
    /// IPv6 and IPv4.
    Ipv6AndIpv4,
    /// IPv6 with IPv4 fallback.
    Ipv6AndIpv4Fallback,
    /// IPv6 only.
    Ipv6Only,
    /// Backend-managed high-scale mode.
    HighScale,
}

impl NetworkMode {
    /// The exact Titus name.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::UnknownNetworkMode => "UnknownNetworkMode",
            NetworkMode::Ipv4Only => "Ipv4Only",
            NetworkMode::Ipv6AndIpv4 => "Ipv6AndIpv4",
            NetworkMode::Ipv6AndIpv4Fallback => "Ipv6AndIpv4Fallback",
            NetworkMode::Ipv6Only => "Ipv6Only",
            NetworkMode::HighScale => "HighScale",
        }
    }
}

/// Batch or service, as Titus's `JobType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobType {
    /// A batch job.
    Batch,
    /// A service job.
    Service,
}

impl JobType {
    /// `BATCH` / `SERVICE`, as in pod annotation `v3.job.titus.netflix.com/type`.
    pub fn as_annotation_value(self) -> &'static str {
        match self {
            JobType::Batch => "BATCH",
            JobType::Service => "SERVICE",
        }
    }
}

impl TitusJobSpec {
    /// The job type; `None` when neither or both of `batch`/`service` are set (invalid).
    pub fn job_type(&self) -> Option<JobType> {
        match (&self.batch, &self.service) {
            (Some(_), None) => Some(JobType::Batch),
            (None, Some(_)) => Some(JobType::Service),
            (Some(_), Some(_)) | (None, None) => None,
        }
    }

    /// The retry policy of whichever job type is set.
    pub fn retry_policy(&self) -> Option<&ext::RetryPolicy> {
        match (&self.batch, &self.service) {
            (Some(batch), _) => batch.retry_policy.as_ref(),
            (None, Some(service)) => service.retry_policy.as_ref(),
            (None, None) => None,
        }
    }

    /// The largest number of tasks the job may run at once: batch `size` or service `max`.
    pub fn max_size(&self) -> u32 {
        match (&self.batch, &self.service) {
            (Some(batch), _) => batch.size,
            (None, Some(service)) => service.capacity.max,
            (None, None) => 0,
        }
    }

    /// The four-part job group name `<applicationName>-<stack>-<detail>-<sequence>`, which must be
    /// unique among active jobs; `None` when `sequence` is empty (no uniqueness applies).
    pub fn job_group_name(&self) -> Option<String> {
        let g = &self.job_group_info;
        (!g.sequence.is_empty()).then(|| {
            format!(
                "{}-{}-{}-{}",
                self.application_name, g.stack, g.detail, g.sequence
            )
        })
    }

    /// The capacity group name, with Titus's default for an empty value.
    pub fn effective_capacity_group(&self) -> &str {
        if self.capacity_group.is_empty() {
            crate::constants::DEFAULT_CAPACITY_GROUP
        } else {
            &self.capacity_group
        }
    }
}

impl TitusJob {
    /// The Titus job id: `status.jobId` when written, else `metadata.uid`.
    pub fn job_id(&self) -> Option<&str> {
        self.status
            .as_ref()
            .map(|s| s.job_id.as_str())
            .filter(|id| !id.is_empty())
            .or(self.metadata.uid.as_deref())
    }

    /// The current Titus job state (`Accepted` before the controller wrote a status).
    pub fn state(&self) -> status::JobState {
        self.status.as_ref().map(|s| s.state).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_group_name_needs_a_sequence() {
        let spec = TitusJobSpec::service(0, 1, 1);
        assert_eq!(spec.job_group_name(), None);
        let spec = spec.with_job_group("main", "", "v001");
        assert_eq!(
            spec.job_group_name().as_deref(),
            Some("titusapp-main--v001")
        );
        assert_eq!(spec.job_type(), Some(JobType::Service));
        assert_eq!(spec.effective_capacity_group(), "DEFAULT");
    }
}
