//! The Titus v3 gateway: existing Titus gRPC and REST clients, unchanged, in front of `TitusJob`
//! and `TitusTask` custom resources.
//!
//! * gRPC: every `com.netflix.titus.JobManagementService` RPC ([`grpc`]), from this project's own
//!   wire-compatible protos ([`pb`], `gateway/proto/`), plus gRPC health and server reflection.
//! * REST: Titus's `/api/v3` endpoints ([`rest`]) with Titus's JSON.
//! * Writes go to the Kubernetes API through the job service ([`jobs`]): sanitized and validated
//!   by the shared `titus-crds` admission, decided by pure plans ([`jobs::plan`]).
//! * Reads and streams come from an in-memory cache fed by watchers ([`cache`]); queries,
//!   projections and pages follow Titus ([`query`]); streams in [`observe`].
//! * [`translate`] maps `JobDescriptor` <-> `TitusJobSpec` and `TitusJob`/`TitusTask` ->
//!   `Job`/`Task`; [`error`] maps every failure to Titus's status codes and messages once.
//!
//! Start it with [`start`] (returns the bound addresses, for tests and `titus up`) or [`run`]
//! (until a shutdown future completes).

pub mod cache;
pub mod call;
pub mod config;
pub mod error;
pub mod grpc;
pub mod jobs;
pub mod observe;
pub mod pb;
pub mod query;
pub mod rest;
pub mod server;
pub mod translate;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{DEFAULT_GRPC_PORT, DEFAULT_REST_PORT, GatewayConfig, TlsConfig};
pub use error::ApiError;

use cache::Cache;
use grpc::GrpcService;
use jobs::{JobService, Settings};
use pb::job_management_service_server::JobManagementServiceServer;

/// Why a gateway could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// An address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The TLS material is unusable.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The reflection service could not be built.
    #[error("gRPC reflection: {0}")]
    Reflection(String),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Serve(String),
}

/// A running gateway.
#[derive(Debug)]
pub struct RunningGateway {
    /// Where gRPC listens.
    pub grpc_addr: SocketAddr,
    /// Where REST listens.
    pub rest_addr: SocketAddr,
    /// The job service (cache included), for in-process use.
    pub jobs: Arc<JobService>,
    shutdown: watch::Sender<bool>,
    grpc: JoinHandle<Result<(), GatewayError>>,
    rest: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
}

impl RunningGateway {
    /// Stops both servers and the watchers.
    pub async fn stop(self) {
        self.jobs.cache().close();
        let _ = self.shutdown.send(true);
        for task in &self.background {
            task.abort();
        }
        // Graceful shutdown waits for open calls; streams end on `close`, and a stuck call is
        // cut off after a grace period.
        let grace = std::time::Duration::from_secs(5);
        let grpc_abort = self.grpc.abort_handle();
        if tokio::time::timeout(grace, self.grpc).await.is_err() {
            grpc_abort.abort();
        }
        let rest_abort = self.rest.abort_handle();
        if tokio::time::timeout(grace, self.rest).await.is_err() {
            rest_abort.abort();
        }
    }

    /// Waits until a server stops on its own (an error), returning it.
    pub async fn wait(&mut self) -> Result<(), GatewayError> {
        tokio::select! {
            grpc = &mut self.grpc => grpc.unwrap_or_else(|e| Err(GatewayError::Serve(e.to_string()))),
            rest = &mut self.rest => rest.map_err(|e| GatewayError::Serve(e.to_string())),
        }
    }
}

/// Binds both servers, starts the cache watchers and serves until [`RunningGateway::stop`].
///
/// # Errors
/// Bind and TLS errors.
pub async fn start(
    config: GatewayConfig,
    client: kube::Client,
) -> Result<RunningGateway, GatewayError> {
    let grpc_listener = server::bind(config.grpc_bind).await?;
    let rest_listener = server::bind(config.rest_bind).await?;
    let grpc_addr = local_addr(&grpc_listener, config.grpc_bind)?;
    let rest_addr = local_addr(&rest_listener, config.rest_bind)?;
    let rest_tls = config.tls.as_ref().map(server::rest_tls).transpose()?;

    let cache = Arc::new(Cache::new(config.change_buffer));
    let mut background =
        cache::watch::spawn_watchers(cache.clone(), client.clone(), &config.namespace);
    let jobs = Arc::new(JobService::new(
        client,
        &config.namespace,
        cache.clone(),
        Settings {
            admission: config.admission.clone(),
            max_active_jobs: config.max_active_jobs,
            cache_sync_timeout: config.cache_sync_timeout,
            write_visibility_timeout: config.write_visibility_timeout,
        },
    ));

    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_not_serving::<JobManagementServiceServer<GrpcService>>()
        .await;
    reporter
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    let ready_cache = cache.clone();
    background.push(tokio::spawn(async move {
        ready_cache
            .wait_until(std::time::Duration::MAX, |v| v.is_synced())
            .await;
        reporter
            .set_serving::<JobManagementServiceServer<GrpcService>>()
            .await;
        reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        tracing::info!("job cache synced; serving");
    }));

    let (shutdown, signal) = watch::channel(false);
    let mut grpc_signal = signal.clone();
    let grpc_service = GrpcService::new(jobs.clone());
    let tls = config.tls.clone();
    let grpc = tokio::spawn(async move {
        let stop = async move {
            let _ = grpc_signal.wait_for(|stop| *stop).await;
        };
        server::serve_grpc(grpc_listener, tls.as_ref(), grpc_service, health, stop).await
    });
    let rest = tokio::spawn(server::serve_rest(
        rest_listener,
        rest_tls,
        rest::router(jobs.clone()),
        signal,
    ));
    tracing::info!(%grpc_addr, %rest_addr, namespace = %config.namespace, "Titus gateway listening");
    Ok(RunningGateway {
        grpc_addr,
        rest_addr,
        jobs,
        shutdown,
        grpc,
        rest,
        background,
    })
}

/// Runs a gateway until `shutdown` completes (or a server fails).
///
/// # Errors
/// Startup errors, or the error a server stopped with.
pub async fn run(
    config: GatewayConfig,
    client: kube::Client,
    shutdown: impl Future<Output = ()>,
) -> Result<(), GatewayError> {
    let mut gateway = start(config, client).await?;
    let result = tokio::select! {
        () = shutdown => Ok(()),
        failed = gateway.wait() => failed,
    };
    gateway.stop().await;
    result
}

fn local_addr(
    listener: &tokio::net::TcpListener,
    requested: SocketAddr,
) -> Result<SocketAddr, GatewayError> {
    listener.local_addr().map_err(|source| GatewayError::Bind {
        addr: requested,
        source,
    })
}
