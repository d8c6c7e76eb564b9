//! `titus apiserver`: the embedded Kubernetes-compatible API server alone.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

/// Flags shared by `titus apiserver` and `titus up`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Directory for stored objects, certificates and the kubeconfig.
    #[arg(long, default_value = ".titus")]
    pub data_dir: PathBuf,
    /// Address the API server listens on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub bind: SocketAddr,
    /// Acknowledge writes without fsync (faster, loses recent writes on power failure).
    #[arg(long)]
    pub no_fsync: bool,
    /// Refuse invalid TitusJobs at the door with Titus's sanitize-then-validate admission.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub titus_admission: bool,
}

/// Starts the API server and writes `<data-dir>/kubeconfig`.
///
/// # Errors
/// Startup failures.
pub async fn start(
    args: &ServeArgs,
) -> anyhow::Result<(titus_apiserver::RunningApiServer, PathBuf)> {
    let running = titus_apiserver::start(titus_apiserver::ApiServerConfig {
        data_dir: Some(args.data_dir.clone()),
        bind: args.bind,
        fsync: !args.no_fsync,
        extra_sans: Vec::new(),
    })
    .await
    .context("starting the API server")?;
    if args.titus_admission {
        crate::operator::register_admission(&running);
    }
    let kubeconfig_path = args.data_dir.join("kubeconfig");
    std::fs::write(&kubeconfig_path, running.kubeconfig())
        .with_context(|| format!("writing {}", kubeconfig_path.display()))?;
    let absolute = std::fs::canonicalize(&kubeconfig_path).unwrap_or(kubeconfig_path);
    Ok((running, absolute))
}

/// Runs the API server until Ctrl-C.
///
/// # Errors
/// Startup failures.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let (running, kubeconfig) = start(&args).await?;
    println!("titus API server listening on {}", running.url());
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  kubectl get namespaces");
    titus_runtime::shutdown_signal().await;
    println!("shutting down");
    running.stop().await;
    Ok(())
}
