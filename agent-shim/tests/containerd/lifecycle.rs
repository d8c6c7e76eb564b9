//! Run, output, exit codes, list and remove.

use titus_agent_shim::{ContainerRuntime, ContainerState, TerminationReason};

use crate::fixture::{Env, read};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_runs_and_its_output_lands_in_the_log_files() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let image = env.images.busybox.clone();
    let defaults = env.spec("hello", &image, &[], &[]).await?;
    let (exit, stdout) = env.run_and_remove(&defaults).await?;
    assert_eq!(exit.code, 0);
    assert_eq!(stdout, "hello from busybox\n");

    let both = env
        .spec(
            "streams",
            &image,
            &["/bin/sh", "-c", "echo to-out; echo to-err >&2"],
            &[],
        )
        .await?;
    let exit = env.run_to_exit(&both).await?;
    assert_eq!(exit.code, 0);
    assert_eq!(read(&both.logs.stdout), "to-out\n");
    assert_eq!(read(&both.logs.stderr), "to-err\n");
    env.runtime.remove(&both.id).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_zero_and_three_are_reported_with_their_reasons() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let image = env.images.busybox.clone();
    for (id, script, code, reason) in [
        ("exit0", "exit 0", 0, TerminationReason::Completed),
        ("exit3", "exit 3", 3, TerminationReason::Error),
    ] {
        let spec = env
            .spec(id, &image, &["/bin/sh", "-c", script], &[])
            .await?;
        let exit = env.run_to_exit(&spec).await?;
        assert_eq!(exit.code, code, "{id}");
        assert_eq!(exit.reason, reason, "{id}");
        assert!(!exit.oom_killed, "{id}");
        let started = exit.started_at.expect("start time recorded");
        assert!(
            started <= exit.finished_at,
            "{id}: started {started} finished {}",
            exit.finished_at
        );
        // status() after the exit agrees with wait().
        assert_eq!(
            env.runtime.status(&spec.id).await?,
            ContainerState::Exited(exit)
        );
        env.runtime.remove(&spec.id).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_returns_managed_containers_with_labels_and_remove_forgets_them() -> anyhow::Result<()>
{
    let env = Env::start().await?;
    let image = env.images.busybox.clone();
    let mut spec = env
        .spec("listed", &image, &["/bin/sleep", "600"], &[])
        .await?;
    spec.labels
        .insert(titus_agent_shim::labels::TASK_ID.into(), "task-42".into());
    env.runtime.create_and_start(&spec).await?;
    let listed = env.runtime.list().await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, spec.id);
    assert_eq!(listed[0].image, image);
    assert_eq!(
        listed[0].labels[titus_agent_shim::labels::TASK_ID],
        "task-42"
    );
    assert!(matches!(
        listed[0].state,
        ContainerState::Running { pid: Some(_), .. }
    ));

    env.runtime.remove(&spec.id).await?;
    assert!(env.runtime.list().await?.is_empty());
    assert!(matches!(
        env.runtime.status(&spec.id).await,
        Err(titus_agent_shim::RuntimeError::ContainerNotFound { .. })
    ));
    // Removing again is fine; the id can be reused.
    env.runtime.remove(&spec.id).await?;
    let (exit, _) = env
        .run_and_remove(&env.spec("listed", &image, &["/bin/true"], &[]).await?)
        .await?;
    assert_eq!(exit.code, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_container_twice_is_refused() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let spec = env
        .spec("twice", &env.images.busybox, &["/bin/sleep", "600"], &[])
        .await?;
    env.runtime.create_and_start(&spec).await?;
    let again = env.runtime.create_and_start(&spec).await;
    assert!(
        matches!(
            again,
            Err(titus_agent_shim::RuntimeError::ContainerAlreadyExists { .. })
        ),
        "{again:?}"
    );
    env.runtime.remove(&spec.id).await?;
    Ok(())
}
