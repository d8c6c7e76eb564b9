//! The virtual Node that stands for one Mesos agent, built from its offers. Pure.
//!
//! - name: the agent's host name, lower-cased (it must be a DNS subdomain; other hosts are
//!   not mirrored and their offers are declined);
//! - labels: the Titus node labels the offers' attributes give (zone, instance type, ASG,
//!   instance id, CPU model, tier), `node.titus.netflix.com/backend=mesos`,
//!   `kubernetes.io/hostname` and `type=virtual-kubelet`; attribute values that are not valid
//!   label values are left out;
//! - annotations: `mesos.titus.dev/agent-id`, `mesos.titus.dev/hostname`, and every attribute
//!   as `attribute.mesos.titus.dev/<name>`;
//! - taint `node.titus.netflix.com/backend=mesos:NoSchedule`, which keeps every other
//!   scheduler's Pods away (the Titus scheduler tolerates it);
//! - allocatable = what the held offers give + what the Titus tasks launched there hold, so
//!   that allocatable minus the Pods bound to it is exactly what is still offered (Pods bound
//!   but not launched yet consume held offers); `pods` is `pods_per_agent`;
//! - `Ready` while the framework is subscribed and the agent is not lost.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeSpec, NodeStatus, Taint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use titus_crds::constants::node as labels;

use crate::model::Agent;
use crate::resources::Resources;

/// Node annotation: the Mesos agent id (changes when the agent re-registers).
pub const AGENT_ID_ANNOTATION: &str = "mesos.titus.dev/agent-id";
/// Node annotation: the Mesos host name.
pub const HOSTNAME_ANNOTATION: &str = "mesos.titus.dev/hostname";
/// Prefix of the annotations carrying the offers' attributes.
pub const ATTRIBUTE_ANNOTATION_SUFFIX: &str = "attribute.mesos.titus.dev/";
/// Label selector of the virtual nodes.
pub const VIRTUAL_NODE_SELECTOR: &str = "node.titus.netflix.com/backend=mesos";

/// Why a virtual node is or is not Ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Subscribed and the agent offers.
    Active,
    /// The framework has no subscription.
    Disconnected,
    /// The master reported the agent lost.
    AgentLost,
}

impl Readiness {
    fn condition(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Readiness::Active => ("True", "MesosAgentActive", "Mesos agent offers resources"),
            Readiness::Disconnected => (
                "False",
                "MesosMasterDisconnected",
                "no subscription to the Mesos master",
            ),
            Readiness::AgentLost => (
                "False",
                "MesosAgentLost",
                "the Mesos master reported the agent lost",
            ),
        }
    }
}

/// The node name for a Mesos host, when the host name can be one.
pub fn node_name(host: &str) -> Option<String> {
    let name = host.to_ascii_lowercase();
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let edges = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    (valid_chars && name.len() <= 253 && edges(name.chars().next()) && edges(name.chars().last()))
        .then_some(name)
}

/// Metadata and spec of the virtual node for an agent seen in offers.
pub fn node_object(name: &str, agent: &Agent, mesos_agent_id: &str) -> Node {
    let mut node_labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), name.to_string()),
        ("type".to_string(), "virtual-kubelet".to_string()),
        (
            labels::BACKEND.to_string(),
            labels::BACKEND_MESOS.to_string(),
        ),
    ]);
    let tier = agent.tier.map(|t| t.as_str().to_ascii_lowercase());
    for (key, value) in [
        (labels::ZONE, agent.zone.as_ref()),
        (labels::INSTANCE_TYPE, agent.instance_type.as_ref()),
        (labels::ASG, agent.instance_group.as_ref()),
        (labels::ID, agent.machine_id.as_ref()),
        (labels::CPU_MODEL_NAME, agent.cpu_model.as_ref()),
        (labels::TIER, tier.as_ref()),
    ] {
        if let Some(value) = value.filter(|v| valid_label_value(v)) {
            node_labels.insert(key.to_string(), value.clone());
        }
    }
    let mut annotations = BTreeMap::from([
        (AGENT_ID_ANNOTATION.to_string(), mesos_agent_id.to_string()),
        (HOSTNAME_ANNOTATION.to_string(), agent.host.clone()),
    ]);
    for (name, value) in &agent.attributes {
        if valid_label_name(name) {
            annotations.insert(
                format!("{ATTRIBUTE_ANNOTATION_SUFFIX}{name}"),
                value.clone(),
            );
        }
    }
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(node_labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: Some(vec![Taint {
                key: labels::BACKEND.to_string(),
                value: Some(labels::BACKEND_MESOS.to_string()),
                effect: "NoSchedule".to_string(),
                time_added: None,
            }]),
            ..NodeSpec::default()
        }),
        status: None,
    }
}

/// What the virtual node offers: held offers plus launched tasks, with `pods_per_agent` slots.
pub fn allocatable(
    offered: Option<&Resources>,
    launched: &Resources,
    pods_per_agent: u64,
) -> Resources {
    let mut total = offered.map_or(*launched, |o| o.saturating_add(launched));
    total.pods = pods_per_agent;
    total
}

/// The virtual node's status: capacity = allocatable, and `Ready` per `readiness`.
pub fn node_status(allocatable: &Resources, readiness: Readiness, now: Timestamp) -> NodeStatus {
    let (status, reason, message) = readiness.condition();
    let quantities = quantities(allocatable);
    NodeStatus {
        capacity: Some(quantities.clone()),
        allocatable: Some(quantities),
        conditions: Some(vec![NodeCondition {
            type_: "Ready".to_string(),
            status: status.to_string(),
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            last_heartbeat_time: Some(Time(now)),
            last_transition_time: Some(Time(now)),
        }]),
        ..NodeStatus::default()
    }
}

/// Resources as Node quantities (the names Titus task Pods request).
pub fn quantities(r: &Resources) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("cpu".to_string(), Quantity(format!("{}m", r.cpu_milli))),
        ("memory".to_string(), Quantity(format!("{}Mi", r.memory_mb))),
        (
            "ephemeral-storage".to_string(),
            Quantity(format!("{}Mi", r.disk_mb)),
        ),
        (
            "titus/network".to_string(),
            Quantity(format!("{}M", r.network_mbps)),
        ),
        ("nvidia.com/gpu".to_string(), Quantity(r.gpu.to_string())),
        ("pods".to_string(), Quantity(r.pods.to_string())),
    ])
}

fn valid_label_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && value
            .chars()
            .next()
            .is_none_or(|c| c.is_ascii_alphanumeric())
        && value
            .chars()
            .last()
            .is_none_or(|c| c.is_ascii_alphanumeric())
}

fn valid_label_name(name: &str) -> bool {
    !name.is_empty() && valid_label_value(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::kube::node::{NodeRules, node_view};
    use crate::model::Tier;

    fn agent() -> Agent {
        let mut agent = Agent::new(
            "Agent-7.Example.Internal",
            Resources {
                cpu_milli: 8000,
                memory_mb: 30_720,
                disk_mb: 100_000,
                network_mbps: 1000,
                gpu: 0,
                pods: 1000,
            },
        )
        .zone("us-east-1a")
        .instance_type("m5.2xlarge")
        .instance_group("titusagent-v001")
        .machine_id("i-07")
        .tier(Tier::Flex);
        agent
            .attributes
            .insert("ports".into(), "[31000-32000]".into());
        agent.attributes.insert("zone".into(), "us-east-1a".into());
        agent
    }

    #[test]
    fn host_names_become_node_names_when_they_can() {
        assert_eq!(
            node_name("Agent-7.Example.Internal").as_deref(),
            Some("agent-7.example.internal")
        );
        assert_eq!(node_name("bad_host"), None);
        assert_eq!(node_name("-x"), None);
        assert_eq!(node_name(""), None);
    }

    #[test]
    fn the_virtual_node_reads_back_as_the_offered_agent() {
        let name = node_name(&agent().host).unwrap();
        let mut node = node_object(&name, &agent(), "S3");
        let launched = Resources {
            cpu_milli: 2000,
            memory_mb: 4096,
            ..Resources::ZERO
        };
        let total = allocatable(Some(&agent().allocatable), &launched, 1000);
        node.status = Some(node_status(
            &total,
            Readiness::Active,
            "2026-01-01T00:00:00Z".parse().unwrap(),
        ));
        let view = node_view(&node, &NodeRules::default()).unwrap();
        assert_eq!(
            view.exclusion, None,
            "Ready, and the backend taint is tolerated"
        );
        let read = view.agent;
        assert_eq!(read.id, name);
        assert_eq!(read.zone.as_deref(), Some("us-east-1a"));
        assert_eq!(read.instance_type.as_deref(), Some("m5.2xlarge"));
        assert_eq!(read.instance_group.as_deref(), Some("titusagent-v001"));
        assert_eq!(read.machine_id.as_deref(), Some("i-07"));
        assert_eq!(read.tier, Some(Tier::Flex));
        assert_eq!(read.kube_backend.as_deref(), Some("mesos"));
        assert_eq!(read.allocatable.cpu_milli, 10_000);
        assert_eq!(read.allocatable.memory_mb, 34_816);
        assert_eq!(read.allocatable.pods, 1000);
        let annotations = node.metadata.annotations.unwrap();
        assert_eq!(annotations[AGENT_ID_ANNOTATION], "S3");
        assert_eq!(
            annotations["attribute.mesos.titus.dev/ports"], "[31000-32000]",
            "values that cannot be labels are annotations"
        );
    }

    #[test]
    fn a_node_without_offers_offers_only_what_its_tasks_hold_and_is_not_ready_when_disconnected() {
        let launched = Resources {
            cpu_milli: 1000,
            ..Resources::ZERO
        };
        let total = allocatable(None, &launched, 1000);
        assert_eq!(total.cpu_milli, 1000);
        assert_eq!(total.pods, 1000);
        let status = node_status(
            &total,
            Readiness::Disconnected,
            "2026-01-01T00:00:00Z".parse().unwrap(),
        );
        let ready = &status.conditions.unwrap()[0];
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("MesosMasterDisconnected"));
    }
}
