//! Builders and assertions shared by the placement spec tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use titus_scheduler::{
    Agent, CapacityGroupSpec, ClusterState, PlacedTask, PlacementConfig, Resources,
    SchedulingResult, TaskRequest, Tier, schedule,
};

/// Resources of `cores` CPUs and `memory_gb` GiB of memory (1024 MB), one Pod slot.
pub fn res(cores: u64, memory_gb: u64) -> Resources {
    Resources {
        cpu_milli: cores * 1000,
        memory_mb: memory_gb * 1024,
        disk_mb: 10_000,
        network_mbps: 128,
        gpu: 0,
        pods: 1,
    }
}

/// An `Active` agent with `cores` CPUs and `memory_gb` GiB, 110 Pod slots, in zone `zone`.
pub fn agent(id: &str, cores: u64, memory_gb: u64, zone: &str) -> Agent {
    Agent::new(
        id,
        Resources {
            disk_mb: 1_000_000,
            network_mbps: 10_000,
            pods: 110,
            ..res(cores, memory_gb)
        },
    )
    .zone(zone)
}

/// A Flex batch task of `cores` CPUs and `memory_gb` GiB; its order key is its position.
pub fn task(id: &str, job: &str, cores: u64, memory_gb: u64) -> TaskRequest {
    TaskRequest::new(id, job, res(cores, memory_gb))
}

/// A placed task of `cores` CPUs for seeding agents.
pub fn running(job: &str, cores: u64) -> PlacedTask {
    PlacedTask {
        job_id: job.to_string(),
        capacity_group: "DEFAULT".to_string(),
        tier: Tier::Flex,
        resources: res(cores, 1),
        exclusive_host: false,
    }
}

/// A capacity group of `count` instances of `cores` CPUs / `memory_gb` GiB.
pub fn group(name: &str, tier: Tier, cores: u64, memory_gb: u64, count: u64) -> CapacityGroupSpec {
    CapacityGroupSpec {
        name: name.to_string(),
        tier,
        instance: Resources {
            pods: 0,
            ..res(cores, memory_gb)
        },
        instance_count: count,
    }
}

/// A cluster of the agents.
pub fn cluster(agents: Vec<Agent>) -> ClusterState {
    let mut state = ClusterState::new();
    for agent in agents {
        state.upsert_agent(agent).expect("agent is valid");
    }
    state
}

/// Tasks with order keys equal to their position.
pub fn in_order(tasks: Vec<TaskRequest>) -> Vec<TaskRequest> {
    tasks
        .into_iter()
        .enumerate()
        .map(|(i, t)| t.order_key(i as u64))
        .collect()
}

/// One iteration with the default configuration.
pub fn run(
    state: &mut ClusterState,
    tasks: &[TaskRequest],
    groups: &[CapacityGroupSpec],
) -> SchedulingResult {
    schedule(state, tasks, groups, &PlacementConfig::default())
}

/// The agent the task was assigned to, if any.
pub fn agent_of<'r>(result: &'r SchedulingResult, task_id: &str) -> Option<&'r str> {
    result
        .assignments
        .iter()
        .find(|a| a.task_id == task_id)
        .map(|a| a.agent_id.as_str())
}

/// The failure summary of the task, if it failed.
pub fn failure_of<'r>(result: &'r SchedulingResult, task_id: &str) -> Option<&'r str> {
    result
        .failures
        .iter()
        .find(|f| f.task_id == task_id)
        .map(|f| f.summary.as_str())
}

/// What a table case expects of one task.
#[derive(Debug, Clone)]
pub enum Expect {
    /// Placed on exactly this agent.
    On(&'static str, &'static str),
    /// Placed on one of these agents.
    OnOneOf(&'static str, &'static [&'static str]),
    /// Not placed, with exactly this summary.
    Fails(&'static str, &'static str),
}

/// Checks one expectation, naming the case on failure.
#[track_caller]
pub fn check(case: &str, result: &SchedulingResult, expect: &Expect) {
    match expect {
        Expect::On(task, agent) => assert_eq!(
            agent_of(result, task),
            Some(*agent),
            "{case}: {task} should be on {agent}; failures: {:?}",
            result
                .failures
                .iter()
                .map(|f| &f.summary)
                .collect::<Vec<_>>()
        ),
        Expect::OnOneOf(task, agents) => {
            let got = agent_of(result, task);
            assert!(
                got.is_some_and(|a| agents.contains(&a)),
                "{case}: {task} should be on one of {agents:?}, got {got:?}"
            );
        }
        Expect::Fails(task, summary) => assert_eq!(
            failure_of(result, task),
            Some(*summary),
            "{case}: {task} should fail; assigned to {:?}",
            agent_of(result, task)
        ),
    }
}

/// Checks that no agent is overcommitted and every task appears exactly once.
#[track_caller]
pub fn check_invariants(
    case: &str,
    state: &ClusterState,
    tasks: &[TaskRequest],
    result: &SchedulingResult,
) {
    for agent in state.agents() {
        let used = agent.placed.values().fold(agent.used, |acc, t| {
            acc.checked_add(&t.resources).expect("no overflow")
        });
        assert!(
            used.fits_in(&agent.allocatable),
            "{case}: {} is overcommitted",
            agent.id
        );
    }
    assert_eq!(
        result.assignments.len() + result.failures.len(),
        tasks.len(),
        "{case}: every task is assigned or failed exactly once"
    );
}
