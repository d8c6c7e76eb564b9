//! `TitusJobSpec` -> proto `JobDescriptor`.
//!
//! Infallible: a stored object is always shown to clients. Sub-messages Titus always returns
//! (owner, job group info, container and its parts, capacity, processes, network configuration)
//! are always present; optional ones (retry and migration policies, budget, `experimental`) only
//! when set. `scaleDownTaskIds` is this project's addition and has no proto field.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use titus_crds::job::container::{
    BasicContainer, Constraints, Container, ContainerResources, EfsMount, Image, MountPerm,
    MountPropagation, PlatformSidecar, SignedAddressAllocation, Volume, VolumeMount,
};
use titus_crds::job::disruption::{Day, JobDisruptionBudget, TimeWindow};
use titus_crds::job::ext::{BatchJobSpec, RetryPolicy, ServiceJobProcesses, ServiceJobSpec};
use titus_crds::job::{NetworkMode, TitusJobSpec};

use crate::pb;

/// Translates a `TitusJobSpec` into the Titus `JobDescriptor` clients see.
pub fn spec_to_descriptor(spec: &TitusJobSpec) -> pb::JobDescriptor {
    let job_spec = match (&spec.batch, &spec.service) {
        (Some(b), _) => Some(pb::job_descriptor::JobSpec::Batch(batch(b))),
        (None, Some(s)) => Some(pb::job_descriptor::JobSpec::Service(service(s))),
        (None, None) => None,
    };
    pb::JobDescriptor {
        owner: Some(pb::Owner {
            team_email: spec.owner.team_email.clone(),
        }),
        application_name: spec.application_name.clone(),
        capacity_group: spec.capacity_group.clone(),
        job_group_info: Some(pb::JobGroupInfo {
            stack: spec.job_group_info.stack.clone(),
            detail: spec.job_group_info.detail.clone(),
            sequence: spec.job_group_info.sequence.clone(),
        }),
        attributes: spec.attributes.clone(),
        container: Some(container(&spec.container)),
        job_spec,
        disruption_budget: spec.disruption_budget.as_ref().map(budget_to_proto),
        network_configuration: Some(pb::NetworkConfiguration {
            network_mode: network_mode(spec.network_configuration.network_mode) as i32,
        }),
        extra_containers: spec.extra_containers.iter().map(basic_container).collect(),
        volumes: spec.volumes.iter().map(volume).collect(),
        platform_sidecars: spec
            .platform_sidecars
            .iter()
            .map(platform_sidecar)
            .collect(),
    }
}

fn network_mode(mode: NetworkMode) -> pb::network_configuration::NetworkMode {
    use pb::network_configuration::NetworkMode as P;
    match mode {
        NetworkMode::UnknownNetworkMode => P::UnknownNetworkMode,
        NetworkMode::Ipv4Only => P::Ipv4Only,
        NetworkMode::Ipv6AndIpv4 => P::Ipv6AndIpv4,
        NetworkMode::Ipv6AndIpv4Fallback => P::Ipv6AndIpv4Fallback,
        NetworkMode::Ipv6Only => P::Ipv6Only,
        NetworkMode::HighScale => P::HighScale,
    }
}

fn container(c: &Container) -> pb::Container {
    pb::Container {
        resources: Some(resources(&c.resources)),
        security_profile: Some(pb::SecurityProfile {
            security_groups: c.security_profile.security_groups.clone(),
            iam_role: c.security_profile.iam_role.clone(),
            attributes: c.security_profile.attributes.clone(),
        }),
        image: Some(image(&c.image)),
        attributes: c.attributes.clone(),
        entry_point: c.entry_point.clone(),
        command: c.command.clone(),
        env: c.env.clone(),
        soft_constraints: Some(constraints(&c.soft_constraints)),
        hard_constraints: Some(constraints(&c.hard_constraints)),
        experimental: c.experimental.as_ref().map(|a| prost_types::Any {
            type_url: a.type_url.clone(),
            value: bytes(&a.value),
        }),
        volume_mounts: c.volume_mounts.iter().map(volume_mount).collect(),
    }
}

fn image(i: &Image) -> pb::Image {
    pb::Image {
        name: i.name.clone(),
        tag: i.tag.clone(),
        digest: i.digest.clone(),
    }
}

fn constraints(c: &Constraints) -> pb::Constraints {
    pb::Constraints {
        constraints: c.constraints.clone(),
        expression: c.expression.clone(),
    }
}

/// Decodes a base64 `bytes` field. Objects written through the gateway always hold valid base64;
/// one written directly with a bad value is shown with its text as the bytes rather than hidden.
fn bytes(text: &str) -> Vec<u8> {
    STANDARD.decode(text).unwrap_or_else(|_| {
        tracing::warn!(
            value = text,
            "bytes field is not valid base64; returning its text"
        );
        text.as_bytes().to_vec()
    })
}

#[allow(deprecated)] // allocateIP is deprecated on the wire but still carried
fn resources(r: &ContainerResources) -> pb::ContainerResources {
    use pb::container_resources::StaticIpAddresses;
    let static_ip_addresses = match (&r.static_ip_address_ids, r.pool.is_empty()) {
        (Some(ids), _) => Some(StaticIpAddresses::StaticIpAddressIDs(
            pb::StaticIpAddressIDs {
                uuids: ids.uuids.clone(),
            },
        )),
        (None, false) => Some(StaticIpAddresses::Pool(r.pool.clone())),
        (None, true) => None,
    };
    pb::ContainerResources {
        cpu: r.cpu,
        gpu: r.gpu,
        memory_mb: r.memory_mb,
        disk_mb: r.disk_mb,
        network_mbps: r.network_mbps,
        allocate_ip: r.allocate_ip,
        efs_mounts: r.efs_mounts.iter().map(efs_mount).collect(),
        shm_size_mb: r.shm_size_mb,
        signed_address_allocations: r
            .signed_address_allocations
            .iter()
            .map(signed_address_allocation)
            .collect(),
        static_ip_addresses,
    }
}

fn efs_mount(m: &EfsMount) -> pb::container_resources::EfsMount {
    // A missing permission means RW, as Titus's sanitizer stores it.
    let perm = match m.mount_perm.unwrap_or(MountPerm::Rw) {
        MountPerm::Ro => pb::MountPerm::Ro,
        MountPerm::Wo => pb::MountPerm::Wo,
        MountPerm::Rw => pb::MountPerm::Rw,
    };
    pb::container_resources::EfsMount {
        efs_id: m.efs_id.clone(),
        mount_point: m.mount_point.clone(),
        mount_perm: perm as i32,
        efs_relative_mount_point: m.efs_relative_mount_point.clone(),
    }
}

#[allow(deprecated)] // signedAddressAllocation is deprecated on the wire but still carried
fn signed_address_allocation(s: &SignedAddressAllocation) -> pb::SignedAddressAllocation {
    let a = &s.address_allocation;
    let l = &a.address_location;
    pb::SignedAddressAllocation {
        address_allocation: Some(pb::AddressAllocation {
            address_location: Some(pb::AddressLocation {
                region: l.region.clone(),
                availability_zone: l.availability_zone.clone(),
                subnet_id: l.subnet_id.clone(),
            }),
            uuid: a.uuid.clone(),
            address: a.address.clone(),
            ipv6_address: a.ipv6_address.clone(),
        }),
        signed_address_allocation: bytes(&s.signed_address_allocation),
        authoritative_public_key: bytes(&s.authoritative_public_key),
        host_public_key: bytes(&s.host_public_key),
        host_public_key_signature: bytes(&s.host_public_key_signature),
        message: bytes(&s.message),
        message_signature: bytes(&s.message_signature),
    }
}

fn volume_mount(m: &VolumeMount) -> pb::VolumeMount {
    use pb::volume_mount::MountPropagation as P;
    let propagation = match m.mount_propagation {
        MountPropagation::MountPropagationNone => P::None,
        MountPropagation::MountPropagationHostToContainer => P::HostToContainer,
        MountPropagation::MountPropagationBidirectional => P::Bidirectional,
    };
    pb::VolumeMount {
        mount_path: m.mount_path.clone(),
        mount_propagation: propagation as i32,
        volume_name: m.volume_name.clone(),
        read_only: m.read_only,
        sub_path: m.sub_path.clone(),
    }
}

fn basic_container(c: &BasicContainer) -> pb::BasicContainer {
    pb::BasicContainer {
        name: c.name.clone(),
        image: Some(pb::BasicImage {
            name: c.image.name.clone(),
            tag: c.image.tag.clone(),
            digest: c.image.digest.clone(),
        }),
        entry_point: c.entry_point.clone(),
        command: c.command.clone(),
        env: c.env.clone(),
        volume_mounts: c.volume_mounts.iter().map(volume_mount).collect(),
    }
}

fn volume(v: &Volume) -> pb::Volume {
    use pb::volume::VolumeSource;
    let source = match (&v.shared_container_volume_source, &v.saas_volume_source) {
        (Some(s), _) => Some(VolumeSource::SharedContainerVolumeSource(
            pb::SharedContainerVolumeSource {
                source_container: s.source_container.clone(),
                source_path: s.source_path.clone(),
            },
        )),
        (None, Some(s)) => Some(VolumeSource::SaaSVolumeSource(pb::SaaSVolumeSource {
            saa_s_volume_id: s.saas_volume_id.clone(),
        })),
        (None, None) => None,
    };
    pb::Volume {
        name: v.name.clone(),
        volume_source: source,
    }
}

fn platform_sidecar(s: &PlatformSidecar) -> pb::PlatformSidecar {
    pb::PlatformSidecar {
        name: s.name.clone(),
        channel: s.channel.clone(),
        arguments: s.arguments.as_ref().map(json_to_struct),
    }
}

fn json_to_struct(map: &serde_json::Map<String, serde_json::Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map
            .iter()
            .map(|(k, v)| (k.clone(), json_to_value(v)))
            .collect(),
    }
}

fn json_to_value(v: &serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    use serde_json::Value as J;
    let kind = match v {
        J::Null => Kind::NullValue(prost_types::NullValue::NullValue as i32),
        J::Bool(b) => Kind::BoolValue(*b),
        // Struct numbers are doubles; every JSON number has a nearest double.
        J::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        J::String(s) => Kind::StringValue(s.clone()),
        J::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        J::Object(map) => Kind::StructValue(json_to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

fn retry_policy(p: &RetryPolicy) -> pb::RetryPolicy {
    use pb::retry_policy::{Delayed, ExponentialBackOff, Immediate, Policy};
    // Proto field order decides when several members are (invalidly) set.
    let policy = if let Some(i) = p.immediate {
        Some(Policy::Immediate(Immediate { retries: i.retries }))
    } else if let Some(d) = p.delayed {
        Some(Policy::Delayed(Delayed {
            initial_delay_ms: d.initial_delay_ms,
            delay_ms: d.delay_ms,
            retries: d.retries,
        }))
    } else {
        p.exponential_back_off.map(|e| {
            Policy::ExponentialBackOff(ExponentialBackOff {
                initial_delay_ms: e.initial_delay_ms,
                max_delay_interval_ms: e.max_delay_interval_ms,
                retries: e.retries,
            })
        })
    };
    pb::RetryPolicy { policy }
}

fn batch(b: &BatchJobSpec) -> pb::BatchJobSpec {
    pb::BatchJobSpec {
        size: b.size,
        runtime_limit_sec: b.runtime_limit_sec,
        retry_policy: b.retry_policy.as_ref().map(retry_policy),
        retry_on_runtime_limit: b.retry_on_runtime_limit,
    }
}

fn service(s: &ServiceJobSpec) -> pb::ServiceJobSpec {
    use pb::migration_policy::{Policy, SelfManaged, SystemDefault};
    pb::ServiceJobSpec {
        capacity: Some(pb::Capacity {
            min: s.capacity.min,
            max: s.capacity.max,
            desired: s.capacity.desired,
        }),
        enabled: s.enabled,
        retry_policy: s.retry_policy.as_ref().map(retry_policy),
        migration_policy: s.migration_policy.map(|m| pb::MigrationPolicy {
            policy: if m.system_default.is_some() {
                Some(Policy::SystemDefault(SystemDefault {}))
            } else if m.self_managed.is_some() {
                Some(Policy::SelfManaged(SelfManaged {}))
            } else {
                None
            },
        }),
        service_job_processes: Some(processes_to_proto(&s.service_job_processes)),
    }
}

/// The custom resource's `ServiceJobProcesses` -> proto.
pub fn processes_to_proto(p: &ServiceJobProcesses) -> pb::service_job_spec::ServiceJobProcesses {
    pb::service_job_spec::ServiceJobProcesses {
        disable_increase_desired: p.disable_increase_desired,
        disable_decrease_desired: p.disable_decrease_desired,
    }
}

/// The custom resource's `JobDisruptionBudget` -> proto.
pub fn budget_to_proto(b: &JobDisruptionBudget) -> pb::JobDisruptionBudget {
    use pb::job_disruption_budget as jdb;
    let policy = if let Some(p) = b.self_managed {
        Some(jdb::Policy::SelfManaged(jdb::SelfManaged {
            relocation_time_ms: p.relocation_time_ms,
        }))
    } else if let Some(p) = b.availability_percentage_limit {
        Some(jdb::Policy::AvailabilityPercentageLimit(
            jdb::AvailabilityPercentageLimit {
                percentage_of_healthy_containers: p.percentage_of_healthy_containers,
            },
        ))
    } else if let Some(p) = b.unhealthy_tasks_limit {
        Some(jdb::Policy::UnhealthyTasksLimit(jdb::UnhealthyTasksLimit {
            limit_of_unhealthy_containers: p.limit_of_unhealthy_containers,
        }))
    } else {
        b.relocation_limit
            .map(|p| jdb::Policy::RelocationLimit(jdb::RelocationLimit { limit: p.limit }))
    };
    let rate = if b.rate_unlimited.is_some() {
        Some(jdb::Rate::RateUnlimited(jdb::RateUnlimited {}))
    } else if let Some(r) = b.rate_percentage_per_hour {
        Some(jdb::Rate::RatePercentagePerHour(
            jdb::RatePercentagePerHour {
                max_percentage_of_containers_relocated_in_hour: r
                    .max_percentage_of_containers_relocated_in_hour,
            },
        ))
    } else if let Some(r) = b.rate_per_interval {
        Some(jdb::Rate::RatePerInterval(jdb::RatePerInterval {
            interval_ms: r.interval_ms,
            limit_per_interval: r.limit_per_interval,
        }))
    } else {
        b.rate_percentage_per_interval.map(|r| {
            jdb::Rate::RatePercentagePerInterval(jdb::RatePercentagePerInterval {
                interval_ms: r.interval_ms,
                percentage_limit_per_interval: r.percentage_limit_per_interval,
            })
        })
    };
    pb::JobDisruptionBudget {
        policy,
        rate,
        time_windows: b.time_windows.iter().map(time_window).collect(),
        container_health_providers: b
            .container_health_providers
            .iter()
            .map(|p| pb::ContainerHealthProvider {
                name: p.name.clone(),
                attributes: p.attributes.clone(),
            })
            .collect(),
    }
}

fn time_window(w: &TimeWindow) -> pb::TimeWindow {
    pb::TimeWindow {
        days: w.days.iter().map(|d| day(*d) as i32).collect(),
        hourly_time_windows: w
            .hourly_time_windows
            .iter()
            .map(|h| pb::time_window::HourlyTimeWindow {
                start_hour: h.start_hour,
                end_hour: h.end_hour,
            })
            .collect(),
        time_zone: w.time_zone.clone(),
    }
}

fn day(d: Day) -> pb::Day {
    match d {
        Day::Monday => pb::Day::Monday,
        Day::Tuesday => pb::Day::Tuesday,
        Day::Wednesday => pb::Day::Wednesday,
        Day::Thursday => pb::Day::Thursday,
        Day::Friday => pb::Day::Friday,
        Day::Saturday => pb::Day::Saturday,
        Day::Sunday => pb::Day::Sunday,
    }
}
