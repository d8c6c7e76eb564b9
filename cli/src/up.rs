//! `titus up`: the whole system in one process on one machine. The embedded API server (with
//! Titus admission), the Titus CRDs, the operator, the scheduler, one node agent (containerd
//! under the data directory, or simulated) and the gateway, each the same library `titus
//! <component>` runs, talking to each other only through the API server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use titus_agent_shim::node::{NodeCapacity, NodeConfig};
use titus_agent_shim::simulated::SimulatedConfig;
use titus_agent_shim::titus_env::HostFacts;
use titus_agent_shim::{AgentConfig, ContainerdSource, RuntimeConfig};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::apiserver::ServeArgs;

/// How long the components get to stop after Ctrl-C before the API server goes.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// What runs the node's containers.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpRuntime {
    /// Real containers through a private containerd under the data directory.
    Containerd,
    /// No containers: tasks run and finish on the Titus mock-agent timings.
    Simulated,
}

/// Flags of `titus up`.
#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// What runs the containers of the node agent.
    #[arg(long, value_enum, default_value = "containerd")]
    pub runtime: UpRuntime,
    /// Use this containerd socket instead of starting a private containerd.
    #[arg(long)]
    pub containerd_socket: Option<PathBuf>,
    /// containerd namespace of the agent's images and containers.
    #[arg(long, default_value = "titus")]
    pub containerd_namespace: String,
    /// Name of the node the agent registers.
    #[arg(long, default_value = "titus-node-1")]
    pub node_name: String,
    /// CPUs the node offers (default: this machine's).
    #[arg(long)]
    pub node_cpu: Option<f64>,
    /// Memory the node offers, MiB (default: this machine's).
    #[arg(long)]
    pub node_memory_mb: Option<u64>,
    /// Titus gRPC API (JobManagementService) address.
    #[arg(long, default_value = "127.0.0.1:7104")]
    pub grpc_bind: SocketAddr,
    /// Titus v3 REST API address.
    #[arg(long, default_value = "127.0.0.1:7001")]
    pub rest_bind: SocketAddr,
    /// Namespace of the jobs the gateway serves.
    #[arg(long, default_value = "default")]
    pub namespace: String,
}

/// A component's name and outcome.
type Outcome = (&'static str, anyhow::Result<()>);

/// Runs everything until Ctrl-C/SIGTERM or until a component fails.
///
/// # Errors
/// A component that cannot start or that stops on its own.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.serve.data_dir)
        .with_context(|| format!("creating {}", args.serve.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&args.serve.data_dir)
        .with_context(|| format!("resolving {}", args.serve.data_dir.display()))?;
    let (apiserver, kubeconfig) = crate::apiserver::start(&args.serve).await?;
    let client = titus_runtime::client(Some(&kubeconfig))
        .await
        .context("connecting to the embedded API server")?;
    titus_operator::install_crds(&client, Duration::from_secs(30))
        .await
        .context("installing the Titus CRDs")?;

    let stop = CancellationToken::new();
    let mut components: JoinSet<Outcome> = JoinSet::new();
    let stopped = |stop: &CancellationToken| stop.clone().cancelled_owned();

    let operator = titus_operator::OperatorConfig::default();
    let (c, s) = (client.clone(), stopped(&stop));
    components.spawn(async move {
        let result = titus_operator::run(operator, c, s).await;
        ("operator", result.context("the operator"))
    });

    let (c, s) = (client.clone(), stopped(&stop));
    components.spawn(async move {
        let result =
            titus_scheduler::kube::run(titus_scheduler::kube::SchedulerConfig::default(), c, s)
                .await;
        ("scheduler", result.context("the scheduler"))
    });

    let agent = agent_config(&args, &data_dir, &kubeconfig)?;
    let (c, s) = (client.clone(), stopped(&stop));
    components.spawn(async move {
        let result = titus_agent_shim::run(agent, c, s).await;
        let hint = "the node agent (`--runtime simulated` runs one without containerd)";
        ("agent", result.context(hint))
    });

    let gateway = titus_gateway::GatewayConfig {
        grpc_bind: args.grpc_bind,
        rest_bind: args.rest_bind,
        namespace: args.namespace.clone(),
        ..titus_gateway::GatewayConfig::default()
    };
    let (c, s) = (client.clone(), stopped(&stop));
    components.spawn(async move {
        let result = titus_gateway::run(gateway, c, s).await;
        ("gateway", result.context("the gateway"))
    });

    print_welcome(&apiserver.url(), &kubeconfig, &args);

    let first_end = tokio::select! {
        () = titus_runtime::shutdown_signal() => None,
        ended = components.join_next() => ended,
    };
    let result = match first_end {
        None => Ok(()),
        Some(Ok((name, Ok(())))) => Err(anyhow::anyhow!("the {name} stopped unexpectedly")),
        Some(Ok((_, Err(e)))) => Err(e),
        Some(Err(e)) => Err(anyhow::Error::new(e).context("a component panicked")),
    };
    if let Err(e) = &result {
        eprintln!("titus up: {e:#}");
    }
    println!("shutting down");
    stop.cancel();
    drain(&mut components, STOP_GRACE).await;
    apiserver.stop().await;
    result
}

/// Waits for every component to stop, reporting failures, up to `grace`.
async fn drain(components: &mut JoinSet<Outcome>, grace: Duration) {
    let all = async {
        while let Some(ended) = components.join_next().await {
            match ended {
                Ok((_, Ok(()))) => {}
                Ok((name, Err(e))) => eprintln!("titus up: {name} stopped with: {e:#}"),
                Err(e) => eprintln!("titus up: a component panicked: {e}"),
            }
        }
    };
    if tokio::time::timeout(grace, all).await.is_err() {
        eprintln!("titus up: components still stopping after {grace:?}; leaving them");
        components.abort_all();
    }
}

fn agent_config(args: &UpArgs, data_dir: &Path, kubeconfig: &Path) -> anyhow::Result<AgentConfig> {
    let agent_dir = data_dir.join("agent");
    let machine = NodeCapacity::of_this_machine(100_000, 10_000, 110);
    let capacity = NodeCapacity {
        cpu: args.node_cpu.unwrap_or(machine.cpu),
        memory_mb: args.node_memory_mb.unwrap_or(machine.memory_mb),
        ..machine
    };
    let runtime = match args.runtime {
        UpRuntime::Containerd => RuntimeConfig::Containerd {
            source: match &args.containerd_socket {
                Some(socket) => ContainerdSource::Socket(socket.clone()),
                None => ContainerdSource::Private(agent_dir.join("containerd")),
            },
            namespace: args.containerd_namespace.clone(),
            plain_http_registries: Vec::new(),
            imports: Vec::new(),
            // The examples run localhost:5000/titus/busybox:1, built here without a registry.
            demo_image: true,
            log_driver: Some(crate::agent::log_driver()?),
        },
        UpRuntime::Simulated => RuntimeConfig::Simulated {
            nodes: 1,
            config: SimulatedConfig::default(),
        },
    };
    Ok(AgentConfig {
        node: NodeConfig::named(args.node_name.clone(), capacity),
        runtime,
        data_dir: agent_dir,
        log_bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        advertise_ip: None,
        log_token: crate::agent::kubeconfig_token(kubeconfig)?,
        host: HostFacts::from_host_env(std::env::vars()),
        resync: Duration::from_secs(30),
        deregister_on_shutdown: None,
    })
}

fn print_welcome(url: &str, kubeconfig: &Path, args: &UpArgs) {
    println!("titus is up");
    println!("  API server        {url}");
    println!("  Titus gRPC API    {}", args.grpc_bind);
    println!("  Titus REST API    http://{}/api/v3/jobs", args.rest_bind);
    println!(
        "  node              {} ({:?} runtime)",
        args.node_name, args.runtime
    );
    println!();
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  kubectl apply -f examples/batch-job.yaml");
    println!("  kubectl get titusjobs,titustasks,pods");
    println!();
    println!("Ctrl-C stops everything; running it again with the same --data-dir resumes.");
}
