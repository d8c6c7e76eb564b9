//! An embedded API server with Titus admission, the CRDs, the operator and the pod driver, all
//! in this process; plus waiting on conditions with deadlines.

#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use kube::Api;
use kube::api::PostParams;
use titus_crds::{TitusJob, TitusJobSpec, TitusTask};
use titus_operator::testing::{Behavior, BehaviorFn, DriverConfig, PodDriver, PodInfo};
use titus_operator::{OperatorConfig, run};

/// Everything a controller test needs.
pub struct Env {
    pub client: kube::Client,
    pub driver: Option<PodDriver>,
    pub server: titus_apiserver::RunningApiServer,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    operator: Option<tokio::task::JoinHandle<()>>,
}

/// Operator settings for tests: quick liveness checks.
pub fn test_config() -> OperatorConfig {
    OperatorConfig {
        liveness_tick: Duration::from_millis(200),
        ..OperatorConfig::default()
    }
}

/// Starts the API server (with Titus admission), installs the CRDs, starts the pod driver with
/// `nodes` nodes and `behavior`, and the operator with `config`.
pub async fn start(
    config: OperatorConfig,
    nodes: usize,
    behavior: BehaviorFn,
) -> anyhow::Result<Env> {
    start_with(config, DriverConfig::fleet(nodes), behavior).await
}

/// As [`start`], with a driver configuration.
pub async fn start_with(
    config: OperatorConfig,
    driver: DriverConfig,
    behavior: BehaviorFn,
) -> anyhow::Result<Env> {
    let server = titus_apiserver::start(titus_apiserver::ApiServerConfig {
        data_dir: None,
        bind: "127.0.0.1:0".parse()?,
        fsync: false,
        extra_sans: vec![],
    })
    .await?;
    titus_operator::register(&server.server, titus_crds::AdmissionConfig::default());
    let client = titus_runtime::client_from_yaml(&server.kubeconfig()).await?;
    titus_operator::install_crds(&client, Duration::from_secs(30)).await?;
    let driver = PodDriver::start(client.clone(), driver, behavior).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn({
        let client = client.clone();
        async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(error) = run(config, client, shutdown).await {
                panic!("operator failed: {error}");
            }
        }
    });
    Ok(Env {
        client,
        driver: Some(driver),
        server,
        stop: Some(stop),
        operator: Some(operator),
    })
}

impl Env {
    pub fn jobs(&self) -> Api<TitusJob> {
        Api::namespaced(self.client.clone(), "default")
    }

    pub fn tasks(&self) -> Api<TitusTask> {
        Api::namespaced(self.client.clone(), "default")
    }

    pub fn driver(&self) -> &PodDriver {
        self.driver.as_ref().expect("driver running")
    }

    /// Creates a job named `name`.
    pub async fn create_job(&self, name: &str, spec: TitusJobSpec) -> anyhow::Result<TitusJob> {
        Ok(self
            .jobs()
            .create(&PostParams::default(), &TitusJob::new(name, spec))
            .await?)
    }

    /// The tasks of job `name`.
    pub async fn job_tasks(&self, name: &str) -> anyhow::Result<Vec<TitusTask>> {
        let list = self
            .tasks()
            .list(&kube::api::ListParams::default().labels(&format!("titus.dev/job-name={name}")))
            .await?;
        Ok(list.items)
    }

    /// Stops the operator and the driver.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(op) = self.operator.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), op).await;
        }
        if let Some(driver) = self.driver.take() {
            driver.stop().await;
        }
    }
}

/// A behavior from a closure.
pub fn behavior(f: impl Fn(&PodInfo) -> Behavior + Send + Sync + 'static) -> BehaviorFn {
    Arc::new(f)
}

/// Polls `check` until it yields `Some`, failing after `timeout` with `what` in the message.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        // Waiting on a condition with a deadline, not sleeping to synchronise.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the job `name` reports `state`.
pub async fn wait_job_state(
    env: &Env,
    name: &str,
    state: &str,
    timeout: Duration,
) -> anyhow::Result<TitusJob> {
    wait_for(&format!("job {name} to be {state}"), timeout, || async {
        let job = env.jobs().get_opt(name).await.context("reading the job")?;
        Ok(job.filter(|j| j.status.as_ref().is_some_and(|s| s.state.as_str() == state)))
    })
    .await
}
