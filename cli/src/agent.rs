//! `titus agent`: the node agent against any Kubernetes API (the embedded one of `titus up` /
//! `titus apiserver`, or a real cluster): command-line flags become a
//! [`titus_agent_shim::AgentConfig`] for [`titus_agent_shim::run`].

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use k8s_openapi::api::core::v1::Taint;
use titus_agent_shim::containerd::LogDriver;
use titus_agent_shim::node::{NodeCapacity, NodeConfig};
use titus_agent_shim::simulated::SimulatedConfig;
use titus_agent_shim::titus_env::HostFacts;
use titus_agent_shim::{AgentConfig, ContainerdSource, ImageImport, RuntimeConfig};

/// Which runtime runs the Pods.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeKind {
    /// Real containers through containerd.
    Containerd,
    /// No containers: timings from the Titus mock-agent annotations (scale tests).
    Simulated,
}

/// Flags of `titus agent`.
#[derive(Args, Debug, Clone)]
pub struct AgentArgs {
    /// Kubeconfig of the cluster (default: $KUBECONFIG, ~/.kube/config or in-cluster).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Node name (and hostname label); `-<i>` is appended with --simulated-nodes.
    #[arg(long, required_unless_present = "log_driver")]
    node_name: Option<String>,
    /// Run as the container log driver for the log directory DIR (containerd starts
    /// `titus agent --log-driver=DIR` next to each container).
    #[arg(long, hide = true, value_name = "DIR")]
    log_driver: Option<PathBuf>,
    /// Runtime.
    #[arg(long, value_enum, default_value = "containerd")]
    runtime: RuntimeKind,
    /// Socket of a running containerd.
    #[arg(long, conflicts_with = "containerd_root")]
    containerd_socket: Option<PathBuf>,
    /// Start (or reuse) a private containerd with root, state and socket under this directory
    /// (default when no socket is given: `<data-dir>/containerd`).
    #[arg(long)]
    containerd_root: Option<PathBuf>,
    /// containerd namespace of the agent's images and containers.
    #[arg(long, default_value = "titus")]
    containerd_namespace: String,
    /// Import an image from an OCI image layout before registering: `LAYOUT_DIR:REFERENCE`
    /// (the layout image named like the reference's tag, or its only image). Repeatable.
    #[arg(long, value_name = "LAYOUT_DIR:REF")]
    import_image: Vec<String>,
    /// Build the demo image localhost:5000/titus/busybox:1 (used by examples/) from this
    /// machine's busybox (Debian busybox-static) and import it; no registry needed.
    #[arg(long)]
    demo_image: bool,
    /// Registry spoken to over plain HTTP (loopback registries always are). Repeatable.
    #[arg(long)]
    insecure_registry: Vec<String>,
    /// Directory for container logs and the private containerd.
    #[arg(long, default_value = ".titus/agent")]
    data_dir: PathBuf,
    /// Address of the log endpoint the API server proxies `kubectl logs` to (port 0: any).
    #[arg(long, default_value = "127.0.0.1:0")]
    log_bind: SocketAddr,
    /// Address advertised as the Node's InternalIP (default: the log endpoint's address).
    #[arg(long)]
    advertise_ip: Option<IpAddr>,
    /// Serve logs without requiring the kubeconfig's bearer token.
    #[arg(long)]
    no_log_auth: bool,
    /// Availability zone.
    #[arg(long, default_value = "us-east-1a")]
    zone: String,
    /// Region.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// EC2 instance type.
    #[arg(long, default_value = "m5.large")]
    instance_type: String,
    /// Instance group (ASG) label.
    #[arg(long, default_value = "titus-agents")]
    instance_group: String,
    /// Tier label and taint (`critical` or `flex`).
    #[arg(long)]
    tier: Option<String>,
    /// Extra taint `key[=value]:Effect`. Repeatable.
    #[arg(long)]
    taint: Vec<String>,
    /// Extra label `key=value`. Repeatable.
    #[arg(long)]
    label: Vec<String>,
    /// CPUs offered (default: this machine's).
    #[arg(long)]
    cpu: Option<f64>,
    /// Memory offered, MiB (default: this machine's).
    #[arg(long)]
    memory_mb: Option<u64>,
    /// Disk offered, MiB.
    #[arg(long, default_value_t = 100_000)]
    disk_mb: u64,
    /// Network bandwidth offered, Mbps.
    #[arg(long, default_value_t = 10_000)]
    network_mbps: u64,
    /// Pods the node accepts.
    #[arg(long, default_value_t = 110)]
    pods: u32,
    /// With --runtime simulated: how many nodes this process registers.
    #[arg(long, default_value_t = 1)]
    simulated_nodes: usize,
    /// On exit: cordon, let pods finish (evict them after --drain-timeout), delete the Node.
    /// Without it the containers keep running for the next agent to re-adopt.
    #[arg(long)]
    deregister_on_exit: bool,
    /// Seconds to wait for pods to finish when deregistering.
    #[arg(long, default_value_t = 60)]
    drain_timeout: u64,
}

/// `LAYOUT_DIR:REFERENCE` (split at the first colon: references carry colons themselves).
fn parse_import(spec: &str) -> anyhow::Result<ImageImport> {
    match spec.split_once(':') {
        Some((layout, reference)) if !layout.is_empty() && !reference.is_empty() => {
            Ok(ImageImport {
                layout: PathBuf::from(layout),
                reference: reference.to_owned(),
            })
        }
        _ => bail!("--import-image {spec:?}: expected LAYOUT_DIR:REFERENCE"),
    }
}

/// `key[=value]:Effect`.
fn parse_taint(spec: &str) -> anyhow::Result<Taint> {
    let Some((key_value, effect)) = spec.rsplit_once(':') else {
        bail!("--taint {spec:?}: expected key[=value]:Effect");
    };
    let (key, value) = match key_value.split_once('=') {
        Some((k, v)) => (k, Some(v.to_owned())),
        None => (key_value, None),
    };
    Ok(Taint {
        key: key.to_owned(),
        value,
        effect: effect.to_owned(),
        time_added: None,
    })
}

/// The bearer token of the kubeconfig's current user, if it has one.
pub(crate) fn kubeconfig_token(path: &Path) -> anyhow::Result<Option<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config: serde_json::Value =
        serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let current = config["current-context"].as_str().unwrap_or_default();
    let contexts = config["contexts"].as_array().cloned().unwrap_or_default();
    let user = contexts
        .iter()
        .find(|c| c["name"] == current)
        .or(contexts.first())
        .and_then(|c| c["context"]["user"].as_str())
        .unwrap_or_default();
    let users = config["users"].as_array().cloned().unwrap_or_default();
    Ok(users
        .iter()
        .find(|u| u["name"] == user)
        .and_then(|u| u["user"]["token"].as_str())
        .map(str::to_owned))
}

/// This binary as the containers' log driver (`titus agent --log-driver=DIR`).
pub(crate) fn log_driver() -> anyhow::Result<LogDriver> {
    Ok(LogDriver {
        binary: std::env::current_exe().context("locating the titus binary")?,
        subcommand: "agent".into(),
    })
}

fn config(args: &AgentArgs) -> anyhow::Result<AgentConfig> {
    let machine = NodeCapacity::of_this_machine(args.disk_mb, args.network_mbps, args.pods);
    let capacity = NodeCapacity {
        cpu: args.cpu.unwrap_or(machine.cpu),
        memory_mb: args.memory_mb.unwrap_or(machine.memory_mb),
        ..machine
    };
    let name = args.node_name.clone().context("--node-name is required")?;
    let mut node = NodeConfig::named(name, capacity);
    node.zone.clone_from(&args.zone);
    node.region.clone_from(&args.region);
    node.instance_type.clone_from(&args.instance_type);
    node.instance_group.clone_from(&args.instance_group);
    node.tier.clone_from(&args.tier);
    for taint in &args.taint {
        node.taints.push(parse_taint(taint)?);
    }
    let mut labels = BTreeMap::new();
    for label in &args.label {
        let (key, value) = label
            .split_once('=')
            .with_context(|| format!("--label {label:?}: expected key=value"))?;
        labels.insert(key.to_owned(), value.to_owned());
    }
    node.labels = labels;
    let runtime = match args.runtime {
        RuntimeKind::Containerd => RuntimeConfig::Containerd {
            source: match (&args.containerd_socket, &args.containerd_root) {
                (Some(socket), _) => ContainerdSource::Socket(socket.clone()),
                (None, Some(root)) => ContainerdSource::Private(root.clone()),
                (None, None) => ContainerdSource::Private(args.data_dir.join("containerd")),
            },
            namespace: args.containerd_namespace.clone(),
            plain_http_registries: args.insecure_registry.clone(),
            imports: args
                .import_image
                .iter()
                .map(|s| parse_import(s))
                .collect::<anyhow::Result<_>>()?,
            demo_image: args.demo_image,
            log_driver: Some(log_driver()?),
        },
        RuntimeKind::Simulated => RuntimeConfig::Simulated {
            nodes: args.simulated_nodes,
            config: SimulatedConfig::default(),
        },
    };
    let log_token = match (&args.kubeconfig, args.no_log_auth) {
        (Some(path), false) => kubeconfig_token(path)?,
        _ => None,
    };
    Ok(AgentConfig {
        node,
        runtime,
        data_dir: args.data_dir.clone(),
        log_bind: args.log_bind,
        advertise_ip: args.advertise_ip,
        log_token,
        host: HostFacts::from_host_env(std::env::vars()),
        resync: Duration::from_secs(30),
        deregister_on_shutdown: args
            .deregister_on_exit
            .then(|| Duration::from_secs(args.drain_timeout)),
    })
}

/// Runs `titus agent` until SIGINT or SIGTERM (or, with `--log-driver`, until the container's
/// output ends).
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.log_driver {
        let dir = dir.clone();
        return tokio::task::spawn_blocking(move || titus_agent_shim::logs::driver::run(&dir))
            .await?
            .context("running the log driver");
    }
    let config = config(&args)?;
    let client = titus_runtime::client(args.kubeconfig.as_deref())
        .await
        .context("connecting to the Kubernetes API")?;
    titus_agent_shim::run(config, client, titus_runtime::shutdown_signal())
        .await
        .context("running the agent")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_imports_split_at_the_first_colon() {
        let import = parse_import("/tmp/oci:localhost:5000/titus/busybox:1").unwrap();
        assert_eq!(import.layout, PathBuf::from("/tmp/oci"));
        assert_eq!(import.reference, "localhost:5000/titus/busybox:1");
        assert!(parse_import("no-reference").is_err());
        assert!(parse_import(":ref").is_err());
    }

    #[test]
    fn taints_parse_with_and_without_a_value() {
        let t = parse_taint("node.titus.netflix.com/decommissioning=true:NoSchedule").unwrap();
        assert_eq!(t.key, "node.titus.netflix.com/decommissioning");
        assert_eq!(t.value.as_deref(), Some("true"));
        assert_eq!(t.effect, "NoSchedule");
        let bare = parse_taint("gpu:NoExecute").unwrap();
        assert_eq!((bare.key.as_str(), bare.value), ("gpu", None));
        assert!(parse_taint("nothing").is_err());
    }

    #[test]
    fn the_log_token_is_the_current_users_token() {
        let dir = std::env::temp_dir().join(format!("titus-cli-kc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: admin}\nusers:\n- name: other\n  user: {token: nope}\n- name: admin\n  user: {token: s3cret}\n",
        )
        .unwrap();
        assert_eq!(kubeconfig_token(&path).unwrap().as_deref(), Some("s3cret"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
