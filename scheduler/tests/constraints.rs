//! One table case per Titus constraint, hard and soft (titus-semantics §7.1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{Expect, agent, check, check_invariants, cluster, in_order, run, running, task};
use titus_scheduler::{Agent, InstanceGroupLifecycle, TaskRequest};

struct Case {
    name: &'static str,
    agents: Vec<Agent>,
    /// (agent, task id, job, cores) already running.
    running: Vec<(&'static str, &'static str, &'static str, u64)>,
    tasks: Vec<TaskRequest>,
    expect: Vec<Expect>,
}

fn run_cases(cases: Vec<Case>) {
    for case in cases {
        let mut state = cluster(case.agents);
        for (agent, id, job, cores) in &case.running {
            state.place_task(agent, id, running(job, *cores)).unwrap();
        }
        let tasks = in_order(case.tasks);
        let result = run(&mut state, &tasks, &[]);
        check_invariants(case.name, &state, &tasks, &result);
        for expect in &case.expect {
            check(case.name, &result, expect);
        }
    }
}

/// Three 16-core agents: `a` in zone 1a (the fullest, so bin packing prefers it), `b` in 1b, `c`
/// in 1c.
fn three_zones() -> Vec<Agent> {
    vec![
        agent("a", 16, 64, "us-east-1a"),
        agent("b", 16, 64, "us-east-1b"),
        agent("c", 16, 64, "us-east-1c"),
    ]
}

#[test]
fn hard_constraints_filter_agents() {
    use Expect::{Fails, On};
    run_cases(vec![
        Case {
            name: "uniqueHost puts one task of the job per agent and no more",
            agents: vec![agent("a", 16, 64, "z1"), agent("b", 16, 64, "z1")],
            running: vec![],
            tasks: vec![
                task("t1", "j", 1, 1).hard("uniqueHost", "true"),
                task("t2", "j", 1, 1).hard("UNIQUEHOST", "TRUE"),
                task("t3", "j", 1, 1).hard("uniquehost", "true"),
            ],
            expect: vec![
                On("t1", "a"),
                On("t2", "b"),
                Fails("t3", "0/2 offers: 2 uniqueHost"),
            ],
        },
        Case {
            name: "uniqueHost counts running tasks of the job",
            agents: vec![agent("a", 16, 64, "z1"), agent("b", 16, 64, "z1")],
            running: vec![("a", "r1", "j", 8)],
            tasks: vec![task("t1", "j", 1, 1).hard("uniqueHost", "true")],
            expect: vec![On("t1", "b")],
        },
        Case {
            name: "uniqueHost with a value other than true is off",
            agents: vec![agent("a", 16, 64, "z1")],
            running: vec![],
            tasks: vec![
                task("t1", "j", 1, 1).hard("uniqueHost", "yes"),
                task("t2", "j", 1, 1).hard("uniqueHost", "yes"),
            ],
            expect: vec![On("t1", "a"), On("t2", "a")],
        },
        Case {
            name: "exclusiveHost takes an empty agent and then blocks it for everyone",
            agents: vec![agent("a", 16, 64, "z1"), agent("b", 16, 64, "z1")],
            running: vec![],
            tasks: vec![
                task("t1", "j1", 1, 1).hard("exclusiveHost", "true"),
                task("t2", "j2", 1, 1),
                task("t3", "j3", 1, 1).hard("exclusiveHost", "true"),
            ],
            expect: vec![
                On("t1", "a"),
                On("t2", "b"),
                Fails(
                    "t3",
                    "0/2 offers: 1 held by an exclusiveHost task, 1 exclusiveHost",
                ),
            ],
        },
        Case {
            name: "zoneBalance fills every zone before doubling up",
            agents: three_zones(),
            running: vec![],
            tasks: (1..=4)
                .map(|i| task(&format!("t{i}"), "j", 1, 1).hard("zoneBalance", "true"))
                .collect(),
            expect: vec![On("t1", "a"), On("t2", "b"), On("t3", "c"), On("t4", "a")],
        },
        Case {
            name: "zoneBalance with two populated zones allows no third task (Fenzo-era rule)",
            agents: vec![agent("a", 16, 64, "z1"), agent("b", 16, 64, "z2")],
            running: vec![],
            tasks: (1..=3)
                .map(|i| task(&format!("t{i}"), "j", 1, 1).hard("zoneBalance", "true"))
                .collect(),
            expect: vec![
                On("t1", "a"),
                On("t2", "b"),
                Fails("t3", "0/2 offers: 2 zoneBalance"),
            ],
        },
        Case {
            name: "zoneBalance rejects agents without a zone",
            agents: vec![Agent::new("nozone", support::res(16, 64))],
            running: vec![],
            tasks: vec![task("t1", "j", 1, 1).hard("zoneBalance", "true")],
            expect: vec![Fails("t1", "0/1 offers: 1 zoneBalance")],
        },
        Case {
            name: "activeHost skips phased-out agents",
            agents: vec![
                agent("a", 16, 64, "z1").lifecycle(InstanceGroupLifecycle::PhasedOut),
                agent("b", 16, 64, "z1"),
            ],
            running: vec![],
            tasks: vec![
                task("t1", "j", 1, 1).hard("activeHost", "true"),
                task("t2", "j", 32, 1).hard("activeHost", "true"),
            ],
            expect: vec![
                On("t1", "b"),
                Fails("t2", "0/2 offers: 1 activeHost, 1 insufficient cpu"),
            ],
        },
        Case {
            name: "availabilityZone matches the zone ignoring case",
            agents: three_zones(),
            running: vec![("a", "r1", "other", 8)],
            tasks: vec![task("t1", "j", 1, 1).hard("availabilityZone", "US-EAST-1C")],
            expect: vec![On("t1", "c")],
        },
        Case {
            name: "machineId picks exactly that instance",
            agents: vec![
                agent("a", 16, 64, "z1").machine_id("i-aaa"),
                agent("b", 16, 64, "z1").machine_id("i-bbb"),
            ],
            running: vec![("a", "r1", "other", 8)],
            tasks: vec![
                task("t1", "j", 1, 1).hard("machineId", "I-BBB"),
                task("t2", "j", 1, 1).hard("machineId", "i-zzz"),
            ],
            expect: vec![On("t1", "b"), Fails("t2", "0/2 offers: 2 machineId")],
        },
        Case {
            name: "machineGroup, machineType, kubeBackend and cpuModel match agent attributes",
            agents: vec![
                agent("a", 16, 64, "z1")
                    .instance_group("titusagent-a")
                    .instance_type("m5.4xlarge")
                    .kube_backend("kubelet")
                    .cpu_model("Intel Xeon"),
                agent("b", 16, 64, "z1")
                    .instance_group("titusagent-b")
                    .instance_type("r5.4xlarge")
                    .kube_backend("virtual-kubelet")
                    .cpu_model("AMD EPYC"),
            ],
            running: vec![("a", "r1", "other", 8)],
            tasks: vec![
                task("g", "j1", 1, 1).hard("machineGroup", "titusagent-b"),
                task("t", "j2", 1, 1).hard("machineType", "r5.4xlarge"),
                task("k", "j3", 1, 1).hard("kubeBackend", "virtual-kubelet"),
                task("m", "j4", 1, 1).hard("cpuModel", "amd epyc"),
                task("none", "j5", 1, 1).hard("machineType", "p3.2xlarge"),
            ],
            expect: vec![
                On("g", "b"),
                On("t", "b"),
                On("k", "b"),
                On("m", "b"),
                Fails("none", "0/2 offers: 2 machineType"),
            ],
        },
        Case {
            name: "an unknown constraint name fails the task with the validator's wording",
            agents: vec![agent("a", 16, 64, "z1")],
            running: vec![],
            tasks: vec![task("t1", "j", 1, 1).hard("toleration", "x")],
            expect: vec![Fails(
                "t1",
                "invalid constraints: hard: unrecognized constraints [toleration]",
            )],
        },
    ]);
}

#[test]
fn soft_constraints_steer_but_never_block() {
    use Expect::On;
    run_cases(vec![
        Case {
            name: "soft uniqueHost prefers an agent without the job, then shares",
            agents: vec![agent("a", 16, 64, "z1"), agent("b", 16, 64, "z1")],
            running: vec![],
            tasks: (1..=3)
                .map(|i| task(&format!("t{i}"), "j", 1, 1).soft("uniqueHost", "true"))
                .collect(),
            expect: vec![On("t1", "a"), On("t2", "b"), On("t3", "a")],
        },
        Case {
            name: "soft exclusiveHost prefers an empty agent over a fuller one",
            agents: vec![agent("a", 16, 64, "z1"), agent("b", 16, 64, "z1")],
            running: vec![("a", "r1", "other", 8)],
            tasks: vec![task("t1", "j", 1, 1).soft("exclusiveHost", "true")],
            expect: vec![On("t1", "b")],
        },
        Case {
            name: "soft zoneBalance spreads across zones against bin packing",
            agents: three_zones(),
            running: vec![("a", "r1", "other", 8)],
            tasks: (1..=3)
                .map(|i| task(&format!("t{i}"), "j", 1, 1).soft("zoneBalance", "true"))
                .collect(),
            expect: vec![On("t1", "a"), On("t2", "b"), On("t3", "c")],
        },
        Case {
            name: "soft activeHost still places on a phased-out agent when it is the only one",
            agents: vec![agent("a", 16, 64, "z1").lifecycle(InstanceGroupLifecycle::PhasedOut)],
            running: vec![],
            tasks: vec![task("t1", "j", 1, 1).soft("activeHost", "true")],
            expect: vec![On("t1", "a")],
        },
        Case {
            name: "soft availabilityZone prefers the zone and falls back when it is full",
            agents: three_zones(),
            running: vec![("a", "r1", "other", 8)],
            tasks: vec![
                task("t1", "j", 4, 1).soft("availabilityZone", "us-east-1b"),
                task("t2", "j", 14, 1).soft("availabilityZone", "us-east-1b"),
            ],
            expect: vec![On("t1", "b"), On("t2", "c")],
        },
        Case {
            name: "soft machineId, machineGroup, machineType, kubeBackend and cpuModel prefer the match",
            agents: vec![
                agent("a", 16, 64, "z1")
                    .machine_id("i-a")
                    .instance_group("ga")
                    .instance_type("m5"),
                agent("b", 16, 64, "z1")
                    .machine_id("i-b")
                    .instance_group("gb")
                    .instance_type("r5")
                    .kube_backend("vk")
                    .cpu_model("epyc"),
            ],
            running: vec![("a", "r1", "other", 8)],
            tasks: vec![
                task("id", "j1", 1, 1).soft("machineId", "i-b"),
                task("group", "j2", 1, 1).soft("machineGroup", "gb"),
                task("type", "j3", 1, 1).soft("machineType", "r5"),
                task("backend", "j4", 1, 1).soft("kubeBackend", "vk"),
                task("cpu", "j5", 1, 1).soft("cpuModel", "epyc"),
                task("none", "j6", 1, 1).soft("machineType", "p3"),
            ],
            expect: vec![
                On("id", "b"),
                On("group", "b"),
                On("type", "b"),
                On("backend", "b"),
                On("cpu", "b"),
                On("none", "a"),
            ],
        },
    ]);
}
