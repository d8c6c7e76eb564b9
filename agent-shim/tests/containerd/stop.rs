//! Stop: SIGTERM, then SIGKILL after the grace period.

use std::time::{Duration, Instant};

use titus_agent_shim::{ContainerRuntime, ContainerState, TerminationReason};

use crate::fixture::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_of_a_sleeping_container_that_handles_sigterm_finishes_within_the_grace_period()
-> anyhow::Result<()> {
    let env = Env::start().await?;
    let script = "trap 'exit 143' TERM; sleep 600 & wait";
    let spec = env
        .spec(
            "sleeper",
            &env.images.busybox,
            &["/bin/sh", "-c", script],
            &[],
        )
        .await?;
    env.runtime.create_and_start(&spec).await?;
    assert!(matches!(
        env.runtime.status(&spec.id).await?,
        ContainerState::Running { .. }
    ));
    let grace = Duration::from_secs(20);
    let start = Instant::now();
    let exit = env.runtime.stop(&spec.id, grace).await?;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(exit.code, 143);
    assert_eq!(exit.reason, TerminationReason::Killed);
    // Stopping again returns the same exit.
    assert_eq!(env.runtime.stop(&spec.id, grace).await?, exit);
    env.runtime.remove(&spec.id).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_ignoring_sigterm_is_sigkilled_after_the_grace_period() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let script = "trap '' TERM; sleep 600";
    let spec = env
        .spec(
            "stubborn",
            &env.images.busybox,
            &["/bin/sh", "-c", script],
            &[],
        )
        .await?;
    env.runtime.create_and_start(&spec).await?;
    let grace = Duration::from_secs(1);
    let start = Instant::now();
    let exit = env.runtime.stop(&spec.id, grace).await?;
    let took = start.elapsed();
    assert!(
        took >= grace,
        "SIGKILL came before the grace period ended: {took:?}"
    );
    assert!(took < grace + Duration::from_secs(5), "took {took:?}");
    assert_eq!(exit.code, 137);
    assert_eq!(exit.reason, TerminationReason::Killed);
    assert!(!exit.oom_killed);
    env.runtime.remove(&spec.id).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_kills_a_running_container() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let spec = env
        .spec("doomed", &env.images.busybox, &["/bin/sleep", "600"], &[])
        .await?;
    let handle = env.runtime.create_and_start(&spec).await?;
    let pid = handle.pid.expect("containerd reports a pid");
    env.runtime.remove(&spec.id).await?;
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} still alive"
    );
    assert!(env.runtime.list().await?.is_empty());
    Ok(())
}
