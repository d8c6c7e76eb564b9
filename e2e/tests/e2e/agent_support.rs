//! A `titus agent` process with a private containerd (`--containerd-root`) and the busybox test
//! image imported from an OCI layout (`--import-image`), on a `titus apiserver`; everything it
//! starts is removed by PID when the guard is dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use titus_agent_shim::testsupport::ContainerdCleanup;
use titus_e2e::{Cluster, repo_root, scratch_dir, titus_bin, wait_for};

/// The image name the examples use; the agent imports it under this name.
pub const IMAGE: &str = "localhost:5000/titus/busybox:1";

/// A running `titus agent`. Field order: the agent dies before its containerd is cleaned up.
pub struct Agent {
    child: Option<Child>,
    args: Vec<String>,
    log: PathBuf,
    pub node: String,
    pub cleanup: ContainerdCleanup,
    _dir: ScratchDir,
}

struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if std::env::var_os("TITUS_E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Agent {
    /// Builds the test image layout and starts an agent for node `node` on `cluster`.
    pub async fn start(cluster: &Cluster, node: &str) -> anyhow::Result<Self> {
        let dir = scratch_dir("agent")?;
        let layout = dir.join("oci");
        let built = Command::new(repo_root().join("scripts/build-test-image.sh"))
            .arg("--oci-layout")
            .arg(&layout)
            .output()
            .context("running scripts/build-test-image.sh")?;
        if !built.status.success() {
            bail!(
                "building the test image failed (scripts/install-deps.sh installs umoci and busybox-static): {}",
                String::from_utf8_lossy(&built.stderr)
            );
        }
        let namespace = format!("e2e-{}", uuid::Uuid::new_v4().simple());
        let containerd = dir.join("containerd");
        let args: Vec<String> = [
            "agent",
            "--kubeconfig",
            &cluster.kubeconfig.display().to_string(),
            "--node-name",
            node,
            "--containerd-root",
            &containerd.display().to_string(),
            "--containerd-namespace",
            &namespace,
            // Relative on purpose: the agent resolves it (shims run elsewhere).
            "--data-dir",
            "data",
            "--import-image",
            &format!("{}:{IMAGE}", layout.display()),
            "--cpu",
            "2",
            "--memory-mb",
            "4096",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let mut agent = Self {
            child: None,
            args,
            log: dir.join("agent.log"),
            node: node.to_owned(),
            cleanup: ContainerdCleanup::for_private(
                &containerd,
                &format!("/titus/{node}"),
                &namespace,
            ),
            _dir: ScratchDir(dir),
        };
        agent.launch(cluster).await?;
        Ok(agent)
    }

    /// Starts the process and waits until its Node is Ready with the log port set.
    pub async fn launch(&mut self, cluster: &Cluster) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(titus_bin()?)
            .args(&self.args)
            .current_dir(&self._dir.0)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting titus agent")?;
        let child = std::sync::Mutex::new(child);
        let log_path = self.log.clone();
        let node_name = self.node.clone();
        let nodes: Api<Node> = Api::all(cluster.client().await?);
        let started = k8s_openapi::jiff::Timestamp::now();
        let ready = wait_for(
            "the agent's node to be ready",
            Duration::from_secs(60),
            || async {
                let exited = child
                    .lock()
                    .ok()
                    .and_then(|mut c| c.try_wait().ok().flatten());
                if let Some(status) = exited {
                    bail!(
                        "titus agent exited with {status}; log:\n{}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    );
                }
                let Some(node) = nodes.get_opt(&node_name).await? else {
                    return Ok(None);
                };
                // Ready since this process registered (not a Node left by an earlier agent).
                let ready_since = node
                    .status
                    .unwrap_or_default()
                    .conditions
                    .unwrap_or_default()
                    .into_iter()
                    .find(|c| c.type_ == "Ready" && c.status == "True")
                    .and_then(|c| c.last_transition_time);
                let slack = k8s_openapi::jiff::SignedDuration::from_secs(1);
                Ok(ready_since
                    .is_some_and(|t| t.0 >= started - slack)
                    .then_some(()))
            },
        )
        .await;
        // Kept even on failure, so that drop stops it.
        self.child = child.into_inner().ok();
        ready.with_context(|| format!("agent log:\n{}", self.log()))
    }

    /// Kills the agent with SIGKILL (its containerd and containers keep running).
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        let mut child = self.child.take().context("the agent is not running")?;
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A Pod bound to `node` (as the scheduler would bind it) running `script` with `sh -c`.
pub fn pod_manifest(name: &str, node: &str, script: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeName: {node}\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 5\n  containers:\n  - name: main\n    image: {IMAGE}\n    imagePullPolicy: IfNotPresent\n    command: [/bin/sh, -c]\n    args: [{script:?}]\n"
    )
}

/// Waits until the Pod has `phase`.
pub async fn wait_phase(cluster: &Cluster, name: &str, phase: &str) -> anyhow::Result<Pod> {
    let pods: Api<Pod> = Api::namespaced(cluster.client().await?, "default");
    wait_for(
        &format!("pod {name} {phase}"),
        Duration::from_secs(60),
        || async {
            let pod = pods.get(name).await?;
            let now = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            Ok((now == phase).then_some(pod))
        },
    )
    .await
}
