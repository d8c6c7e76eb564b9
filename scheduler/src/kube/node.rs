//! Kubernetes Nodes into the scheduler's [`Agent`]s, and the rules that keep a Node out of
//! placement. Pure: the index calls [`node_view`] on every Node event and [`reporting`] on every
//! Lease event and clock tick.
//!
//! | agent field | from |
//! | --- | --- |
//! | `id`, `host` | `metadata.name` |
//! | `zone` | label `failure-domain.beta.kubernetes.io/zone`, else `topology.kubernetes.io/zone` |
//! | `instance_type` | label `beta.kubernetes.io/instance-type`, else `node.kubernetes.io/instance-type` |
//! | `instance_group` | label `node.titus.netflix.com/asg` |
//! | `machine_id` | label `node.titus.netflix.com/id` |
//! | `cpu_model` | label `node.titus.netflix.com/cpu-model-name` |
//! | `kube_backend` | label `node.titus.netflix.com/backend` |
//! | `tier` | label `node.titus.netflix.com/tier` (`critical`/`flex`), else the tier taint's value |
//! | `lifecycle` | label `node.titus.netflix.com/lifecycle`, lowered by the `decommissioning` taint: `NoSchedule`/`PreferNoSchedule` → `PhasedOut`, `NoExecute` → `Removable` |
//! | `allocatable` | `status.allocatable` (else `capacity`): `cpu`, `memory`, `ephemeral-storage`, `titus/network`, `nvidia.com/gpu`, `pods`, rounded down |
//! | `attributes` | every label |
//!
//! A Node takes no placement while `spec.unschedulable`, while its `Ready` condition is not
//! `True`, while it has a `NoSchedule`/`NoExecute` taint Titus pods do not tolerate (§10.5: they
//! tolerate the provider, scheduler, tier, decommissioning, GPU and backend taints), or while its
//! Lease in `kube-node-lease` has not been renewed for `not_reporting_after` (40 s).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use titus_crds::constants::node as labels;

use crate::kube::quantity::{self, Rounding, Unit};
use crate::model::{Agent, InstanceGroupLifecycle, Tier};
use crate::resources::Resources;

/// How Nodes are judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRules {
    /// A Node whose Lease is older than this is not reporting (the project's node-liveness rule).
    pub not_reporting_after: Duration,
    /// Network bandwidth assumed for a Node that does not advertise `titus/network`.
    pub default_network_mbps: u64,
    /// Pod slots assumed for a Node that does not advertise `pods`.
    pub default_pods: u64,
}

impl Default for NodeRules {
    fn default() -> Self {
        NodeRules {
            not_reporting_after: Duration::from_secs(40),
            default_network_mbps: 25_000,
            default_pods: 110,
        }
    }
}

/// Why a Node takes no placement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeExclusion {
    /// `spec.unschedulable` (cordoned).
    Unschedulable,
    /// The `Ready` condition is absent or not `True`.
    NotReady,
    /// A taint Titus pods do not tolerate.
    Tainted {
        /// Taint key.
        key: String,
        /// Taint effect.
        effect: String,
    },
    /// An allocatable quantity cannot be read.
    InvalidAllocatable {
        /// The resource.
        resource: String,
    },
}

impl fmt::Display for NodeExclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeExclusion::Unschedulable => f.write_str("unschedulable"),
            NodeExclusion::NotReady => f.write_str("not ready"),
            NodeExclusion::Tainted { key, effect } => write!(f, "taint {key}:{effect}"),
            NodeExclusion::InvalidAllocatable { resource } => {
                write!(f, "invalid allocatable {resource}")
            }
        }
    }
}

/// A Node as the scheduler sees it, before liveness and before what runs on it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeView {
    /// The agent (no `used`, no placements).
    pub agent: Agent,
    /// Why it takes no placement, if it does not.
    pub exclusion: Option<NodeExclusion>,
}

/// Taint keys every Titus pod tolerates (§10.5), so they never exclude a Node. The tier and
/// lifecycle they carry are read into the agent instead.
const TOLERATED_TAINTS: [&str; 6] = [
    labels::TAINT_PROVIDER,
    labels::TAINT_SCHEDULER,
    labels::TAINT_TIER,
    labels::TAINT_DECOMMISSIONING,
    labels::TAINT_GPU,
    labels::BACKEND,
];

/// The agent a Node stands for and whether it may take placements. `None` for a Node without a
/// name.
pub fn node_view(node: &Node, rules: &NodeRules) -> Option<NodeView> {
    let name = node.metadata.name.clone()?;
    let empty = BTreeMap::new();
    let node_labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let label = |keys: &[&str]| keys.iter().find_map(|k| node_labels.get(*k).cloned());
    let taints: &[Taint] = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default();
    let (allocatable, invalid) = allocatable(node, rules);
    let mut agent = Agent::new(name, allocatable);
    agent.zone = label(&[labels::ZONE, labels::TOPOLOGY_ZONE]);
    agent.instance_type = label(&[labels::INSTANCE_TYPE, labels::STABLE_INSTANCE_TYPE]);
    agent.instance_group = label(&[labels::ASG]);
    agent.machine_id = label(&[labels::ID]);
    agent.cpu_model = label(&[labels::CPU_MODEL_NAME]);
    agent.kube_backend = label(&[labels::BACKEND]);
    agent.tier = label(&[labels::TIER])
        .or_else(|| {
            taints
                .iter()
                .find(|t| t.key == labels::TAINT_TIER)
                .and_then(|t| t.value.clone())
        })
        .and_then(|v| parse_tier(&v));
    agent.lifecycle = lifecycle(label(&[labels::LIFECYCLE]).as_deref(), taints);
    agent.attributes = node_labels.clone();
    let exclusion = invalid
        .map(|resource| NodeExclusion::InvalidAllocatable { resource })
        .or_else(|| static_exclusion(node, taints));
    Some(NodeView { agent, exclusion })
}

fn static_exclusion(node: &Node, taints: &[Taint]) -> Option<NodeExclusion> {
    if node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
    {
        return Some(NodeExclusion::Unschedulable);
    }
    if let Some(taint) = taints.iter().find(|t| {
        (t.effect == "NoSchedule" || t.effect == "NoExecute")
            && !TOLERATED_TAINTS.contains(&t.key.as_str())
    }) {
        return Some(NodeExclusion::Tainted {
            key: taint.key.clone(),
            effect: taint.effect.clone(),
        });
    }
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    (!ready).then_some(NodeExclusion::NotReady)
}

/// True while the Node reports: no Lease seen (the `Ready` condition decides alone), or a Lease
/// renewed within `not_reporting_after` of `now`.
pub fn reporting(lease_renewed: Option<Timestamp>, now: Timestamp, rules: &NodeRules) -> bool {
    let Some(renewed) = lease_renewed else {
        return true;
    };
    let limit = SignedDuration::try_from(rules.not_reporting_after).unwrap_or(SignedDuration::MAX);
    now.duration_since(renewed) <= limit
}

fn parse_tier(value: &str) -> Option<Tier> {
    Tier::ALL
        .into_iter()
        .find(|t| t.as_str().eq_ignore_ascii_case(value.trim()))
}

fn lifecycle(label: Option<&str>, taints: &[Taint]) -> InstanceGroupLifecycle {
    use InstanceGroupLifecycle::{Active, Inactive, PhasedOut, Removable};
    let labelled = label
        .and_then(|v| {
            [Inactive, Active, PhasedOut, Removable]
                .into_iter()
                .find(|l| l.as_str().eq_ignore_ascii_case(v.trim()))
        })
        .unwrap_or(Active);
    let decommissioning = taints
        .iter()
        .filter(|t| t.key == labels::TAINT_DECOMMISSIONING)
        .map(|t| t.effect.as_str());
    let mut result = labelled;
    for effect in decommissioning {
        result = match (result, effect) {
            (Inactive | Removable, _) => result,
            (_, "NoExecute") => Removable,
            (Active, _) => PhasedOut,
            (PhasedOut, _) => PhasedOut,
        };
    }
    result
}

/// Allocatable resources, and the first resource whose quantity could not be read.
fn allocatable(node: &Node, rules: &NodeRules) -> (Resources, Option<String>) {
    let status = node.status.as_ref();
    let quantities: Option<&BTreeMap<String, Quantity>> = status
        .and_then(|s| s.allocatable.as_ref())
        .or_else(|| status.and_then(|s| s.capacity.as_ref()));
    let empty = BTreeMap::new();
    let quantities = quantities.unwrap_or(&empty);
    let mut invalid = None;
    let mut read = |name: &str, unit: Unit, default: u64| match quantities.get(name) {
        None => default,
        Some(q) => quantity::parse(&q.0, unit, Rounding::Down).unwrap_or_else(|_| {
            invalid.get_or_insert_with(|| name.to_string());
            0
        }),
    };
    let resources = Resources {
        cpu_milli: read("cpu", Unit::Milli, 0),
        memory_mb: read("memory", Unit::Mebibyte, 0),
        disk_mb: read("ephemeral-storage", Unit::Mebibyte, 0),
        network_mbps: read("titus/network", Unit::Megabit, rules.default_network_mbps),
        gpu: read("nvidia.com/gpu", Unit::Count, 0),
        pods: read("pods", Unit::Count, rules.default_pods),
    };
    (resources, invalid)
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
