//! `ClusterState`: the in-memory index of agents and placed tasks the scheduler decides from.
//!
//! Adapters feed it events as they see them (agent added/updated/removed, task bound/finished)
//! instead of rebuilding it per decision; every event costs O(log n) plus the agent's own tasks
//! when its attributes change. Besides the agents it keeps, incrementally:
//!
//! - per job, the number of its tasks on each agent and in each zone (`uniqueHost`,
//!   `zoneBalance`);
//! - per (tier, capacity group), the resources its placed tasks hold;
//! - per tier, the allocatable capacity of the agents that can take placements;
//! - **agent classes**: agents grouped by everything placement looks at except identity
//!   (allocatable, free resources, zone, instance type and group, tier, lifecycle, CPU model,
//!   backend, whether the agent is empty or holds an `exclusiveHost` task). All agents of a class
//!   are interchangeable for a task without identity constraints, so placement evaluates one
//!   representative per class (the smallest agent id) instead of every agent. On a bin-packed
//!   fleet the number of classes stays far below the number of agents.
//!
//! Start reading at [`ClusterState::upsert_agent`] and [`ClusterState::place_task`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::model::{Agent, InstanceGroupLifecycle, PlacedTask, Tier};
use crate::resources::{ResourceError, Resources};
use crate::slab::Slab;

/// Index of an agent in the slab.
pub(crate) type AgentIdx = u32;
/// Index of a class in the slab.
pub(crate) type ClassId = u32;
/// Index of an interned static signature.
pub(crate) type SigId = u32;

/// Errors of [`ClusterState`] updates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// The agent is not in the index.
    #[error("agent {agent_id} is not known")]
    UnknownAgent {
        /// The agent.
        agent_id: String,
    },
    /// The agent's committed resources would overflow.
    #[error("resources of agent {agent_id} overflow")]
    Resources {
        /// The agent.
        agent_id: String,
        /// The failing arithmetic.
        #[source]
        source: ResourceError,
    },
}

/// What placement reads of an agent besides its free resources; agents with equal signatures and
/// equal free resources are interchangeable.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct AgentSig {
    pub allocatable: Resources,
    pub zone: Option<Arc<str>>,
    pub instance_type: Option<String>,
    pub instance_group: Option<String>,
    pub tier: Option<Tier>,
    pub lifecycle: InstanceGroupLifecycle,
    pub cpu_model: Option<String>,
    pub kube_backend: Option<String>,
}

impl AgentSig {
    fn of(agent: &Agent) -> AgentSig {
        AgentSig {
            allocatable: agent.allocatable,
            zone: agent.zone.as_deref().map(Arc::from),
            instance_type: agent.instance_type.clone(),
            instance_group: agent.instance_group.clone(),
            tier: agent.tier,
            lifecycle: agent.lifecycle,
            cpu_model: agent.cpu_model.clone(),
            kube_backend: agent.kube_backend.clone(),
        }
    }

    /// True when tasks of `tier` may use agents with this signature.
    pub fn serves(&self, tier: Tier) -> bool {
        self.tier.is_none_or(|own| own == tier)
    }
}

/// The key agents are grouped by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClassKey {
    /// Set only in an ungrouped index: one class per agent.
    pub agent: Option<AgentIdx>,
    pub sig: SigId,
    pub free: Resources,
    pub empty: bool,
    pub exclusive: bool,
}

/// Interchangeable agents.
#[derive(Clone, Debug)]
pub(crate) struct AgentClass {
    pub key: ClassKey,
    /// Members ordered by agent id, so the first is the tie-break winner.
    pub members: BTreeSet<(Arc<str>, AgentIdx)>,
}

#[derive(Clone, Debug)]
pub(crate) struct AgentSlot {
    pub agent: Agent,
    pub id: Arc<str>,
    pub sig: SigId,
    /// `used` plus every placed task.
    committed: Resources,
    pub free: Resources,
    exclusive_tasks: u32,
    pub class: ClassId,
}

/// Where a job's tasks are.
#[derive(Clone, Debug, Default)]
pub(crate) struct JobPlacements {
    pub per_agent: HashMap<AgentIdx, u32>,
    pub per_zone: HashMap<Arc<str>, u32>,
}

/// Signatures shared by agents, reference-counted.
#[derive(Clone, Debug, Default)]
struct SigInterner {
    sigs: Slab<(AgentSig, u32)>,
    ids: HashMap<AgentSig, SigId>,
}

impl SigInterner {
    fn acquire(&mut self, sig: AgentSig) -> SigId {
        if let Some(&id) = self.ids.get(&sig) {
            if let Some((_, refs)) = self.sigs.get_mut(id) {
                *refs += 1;
            }
            return id;
        }
        let id = self.sigs.insert((sig.clone(), 1));
        self.ids.insert(sig, id);
        id
    }

    fn release(&mut self, id: SigId) {
        let Some((_, refs)) = self.sigs.get_mut(id) else {
            return;
        };
        *refs -= 1;
        if *refs == 0
            && let Some((sig, _)) = self.sigs.remove(id)
        {
            self.ids.remove(&sig);
        }
    }
}

/// The scheduler's view of the cluster. Cheap to clone for what-if simulation.
#[derive(Clone, Debug, Default)]
pub struct ClusterState {
    slots: Slab<AgentSlot>,
    by_id: HashMap<String, AgentIdx>,
    by_machine_id: HashMap<String, BTreeSet<AgentIdx>>,
    sigs: SigInterner,
    classes: Slab<AgentClass>,
    class_by_key: HashMap<ClassKey, ClassId>,
    tasks: HashMap<String, AgentIdx>,
    jobs: HashMap<String, JobPlacements>,
    group_usage: HashMap<(Tier, String), Resources>,
    tier_capacity: [Resources; 2],
    ungrouped: bool,
}

impl ClusterState {
    /// An empty index.
    pub fn new() -> ClusterState {
        ClusterState::default()
    }

    /// An empty index that puts every agent in a class of its own, so placement evaluates every
    /// agent. Placement decisions are identical to [`ClusterState::new`]'s; only slower. For
    /// benchmarks and equivalence tests of the class index.
    pub fn without_class_grouping() -> ClusterState {
        ClusterState {
            ungrouped: true,
            ..ClusterState::default()
        }
    }

    /// Adds an agent, or replaces an existing agent's attributes, allocatable and `used`.
    ///
    /// Existing placements on the agent are kept; placements listed in `agent.placed` are
    /// recorded as by [`ClusterState::place_task`]. Placements are only ever removed by
    /// [`ClusterState::release_task`] and [`ClusterState::remove_agent`].
    ///
    /// # Errors
    /// [`ClusterError::Resources`] when the agent's committed resources overflow; the index is
    /// left as it was.
    pub fn upsert_agent(&mut self, mut agent: Agent) -> Result<(), ClusterError> {
        let incoming = std::mem::take(&mut agent.placed);
        let kept = self
            .agent(&agent.id)
            .map(|old| old.placed.clone())
            .unwrap_or_default();
        kept.values()
            .chain(incoming.values())
            .try_fold(agent.used, |acc, task| acc.checked_add(&task.resources))
            .map_err(|source| ClusterError::Resources {
                agent_id: agent.id.clone(),
                source,
            })?;
        self.remove_agent(&agent.id);
        let idx = self.insert_slot(agent);
        for (task_id, task) in kept.into_iter().chain(incoming) {
            if self.tasks.contains_key(&task_id) {
                self.release_task(&task_id);
            }
            if let Err(err) = self.place_at(idx, task_id, task) {
                // Unreachable: the sum was checked above.
                tracing::error!(%err, "placement lost while re-indexing an agent");
            }
        }
        Ok(())
    }

    fn insert_slot(&mut self, agent: Agent) -> AgentIdx {
        let sig_value = AgentSig::of(&agent);
        if sig_value.lifecycle.accepts_placements() {
            for tier in Tier::ALL.into_iter().filter(|tier| sig_value.serves(*tier)) {
                let cap = &mut self.tier_capacity[tier.index()];
                *cap = cap.saturating_add(&agent.allocatable);
            }
        }
        let machine_id = agent.machine_id.as_deref().map(str::to_ascii_lowercase);
        let agent_id = agent.id.clone();
        let idx = self.slots.insert(AgentSlot {
            id: Arc::from(agent.id.as_str()),
            sig: self.sigs.acquire(sig_value),
            committed: agent.used,
            free: agent.allocatable.saturating_sub(&agent.used),
            exclusive_tasks: 0,
            class: 0,
            agent,
        });
        if let Some(key) = machine_id {
            self.by_machine_id.entry(key).or_default().insert(idx);
        }
        self.by_id.insert(agent_id, idx);
        self.attach_class(idx);
        idx
    }

    /// Removes an agent and every placement on it; returns it as it was (with `placed`).
    pub fn remove_agent(&mut self, agent_id: &str) -> Option<Agent> {
        let idx = *self.by_id.get(agent_id)?;
        let task_ids: Vec<String> = self.slot(idx).agent.placed.keys().cloned().collect();
        let mut removed_tasks = std::collections::BTreeMap::new();
        for task_id in task_ids {
            if let Some((_, task)) = self.release_task(&task_id) {
                removed_tasks.insert(task_id, task);
            }
        }
        self.detach_class(idx);
        self.by_id.remove(agent_id);
        let slot = self.slots.remove(idx)?;
        if let Some(machine_id) = &slot.agent.machine_id {
            let key = machine_id.to_ascii_lowercase();
            if let Some(set) = self.by_machine_id.get_mut(&key) {
                set.remove(&idx);
                if set.is_empty() {
                    self.by_machine_id.remove(&key);
                }
            }
        }
        let sig = self.sig(slot.sig).clone();
        if sig.lifecycle.accepts_placements() {
            for tier in Tier::ALL.into_iter().filter(|tier| sig.serves(*tier)) {
                let cap = &mut self.tier_capacity[tier.index()];
                *cap = cap.saturating_sub(&slot.agent.allocatable);
            }
        }
        self.sigs.release(slot.sig);
        let mut agent = slot.agent;
        agent.placed = removed_tasks;
        Some(agent)
    }

    /// Records that a task holds resources on an agent (bound Pod, launched Mesos task, or an
    /// assignment the scheduler just made). Idempotent; a task recorded on another agent moves.
    /// The placement is recorded even when it overcommits the agent: observed reality wins, and
    /// the agent then has no free resources.
    ///
    /// # Errors
    /// [`ClusterError::UnknownAgent`]; [`ClusterError::Resources`] on overflow.
    pub fn place_task(
        &mut self,
        agent_id: &str,
        task_id: &str,
        task: PlacedTask,
    ) -> Result<(), ClusterError> {
        let idx = *self
            .by_id
            .get(agent_id)
            .ok_or_else(|| ClusterError::UnknownAgent {
                agent_id: agent_id.to_string(),
            })?;
        if let Some(&current) = self.tasks.get(task_id) {
            if current == idx && self.slot(idx).agent.placed.get(task_id) == Some(&task) {
                return Ok(());
            }
            self.release_task(task_id);
        }
        self.place_at(idx, task_id.to_string(), task)
    }

    pub(crate) fn place_at(
        &mut self,
        idx: AgentIdx,
        task_id: String,
        task: PlacedTask,
    ) -> Result<(), ClusterError> {
        let slot = self.slot(idx);
        let committed = slot
            .committed
            .checked_add(&task.resources)
            .map_err(|source| ClusterError::Resources {
                agent_id: slot.agent.id.clone(),
                source,
            })?;
        let zone = self.sig(slot.sig).zone.clone();
        self.detach_class(idx);
        let job = self.jobs.entry(task.job_id.clone()).or_default();
        *job.per_agent.entry(idx).or_default() += 1;
        if let Some(zone) = zone {
            *job.per_zone.entry(zone).or_default() += 1;
        }
        let usage = self
            .group_usage
            .entry((task.tier, task.capacity_group.clone()))
            .or_default();
        *usage = usage.saturating_add(&task.resources);
        self.tasks.insert(task_id.clone(), idx);
        let slot = self.slot_mut(idx);
        slot.committed = committed;
        slot.free = slot.agent.allocatable.saturating_sub(&committed);
        if task.exclusive_host {
            slot.exclusive_tasks += 1;
        }
        slot.agent.placed.insert(task_id, task);
        self.attach_class(idx);
        Ok(())
    }

    /// Forgets a task (finished, deleted, or an assignment whose bind failed). Returns the agent
    /// it was on and its record; `None` when the task was not placed.
    pub fn release_task(&mut self, task_id: &str) -> Option<(String, PlacedTask)> {
        let idx = self.tasks.remove(task_id)?;
        self.detach_class(idx);
        let zone = self.sig(self.slot(idx).sig).zone.clone();
        let slot = self.slot_mut(idx);
        let removed = slot.agent.placed.remove(task_id);
        if let Some(task) = &removed {
            slot.committed = slot.committed.saturating_sub(&task.resources);
            slot.free = slot.agent.allocatable.saturating_sub(&slot.committed);
            if task.exclusive_host {
                slot.exclusive_tasks = slot.exclusive_tasks.saturating_sub(1);
            }
        }
        let agent_id = slot.agent.id.clone();
        self.attach_class(idx);
        let task = removed?;
        if let Some(job) = self.jobs.get_mut(&task.job_id) {
            decrement(&mut job.per_agent, &idx);
            if let Some(zone) = zone {
                decrement(&mut job.per_zone, &zone);
            }
            if job.per_agent.is_empty() {
                self.jobs.remove(&task.job_id);
            }
        }
        let key = (task.tier, task.capacity_group.clone());
        if let Some(usage) = self.group_usage.get_mut(&key) {
            *usage = usage.saturating_sub(&task.resources);
            if *usage == Resources::ZERO {
                self.group_usage.remove(&key);
            }
        }
        Some((agent_id, task))
    }

    /// The agent, as last upserted, with its current placements.
    pub fn agent(&self, agent_id: &str) -> Option<&Agent> {
        self.by_id.get(agent_id).map(|idx| &self.slot(*idx).agent)
    }

    /// All agents, in no particular order.
    pub fn agents(&self) -> impl Iterator<Item = &Agent> {
        self.slots.iter().map(|(_, slot)| &slot.agent)
    }

    /// Number of agents.
    pub fn agent_count(&self) -> usize {
        self.by_id.len()
    }

    /// Number of placed tasks.
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// Number of agent classes (interchangeable-agent groups) placement evaluates.
    pub fn class_count(&self) -> usize {
        self.class_by_key.len()
    }

    /// What the agent can still take: allocatable minus `used` minus its placed tasks.
    pub fn free_resources(&self, agent_id: &str) -> Option<Resources> {
        self.by_id.get(agent_id).map(|idx| self.slot(*idx).free)
    }

    /// The agent a task is placed on.
    pub fn task_agent(&self, task_id: &str) -> Option<&str> {
        self.tasks
            .get(task_id)
            .map(|idx| self.slot(*idx).agent.id.as_str())
    }

    /// Number of the job's tasks on the agent.
    pub fn job_tasks_on_agent(&self, job_id: &str, agent_id: &str) -> u32 {
        let (Some(job), Some(idx)) = (self.jobs.get(job_id), self.by_id.get(agent_id)) else {
            return 0;
        };
        job.per_agent.get(idx).copied().unwrap_or(0)
    }

    /// Number of the job's tasks in the zone.
    pub fn job_tasks_in_zone(&self, job_id: &str, zone: &str) -> u32 {
        self.jobs
            .get(job_id)
            .and_then(|job| job.per_zone.get(zone).copied())
            .unwrap_or(0)
    }

    /// Resources held by placed tasks of a capacity group in a tier.
    pub fn capacity_group_usage(&self, tier: Tier, capacity_group: &str) -> Resources {
        self.group_usage
            .get(&(tier, capacity_group.to_string()))
            .copied()
            .unwrap_or_default()
    }

    /// Capacity groups with placed tasks in a tier, and their usage.
    pub fn capacity_groups_in_use(&self, tier: Tier) -> impl Iterator<Item = (&str, Resources)> {
        self.group_usage
            .iter()
            .filter(move |((t, _), _)| *t == tier)
            .map(|((_, name), usage)| (name.as_str(), *usage))
    }

    /// Allocatable capacity of the agents that may take `tier` tasks (lifecycle `Active` or
    /// `PhasedOut`, tier equal or unset).
    pub fn tier_capacity(&self, tier: Tier) -> Resources {
        self.tier_capacity[tier.index()]
    }

    // The accessors below take ids held by the index itself (agent, class and signature ids
    // are only handed out while their entry exists), so a missing entry is a bug in this
    // module, not bad input.

    pub(crate) fn slot(&self, idx: AgentIdx) -> &AgentSlot {
        self.slots
            .get(idx)
            .unwrap_or_else(|| broken_index("agent", idx))
    }

    fn slot_mut(&mut self, idx: AgentIdx) -> &mut AgentSlot {
        self.slots
            .get_mut(idx)
            .unwrap_or_else(|| broken_index("agent", idx))
    }

    pub(crate) fn sig(&self, id: SigId) -> &AgentSig {
        self.sigs
            .sigs
            .get(id)
            .map(|(sig, _)| sig)
            .unwrap_or_else(|| broken_index("signature", id))
    }

    pub(crate) fn classes(&self) -> impl Iterator<Item = (ClassId, &AgentClass)> {
        self.classes.iter()
    }

    pub(crate) fn class(&self, id: ClassId) -> &AgentClass {
        self.classes
            .get(id)
            .unwrap_or_else(|| broken_index("class", id))
    }

    pub(crate) fn job(&self, job_id: &str) -> Option<&JobPlacements> {
        self.jobs.get(job_id)
    }

    pub(crate) fn agents_with_machine_id(&self, machine_id: &str) -> Vec<AgentIdx> {
        self.by_machine_id
            .get(&machine_id.to_ascii_lowercase())
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default()
    }

    fn attach_class(&mut self, idx: AgentIdx) {
        let slot = self.slot(idx);
        let key = ClassKey {
            agent: self.ungrouped.then_some(idx),
            sig: slot.sig,
            free: slot.free,
            empty: slot.agent.placed.is_empty(),
            exclusive: slot.exclusive_tasks > 0,
        };
        let member = (slot.id.clone(), idx);
        let id = match self.class_by_key.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.classes.insert(AgentClass {
                    key: key.clone(),
                    members: BTreeSet::new(),
                });
                self.class_by_key.insert(key, id);
                id
            }
        };
        if let Some(class) = self.classes.get_mut(id) {
            class.members.insert(member);
        }
        self.slot_mut(idx).class = id;
    }

    fn detach_class(&mut self, idx: AgentIdx) {
        let slot = self.slot(idx);
        let (id, member) = (slot.class, (slot.id.clone(), idx));
        let Some(class) = self.classes.get_mut(id) else {
            return;
        };
        class.members.remove(&member);
        if class.members.is_empty()
            && let Some(class) = self.classes.remove(id)
        {
            self.class_by_key.remove(&class.key);
        }
    }
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u32>, key: &K) {
    if let Some(count) = map.get_mut(key) {
        *count -= 1;
        if *count == 0 {
            map.remove(key);
        }
    }
}

fn broken_index(what: &str, id: u32) -> ! {
    panic!("cluster index is inconsistent: {what} {id} is referenced but absent")
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
