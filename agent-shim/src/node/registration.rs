//! The Node this agent registers and the Lease it renews: built by pure functions from
//! [`NodeConfig`] and a time, written with server-side apply by [`register`], [`renew_lease`]
//! and [`report_node_status`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use titus_crds::constants::node as node_names;

use super::NodeError;
use crate::labels;

/// Field manager of everything the agent writes.
pub const FIELD_MANAGER: &str = "titus-agent";
/// Namespace of node heartbeat Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Taint Kubernetes puts on cordoned nodes; the agent adds it itself when it cordons.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Resources a node offers.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeCapacity {
    /// CPUs.
    pub cpu: f64,
    /// Memory, MiB.
    pub memory_mb: u64,
    /// Ephemeral storage, MiB.
    pub disk_mb: u64,
    /// Network bandwidth, Mbps (`titus/network`).
    pub network_mbps: u64,
    /// GPUs (`nvidia.com/gpu`).
    pub gpu: u32,
    /// Pods.
    pub pods: u32,
}

impl NodeCapacity {
    /// This machine's CPUs and memory (from `/proc`), with the given disk, network and pods.
    pub fn of_this_machine(disk_mb: u64, network_mbps: u64, pods: u32) -> Self {
        let cpu = std::thread::available_parallelism()
            .map(|n| n.get() as f64)
            .unwrap_or(1.0);
        let memory_mb = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map(|kb| kb / 1024)
            .unwrap_or(0);
        Self {
            cpu,
            memory_mb,
            disk_mb,
            network_mbps,
            gpu: 0,
            pods,
        }
    }

    /// As Kubernetes resource quantities.
    pub fn quantities(&self) -> BTreeMap<String, Quantity> {
        let mut q = BTreeMap::from([
            (
                "cpu".to_owned(),
                Quantity(format!("{}m", (self.cpu * 1000.0).round() as u64)),
            ),
            (
                "memory".to_owned(),
                Quantity(format!("{}Mi", self.memory_mb)),
            ),
            (
                "ephemeral-storage".to_owned(),
                Quantity(format!("{}Mi", self.disk_mb)),
            ),
            (
                "titus/network".to_owned(),
                Quantity(format!("{}M", self.network_mbps)),
            ),
            ("pods".to_owned(), Quantity(self.pods.to_string())),
        ]);
        if self.gpu > 0 {
            q.insert("nvidia.com/gpu".to_owned(), Quantity(self.gpu.to_string()));
        }
        q
    }
}

/// Who this node is.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// Node name (and hostname label).
    pub name: String,
    /// Availability zone.
    pub zone: String,
    /// Region.
    pub region: String,
    /// EC2 instance type.
    pub instance_type: String,
    /// Instance group (ASG) the node belongs to.
    pub instance_group: String,
    /// Tier (`critical` / `flex`), as a taint when set.
    pub tier: Option<String>,
    /// Resources (capacity = allocatable).
    pub capacity: NodeCapacity,
    /// Extra labels.
    pub labels: BTreeMap<String, String>,
    /// Taints besides the tier taint.
    pub taints: Vec<Taint>,
    /// Address the API server reaches the agent at (`status.addresses` InternalIP).
    pub internal_ip: IpAddr,
    /// Port of the agent's log endpoint (`status.daemonEndpoints.kubeletEndpoint.Port`).
    pub daemon_port: u16,
    /// Lease duration.
    pub lease_duration: Duration,
    /// How often the Lease is renewed.
    pub heartbeat_interval: Duration,
    /// How often the Node status (Ready condition, heartbeat time) is written again.
    pub status_interval: Duration,
}

impl NodeConfig {
    /// A node named `name` with defaults: one zone, m5.large, the Titus provider taint.
    pub fn named(name: impl Into<String>, capacity: NodeCapacity) -> Self {
        Self {
            name: name.into(),
            zone: "us-east-1a".into(),
            region: "us-east-1".into(),
            instance_type: "m5.large".into(),
            instance_group: "titus-agents".into(),
            tier: None,
            capacity,
            labels: BTreeMap::new(),
            taints: vec![Taint {
                key: node_names::TAINT_PROVIDER.into(),
                value: Some("titus".into()),
                effect: "NoSchedule".into(),
                time_added: None,
            }],
            internal_ip: IpAddr::from([127, 0, 0, 1]),
            daemon_port: 0,
            lease_duration: Duration::from_secs(40),
            heartbeat_interval: Duration::from_secs(10),
            status_interval: Duration::from_secs(60),
        }
    }
}

/// The Node's labels: Titus's (§10.5) and the well-known Kubernetes ones.
pub fn node_labels(config: &NodeConfig) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([
        (labels::NODE_HOSTNAME.to_owned(), config.name.clone()),
        ("kubernetes.io/os".to_owned(), "linux".to_owned()),
        ("kubernetes.io/arch".to_owned(), "amd64".to_owned()),
        (
            "topology.kubernetes.io/zone".to_owned(),
            config.zone.clone(),
        ),
        (
            "topology.kubernetes.io/region".to_owned(),
            config.region.clone(),
        ),
        (
            "node.kubernetes.io/instance-type".to_owned(),
            config.instance_type.clone(),
        ),
        (node_names::ZONE.to_owned(), config.zone.clone()),
        (node_names::REGION.to_owned(), config.region.clone()),
        (
            node_names::INSTANCE_TYPE.to_owned(),
            config.instance_type.clone(),
        ),
        (node_names::ID.to_owned(), config.name.clone()),
        (node_names::ASG.to_owned(), config.instance_group.clone()),
        (node_names::BACKEND.to_owned(), "titus-agent".to_owned()),
        ("type".to_owned(), "virtual-kubelet".to_owned()),
    ]);
    if let Some(tier) = &config.tier {
        // Titus uses one name for the tier label and the tier taint.
        l.insert(node_names::TAINT_TIER.to_owned(), tier.clone());
    }
    l.extend(config.labels.clone());
    l
}

/// The Node's taints: the configured ones plus the tier taint.
pub fn node_taints(config: &NodeConfig) -> Vec<Taint> {
    let mut taints = config.taints.clone();
    if let Some(tier) = &config.tier {
        taints.push(Taint {
            key: node_names::TAINT_TIER.into(),
            value: Some(tier.clone()),
            effect: "NoSchedule".into(),
            time_added: None,
        });
    }
    taints
}

/// The Node object (metadata and spec) the agent applies.
pub fn node_object(config: &NodeConfig) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            labels: Some(node_labels(config)),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: Some(node_taints(config)),
            ..NodeSpec::default()
        }),
        status: None,
    }
}

/// The cordoned Node: unschedulable, with Kubernetes' unschedulable taint.
pub fn cordoned_node_object(config: &NodeConfig) -> Node {
    let mut node = node_object(config);
    if let Some(spec) = node.spec.as_mut() {
        spec.unschedulable = Some(true);
        spec.taints.get_or_insert_with(Vec::new).push(Taint {
            key: TAINT_UNSCHEDULABLE.into(),
            value: None,
            effect: "NoSchedule".into(),
            time_added: None,
        });
    }
    node
}

/// The Node status at `now`, for an agent ready `since`: capacity = allocatable, Ready, no
/// pressure, the address and port of the agent's log endpoint.
pub fn node_status(config: &NodeConfig, since: Timestamp, now: Timestamp) -> NodeStatus {
    let condition = |type_: &str, status: &str, reason: &str, message: &str| NodeCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        last_heartbeat_time: Some(Time(now)),
        last_transition_time: Some(Time(since)),
    };
    NodeStatus {
        capacity: Some(config.capacity.quantities()),
        allocatable: Some(config.capacity.quantities()),
        conditions: Some(vec![
            condition("Ready", "True", "KubeletReady", "titus agent is ready"),
            condition(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "no memory pressure",
            ),
            condition(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "no disk pressure",
            ),
            condition(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "no PID pressure",
            ),
        ]),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: config.internal_ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: config.name.clone(),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(config.daemon_port),
            }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: "amd64".into(),
            operating_system: "linux".into(),
            kubelet_version: format!("titus-agent/{}", env!("CARGO_PKG_VERSION")),
            container_runtime_version: "containerd".into(),
            ..NodeSystemInfo::default()
        }),
        ..NodeStatus::default()
    }
}

/// The node's heartbeat Lease at `now`.
pub fn lease_object(config: &NodeConfig, now: Timestamp) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            namespace: Some(LEASE_NAMESPACE.into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(config.name.clone()),
            lease_duration_seconds: Some(
                config.lease_duration.as_secs().min(i32::MAX as u64) as i32
            ),
            renew_time: Some(MicroTime(now)),
            ..LeaseSpec::default()
        }),
    }
}

fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

fn api_error(action: &'static str, name: &str) -> impl FnOnce(kube::Error) -> NodeError {
    let name = name.to_owned();
    move |source| NodeError::Api {
        action,
        name,
        source,
    }
}

/// Applies `node` (metadata and spec).
async fn apply_node(client: &kube::Client, name: &str, node: &Node) -> Result<(), NodeError> {
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch(
            name,
            &apply_params(),
            &Patch::Apply(&with_kind(node, "Node", "v1")),
        )
        .await
        .map_err(api_error("applying node", name))?;
    Ok(())
}

/// Applies the Node (metadata, spec; not cordoned), its status and its Lease. `since` is when
/// the agent became ready (the Ready condition's transition time).
///
/// # Errors
/// [`NodeError::Api`] when a write fails.
pub async fn register(
    client: &kube::Client,
    config: &NodeConfig,
    since: Timestamp,
) -> Result<(), NodeError> {
    apply_node(client, &config.name, &node_object(config)).await?;
    report_node_status(client, config, since, since).await?;
    renew_lease(client, config, since).await
}

/// Marks the Node unschedulable so that no new Pod is bound to it.
///
/// # Errors
/// [`NodeError::Api`] when the write fails.
pub async fn cordon(client: &kube::Client, config: &NodeConfig) -> Result<(), NodeError> {
    apply_node(client, &config.name, &cordoned_node_object(config)).await
}

/// Deletes the Node and its Lease (missing ones are fine).
///
/// # Errors
/// [`NodeError::Api`] when a delete fails.
pub async fn unregister(client: &kube::Client, config: &NodeConfig) -> Result<(), NodeError> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let nodes: Api<Node> = Api::all(client.clone());
    let params = DeleteParams::default();
    let missing_is_fine = |r: Result<(), kube::Error>| match r {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        other => other,
    };
    missing_is_fine(leases.delete(&config.name, &params).await.map(|_| ()))
        .map_err(api_error("deleting lease", &config.name))?;
    missing_is_fine(nodes.delete(&config.name, &params).await.map(|_| ()))
        .map_err(api_error("deleting node", &config.name))
}

/// Renews the node's Lease in `kube-node-lease`.
///
/// # Errors
/// [`NodeError::Api`] when the write fails.
pub async fn renew_lease(
    client: &kube::Client,
    config: &NodeConfig,
    now: Timestamp,
) -> Result<(), NodeError> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let lease = lease_object(config, now);
    leases
        .patch(
            &config.name,
            &apply_params(),
            &Patch::Apply(&with_kind(&lease, "Lease", "coordination.k8s.io/v1")),
        )
        .await
        .map_err(api_error("renewing lease", &config.name))?;
    Ok(())
}

/// Writes the Node status (Ready condition with a fresh heartbeat time).
///
/// # Errors
/// [`NodeError::Api`] when the write fails.
pub async fn report_node_status(
    client: &kube::Client,
    config: &NodeConfig,
    since: Timestamp,
    now: Timestamp,
) -> Result<(), NodeError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let status = Node {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            ..ObjectMeta::default()
        },
        spec: None,
        status: Some(node_status(config, since, now)),
    };
    nodes
        .patch_status(
            &config.name,
            &apply_params(),
            &Patch::Apply(&with_kind(&status, "Node", "v1")),
        )
        .await
        .map_err(api_error("reporting node status", &config.name))?;
    Ok(())
}

/// Server-side apply bodies need `apiVersion` and `kind`, which k8s-openapi types leave out.
pub(crate) fn with_kind<T: serde::Serialize>(
    object: &T,
    kind: &str,
    api_version: &str,
) -> serde_json::Value {
    let mut value = serde_json::to_value(object).unwrap_or(serde_json::Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.insert("kind".into(), kind.into());
        map.insert("apiVersion".into(), api_version.into());
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> NodeConfig {
        let mut c = NodeConfig::named(
            "agent-1",
            NodeCapacity {
                cpu: 8.0,
                memory_mb: 32768,
                disk_mb: 100_000,
                network_mbps: 10_000,
                gpu: 0,
                pods: 110,
            },
        );
        c.tier = Some("flex".into());
        c.zone = "us-east-1c".into();
        c.daemon_port = 10250;
        c
    }

    #[test]
    fn node_carries_titus_labels_taints_and_capacity() {
        let c = config();
        let node = node_object(&c);
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "agent-1");
        assert_eq!(
            labels["failure-domain.beta.kubernetes.io/zone"],
            "us-east-1c"
        );
        assert_eq!(labels["beta.kubernetes.io/instance-type"], "m5.large");
        assert_eq!(labels["node.titus.netflix.com/asg"], "titus-agents");
        assert_eq!(labels["node.titus.netflix.com/tier"], "flex");
        let taints = node.spec.unwrap().taints.unwrap();
        let keys: Vec<_> = taints
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_deref()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("virtual-kubelet.io/provider", Some("titus")),
                ("node.titus.netflix.com/tier", Some("flex"))
            ]
        );
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let status = node_status(&c, now, now);
        let capacity = status.capacity.clone().unwrap();
        assert_eq!(capacity["cpu"], Quantity("8000m".into()));
        assert_eq!(capacity["memory"], Quantity("32768Mi".into()));
        assert_eq!(capacity["titus/network"], Quantity("10000M".into()));
        assert!(!capacity.contains_key("nvidia.com/gpu"));
        assert_eq!(status.allocatable, status.capacity);
        let ready = status
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(ready.last_heartbeat_time, Some(Time(now)));
        let addresses = status.addresses.unwrap();
        assert_eq!(addresses[0].type_, "InternalIP");
        assert_eq!(addresses[0].address, "127.0.0.1");
        assert_eq!(addresses[1].type_, "Hostname");
        assert_eq!(addresses[1].address, "agent-1");
        let port = status
            .daemon_endpoints
            .unwrap()
            .kubelet_endpoint
            .unwrap()
            .port;
        assert_eq!(port, 10250);
    }

    #[test]
    fn a_cordoned_node_is_unschedulable_and_tainted() {
        let node = cordoned_node_object(&config());
        let spec = node.spec.unwrap();
        assert_eq!(spec.unschedulable, Some(true));
        assert!(
            spec.taints
                .unwrap()
                .iter()
                .any(|t| t.key == TAINT_UNSCHEDULABLE && t.effect == "NoSchedule")
        );
        assert_eq!(node_object(&config()).spec.unwrap().unschedulable, None);
    }

    #[test]
    fn lease_is_held_by_the_node_in_kube_node_lease() {
        let now: Timestamp = "2026-01-01T00:00:10Z".parse().unwrap();
        let lease = lease_object(&config(), now);
        assert_eq!(lease.metadata.namespace.as_deref(), Some("kube-node-lease"));
        let spec = lease.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("agent-1"));
        assert_eq!(spec.lease_duration_seconds, Some(40));
        assert_eq!(spec.renew_time, Some(MicroTime(now)));
        let body = with_kind(
            &lease_object(&config(), now),
            "Lease",
            "coordination.k8s.io/v1",
        );
        assert_eq!(body["kind"], "Lease");
        assert_eq!(body["apiVersion"], "coordination.k8s.io/v1");
    }

    #[test]
    fn this_machine_has_cpus_and_memory() {
        let c = NodeCapacity::of_this_machine(1000, 1000, 10);
        assert!(c.cpu >= 1.0);
        assert!(c.memory_mb > 0);
    }
}
