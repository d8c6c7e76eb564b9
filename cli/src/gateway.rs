//! `titus gateway`: serves the Titus v3 gRPC API (`com.netflix.titus.JobManagementService`, port
//! 7104) and REST API (port 7001) in front of the `TitusJob`/`TitusTask` resources of any
//! Kubernetes API server.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use titus_gateway::{GatewayConfig, TlsConfig};

/// Flags of `titus gateway`.
#[derive(Args, Debug, Clone)]
pub struct GatewayArgs {
    /// Kubeconfig of the API server (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Namespace whose jobs the gateway serves and creates.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:7104")]
    grpc_bind: SocketAddr,
    /// REST listen address.
    #[arg(long, default_value = "127.0.0.1:7001")]
    rest_bind: SocketAddr,
    /// Server certificate (PEM); enables TLS on both ports.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA (PEM) that client certificates must chain to; clients must then present one.
    #[arg(long, requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Largest number of active jobs.
    #[arg(long, default_value_t = 20_000)]
    max_active_jobs: usize,
}

/// Runs the gateway until SIGINT or SIGTERM.
pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            TlsConfig::from_files(cert, key, args.tls_client_ca.as_deref())
                .context("reading the TLS files")?,
        ),
        _ => None,
    };
    let client = titus_runtime::client(args.kubeconfig.as_deref())
        .await
        .context("connecting to the Kubernetes API")?;
    let config = GatewayConfig {
        grpc_bind: args.grpc_bind,
        rest_bind: args.rest_bind,
        namespace: args.namespace.clone(),
        tls,
        max_active_jobs: args.max_active_jobs,
        ..GatewayConfig::default()
    };
    // SIGTERM too: that is how Kubernetes stops the gateway's pod.
    titus_gateway::run(config, client, titus_runtime::shutdown_signal())
        .await
        .context("running the gateway")
}
