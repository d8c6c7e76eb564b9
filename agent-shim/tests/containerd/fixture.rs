//! One private registry + containerd + runtime per test, and helpers to run containers.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use titus_agent_shim::containerd::{ContainerdConfig, ContainerdRuntime};
use titus_agent_shim::process::resolve_process;
use titus_agent_shim::testsupport::{FixtureError, TestContainerd, TestImages, TestRegistry};
use titus_agent_shim::{
    ContainerId, ContainerRuntime, ContainerSpec, ExitStatus, ImageInfo, LogPaths, RegistryAuth,
    Resources,
};

/// A per-test world. Field order is teardown order: runtime, containerd, registry.
pub struct Env {
    pub runtime: ContainerdRuntime,
    pub images: TestImages,
    pub containerd: TestContainerd,
    pub registry: TestRegistry,
}

impl Env {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(TestRegistry::start, |_| {}).await
    }

    /// A world whose registry `registry` starts and whose runtime configuration `configure`
    /// adjusts.
    pub async fn start_with(
        registry: impl FnOnce() -> Result<TestRegistry, FixtureError> + Send + 'static,
        configure: impl FnOnce(&mut ContainerdConfig),
    ) -> anyhow::Result<Self> {
        let (registry, images, containerd) = tokio::task::spawn_blocking(move || {
            let registry = registry().context("starting the test registry")?;
            let images = registry
                .push_test_images()
                .context("pushing the test images")?;
            let containerd = TestContainerd::start().context("starting containerd")?;
            anyhow::Ok((registry, images, containerd))
        })
        .await??;
        let mut config = containerd.runtime_config();
        configure(&mut config);
        let runtime = ContainerdRuntime::connect(config).await?;
        Ok(Self {
            runtime,
            images,
            containerd,
            registry,
        })
    }

    /// Simulates an agent restart: the runtime client (and its waiters) is dropped and a new one
    /// connects to the same containerd.
    pub async fn restart_agent(&mut self) -> anyhow::Result<()> {
        let config = self.containerd.runtime_config();
        drop(std::mem::replace(
            &mut self.runtime,
            ContainerdRuntime::connect(config).await?,
        ));
        Ok(())
    }

    pub async fn pull(&self, image: &str) -> anyhow::Result<ImageInfo> {
        Ok(self.runtime.pull(image, &RegistryAuth::Anonymous).await?)
    }

    /// A spec for `image` with entryPoint/command resolved by the Docker rules.
    pub async fn spec(
        &self,
        id: &str,
        image: &str,
        entry_point: &[&str],
        command: &[&str],
    ) -> anyhow::Result<ContainerSpec> {
        self.spec_with_env(id, image, entry_point, command, BTreeMap::new())
            .await
    }

    pub async fn spec_with_env(
        &self,
        id: &str,
        image: &str,
        entry_point: &[&str],
        command: &[&str],
        env: BTreeMap<String, String>,
    ) -> anyhow::Result<ContainerSpec> {
        let info = self.pull(image).await?;
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let process =
            resolve_process(&info.config, &owned(entry_point), &owned(command), &env, "")?;
        let id = ContainerId::new(id)?;
        Ok(ContainerSpec {
            logs: LogPaths::in_dir(&self.containerd.log_dir(), &id),
            id,
            image: image.to_owned(),
            process,
            resources: Resources::default(),
            hostname: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        })
    }

    /// Creates, starts and waits (at most `limit`) for `spec`.
    pub async fn run_to_exit(&self, spec: &ContainerSpec) -> anyhow::Result<ExitStatus> {
        self.runtime.create_and_start(spec).await?;
        let exit = tokio::time::timeout(Duration::from_secs(60), self.runtime.wait(&spec.id))
            .await
            .context("container did not exit within 60 s")??;
        Ok(exit)
    }

    /// Runs `spec` to its exit, removes it and returns its exit and stdout.
    pub async fn run_and_remove(
        &self,
        spec: &ContainerSpec,
    ) -> anyhow::Result<(ExitStatus, String)> {
        let exit = self.run_to_exit(spec).await?;
        let stdout = read(&spec.logs.stdout);
        self.runtime.remove(&spec.id).await?;
        Ok((exit, stdout))
    }
}

/// A log file's content ("" when absent).
pub fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits until `cond` holds, polling every 20 ms, failing after `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut cond: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !cond().await {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{what}: not true after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
