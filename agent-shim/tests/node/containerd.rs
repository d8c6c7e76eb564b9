//! Real containers: a private registry and containerd, the embedded API server, one node agent.
//! Pods are created already bound to the node, as the scheduler would bind them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use kube::api::DeleteParams;
use std::path::Path;

use kube::api::LogParams;
use titus_agent_shim::containerd::demo_image::{BUSYBOX, DEMO_IMAGE, write_busybox_layout};
use titus_agent_shim::containerd::{ContainerdRuntime, LogDriver};
use titus_agent_shim::testsupport::{TestContainerd, TestImages, TestRegistry};

use crate::fixture::{Cluster, Node, phase_of, pod, terminated};

/// Field order is teardown order: agent, runtime, containerd, registry, API server.
struct World {
    node: Node<ContainerdRuntime>,
    images: TestImages,
    _containerd: TestContainerd,
    _registry: TestRegistry,
    cluster: Cluster,
}

impl World {
    async fn start() -> anyhow::Result<Self> {
        Self::start_with(None).await
    }

    /// A world whose containerd runs this crate's `titus-log-driver` next to each container.
    async fn with_log_driver() -> anyhow::Result<Self> {
        Self::start_with(Some(LogDriver {
            binary: env!("CARGO_BIN_EXE_titus-log-driver").into(),
            subcommand: "agent".into(),
        }))
        .await
    }

    async fn start_with(log_driver: Option<LogDriver>) -> anyhow::Result<Self> {
        let (registry, images, containerd) = tokio::task::spawn_blocking(|| {
            let registry = TestRegistry::start().context("starting the test registry")?;
            let images = registry
                .push_test_images()
                .context("pushing the test images")?;
            let containerd = TestContainerd::start().context("starting containerd")?;
            anyhow::Ok((registry, images, containerd))
        })
        .await??;
        let cluster = Cluster::start().await?;
        let mut config = containerd.runtime_config();
        config.log_driver = log_driver;
        let runtime = Arc::new(ContainerdRuntime::connect(config).await?);
        let node = Node::start(&cluster, runtime, "node-1", &containerd.log_dir()).await?;
        Ok(Self {
            node,
            images,
            _containerd: containerd,
            _registry: registry,
            cluster,
        })
    }
}

#[tokio::test]
async fn pods_exit_zero_and_three_with_their_output_in_the_log_subresource() -> anyhow::Result<()> {
    let w = World::start().await?;
    let c = &w.cluster;
    let history = c.history("ok");
    c.create(
        pod("ok", "node-1", &w.images.busybox)
            .command(&["/bin/sh", "-c"])
            .args(&["echo hello from $TITUS_TASK_ID"])
            .env(&[("TITUS_TASK_ID", "ok")])
            .build(),
    )
    .await?;
    c.create(
        pod("three", "node-1", &w.images.busybox)
            .command(&["/bin/sh", "-c", "echo failing >&2; exit 3"])
            .build(),
    )
    .await?;
    let ok = c.wait_phase("ok", "Succeeded").await?;
    assert_eq!(terminated(&ok).unwrap().exit_code, 0);
    assert_eq!(
        history.until_last("TASK_FINISHED").await?,
        ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    );
    assert_eq!(c.logs("ok").await?, "hello from ok\n");
    let three = c.wait_phase("three", "Failed").await?;
    let exit = terminated(&three).unwrap();
    assert_eq!(exit.exit_code, 3);
    assert_eq!(exit.reason.as_deref(), Some("Error"));
    let status = three.status.unwrap_or_default();
    assert_eq!(status.reason.as_deref(), Some("TASK_FAILED"));
    assert_eq!(
        status.message.as_deref(),
        Some("container exited with code 3")
    );
    assert_eq!(c.logs("three").await?, "failing\n");
    Ok(())
}

#[tokio::test]
async fn env_and_entry_point_rules_hold_and_an_image_by_digest_runs() -> anyhow::Result<()> {
    let w = World::start().await?;
    let c = &w.cluster;
    // Pod env (user + control plane) with the agent's Titus variables.
    c.create(
        pod("env", "node-1", &w.images.busybox)
            .command(&["/bin/sh", "-c"])
            .args(&["echo $USER_VAR $TITUS_TASK_ID $TITUS_NUM_MEM $NETFLIX_EXECUTOR $TITUS_CONTAINER_ID"])
            .env(&[
                ("USER_VAR", "from-user"),
                ("TITUS_TASK_ID", "env"),
                ("NETFLIX_EXECUTOR", "titus"),
            ])
            .memory("64Mi")
            .build(),
    )
    .await?;
    // No command: the image's ENTRYPOINT and CMD.
    c.create(pod("image-default", "node-1", &w.images.entrypoint).build())
        .await?;
    // Only args: the image's ENTRYPOINT with the Pod's args (Docker's rules).
    c.create(
        pod("args-only", "node-1", &w.images.entrypoint)
            .args(&["from-args"])
            .build(),
    )
    .await?;
    let digest = w.images.busybox_by_digest();
    c.create(
        pod("by-digest", "node-1", &digest)
            .command(&["/bin/echo", "by digest"])
            .build(),
    )
    .await?;
    for name in ["env", "image-default", "args-only", "by-digest"] {
        c.wait_phase(name, "Succeeded").await?;
    }
    let env_pod = c.pods().get("env").await?;
    let uid = env_pod.metadata.uid.unwrap_or_default();
    assert_eq!(
        c.logs("env").await?,
        format!("from-user env 64 titus {uid}\n")
    );
    assert_eq!(
        c.logs("image-default").await?,
        "image-entrypoint image-cmd\n"
    );
    assert_eq!(c.logs("args-only").await?, "image-entrypoint from-args\n");
    assert_eq!(c.logs("by-digest").await?, "by digest\n");
    Ok(())
}

#[tokio::test]
async fn a_pod_over_its_memory_limit_is_reported_oom_killed() -> anyhow::Result<()> {
    let w = World::start().await?;
    let c = &w.cluster;
    c.create(
        pod("hog", "node-1", &w.images.busybox)
            .command(&["/bin/tail", "/dev/zero"])
            .memory("32Mi")
            .build(),
    )
    .await?;
    let hog = c.wait_phase("hog", "Failed").await?;
    let exit = terminated(&hog).unwrap();
    assert_eq!(exit.reason.as_deref(), Some("OOMKilled"));
    assert_eq!(exit.exit_code, 137);
    let status = hog.status.unwrap_or_default();
    assert_eq!(status.reason.as_deref(), Some("TASK_FAILED"));
    assert!(status.message.unwrap_or_default().contains("OOM"));
    Ok(())
}

#[tokio::test]
async fn deleting_a_long_running_pod_stops_it_within_the_grace_period() -> anyhow::Result<()> {
    let w = World::start().await?;
    let c = &w.cluster;
    let history = c.history("sleeper");
    // PID 1 ignores SIGTERM without a handler: only the SIGKILL after the grace period ends it.
    c.create(
        pod("sleeper", "node-1", &w.images.busybox)
            .command(&["/bin/sleep", "3600"])
            .grace(2)
            .build(),
    )
    .await?;
    c.wait_phase("sleeper", "Running").await?;
    let asked = Instant::now();
    c.pods().delete("sleeper", &DeleteParams::default()).await?;
    c.wait_gone("sleeper", Duration::from_secs(20)).await?;
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "SIGKILL only after the grace period ({took:?})"
    );
    assert!(
        took < Duration::from_secs(10),
        "stopped within the grace period ({took:?})"
    );
    assert_eq!(
        history.until_last("TASK_KILLED").await?,
        ["TASK_STARTING", "TASK_RUNNING", "TASK_KILLED"]
    );
    let runtime = runtime_of(&w);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !titus_agent_shim::ContainerRuntime::list(&*runtime)
        .await?
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the container was not removed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::test]
async fn a_pod_whose_image_does_not_exist_fails_with_a_clear_reason() -> anyhow::Result<()> {
    let w = World::start().await?;
    let c = &w.cluster;
    let missing = format!(
        "{}/no-such-image:1",
        w.images.repository.rsplit_once('/').unwrap().0
    );
    c.create(pod("missing", "node-1", &missing).build()).await?;
    let failed = c.wait_phase("missing", "Failed").await?;
    let status = failed.status.unwrap_or_default();
    assert_eq!(status.reason.as_deref(), Some("TASK_FAILED"));
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains("no-such-image") && message.contains("not found"),
        "{message}"
    );
    assert_eq!(phase_of(&c.pods().get("missing").await?), "Failed");
    Ok(())
}

#[tokio::test]
async fn the_demo_image_built_from_this_machines_busybox_runs_without_a_registry()
-> anyhow::Result<()> {
    let w = World::start().await?;
    let layout = tempfile::tempdir()?;
    let digest = write_busybox_layout(Path::new(BUSYBOX), layout.path())?;
    let info = runtime_of(&w)
        .import_oci_layout(layout.path(), DEMO_IMAGE)
        .await?;
    assert_eq!(info.digest, digest);
    let c = &w.cluster;
    c.create(pod("demo", "node-1", DEMO_IMAGE).build()).await?;
    c.create(
        pod(
            "demo-digest",
            "node-1",
            &format!("localhost:5000/titus/busybox@{digest}"),
        )
        .command(&["/bin/sh", "-c", "echo by digest; ls /bin/wget"])
        .build(),
    )
    .await?;
    c.wait_phase("demo", "Succeeded").await?;
    assert_eq!(c.logs("demo").await?, "hello from busybox\n");
    c.wait_phase("demo-digest", "Succeeded").await?;
    assert_eq!(c.logs("demo-digest").await?, "by digest\n/bin/wget\n");
    Ok(())
}

#[tokio::test]
async fn with_the_log_driver_output_is_interleaved_with_times_and_followed_to_the_end()
-> anyhow::Result<()> {
    let w = World::with_log_driver().await?;
    let c = &w.cluster;
    c.create(
        pod("mixed", "node-1", &w.images.busybox)
            .command(&[
                "/bin/sh",
                "-c",
                "echo out1; sleep 0.3; echo err1 >&2; sleep 0.3; echo out2",
            ])
            .build(),
    )
    .await?;
    c.wait_phase("mixed", "Running").await?;
    let follow = LogParams {
        follow: true,
        ..LogParams::default()
    };
    // A follow started while it runs ends with the container.
    assert_eq!(c.pods().logs("mixed", &follow).await?, "out1\nerr1\nout2\n");
    c.wait_phase("mixed", "Succeeded").await?;
    let timed = LogParams {
        timestamps: true,
        tail_lines: Some(2),
        ..LogParams::default()
    };
    let lines: Vec<String> = c
        .pods()
        .logs("mixed", &timed)
        .await?
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, content) in lines.iter().zip(["err1", "out2"]) {
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(
            time.parse::<k8s_openapi::jiff::Timestamp>().is_ok(),
            "{line}"
        );
        assert_eq!(rest, content);
    }
    Ok(())
}

fn runtime_of(w: &World) -> Arc<ContainerdRuntime> {
    w.node.agent.runtime().clone()
}
