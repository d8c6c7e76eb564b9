//! The index follows watch events into the cluster state.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::json;

use super::*;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const T0: &str = "2026-01-01T00:00:00Z";

fn config() -> IndexConfig {
    IndexConfig {
        scheduler_name: "titus-scheduler".into(),
        nodes: NodeRules::default(),
        assume_ttl: Duration::from_secs(30),
    }
}

/// A Ready node with `cores` CPUs and 64 GiB in `zone`.
fn node(name: &str, cores: u32, zone: &str) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"failure-domain.beta.kubernetes.io/zone": zone}},
        "status": {"allocatable": {"cpu": cores.to_string(), "memory": "64Gi",
                                   "ephemeral-storage": "500Gi", "titus/network": "10G", "pods": "110"},
                   "conditions": [{"type": "Ready", "status": "True"}]}
    }))
    .unwrap()
}

/// A pod asking for `cores` CPUs; `scheduler` names its scheduler; `node` binds it.
fn pod(name: &str, cores: u32, scheduler: &str, node: Option<&str>) -> Pod {
    let mut spec = json!({
        "schedulerName": scheduler,
        "containers": [{"name": "main", "resources": {"requests": {"cpu": cores.to_string(), "memory": "1Gi"}}}]
    });
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": T0,
                     "labels": {"v3.job.titus.netflix.com/job-id": "job-1"}},
        "spec": spec,
        "status": {"phase": "Pending"}
    }))
    .unwrap()
}

fn lease(node: &str, renewed: &str) -> Lease {
    serde_json::from_value(json!({
        "metadata": {"name": node, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": node, "renewTime": renewed.replace('Z', ".000000Z")}
    }))
    .unwrap()
}

/// An index that has listed every kind (empty lists).
fn synced() -> Index {
    let mut index = Index::new(config());
    let now = t(T0);
    index.apply(IndexEvent::node(Event::InitDone), now);
    index.apply(IndexEvent::lease(Event::InitDone), now);
    index.apply(IndexEvent::pod(Event::InitDone), now);
    index.apply(IndexEvent::job(Event::InitDone), now);
    index.apply(IndexEvent::capacity_group(Event::InitDone), now);
    index
}

fn apply_node(index: &mut Index, n: Node) {
    index.apply(IndexEvent::node(Event::Apply(n)), t(T0));
}

fn apply_pod(index: &mut Index, p: Pod) {
    index.apply(IndexEvent::pod(Event::Apply(p)), t(T0));
}

fn free_cpu(index: &Index, node: &str) -> u64 {
    index.state().free_resources(node).unwrap().cpu_milli
}

#[test]
fn the_index_is_synced_only_after_every_kind_was_listed() {
    let mut index = Index::new(config());
    assert!(!index.synced());
    index.apply(IndexEvent::node(Event::InitDone), t(T0));
    assert_eq!(index.unsynced().len(), 4);
    assert!(synced().synced());
}

#[test]
fn bound_pods_hold_capacity_and_a_removed_node_releases_it_until_it_returns() {
    let mut index = synced();
    apply_node(&mut index, node("n1", 8, "a"));
    apply_pod(&mut index, pod("p1", 3, "titus-scheduler", Some("n1")));
    apply_pod(&mut index, pod("p2", 2, "titus-scheduler", Some("n1")));
    assert_eq!(free_cpu(&index, "n1"), 3000);
    assert_eq!(index.state().task_count(), 2);
    index.take_dirty();

    index.apply(IndexEvent::node(Event::Delete(node("n1", 8, "a"))), t(T0));
    assert_eq!(index.state().agent_count(), 0);
    assert_eq!(
        index.state().task_count(),
        0,
        "the node's pods no longer hold anything"
    );
    assert!(index.take_dirty());

    apply_node(&mut index, node("n1", 8, "a"));
    assert_eq!(
        index.state().task_count(),
        2,
        "pods still bound to it count again"
    );
    assert_eq!(free_cpu(&index, "n1"), 3000);
}

#[test]
fn finished_and_deleted_pods_release_their_capacity() {
    let mut index = synced();
    apply_node(&mut index, node("n1", 8, "a"));
    apply_pod(&mut index, pod("p1", 3, "titus-scheduler", Some("n1")));
    apply_pod(&mut index, pod("p2", 2, "titus-scheduler", Some("n1")));
    let mut finished = pod("p1", 3, "titus-scheduler", Some("n1"));
    finished.status.as_mut().unwrap().phase = Some("Succeeded".into());
    apply_pod(&mut index, finished);
    assert_eq!(free_cpu(&index, "n1"), 6000);
    index.apply(
        IndexEvent::pod(Event::Delete(pod("p2", 2, "titus-scheduler", Some("n1")))),
        t(T0),
    );
    assert_eq!(free_cpu(&index, "n1"), 8000);
}

#[test]
fn other_schedulers_pods_count_as_used_capacity() {
    let mut index = synced();
    apply_pod(
        &mut index,
        pod("daemon", 1, "default-scheduler", Some("n1")),
    );
    apply_node(&mut index, node("n1", 8, "a"));
    assert_eq!(
        free_cpu(&index, "n1"),
        7000,
        "counted even when seen before the node"
    );
    assert_eq!(index.state().task_count(), 0);
    apply_pod(&mut index, pod("other", 2, "default-scheduler", Some("n1")));
    assert_eq!(free_cpu(&index, "n1"), 5000);
    index.apply(
        IndexEvent::pod(Event::Delete(pod(
            "daemon",
            1,
            "default-scheduler",
            Some("n1"),
        ))),
        t(T0),
    );
    assert_eq!(free_cpu(&index, "n1"), 6000);
    assert_eq!(
        index.pending(10).total,
        0,
        "others' pods are never pending for us"
    );
}

#[test]
fn an_assumed_assignment_survives_stale_events_and_is_released_when_the_bind_fails() {
    let mut index = synced();
    apply_node(&mut index, node("n1", 8, "a"));
    apply_pod(&mut index, pod("p1", 3, "titus-scheduler", None));
    let pending = index.pending(10);
    assert_eq!(pending.requests.len(), 1);
    let result = crate::placement::schedule(
        index.state_mut(),
        &pending.requests,
        &[],
        &crate::placement::PlacementConfig::default(),
    );
    assert_eq!(result.assignments.len(), 1);
    index.assume("default/p1", "n1", t(T0));
    // The watch replays the still-unbound pod: the assumption holds.
    apply_pod(&mut index, pod("p1", 3, "titus-scheduler", None));
    assert_eq!(free_cpu(&index, "n1"), 5000);
    assert!(index.pending(10).requests.is_empty(), "not scheduled twice");
    index.forget("default/p1");
    assert_eq!(free_cpu(&index, "n1"), 8000);
    assert_eq!(index.pending(10).requests.len(), 1);
}

#[test]
fn an_assumption_becomes_the_observed_binding_or_expires() {
    let mut index = synced();
    apply_node(&mut index, node("n1", 8, "a"));
    apply_pod(&mut index, pod("p1", 3, "titus-scheduler", None));
    apply_pod(&mut index, pod("p2", 1, "titus-scheduler", None));
    let pending = index.pending(10);
    crate::placement::schedule(
        index.state_mut(),
        &pending.requests,
        &[],
        &crate::placement::PlacementConfig::default(),
    );
    index.assume("default/p1", "n1", t(T0));
    index.assume("default/p2", "n1", t(T0));
    index.take_dirty();
    apply_pod(&mut index, pod("p1", 3, "titus-scheduler", Some("n1")));
    assert!(
        !index.take_dirty(),
        "observing the assumed binding changes nothing"
    );
    index.refresh(t("2026-01-01T00:00:31Z"));
    assert_eq!(free_cpu(&index, "n1"), 5000, "p2's bind was never observed");
    assert_eq!(index.state().task_agent("default/p1"), Some("n1"));
}

#[test]
fn a_relist_removes_what_was_not_listed_again() {
    let mut index = synced();
    apply_node(&mut index, node("n1", 8, "a"));
    apply_node(&mut index, node("n2", 8, "b"));
    apply_pod(&mut index, pod("p1", 3, "titus-scheduler", Some("n1")));
    let now = t(T0);
    index.apply(IndexEvent::node(Event::Init), now);
    index.apply(IndexEvent::node(Event::InitApply(node("n1", 8, "a"))), now);
    index.apply(IndexEvent::node(Event::InitDone), now);
    index.apply(IndexEvent::pod(Event::Init), now);
    index.apply(IndexEvent::pod(Event::InitDone), now);
    assert_eq!(index.state().agent_count(), 1);
    assert!(index.state().agent("n2").is_none());
    assert_eq!(index.state().task_count(), 0);
}

#[test]
fn a_node_whose_lease_goes_stale_takes_no_placements_until_renewed() {
    let mut index = synced();
    apply_node(&mut index, node("n1", 8, "a"));
    index.apply(
        IndexEvent::lease(Event::Apply(lease("n1", "2026-01-01T00:00:00Z"))),
        t(T0),
    );
    assert_eq!(index.state().agent_count(), 1);
    index.refresh(t("2026-01-01T00:00:41Z"));
    assert_eq!(index.state().agent_count(), 0, "not reporting for 41 s");
    index.apply(
        IndexEvent::lease(Event::Apply(lease("n1", "2026-01-01T00:00:40Z"))),
        t("2026-01-01T00:00:41Z"),
    );
    assert_eq!(index.state().agent_count(), 1);
}

#[test]
fn a_node_that_stops_being_ready_leaves_and_comes_back() {
    let mut index = synced();
    apply_node(&mut index, node("n1", 8, "a"));
    apply_pod(&mut index, pod("p1", 3, "titus-scheduler", Some("n1")));
    let mut not_ready = node("n1", 8, "a");
    not_ready
        .status
        .as_mut()
        .unwrap()
        .conditions
        .as_mut()
        .unwrap()[0]
        .status = "False".into();
    apply_node(&mut index, not_ready);
    assert_eq!(index.state().agent_count(), 0);
    apply_node(&mut index, node("n1", 16, "a"));
    assert_eq!(free_cpu(&index, "n1"), 13_000, "new allocatable, same pods");
}

#[test]
fn pods_of_a_job_not_seen_yet_wait_and_the_job_brings_its_constraints() {
    let mut index = synced();
    apply_node(&mut index, node("n1", 8, "a"));
    let mut p = pod("p1", 1, "titus-scheduler", None);
    p.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("titus.dev/job-name".into(), "web".into());
    apply_pod(&mut index, p);
    let pending = index.pending(10);
    assert_eq!((pending.total, pending.waiting_for_job), (1, 1));
    assert!(pending.requests.is_empty());
    let mut job = TitusJob::new(
        "web",
        titus_crds::TitusJobSpec::service(0, 1, 1).with_hard_constraint("uniqueHost", "true"),
    );
    job.metadata.namespace = Some("default".into());
    index.take_dirty();
    index.apply(IndexEvent::job(Event::Apply(job)), t(T0));
    assert!(index.take_dirty());
    let pending = index.pending(10);
    assert_eq!(pending.requests.len(), 1);
    assert_eq!(
        pending.requests[0]
            .hard_constraints
            .get("uniqueHost")
            .map(String::as_str),
        Some("true")
    );
}

#[test]
fn pending_tasks_are_bounded_critical_first_then_oldest_first() {
    let mut index = synced();
    for (i, ts) in [
        "2026-01-01T00:00:03Z",
        "2026-01-01T00:00:01Z",
        "2026-01-01T00:00:02Z",
    ]
    .iter()
    .enumerate()
    {
        let mut p = pod(&format!("p{i}"), 1, "titus-scheduler", None);
        p.metadata.creation_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t(ts)));
        apply_pod(&mut index, p);
    }
    let mut bad = pod("bad", 1, "titus-scheduler", None);
    bad.spec.as_mut().unwrap().containers[0]
        .resources
        .as_mut()
        .unwrap()
        .requests
        .as_mut()
        .unwrap()
        .insert(
            "cpu".into(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("?".into()),
        );
    apply_pod(&mut index, bad);
    let pending = index.pending(2);
    let ids: Vec<&str> = pending
        .requests
        .iter()
        .map(|r| r.task_id.as_str())
        .collect();
    assert_eq!(ids, ["default/p1", "default/p2"]);
    assert_eq!(pending.total, 4);
    assert_eq!(pending.invalid.len(), 1);
    assert_eq!(pending.invalid[0].0, "default/bad");
}
