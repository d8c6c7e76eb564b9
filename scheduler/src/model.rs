//! The scheduler's input model: agents (offers), task requests and capacity groups.
//!
//! Plain serde types with no Kubernetes or Mesos types in them: the offer adapters translate
//! Nodes/Pods and Mesos offers into these, and the capacity manager can build them to simulate.
//! Names follow Titus: `Tier::Critical`, instance-group lifecycle `PhasedOut`, `capacity_group`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::resources::Resources;

/// Titus scheduling tier. `Critical` is always served before `Flex`.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum Tier {
    /// Latency-sensitive services on reserved capacity; served first.
    Critical,
    /// Latency-insensitive and batch work on elastic capacity (the Titus default).
    #[default]
    Flex,
}

impl Tier {
    /// Both tiers in scheduling order.
    pub const ALL: [Tier; 2] = [Tier::Critical, Tier::Flex];

    /// The exact Titus name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Critical => "Critical",
            Tier::Flex => "Flex",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Tier::Critical => 0,
            Tier::Flex => 1,
        }
    }
}

/// Lifecycle of the instance group an agent belongs to (Titus `InstanceGroupLifecycleState`).
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum InstanceGroupLifecycle {
    /// Not in use: no placement.
    Inactive,
    /// Normal placement target.
    #[default]
    Active,
    /// Usable, but every other agent is preferred (fitness factor 1e-6 by default).
    PhasedOut,
    /// Being drained: no placement.
    Removable,
}

impl InstanceGroupLifecycle {
    /// True when new tasks may be placed on agents of such a group.
    pub fn accepts_placements(self) -> bool {
        match self {
            InstanceGroupLifecycle::Active | InstanceGroupLifecycle::PhasedOut => true,
            InstanceGroupLifecycle::Inactive | InstanceGroupLifecycle::Removable => false,
        }
    }

    /// The exact Titus name.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceGroupLifecycle::Inactive => "Inactive",
            InstanceGroupLifecycle::Active => "Active",
            InstanceGroupLifecycle::PhasedOut => "PhasedOut",
            InstanceGroupLifecycle::Removable => "Removable",
        }
    }
}

/// Titus job type.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum JobType {
    /// Runs to completion.
    #[default]
    Batch,
    /// Long-running, kept at a desired size.
    Service,
}

/// A task already placed on an agent (running, or assigned and not yet released).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PlacedTask {
    /// The task's job.
    pub job_id: String,
    /// The capacity group whose usage the task counts against.
    #[serde(default = "default_capacity_group")]
    pub capacity_group: String,
    /// The task's tier.
    #[serde(default)]
    pub tier: Tier,
    /// What the task holds on the agent.
    pub resources: Resources,
    /// True when the task asked for `exclusiveHost` (hard): the agent then takes no other task.
    #[serde(default)]
    pub exclusive_host: bool,
}

fn default_capacity_group() -> String {
    DEFAULT_CAPACITY_GROUP.to_string()
}

/// The capacity group every Titus job without one belongs to.
pub const DEFAULT_CAPACITY_GROUP: &str = "DEFAULT";

/// An agent and what it offers: a Kubernetes Node minus what is bound to it, or the sum of one
/// Mesos agent's outstanding offers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    /// Stable identity (Node name; Mesos agent host name). Ties between equal placements are
    /// broken by the smaller id.
    pub id: String,
    /// Host name.
    #[serde(default)]
    pub host: String,
    /// Availability zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// EC2 instance type (`machineType` constraint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// Instance group / ASG name (`machineGroup` constraint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_group: Option<String>,
    /// The tier the agent's instance group serves; `None` serves both tiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// Lifecycle of the agent's instance group.
    #[serde(default)]
    pub lifecycle: InstanceGroupLifecycle,
    /// EC2 instance id (`machineId` constraint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    /// CPU model name (`cpuModel` constraint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_model: Option<String>,
    /// Kubernetes backend name (`kubeBackend` constraint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_backend: Option<String>,
    /// Every other attribute (Node labels, Mesos attributes), for reporting and adapters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// What the agent can hold in total.
    pub allocatable: Resources,
    /// What is consumed by workloads the scheduler does not track (system daemons, foreign Pods).
    #[serde(default)]
    pub used: Resources,
    /// Tasks the scheduler tracks on this agent, by task id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub placed: BTreeMap<String, PlacedTask>,
}

impl Agent {
    /// An `Active` agent with the given id (also used as host) and allocatable resources.
    pub fn new(id: impl Into<String>, allocatable: Resources) -> Agent {
        let id = id.into();
        Agent {
            host: id.clone(),
            id,
            zone: None,
            instance_type: None,
            instance_group: None,
            tier: None,
            lifecycle: InstanceGroupLifecycle::Active,
            machine_id: None,
            cpu_model: None,
            kube_backend: None,
            attributes: BTreeMap::new(),
            allocatable,
            used: Resources::ZERO,
            placed: BTreeMap::new(),
        }
    }

    /// Sets the zone.
    pub fn zone(mut self, zone: impl Into<String>) -> Agent {
        self.zone = Some(zone.into());
        self
    }

    /// Sets the instance type.
    pub fn instance_type(mut self, instance_type: impl Into<String>) -> Agent {
        self.instance_type = Some(instance_type.into());
        self
    }

    /// Sets the instance group.
    pub fn instance_group(mut self, group: impl Into<String>) -> Agent {
        self.instance_group = Some(group.into());
        self
    }

    /// Sets the tier.
    pub fn tier(mut self, tier: Tier) -> Agent {
        self.tier = Some(tier);
        self
    }

    /// Sets the instance-group lifecycle.
    pub fn lifecycle(mut self, lifecycle: InstanceGroupLifecycle) -> Agent {
        self.lifecycle = lifecycle;
        self
    }

    /// Sets the machine (EC2 instance) id.
    pub fn machine_id(mut self, machine_id: impl Into<String>) -> Agent {
        self.machine_id = Some(machine_id.into());
        self
    }

    /// Sets the CPU model.
    pub fn cpu_model(mut self, cpu_model: impl Into<String>) -> Agent {
        self.cpu_model = Some(cpu_model.into());
        self
    }

    /// Sets the Kubernetes backend.
    pub fn kube_backend(mut self, backend: impl Into<String>) -> Agent {
        self.kube_backend = Some(backend.into());
        self
    }
}

/// One pending task the scheduler should place.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TaskRequest {
    /// Task id.
    pub task_id: String,
    /// The task's job.
    pub job_id: String,
    /// Scheduling tier (from the job's capacity group).
    #[serde(default)]
    pub tier: Tier,
    /// Capacity group the task counts against.
    #[serde(default = "default_capacity_group")]
    pub capacity_group: String,
    /// Batch or service.
    #[serde(default)]
    pub job_type: JobType,
    /// What the task asks for (`pods` is normally 1).
    pub resources: Resources,
    /// Titus hard constraints, name -> value; names are case-insensitive.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hard_constraints: BTreeMap<String, String>,
    /// Titus soft constraints, name -> value; names are case-insensitive.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub soft_constraints: BTreeMap<String, String>,
    /// Queue position within a capacity group: smaller is older (submit time in ms, or a
    /// sequence number). Ties are broken by task id.
    #[serde(default)]
    pub order_key: u64,
}

impl TaskRequest {
    /// A Flex batch task in the `DEFAULT` capacity group, without constraints.
    pub fn new(
        task_id: impl Into<String>,
        job_id: impl Into<String>,
        resources: Resources,
    ) -> Self {
        TaskRequest {
            task_id: task_id.into(),
            job_id: job_id.into(),
            tier: Tier::Flex,
            capacity_group: default_capacity_group(),
            job_type: JobType::Batch,
            resources,
            hard_constraints: BTreeMap::new(),
            soft_constraints: BTreeMap::new(),
            order_key: 0,
        }
    }

    /// Sets the tier.
    pub fn tier(mut self, tier: Tier) -> Self {
        self.tier = tier;
        self
    }

    /// Sets the capacity group.
    pub fn capacity_group(mut self, group: impl Into<String>) -> Self {
        self.capacity_group = group.into();
        self
    }

    /// Sets the job type.
    pub fn job_type(mut self, job_type: JobType) -> Self {
        self.job_type = job_type;
        self
    }

    /// Adds a hard constraint.
    pub fn hard(mut self, name: &str, value: &str) -> Self {
        self.hard_constraints
            .insert(name.to_string(), value.to_string());
        self
    }

    /// Adds a soft constraint.
    pub fn soft(mut self, name: &str, value: &str) -> Self {
        self.soft_constraints
            .insert(name.to_string(), value.to_string());
        self
    }

    /// Sets the order key.
    pub fn order_key(mut self, order_key: u64) -> Self {
        self.order_key = order_key;
        self
    }
}

/// A capacity group (Titus ApplicationSLA): a guarantee of `instance_count` instances of the
/// `instance` resource dimension in `tier`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CapacityGroupSpec {
    /// Group name (Titus `appName`).
    pub name: String,
    /// Tier the group belongs to.
    #[serde(default)]
    pub tier: Tier,
    /// Resource dimension of one instance.
    pub instance: Resources,
    /// Number of instances guaranteed.
    pub instance_count: u64,
}

impl CapacityGroupSpec {
    /// The guaranteed total, `instance × instance_count` (saturating).
    pub fn guarantee(&self) -> Resources {
        self.instance
            .checked_mul(self.instance_count)
            .unwrap_or(Resources {
                cpu_milli: u64::MAX,
                memory_mb: u64::MAX,
                disk_mb: u64::MAX,
                network_mbps: u64::MAX,
                gpu: u64::MAX,
                pods: u64::MAX,
            })
    }
}
