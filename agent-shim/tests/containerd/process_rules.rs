//! Docker entryPoint/command rules, environment and working directory, run for real against an
//! image with ENTRYPOINT `/bin/echo image-entrypoint`, CMD `image-cmd`, WorkingDir `/tmp`.

use std::collections::BTreeMap;

use crate::fixture::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_point_and_command_follow_the_docker_rules() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let image = env.images.entrypoint.clone();
    let cases: [(&str, &[&str], &[&str], &str); 5] = [
        ("image-defaults", &[], &[], "image-entrypoint image-cmd\n"),
        (
            "entrypoint-only",
            &["/bin/echo", "from-entrypoint"],
            &[],
            "from-entrypoint\n",
        ),
        (
            "command-only",
            &[],
            &["from-command"],
            "image-entrypoint from-command\n",
        ),
        ("both", &["/bin/echo", "ep"], &["cmd"], "ep cmd\n"),
        (
            "entrypoint-cleared",
            &[""],
            &["/bin/echo", "cleared"],
            "cleared\n",
        ),
    ];
    for (id, entry_point, command, want) in cases {
        let spec = env.spec(id, &image, entry_point, command).await?;
        let (exit, stdout) = env.run_and_remove(&spec).await?;
        assert_eq!(exit.code, 0, "{id}");
        assert_eq!(stdout, want, "{id}");
    }
    let cleared_command = env.spec("command-cleared", &image, &[], &[""]).await?;
    let (_, stdout) = env.run_and_remove(&cleared_command).await?;
    assert_eq!(stdout, "image-entrypoint\n");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_env_overrides_image_env_and_the_image_working_dir_applies() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let task_env = BTreeMap::from([
        ("SHARED".to_string(), "from-task".to_string()),
        ("TASK_ONLY".to_string(), "with spaces".to_string()),
    ]);
    let script = "echo \"$IMAGE_ONLY|$SHARED|$TASK_ONLY\"; pwd";
    let spec = env
        .spec_with_env(
            "env",
            &env.images.entrypoint,
            &["/bin/sh", "-c", script],
            &[],
            task_env,
        )
        .await?;
    let (exit, stdout) = env.run_and_remove(&spec).await?;
    assert_eq!(exit.code, 0);
    assert_eq!(stdout, "from-image|from-task|with spaces\n/tmp\n");
    Ok(())
}
