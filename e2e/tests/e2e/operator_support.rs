//! Shared fixtures of the operator's end-to-end tests: the Titus CRDs, a `titus operator` child
//! process (killed by PID on drop), and the pod driver.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use titus_e2e::{Cluster, repo_root, titus_bin};
use titus_operator::testing::{Behavior, DriverConfig, PodDriver, PodInfo};

/// Applies the Titus CRDs (`kubectl apply -f crds/`) and waits until they are served.
pub fn install_titus_crds(cluster: &Cluster) -> anyhow::Result<()> {
    let dir = repo_root().join("crds");
    for name in [
        "titusjobs",
        "titustasks",
        "capacitygroups",
        "instancegroups",
    ] {
        let file = dir.join(format!("{name}.titus.dev.yaml"));
        cluster.kubectl(&["apply", "-f", &file.display().to_string()])?;
        cluster.kubectl(&[
            "wait",
            "--for=condition=Established",
            &format!("crd/{name}.titus.dev"),
            "--timeout=30s",
        ])?;
    }
    Ok(())
}

/// A `titus operator` process.
pub struct Operator {
    child: std::sync::Mutex<Option<Child>>,
    args: Vec<String>,
    log: PathBuf,
}

impl Operator {
    /// Starts `titus operator --kubeconfig <cluster> <extra>`; its output goes to `log`.
    pub fn start(cluster: &Cluster, log: PathBuf, extra: &[&str]) -> anyhow::Result<Self> {
        let mut args = vec![
            "operator".to_string(),
            "--kubeconfig".into(),
            cluster.kubeconfig.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_string()));
        let mut operator = Self {
            child: std::sync::Mutex::new(None),
            args,
            log,
        };
        operator.spawn()?;
        Ok(operator)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(titus_bin()?)
            .args(&self.args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting titus operator")?;
        *self
            .child
            .get_mut()
            .map_err(|_| anyhow::anyhow!("poisoned"))? = Some(child);
        Ok(())
    }

    /// SIGKILLs the process and waits for it.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        let child = self
            .child
            .get_mut()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .take();
        if let Some(mut child) = child {
            child.kill().context("sending SIGKILL")?;
            child.wait().context("waiting for the killed operator")?;
        }
        Ok(())
    }

    /// Starts it again with the same arguments.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9()?;
        self.spawn()
    }

    /// Fails if the process exited on its own.
    pub fn check_alive(&self) -> anyhow::Result<()> {
        let mut child = self.child.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        if let Some(status) = child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            anyhow::bail!(
                "titus operator exited with {status}; log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
        Ok(())
    }

    /// The process log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}

/// Starts the pod driver (scheduler + agents of `nodes` fake nodes) in this process.
pub async fn driver(
    cluster: &Cluster,
    nodes: usize,
    behavior: impl Fn(&PodInfo) -> Behavior + Send + Sync + 'static,
) -> anyhow::Result<PodDriver> {
    let config = DriverConfig {
        heartbeat: Duration::from_secs(2),
        ..DriverConfig::fleet(nodes)
    };
    Ok(PodDriver::start(cluster.client().await?, config, Arc::new(behavior)).await?)
}
