//! The `titus` command: runs the components of this Titus reimplementation, alone or together.
//!
//! - `titus up` runs everything on one machine on an embedded API server;
//! - `titus apiserver` runs only the embedded Kubernetes-compatible API server;
//! - `titus gateway` runs the Titus gRPC/REST gateway against any API server.

mod gateway;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "titus",
    version,
    about = "A Kubernetes-native reimplementation of Netflix Titus"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the whole system on this machine on an embedded API server.
    Up(ServeArgs),
    /// Run only the embedded Kubernetes-compatible API server.
    Apiserver(ServeArgs),
    /// Run the Titus v3 gRPC and REST gateway against a Kubernetes API server.
    Gateway(gateway::GatewayArgs),
}

#[derive(Args, Debug, Clone)]
struct ServeArgs {
    /// Directory for stored objects, certificates and the kubeconfig.
    #[arg(long, default_value = ".titus")]
    data_dir: PathBuf,
    /// Address the API server listens on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    bind: SocketAddr,
    /// Acknowledge writes without fsync (faster, loses recent writes on power failure).
    #[arg(long)]
    no_fsync: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Up(args) | Command::Apiserver(args) => run_apiserver(args).await,
            Command::Gateway(args) => gateway::run(args).await,
        }
    })
}

async fn run_apiserver(args: ServeArgs) -> anyhow::Result<()> {
    let running = titus_apiserver::start(titus_apiserver::ApiServerConfig {
        data_dir: Some(args.data_dir.clone()),
        bind: args.bind,
        fsync: !args.no_fsync,
        extra_sans: Vec::new(),
    })
    .await
    .context("starting the API server")?;
    let kubeconfig_path = args.data_dir.join("kubeconfig");
    std::fs::write(&kubeconfig_path, running.kubeconfig())
        .with_context(|| format!("writing {}", kubeconfig_path.display()))?;
    let absolute = std::fs::canonicalize(&kubeconfig_path).unwrap_or(kubeconfig_path);
    println!("titus API server listening on {}", running.url());
    println!("  export KUBECONFIG={}", absolute.display());
    println!("  kubectl get namespaces");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    println!("shutting down");
    running.stop().await;
    Ok(())
}
