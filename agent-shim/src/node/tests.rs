//! The agent loop against an in-process fake of the Kubernetes API (records every request and
//! answers with minimal objects) and the simulated runtime, on paused time. Pods are fed as
//! watch events directly. `tests/node` runs the agent against the real embedded API server.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::agent::{AgentEvent, NodeAgent, NodeAgentConfig};
use super::registration::{NodeCapacity, NodeConfig};
use crate::labels;
use crate::logs::LogIndex;
use crate::runtime::ContainerRuntime;
use crate::simulated::{SimulatedConfig, SimulatedRuntime};
use crate::titus_env::HostFacts;

/// One request the fake API received.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    body: Value,
}

#[derive(Clone, Default)]
struct FakeApi {
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeApi {
    fn client(&self) -> kube::Client {
        let requests = self.requests.clone();
        let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let requests = requests.clone();
            async move {
                let method = req.method().to_string();
                let path = req.uri().path().to_owned();
                let bytes = req.into_body().collect().await?.to_bytes();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let reply = answer(&path);
                requests
                    .lock()
                    .unwrap()
                    .push(Recorded { method, path, body });
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                    http::Response::builder()
                        .status(200)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(reply.to_string())))
                        .unwrap(),
                )
            }
        });
        kube::Client::new(service, "default")
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Titus reasons reported for the Pod named `name`, in order.
    fn reasons(&self, name: &str) -> Vec<String> {
        let path = format!("/api/v1/namespaces/default/pods/{name}/status");
        self.requests()
            .into_iter()
            .filter(|r| r.method == "PATCH" && r.path == path)
            .filter_map(|r| r.body["status"]["reason"].as_str().map(str::to_owned))
            .collect()
    }

    fn last_status(&self, name: &str) -> Value {
        let path = format!("/api/v1/namespaces/default/pods/{name}/status");
        self.requests()
            .into_iter()
            .rev()
            .find(|r| r.method == "PATCH" && r.path == path)
            .map(|r| r.body["status"].clone())
            .unwrap_or(Value::Null)
    }

    fn deletes(&self, name: &str) -> Vec<Value> {
        let path = format!("/api/v1/namespaces/default/pods/{name}");
        self.requests()
            .into_iter()
            .filter(|r| r.method == "DELETE" && r.path == path)
            .map(|r| r.body)
            .collect()
    }
}

/// A minimal object of the kind the path names (k8s-openapi checks apiVersion and kind).
fn answer(path: &str) -> Value {
    let name = path
        .trim_end_matches("/status")
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let (api_version, kind) = if path.contains("/leases/") {
        ("coordination.k8s.io/v1", "Lease")
    } else if path.contains("/nodes/") {
        ("v1", "Node")
    } else {
        ("v1", "Pod")
    };
    json!({ "apiVersion": api_version, "kind": kind, "metadata": { "name": name } })
}

fn config() -> NodeAgentConfig {
    let capacity = NodeCapacity {
        cpu: 4.0,
        memory_mb: 16384,
        disk_mb: 100_000,
        network_mbps: 1000,
        gpu: 0,
        pods: 110,
    };
    NodeAgentConfig {
        node: NodeConfig::named("agent-1", capacity),
        log_dir: PathBuf::from("/nonexistent/logs"),
        host: HostFacts::default(),
        oci_runtime: "simulated".into(),
        resync: Duration::from_secs(10),
    }
}

fn logs() -> Arc<LogIndex> {
    Arc::new(LogIndex::default())
}

fn runtime() -> Arc<SimulatedRuntime> {
    Arc::new(SimulatedRuntime::new(SimulatedConfig {
        missing_images: BTreeSet::from(["registry.test/missing:1".to_string()]),
        ..SimulatedConfig::default()
    }))
}

fn pod(name: &str, uid: &str, image: &str, run_time: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {
            "name": name, "namespace": "default", "uid": uid,
            "annotations": {
                labels::MOCK_PREPARE_TIME: "1s",
                labels::MOCK_RUN_TIME: run_time,
                labels::MOCK_KILL_TIME: "2s",
            }
        },
        "spec": {
            "nodeName": "agent-1",
            "terminationGracePeriodSeconds": 30,
            "containers": [{ "name": "main", "image": image, "command": ["/bin/true"] }]
        }
    }))
    .unwrap()
}

fn deleting(mut pod: Pod) -> Pod {
    pod.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2026-01-01T00:00:00Z".parse().unwrap(),
    ));
    pod.metadata.deletion_grace_period_seconds = Some(30);
    pod
}

/// An API fake, a simulated runtime and an agent started on them.
async fn world() -> (
    FakeApi,
    Arc<SimulatedRuntime>,
    Arc<NodeAgent<SimulatedRuntime>>,
) {
    let api = FakeApi::default();
    let runtime = runtime();
    let agent = NodeAgent::start(api.client(), runtime.clone(), config(), logs())
        .await
        .unwrap();
    // The watch starts with a (here empty) list of the node's Pods.
    agent.send(AgentEvent::RelistStarted).unwrap();
    agent.send(AgentEvent::RelistDone).unwrap();
    (api, runtime, agent)
}

/// Waits until the Pod `name` was reported with `reason`.
async fn until_reported(api: &FakeApi, name: &str, reason: &str) {
    eventually(
        &format!("{name} reported {reason}"),
        Duration::from_secs(60),
        || api.reasons(name).iter().any(|r| r == reason),
    )
    .await;
}

/// Waits (in paused tokio time) until `cond` holds, at most `limit`.
async fn eventually(what: &str, limit: Duration, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not true after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn start_registers_the_node_status_and_lease() {
    let api = FakeApi::default();
    NodeAgent::start(api.client(), runtime(), config(), logs())
        .await
        .unwrap();
    let paths: Vec<(String, String)> = api
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    assert!(paths.contains(&("PATCH".into(), "/api/v1/nodes/agent-1".into())));
    assert!(paths.contains(&("PATCH".into(), "/api/v1/nodes/agent-1/status".into())));
    assert!(paths.contains(&(
        "PATCH".into(),
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/agent-1".into()
    )));
    let node = api
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v1/nodes/agent-1")
        .unwrap()
        .body;
    assert_eq!(node["kind"], "Node");
    assert_eq!(
        node["metadata"]["labels"]["kubernetes.io/hostname"],
        "agent-1"
    );
    // Heartbeats renew the lease.
    let leases = |api: &FakeApi| {
        api.requests()
            .iter()
            .filter(|r| r.path.contains("/leases/"))
            .count()
    };
    let before = leases(&api);
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert!(leases(&api) >= before + 2, "lease renewed every 10 s");
}

#[tokio::test(start_paused = true)]
async fn a_pod_runs_to_completion_and_its_states_are_reported_in_order() {
    let (api, runtime, agent) = world().await;
    agent
        .send(AgentEvent::PodChanged(Box::new(pod(
            "task-1",
            "u-1",
            "registry.test/app:1",
            "10s",
        ))))
        .unwrap();
    until_reported(&api, "task-1", "TASK_FINISHED").await;
    assert_eq!(
        api.reasons("task-1"),
        vec!["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    );
    let status = api.last_status("task-1");
    assert_eq!(status["phase"], "Succeeded");
    let terminated = &status["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 0);
    assert!(terminated["startedAt"].is_string() && terminated["finishedAt"].is_string());
    // The container stays (logs) until the Pod is deleted; then it is removed and the Pod deleted.
    assert_eq!(runtime.len(), 1);
    let p = pod("task-1", "u-1", "registry.test/app:1", "10s");
    agent
        .send(AgentEvent::PodChanged(Box::new(deleting(p))))
        .unwrap();
    eventually("pod deleted", Duration::from_secs(10), || {
        !api.deletes("task-1").is_empty()
    })
    .await;
    assert_eq!(api.deletes("task-1")[0]["gracePeriodSeconds"], 0);
    assert_eq!(api.deletes("task-1")[0]["preconditions"]["uid"], "u-1");
    assert!(runtime.is_empty());
    assert_eq!(
        api.reasons("task-1").last().map(String::as_str),
        Some("TASK_FINISHED"),
        "a finished task stays finished"
    );
}

#[tokio::test(start_paused = true)]
async fn deleting_a_running_pod_stops_it_reports_killed_and_deletes_it_with_grace_zero() {
    let (api, runtime, agent) = world().await;
    let p = pod(
        "task-2",
        "u-2",
        "registry.test/app:1",
        "status=StatusRunning",
    );
    agent
        .send(AgentEvent::PodChanged(Box::new(p.clone())))
        .unwrap();
    until_reported(&api, "task-2", "TASK_RUNNING").await;
    agent
        .send(AgentEvent::PodChanged(Box::new(deleting(p))))
        .unwrap();
    eventually("pod deleted", Duration::from_secs(60), || {
        !api.deletes("task-2").is_empty()
    })
    .await;
    assert_eq!(
        api.reasons("task-2"),
        vec!["TASK_STARTING", "TASK_RUNNING", "TASK_KILLED"]
    );
    let status = api.last_status("task-2");
    assert_eq!(status["phase"], "Failed");
    assert_eq!(
        status["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        143
    );
    assert!(runtime.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_missing_image_fails_the_task_without_a_container() {
    let (api, runtime, agent) = world().await;
    agent
        .send(AgentEvent::PodChanged(Box::new(pod(
            "task-3",
            "u-3",
            "registry.test/missing:1",
            "10s",
        ))))
        .unwrap();
    until_reported(&api, "task-3", "TASK_FAILED").await;
    let status = api.last_status("task-3");
    assert_eq!(status["phase"], "Failed");
    assert!(
        status["message"].as_str().unwrap().contains("not found"),
        "{status}"
    );
    assert!(runtime.is_empty());
    // Nothing more happens on later resyncs: no retry of the start.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(api.reasons("task-3"), vec!["TASK_STARTING", "TASK_FAILED"]);
}

#[tokio::test(start_paused = true)]
async fn a_restarted_agent_re_adopts_a_running_container_and_reports_its_exit() {
    let (api, runtime, first) = world().await;
    let p = pod("task-4", "u-4", "registry.test/app:1", "30s");
    first
        .send(AgentEvent::PodChanged(Box::new(p.clone())))
        .unwrap();
    until_reported(&api, "task-4", "TASK_RUNNING").await;
    first.shutdown();

    // The restarted agent sees the Pod as the API has it now: status Running.
    let mut seen = p;
    seen.status = Some(serde_json::from_value(api.last_status("task-4")).unwrap());
    let second = NodeAgent::start(api.client(), runtime.clone(), config(), logs())
        .await
        .unwrap();
    second.send(AgentEvent::RelistStarted).unwrap();
    second.send(AgentEvent::RelistPod(Box::new(seen))).unwrap();
    second.send(AgentEvent::RelistDone).unwrap();
    until_reported(&api, "task-4", "TASK_FINISHED").await;
    assert_eq!(
        api.reasons("task-4"),
        vec!["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"],
        "not started twice"
    );
    assert_eq!(runtime.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_restarted_agent_leaves_containers_alone_until_it_has_listed_the_pods() {
    let (api, runtime, first) = world().await;
    let p = pod(
        "task-6",
        "u-6",
        "registry.test/app:1",
        "status=StatusRunning",
    );
    first.send(AgentEvent::PodChanged(Box::new(p))).unwrap();
    until_reported(&api, "task-6", "TASK_RUNNING").await;
    first.shutdown();
    let second = NodeAgent::start(api.client(), runtime.clone(), config(), logs())
        .await
        .unwrap();
    // A resync (the first tick is immediate) before the watch has listed anything.
    second.send(AgentEvent::ResyncAll).unwrap();
    // Events are handled in order: once a pod sent after the resync runs, the resync is done.
    let marker = pod(
        "task-7",
        "u-7",
        "registry.test/app:1",
        "status=StatusRunning",
    );
    second
        .send(AgentEvent::PodChanged(Box::new(marker)))
        .unwrap();
    until_reported(&api, "task-7", "TASK_RUNNING").await;
    assert_eq!(runtime.len(), 2, "not removed as an orphan");
    let id = crate::runtime::ContainerId::new("u-6").unwrap();
    assert!(matches!(
        runtime.status(&id).await.unwrap(),
        crate::runtime::ContainerState::Running { .. }
    ));
    // Once the list is complete and the Pod is not in it, the container is an orphan.
    second.send(AgentEvent::RelistStarted).unwrap();
    second.send(AgentEvent::RelistDone).unwrap();
    eventually("orphan removed", Duration::from_secs(30), || {
        runtime.is_empty()
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_orphan_container_is_stopped_and_removed_at_the_next_resync() {
    let (api, runtime, agent) = world().await;
    let p = pod(
        "task-5",
        "u-5",
        "registry.test/app:1",
        "status=StatusRunning",
    );
    agent.send(AgentEvent::PodChanged(Box::new(p))).unwrap();
    until_reported(&api, "task-5", "TASK_RUNNING").await;
    // Force-deleted: the Pod is gone without a graceful kill.
    agent
        .send(AgentEvent::PodDeleted { uid: "u-5".into() })
        .unwrap();
    eventually("container removed", Duration::from_secs(30), || {
        runtime.is_empty()
    })
    .await;
    assert!(api.deletes("task-5").is_empty(), "the Pod is already gone");
    let _ = runtime.list().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_fleet_of_a_thousand_simulated_nodes_registers_and_runs_pods_in_one_process() {
    let api = FakeApi::default();
    let configs: Vec<NodeAgentConfig> = (0..1000)
        .map(|i| {
            let mut c = config();
            c.node.name = format!("sim-{i}");
            c.node.heartbeat_interval = Duration::from_secs(30);
            c
        })
        .collect();
    let fleet = super::Fleet::start(api.client(), configs, |_| runtime(), logs(), 16)
        .await
        .unwrap();
    assert_eq!(fleet.len(), 1000);
    let nodes: BTreeSet<String> = api
        .requests()
        .into_iter()
        .filter(|r| {
            r.method == "PATCH"
                && r.path.starts_with("/api/v1/nodes/")
                && !r.path.ends_with("/status")
        })
        .map(|r| r.path)
        .collect();
    assert_eq!(nodes.len(), 1000);
    let mut p = pod("task-f", "u-f", "registry.test/app:1", "5s");
    p.spec.as_mut().unwrap().node_name = Some("sim-500".into());
    fleet.dispatch(AgentEvent::PodChanged(Box::new(p)));
    until_reported(&api, "task-f", "TASK_FINISHED").await;
    assert_eq!(
        api.reasons("task-f"),
        vec!["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    );
}
