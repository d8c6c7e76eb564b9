#![allow(clippy::unwrap_used)]

use super::*;
use crate::model::DEFAULT_CAPACITY_GROUP;

fn res(cpu_milli: u64, memory_mb: u64) -> Resources {
    Resources {
        cpu_milli,
        memory_mb,
        pods: 1,
        ..Resources::ZERO
    }
}

fn agent(id: &str, zone: &str) -> Agent {
    Agent::new(
        id,
        Resources {
            pods: 110,
            ..res(16_000, 64_000)
        },
    )
    .zone(zone)
}

fn task(job: &str, cpu_milli: u64) -> PlacedTask {
    PlacedTask {
        job_id: job.to_string(),
        capacity_group: DEFAULT_CAPACITY_GROUP.to_string(),
        tier: Tier::Flex,
        resources: res(cpu_milli, 1_000),
        exclusive_host: false,
    }
}

#[test]
fn placement_then_release_restores_every_count() {
    let mut state = ClusterState::new();
    state.upsert_agent(agent("a1", "z1")).unwrap();
    state.upsert_agent(agent("a2", "z1")).unwrap();
    let classes_before = state.class_count();
    let free_before = state.free_resources("a1").unwrap();
    assert_eq!(
        classes_before, 1,
        "two identical empty agents share a class"
    );

    state.place_task("a1", "t1", task("j1", 2_000)).unwrap();
    assert_eq!(state.job_tasks_on_agent("j1", "a1"), 1);
    assert_eq!(state.job_tasks_in_zone("j1", "z1"), 1);
    assert_eq!(
        state.capacity_group_usage(Tier::Flex, DEFAULT_CAPACITY_GROUP),
        res(2_000, 1_000)
    );
    assert_eq!(state.free_resources("a1").unwrap().cpu_milli, 14_000);
    assert_eq!(state.class_count(), 2);
    assert_eq!(state.task_agent("t1"), Some("a1"));

    let (agent_id, released) = state.release_task("t1").unwrap();
    assert_eq!(agent_id, "a1");
    assert_eq!(released.job_id, "j1");
    assert_eq!(state.job_tasks_on_agent("j1", "a1"), 0);
    assert_eq!(state.job_tasks_in_zone("j1", "z1"), 0);
    assert_eq!(
        state.capacity_group_usage(Tier::Flex, DEFAULT_CAPACITY_GROUP),
        Resources::ZERO
    );
    assert_eq!(state.free_resources("a1"), Some(free_before));
    assert_eq!(state.class_count(), classes_before);
    assert_eq!(state.release_task("t1"), None, "release is idempotent");
}

#[test]
fn placing_twice_is_idempotent_and_a_new_agent_moves_the_task() {
    let mut state = ClusterState::new();
    state.upsert_agent(agent("a1", "z1")).unwrap();
    state.upsert_agent(agent("a2", "z2")).unwrap();
    state.place_task("a1", "t1", task("j1", 1_000)).unwrap();
    state.place_task("a1", "t1", task("j1", 1_000)).unwrap();
    assert_eq!(state.task_count(), 1);
    assert_eq!(state.free_resources("a1").unwrap().cpu_milli, 15_000);
    state.place_task("a2", "t1", task("j1", 1_000)).unwrap();
    assert_eq!(state.free_resources("a1").unwrap().cpu_milli, 16_000);
    assert_eq!(state.job_tasks_in_zone("j1", "z1"), 0);
    assert_eq!(state.job_tasks_in_zone("j1", "z2"), 1);
    assert_eq!(
        state.place_task("nope", "t2", task("j1", 1)),
        Err(ClusterError::UnknownAgent {
            agent_id: "nope".into()
        })
    );
}

#[test]
fn updating_an_agent_keeps_its_tasks_and_moves_zone_counts() {
    let mut state = ClusterState::new();
    state.upsert_agent(agent("a1", "z1")).unwrap();
    state.place_task("a1", "t1", task("j1", 1_000)).unwrap();
    state.upsert_agent(agent("a1", "z2")).unwrap();
    assert_eq!(state.task_agent("t1"), Some("a1"));
    assert_eq!(state.job_tasks_in_zone("j1", "z1"), 0);
    assert_eq!(state.job_tasks_in_zone("j1", "z2"), 1);
    assert_eq!(state.agent("a1").unwrap().placed.len(), 1);
}

#[test]
fn removing_an_agent_forgets_its_tasks_and_capacity() {
    let mut state = ClusterState::new();
    state.upsert_agent(agent("a1", "z1")).unwrap();
    let capacity = state.tier_capacity(Tier::Flex);
    assert_eq!(capacity.cpu_milli, 16_000);
    state.place_task("a1", "t1", task("j1", 1_000)).unwrap();
    let removed = state.remove_agent("a1").unwrap();
    assert_eq!(removed.placed.len(), 1);
    assert_eq!(state.task_agent("t1"), None);
    assert_eq!(state.job_tasks_on_agent("j1", "a1"), 0);
    assert_eq!(state.tier_capacity(Tier::Flex), Resources::ZERO);
    assert_eq!(state.class_count(), 0);
    assert_eq!(state.agent_count(), 0);
}

#[test]
fn an_observed_overcommit_is_recorded_and_leaves_nothing_free() {
    let mut state = ClusterState::new();
    state.upsert_agent(agent("a1", "z1")).unwrap();
    state.place_task("a1", "t1", task("j1", 12_000)).unwrap();
    state.place_task("a1", "t2", task("j1", 12_000)).unwrap();
    assert_eq!(state.free_resources("a1").unwrap().cpu_milli, 0);
    state.release_task("t2");
    assert_eq!(state.free_resources("a1").unwrap().cpu_milli, 4_000);
}

#[test]
fn inactive_agents_do_not_count_in_tier_capacity() {
    let mut state = ClusterState::new();
    state
        .upsert_agent(agent("a1", "z1").lifecycle(InstanceGroupLifecycle::Inactive))
        .unwrap();
    state
        .upsert_agent(agent("a2", "z1").tier(Tier::Critical))
        .unwrap();
    assert_eq!(state.tier_capacity(Tier::Flex), Resources::ZERO);
    assert_eq!(state.tier_capacity(Tier::Critical).cpu_milli, 16_000);
}
