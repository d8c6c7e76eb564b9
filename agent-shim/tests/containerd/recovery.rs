//! Recovery: a new runtime instance (agent restart) lists and re-adopts containers without
//! restarting them, and reports exits that happened while no agent was watching.

use std::time::Duration;

use titus_agent_shim::{ContainerRuntime, ContainerState, TerminationReason, labels};

use crate::fixture::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_container_is_re_adopted_after_a_restart_and_its_exit_observed()
-> anyhow::Result<()> {
    let mut env = Env::start().await?;
    // Exits with 7 on SIGUSR1, which the test sends from the host after the "restart".
    let script = "trap 'exit 7' USR1; while true; do sleep 0.05; done";
    let mut spec = env
        .spec(
            "survivor",
            &env.images.busybox,
            &["/bin/sh", "-c", script],
            &[],
        )
        .await?;
    spec.labels.insert(labels::POD_UID.into(), "uid-1".into());
    spec.labels.insert(labels::TASK_ID.into(), "task-1".into());
    env.runtime.create_and_start(&spec).await?;
    let ContainerState::Running {
        started_at,
        pid: Some(pid),
    } = env.runtime.status(&spec.id).await?
    else {
        panic!("container is not running");
    };

    // The agent restarts: drop the runtime client (and its waiters), connect a new one.
    env.restart_agent().await?;
    let restarted = &env.runtime;
    let listed = restarted.list().await?;
    assert_eq!(listed.len(), 1);
    let found = &listed[0];
    assert_eq!(found.id, spec.id);
    assert_eq!(found.labels[labels::POD_UID], "uid-1");
    assert_eq!(found.labels[labels::TASK_ID], "task-1");
    assert_eq!(
        found.state,
        ContainerState::Running {
            started_at,
            pid: Some(pid)
        },
        "same start time and pid: not restarted"
    );

    let waiting = restarted.wait(&spec.id);
    let signal = async {
        std::process::Command::new("kill")
            .arg("-USR1")
            .arg(pid.to_string())
            .status()
    };
    let (exit, sent) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(30), waiting),
        signal
    );
    assert!(sent?.success());
    let exit = exit??;
    assert_eq!(exit.code, 7);
    assert_eq!(exit.started_at, Some(started_at));
    assert_eq!(exit.reason, TerminationReason::Error);
    restarted.remove(&spec.id).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_while_no_agent_was_running_is_reported_after_the_restart() -> anyhow::Result<()> {
    let mut env = Env::start().await?;
    let spec = env
        .spec(
            "gone",
            &env.images.busybox,
            &["/bin/sh", "-c", "exit 5"],
            &[],
        )
        .await?;
    let exit = env.run_to_exit(&spec).await?;
    env.restart_agent().await?;
    let restarted = &env.runtime;
    let listed = restarted.list().await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, ContainerState::Exited(exit.clone()));
    assert_eq!(restarted.wait(&spec.id).await?, exit);
    restarted.remove(&spec.id).await?;
    Ok(())
}
