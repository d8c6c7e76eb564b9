//! Why tasks could not be placed, and the demand they leave unmet.
//!
//! A [`PlacementFailure`] aggregates, over every agent, the first reason that agent could not
//! take the task (every short resource counts, as in Kubernetes' "0/3 nodes are available"),
//! into a line a user can act on: `0/120 offers: 80 insufficient memory, 40 zoneBalance`.
//! Agents are checked in this order, and counted under the first check that fails:
//!
//! 1. the agent's instance group takes no placements (`Inactive`, `Removable`); its tier differs
//!    from the task's; it holds an `exclusiveHost` task; it is a GPU agent reserved for GPU tasks;
//! 2. hard constraints that depend on what the agent is: `exclusiveHost` (agent not empty),
//!    `zoneBalance`, `activeHost`, `availabilityZone`, `machineGroup`, `machineType`,
//!    `kubeBackend`, `cpuModel`;
//! 3. resources (each short dimension);
//! 4. hard constraints that depend on which agent it is: `uniqueHost`, `machineId`.
//!
//! [`UnmetDemand`] groups failed tasks by the shape a new agent would need (for the capacity
//! manager). Tasks held back by their capacity group or with invalid constraints are not demand:
//! more agents would not place them.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use crate::constraints::ConstraintName;
use crate::model::{InstanceGroupLifecycle, Tier};
use crate::resources::{ResourceKind, Resources};

/// Why one agent cannot take a task.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgentRejection {
    /// The agent's instance group is `Inactive` or `Removable`.
    InstanceGroup(InstanceGroupLifecycle),
    /// The agent serves the other tier.
    TierMismatch,
    /// The agent holds a task that asked for `exclusiveHost`.
    ExclusiveHostOccupied,
    /// A GPU agent, and GPU agents are reserved for GPU tasks.
    GpuAgentReserved,
    /// A hard constraint fails.
    Constraint(ConstraintName),
    /// The agent has too little of a resource left.
    Insufficient(ResourceKind),
}

impl fmt::Display for AgentRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentRejection::InstanceGroup(lifecycle) => {
                write!(f, "instance group {}", lifecycle.as_str())
            }
            AgentRejection::TierMismatch => f.write_str("other tier"),
            AgentRejection::ExclusiveHostOccupied => f.write_str("held by an exclusiveHost task"),
            AgentRejection::GpuAgentReserved => f.write_str("GPU agent reserved for GPU tasks"),
            AgentRejection::Constraint(name) => f.write_str(name.as_str()),
            AgentRejection::Insufficient(kind) => write!(f, "insufficient {kind}"),
        }
    }
}

/// Why a task was not placed in this iteration.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum FailureCause {
    /// No agent could take the task; see [`PlacementFailure::rejections`].
    NoAgentFits,
    /// The task's capacity group is at its guarantee and the tier has no unguaranteed capacity
    /// left for it (Fenzo's "No guaranteed capacity left for queue"). The task waits.
    CapacityGroupGuaranteeExhausted {
        /// The group.
        capacity_group: String,
        /// What the group's tasks hold in the tier.
        usage: Resources,
        /// The group's guarantee (zero for a group without a spec).
        guarantee: Resources,
        /// Tier capacity not guaranteed to, nor used beyond guarantee by, any group.
        tier_remaining: Resources,
    },
    /// The task's constraints cannot be parsed.
    InvalidConstraints {
        /// The parse error.
        message: String,
    },
}

/// How many agents rejected a task for one reason.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct RejectionCount {
    /// The reason.
    pub reason: AgentRejection,
    /// Number of agents.
    pub agents: u32,
}

/// A task that could not be placed, with a human-actionable summary.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PlacementFailure {
    /// The task.
    pub task_id: String,
    /// The task's job.
    pub job_id: String,
    /// The kind of failure.
    pub cause: FailureCause,
    /// Number of agents (offers) considered.
    pub agents: u32,
    /// Agent rejections by reason, most frequent first (empty unless `NoAgentFits`).
    pub rejections: Vec<RejectionCount>,
    /// One line, e.g. `0/120 offers: 80 insufficient memory, 40 zoneBalance`.
    pub summary: String,
}

impl PlacementFailure {
    pub(crate) fn no_fit(
        task_id: &str,
        job_id: &str,
        agents: u32,
        counts: &BTreeMap<AgentRejection, u32>,
    ) -> PlacementFailure {
        let mut rejections: Vec<RejectionCount> = counts
            .iter()
            .map(|(reason, agents)| RejectionCount {
                reason: *reason,
                agents: *agents,
            })
            .collect();
        rejections.sort_by(|a, b| b.agents.cmp(&a.agents).then(a.reason.cmp(&b.reason)));
        let mut summary = format!("0/{agents} offers");
        if agents == 0 {
            summary.push_str(": no agents");
        }
        for (i, rejection) in rejections.iter().enumerate() {
            let sep = if i == 0 { ": " } else { ", " };
            let _ = write!(summary, "{sep}{} {}", rejection.agents, rejection.reason);
        }
        PlacementFailure {
            task_id: task_id.to_string(),
            job_id: job_id.to_string(),
            cause: FailureCause::NoAgentFits,
            agents,
            rejections,
            summary,
        }
    }

    pub(crate) fn other(task_id: &str, job_id: &str, agents: u32, cause: FailureCause) -> Self {
        let summary = match &cause {
            FailureCause::NoAgentFits => format!("0/{agents} offers"),
            FailureCause::CapacityGroupGuaranteeExhausted {
                capacity_group,
                usage,
                guarantee,
                tier_remaining,
            } => format!(
                "capacity group {capacity_group} has no guaranteed capacity left \
                 (usage {usage}; guarantee {guarantee}; unguaranteed tier capacity left \
                 {tier_remaining}); waiting"
            ),
            FailureCause::InvalidConstraints { message } => {
                format!("invalid constraints: {message}")
            }
        };
        PlacementFailure {
            task_id: task_id.to_string(),
            job_id: job_id.to_string(),
            cause,
            agents,
            rejections: Vec::new(),
            summary,
        }
    }

    /// True when more agents could place the task (it counts as unmet demand).
    pub fn is_capacity_shortage(&self) -> bool {
        match self.cause {
            FailureCause::NoAgentFits => true,
            FailureCause::CapacityGroupGuaranteeExhausted { .. }
            | FailureCause::InvalidConstraints { .. } => false,
        }
    }
}

/// What a new agent must offer to take a group of failed tasks.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DemandShape {
    /// The tasks' tier.
    pub tier: Tier,
    /// CPU in thousandths of a core (one task).
    pub cpu_milli: u64,
    /// Memory in MB (one task).
    pub memory_mb: u64,
    /// Disk in MB (one task).
    pub disk_mb: u64,
    /// Network in Mbps (one task).
    pub network_mbps: u64,
    /// GPUs (one task).
    pub gpu: u64,
    /// Hard `machineType`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_type: Option<String>,
    /// Hard `machineGroup`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_group: Option<String>,
    /// Hard `availabilityZone`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
}

impl DemandShape {
    /// The per-task resources of the shape (one Pod slot).
    pub fn resources(&self) -> Resources {
        Resources {
            cpu_milli: self.cpu_milli,
            memory_mb: self.memory_mb,
            disk_mb: self.disk_mb,
            network_mbps: self.network_mbps,
            gpu: self.gpu,
            pods: 1,
        }
    }
}

/// Failed tasks of one shape.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UnmetDemand {
    /// The shape.
    pub shape: DemandShape,
    /// Number of tasks.
    pub tasks: u32,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn summary_lists_reasons_most_frequent_first() {
        let counts = BTreeMap::from([
            (AgentRejection::Constraint(ConstraintName::ZoneBalance), 40),
            (AgentRejection::Insufficient(ResourceKind::Memory), 80),
        ]);
        let failure = PlacementFailure::no_fit("t1", "j1", 120, &counts);
        assert_eq!(
            failure.summary,
            "0/120 offers: 80 insufficient memory, 40 zoneBalance"
        );
        assert!(failure.is_capacity_shortage());
        let none = PlacementFailure::no_fit("t1", "j1", 0, &BTreeMap::new());
        assert_eq!(none.summary, "0/0 offers: no agents");
    }
}
