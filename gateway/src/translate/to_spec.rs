//! Proto `JobDescriptor` -> `TitusJobSpec`.
//!
//! The only failures are enum numbers this gateway does not know and non-finite numbers (JSON,
//! and so the stored object, cannot hold them); every other input maps to a spec, which the shared validator
//! then judges.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use titus_crds::common::Empty;
use titus_crds::job::container::{
    AddressAllocation, AddressLocation, BasicContainer, Constraints, Container, ContainerResources,
    EfsMount, Image, MountPerm, MountPropagation, PlatformSidecar, ProtoAny, SaaSVolumeSource,
    SecurityProfile, SharedContainerVolumeSource, SignedAddressAllocation, StaticIpAddressIds,
    Volume, VolumeMount,
};
use titus_crds::job::disruption::{
    AvailabilityPercentageLimitPolicy, ContainerHealthProvider, Day, HourlyTimeWindow,
    JobDisruptionBudget, RatePerInterval, RatePercentagePerHour, RatePercentagePerInterval,
    RelocationLimitPolicy, SelfManagedPolicy, TimeWindow, UnhealthyTasksLimitPolicy,
};
use titus_crds::job::ext::{
    BatchJobSpec, Capacity, DelayedRetry, ExponentialBackOffRetry, ImmediateRetry, MigrationPolicy,
    RetryPolicy, ServiceJobProcesses, ServiceJobSpec,
};
use titus_crds::job::{JobGroupInfo, NetworkConfiguration, NetworkMode, Owner, TitusJobSpec};

use super::TranslateError;
use crate::pb;

/// Translates a Titus `JobDescriptor` into a `TitusJobSpec` (not yet sanitized or validated).
///
/// # Errors
/// [`TranslateError`] for unknown enum numbers and non-finite sidecar argument numbers.
pub fn descriptor_to_spec(d: &pb::JobDescriptor) -> Result<TitusJobSpec, TranslateError> {
    let (batch, service) = match &d.job_spec {
        Some(pb::job_descriptor::JobSpec::Batch(b)) => (Some(batch(b)), None),
        Some(pb::job_descriptor::JobSpec::Service(s)) => (None, Some(service(s))),
        None => (None, None),
    };
    Ok(TitusJobSpec {
        owner: Owner {
            team_email: d
                .owner
                .as_ref()
                .map(|o| o.team_email.clone())
                .unwrap_or_default(),
        },
        application_name: d.application_name.clone(),
        capacity_group: d.capacity_group.clone(),
        job_group_info: d
            .job_group_info
            .as_ref()
            .map(|g| JobGroupInfo {
                stack: g.stack.clone(),
                detail: g.detail.clone(),
                sequence: g.sequence.clone(),
            })
            .unwrap_or_default(),
        attributes: d.attributes.clone(),
        container: d
            .container
            .as_ref()
            .map(container)
            .transpose()?
            .unwrap_or_default(),
        batch,
        service,
        disruption_budget: d
            .disruption_budget
            .as_ref()
            .map(budget_to_spec)
            .transpose()?,
        network_configuration: NetworkConfiguration {
            network_mode: d
                .network_configuration
                .as_ref()
                .map(|n| network_mode(n.network_mode))
                .transpose()?
                .unwrap_or_default(),
        },
        extra_containers: d
            .extra_containers
            .iter()
            .map(basic_container)
            .collect::<Result<_, _>>()?,
        volumes: d.volumes.iter().map(volume).collect(),
        platform_sidecars: d
            .platform_sidecars
            .iter()
            .map(platform_sidecar)
            .collect::<Result<_, _>>()?,
    })
}

/// A double the custom resource can store: JSON has no NaN or infinity.
fn finite(field: &'static str, value: f64) -> Result<f64, TranslateError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(TranslateError::NonFiniteNumber { field, value })
    }
}

fn network_mode(value: i32) -> Result<NetworkMode, TranslateError> {
    use pb::network_configuration::NetworkMode as P;
    match P::try_from(value) {
        Ok(P::UnknownNetworkMode) => Ok(NetworkMode::UnknownNetworkMode),
        Ok(P::Ipv4Only) => Ok(NetworkMode::Ipv4Only),
        Ok(P::Ipv6AndIpv4) => Ok(NetworkMode::Ipv6AndIpv4),
        Ok(P::Ipv6AndIpv4Fallback) => Ok(NetworkMode::Ipv6AndIpv4Fallback),
        Ok(P::Ipv6Only) => Ok(NetworkMode::Ipv6Only),
        Ok(P::HighScale) => Ok(NetworkMode::HighScale),
        Err(_) => Err(TranslateError::UnknownEnum {
            field: "networkConfiguration.networkMode",
            value,
        }),
    }
}

fn container(c: &pb::Container) -> Result<Container, TranslateError> {
    Ok(Container {
        resources: c
            .resources
            .as_ref()
            .map(resources)
            .transpose()?
            .unwrap_or_default(),
        security_profile: c
            .security_profile
            .as_ref()
            .map(|s| SecurityProfile {
                security_groups: s.security_groups.clone(),
                iam_role: s.iam_role.clone(),
                attributes: s.attributes.clone(),
            })
            .unwrap_or_default(),
        image: c.image.as_ref().map(image).unwrap_or_default(),
        attributes: c.attributes.clone(),
        entry_point: c.entry_point.clone(),
        command: c.command.clone(),
        env: c.env.clone(),
        soft_constraints: c
            .soft_constraints
            .as_ref()
            .map(constraints)
            .unwrap_or_default(),
        hard_constraints: c
            .hard_constraints
            .as_ref()
            .map(constraints)
            .unwrap_or_default(),
        experimental: c.experimental.as_ref().map(|a| ProtoAny {
            type_url: a.type_url.clone(),
            value: STANDARD.encode(&a.value),
        }),
        volume_mounts: c
            .volume_mounts
            .iter()
            .map(volume_mount)
            .collect::<Result<_, _>>()?,
    })
}

fn image(i: &pb::Image) -> Image {
    Image {
        name: i.name.clone(),
        tag: i.tag.clone(),
        digest: i.digest.clone(),
    }
}

fn constraints(c: &pb::Constraints) -> Constraints {
    Constraints {
        constraints: c.constraints.clone(),
        expression: c.expression.clone(),
    }
}

#[allow(deprecated)] // allocateIP is deprecated on the wire but still carried
fn resources(r: &pb::ContainerResources) -> Result<ContainerResources, TranslateError> {
    use pb::container_resources::StaticIpAddresses;
    let (pool, static_ip_address_ids) = match &r.static_ip_addresses {
        Some(StaticIpAddresses::Pool(pool)) => (pool.clone(), None),
        Some(StaticIpAddresses::StaticIpAddressIDs(ids)) => (
            String::new(),
            Some(StaticIpAddressIds {
                uuids: ids.uuids.clone(),
            }),
        ),
        None => (String::new(), None),
    };
    Ok(ContainerResources {
        cpu: finite("container.resources.cpu", r.cpu)?,
        gpu: r.gpu,
        memory_mb: r.memory_mb,
        disk_mb: r.disk_mb,
        network_mbps: r.network_mbps,
        allocate_ip: r.allocate_ip,
        efs_mounts: r
            .efs_mounts
            .iter()
            .map(efs_mount)
            .collect::<Result<_, _>>()?,
        shm_size_mb: r.shm_size_mb,
        signed_address_allocations: r
            .signed_address_allocations
            .iter()
            .map(signed_address_allocation)
            .collect(),
        pool,
        static_ip_address_ids,
    })
}

fn efs_mount(m: &pb::container_resources::EfsMount) -> Result<EfsMount, TranslateError> {
    let perm = match pb::MountPerm::try_from(m.mount_perm) {
        Ok(pb::MountPerm::Ro) => MountPerm::Ro,
        Ok(pb::MountPerm::Wo) => MountPerm::Wo,
        Ok(pb::MountPerm::Rw) => MountPerm::Rw,
        Err(_) => {
            return Err(TranslateError::UnknownEnum {
                field: "container.resources.efsMounts.mountPerm",
                value: m.mount_perm,
            });
        }
    };
    Ok(EfsMount {
        efs_id: m.efs_id.clone(),
        mount_point: m.mount_point.clone(),
        mount_perm: Some(perm),
        efs_relative_mount_point: m.efs_relative_mount_point.clone(),
    })
}

#[allow(deprecated)] // signedAddressAllocation is deprecated on the wire but still carried
fn signed_address_allocation(s: &pb::SignedAddressAllocation) -> SignedAddressAllocation {
    let allocation = s.address_allocation.clone().unwrap_or_default();
    let location = allocation.address_location.unwrap_or_default();
    SignedAddressAllocation {
        address_allocation: AddressAllocation {
            address_location: AddressLocation {
                region: location.region,
                availability_zone: location.availability_zone,
                subnet_id: location.subnet_id,
            },
            uuid: allocation.uuid,
            address: allocation.address,
            ipv6_address: allocation.ipv6_address,
        },
        signed_address_allocation: STANDARD.encode(&s.signed_address_allocation),
        authoritative_public_key: STANDARD.encode(&s.authoritative_public_key),
        host_public_key: STANDARD.encode(&s.host_public_key),
        host_public_key_signature: STANDARD.encode(&s.host_public_key_signature),
        message: STANDARD.encode(&s.message),
        message_signature: STANDARD.encode(&s.message_signature),
    }
}

fn volume_mount(m: &pb::VolumeMount) -> Result<VolumeMount, TranslateError> {
    use pb::volume_mount::MountPropagation as P;
    let mount_propagation = match P::try_from(m.mount_propagation) {
        Ok(P::None) => MountPropagation::MountPropagationNone,
        Ok(P::HostToContainer) => MountPropagation::MountPropagationHostToContainer,
        Ok(P::Bidirectional) => MountPropagation::MountPropagationBidirectional,
        Err(_) => {
            return Err(TranslateError::UnknownEnum {
                field: "volumeMounts.mountPropagation",
                value: m.mount_propagation,
            });
        }
    };
    Ok(VolumeMount {
        mount_path: m.mount_path.clone(),
        mount_propagation,
        volume_name: m.volume_name.clone(),
        read_only: m.read_only,
        sub_path: m.sub_path.clone(),
    })
}

fn basic_container(c: &pb::BasicContainer) -> Result<BasicContainer, TranslateError> {
    Ok(BasicContainer {
        name: c.name.clone(),
        image: c
            .image
            .as_ref()
            .map(|i| Image {
                name: i.name.clone(),
                tag: i.tag.clone(),
                digest: i.digest.clone(),
            })
            .unwrap_or_default(),
        entry_point: c.entry_point.clone(),
        command: c.command.clone(),
        env: c.env.clone(),
        volume_mounts: c
            .volume_mounts
            .iter()
            .map(volume_mount)
            .collect::<Result<_, _>>()?,
    })
}

fn volume(v: &pb::Volume) -> Volume {
    use pb::volume::VolumeSource;
    let (shared, saas) = match &v.volume_source {
        Some(VolumeSource::SharedContainerVolumeSource(s)) => (
            Some(SharedContainerVolumeSource {
                source_container: s.source_container.clone(),
                source_path: s.source_path.clone(),
            }),
            None,
        ),
        Some(VolumeSource::SaaSVolumeSource(s)) => (
            None,
            Some(SaaSVolumeSource {
                saas_volume_id: s.saa_s_volume_id.clone(),
            }),
        ),
        None => (None, None),
    };
    Volume {
        name: v.name.clone(),
        shared_container_volume_source: shared,
        saas_volume_source: saas,
    }
}

fn platform_sidecar(s: &pb::PlatformSidecar) -> Result<PlatformSidecar, TranslateError> {
    Ok(PlatformSidecar {
        name: s.name.clone(),
        channel: s.channel.clone(),
        arguments: s.arguments.as_ref().map(struct_to_json).transpose()?,
    })
}

fn struct_to_json(
    s: &prost_types::Struct,
) -> Result<serde_json::Map<String, serde_json::Value>, TranslateError> {
    s.fields
        .iter()
        .map(|(k, v)| Ok((k.clone(), value_to_json(v)?)))
        .collect()
}

fn value_to_json(v: &prost_types::Value) -> Result<serde_json::Value, TranslateError> {
    use prost_types::value::Kind;
    use serde_json::Value as J;
    Ok(match &v.kind {
        None | Some(Kind::NullValue(_)) => J::Null,
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(*n).map(J::Number).ok_or(
            TranslateError::NonFiniteNumber {
                field: "platformSidecars.arguments",
                value: *n,
            },
        )?,
        Some(Kind::StringValue(s)) => J::String(s.clone()),
        Some(Kind::BoolValue(b)) => J::Bool(*b),
        Some(Kind::StructValue(s)) => J::Object(struct_to_json(s)?),
        Some(Kind::ListValue(l)) => J::Array(
            l.values
                .iter()
                .map(value_to_json)
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn retry_policy(p: &pb::RetryPolicy) -> RetryPolicy {
    use pb::retry_policy::Policy;
    let mut out = RetryPolicy::default();
    match &p.policy {
        Some(Policy::Immediate(i)) => {
            out.immediate = Some(ImmediateRetry { retries: i.retries });
        }
        Some(Policy::Delayed(d)) => {
            out.delayed = Some(DelayedRetry {
                initial_delay_ms: d.initial_delay_ms,
                delay_ms: d.delay_ms,
                retries: d.retries,
            });
        }
        Some(Policy::ExponentialBackOff(e)) => {
            out.exponential_back_off = Some(ExponentialBackOffRetry {
                initial_delay_ms: e.initial_delay_ms,
                max_delay_interval_ms: e.max_delay_interval_ms,
                retries: e.retries,
            });
        }
        None => {}
    }
    out
}

fn batch(b: &pb::BatchJobSpec) -> BatchJobSpec {
    BatchJobSpec {
        size: b.size,
        runtime_limit_sec: b.runtime_limit_sec,
        retry_policy: b.retry_policy.as_ref().map(retry_policy),
        retry_on_runtime_limit: b.retry_on_runtime_limit,
    }
}

fn service(s: &pb::ServiceJobSpec) -> ServiceJobSpec {
    use pb::migration_policy::Policy;
    ServiceJobSpec {
        capacity: s
            .capacity
            .map(|c| Capacity {
                min: c.min,
                desired: c.desired,
                max: c.max,
            })
            .unwrap_or_default(),
        enabled: s.enabled,
        retry_policy: s.retry_policy.as_ref().map(retry_policy),
        migration_policy: s.migration_policy.as_ref().map(|m| match m.policy {
            Some(Policy::SystemDefault(_)) => MigrationPolicy::system_default(),
            Some(Policy::SelfManaged(_)) => MigrationPolicy::self_managed(),
            None => MigrationPolicy::default(),
        }),
        service_job_processes: s
            .service_job_processes
            .as_ref()
            .map(processes_to_spec)
            .unwrap_or_default(),
        scale_down_task_ids: Vec::new(),
    }
}

/// Proto `ServiceJobProcesses` -> the custom resource's.
pub fn processes_to_spec(p: &pb::service_job_spec::ServiceJobProcesses) -> ServiceJobProcesses {
    ServiceJobProcesses {
        disable_increase_desired: p.disable_increase_desired,
        disable_decrease_desired: p.disable_decrease_desired,
    }
}

/// Proto `JobDisruptionBudget` -> the custom resource's.
///
/// # Errors
/// [`TranslateError::UnknownEnum`] for an unknown day of week in a time window.
pub fn budget_to_spec(b: &pb::JobDisruptionBudget) -> Result<JobDisruptionBudget, TranslateError> {
    use pb::job_disruption_budget::{Policy, Rate};
    let mut out = JobDisruptionBudget::default();
    match &b.policy {
        Some(Policy::SelfManaged(p)) => {
            out.self_managed = Some(SelfManagedPolicy {
                relocation_time_ms: p.relocation_time_ms,
            });
        }
        Some(Policy::AvailabilityPercentageLimit(p)) => {
            out.availability_percentage_limit = Some(AvailabilityPercentageLimitPolicy {
                percentage_of_healthy_containers: finite(
                    "disruptionBudget.availabilityPercentageLimit.percentageOfHealthyContainers",
                    p.percentage_of_healthy_containers,
                )?,
            });
        }
        Some(Policy::UnhealthyTasksLimit(p)) => {
            out.unhealthy_tasks_limit = Some(UnhealthyTasksLimitPolicy {
                limit_of_unhealthy_containers: p.limit_of_unhealthy_containers,
            });
        }
        Some(Policy::RelocationLimit(p)) => {
            out.relocation_limit = Some(RelocationLimitPolicy { limit: p.limit });
        }
        None => {}
    }
    match &b.rate {
        Some(Rate::RateUnlimited(_)) => out.rate_unlimited = Some(Empty {}),
        Some(Rate::RatePercentagePerHour(r)) => {
            out.rate_percentage_per_hour = Some(RatePercentagePerHour {
                max_percentage_of_containers_relocated_in_hour: finite(
                    "disruptionBudget.ratePercentagePerHour.maxPercentageOfContainersRelocatedInHour",
                    r.max_percentage_of_containers_relocated_in_hour,
                )?,
            });
        }
        Some(Rate::RatePerInterval(r)) => {
            out.rate_per_interval = Some(RatePerInterval {
                interval_ms: r.interval_ms,
                limit_per_interval: r.limit_per_interval,
            });
        }
        Some(Rate::RatePercentagePerInterval(r)) => {
            out.rate_percentage_per_interval = Some(RatePercentagePerInterval {
                interval_ms: r.interval_ms,
                percentage_limit_per_interval: finite(
                    "disruptionBudget.ratePercentagePerInterval.percentageLimitPerInterval",
                    r.percentage_limit_per_interval,
                )?,
            });
        }
        None => {}
    }
    out.time_windows = b
        .time_windows
        .iter()
        .map(time_window)
        .collect::<Result<_, _>>()?;
    out.container_health_providers = b
        .container_health_providers
        .iter()
        .map(|p| ContainerHealthProvider {
            name: p.name.clone(),
            attributes: p.attributes.clone(),
        })
        .collect();
    Ok(out)
}

fn time_window(w: &pb::TimeWindow) -> Result<TimeWindow, TranslateError> {
    Ok(TimeWindow {
        days: w.days.iter().map(|d| day(*d)).collect::<Result<_, _>>()?,
        hourly_time_windows: w
            .hourly_time_windows
            .iter()
            .map(|h| HourlyTimeWindow {
                start_hour: h.start_hour,
                end_hour: h.end_hour,
            })
            .collect(),
        time_zone: w.time_zone.clone(),
    })
}

fn day(value: i32) -> Result<Day, TranslateError> {
    match pb::Day::try_from(value) {
        Ok(pb::Day::Monday) => Ok(Day::Monday),
        Ok(pb::Day::Tuesday) => Ok(Day::Tuesday),
        Ok(pb::Day::Wednesday) => Ok(Day::Wednesday),
        Ok(pb::Day::Thursday) => Ok(Day::Thursday),
        Ok(pb::Day::Friday) => Ok(Day::Friday),
        Ok(pb::Day::Saturday) => Ok(Day::Saturday),
        Ok(pb::Day::Sunday) => Ok(Day::Sunday),
        Err(_) => Err(TranslateError::UnknownEnum {
            field: "disruptionBudget.timeWindows.days",
            value,
        }),
    }
}
