//! What the task controller observes, reduced to the facts its decision uses: the pod
//! ([`PodFacts`]), the node and its heartbeat Lease ([`NodeFacts`]) and the job ([`JobFacts`]),
//! plus the task context keys each contributes (titus-semantics §3.1, §13.3). Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Node, Pod};
use titus_crds::constants::{MAIN_CONTAINER_NAME, annotations, attributes, node, task_context};
use titus_crds::{CapacityGroup, JobType, Retry, TitusJob};

use crate::clock::ms_of_time;

/// The pod's `status.reason` while the agent prepares the container.
pub const TASK_STARTING: &str = "TASK_STARTING";
/// Agent crash before the container started.
pub const TASK_CRASHED: &str = "TASK_CRASHED";
/// The agent lost the container.
pub const TASK_LOST: &str = "TASK_LOST";
/// Killed on behalf of the control plane.
pub const TASK_KILLED: &str = "TASK_KILLED";

/// State of the main container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerFacts {
    /// No status yet.
    Unknown,
    /// Waiting, with the waiting reason.
    Waiting {
        /// Waiting reason (e.g. `TASK_STARTING`).
        reason: String,
    },
    /// Running since `started_at` (ms), when known.
    Running {
        /// Start time, ms.
        started_at: Option<u64>,
    },
    /// Terminated.
    Terminated {
        /// Exit code.
        exit_code: i32,
        /// Start time, ms, when it ran.
        started_at: Option<u64>,
        /// Termination message.
        message: String,
    },
}

impl ContainerFacts {
    /// `true` while the container waits (e.g. for `TASK_STARTING`).
    pub fn is_waiting(&self) -> bool {
        match self {
            ContainerFacts::Waiting { .. } => true,
            ContainerFacts::Unknown
            | ContainerFacts::Running { .. }
            | ContainerFacts::Terminated { .. } => false,
        }
    }
}

/// The facts of a task's pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodFacts {
    /// `status.phase` (`Pending` when absent).
    pub phase: String,
    /// `status.reason` (the agent's `TASK_*`).
    pub reason: String,
    /// `status.message`.
    pub message: String,
    /// `spec.nodeName` (empty while unscheduled).
    pub node_name: String,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// `metadata.deletionGracePeriodSeconds` while deleting.
    pub deletion_grace_seconds: Option<i64>,
    /// `spec.terminationGracePeriodSeconds`.
    pub grace_period_seconds: i64,
    /// The main container.
    pub container: ContainerFacts,
    /// The `PodScheduled=False` condition set by the scheduler: (reason, message).
    pub unschedulable: Option<(String, String)>,
    /// Task context keys from the pod (agent-written network annotations, pod IP).
    pub context: BTreeMap<String, String>,
}

impl PodFacts {
    /// Reads the facts of `pod`.
    pub fn of(pod: &Pod) -> Self {
        let status = pod.status.as_ref();
        let spec = pod.spec.as_ref();
        let main = status
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.name == MAIN_CONTAINER_NAME)
                    .or_else(|| cs.first())
            });
        let container = match main.and_then(|c| c.state.as_ref()) {
            None => ContainerFacts::Unknown,
            Some(state) => {
                if let Some(t) = &state.terminated {
                    terminated(t)
                } else if let Some(r) = &state.running {
                    ContainerFacts::Running {
                        started_at: r.started_at.as_ref().map(ms_of_time),
                    }
                } else if let Some(w) = &state.waiting {
                    ContainerFacts::Waiting {
                        reason: w.reason.clone().unwrap_or_default(),
                    }
                } else {
                    ContainerFacts::Unknown
                }
            }
        };
        let unschedulable = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
            .filter(|c| c.status == "False")
            .map(|c| {
                (
                    c.reason.clone().unwrap_or_else(|| "Unschedulable".into()),
                    c.message.clone().unwrap_or_default(),
                )
            });
        Self {
            phase: status
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Pending".into()),
            reason: status.and_then(|s| s.reason.clone()).unwrap_or_default(),
            message: status.and_then(|s| s.message.clone()).unwrap_or_default(),
            node_name: spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
            deleting: pod.metadata.deletion_timestamp.is_some(),
            deletion_grace_seconds: pod.metadata.deletion_grace_period_seconds,
            grace_period_seconds: spec
                .and_then(|s| s.termination_grace_period_seconds)
                .unwrap_or(600),
            container,
            unschedulable,
            context: pod_context(pod),
        }
    }

    /// `Succeeded` or `Failed`.
    pub fn is_terminal(&self) -> bool {
        self.phase == "Succeeded" || self.phase == "Failed"
    }

    /// Bound to a node.
    pub fn is_bound(&self) -> bool {
        !self.node_name.is_empty()
    }

    /// When the main container started, if it did.
    pub fn container_started_at(&self) -> Option<u64> {
        match &self.container {
            ContainerFacts::Running { started_at }
            | ContainerFacts::Terminated { started_at, .. } => *started_at,
            ContainerFacts::Unknown | ContainerFacts::Waiting { .. } => None,
        }
    }
}

fn terminated(t: &ContainerStateTerminated) -> ContainerFacts {
    ContainerFacts::Terminated {
        exit_code: t.exit_code,
        started_at: t.started_at.as_ref().map(ms_of_time),
        message: t.message.clone().unwrap_or_default(),
    }
}

/// Task context keys from a pod: the agent's network annotations (§13.3), else the pod IP.
pub fn pod_context(pod: &Pod) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let a = pod.metadata.annotations.as_ref();
    for (annotation, key) in [
        (annotations::ADDRESS_IP, task_context::CONTAINER_IP),
        (annotations::ADDRESS_IPV4, task_context::CONTAINER_IPV4),
        (annotations::ADDRESS_IPV6, task_context::CONTAINER_IPV6),
        (
            annotations::ADDRESS_TRANSITION_IPV4,
            task_context::TRANSITION_IPV4,
        ),
        (
            annotations::ADDRESS_ELASTIC_IPV4,
            task_context::ELASTIC_IPV4,
        ),
        (
            annotations::BRANCH_ENI_ID,
            task_context::NETWORK_INTERFACE_ID,
        ),
        (
            annotations::EFFECTIVE_NETWORK_MODE,
            task_context::EFFECTIVE_NETWORK_MODE,
        ),
    ] {
        if let Some(value) = a.and_then(|a| a.get(annotation)).filter(|v| !v.is_empty()) {
            out.insert(key.to_string(), value.clone());
        }
    }
    if let Some(ip) = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .filter(|ip| !ip.is_empty())
    {
        out.entry(task_context::CONTAINER_IP.to_string())
            .or_insert(ip);
    }
    out
}

/// The facts of the node a pod is bound to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeFacts {
    /// Node name.
    pub name: String,
    /// Last renewal of its heartbeat Lease, ms; `None` when it has no Lease.
    pub lease_renewed_at: Option<u64>,
    /// Task context keys from the node (`agent.*`, `kube.nodeName`).
    pub context: BTreeMap<String, String>,
}

impl NodeFacts {
    /// Facts of node `name` from its object and Lease (either may be missing).
    pub fn of(name: &str, node: Option<&Node>, lease: Option<&Lease>) -> Self {
        let lease_renewed_at = lease
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.renew_time.as_ref().or(s.acquire_time.as_ref()))
            .map(|t| crate::clock::ms_of(t.0));
        let mut context = node.map(node_context).unwrap_or_default();
        context.insert(task_context::NODE_NAME.into(), name.into());
        Self {
            name: name.into(),
            lease_renewed_at,
            context,
        }
    }

    /// Whether the node's agent reports: its Lease was renewed within `timeout_ms`.
    pub fn is_reporting(&self, now: u64, timeout_ms: u64) -> bool {
        self.lease_renewed_at
            .is_some_and(|at| now < at.saturating_add(timeout_ms))
    }

    /// When the node stops (or stopped) counting as reporting.
    pub fn reporting_until(&self, timeout_ms: u64) -> Option<u64> {
        self.lease_renewed_at
            .map(|at| at.saturating_add(timeout_ms))
    }
}

/// `agent.*` task context keys from a node: Titus's `node.titus.netflix.com/*` annotations, else
/// the equivalent labels our agent sets; `agent.host`/`agent.hostIp` from its address.
pub fn node_context(node: &Node) -> BTreeMap<String, String> {
    let annotations = node.metadata.annotations.as_ref();
    let labels = node.metadata.labels.as_ref();
    let lookup = |names: &[&str]| -> Option<String> {
        names.iter().find_map(|n| {
            annotations
                .and_then(|a| a.get(*n))
                .or_else(|| labels.and_then(|l| l.get(*n)))
                .filter(|v| !v.is_empty())
                .cloned()
        })
    };
    let mut out = BTreeMap::new();
    let keys: [(&str, &[&str]); 10] = [
        (
            task_context::AGENT_REGION,
            &[
                "node.titus.netflix.com/region",
                node::REGION,
                "topology.kubernetes.io/region",
            ],
        ),
        (
            task_context::AGENT_ZONE,
            &[
                "node.titus.netflix.com/zone",
                node::ZONE,
                "topology.kubernetes.io/zone",
            ],
        ),
        (task_context::AGENT_AMI, &["node.titus.netflix.com/ami"]),
        (
            task_context::AGENT_ASG,
            &["node.titus.netflix.com/asg", node::ASG],
        ),
        (
            task_context::AGENT_CLUSTER,
            &["node.titus.netflix.com/cluster"],
        ),
        (task_context::AGENT_STACK, &["node.titus.netflix.com/stack"]),
        (
            task_context::AGENT_ITYPE,
            &[
                "node.titus.netflix.com/itype",
                node::INSTANCE_TYPE,
                "node.kubernetes.io/instance-type",
            ],
        ),
        (task_context::AGENT_INSTANCE_ID, &[node::ID]),
        (task_context::AGENT_ID, &[node::ID]),
        (task_context::AGENT_RES, &["node.titus.netflix.com/res"]),
    ];
    for (key, names) in keys {
        if let Some(value) = lookup(names) {
            out.insert(key.to_string(), value);
        }
    }
    let address = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .and_then(|addrs| {
            addrs
                .iter()
                .find(|a| a.type_ == "InternalIP")
                .or_else(|| addrs.iter().find(|a| a.type_ == "ExternalIP"))
        })
        .map(|a| a.address.clone());
    if let Some(ip) = address {
        out.insert(task_context::AGENT_HOST.into(), ip.clone());
        out.insert(task_context::AGENT_HOST_IP.into(), ip);
    }
    out
}

/// The facts of the job a task belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFacts {
    /// Batch or service.
    pub job_type: JobType,
    /// Batch runtime limit, ms.
    pub runtime_limit_ms: Option<u64>,
    /// Retry policy.
    pub retry: Option<Retry>,
    /// Task context keys from the job and its capacity group (`titus.cell`, `task.tier`, ...).
    pub context: BTreeMap<String, String>,
}

impl JobFacts {
    /// Facts of `job`, with its capacity group when known.
    pub fn of(job: &TitusJob, group: Option<&CapacityGroup>) -> Self {
        let mut context = BTreeMap::new();
        for (attribute, key) in [
            (attributes::CELL, task_context::CELL),
            (attributes::STACK, task_context::STACK),
        ] {
            if let Some(v) = job.spec.attributes.get(attribute) {
                context.insert(key.to_string(), v.clone());
            }
        }
        let tier = group.map(|g| g.spec.tier).unwrap_or_default();
        context.insert(task_context::TIER.into(), tier.as_str().into());
        if let Some(g) = group {
            context.insert(
                task_context::RESOURCE_POOL.into(),
                g.spec.effective_resource_pool().into(),
            );
        }
        let job_type = job.spec.job_type().unwrap_or(JobType::Service);
        Self {
            job_type,
            runtime_limit_ms: job
                .spec
                .batch
                .as_ref()
                .map(|b| b.runtime_limit_sec.saturating_mul(1000))
                .filter(|ms| *ms > 0),
            retry: job.spec.retry_policy().and_then(|p| p.resolved()),
            context,
        }
    }
}
