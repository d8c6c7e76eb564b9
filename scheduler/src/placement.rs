//! `schedule()`: one Fenzo-style scheduling iteration over the cluster index.
//!
//! For each pending task, in tiered-queue order (`queue.rs`, see `docs/scheduler.md`):
//!
//! 1. parse its constraints; check its capacity group may use capacity now;
//! 2. evaluate every agent class of the [`ClusterState`]: instance-group lifecycle, tier, GPU
//!    policy, hard constraints, resource fit; score the fitting ones ([`crate::fitness`]);
//! 3. inside the best classes, pick the member that satisfies identity constraints (`uniqueHost`,
//!    `machineId`): the smallest agent id among equals;
//! 4. record the assignment in the state at once (free resources, job/zone counts, capacity
//!    group usage), so later tasks of the same iteration see it and nothing is overcommitted.
//!
//! Candidates are ordered by: non-GPU tasks on non-GPU agents first (a GPU agent is a last
//! resort for them), then fitness (higher first), then agent id (smaller first). Evaluation is
//! exhaustive over classes (no "good enough" early exit), so the result does not depend on
//! evaluation order and equal input gives equal output.
//!
//! Assignments stay recorded in the state: a caller whose bind (or Mesos launch) fails calls
//! [`ClusterState::release_task`]. To simulate without committing, schedule on a clone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::cluster::{AgentClass, AgentIdx, ClassId, ClusterState, JobPlacements};
use crate::constraints::{
    ConstraintName, ConstraintSet, zone_balance_allows, zone_balance_fitness,
};
use crate::failure::{AgentRejection, DemandShape, FailureCause, PlacementFailure, UnmetDemand};
use crate::fitness::FitnessConfig;
use crate::model::{CapacityGroupSpec, InstanceGroupLifecycle, PlacedTask, TaskRequest, Tier};
use crate::queue::{Admission, TierQueue};
use crate::resources::Resources;

/// What non-GPU tasks may do with GPU agents.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GpuAgentPolicy {
    /// Only when no non-GPU agent fits (the default).
    #[default]
    LastResort,
    /// Never (Titus's `AgentManagementConstraint`: "Instance group does not run non gpu tasks").
    GpuTasksOnly,
}

/// Scheduler settings.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(default)]
pub struct PlacementConfig {
    /// Fitness weights and factors.
    pub fitness: FitnessConfig,
    /// Number of zones `zoneBalance` expects (Titus: 3).
    pub expected_zones: u32,
    /// GPU agents and non-GPU tasks.
    pub gpu_agents: GpuAgentPolicy,
}

impl Default for PlacementConfig {
    fn default() -> Self {
        PlacementConfig {
            fitness: FitnessConfig::default(),
            expected_zones: 3,
            gpu_agents: GpuAgentPolicy::LastResort,
        }
    }
}

/// A task placed on an agent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Assignment {
    /// The task.
    pub task_id: String,
    /// The task's job.
    pub job_id: String,
    /// The chosen agent.
    pub agent_id: String,
    /// The agent's fitness for the task.
    pub fitness: f64,
}

/// Counters of one iteration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct IterationStats {
    /// Pending tasks considered (duplicates and already-placed tasks excluded).
    pub tasks: usize,
    /// Pending tasks skipped because the state already has them placed.
    pub already_placed: usize,
    /// Agent-class evaluations performed.
    pub class_evaluations: u64,
    /// Agent classes at the start of the iteration.
    pub agent_classes: usize,
}

/// What one iteration decided.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SchedulingResult {
    /// Placements, in the order they were made.
    pub assignments: Vec<Assignment>,
    /// Tasks not placed, in queue order.
    pub failures: Vec<PlacementFailure>,
    /// Failed tasks that more agents would place, by shape (largest count first).
    pub unmet_demand: Vec<UnmetDemand>,
    /// Counters.
    pub stats: IterationStats,
}

/// Runs one scheduling iteration: places what it can of `pending` on `state` and records the
/// assignments in `state`.
///
/// # Guarantees
/// - No agent is given more than its free resources; every hard constraint holds, counting
///   tasks assigned earlier in the same iteration.
/// - Every pending task not already placed appears exactly once, in `assignments` or in
///   `failures` (duplicate task ids are considered once).
/// - Deterministic: equal state and input give equal output.
pub fn schedule(
    state: &mut ClusterState,
    pending: &[TaskRequest],
    groups: &[CapacityGroupSpec],
    config: &PlacementConfig,
) -> SchedulingResult {
    let mut result = SchedulingResult::default();
    result.stats.agent_classes = state.class_count();
    let mut seen = HashSet::with_capacity(pending.len());
    let mut per_tier: [Vec<&TaskRequest>; 2] = [Vec::new(), Vec::new()];
    for task in pending {
        if !seen.insert(task.task_id.as_str()) {
            continue;
        }
        if state.task_agent(&task.task_id).is_some() {
            result.stats.already_placed += 1;
            continue;
        }
        per_tier[task.tier.index()].push(task);
    }
    let mut engine = Engine {
        state,
        config,
        memo: HashMap::new(),
        demand: BTreeMap::new(),
        result,
    };
    for (tier, tasks) in Tier::ALL.into_iter().zip(per_tier) {
        engine.result.stats.tasks += tasks.len();
        let mut queue = TierQueue::new(tier, tasks, groups, engine.state);
        while let Some((bucket, task)) = queue.next_task() {
            let assigned = engine.serve(&queue, bucket, task);
            queue.served(bucket, assigned.as_ref());
        }
    }
    let mut demand: Vec<UnmetDemand> = engine
        .demand
        .into_iter()
        .map(|(shape, tasks)| UnmetDemand { shape, tasks })
        .collect();
    demand.sort_by(|a, b| b.tasks.cmp(&a.tasks).then_with(|| a.shape.cmp(&b.shape)));
    let mut result = engine.result;
    result.unmet_demand = demand;
    tracing::debug!(
        tasks = result.stats.tasks,
        placed = result.assignments.len(),
        failed = result.failures.len(),
        classes = result.stats.agent_classes,
        "scheduling iteration"
    );
    result
}

/// A task's parsed request.
struct Plan<'t> {
    task: &'t TaskRequest,
    hard: ConstraintSet,
    soft: ConstraintSet,
    soft_count: usize,
    /// Soft constraints on agent attributes (1.0 each where they match).
    soft_attribute_count: usize,
    gpu_task: bool,
}

/// Failures of tasks whose identical successors (same job, shape, constraints, tier) are known to
/// fail too until the job gets a placement: nothing is released inside an iteration.
type MemoKey = (Resources, ConstraintSet, ConstraintSet, Tier);

struct Engine<'s, 'c> {
    state: &'s mut ClusterState,
    config: &'c PlacementConfig,
    memo: HashMap<String, Vec<(MemoKey, PlacementFailure)>>,
    demand: BTreeMap<DemandShape, u32>,
    result: SchedulingResult,
}

/// The class-level verdict for a task.
enum Verdict {
    Rejected(AgentRejection),
    Short,
    Fits(ClassFit),
}

#[derive(Clone, Copy)]
struct ClassFit {
    soft_sum: f64,
    binpack: f64,
    lifecycle: InstanceGroupLifecycle,
    gpu_avoid: bool,
}

#[derive(Clone)]
struct Candidate {
    idx: AgentIdx,
    id: Arc<str>,
    gpu_avoid: bool,
    score: f64,
}

impl Candidate {
    /// Non-GPU-avoiding first, then higher fitness, then smaller agent id.
    fn beats(&self, other: &Candidate) -> bool {
        if self.gpu_avoid != other.gpu_avoid {
            return !self.gpu_avoid;
        }
        match self.score.total_cmp(&other.score) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => self.id < other.id,
        }
    }
}

impl Engine<'_, '_> {
    fn serve(
        &mut self,
        queue: &TierQueue<'_>,
        bucket: usize,
        task: &TaskRequest,
    ) -> Option<Resources> {
        let agents = self.state.agent_count() as u32;
        let plan = match plan(task) {
            Ok(plan) => plan,
            Err(message) => {
                let cause = FailureCause::InvalidConstraints { message };
                self.fail(
                    PlacementFailure::other(&task.task_id, &task.job_id, agents, cause),
                    task,
                );
                return None;
            }
        };
        if let Admission::Wait {
            usage,
            guarantee,
            tier_remaining,
        } = queue.admit(bucket, &task.resources)
        {
            let cause = FailureCause::CapacityGroupGuaranteeExhausted {
                capacity_group: task.capacity_group.clone(),
                usage,
                guarantee,
                tier_remaining,
            };
            self.fail(
                PlacementFailure::other(&task.task_id, &task.job_id, agents, cause),
                task,
            );
            return None;
        }
        let key: MemoKey = (
            task.resources,
            plan.hard.clone(),
            plan.soft.clone(),
            task.tier,
        );
        if let Some(known) = self.memo.get(&task.job_id).and_then(|entries| {
            entries
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, failure)| failure.clone())
        }) {
            let failure = PlacementFailure {
                task_id: task.task_id.clone(),
                ..known
            };
            self.fail(failure, task);
            return None;
        }
        match self.find_best(&plan) {
            Some(best) => self.assign(&plan, best),
            None => {
                let failure = self.diagnose(&plan);
                self.memo
                    .entry(task.job_id.clone())
                    .or_default()
                    .push((key, failure.clone()));
                self.fail(failure, task);
                None
            }
        }
    }

    fn assign(&mut self, plan: &Plan<'_>, best: Candidate) -> Option<Resources> {
        let task = plan.task;
        let placed = PlacedTask {
            job_id: task.job_id.clone(),
            capacity_group: task.capacity_group.clone(),
            tier: task.tier,
            resources: task.resources,
            exclusive_host: plan.hard.exclusive_host,
        };
        if let Err(err) = self.state.place_at(best.idx, task.task_id.clone(), placed) {
            let cause = FailureCause::InvalidConstraints {
                message: err.to_string(),
            };
            let agents = self.state.agent_count() as u32;
            self.fail(
                PlacementFailure::other(&task.task_id, &task.job_id, agents, cause),
                task,
            );
            return None;
        }
        self.memo.remove(&task.job_id);
        self.result.assignments.push(Assignment {
            task_id: task.task_id.clone(),
            job_id: task.job_id.clone(),
            agent_id: best.id.to_string(),
            fitness: best.score,
        });
        Some(task.resources)
    }

    fn fail(&mut self, failure: PlacementFailure, task: &TaskRequest) {
        if failure.is_capacity_shortage() {
            *self.demand.entry(demand_shape(task)).or_default() += 1;
        }
        self.result.failures.push(failure);
    }

    /// The class-level verdict: everything but identity constraints.
    fn evaluate_class(
        &self,
        plan: &Plan<'_>,
        class: &AgentClass,
        job: Option<&JobPlacements>,
    ) -> Verdict {
        let state = &*self.state;
        let sig = state.sig(class.key.sig);
        if !sig.lifecycle.accepts_placements() {
            return Verdict::Rejected(AgentRejection::InstanceGroup(sig.lifecycle));
        }
        if !sig.serves(plan.task.tier) {
            return Verdict::Rejected(AgentRejection::TierMismatch);
        }
        if class.key.exclusive {
            return Verdict::Rejected(AgentRejection::ExclusiveHostOccupied);
        }
        let gpu_agent = sig.allocatable.gpu > 0;
        if gpu_agent && !plan.gpu_task && self.config.gpu_agents == GpuAgentPolicy::GpuTasksOnly {
            return Verdict::Rejected(AgentRejection::GpuAgentReserved);
        }
        let (hard, soft) = (&plan.hard, &plan.soft);
        if hard.exclusive_host && !class.key.empty {
            return Verdict::Rejected(AgentRejection::Constraint(ConstraintName::ExclusiveHost));
        }
        let zone_counts = |zone: &str| job.and_then(|j| j.per_zone.get(zone).copied()).unwrap_or(0);
        let all_counts = || job.into_iter().flat_map(|j| j.per_zone.values().copied());
        let expected = self.config.expected_zones;
        if hard.zone_balance {
            let allowed = sig
                .zone
                .as_deref()
                .is_some_and(|zone| zone_balance_allows(zone_counts(zone), all_counts(), expected));
            if !allowed {
                return Verdict::Rejected(AgentRejection::Constraint(ConstraintName::ZoneBalance));
            }
        }
        let attributes = crate::constraints::AgentAttributes {
            lifecycle: sig.lifecycle,
            zone: sig.zone.as_deref(),
            instance_group: sig.instance_group.as_deref(),
            instance_type: sig.instance_type.as_deref(),
            kube_backend: sig.kube_backend.as_deref(),
            cpu_model: sig.cpu_model.as_deref(),
        };
        if let Some(name) = hard.attribute_failures(&attributes).next() {
            return Verdict::Rejected(AgentRejection::Constraint(name));
        }
        if !plan.task.resources.fits_in(&class.key.free) {
            return Verdict::Short;
        }
        let mut soft_sum = 0.0;
        if plan.soft_count > 0 {
            if soft.exclusive_host && class.key.empty {
                soft_sum += 1.0;
            }
            if soft.zone_balance {
                let target = sig.zone.as_deref().map(zone_counts);
                soft_sum += zone_balance_fitness(target, all_counts(), expected);
            }
            let failing = soft.attribute_failures(&attributes).count();
            soft_sum += plan.soft_attribute_count.saturating_sub(failing) as f64;
        }
        Verdict::Fits(ClassFit {
            soft_sum,
            binpack: self.config.fitness.binpack(
                &sig.allocatable,
                &class.key.free,
                &plan.task.resources,
            ),
            lifecycle: sig.lifecycle,
            gpu_avoid: gpu_agent && !plan.gpu_task,
        })
    }

    fn score(&self, plan: &Plan<'_>, fit: &ClassFit, identity_soft: f64) -> f64 {
        let soft = if plan.soft_count == 0 {
            1.0
        } else {
            (fit.soft_sum + identity_soft) / plan.soft_count as f64
        };
        self.config
            .fitness
            .combine(fit.binpack, soft, fit.lifecycle)
    }

    /// The exact candidate for one agent, identity constraints included.
    fn member_candidate(
        &self,
        plan: &Plan<'_>,
        idx: AgentIdx,
        fit: &ClassFit,
        job: Option<&JobPlacements>,
    ) -> Option<Candidate> {
        let slot = self.state.slot(idx);
        let hosts_job = job.is_some_and(|j| j.per_agent.contains_key(&idx));
        if plan.hard.unique_host && hosts_job {
            return None;
        }
        let machine_matches = |wanted: &Option<String>| {
            crate::constraints::value_matches(wanted, slot.agent.machine_id.as_deref())
        };
        if !machine_matches(&plan.hard.machine_id) {
            return None;
        }
        let mut identity = 0.0;
        if plan.soft.unique_host && !hosts_job {
            identity += 1.0;
        }
        if plan.soft.machine_id.is_some() && machine_matches(&plan.soft.machine_id) {
            identity += 1.0;
        }
        Some(Candidate {
            idx,
            id: slot.id.clone(),
            gpu_avoid: fit.gpu_avoid,
            score: self.score(plan, fit, identity),
        })
    }

    fn find_best(&mut self, plan: &Plan<'_>) -> Option<Candidate> {
        let job = self.state.job(&plan.task.job_id);
        let mut best: Option<Candidate> = None;
        let mut consider = |candidate: Candidate| {
            if best.as_ref().is_none_or(|b| candidate.beats(b)) {
                best = Some(candidate);
            }
        };
        let mut evaluations = 0u64;
        // Agents named by machineId are evaluated one by one, with exact identity scores.
        let named = plan
            .hard
            .machine_id
            .as_ref()
            .or(plan.soft.machine_id.as_ref());
        for idx in named
            .map(|id| self.state.agents_with_machine_id(id))
            .unwrap_or_default()
        {
            let class = self.state.class(self.state.slot(idx).class);
            evaluations += 1;
            if let Verdict::Fits(fit) = self.evaluate_class(plan, class, job)
                && let Some(candidate) = self.member_candidate(plan, idx, &fit, job)
            {
                consider(candidate);
            }
        }
        if plan.hard.machine_id.is_none() {
            let hosts = job.filter(|_| plan.hard.unique_host || plan.soft.unique_host);
            let hosts_per_class = hosts.map(|j| self.hosts_per_class(j)).unwrap_or_default();
            for (class_id, class) in self.state.classes() {
                evaluations += 1;
                let Verdict::Fits(fit) = self.evaluate_class(plan, class, job) else {
                    continue;
                };
                let hosting = hosts_per_class.get(&class_id).copied().unwrap_or(0);
                let pick = match hosts {
                    Some(j) if hosting > 0 => pick_member(class, hosting, j),
                    Some(_) | None => class.members.first().map(|m| (m.1, true)),
                };
                let Some((idx, free_of_job)) = pick else {
                    continue;
                };
                if plan.hard.unique_host && !free_of_job {
                    continue;
                }
                let identity = if plan.soft.unique_host && free_of_job {
                    1.0
                } else {
                    0.0
                };
                consider(Candidate {
                    idx,
                    id: self.state.slot(idx).id.clone(),
                    gpu_avoid: fit.gpu_avoid,
                    score: self.score(plan, &fit, identity),
                });
            }
        }
        self.result.stats.class_evaluations += evaluations;
        best
    }

    fn hosts_per_class(&self, job: &JobPlacements) -> HashMap<ClassId, u32> {
        let mut counts = HashMap::new();
        for idx in job.per_agent.keys() {
            *counts.entry(self.state.slot(*idx).class).or_default() += 1;
        }
        counts
    }

    /// Counts, over all agents, the first reason each cannot take the task.
    fn diagnose(&self, plan: &Plan<'_>) -> PlacementFailure {
        let task = plan.task;
        let job = self.state.job(&task.job_id);
        let hosts_per_class = job
            .filter(|_| plan.hard.unique_host)
            .map(|j| self.hosts_per_class(j))
            .unwrap_or_default();
        let named: HashSet<AgentIdx> = plan
            .hard
            .machine_id
            .as_ref()
            .map(|id| self.state.agents_with_machine_id(id).into_iter().collect())
            .unwrap_or_default();
        let mut counts: BTreeMap<AgentRejection, u32> = BTreeMap::new();
        let mut add = |reason, n: u32| {
            if n > 0 {
                *counts.entry(reason).or_default() += n;
            }
        };
        for (class_id, class) in self.state.classes() {
            let size = class.members.len() as u32;
            match self.evaluate_class(plan, class, job) {
                Verdict::Rejected(reason) => add(reason, size),
                Verdict::Short => {
                    for kind in task.resources.shortfalls(&class.key.free) {
                        add(AgentRejection::Insufficient(kind), size);
                    }
                }
                Verdict::Fits(_) => {
                    let hosting = hosts_per_class.get(&class_id).copied().unwrap_or(0);
                    add(
                        AgentRejection::Constraint(ConstraintName::UniqueHost),
                        hosting,
                    );
                    if plan.hard.machine_id.is_some() {
                        let matching = class
                            .members
                            .iter()
                            .filter(|(_, idx)| named.contains(idx))
                            .filter(|(_, idx)| !job.is_some_and(|j| j.per_agent.contains_key(idx)))
                            .count() as u32;
                        let rest = size.saturating_sub(hosting).saturating_sub(matching);
                        add(AgentRejection::Constraint(ConstraintName::MachineId), rest);
                    }
                }
            }
        }
        PlacementFailure::no_fit(
            &task.task_id,
            &task.job_id,
            self.state.agent_count() as u32,
            &counts,
        )
    }
}

/// The first member (by agent id) without a task of the job, else the first member. The flag
/// says whether the chosen member is free of the job.
fn pick_member(class: &AgentClass, hosting: u32, job: &JobPlacements) -> Option<(AgentIdx, bool)> {
    if hosting as usize >= class.members.len() {
        return class.members.first().map(|m| (m.1, false));
    }
    class
        .members
        .iter()
        .find(|(_, idx)| !job.per_agent.contains_key(idx))
        .map(|m| (m.1, true))
}

fn is_attribute_constraint(name: ConstraintName) -> bool {
    match name {
        ConstraintName::ActiveHost
        | ConstraintName::AvailabilityZone
        | ConstraintName::MachineGroup
        | ConstraintName::MachineType
        | ConstraintName::KubeBackend
        | ConstraintName::CpuModel => true,
        ConstraintName::UniqueHost
        | ConstraintName::ExclusiveHost
        | ConstraintName::ZoneBalance
        | ConstraintName::MachineId => false,
    }
}

fn plan(task: &TaskRequest) -> Result<Plan<'_>, String> {
    let hard = ConstraintSet::parse(&task.hard_constraints).map_err(|e| format!("hard: {e}"))?;
    let soft = ConstraintSet::parse(&task.soft_constraints).map_err(|e| format!("soft: {e}"))?;
    let soft_count = soft.active().count();
    let soft_attribute_count = soft
        .active()
        .filter(|n| is_attribute_constraint(*n))
        .count();
    Ok(Plan {
        task,
        hard,
        soft,
        soft_count,
        soft_attribute_count,
        gpu_task: task.resources.gpu > 0,
    })
}

fn demand_shape(task: &TaskRequest) -> DemandShape {
    let hard = ConstraintSet::parse(&task.hard_constraints).unwrap_or_default();
    let r = &task.resources;
    DemandShape {
        tier: task.tier,
        cpu_milli: r.cpu_milli,
        memory_mb: r.memory_mb,
        disk_mb: r.disk_mb,
        network_mbps: r.network_mbps,
        gpu: r.gpu,
        machine_type: hard.machine_type,
        machine_group: hard.machine_group,
        availability_zone: hard.availability_zone,
    }
}
