//! The scheduler against the embedded API server: a 30-node fleet over three zones, task Pods
//! created as the task controller creates them, and what the scheduler binds or reports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kube_support;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube_support::*;
use titus_crds::{CapacityGroup, CapacityGroupSpec, Tier};
use titus_scheduler::kube::act::{DEMAND_CONFIG_MAP, DEMAND_KEY};

/// A free 127.0.0.1 address for a health endpoint.
fn free_addr() -> anyhow::Result<std::net::SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

fn zone_of<'a>(fleet: &'a [NodeShape], node: &str) -> &'a str {
    &fleet.iter().find(|n| n.name == node).unwrap().zone
}

fn type_of<'a>(fleet: &'a [NodeShape], node: &str) -> &'a str {
    &fleet.iter().find(|n| n.name == node).unwrap().instance_type
}

#[tokio::test]
async fn zone_balance_spreads_one_job_evenly_over_the_three_zones() -> anyhow::Result<()> {
    let h = Harness::start(|_| {}).await?;
    let fleet = create_fleet(&h.client).await?;
    let job = create_job(
        &h.client,
        "balanced",
        batch_job(9, 1.0, 1024).with_hard_constraint("zoneBalance", "true"),
    )
    .await?;
    let pods = create_task_pods(&h.client, &job, 9).await?;
    let bound = wait_bound(&h.client, &pods).await?;
    let mut per_zone: BTreeMap<&str, u32> = BTreeMap::new();
    for node in bound.values() {
        *per_zone.entry(zone_of(&fleet, node)).or_default() += 1;
    }
    assert_eq!(
        per_zone,
        BTreeMap::from([("us-east-1a", 3), ("us-east-1b", 3), ("us-east-1c", 3)])
    );
    Ok(())
}

#[tokio::test]
async fn unique_host_never_doubles_up_and_the_rest_are_unschedulable() -> anyhow::Result<()> {
    let h = Harness::start(|_| {}).await?;
    create_fleet(&h.client).await?;
    let job = create_job(
        &h.client,
        "unique",
        batch_job(32, 1.0, 1024).with_hard_constraint("uniqueHost", "true"),
    )
    .await?;
    let pods = create_task_pods(&h.client, &job, 32).await?;
    let api = h.pods();
    let (bound, unbound) = wait_for("30 bound and 2 marked", DEADLINE, || async {
        let mut bound = Vec::new();
        let mut unbound = Vec::new();
        for name in &pods {
            let pod = api.get(name).await?;
            let scheduled = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"))
                .map(|c| c.status.clone());
            match (pod.spec.and_then(|s| s.node_name), scheduled.as_deref()) {
                (Some(node), _) => bound.push(node),
                (None, Some("False")) => unbound.push(name.clone()),
                (None, _) => return Ok(None),
            }
        }
        Ok((bound.len() == 30 && unbound.len() == 2).then_some((bound, unbound)))
    })
    .await?;
    let distinct: BTreeSet<&String> = bound.iter().collect();
    assert_eq!(distinct.len(), 30, "one task per node: {bound:?}");
    for name in unbound {
        wait_unschedulable(&h.client, &name, |m| m == "0/30 offers: 30 uniqueHost").await?;
    }
    Ok(())
}

#[tokio::test]
async fn machine_type_and_availability_zone_are_hard_constraints() -> anyhow::Result<()> {
    let h = Harness::start(|_| {}).await?;
    let fleet = create_fleet(&h.client).await?;
    let typed = create_job(
        &h.client,
        "typed",
        batch_job(8, 2.0, 2048).with_hard_constraint("machineType", "r5.2xlarge"),
    )
    .await?;
    let zoned = create_job(
        &h.client,
        "zoned",
        batch_job(8, 2.0, 2048).with_hard_constraint("availabilityZone", "US-EAST-1B"),
    )
    .await?;
    let typed_pods = create_task_pods(&h.client, &typed, 8).await?;
    let zoned_pods = create_task_pods(&h.client, &zoned, 8).await?;
    for node in wait_bound(&h.client, &typed_pods).await?.values() {
        assert_eq!(type_of(&fleet, node), "r5.2xlarge", "{node}");
    }
    for node in wait_bound(&h.client, &zoned_pods).await?.values() {
        assert_eq!(zone_of(&fleet, node), "us-east-1b", "{node}");
    }
    Ok(())
}

#[tokio::test]
async fn a_pod_that_fits_nowhere_gets_the_aggregated_reasons_an_event_on_its_task_and_is_demand()
-> anyhow::Result<()> {
    let h = Harness::start(|_| {}).await?;
    create_fleet(&h.client).await?;
    let job = create_job(&h.client, "huge", batch_job(1, 64.0, 1024)).await?;
    let pods = create_task_pods(&h.client, &job, 1).await?;
    let message = wait_unschedulable(&h.client, &pods[0], |m| {
        m == "0/30 offers: 30 insufficient cpu"
    })
    .await?;
    let events: Api<Event> = Api::namespaced(h.client.clone(), NS);
    let event = wait_for("a FailedScheduling event", DEADLINE, || async {
        Ok(events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedScheduling")))
    })
    .await?;
    let regarding = event.regarding.unwrap();
    assert_eq!(regarding.kind.as_deref(), Some("TitusTask"));
    assert_eq!(regarding.name.as_deref(), Some(pods[0].as_str()));
    assert_eq!(event.note.as_deref(), Some(message.as_str()));
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    let maps: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    let demand: serde_json::Value = wait_for("published demand", DEADLINE, || async {
        let Some(map) = maps.get_opt(DEMAND_CONFIG_MAP).await? else {
            return Ok(None);
        };
        let json = map
            .data
            .unwrap_or_default()
            .remove(DEMAND_KEY)
            .unwrap_or_default();
        let value: serde_json::Value = serde_json::from_str(&json)?;
        Ok((value["unmetDemand"]
            .as_array()
            .is_some_and(|a| !a.is_empty()))
        .then_some(value))
    })
    .await?;
    assert_eq!(demand["unmetDemand"][0]["shape"]["cpu_milli"], 64_000);
    assert_eq!(demand["unmetDemand"][0]["tasks"], 1);
    Ok(())
}

#[tokio::test]
async fn tasks_are_bin_packed_onto_the_fewest_nodes() -> anyhow::Result<()> {
    let h = Harness::start(|_| {}).await?;
    create_fleet(&h.client).await?;
    let job = create_job(&h.client, "packed", batch_job(16, 2.0, 4096)).await?;
    let pods = create_task_pods(&h.client, &job, 16).await?;
    let bound = wait_bound(&h.client, &pods).await?;
    let mut per_node: BTreeMap<&String, u32> = BTreeMap::new();
    for node in bound.values() {
        *per_node.entry(node).or_default() += 1;
    }
    assert_eq!(
        per_node.len(),
        4,
        "32 cores on 8-core nodes need 4 nodes: {per_node:?}"
    );
    assert!(per_node.values().all(|n| *n == 4));
    Ok(())
}

#[tokio::test]
async fn a_removed_node_releases_its_pods_capacity_and_counts_them_again_when_it_returns()
-> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let h = Harness::start(|c| c.health_bind = Some(addr)).await?;
    let fleet = create_fleet(&h.client).await?;
    let job = create_job(&h.client, "packed", batch_job(8, 2.0, 4096)).await?;
    let pods = create_task_pods(&h.client, &job, 8).await?;
    let bound = wait_bound(&h.client, &pods).await?;
    let gauges = |agents: f64, placed: f64| async move {
        wait_for(
            &format!("{agents} agents and {placed} placed tasks"),
            DEADLINE,
            || async {
                let a = metric(addr, "titus_scheduler_agents").await?;
                let p = metric(addr, "titus_scheduler_placed_tasks").await?;
                Ok((a == Some(agents) && p == Some(placed)).then_some(()))
            },
        )
        .await
    };
    gauges(30.0, 8.0).await?;
    let gone = bound.values().next().unwrap().clone();
    let on_gone = bound.values().filter(|n| **n == gone).count() as f64;
    let nodes: Api<Node> = h.nodes();
    nodes.delete(&gone, &DeleteParams::default()).await?;
    // The node's pods stay bound in the API (no pod GC runs here) but hold nothing.
    gauges(29.0, 8.0 - on_gone).await?;
    let shape = fleet.iter().find(|n| n.name == gone).unwrap();
    create_node(&h.client, shape).await?;
    gauges(30.0, 8.0).await?;
    Ok(())
}

#[tokio::test]
async fn cordoned_not_ready_and_tainted_nodes_get_no_pods() -> anyhow::Result<()> {
    let h = Harness::start(|_| {}).await?;
    let shapes: Vec<NodeShape> = ["cordoned", "not-ready", "tainted", "ok"]
        .iter()
        .map(|name| NodeShape {
            name: name.to_string(),
            zone: ZONES[0].to_string(),
            instance_type: "m5.2xlarge".to_string(),
            cores: 8,
            memory_gi: 32,
        })
        .collect();
    let specs = [
        (serde_json::json!({"unschedulable": true}), true),
        (serde_json::json!({}), false),
        (
            serde_json::json!({"taints": [
                {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]}),
            true,
        ),
        (serde_json::json!({}), true),
    ];
    for (shape, (spec, ready)) in shapes.iter().zip(specs) {
        create_node_with(&h.client, shape, spec, ready).await?;
    }
    let job = create_job(&h.client, "big", batch_job(3, 6.0, 1024)).await?;
    let pods = create_task_pods(&h.client, &job, 3).await?;
    let api = h.pods();
    let bound = wait_for("one pod bound", DEADLINE, || async {
        let mut bound = Vec::new();
        for name in &pods {
            if let Some(node) = api.get(name).await?.spec.and_then(|s| s.node_name) {
                bound.push((name.clone(), node));
            }
        }
        Ok((!bound.is_empty()).then_some(bound))
    })
    .await?;
    assert_eq!(bound.len(), 1);
    assert_eq!(bound[0].1, "ok");
    for name in pods.iter().filter(|p| **p != bound[0].0) {
        wait_unschedulable(&h.client, name, |m| m == "0/1 offers: 1 insufficient cpu").await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_capacity_group_tier_keeps_its_jobs_on_nodes_of_that_tier() -> anyhow::Result<()> {
    // The group exists before the scheduler starts, as capacity groups do: watches are
    // independent streams, so a group created just before its job's pods may be seen after them
    // (its pods would then be placed as DEFAULT, as Titus places unknown groups).
    let mut h = Harness::api_only().await?;
    for (name, tier) in [
        ("critical-1", "critical"),
        ("critical-2", "critical"),
        ("flex-1", "flex"),
        ("flex-2", "flex"),
    ] {
        let shape = NodeShape {
            name: name.to_string(),
            zone: ZONES[0].to_string(),
            instance_type: "m5.2xlarge".to_string(),
            cores: 8,
            memory_gi: 32,
        };
        create_node_with(
            &h.client,
            &shape,
            serde_json::json!({"taints": [{"key": "node.titus.netflix.com/tier", "value": tier,
                                           "effect": "NoSchedule"}]}),
            true,
        )
        .await?;
    }
    let groups: Api<CapacityGroup> = Api::namespaced(h.client.clone(), NS);
    groups
        .create(
            &PostParams::default(),
            &CapacityGroup::new(
                "api",
                CapacityGroupSpec {
                    capacity_group_name: "API".into(),
                    tier: Tier::Critical,
                    ..CapacityGroupSpec::default()
                },
            ),
        )
        .await?;
    h.start_scheduler(|_| {});
    let critical = create_job(
        &h.client,
        "api",
        batch_job(4, 2.0, 2048).with_capacity_group("api"),
    )
    .await?;
    let flex = create_job(&h.client, "batch", batch_job(4, 2.0, 2048)).await?;
    let critical_pods = create_task_pods(&h.client, &critical, 4).await?;
    let flex_pods = create_task_pods(&h.client, &flex, 4).await?;
    for node in wait_bound(&h.client, &critical_pods).await?.values() {
        assert!(node.starts_with("critical-"), "{node}");
    }
    for node in wait_bound(&h.client, &flex_pods).await?.values() {
        assert!(node.starts_with("flex-"), "{node}");
    }
    Ok(())
}

#[tokio::test]
async fn only_the_leader_binds_when_two_schedulers_run() -> anyhow::Result<()> {
    let (first, second) = (free_addr()?, free_addr()?);
    let mut h = Harness::start(|c| {
        c.identity = "first".into();
        c.health_bind = Some(first);
    })
    .await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let other = tokio::spawn(titus_scheduler::kube::run(
        titus_scheduler::kube::SchedulerConfig {
            identity: "second".into(),
            health_bind: Some(second),
            batch_window: std::time::Duration::from_millis(20),
            ..Default::default()
        },
        h.client.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    create_fleet(&h.client).await?;
    let job = create_job(&h.client, "shared", batch_job(20, 1.0, 1024)).await?;
    let pods = create_task_pods(&h.client, &job, 20).await?;
    wait_bound(&h.client, &pods).await?;
    let binds = r#"titus_scheduler_binds_total{result="success"}"#;
    let leader = r#"titus_scheduler_leader"#;
    let (a, b) = (metric(first, binds).await?, metric(second, binds).await?);
    let total = a.unwrap_or(0.0) + b.unwrap_or(0.0);
    assert_eq!(total, 20.0, "every pod bound exactly once: {a:?} + {b:?}");
    assert!(
        a.is_none() || b.is_none(),
        "one scheduler made every bind: {a:?} / {b:?}"
    );
    let leaders = [metric(first, leader).await?, metric(second, leader).await?];
    assert_eq!(
        leaders.iter().filter(|l| **l == Some(1.0)).count(),
        1,
        "{leaders:?}"
    );
    h.stop_scheduler().await?;
    let _ = stop.send(());
    other.await??;
    Ok(())
}
