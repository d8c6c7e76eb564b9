//! A workload as JSON: agents, capacity groups and jobs, expanded into a [`ClusterState`] and
//! pending [`TaskRequest`]s. The `scheduler-bench` binary replays such files; the format is
//! documented in `docs/scheduler.md` and a sample lives in `scheduler/workloads/`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cluster::{ClusterError, ClusterState};
use crate::model::{
    Agent, CapacityGroupSpec, DEFAULT_CAPACITY_GROUP, InstanceGroupLifecycle, JobType, TaskRequest,
    Tier,
};
use crate::resources::Resources;

/// Errors reading a workload.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The JSON does not match the format.
    #[error("workload is not valid: {0}")]
    Json(#[from] serde_json::Error),
    /// An agent could not be indexed.
    #[error("workload agent rejected")]
    Agent(#[from] ClusterError),
}

/// A whole workload.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Agent groups (each expands to `count` agents).
    #[serde(default)]
    pub agents: Vec<AgentGroup>,
    /// Capacity groups (guarantees).
    #[serde(default)]
    pub capacity_groups: Vec<CapacityGroupSpec>,
    /// Jobs (each expands to `count` pending tasks).
    #[serde(default)]
    pub jobs: Vec<JobSpec>,
}

/// `count` identical agents.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentGroup {
    /// Agent id when `count` is 1, else the prefix of `<name>-<index>`.
    pub name: String,
    /// Number of agents.
    #[serde(default = "one")]
    pub count: u32,
    /// Zones, assigned round-robin.
    #[serde(default)]
    pub zones: Vec<String>,
    /// Instance type.
    #[serde(default)]
    pub instance_type: Option<String>,
    /// Instance group.
    #[serde(default)]
    pub instance_group: Option<String>,
    /// Tier served; absent serves both.
    #[serde(default)]
    pub tier: Option<Tier>,
    /// Instance-group lifecycle.
    #[serde(default)]
    pub lifecycle: InstanceGroupLifecycle,
    /// CPU model.
    #[serde(default)]
    pub cpu_model: Option<String>,
    /// Kubernetes backend.
    #[serde(default)]
    pub kube_backend: Option<String>,
    /// Extra attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Allocatable resources of each agent.
    pub allocatable: Resources,
}

/// `count` identical pending tasks of one job.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Job id; task ids are `<id>-<index>`.
    pub id: String,
    /// Number of tasks.
    #[serde(default = "one")]
    pub count: u32,
    /// Tier.
    #[serde(default)]
    pub tier: Tier,
    /// Capacity group.
    #[serde(default = "default_group")]
    pub capacity_group: String,
    /// Batch or service.
    #[serde(default)]
    pub job_type: JobType,
    /// Resources of one task (`pods` defaults to 1).
    pub task: Resources,
    /// Hard constraints.
    #[serde(default)]
    pub hard_constraints: BTreeMap<String, String>,
    /// Soft constraints.
    #[serde(default)]
    pub soft_constraints: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

fn default_group() -> String {
    DEFAULT_CAPACITY_GROUP.to_string()
}

impl Workload {
    /// Parses a workload.
    ///
    /// # Errors
    /// [`WorkloadError::Json`] when the text is not a workload.
    pub fn from_json(text: &str) -> Result<Workload, WorkloadError> {
        Ok(serde_json::from_str(text)?)
    }

    /// Every agent, ids as documented, machine ids `i-<agent id>`.
    pub fn agents(&self) -> Vec<Agent> {
        let mut agents = Vec::new();
        for group in &self.agents {
            for i in 0..group.count {
                let id = if group.count == 1 {
                    group.name.clone()
                } else {
                    format!("{}-{i:05}", group.name)
                };
                let mut agent =
                    Agent::new(id.clone(), group.allocatable).machine_id(format!("i-{id}"));
                if !group.zones.is_empty() {
                    agent.zone = Some(group.zones[i as usize % group.zones.len()].clone());
                }
                agent.instance_type = group.instance_type.clone();
                agent.instance_group = group.instance_group.clone();
                agent.tier = group.tier;
                agent.lifecycle = group.lifecycle;
                agent.cpu_model = group.cpu_model.clone();
                agent.kube_backend = group.kube_backend.clone();
                agent.attributes = group.attributes.clone();
                agents.push(agent);
            }
        }
        agents
    }

    /// Every pending task, in file order; order keys follow that order.
    pub fn tasks(&self) -> Vec<TaskRequest> {
        let mut tasks = Vec::new();
        for job in &self.jobs {
            let mut resources = job.task;
            if resources.pods == 0 {
                resources.pods = 1;
            }
            for i in 0..job.count {
                let mut task =
                    TaskRequest::new(format!("{}-{i}", job.id), job.id.clone(), resources)
                        .tier(job.tier)
                        .capacity_group(job.capacity_group.clone())
                        .job_type(job.job_type)
                        .order_key(tasks.len() as u64);
                task.hard_constraints = job.hard_constraints.clone();
                task.soft_constraints = job.soft_constraints.clone();
                tasks.push(task);
            }
        }
        tasks
    }

    /// A cluster index holding every agent.
    ///
    /// # Errors
    /// [`WorkloadError::Agent`] when an agent cannot be indexed.
    pub fn cluster(&self) -> Result<ClusterState, WorkloadError> {
        self.cluster_into(ClusterState::new())
    }

    /// Adds every agent to `state`.
    ///
    /// # Errors
    /// [`WorkloadError::Agent`] when an agent cannot be indexed.
    pub fn cluster_into(&self, mut state: ClusterState) -> Result<ClusterState, WorkloadError> {
        for agent in self.agents() {
            state.upsert_agent(agent)?;
        }
        Ok(state)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_sample_parses_and_expands() {
        let text = include_str!("../workloads/sample.json");
        let workload = Workload::from_json(text).unwrap();
        let agents = workload.agents();
        let tasks = workload.tasks();
        assert!(agents.len() >= 10, "sample has a fleet");
        assert!(tasks.iter().all(|t| t.resources.pods == 1));
        let state = workload.cluster().unwrap();
        assert_eq!(state.agent_count(), agents.len());
        let mut ids: Vec<_> = tasks.iter().map(|t| t.task_id.as_str()).collect();
        ids.dedup();
        assert_eq!(ids.len(), tasks.len(), "task ids are unique");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = Workload::from_json(r#"{"agents": [], "nodes": []}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
