//! `titus gateway` as its own process on `titus apiserver`: a job applied with kubectl is served
//! by the REST API, and SIGTERM (how Kubernetes stops a pod) ends it cleanly.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use titus_e2e::{Cluster, free_port, http_get, repo_root, titus_bin, wait_for};

use crate::operator_support::install_titus_crds;

#[tokio::test]
async fn titus_gateway_serves_a_kubectl_job_and_stops_on_sigterm() -> anyhow::Result<()> {
    let cluster = Cluster::apiserver().await?;
    install_titus_crds(&cluster)?;
    let example = repo_root().join("examples/batch-job.yaml");
    cluster.kubectl(&["apply", "-f", &example.display().to_string()])?;
    let uid = cluster.kubectl(&[
        "get",
        "titusjob",
        "hello-batch",
        "-o",
        "jsonpath={.metadata.uid}",
    ])?;

    let (grpc, rest) = (free_port()?, free_port()?);
    let log = cluster.file("gateway.log", "")?;
    let mut gateway = Command::new(titus_bin()?)
        .args(["gateway", "--kubeconfig"])
        .arg(&cluster.kubeconfig)
        .arg(format!("--grpc-bind=127.0.0.1:{grpc}"))
        .arg(format!("--rest-bind=127.0.0.1:{rest}"))
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::fs::File::create(&log)?))
        .stderr(Stdio::from(
            std::fs::OpenOptions::new().append(true).open(&log)?,
        ))
        .spawn()
        .context("starting titus gateway")?;
    let pid = gateway.id();
    let outcome = async {
        let body = wait_for("the job through REST", Duration::from_secs(30), || async {
            // Not listening yet, or not serving yet: try again.
            let answer = http_get(rest, &format!("/api/v3/jobs/{uid}")).await.ok();
            Ok(answer.and_then(|(status, body)| (status == 200).then_some(body)))
        })
        .await?;
        let job: serde_json::Value = serde_json::from_str(&body)?;
        assert_eq!(job["jobDescriptor"]["applicationName"], "hello", "{body}");
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        anyhow::ensure!(sent.success(), "kill -TERM {pid} failed");
        let gateway = std::sync::Mutex::new(&mut gateway);
        wait_for(
            "the gateway to exit on SIGTERM",
            Duration::from_secs(20),
            || async {
                let mut child = gateway.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                Ok(child.try_wait()?)
            },
        )
        .await
    }
    .await;
    // Stopped by PID whatever happened.
    let _ = gateway.kill();
    let _ = gateway.wait();
    let status = outcome.with_context(|| std::fs::read_to_string(&log).unwrap_or_default())?;
    assert!(
        status.success(),
        "titus gateway exits 0 on SIGTERM: {status}"
    );
    Ok(())
}
