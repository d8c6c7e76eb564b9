//! The `titus` command: runs the components of this Titus reimplementation, alone or together.
//!
//! - `titus up` runs everything on one machine on an embedded API server;
//! - `titus apiserver` runs only the embedded Kubernetes-compatible API server;
//! - `titus operator` runs the job and task controllers against any Kubernetes API;
//! - `titus scheduler` runs the Titus scheduler against any Kubernetes API;
//! - `titus agent` runs the node agent against any Kubernetes API;
//! - `titus gateway` runs the Titus gRPC/REST gateway against any Kubernetes API;
//! - `titus crds` prints the CustomResourceDefinitions.
//!
//! Each subcommand lives in its own module and only wires library crates together.

mod agent;
mod apiserver;
mod crds;
mod gateway;
mod operator;
mod scheduler;
mod up;

use anyhow::Context;
use clap::{Parser, Subcommand};

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
    Up(Box<up::UpArgs>),
    /// Run only the embedded Kubernetes-compatible API server.
    Apiserver(apiserver::ServeArgs),
    /// Run the job and task controllers against a Kubernetes API.
    Operator(Box<operator::OperatorArgs>),
    /// Run the Titus scheduler against a Kubernetes API (and optionally a Mesos master).
    Scheduler(scheduler::SchedulerArgs),
    /// Run the node agent: register a Node and run the Pods bound to it.
    Agent(Box<agent::AgentArgs>),
    /// Run the Titus v3 gRPC and REST gateway against a Kubernetes API.
    Gateway(Box<gateway::GatewayArgs>),
    /// Print the CustomResourceDefinitions of the Titus kinds as YAML.
    Crds,
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
            Command::Up(args) => up::run(*args).await,
            Command::Apiserver(args) => apiserver::run(args).await,
            Command::Operator(args) => operator::run(*args).await,
            Command::Scheduler(args) => scheduler::run(args).await,
            Command::Agent(args) => agent::run(*args).await,
            Command::Gateway(args) => gateway::run(*args).await,
            Command::Crds => crds::run(),
        }
    })
}
