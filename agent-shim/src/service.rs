//! The agent as a component: [`run`] starts the log endpoint, the runtime (containerd, possibly
//! a private one, or the simulated runtime for one or many nodes), registers the node(s), runs the
//! Pods bound to them until `shutdown`, and then either leaves the containers running for the
//! next agent or deregisters the node(s) gracefully. `titus agent` and `titus up` both call it.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::containerd::daemon::{DaemonError, PrivateContainerd};
use crate::containerd::demo_image::{self, BUSYBOX, DEMO_IMAGE, DemoImageError};
use crate::containerd::{ContainerdConfig, ContainerdRuntime, LogDriver};
use crate::logs::{self, LogIndex};
use crate::node::{Fleet, NodeAgent, NodeAgentConfig, NodeConfig, NodeError};
use crate::runtime::{ContainerRuntime, RuntimeError};
use crate::simulated::{SimulatedConfig, SimulatedRuntime};
use crate::titus_env::HostFacts;

/// How many simulated nodes register at once.
const PARALLEL_REGISTRATIONS: usize = 32;

/// Where the agent's containerd is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerdSource {
    /// A running containerd's socket.
    Socket(PathBuf),
    /// A private containerd with root, state and socket under this directory, started by the
    /// agent (or found still running from an earlier agent).
    Private(PathBuf),
}

/// An image to import into containerd at start, from an OCI image layout directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageImport {
    /// The layout directory (with `index.json` and `blobs/`).
    pub layout: PathBuf,
    /// The reference Pods use for it.
    pub reference: String,
}

/// The runtime Pods run through.
#[derive(Debug, Clone)]
pub enum RuntimeConfig {
    /// Real containers.
    Containerd {
        /// Which containerd.
        source: ContainerdSource,
        /// containerd namespace of the agent's images and containers.
        namespace: String,
        /// Registries spoken to over plain HTTP (loopback ones always are).
        plain_http_registries: Vec<String>,
        /// Images to import before the node registers.
        imports: Vec<ImageImport>,
        /// Build the demo image ([`DEMO_IMAGE`]) from this machine's busybox and import it.
        demo_image: bool,
        /// The log driver containerd runs next to each container (times and interleaved
        /// output for `kubectl logs`); `None`: plain files.
        log_driver: Option<LogDriver>,
    },
    /// No containers: timings from the mock-agent annotations. With `nodes > 1`, that many
    /// nodes named `<name>-<i>` register from one process.
    Simulated {
        /// How many nodes.
        nodes: usize,
        /// Behaviour of the simulated containers.
        config: SimulatedConfig,
    },
}

/// Configuration of [`run`].
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The node (for many simulated nodes, the template: names get `-<i>`). Its `internal_ip`
    /// and `daemon_port` are set by [`run`] from the log endpoint.
    pub node: NodeConfig,
    /// The runtime.
    pub runtime: RuntimeConfig,
    /// Container logs go to `<data_dir>/logs`.
    pub data_dir: PathBuf,
    /// Where the log endpoint listens (port 0: any free port).
    pub log_bind: SocketAddr,
    /// The address the API server reaches the log endpoint at; the bind address when it is not
    /// a wildcard, else 127.0.0.1.
    pub advertise_ip: Option<IpAddr>,
    /// Bearer token every log request must carry (the one the API server sends).
    pub log_token: Option<String>,
    /// Host facts for the container environment.
    pub host: HostFacts,
    /// How often every Pod and container is reconciled even without events.
    pub resync: Duration,
    /// On shutdown: `Some(drain timeout)` deregisters the node(s) gracefully; `None` leaves the
    /// containers running for the next agent to re-adopt.
    pub deregister_on_shutdown: Option<Duration>,
}

/// Why the agent stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A configured path cannot be made absolute.
    #[error("cannot resolve {path}")]
    Path {
        /// The path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The log endpoint could not listen.
    #[error("cannot listen on {addr} for the log endpoint")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The private containerd could not be started.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// The runtime failed (connecting to containerd, importing an image).
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The demo image could not be built.
    #[error(transparent)]
    DemoImage(#[from] DemoImageError),
    /// A Kubernetes API step failed (registration, deregistration).
    #[error(transparent)]
    Node(#[from] NodeError),
}

/// Runs the agent until `shutdown` resolves.
///
/// # Errors
/// [`AgentError`] when the agent cannot start or cannot deregister.
pub async fn run(
    mut config: AgentConfig,
    client: kube::Client,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    // containerd's shims and the log driver run in other directories: paths must be absolute.
    config.data_dir = absolute(&config.data_dir)?;
    if let RuntimeConfig::Containerd {
        source: ContainerdSource::Private(dir),
        ..
    } = &mut config.runtime
    {
        *dir = absolute(dir)?;
    }
    let listener = tokio::net::TcpListener::bind(config.log_bind)
        .await
        .map_err(|source| AgentError::Bind {
            addr: config.log_bind,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| AgentError::Bind {
        addr: config.log_bind,
        source,
    })?;
    config.node.internal_ip = config
        .advertise_ip
        .unwrap_or(if bound.ip().is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            bound.ip()
        });
    config.node.daemon_port = bound.port();
    let index = Arc::new(LogIndex::default());
    let (stop_logs, logs_stopped) = tokio::sync::oneshot::channel::<()>();
    let log_server = tokio::spawn(logs::serve(
        listener,
        index.clone(),
        config.log_token.clone(),
        async {
            let _ = logs_stopped.await;
        },
    ));
    tracing::info!(node = %config.node.name, log_endpoint = %bound, "agent starting");
    let result = match config.runtime.clone() {
        RuntimeConfig::Containerd {
            source,
            namespace,
            plain_http_registries,
            mut imports,
            demo_image,
            log_driver,
        } => {
            if demo_image {
                let layout = config.data_dir.join("demo-image");
                demo_image::write_busybox_layout(std::path::Path::new(BUSYBOX), &layout)?;
                imports.push(ImageImport {
                    layout,
                    reference: DEMO_IMAGE.to_owned(),
                });
            }
            let containerd = ContainerdSetup {
                source,
                namespace,
                plain_http_registries,
                imports,
                log_driver,
            };
            run_containerd(&config, containerd, client, index, shutdown).await
        }
        RuntimeConfig::Simulated {
            nodes,
            config: simulated,
        } => run_simulated(&config, nodes, simulated, client, index, shutdown).await,
    };
    let _ = stop_logs.send(());
    let _ = log_server.await;
    result
}

fn absolute(path: &std::path::Path) -> Result<PathBuf, AgentError> {
    std::path::absolute(path).map_err(|source| AgentError::Path {
        path: path.to_owned(),
        source,
    })
}

struct ContainerdSetup {
    source: ContainerdSource,
    namespace: String,
    plain_http_registries: Vec<String>,
    imports: Vec<ImageImport>,
    log_driver: Option<LogDriver>,
}

fn node_agent_config(config: &AgentConfig, node: NodeConfig, oci_runtime: &str) -> NodeAgentConfig {
    NodeAgentConfig {
        node,
        log_dir: config.data_dir.join("logs"),
        host: config.host.clone(),
        oci_runtime: oci_runtime.into(),
        resync: config.resync,
    }
}

async fn run_containerd(
    config: &AgentConfig,
    setup: ContainerdSetup,
    client: kube::Client,
    index: Arc<LogIndex>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let (socket, daemon) = match &setup.source {
        ContainerdSource::Socket(socket) => (socket.clone(), None),
        ContainerdSource::Private(dir) => {
            let daemon = PrivateContainerd::start_or_reuse(dir).await?;
            (daemon.socket().to_owned(), Some(daemon))
        }
    };
    let result = async {
        let runtime = ContainerdRuntime::connect(ContainerdConfig {
            socket,
            namespace: setup.namespace.clone(),
            cgroup_parent: format!("/titus/{}", config.node.name),
            plain_http_registries: setup.plain_http_registries.clone(),
            log_driver: setup.log_driver.clone(),
            ..ContainerdConfig::default()
        })
        .await?;
        for import in &setup.imports {
            let info = runtime
                .import_oci_layout(&import.layout, &import.reference)
                .await?;
            tracing::info!(image = %import.reference, digest = %info.digest, "imported image");
        }
        let agent_config = node_agent_config(config, config.node.clone(), "runc");
        let agent = NodeAgent::start(client, Arc::new(runtime), agent_config, index).await?;
        let watch = tokio::spawn(agent.clone().watch_pods());
        shutdown.await;
        let result = finish(&[agent], config.deregister_on_shutdown).await;
        watch.abort();
        result
    }
    .await;
    if let Some(daemon) = daemon {
        daemon.stop();
    }
    result
}

async fn run_simulated(
    config: &AgentConfig,
    nodes: usize,
    simulated: SimulatedConfig,
    client: kube::Client,
    index: Arc<LogIndex>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let configs: Vec<NodeAgentConfig> = (0..nodes.max(1))
        .map(|i| {
            let mut node = config.node.clone();
            if nodes > 1 {
                node.name = format!("{}-{i}", config.node.name);
            }
            node_agent_config(config, node, "simulated")
        })
        .collect();
    let simulated = SimulatedConfig {
        epoch: jiff::Timestamp::now(),
        ..simulated
    };
    let fleet = Fleet::start(
        client,
        configs,
        |_| Arc::new(SimulatedRuntime::new(simulated.clone())),
        index,
        PARALLEL_REGISTRATIONS,
    )
    .await?;
    tracing::info!(nodes = fleet.len(), "simulated nodes registered");
    let fleet = Arc::new(fleet);
    let watch = tokio::spawn({
        let fleet = fleet.clone();
        async move { fleet.watch_pods().await }
    });
    shutdown.await;
    let agents: Vec<_> = fleet.agents().cloned().collect();
    let result = finish(&agents, config.deregister_on_shutdown).await;
    watch.abort();
    result
}

/// Deregisters the nodes (in parallel) or just stops their loops.
async fn finish<R: ContainerRuntime>(
    agents: &[Arc<NodeAgent<R>>],
    deregister: Option<Duration>,
) -> Result<(), AgentError> {
    match deregister {
        Some(drain) => {
            let results =
                futures::future::join_all(agents.iter().map(|a| a.deregister(drain))).await;
            results.into_iter().collect::<Result<Vec<()>, _>>()?;
        }
        None => {
            for agent in agents {
                agent.shutdown();
            }
        }
    }
    Ok(())
}
