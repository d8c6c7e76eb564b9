//! The project's Helm chart (`charts/titus`) with helm 4: lint, install into `titus apiserver`,
//! every container's arguments accepted by the `titus` binary it runs, the webhook variant on
//! upgrade, a TitusJob accepted by the chart's CRDs, uninstall.

use std::process::Command;

use anyhow::{Context, bail};
use serde_json::Value;
use titus_e2e::{Cluster, repo_root, titus_bin};

const NS: &str = "titus-system";

/// Runs `titus <args> --help`: clap parses (and validates) every flag before it prints help, so
/// an unknown flag or a bad value fails.
fn titus_accepts(args: &[String]) -> anyhow::Result<()> {
    let out = Command::new(titus_bin()?)
        .args(args)
        .arg("--help")
        .output()?;
    if !out.status.success() {
        bail!(
            "titus {args:?} is refused: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Every container of the chart's workloads, with its arguments checked against `titus`.
fn check_workload_args(cluster: &Cluster) -> anyhow::Result<usize> {
    let list: Value = serde_json::from_str(&cluster.kubectl(&[
        "get",
        "deployments,daemonsets",
        "-n",
        NS,
        "-o",
        "json",
    ])?)?;
    let mut checked = 0;
    for workload in list["items"].as_array().context("no items")? {
        let spec = &workload["spec"]["template"]["spec"];
        for container in spec["containers"].as_array().context("no containers")? {
            let args: Vec<String> = container["args"]
                .as_array()
                .context("a container without args")?
                .iter()
                // Kubernetes expands $(VAR) from the environment; any value will do here.
                .map(|a| {
                    a.as_str()
                        .unwrap_or_default()
                        .replace("$(NODE_NAME)", "node-a")
                        .replace("$(HOST_IP)", "10.0.0.7")
                })
                .collect();
            titus_accepts(&args).with_context(|| format!("{}", workload["metadata"]["name"]))?;
            checked += 1;
        }
    }
    Ok(checked)
}

#[tokio::test]
async fn the_helm_chart_installs_upgrades_with_the_webhook_and_uninstalls() -> anyhow::Result<()> {
    let cluster = Cluster::apiserver().await?;
    let chart = repo_root().join("charts/titus");
    let chart = chart.to_str().context("a non-UTF-8 path")?;
    let lint = cluster.helm(&["lint", chart])?;
    assert!(lint.contains("0 chart(s) failed"), "{lint}");

    let installed = cluster.helm(&[
        "install",
        "titus",
        chart,
        "--namespace",
        NS,
        "--create-namespace",
        "--wait=false",
    ])?;
    assert!(installed.contains("STATUS: deployed"), "{installed}");
    for crd in [
        "titusjobs.titus.dev",
        "titustasks.titus.dev",
        "capacitygroups.titus.dev",
        "instancegroups.titus.dev",
    ] {
        cluster.kubectl(&[
            "wait",
            "--for=condition=Established",
            &format!("crd/{crd}"),
            "--timeout=30s",
        ])?;
    }
    for object in [
        "deployment/titus-operator",
        "deployment/titus-scheduler",
        "deployment/titus-gateway",
        "daemonset/titus-agent",
        "service/titus-gateway",
        "serviceaccount/titus-operator",
    ] {
        cluster.kubectl(&["get", "-n", NS, object])?;
    }
    for object in [
        "clusterrole/titus-scheduler",
        "clusterrolebinding/titus-agent",
    ] {
        cluster.kubectl(&["get", object])?;
    }
    assert_eq!(
        check_workload_args(&cluster)?,
        4,
        "operator, scheduler, gateway, agent"
    );

    // The webhook variant: TLS from a secret, both webhook configurations, the operator serving.
    cluster.helm(&[
        "upgrade",
        "titus",
        chart,
        "--namespace",
        NS,
        "--set",
        "operator.webhook.enabled=true",
        "--set",
        "operator.webhook.tlsSecretName=titus-webhook-tls",
        "--set",
        "operator.webhook.caBundle=Q0E=",
        "--set",
        "agent.enabled=false",
        "--wait=false",
    ])?;
    for object in [
        "validatingwebhookconfiguration/titus-operator-webhook",
        "mutatingwebhookconfiguration/titus-operator-webhook",
    ] {
        cluster.kubectl(&["get", object])?;
    }
    let path = cluster.kubectl(&[
        "get",
        "validatingwebhookconfiguration/titus-operator-webhook",
        "-o",
        "jsonpath={.webhooks[0].clientConfig.service.path}",
    ])?;
    assert_eq!(path, "/validate");
    assert_eq!(
        check_workload_args(&cluster)?,
        3,
        "the agent DaemonSet is gone"
    );
    let missing = cluster.kubectl_output(&["get", "-n", NS, "daemonset/titus-agent"])?;
    assert!(
        !missing.status.success(),
        "agent.enabled=false removes the DaemonSet"
    );

    // The chart's CRDs serve the examples.
    let example = repo_root().join("examples/batch-job.yaml");
    cluster.kubectl(&["apply", "-n", NS, "-f", &example.display().to_string()])?;
    cluster.kubectl(&["get", "-n", NS, "titusjob/hello-batch"])?;

    let uninstalled = cluster.helm(&["uninstall", "titus", "--namespace", NS])?;
    assert!(uninstalled.contains("uninstalled"), "{uninstalled}");
    let gone = cluster.kubectl_output(&["get", "-n", NS, "deployment/titus-operator"])?;
    assert!(
        !gone.status.success(),
        "uninstall removes the templated objects"
    );
    // As Helm does: CRDs (and so the jobs) outlive the release.
    cluster.kubectl(&["get", "crd", "titusjobs.titus.dev"])?;
    Ok(())
}
