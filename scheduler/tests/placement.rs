//! Placement spec: tiers and capacity groups, GPUs, instance-group lifecycle, bin packing,
//! failure reasons, unmet demand and determinism.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{
    agent, agent_of, check_invariants, cluster, failure_of, group, in_order, run, running, task,
};
use titus_scheduler::{
    Agent, ClusterState, FailureCause, GpuAgentPolicy, InstanceGroupLifecycle, PlacementConfig,
    TaskRequest, Tier, schedule,
};

fn gpu_agent(id: &str, gpus: u64) -> Agent {
    let mut agent = agent(id, 16, 64, "z1");
    agent.allocatable.gpu = gpus;
    agent
}

#[test]
fn critical_tasks_are_served_before_older_flex_tasks() {
    let mut state = cluster(vec![agent("a", 4, 16, "z1")]);
    let tasks = vec![
        task("flex", "jf", 4, 1).order_key(1),
        task("crit", "jc", 4, 1).tier(Tier::Critical).order_key(2),
    ];
    let result = run(&mut state, &tasks, &[]);
    assert_eq!(agent_of(&result, "crit"), Some("a"));
    assert_eq!(
        failure_of(&result, "flex"),
        Some("0/1 offers: 1 insufficient cpu")
    );
}

#[test]
fn older_tasks_of_a_capacity_group_go_first() {
    let mut state = cluster(vec![agent("a", 4, 16, "z1")]);
    let tasks = vec![
        task("young", "j", 4, 1).order_key(20),
        task("old", "j", 4, 1).order_key(10),
    ];
    let result = run(&mut state, &tasks, &[]);
    assert_eq!(agent_of(&result, "old"), Some("a"));
    assert!(failure_of(&result, "young").is_some());
}

#[test]
fn capacity_groups_share_a_tier_in_proportion_to_their_guarantees() {
    // (guarantee of A, guarantee of B, tasks of A placed, tasks of B placed) with room for 8.
    let cases = [(4, 4, 4, 4), (6, 2, 6, 2), (1, 1, 4, 4)];
    for (ga, gb, want_a, want_b) in cases {
        let mut state = cluster(vec![agent("a", 8, 64, "z1"), agent("b", 8, 64, "z1")]);
        let mut tasks = Vec::new();
        for i in 0..8 {
            tasks.push(
                task(&format!("a{i}"), "ja", 2, 1)
                    .capacity_group("A")
                    .order_key(i),
            );
            tasks.push(
                task(&format!("b{i}"), "jb", 2, 1)
                    .capacity_group("B")
                    .order_key(i),
            );
        }
        let groups = [
            group("A", Tier::Flex, 2, 1, ga),
            group("B", Tier::Flex, 2, 1, gb),
        ];
        let result = run(&mut state, &tasks, &groups);
        let placed = |prefix: char| {
            result
                .assignments
                .iter()
                .filter(|a| a.task_id.starts_with(prefix))
                .count()
        };
        assert_eq!(
            (placed('a'), placed('b')),
            (want_a, want_b),
            "guarantees {ga}:{gb}"
        );
    }
}

#[test]
fn over_guarantee_work_waits_when_the_tier_is_fully_guaranteed() {
    let mut state = cluster(vec![agent("a", 8, 64, "z1")]);
    let tasks = in_order(
        (0..4)
            .map(|i| task(&format!("a{i}"), "ja", 2, 1).capacity_group("A"))
            .collect(),
    );
    // A is guaranteed 2 tasks, B (idle) the other 2: A's third task must wait.
    let groups = [
        group("A", Tier::Flex, 2, 1, 2),
        group("B", Tier::Flex, 2, 1, 2),
    ];
    let result = run(&mut state, &tasks, &groups);
    assert_eq!(result.assignments.len(), 2);
    let failure = result.failures.iter().find(|f| f.task_id == "a2").unwrap();
    assert!(matches!(
        failure.cause,
        FailureCause::CapacityGroupGuaranteeExhausted { .. }
    ));
    assert!(
        failure
            .summary
            .starts_with("capacity group A has no guaranteed capacity left"),
        "{}",
        failure.summary
    );
    assert!(
        result.unmet_demand.is_empty(),
        "quota waits are not capacity demand"
    );

    // Without B's guarantee, the unguaranteed half of the tier takes A's overflow.
    let mut state = cluster(vec![agent("a", 8, 64, "z1")]);
    let result = run(&mut state, &tasks, &[group("A", Tier::Flex, 2, 1, 2)]);
    assert_eq!(result.assignments.len(), 4);
}

#[test]
fn agents_of_a_tier_only_take_that_tier() {
    let mut state = cluster(vec![agent("a", 16, 64, "z1").tier(Tier::Critical)]);
    let tasks = vec![
        task("flex", "j", 1, 1),
        task("crit", "jc", 1, 1).tier(Tier::Critical),
    ];
    let result = run(&mut state, &tasks, &[]);
    assert_eq!(agent_of(&result, "crit"), Some("a"));
    assert_eq!(
        failure_of(&result, "flex"),
        Some("0/1 offers: 1 other tier")
    );
}

#[test]
fn gpu_tasks_need_gpu_agents_and_others_use_them_last() {
    let mut state = cluster(vec![agent("cpu", 16, 64, "z1"), gpu_agent("gpu", 4)]);
    // Make the GPU agent the fuller one: bin packing alone would pick it.
    state.place_task("gpu", "r1", running("other", 8)).unwrap();
    let mut gpu_task = task("needs-gpu", "jg", 1, 1);
    gpu_task.resources.gpu = 1;
    let tasks = vec![
        task("plain", "j", 1, 1).order_key(0),
        gpu_task.order_key(1),
        task("big", "jb", 15, 1).order_key(2),
        task("overflow", "jo", 7, 1).order_key(3),
    ];
    let result = run(&mut state, &tasks, &[]);
    assert_eq!(agent_of(&result, "plain"), Some("cpu"));
    assert_eq!(agent_of(&result, "needs-gpu"), Some("gpu"));
    assert_eq!(agent_of(&result, "big"), Some("cpu"));
    assert_eq!(
        agent_of(&result, "overflow"),
        Some("gpu"),
        "nothing else fits"
    );

    let mut state = cluster(vec![agent("cpu", 16, 64, "z1"), gpu_agent("gpu", 4)]);
    let config = PlacementConfig {
        gpu_agents: GpuAgentPolicy::GpuTasksOnly,
        ..PlacementConfig::default()
    };
    let tasks = [task("t1", "j", 16, 1), task("t2", "j", 16, 1)];
    let result = schedule(&mut state, &tasks, &[], &config);
    assert_eq!(agent_of(&result, "t1"), Some("cpu"));
    assert_eq!(
        failure_of(&result, "t2"),
        Some("0/2 offers: 1 GPU agent reserved for GPU tasks, 1 insufficient cpu")
    );
    let mut gpu_task = task("g", "jg", 1, 1);
    gpu_task.resources.gpu = 8;
    let result = run(
        &mut cluster(vec![agent("cpu", 16, 64, "z1"), gpu_agent("gpu", 4)]),
        &[gpu_task],
        &[],
    );
    assert_eq!(
        failure_of(&result, "g"),
        Some("0/2 offers: 2 insufficient gpu")
    );
}

#[test]
fn instance_group_lifecycle_gates_and_orders_placement() {
    let agents = vec![
        agent("inactive", 16, 64, "z1").lifecycle(InstanceGroupLifecycle::Inactive),
        agent("removable", 16, 64, "z1").lifecycle(InstanceGroupLifecycle::Removable),
        agent("phased", 16, 64, "z1").lifecycle(InstanceGroupLifecycle::PhasedOut),
        agent("active", 16, 64, "z1"),
    ];
    let mut state = cluster(agents);
    // The phased-out agent is the fuller one; it is still used last.
    state
        .place_task("phased", "r1", running("other", 8))
        .unwrap();
    let tasks = in_order(vec![
        task("t1", "j", 8, 1),
        task("t2", "j", 8, 1),
        task("t3", "j", 8, 1),
    ]);
    let result = run(&mut state, &tasks, &[]);
    assert_eq!(agent_of(&result, "t1"), Some("active"));
    assert_eq!(agent_of(&result, "t2"), Some("active"));
    assert_eq!(agent_of(&result, "t3"), Some("phased"));
    let result = run(&mut state, &[task("t4", "j", 8, 1)], &[]);
    assert_eq!(
        failure_of(&result, "t4"),
        Some(
            "0/4 offers: 2 insufficient cpu, 1 instance group Inactive, 1 instance group Removable"
        )
    );
}

#[test]
fn bin_packing_uses_the_minimum_number_of_agents() {
    // 4 tasks of 8 cores and 8 tasks of 2 cores = 48 cores: exactly three 16-core agents.
    let agents = (0..6)
        .map(|i| agent(&format!("a{i}"), 16, 64, "z1"))
        .collect();
    let mut state = cluster(agents);
    let mut tasks: Vec<TaskRequest> = (0..4)
        .map(|i| task(&format!("big{i}"), "jb", 8, 4))
        .collect();
    tasks.extend((0..8).map(|i| task(&format!("small{i}"), "js", 2, 1)));
    let tasks = in_order(tasks);
    let result = run(&mut state, &tasks, &[]);
    check_invariants("packing", &state, &tasks, &result);
    assert!(result.failures.is_empty());
    let used: std::collections::BTreeSet<_> = result
        .assignments
        .iter()
        .map(|a| a.agent_id.as_str())
        .collect();
    assert_eq!(used.len(), 3, "used {used:?}");
}

#[test]
fn failure_summary_aggregates_reasons_over_all_agents() {
    let mut state = cluster(vec![
        agent("a", 16, 8, "z1"),
        agent("b", 16, 8, "z1"),
        agent("c", 16, 64, "z2"),
        agent("d", 16, 64, "z3"),
    ]);
    state.place_task("c", "r1", running("j", 1)).unwrap();
    state.place_task("d", "r2", running("j", 1)).unwrap();
    state.place_task("d", "r3", running("j", 1)).unwrap();
    // a, b: too little memory; c: z2 has fewer of the job's tasks than z3; d: z3 is the busiest.
    let result = run(
        &mut state,
        &[task("t", "j", 1, 16).hard("zoneBalance", "true")],
        &[],
    );
    assert_eq!(agent_of(&result, "t"), Some("c"));
    // Now z2 and z3 are equal with fewer than three zones populated: both refuse.
    let result = run(
        &mut state,
        &[task("t2", "j", 1, 16).hard("zoneBalance", "true")],
        &[],
    );
    assert_eq!(
        failure_of(&result, "t2"),
        Some("0/4 offers: 2 zoneBalance, 2 insufficient memory")
    );
}

#[test]
fn unmet_demand_is_grouped_by_shape() {
    let mut state = cluster(vec![agent("a", 4, 16, "z1")]);
    let tasks = in_order(vec![
        task("t1", "j1", 4, 8),
        task("t2", "j1", 4, 8),
        task("t3", "j1", 4, 8),
        task("t4", "j2", 2, 4).hard("machineType", "r5.large"),
    ]);
    let result = run(&mut state, &tasks, &[]);
    assert_eq!(result.assignments.len(), 1);
    let demand: Vec<(u64, Option<&str>, u32)> = result
        .unmet_demand
        .iter()
        .map(|d| (d.shape.cpu_milli, d.shape.machine_type.as_deref(), d.tasks))
        .collect();
    assert_eq!(demand, vec![(4000, None, 2), (2000, Some("r5.large"), 1)]);
}

#[test]
fn equal_input_gives_equal_output_and_ties_go_to_the_smaller_agent_id() {
    let build = || {
        let agents: Vec<Agent> = ["c", "a", "b"]
            .iter()
            .map(|id| agent(id, 16, 64, "z1"))
            .collect();
        cluster(agents)
    };
    let tasks: Vec<TaskRequest> =
        in_order((0..20).map(|i| task(&format!("t{i}"), "j", 3, 2)).collect());
    let first = run(&mut build(), &tasks, &[]);
    let second = run(&mut build(), &tasks, &[]);
    assert_eq!(first, second);
    assert_eq!(agent_of(&first, "t0"), Some("a"));
}

#[test]
fn class_grouping_does_not_change_any_decision() {
    // A mixed fleet and workload, scheduled with and without the class index.
    let mut agents = Vec::new();
    for i in 0..30 {
        let zone = ["z1", "z2", "z3"][i % 3];
        let mut a = agent(
            &format!("a{i:02}"),
            [8, 16, 32][i % 3],
            [32, 64, 128][i % 3],
            zone,
        )
        .machine_id(format!("i-{i}"));
        if i % 7 == 0 {
            a = a.lifecycle(InstanceGroupLifecycle::PhasedOut);
        }
        agents.push(a);
    }
    let mut tasks = Vec::new();
    for j in 0..12u64 {
        for i in 0..10u64 {
            let mut t = task(
                &format!("j{j}-t{i}"),
                &format!("j{j}"),
                1 + (j % 4),
                1 + (j % 5) * 2,
            );
            t = match j % 6 {
                0 => t.hard("uniqueHost", "true"),
                1 => t.soft("zoneBalance", "true"),
                2 => t.hard("zoneBalance", "true"),
                3 => t.soft("uniqueHost", "true").soft("availabilityZone", "z2"),
                4 => t.soft("machineId", "i-4"),
                _ => t,
            };
            tasks.push(t.order_key(j * 100 + i));
        }
    }
    let mut grouped = ClusterState::new();
    let mut ungrouped = ClusterState::without_class_grouping();
    for a in agents {
        grouped.upsert_agent(a.clone()).unwrap();
        ungrouped.upsert_agent(a).unwrap();
    }
    let a = run(&mut grouped, &tasks, &[]);
    let b = run(&mut ungrouped, &tasks, &[]);
    assert_eq!(a.assignments, b.assignments);
    assert_eq!(a.failures, b.failures);
    assert!(a.stats.class_evaluations < b.stats.class_evaluations);
}

#[test]
fn already_placed_and_duplicate_tasks_are_considered_once() {
    let mut state = cluster(vec![agent("a", 16, 64, "z1")]);
    state.place_task("a", "t1", running("j", 1)).unwrap();
    let tasks = vec![
        task("t1", "j", 1, 1),
        task("t2", "j", 1, 1),
        task("t2", "j", 1, 1),
    ];
    let result = run(&mut state, &tasks, &[]);
    assert_eq!(result.stats.already_placed, 1);
    assert_eq!(result.assignments.len(), 1);
    assert!(result.failures.is_empty());
    assert_eq!(state.free_resources("a").unwrap().cpu_milli, 14_000);
}
