//! Test environment: an in-process embedded API server with the Titus CRDs, a gateway in front
//! of it, a gRPC client built from the project's protos, a REST helper, and a stand-in for the
//! job and task controllers ([`lifecycle`]).

#![allow(dead_code)]

pub mod flow;
pub mod lifecycle;
pub mod random;
pub mod raw;
pub mod rest;

use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::PostParams;
use titus_gateway::pb::job_management_service_client::JobManagementServiceClient;
use titus_gateway::{GatewayConfig, RunningGateway};
use tonic::transport::Channel;

/// Caller id the test clients send.
pub const CALLER: &str = "gateway-tests";

/// A running API server + gateway.
pub struct Env {
    pub apiserver: titus_apiserver::RunningApiServer,
    pub client: kube::Client,
    pub gateway: RunningGateway,
    pub namespace: String,
}

impl Env {
    /// Starts an API server, installs the CRDs and starts a gateway on free ports.
    pub async fn start() -> anyhow::Result<Env> {
        Env::start_with(GatewayConfig::default()).await
    }

    /// Like [`Env::start`] with gateway settings (addresses are replaced by free ports).
    pub async fn start_with(mut config: GatewayConfig) -> anyhow::Result<Env> {
        let (apiserver, client) = start_apiserver().await?;
        config.grpc_bind = "127.0.0.1:0".parse()?;
        config.rest_bind = "127.0.0.1:0".parse()?;
        let namespace = config.namespace.clone();
        let gateway = titus_gateway::start(config, client.clone()).await?;
        let env = Env {
            apiserver,
            client,
            gateway,
            namespace,
        };
        env.wait_ready().await?;
        Ok(env)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let synced = self
            .gateway
            .jobs
            .cache()
            .wait_until(Duration::from_secs(30), |v| v.is_synced())
            .await;
        if !synced {
            bail!("the gateway cache did not sync within 30s");
        }
        Ok(())
    }

    /// A gRPC client of the gateway.
    pub async fn grpc(&self) -> anyhow::Result<JobManagementServiceClient<Channel>> {
        let channel = Channel::from_shared(format!("http://{}", self.gateway.grpc_addr))?
            .connect()
            .await?;
        Ok(JobManagementServiceClient::new(channel))
    }

    /// The REST base URL.
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.gateway.rest_addr)
    }

    /// The TitusJob API of the test namespace.
    pub fn jobs(&self) -> Api<titus_crds::TitusJob> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The TitusTask API of the test namespace.
    pub fn tasks(&self) -> Api<titus_crds::TitusTask> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Stops the gateway, then the API server.
    pub async fn stop(self) {
        self.gateway.stop().await;
        self.apiserver.stop().await;
    }
}

/// Starts an embedded API server with the Titus CRDs established.
pub async fn start_apiserver() -> anyhow::Result<(titus_apiserver::RunningApiServer, kube::Client)>
{
    let running = titus_apiserver::start(titus_apiserver::ApiServerConfig {
        data_dir: None,
        bind: "127.0.0.1:0".parse()?,
        fsync: false,
        extra_sans: vec![],
    })
    .await?;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&running.kubeconfig())?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let client = kube::Client::try_from(config)?;
    install_crds(&client).await?;
    Ok((running, client))
}

/// Creates the Titus CRDs and waits until they are Established.
pub async fn install_crds(client: &kube::Client) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crds = titus_crds::crd::crds();
    for crd in &crds {
        api.create(&PostParams::default(), crd)
            .await
            .with_context(|| format!("creating CRD {:?}", crd.metadata.name))?;
    }
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        wait_for(
            Duration::from_secs(20),
            &format!("CRD {name} established"),
            || {
                let api = api.clone();
                let name = name.clone();
                async move {
                    let crd = api.get(&name).await.ok()?;
                    crd.status?
                        .conditions?
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                        .then_some(())
                }
            },
        )
        .await?;
    }
    Ok(())
}

/// Polls `probe` until it returns `Some`, failing after `timeout` with `what` in the message.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A gRPC request carrying the test caller id.
pub fn request<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "x-titus-callerid",
        tonic::metadata::MetadataValue::from_static(CALLER),
    );
    request
}

/// A valid batch job descriptor of `size` tasks.
pub fn batch_descriptor(app: &str, size: u32) -> titus_gateway::pb::JobDescriptor {
    let mut spec = titus_crds::TitusJobSpec::batch(size);
    spec.application_name = app.to_string();
    titus_gateway::translate::spec_to_descriptor(&spec)
}

/// A valid service job descriptor.
pub fn service_descriptor(
    app: &str,
    min: u32,
    desired: u32,
    max: u32,
) -> titus_gateway::pb::JobDescriptor {
    let mut spec = titus_crds::TitusJobSpec::service(min, desired, max);
    spec.application_name = app.to_string();
    titus_gateway::translate::spec_to_descriptor(&spec)
}

/// The next message of a stream, failing after 20 s instead of hanging the test.
pub async fn next<T>(stream: &mut tonic::Streaming<T>) -> anyhow::Result<Option<T>> {
    match tokio::time::timeout(Duration::from_secs(20), stream.message()).await {
        Ok(message) => Ok(message?),
        Err(_) => bail!("no stream message within 20s"),
    }
}
