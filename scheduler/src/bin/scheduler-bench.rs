//! `scheduler-bench`: measures one full scheduling iteration of the Titus scheduler core.
//!
//! ```text
//! cargo run -p titus-scheduler --profile bench --bin scheduler-bench [-- --runs N] [-- --workload FILE]
//! ```
//!
//! Without `--workload` it runs the synthetic scenarios (10 000 pending tasks on 1 000 and 5 000
//! agents, with and without constraints, with and without the agent-class index, and a
//! homogeneous fleet for packing efficiency), then replays `scheduler/workloads/sample.json`.
//! With `--workload FILE` it replays that file only. Output is a Markdown table.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use titus_scheduler::workload::{AgentGroup, JobSpec, Workload};
use titus_scheduler::{
    CapacityGroupSpec, ClusterState, InstanceGroupLifecycle, JobType, PlacementConfig, Resources,
    SchedulingResult, TaskRequest, Tier, schedule,
};

const SAMPLE: &str = include_str!("../../workloads/sample.json");
const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
const PENDING: u32 = 10_000;

struct Options {
    runs: usize,
    workload: Option<String>,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options {
        runs: 5,
        workload: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => {
                let value = args.next().context("--runs needs a number")?;
                options.runs = value.parse().context("--runs needs a number")?;
            }
            "--workload" => {
                options.workload = Some(args.next().context("--workload needs a path")?)
            }
            other => bail!(
                "unknown argument {other}; usage: scheduler-bench [--runs N] [--workload FILE]"
            ),
        }
    }
    if options.runs == 0 {
        bail!("--runs must be at least 1");
    }
    Ok(options)
}

fn main() -> anyhow::Result<()> {
    let options = parse_args()?;
    print_header();
    if let Some(path) = &options.workload {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        let workload = Workload::from_json(&text)?;
        let label = format!("replay {path}");
        let result = measure(&label, &workload, Grouping::Classes, options.runs)?;
        print_details(&result);
        return Ok(());
    }
    for agents in [1_000, 5_000] {
        for constrained in [false, true] {
            let workload = synthetic(agents, constrained);
            let label = if constrained {
                "mixed fleet, constraints"
            } else {
                "mixed fleet, no constraints"
            };
            measure(label, &workload, Grouping::Classes, options.runs)?;
            // Every agent evaluated for every task: what the class index saves.
            measure(label, &workload, Grouping::PerAgent, options.runs.min(2))?;
        }
        measure(
            "homogeneous fleet (packing)",
            &homogeneous(agents),
            Grouping::Classes,
            options.runs,
        )?;
    }
    let sample = Workload::from_json(SAMPLE)?;
    let label = "replay workloads/sample.json";
    let result = measure(label, &sample, Grouping::Classes, options.runs)?;
    print_details(&result);
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Grouping {
    Classes,
    PerAgent,
}

fn print_header() {
    println!(
        "| scenario | index | agents | pending | placed | failed | classes (start→end) | \
         latency ms (median; min–max) | decisions/s | agents used | lower bound | packing |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |");
}

/// Failures (one line per distinct summary) and unmet demand of a replay.
fn print_details(result: &SchedulingResult) {
    let mut summaries: BTreeMap<&str, usize> = BTreeMap::new();
    for failure in &result.failures {
        *summaries.entry(failure.summary.as_str()).or_default() += 1;
    }
    println!();
    for (summary, tasks) in summaries {
        println!("- {tasks} task(s) not placed: {summary}");
    }
    for demand in &result.unmet_demand {
        println!(
            "- unmet demand: {} task(s) of {} ({} tier)",
            demand.tasks,
            demand.shape.resources(),
            demand.shape.tier.as_str()
        );
    }
}

fn measure(
    label: &str,
    workload: &Workload,
    grouping: Grouping,
    runs: usize,
) -> anyhow::Result<SchedulingResult> {
    let base = match grouping {
        Grouping::Classes => workload.cluster()?,
        Grouping::PerAgent => workload.cluster_into(ClusterState::without_class_grouping())?,
    };
    let tasks = workload.tasks();
    let config = PlacementConfig::default();
    let mut times = Vec::with_capacity(runs);
    let mut last: Option<(SchedulingResult, ClusterState)> = None;
    for _ in 0..runs {
        let mut state = base.clone();
        let start = Instant::now();
        let result = schedule(&mut state, &tasks, &workload.capacity_groups, &config);
        times.push(start.elapsed());
        if let Some((previous, _)) = &last
            && previous.assignments != result.assignments
        {
            bail!("{label}: two runs on equal input disagree");
        }
        last = Some((result, state));
    }
    let Some((result, state)) = last else {
        bail!("no run");
    };
    times.sort();
    let median = times[times.len() / 2];
    let decisions = (result.assignments.len() + result.failures.len()) as f64;
    let (used, bound) = packing(workload, &tasks, &result);
    println!(
        "| {label} | {} | {} | {} | {} | {} | {}→{} | {:.1} ({:.1}–{:.1}) | {:.0} | {used} | {} | {} |",
        match grouping {
            Grouping::Classes => "classes",
            Grouping::PerAgent => "per agent",
        },
        base.agent_count(),
        tasks.len(),
        result.assignments.len(),
        result.failures.len(),
        result.stats.agent_classes,
        state.class_count(),
        ms(median),
        ms(times[0]),
        ms(times[times.len() - 1]),
        decisions / median.as_secs_f64(),
        if bound == 0 {
            "–".to_string()
        } else {
            bound.to_string()
        },
        if bound == 0 || used == 0 {
            "–".to_string()
        } else {
            format!("{:.1} %", 100.0 * bound as f64 / used as f64)
        },
    );
    Ok(result)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Agents used, and the lower bound `max_R ceil(Σ placed requests_R / agent_R)` when the fleet
/// is homogeneous (0 otherwise).
fn packing(workload: &Workload, tasks: &[TaskRequest], result: &SchedulingResult) -> (usize, u64) {
    let used: BTreeSet<&str> = result
        .assignments
        .iter()
        .map(|a| a.agent_id.as_str())
        .collect();
    let mut shapes: Vec<Resources> = Vec::new();
    for group in &workload.agents {
        if !shapes.contains(&group.allocatable) {
            shapes.push(group.allocatable);
        }
    }
    let [agent] = shapes[..] else {
        return (used.len(), 0);
    };
    let by_id: BTreeMap<&str, &TaskRequest> =
        tasks.iter().map(|t| (t.task_id.as_str(), t)).collect();
    let total = result
        .assignments
        .iter()
        .filter_map(|a| by_id.get(a.task_id.as_str()))
        .fold(Resources::ZERO, |acc, t| acc.saturating_add(&t.resources));
    let bound = [
        (total.cpu_milli, agent.cpu_milli),
        (total.memory_mb, agent.memory_mb),
        (total.network_mbps, agent.network_mbps),
    ]
    .into_iter()
    .filter(|(_, size)| *size > 0)
    .map(|(sum, size)| sum.div_ceil(size))
    .max()
    .unwrap_or(0);
    (used.len(), bound)
}

fn res(cpu_milli: u64, memory_mb: u64, network_mbps: u64) -> Resources {
    Resources {
        cpu_milli,
        memory_mb,
        disk_mb: 10_000,
        network_mbps,
        gpu: 0,
        pods: 1,
    }
}

fn agent_size(cpu_milli: u64, memory_mb: u64) -> Resources {
    Resources {
        cpu_milli,
        memory_mb,
        disk_mb: 1_000_000,
        network_mbps: 10_000,
        gpu: 0,
        pods: 110,
    }
}

fn agent_group(name: &str, count: u32, instance_type: &str, allocatable: Resources) -> AgentGroup {
    AgentGroup {
        name: name.to_string(),
        count,
        zones: ZONES.iter().map(|z| z.to_string()).collect(),
        instance_type: Some(instance_type.to_string()),
        instance_group: Some(format!("titusagent-{name}-v001")),
        tier: None,
        lifecycle: InstanceGroupLifecycle::Active,
        cpu_model: None,
        kube_backend: None,
        attributes: BTreeMap::new(),
        allocatable,
    }
}

/// Task shapes of the synthetic jobs (cpu milli, memory MB, network Mbps).
const SHAPES: [(u64, u64, u64); 8] = [
    (1_000, 2_048, 128),
    (2_000, 8_192, 256),
    (4_000, 16_384, 512),
    (8_000, 32_768, 1_000),
    (1_000, 4_096, 128),
    (500, 1_024, 128),
    (2_000, 4_096, 256),
    (4_000, 8_192, 512),
];

fn jobs(constrained: bool) -> Vec<JobSpec> {
    (0..100u32)
        .map(|j| {
            let (cpu, memory, network) = SHAPES[j as usize % SHAPES.len()];
            let mut job = JobSpec {
                id: format!("job-{j:03}"),
                count: PENDING / 100,
                tier: Tier::Flex,
                capacity_group: format!("group-{}", j % 4),
                job_type: if j % 3 == 0 {
                    JobType::Service
                } else {
                    JobType::Batch
                },
                task: res(cpu, memory, network),
                hard_constraints: BTreeMap::new(),
                soft_constraints: BTreeMap::new(),
            };
            if constrained {
                let (hard, soft) = (&mut job.hard_constraints, &mut job.soft_constraints);
                match j % 10 {
                    0 | 1 => drop(hard.insert("uniqueHost".into(), "true".into())),
                    2 => drop(hard.insert("zoneBalance".into(), "true".into())),
                    3 => drop(soft.insert("zoneBalance".into(), "true".into())),
                    4 => drop(hard.insert("availabilityZone".into(), ZONES[j as usize % 3].into())),
                    5 => {
                        soft.insert("uniqueHost".into(), "true".into());
                        soft.insert("machineType".into(), "m5.4xlarge".into());
                    }
                    6 => {
                        job.tier = Tier::Critical;
                        job.capacity_group = "critical".into();
                    }
                    _ => {}
                }
            }
            job
        })
        .collect()
}

/// 60 % m5.4xlarge, 25 % r5.4xlarge, 15 % c5.9xlarge over three zones.
fn synthetic(agents: u32, constrained: bool) -> Workload {
    let m5 = agents * 60 / 100;
    let r5 = agents * 25 / 100;
    let c5 = agents - m5 - r5;
    let capacity_groups = if constrained {
        // Guarantees for 80 % of the fleet's CPU, split over the groups.
        let per_group = u64::from(agents) * 19 * 8 / 10 / 5;
        let mut groups: Vec<CapacityGroupSpec> = (0..4)
            .map(|g| CapacityGroupSpec {
                name: format!("group-{g}"),
                tier: Tier::Flex,
                instance: res(1_000, 4_096, 128),
                instance_count: per_group,
            })
            .collect();
        groups.push(CapacityGroupSpec {
            name: "critical".into(),
            tier: Tier::Critical,
            instance: res(1_000, 4_096, 128),
            instance_count: per_group,
        });
        groups
    } else {
        Vec::new()
    };
    Workload {
        agents: vec![
            agent_group("m5", m5, "m5.4xlarge", agent_size(16_000, 65_536)),
            agent_group("r5", r5, "r5.4xlarge", agent_size(16_000, 131_072)),
            agent_group("c5", c5, "c5.9xlarge", agent_size(36_000, 73_728)),
        ],
        capacity_groups,
        jobs: jobs(constrained),
    }
}

/// One instance type, no constraints: packing efficiency against the lower bound.
fn homogeneous(agents: u32) -> Workload {
    Workload {
        agents: vec![agent_group(
            "m5",
            agents,
            "m5.4xlarge",
            agent_size(16_000, 65_536),
        )],
        capacity_groups: Vec::new(),
        jobs: jobs(false),
    }
}
