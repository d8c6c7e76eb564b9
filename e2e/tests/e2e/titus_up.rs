//! `titus up` as a newcomer uses it: everything in one process, real containers through its
//! private containerd, the sample batch job applied with kubectl, the same job seen through the
//! Titus REST API; then `kill -9` of the whole system, a restart on the same data directory
//! that loses and duplicates nothing, and a clean Ctrl-C.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use titus_agent_shim::testsupport::ContainerdCleanup;
use titus_e2e::{Cluster, free_port, http_get, repo_root, wait_for};

/// `GET path` on the gateway's REST port, as JSON.
async fn rest_get(port: u16, path: &str) -> anyhow::Result<Value> {
    let (status, body) = http_get(port, path).await?;
    if status != 200 {
        bail!("GET {path}: {status}\n{body}");
    }
    Ok(serde_json::from_str(&body)?)
}

fn job_state(cluster: &Cluster, name: &str) -> anyhow::Result<String> {
    cluster.kubectl(&["get", "titusjob", name, "-o", "jsonpath={.status.state}"])
}

async fn wait_finished(cluster: &Cluster, name: &str) -> anyhow::Result<()> {
    wait_for(
        &format!("job {name} to finish"),
        Duration::from_secs(120),
        || async { Ok((job_state(cluster, name)? == "Finished").then_some(())) },
    )
    .await
    .with_context(|| format!("titus log:\n{}", cluster.log()))
}

/// `(index, state, reason, resubmitNumber)` of every task of job `name`.
fn tasks(cluster: &Cluster, name: &str) -> anyhow::Result<Vec<(i64, String, String, i64)>> {
    let list: Value = serde_json::from_str(&cluster.kubectl(&[
        "get",
        "titustasks",
        "-l",
        &format!("titus.dev/job-name={name}"),
        "-o",
        "json",
    ])?)?;
    let mut tasks: Vec<_> = list["items"]
        .as_array()
        .context("a task list without items")?
        .iter()
        .map(|t| {
            (
                t["spec"]["index"].as_i64().unwrap_or(-1),
                t["status"]["state"].as_str().unwrap_or_default().to_owned(),
                t["status"]["reasonCode"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                t["spec"]["resubmitNumber"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    tasks.sort();
    Ok(tasks)
}

fn all_finished_normal(size: i64) -> Vec<(i64, String, String, i64)> {
    (0..size)
        .map(|i| (i, "Finished".to_owned(), "normal".to_owned(), 0))
        .collect()
}

async fn wait_node_ready(cluster: &Cluster, node: &str) -> anyhow::Result<()> {
    wait_for("the node to be Ready", Duration::from_secs(90), || async {
        let status = cluster.kubectl_output(&[
            "wait",
            "--for=condition=Ready",
            &format!("node/{node}"),
            "--timeout=2s",
        ])?;
        Ok(status.status.success().then_some(()))
    })
    .await
    .with_context(|| format!("titus log:\n{}", cluster.log()))
}

#[tokio::test]
async fn titus_up_runs_the_sample_job_in_containers_and_survives_kill9() -> anyhow::Result<()> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let node = format!("e2e-up-{}", &id[..8]);
    let namespace = format!("e2e-up-{id}");
    let rest = free_port()?;
    let grpc = free_port()?;
    let (rest_bind, grpc_bind) = (format!("127.0.0.1:{rest}"), format!("127.0.0.1:{grpc}"));
    let mut cluster = Cluster::up(&[
        "--node-name",
        &node,
        "--containerd-namespace",
        &namespace,
        "--rest-bind",
        &rest_bind,
        "--grpc-bind",
        &grpc_bind,
    ])
    .await?;
    let data_dir = cluster.data_dir.clone().context("a local cluster")?;
    // Whatever happens, the private containerd and its containers go when the test ends.
    let _containerd = ContainerdCleanup::for_private(
        &data_dir.join("agent/containerd"),
        &format!("/titus/{node}"),
        &namespace,
    );
    wait_node_ready(&cluster, &node).await?;

    let example = repo_root().join("examples/batch-job.yaml");
    cluster.kubectl(&["apply", "-f", &example.display().to_string()])?;
    wait_finished(&cluster, "hello-batch").await?;
    assert_eq!(tasks(&cluster, "hello-batch")?, all_finished_normal(3));

    // The gateway serves the same job to Titus clients.
    let uid = cluster.kubectl(&[
        "get",
        "titusjob",
        "hello-batch",
        "-o",
        "jsonpath={.metadata.uid}",
    ])?;
    let job = rest_get(rest, &format!("/api/v3/jobs/{uid}")).await?;
    assert_eq!(job["status"]["state"], "Finished", "{job}");
    assert_eq!(job["jobDescriptor"]["applicationName"], "hello");

    // kill -9 of everything at once; the restart resumes from the data directory.
    cluster.kill9()?;
    cluster.restart().await?;
    wait_node_ready(&cluster, &node).await?;
    let again =
        std::fs::read_to_string(&example)?.replace("name: hello-batch", "name: hello-again");
    cluster.kubectl_stdin(&["apply", "-f", "-"], &again)?;
    wait_finished(&cluster, "hello-again").await?;
    assert_eq!(tasks(&cluster, "hello-again")?, all_finished_normal(3));
    assert_eq!(
        tasks(&cluster, "hello-batch")?,
        all_finished_normal(3),
        "the finished job is kept as it was, with no new task"
    );

    let status = cluster.interrupt(Duration::from_secs(60)).await?;
    assert!(
        status.success(),
        "titus up exits cleanly on SIGINT: {status}\n{}",
        cluster.log()
    );
    Ok(())
}
