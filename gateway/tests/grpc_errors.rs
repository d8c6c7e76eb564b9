//! Bad requests get Titus's status codes and useful messages: one case per validation rule,
//! unknown and malformed ids on every RPC that takes one, malformed protobuf; and thousands of
//! random requests never crash a handler.

mod support;

use prost::Message;
use prost_reflect::{DynamicMessage, ReflectMessage};
use support::random::Random;
use support::{Env, batch_descriptor, request, service_descriptor};
use titus_gateway::error::{BAD_REQUEST_TYPE_URL, BadRequest, RpcStatus};
use titus_gateway::pb;
use tonic::Code;

type Mutation = fn(&mut pb::JobDescriptor);

fn container(d: &mut pb::JobDescriptor) -> &mut pb::Container {
    d.container.get_or_insert_default()
}

fn resources(d: &mut pb::JobDescriptor) -> &mut pb::ContainerResources {
    container(d).resources.get_or_insert_default()
}

fn batch(d: &mut pb::JobDescriptor) -> &mut pb::BatchJobSpec {
    match &mut d.job_spec {
        Some(pb::job_descriptor::JobSpec::Batch(b)) => b,
        _ => unreachable!("the base descriptor is a batch job"),
    }
}

/// (what, mutation of a valid batch descriptor, Titus field, message fragment)
fn validation_cases() -> Vec<(&'static str, Mutation, &'static str, &'static str)> {
    vec![
        (
            "owner email",
            |d| d.owner = None,
            "owner.teamEmail",
            "Invalid email address",
        ),
        (
            "application name",
            |d| d.application_name.clear(),
            "applicationName",
            "Empty string not allowed",
        ),
        (
            "cpu",
            |d| resources(d).cpu = 97.0,
            "container.containerResources.cpu",
            "Above maximum allowed value 96.0",
        ),
        (
            "gpu",
            |d| resources(d).gpu = 17,
            "container.containerResources.gpu",
            "Above maximum allowed value 16",
        ),
        (
            "memory",
            |d| resources(d).memory_mb = 1_152_001,
            "container.containerResources.memoryMB",
            "Above maximum allowed value",
        ),
        (
            "disk",
            |d| resources(d).disk_mb = 1_550_001,
            "container.containerResources.diskMB",
            "Above maximum allowed value",
        ),
        (
            "network",
            |d| resources(d).network_mbps = 400_001,
            "container.containerResources.networkMbps",
            "Above maximum allowed value",
        ),
        (
            "shm",
            |d| resources(d).shm_size_mb = 4_096,
            "container.containerResources",
            "must be <= 'memoryMB'",
        ),
        (
            "batch size 0",
            |d| batch(d).size = 0,
            "extensions.size",
            "Batch job must have at least one task",
        ),
        (
            "batch size 1001",
            |d| batch(d).size = 1_001,
            "extensions.size",
            "Batch job too big 1001 > 1000",
        ),
        (
            "runtime limit 0",
            |d| batch(d).runtime_limit_sec = 0,
            "extensions.runtimeLimitMs",
            "Runtime limit too low",
        ),
        (
            "runtime limit 11 days",
            |d| batch(d).runtime_limit_sec = 950_400,
            "extensions.runtimeLimitMs",
            "Runtime limit too high",
        ),
        (
            "retry policy",
            |d| batch(d).retry_policy = None,
            "extensions.retryPolicy",
            "",
        ),
        (
            "no security groups",
            |d| {
                container(d)
                    .security_profile
                    .get_or_insert_default()
                    .security_groups
                    .clear()
            },
            "container.securityProfile.securityGroups",
            "Number of security groups must be between 1 and 6",
        ),
        (
            "bad security group",
            |d| {
                container(d)
                    .security_profile
                    .get_or_insert_default()
                    .security_groups = vec!["group".into()]
            },
            "container.securityProfile.securityGroups",
            "Syntactically invalid security group ids",
        ),
        (
            "IAM role",
            |d| {
                container(d)
                    .security_profile
                    .get_or_insert_default()
                    .iam_role = "a role".into()
            },
            "container.securityProfile.iamRole",
            "Syntactically invalid IAM role",
        ),
        (
            "image name",
            |d| container(d).image.get_or_insert_default().name = "bad name!".into(),
            "container.image.name",
            "image name is not valid",
        ),
        (
            "image tag",
            |d| container(d).image.get_or_insert_default().tag.clear(),
            "container.image.noValidImageDigestOrTag",
            "must specify a valid digest or tag",
        ),
        (
            "entry point size",
            |d| container(d).entry_point = vec!["x".repeat(17 * 1024)],
            "container.entryPoint",
            "Entry point size exceeds the limit 16KB",
        ),
        (
            "env size",
            |d| {
                container(d).env.insert("BIG".into(), "x".repeat(33 * 1024));
            },
            "container.env",
            "Container environment variables size exceeds the limit",
        ),
        (
            "env name",
            |d| {
                container(d).env.insert("lower".into(), "1".into());
            },
            "container.env",
            "Environment variable validation error",
        ),
        (
            "env empty key",
            |d| {
                container(d).env.insert(String::new(), "1".into());
            },
            "container.env",
            "empty key names not allowed",
        ),
        (
            "constraint name",
            |d| {
                container(d)
                    .hard_constraints
                    .get_or_insert_default()
                    .constraints
                    .insert("nope".into(), "1".into());
            },
            "container.hardConstraints",
            "Unrecognized constraints [nope]",
        ),
        (
            "soft and hard",
            |d| {
                container(d)
                    .hard_constraints
                    .get_or_insert_default()
                    .constraints
                    .insert("uniqueHost".into(), "true".into());
                container(d)
                    .soft_constraints
                    .get_or_insert_default()
                    .constraints
                    .insert("uniqueHost".into(), "true".into());
            },
            "container",
            "Soft and hard constraints not unique",
        ),
        (
            "volume mount path",
            |d| {
                container(d).volume_mounts = vec![pb::VolumeMount {
                    mount_path: "rel".into(),
                    volume_name: "v".into(),
                    ..Default::default()
                }]
            },
            "container.volumeMounts[0].mountPath",
            "path must start with a leading slash",
        ),
        (
            "neither batch nor service",
            |d| d.job_spec = None,
            "extensions",
            "exactly one of batch or service must be set",
        ),
        (
            "budget percentage",
            |d| {
                d.disruption_budget = Some(pb::JobDisruptionBudget {
                    policy: Some(
                        pb::job_disruption_budget::Policy::AvailabilityPercentageLimit(
                            pb::job_disruption_budget::AvailabilityPercentageLimit {
                                percentage_of_healthy_containers: 101.0,
                            },
                        ),
                    ),
                    rate: Some(pb::job_disruption_budget::Rate::RateUnlimited(
                        Default::default(),
                    )),
                    ..Default::default()
                })
            },
            "disruptionBudget.disruptionBudgetPolicy.percentageOfHealthyContainers",
            "must be less than or equal to 100",
        ),
    ]
}

#[tokio::test]
async fn every_validation_rule_is_an_invalid_argument_naming_its_field() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let mut grpc = env.grpc().await?;
    let mut wrong = Vec::new();
    for (what, mutate, field, fragment) in validation_cases() {
        let mut d = batch_descriptor("bad", 1);
        mutate(&mut d);
        let mut req = request(d);
        req.metadata_mut().insert("x-titus-debug", "true".parse()?);
        let status = match grpc.create_job(req).await {
            Ok(_) => {
                wrong.push(format!("{what}: accepted"));
                continue;
            }
            Err(status) => status,
        };
        let message = status.message();
        let bin = status
            .metadata()
            .get_bin("x-titus-error-bin")
            .map(|v| v.to_bytes())
            .transpose()?;
        let rpc = RpcStatus::decode(bin.unwrap_or_default())?;
        let bad = rpc
            .details
            .iter()
            .find(|d| d.type_url == BAD_REQUEST_TYPE_URL)
            .map(|d| BadRequest::decode(d.value.as_slice()))
            .transpose()?
            .unwrap_or_default();
        let trailer = status
            .metadata()
            .get("x-titus-error")
            .map(|v| v.to_str().unwrap_or_default());
        let ok = status.code() == Code::InvalidArgument
            && message.starts_with(
                "TitusServiceException: Invalid Argument: {Validation failed: 'field: '",
            )
            && message.contains(&format!("'field: '{field}'"))
            && message.contains(fragment)
            && trailer == Some(message)
            && bad.field_violations.iter().any(|v| v.field == field);
        if !ok {
            wrong.push(format!("{what}: {:?} {message}", status.code()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Service capacity rules.
    for (min, desired, max, fragment) in [
        (3, 2, 4, "'min'(3) must be <= 'desired'(2)"),
        (0, 1, 10_001, "Service job too big 10001 > 10000"),
        (
            0,
            1,
            3_000,
            "Service job size is limited to 2500, but is 3000",
        ),
    ] {
        let status = grpc
            .create_job(request(service_descriptor("svc", min, desired, max)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains(fragment), "{}", status.message());
        assert!(
            status.metadata().get_bin("x-titus-error-bin").is_none(),
            "no debug header, no binary details"
        );
    }
    // An enum number the gateway does not know.
    let mut d = batch_descriptor("bad", 1);
    d.network_configuration = Some(pb::NetworkConfiguration { network_mode: 99 });
    let status = grpc.create_job(request(d)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("Error creating core job descriptor: unrecognized value 99"),
        "{}",
        status.message()
    );
    // Job group uniqueness among active jobs.
    let mut d = service_descriptor("grouped", 0, 1, 1);
    d.job_group_info = Some(pb::JobGroupInfo {
        stack: "main".into(),
        detail: String::new(),
        sequence: "v001".into(),
    });
    let first = grpc.create_job(request(d.clone())).await?.into_inner().id;
    let status = grpc.create_job(request(d)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        format!(
            "JobManagerException: Constraint violation - job with group sequence grouped-main--v001 exists ({first})"
        )
    );
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_active_job_limit_is_resource_exhausted() -> anyhow::Result<()> {
    let env = Env::start_with(titus_gateway::GatewayConfig {
        max_active_jobs: 1,
        ..Default::default()
    })
    .await?;
    let mut grpc = env.grpc().await?;
    grpc.create_job(request(batch_descriptor("one", 1))).await?;
    let status = grpc
        .create_job(request(batch_descriptor("two", 1)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status
            .message()
            .contains("Reached a limit of active jobs Titus can run (active=1, limit=1)")
    );
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_not_found_and_invalid_argument_on_every_rpc()
-> anyhow::Result<()> {
    let env = Env::start().await?;
    let mut grpc = env.grpc().await?;
    for (id, code, fragment) in [
        (
            uuid::Uuid::new_v4().to_string(),
            Code::NotFound,
            "does not exist",
        ),
        (
            "not-a-uuid".to_string(),
            Code::InvalidArgument,
            "must be UUID string, but is: not-a-uuid",
        ),
    ] {
        let job = || pb::JobId { id: id.clone() };
        let results: Vec<(&str, Result<(), tonic::Status>)> = vec![
            ("FindJob", grpc.find_job(request(job())).await.map(drop)),
            ("KillJob", grpc.kill_job(request(job())).await.map(drop)),
            (
                "ObserveJob",
                grpc.observe_job(request(job())).await.map(drop),
            ),
            (
                "UpdateJobCapacity",
                grpc.update_job_capacity(request(pb::JobCapacityUpdate {
                    job_id: id.clone(),
                    capacity: Some(pb::Capacity {
                        min: 0,
                        max: 1,
                        desired: 1,
                    }),
                }))
                .await
                .map(drop),
            ),
            (
                "UpdateJobCapacityWithOptionalAttributes",
                grpc.update_job_capacity_with_optional_attributes(request(
                    pb::JobCapacityUpdateWithOptionalAttributes {
                        job_id: id.clone(),
                        ..Default::default()
                    },
                ))
                .await
                .map(drop),
            ),
            (
                "UpdateJobStatus",
                grpc.update_job_status(request(pb::JobStatusUpdate {
                    id: id.clone(),
                    enable_status: true,
                }))
                .await
                .map(drop),
            ),
            (
                "UpdateJobProcesses",
                grpc.update_job_processes(request(pb::JobProcessesUpdate {
                    job_id: id.clone(),
                    ..Default::default()
                }))
                .await
                .map(drop),
            ),
            (
                "UpdateJobDisruptionBudget",
                grpc.update_job_disruption_budget(request(pb::JobDisruptionBudgetUpdate {
                    job_id: id.clone(),
                    ..Default::default()
                }))
                .await
                .map(drop),
            ),
            (
                "UpdateJobAttributes",
                grpc.update_job_attributes(request(pb::JobAttributesUpdate {
                    job_id: id.clone(),
                    ..Default::default()
                }))
                .await
                .map(drop),
            ),
            (
                "DeleteJobAttributes",
                grpc.delete_job_attributes(request(pb::JobAttributesDeleteRequest {
                    job_id: id.clone(),
                    keys: vec!["k".into()],
                }))
                .await
                .map(drop),
            ),
            (
                "FindTask",
                grpc.find_task(request(pb::TaskId { id: id.clone() }))
                    .await
                    .map(drop),
            ),
            (
                "KillTask",
                grpc.kill_task(request(pb::TaskKillRequest {
                    task_id: id.clone(),
                    ..Default::default()
                }))
                .await
                .map(drop),
            ),
            (
                "UpdateTaskAttributes",
                grpc.update_task_attributes(request(pb::TaskAttributesUpdate {
                    task_id: id.clone(),
                    ..Default::default()
                }))
                .await
                .map(drop),
            ),
            (
                "DeleteTaskAttributes",
                grpc.delete_task_attributes(request(pb::TaskAttributesDeleteRequest {
                    task_id: id.clone(),
                    keys: vec!["k".into()],
                }))
                .await
                .map(drop),
            ),
        ];
        for (rpc, result) in results {
            let status = result.expect_err(rpc);
            assert_eq!(status.code(), code, "{rpc}: {}", status.message());
            assert!(
                status.message().contains(fragment),
                "{rpc}: {}",
                status.message()
            );
        }
    }
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn malformed_protobuf_is_refused_with_a_decode_message() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{}", env.gateway.grpc_addr))?
            .connect()
            .await?;
    // Field 3 (applicationName) as a varint, then a truncated length-delimited field.
    let garbage = vec![0x18, 0x01, 0x3a, 0x7f, 0x01];
    let status = support::raw::call(channel.clone(), "CreateJob", garbage)
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::Internal,
        "gRPC's code for an unparseable request"
    );
    assert!(
        status
            .message()
            .contains("failed to decode Protobuf message"),
        "{}",
        status.message()
    );
    // The server is still serving.
    let ok = support::raw::call(
        channel,
        "FindJobs",
        pb::JobQuery {
            page: Some(pb::Page {
                page_size: 1,
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec(),
    )
    .await?;
    assert!(pb::JobQueryResult::decode(ok.as_slice()).is_ok());
    env.stop().await;
    Ok(())
}

/// Inputs tried by the handler fuzz test below (recorded in docs/titus-compatibility.md).
const RANDOM_REQUESTS: u64 = 2_000;
const RANDOM_BODIES: u64 = 1_000;

/// Every unary RPC and its request message.
const UNARY: &[(&str, &str)] = &[
    ("CreateJob", "JobDescriptor"),
    ("UpdateJobCapacity", "JobCapacityUpdate"),
    (
        "UpdateJobCapacityWithOptionalAttributes",
        "JobCapacityUpdateWithOptionalAttributes",
    ),
    ("UpdateJobStatus", "JobStatusUpdate"),
    ("UpdateJobProcesses", "JobProcessesUpdate"),
    ("UpdateJobDisruptionBudget", "JobDisruptionBudgetUpdate"),
    ("FindJobs", "JobQuery"),
    ("FindJob", "JobId"),
    ("KillJob", "JobId"),
    ("UpdateJobAttributes", "JobAttributesUpdate"),
    ("DeleteJobAttributes", "JobAttributesDeleteRequest"),
    ("FindTask", "TaskId"),
    ("FindTasks", "TaskQuery"),
    ("KillTask", "TaskKillRequest"),
    ("UpdateTaskAttributes", "TaskAttributesUpdate"),
    ("DeleteTaskAttributes", "TaskAttributesDeleteRequest"),
    ("MoveTask", "TaskMoveRequest"),
];

/// Replaces id-looking string fields with ids of existing jobs and tasks now and then, so random
/// requests reach past the id checks.
fn aim_ids(message: &mut DynamicMessage, ids: &[String], random: &mut Random) {
    use rand::Rng;
    let fields: Vec<_> = message.descriptor().fields().collect();
    for field in fields {
        let name = field.name().to_ascii_lowercase();
        if (name == "id" || name.ends_with("jobid") || name == "taskid")
            && random.rng.random_bool(0.7)
            && !ids.is_empty()
        {
            let id = ids[random.rng.random_range(0..ids.len())].clone();
            message.set_field(&field, prost_reflect::Value::String(id));
        }
    }
}

#[tokio::test]
async fn thousands_of_random_requests_get_a_status_and_never_crash_a_handler() -> anyhow::Result<()>
{
    use rand::Rng;
    let env = Env::start().await?;
    let mut grpc = env.grpc().await?;
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{}", env.gateway.grpc_addr))?
            .connect()
            .await?;
    // Some real targets: a service job with tasks and a batch job.
    let service = grpc
        .create_job(request(service_descriptor("fuzz", 0, 2, 4)))
        .await?
        .into_inner()
        .id;
    let batch_job = grpc
        .create_job(request(batch_descriptor("fuzz", 2)))
        .await?
        .into_inner()
        .id;
    let mut ids = vec![service.clone(), batch_job.clone()];
    ids.extend(support::lifecycle::accept_job(&env.jobs(), &env.tasks(), &service).await?);
    ids.extend(support::lifecycle::accept_job(&env.jobs(), &env.tasks(), &batch_job).await?);

    let mut codes = std::collections::BTreeMap::<String, u64>::new();
    for seed in 0..RANDOM_REQUESTS {
        let mut random = Random::new(seed, seed % 3 == 0);
        let (method, message) = UNARY[random.rng.random_range(0..UNARY.len())];
        let descriptor = titus_gateway::pb::message_descriptor(message).expect("known message");
        let mut body = random.message(&descriptor);
        aim_ids(&mut body, &ids, &mut random);
        let result = support::raw::call(channel.clone(), method, body.encode_to_vec()).await;
        let code = match &result {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        };
        assert!(
            !matches!(
                code,
                Code::Unknown | Code::Unavailable | Code::Unimplemented | Code::DeadlineExceeded
            ),
            "seed {seed} {method}: {result:?}"
        );
        if code == Code::Internal {
            let message = result
                .err()
                .map(|s| s.message().to_string())
                .unwrap_or_default();
            assert!(
                message.contains("Invalid cursor") || message.contains("not compatible"),
                "seed {seed} {method}: {message}"
            );
        }
        *codes.entry(format!("{method} {code:?}")).or_default() += 1;
    }
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(11);
    for _ in 0..RANDOM_BODIES {
        let (method, _) = UNARY[rng.random_range(0..UNARY.len())];
        let n = rng.random_range(0..64);
        let body: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        if let Err(status) = support::raw::call(channel.clone(), method, body).await {
            assert!(
                matches!(
                    status.code(),
                    Code::Internal
                        | Code::InvalidArgument
                        | Code::NotFound
                        | Code::FailedPrecondition
                        | Code::ResourceExhausted
                ),
                "{method}: {status:?}"
            );
        }
    }
    // Still healthy afterwards.
    let page = pb::JobQuery {
        page: Some(pb::Page {
            page_size: 100,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(
        !grpc
            .find_jobs(request(page))
            .await?
            .into_inner()
            .items
            .is_empty()
    );
    eprintln!(
        "{RANDOM_REQUESTS} random requests and {RANDOM_BODIES} random bodies; outcomes: {codes:?}"
    );
    env.stop().await;
    Ok(())
}
