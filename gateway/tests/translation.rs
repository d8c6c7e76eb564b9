//! JobDescriptor <-> TitusJobSpec: a round trip over a descriptor with every field set, through
//! memory, through the custom resource's JSON and through the API server; then thousands of
//! random descriptors and random bytes, none of which may panic the translation or admission.

mod support;

use std::collections::BTreeMap;

use prost::Message;
use prost_reflect::DynamicMessage;
use support::random::Random;
use titus_crds::{AdmissionConfig, TitusJob, TitusJobSpec, admit};
use titus_gateway::pb;
use titus_gateway::pb::job_disruption_budget as jdb;
use titus_gateway::translate::{
    TranslateError, descriptor_to_spec, job_to_proto, spec_to_descriptor,
};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn volume_mount(volume: &str) -> pb::VolumeMount {
    pb::VolumeMount {
        mount_path: "/data".into(),
        mount_propagation: pb::volume_mount::MountPropagation::Bidirectional as i32,
        volume_name: volume.into(),
        read_only: true,
        sub_path: "sub".into(),
    }
}

fn struct_of(pairs: Vec<(&str, prost_types::value::Kind)>) -> prost_types::Struct {
    prost_types::Struct {
        fields: pairs
            .into_iter()
            .map(|(k, kind)| (k.to_string(), prost_types::Value { kind: Some(kind) }))
            .collect(),
    }
}

/// A service descriptor with every field set (batch is tested by swapping the job spec).
#[allow(deprecated)] // allocateIP and signedAddressAllocation are deprecated but carried
fn full_descriptor() -> pb::JobDescriptor {
    use prost_types::value::Kind;
    pb::JobDescriptor {
        owner: Some(pb::Owner {
            team_email: "team@example.com".into(),
        }),
        application_name: "fullapp".into(),
        capacity_group: "critical-group".into(),
        job_group_info: Some(pb::JobGroupInfo {
            stack: "main".into(),
            detail: "d1".into(),
            sequence: "v007".into(),
        }),
        attributes: map(&[("team", "red"), ("titusParameter.tolerations", "x")]),
        container: Some(pb::Container {
            resources: Some(pb::ContainerResources {
                cpu: 2.5,
                gpu: 1,
                memory_mb: 4096,
                disk_mb: 20_000,
                network_mbps: 256,
                allocate_ip: true,
                efs_mounts: vec![pb::container_resources::EfsMount {
                    efs_id: "fs-1".into(),
                    mount_point: "/efs".into(),
                    mount_perm: pb::MountPerm::Wo as i32,
                    efs_relative_mount_point: "/rel".into(),
                }],
                shm_size_mb: 128,
                signed_address_allocations: vec![pb::SignedAddressAllocation {
                    address_allocation: Some(pb::AddressAllocation {
                        address_location: Some(pb::AddressLocation {
                            region: "us-east-1".into(),
                            availability_zone: "us-east-1a".into(),
                            subnet_id: "subnet-1".into(),
                        }),
                        uuid: "alloc-1".into(),
                        address: "10.0.0.1".into(),
                        ipv6_address: "::1".into(),
                    }),
                    signed_address_allocation: vec![1, 2, 3],
                    authoritative_public_key: vec![4],
                    host_public_key: vec![5, 6],
                    host_public_key_signature: vec![7],
                    message: vec![8, 0, 255],
                    message_signature: vec![9],
                }],
                static_ip_addresses: Some(
                    pb::container_resources::StaticIpAddresses::StaticIpAddressIDs(
                        pb::StaticIpAddressIDs {
                            uuids: vec!["ip-1".into(), "ip-2".into()],
                        },
                    ),
                ),
            }),
            security_profile: Some(pb::SecurityProfile {
                security_groups: vec!["sg-1".into(), "sg-2".into()],
                iam_role: "arn:aws:iam::1:role/app".into(),
                attributes: map(&[("titus.sig", "s")]),
            }),
            image: Some(pb::Image {
                name: "titus/app".into(),
                tag: "1.2".into(),
                digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                    .into(),
            }),
            attributes: map(&[("titusParameter.agent.allowCpuBursting", "true")]),
            entry_point: vec!["/bin/sh".into(), "-c".into()],
            command: vec!["echo hi".into()],
            env: map(&[("MY_VAR", "1"), ("OTHER", "two")]),
            soft_constraints: Some(pb::Constraints {
                constraints: map(&[("zoneBalance", "true")]),
                expression: "soft".into(),
            }),
            hard_constraints: Some(pb::Constraints {
                constraints: map(&[("uniqueHost", "true")]),
                expression: "hard".into(),
            }),
            experimental: Some(prost_types::Any {
                type_url: "type.googleapis.com/x.Y".into(),
                value: vec![10, 20, 30],
            }),
            volume_mounts: vec![volume_mount("shared")],
        }),
        job_spec: Some(pb::job_descriptor::JobSpec::Service(pb::ServiceJobSpec {
            capacity: Some(pb::Capacity {
                min: 1,
                max: 10,
                desired: 3,
            }),
            enabled: true,
            retry_policy: Some(pb::RetryPolicy {
                policy: Some(pb::retry_policy::Policy::ExponentialBackOff(
                    pb::retry_policy::ExponentialBackOff {
                        initial_delay_ms: 100,
                        max_delay_interval_ms: 1_000,
                        retries: 5,
                    },
                )),
            }),
            migration_policy: Some(pb::MigrationPolicy {
                policy: Some(pb::migration_policy::Policy::SelfManaged(
                    pb::migration_policy::SelfManaged {},
                )),
            }),
            service_job_processes: Some(pb::service_job_spec::ServiceJobProcesses {
                disable_increase_desired: true,
                disable_decrease_desired: true,
            }),
        })),
        disruption_budget: Some(pb::JobDisruptionBudget {
            policy: Some(jdb::Policy::AvailabilityPercentageLimit(
                jdb::AvailabilityPercentageLimit {
                    percentage_of_healthy_containers: 87.5,
                },
            )),
            rate: Some(jdb::Rate::RatePercentagePerInterval(
                jdb::RatePercentagePerInterval {
                    interval_ms: 60_000,
                    percentage_limit_per_interval: 12.5,
                },
            )),
            time_windows: vec![pb::TimeWindow {
                days: vec![pb::Day::Monday as i32, pb::Day::Sunday as i32],
                hourly_time_windows: vec![pb::time_window::HourlyTimeWindow {
                    start_hour: 8,
                    end_hour: 16,
                }],
                time_zone: "PST".into(),
            }],
            container_health_providers: vec![pb::ContainerHealthProvider {
                name: "alwaysHealthy".into(),
                attributes: map(&[("k", "v")]),
            }],
        }),
        network_configuration: Some(pb::NetworkConfiguration {
            network_mode: pb::network_configuration::NetworkMode::Ipv6AndIpv4Fallback as i32,
        }),
        extra_containers: vec![pb::BasicContainer {
            name: "sidecar".into(),
            image: Some(pb::BasicImage {
                name: "titus/side".into(),
                tag: "2".into(),
                digest: String::new(),
            }),
            entry_point: vec!["/side".into()],
            command: vec!["run".into()],
            env: map(&[("SIDE", "1")]),
            volume_mounts: vec![volume_mount("saas")],
        }],
        volumes: vec![
            pb::Volume {
                name: "shared".into(),
                volume_source: Some(pb::volume::VolumeSource::SharedContainerVolumeSource(
                    pb::SharedContainerVolumeSource {
                        source_container: "main".into(),
                        source_path: "/out".into(),
                    },
                )),
            },
            pb::Volume {
                name: "saas".into(),
                volume_source: Some(pb::volume::VolumeSource::SaaSVolumeSource(
                    pb::SaaSVolumeSource {
                        saa_s_volume_id: "vol-1".into(),
                    },
                )),
            },
        ],
        platform_sidecars: vec![pb::PlatformSidecar {
            name: "logs.netflix".into(),
            channel: "stable".into(),
            arguments: Some(struct_of(vec![
                ("n", Kind::NumberValue(3.5)),
                ("s", Kind::StringValue("x".into())),
                ("b", Kind::BoolValue(true)),
                ("z", Kind::NullValue(0)),
                (
                    "l",
                    Kind::ListValue(prost_types::ListValue {
                        values: vec![prost_types::Value {
                            kind: Some(Kind::NumberValue(1.0)),
                        }],
                    }),
                ),
                (
                    "o",
                    Kind::StructValue(struct_of(vec![("inner", Kind::BoolValue(false))])),
                ),
            ])),
        }],
    }
}

fn batch_descriptor() -> pb::JobDescriptor {
    let mut d = full_descriptor();
    d.container.as_mut().map(|c| {
        c.resources.as_mut().map(|r| {
            r.static_ip_addresses = Some(pb::container_resources::StaticIpAddresses::Pool(
                "pool-a".into(),
            ))
        })
    });
    d.job_spec = Some(pb::job_descriptor::JobSpec::Batch(pb::BatchJobSpec {
        size: 4,
        runtime_limit_sec: 600,
        retry_policy: Some(pb::RetryPolicy {
            policy: Some(pb::retry_policy::Policy::Delayed(
                pb::retry_policy::Delayed {
                    initial_delay_ms: 5,
                    delay_ms: 1_000,
                    retries: 2,
                },
            )),
        }),
        retry_on_runtime_limit: true,
    }));
    d.disruption_budget = Some(pb::JobDisruptionBudget {
        policy: Some(jdb::Policy::SelfManaged(jdb::SelfManaged {
            relocation_time_ms: 60_000,
        })),
        rate: Some(jdb::Rate::RateUnlimited(jdb::RateUnlimited {})),
        ..Default::default()
    });
    d
}

#[test]
fn a_descriptor_with_every_field_set_survives_memory_and_json_round_trips() {
    for descriptor in [full_descriptor(), batch_descriptor()] {
        let spec = descriptor_to_spec(&descriptor).unwrap();
        assert_eq!(spec_to_descriptor(&spec), descriptor);
        // Through the custom resource's JSON, as the API server stores it.
        let json = serde_json::to_string(&spec).unwrap();
        let stored: TitusJobSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(stored, spec);
        assert_eq!(spec_to_descriptor(&stored), descriptor);
        // And through the wire.
        let decoded = pb::JobDescriptor::decode(descriptor.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded, descriptor);
    }
}

#[tokio::test]
async fn a_full_descriptor_stored_by_the_api_server_comes_back_unchanged() -> anyhow::Result<()> {
    let (apiserver, client) = support::start_apiserver().await?;
    let jobs: kube::Api<TitusJob> = kube::Api::namespaced(client, "default");
    for (name, descriptor) in [
        ("full-service", full_descriptor()),
        ("full-batch", batch_descriptor()),
    ] {
        let job = TitusJob::new(name, descriptor_to_spec(&descriptor)?);
        let stored = jobs.create(&Default::default(), &job).await?;
        let read = jobs.get(name).await?;
        assert_eq!(read.spec, stored.spec);
        let rendered = job_to_proto(&read);
        assert_eq!(
            rendered.job_descriptor.as_ref(),
            Some(&descriptor),
            "{name}"
        );
        assert_eq!(rendered.id, read.metadata.uid.unwrap_or_default());
    }
    apiserver.stop().await;
    Ok(())
}

#[test]
fn unknown_enum_numbers_are_translation_errors_not_panics() {
    let mut d = full_descriptor();
    d.network_configuration = Some(pb::NetworkConfiguration { network_mode: 42 });
    assert_eq!(
        descriptor_to_spec(&d).unwrap_err(),
        TranslateError::UnknownEnum {
            field: "networkConfiguration.networkMode",
            value: 42
        }
    );
}

/// Fills the sub-messages Titus always returns, so a random input can be compared with its round
/// trip; and drops the one shape the custom resource cannot hold (an empty static IP pool name
/// is the same as none).
fn titus_shape(mut d: pb::JobDescriptor) -> pb::JobDescriptor {
    d.owner.get_or_insert_default();
    d.job_group_info.get_or_insert_default();
    d.network_configuration.get_or_insert_default();
    let c = d.container.get_or_insert_default();
    c.security_profile.get_or_insert_default();
    c.image.get_or_insert_default();
    c.soft_constraints.get_or_insert_default();
    c.hard_constraints.get_or_insert_default();
    let r = c.resources.get_or_insert_default();
    if matches!(&r.static_ip_addresses, Some(pb::container_resources::StaticIpAddresses::Pool(p)) if p.is_empty())
    {
        r.static_ip_addresses = None;
    }
    for s in &mut r.signed_address_allocations {
        s.address_allocation
            .get_or_insert_default()
            .address_location
            .get_or_insert_default();
    }
    for e in &mut d.extra_containers {
        e.image.get_or_insert_default();
    }
    if let Some(pb::job_descriptor::JobSpec::Service(s)) = &mut d.job_spec {
        s.capacity.get_or_insert_default();
        s.service_job_processes.get_or_insert_default();
    }
    for sidecar in &mut d.platform_sidecars {
        if let Some(arguments) = &mut sidecar.arguments {
            null_for_unset(arguments);
        }
    }
    d
}

/// A `google.protobuf.Value` with no kind has no JSON form; it is stored as JSON null and comes
/// back as `NullValue` (so does a null with an enum number other than `NULL_VALUE`).
fn null_for_unset(s: &mut prost_types::Struct) {
    use prost_types::value::Kind;
    fn value(v: &mut prost_types::Value) {
        match &mut v.kind {
            None | Some(Kind::NullValue(_)) => v.kind = Some(Kind::NullValue(0)),
            Some(Kind::StructValue(s)) => null_for_unset(s),
            Some(Kind::ListValue(l)) => l.values.iter_mut().for_each(value),
            Some(_) => {}
        }
    }
    s.fields.values_mut().for_each(value);
}

/// Inputs tried by the fuzz tests below (recorded in docs/titus-compatibility.md).
const RANDOM_DESCRIPTORS: u64 = 5_000;
const RANDOM_BYTE_STRINGS: u64 = 5_000;

#[test]
fn random_descriptors_round_trip_or_fail_cleanly() {
    let descriptor = titus_gateway::pb::message_descriptor("JobDescriptor").unwrap();
    let admission = AdmissionConfig::default();
    let (mut round_trips, mut refused, mut admitted) = (0, 0, 0);
    for seed in 0..RANDOM_DESCRIPTORS {
        let hostile = seed % 4 == 0;
        let mut random = Random::new(seed, hostile);
        let message: DynamicMessage = random.message(&descriptor);
        let d: pb::JobDescriptor = message.transcode_to().unwrap();
        match descriptor_to_spec(&d) {
            Ok(mut spec) => {
                assert_eq!(
                    spec_to_descriptor(&spec),
                    titus_shape(d.clone()),
                    "seed {seed}"
                );
                let json = serde_json::to_value(&spec).unwrap();
                let back: TitusJobSpec = serde_json::from_value(json).unwrap();
                assert_eq!(
                    spec_to_descriptor(&back),
                    spec_to_descriptor(&spec),
                    "seed {seed}"
                );
                round_trips += 1;
                if admit(&mut spec, &admission).is_ok() {
                    admitted += 1;
                }
            }
            Err(_) => {
                assert!(
                    hostile,
                    "seed {seed}: only hostile inputs may fail translation"
                );
                refused += 1;
            }
        }
    }
    assert_eq!(round_trips + refused, RANDOM_DESCRIPTORS);
    assert!(
        round_trips > RANDOM_DESCRIPTORS / 2,
        "{round_trips} round trips"
    );
    eprintln!(
        "{RANDOM_DESCRIPTORS} random descriptors: {round_trips} round-tripped, {refused} refused by translation, {admitted} admitted"
    );
}

#[test]
fn random_bytes_never_panic_the_decoder_or_the_translation() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let valid = full_descriptor().encode_to_vec();
    let mut decoded = 0;
    for i in 0..RANDOM_BYTE_STRINGS {
        let bytes: Vec<u8> = if i % 2 == 0 {
            let n = rng.random_range(0..256);
            (0..n).map(|_| rng.random()).collect()
        } else {
            // Mutate a valid message: flip, truncate or splice.
            let mut b = valid.clone();
            let at = rng.random_range(0..b.len());
            match rng.random_range(0..3) {
                0 => b[at] ^= 1 << rng.random_range(0..8),
                1 => b.truncate(at),
                _ => b.splice(at..at, [0x0a, 0xff, 0x01]).for_each(drop),
            }
            b
        };
        if let Ok(d) = pb::JobDescriptor::decode(bytes.as_slice()) {
            decoded += 1;
            if let Ok(spec) = descriptor_to_spec(&d) {
                let _ = spec_to_descriptor(&spec);
            }
        }
    }
    eprintln!("{RANDOM_BYTE_STRINGS} random byte strings: {decoded} decoded as JobDescriptor");
    assert!(decoded > 0);
}
