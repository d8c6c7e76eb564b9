//! cgroup v1 limits: values in the cgroup files, and the memory limit enforced with OOM kills.

use std::path::Path;
use std::time::Duration;

use titus_agent_shim::{ContainerRuntime, CpuLimit, Resources, TerminationReason};

use crate::fixture::{Env, eventually};

fn cgroup_value(env: &Env, controller: &str, id: &str, file: &str) -> String {
    let path = Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(env.containerd.cgroup_parent().trim_start_matches('/'))
        .join(id)
        .join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_memory_and_pids_limits_land_in_the_containers_cgroup() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let mut spec = env
        .spec("limited", &env.images.busybox, &["/bin/sleep", "600"], &[])
        .await?;
    spec.resources = Resources {
        cpu: Some(CpuLimit::from_cpus(0.5, false)),
        memory_bytes: Some(64 << 20),
        pids_limit: Some(50),
        shm_bytes: Some(8 << 20),
    };
    env.runtime.create_and_start(&spec).await?;
    assert_eq!(
        cgroup_value(&env, "memory", "limited", "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(cgroup_value(&env, "cpu", "limited", "cpu.shares"), "512");
    assert_eq!(
        cgroup_value(&env, "cpu", "limited", "cpu.cfs_quota_us"),
        "50000"
    );
    assert_eq!(
        cgroup_value(&env, "cpu", "limited", "cpu.cfs_period_us"),
        "100000"
    );
    assert_eq!(cgroup_value(&env, "pids", "limited", "pids.max"), "50");
    env.runtime.remove(&spec.id).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocation_beyond_the_memory_limit_is_oom_killed_and_reported_as_oom() -> anyhow::Result<()>
{
    let env = Env::start().await?;
    // `tail` keeps the last lines of a newline-free endless stream in memory: it grows until killed.
    let mut spec = env
        .spec("hog", &env.images.busybox, &["/bin/tail", "/dev/zero"], &[])
        .await?;
    spec.resources.memory_bytes = Some(32 << 20);
    let exit = env.run_to_exit(&spec).await?;
    assert_eq!(exit.code, 137, "SIGKILL by the OOM killer");
    assert!(exit.oom_killed);
    assert_eq!(exit.reason, TerminationReason::OomKilled);

    // A container within its limit is not reported as OOM killed.
    let mut fine = env
        .spec(
            "fine",
            &env.images.busybox,
            &["/bin/sh", "-c", "exit 0"],
            &[],
        )
        .await?;
    fine.resources.memory_bytes = Some(32 << 20);
    let exit = env.run_to_exit(&fine).await?;
    assert!(!exit.oom_killed);
    assert_eq!(exit.reason, TerminationReason::Completed);
    for id in [&spec.id, &fine.id] {
        env.runtime.remove(id).await?;
    }
    eventually(
        "cgroup removed with the container",
        Duration::from_secs(5),
        || async { cgroup_value(&env, "memory", "hog", "memory.limit_in_bytes").is_empty() },
    )
    .await
}
