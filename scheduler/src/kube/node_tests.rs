//! Node → agent mapping and exclusion rules, one case per rule.

#![allow(clippy::unwrap_used)]

use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeSpec, NodeStatus, Taint};
use serde_json::json;

use super::*;

/// A Ready node with 8 cores, 32 GiB, 100 GiB disk, 10 Gbps, 110 pods and the given labels.
fn node(name: &str, node_labels: &[(&str, &str)]) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": node_labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()},
        "spec": {},
        "status": {
            "allocatable": {"cpu": "8", "memory": "32Gi", "ephemeral-storage": "100Gi",
                            "titus/network": "10G", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}]
        }
    }))
    .unwrap()
}

fn taint(key: &str, value: Option<&str>, effect: &str) -> Taint {
    Taint {
        key: key.to_string(),
        value: value.map(str::to_string),
        effect: effect.to_string(),
        time_added: None,
    }
}

fn with_taints(mut node: Node, taints: Vec<Taint>) -> Node {
    node.spec.get_or_insert_with(NodeSpec::default).taints = Some(taints);
    node
}

fn view(node: &Node) -> NodeView {
    node_view(node, &NodeRules::default()).unwrap()
}

#[test]
fn labels_and_allocatable_become_the_agent() {
    let n = node(
        "n1",
        &[
            (labels::ZONE, "us-east-1a"),
            (labels::INSTANCE_TYPE, "m5.2xlarge"),
            (labels::ASG, "titusagent-m5-v001"),
            (labels::ID, "i-0123"),
            (labels::CPU_MODEL_NAME, "Xeon"),
            (labels::BACKEND, "kubelet"),
            (labels::TIER, "critical"),
            (labels::LIFECYCLE, "phasedout"),
        ],
    );
    let agent = view(&n).agent;
    assert_eq!(agent.id, "n1");
    assert_eq!(agent.zone.as_deref(), Some("us-east-1a"));
    assert_eq!(agent.instance_type.as_deref(), Some("m5.2xlarge"));
    assert_eq!(agent.instance_group.as_deref(), Some("titusagent-m5-v001"));
    assert_eq!(agent.machine_id.as_deref(), Some("i-0123"));
    assert_eq!(agent.cpu_model.as_deref(), Some("Xeon"));
    assert_eq!(agent.kube_backend.as_deref(), Some("kubelet"));
    assert_eq!(agent.tier, Some(Tier::Critical));
    assert_eq!(agent.lifecycle, InstanceGroupLifecycle::PhasedOut);
    assert_eq!(agent.attributes.len(), 8);
    assert_eq!(
        agent.allocatable,
        Resources {
            cpu_milli: 8000,
            memory_mb: 32 * 1024,
            disk_mb: 100 * 1024,
            network_mbps: 10_000,
            gpu: 0,
            pods: 110,
        }
    );
}

#[test]
fn kubernetes_topology_labels_are_read_when_titus_labels_are_absent() {
    let n = node(
        "n1",
        &[
            (labels::TOPOLOGY_ZONE, "us-east-1c"),
            (labels::STABLE_INSTANCE_TYPE, "r5.large"),
        ],
    );
    let agent = view(&n).agent;
    assert_eq!(agent.zone.as_deref(), Some("us-east-1c"));
    assert_eq!(agent.instance_type.as_deref(), Some("r5.large"));
}

#[test]
fn missing_network_and_pods_take_the_defaults_and_capacity_stands_in_for_allocatable() {
    let n: Node = serde_json::from_value(json!({
        "metadata": {"name": "plain"},
        "status": {"capacity": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "2"},
                   "conditions": [{"type": "Ready", "status": "True"}]}
    }))
    .unwrap();
    let v = view(&n);
    assert_eq!(v.exclusion, None);
    assert_eq!(v.agent.allocatable.cpu_milli, 4000);
    assert_eq!(v.agent.allocatable.gpu, 2);
    assert_eq!(v.agent.allocatable.network_mbps, 25_000);
    assert_eq!(v.agent.allocatable.pods, 110);
}

#[test]
fn tier_comes_from_the_tier_taint_when_there_is_no_label() {
    let n = with_taints(
        node("n1", &[]),
        vec![taint(labels::TAINT_TIER, Some("flex"), "NoSchedule")],
    );
    let v = view(&n);
    assert_eq!(v.agent.tier, Some(Tier::Flex));
    assert_eq!(v.exclusion, None, "the tier taint is tolerated");
}

#[test]
fn decommissioning_taints_lower_the_lifecycle() {
    use InstanceGroupLifecycle::*;
    let cases = [
        (None, "NoSchedule", PhasedOut),
        (None, "PreferNoSchedule", PhasedOut),
        (None, "NoExecute", Removable),
        (Some("Inactive"), "NoSchedule", Inactive),
        (Some("PhasedOut"), "NoExecute", Removable),
    ];
    for (label, effect, want) in cases {
        let base = match label {
            Some(l) => node("n", &[(labels::LIFECYCLE, l)]),
            None => node("n", &[]),
        };
        let n = with_taints(
            base,
            vec![taint(labels::TAINT_DECOMMISSIONING, None, effect)],
        );
        let v = view(&n);
        assert_eq!(v.agent.lifecycle, want, "{label:?} + {effect}");
        assert_eq!(v.exclusion, None);
    }
}

#[test]
fn nodes_that_cannot_take_pods_are_excluded_with_the_reason() {
    let cordoned = {
        let mut n = node("n", &[]);
        n.spec.get_or_insert_with(NodeSpec::default).unschedulable = Some(true);
        n
    };
    let not_ready = {
        let mut n = node("n", &[]);
        n.status.get_or_insert_with(NodeStatus::default).conditions = Some(vec![NodeCondition {
            type_: "Ready".into(),
            status: "False".into(),
            ..NodeCondition::default()
        }]);
        n
    };
    let no_conditions = {
        let mut n = node("n", &[]);
        n.status.get_or_insert_with(NodeStatus::default).conditions = None;
        n
    };
    let unreachable = with_taints(
        node("n", &[]),
        vec![taint("node.kubernetes.io/unreachable", None, "NoExecute")],
    );
    let uninitialized = with_taints(
        node("n", &[]),
        vec![taint(labels::TAINT_UNINITIALIZED, None, "NoSchedule")],
    );
    let bad_quantity = {
        let mut n = node("n", &[]);
        n.status
            .get_or_insert_with(NodeStatus::default)
            .allocatable
            .get_or_insert_with(Default::default)
            .insert("memory".into(), Quantity("lots".into()));
        n
    };
    let cases = [
        (cordoned, Some(NodeExclusion::Unschedulable)),
        (not_ready, Some(NodeExclusion::NotReady)),
        (no_conditions, Some(NodeExclusion::NotReady)),
        (
            unreachable,
            Some(NodeExclusion::Tainted {
                key: "node.kubernetes.io/unreachable".into(),
                effect: "NoExecute".into(),
            }),
        ),
        (
            uninitialized,
            Some(NodeExclusion::Tainted {
                key: labels::TAINT_UNINITIALIZED.into(),
                effect: "NoSchedule".into(),
            }),
        ),
        (
            bad_quantity,
            Some(NodeExclusion::InvalidAllocatable {
                resource: "memory".into(),
            }),
        ),
    ];
    for (n, want) in cases {
        assert_eq!(view(&n).exclusion, want);
    }
}

#[test]
fn tolerated_and_prefer_no_schedule_taints_do_not_exclude() {
    let n = with_taints(
        node("n", &[]),
        vec![
            taint(labels::TAINT_PROVIDER, Some("titus"), "NoSchedule"),
            taint(labels::TAINT_SCHEDULER, Some("kubeScheduler"), "NoSchedule"),
            taint(labels::TAINT_GPU, None, "NoSchedule"),
            taint(labels::BACKEND, Some("mesos"), "NoSchedule"),
            taint("example.com/soft", None, "PreferNoSchedule"),
        ],
    );
    assert_eq!(view(&n).exclusion, None);
}

#[test]
fn a_node_is_not_reporting_once_its_lease_is_older_than_the_limit() {
    let rules = NodeRules::default();
    let now: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
    let at = |s: &str| Some(s.parse::<Timestamp>().unwrap());
    assert!(reporting(None, now, &rules), "no lease: Ready decides");
    assert!(reporting(at("2026-01-01T00:00:30Z"), now, &rules));
    assert!(
        reporting(at("2026-01-01T00:00:20Z"), now, &rules),
        "exactly 40 s"
    );
    assert!(!reporting(at("2026-01-01T00:00:19Z"), now, &rules));
    assert!(
        reporting(at("2026-01-01T00:02:00Z"), now, &rules),
        "clock skew"
    );
}

#[test]
fn a_node_without_a_name_is_ignored() {
    let n = Node::default();
    assert!(node_view(&n, &NodeRules::default()).is_none());
}
