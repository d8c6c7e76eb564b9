//! `titus scheduler` as its own process against `titus apiserver`, driven with kubectl: Nodes
//! and Pods applied from YAML, a Pod bound, a Pod that fits nowhere marked unschedulable with
//! an Event, and the leader Lease released on SIGTERM.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use titus_e2e::{Cluster, free_port, repo_root, titus_bin, wait_for};

use crate::support::wait_for_kubectl;

/// `titus scheduler`, stopped by PID when dropped.
struct SchedulerProcess {
    child: Child,
}

impl SchedulerProcess {
    fn start(cluster: &Cluster, health_port: u16) -> anyhow::Result<Self> {
        let child = Command::new(titus_bin()?)
            .args(["scheduler", "--kubeconfig"])
            .arg(&cluster.kubeconfig)
            .args(["--identity", "e2e-scheduler"])
            .args(["--health-bind", &format!("127.0.0.1:{health_port}")])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting titus scheduler")?;
        Ok(Self { child })
    }

    /// Sends SIGTERM and waits for the process to exit.
    fn terminate(mut self) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status()?;
        anyhow::ensure!(sent.success(), "kill -TERM {pid} failed");
        Ok(self.child.wait()?)
    }
}

impl Drop for SchedulerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn node_yaml(name: &str, zone: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n    \
         failure-domain.beta.kubernetes.io/zone: {zone}\n    \
         beta.kubernetes.io/instance-type: m5.xlarge\nspec:\n  taints:\n  - key: \
         virtual-kubelet.io/provider\n    value: titus\n    effect: NoSchedule\n"
    )
}

const NODE_STATUS: &str = r#"{"status": {"allocatable": {"cpu": "4", "memory": "16Gi",
  "ephemeral-storage": "100Gi", "titus/network": "1G", "pods": "110"},
  "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}"#;

fn pod_yaml(name: &str, cpu: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\n  labels:\n    \
         v3.job.titus.netflix.com/job-id: e2e-job\nspec:\n  schedulerName: titus-scheduler\n  \
         restartPolicy: Never\n  tolerations:\n  - key: virtual-kubelet.io/provider\n    \
         operator: Exists\n  containers:\n  - name: main\n    image: busybox:1\n    \
         resources:\n      requests:\n        cpu: \"{cpu}\"\n        memory: 512Mi\n"
    )
}

#[tokio::test]
async fn titus_scheduler_binds_pods_applied_with_kubectl_and_explains_the_ones_it_cannot_place()
-> anyhow::Result<()> {
    let cluster = Cluster::apiserver().await?;
    let crds = repo_root().join("crds");
    cluster.kubectl(&["apply", "-f", crds.to_str().unwrap_or_default()])?;
    for (name, zone) in [("e2e-node-a", "us-east-1a"), ("e2e-node-b", "us-east-1b")] {
        let manifest = cluster.file(&format!("{name}.yaml"), &node_yaml(name, zone))?;
        cluster.kubectl(&["apply", "-f", manifest.to_str().unwrap_or_default()])?;
        cluster.kubectl(&[
            "patch",
            "node",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            NODE_STATUS,
        ])?;
    }
    let scheduler = SchedulerProcess::start(&cluster, free_port()?)?;

    let fits = cluster.file("fits.yaml", &pod_yaml("fits", "2"))?;
    cluster.kubectl(&["apply", "-f", fits.to_str().unwrap_or_default()])?;
    let node = wait_for_kubectl(
        &cluster,
        &["get", "pod", "fits", "-o", "jsonpath={.spec.nodeName}"],
        "e2e-node-",
    )
    .await?;
    assert!(node == "e2e-node-a" || node == "e2e-node-b", "{node}");

    let huge = cluster.file("huge.yaml", &pod_yaml("huge", "16"))?;
    cluster.kubectl(&["apply", "-f", huge.to_str().unwrap_or_default()])?;
    let message = wait_for_kubectl(
        &cluster,
        &[
            "get",
            "pod",
            "huge",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].message}",
        ],
        "offers",
    )
    .await?;
    assert_eq!(message, "0/2 offers: 2 insufficient cpu");
    let events = wait_for_kubectl(
        &cluster,
        &["get", "events.events.k8s.io", "-n", "default", "-o", "json"],
        "FailedScheduling",
    )
    .await?;
    assert!(
        events.contains("0/2 offers: 2 insufficient cpu"),
        "{events}"
    );

    let status = scheduler.terminate()?;
    assert!(status.success(), "titus scheduler exited with {status}");
    let holder = wait_for(
        "the leader lease to be released",
        Duration::from_secs(20),
        || {
            let out = cluster.kubectl(&[
                "get",
                "lease",
                "titus-scheduler",
                "-n",
                "default",
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ]);
            async move { Ok(out.ok().filter(|h| h.is_empty())) }
        },
    )
    .await?;
    assert_eq!(holder, "");
    Ok(())
}
