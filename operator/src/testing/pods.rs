//! The driver's scheduler and agent halves: one task per pod binds it, reports its status
//! through the agent's phases and reacts to its deletion.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use titus_crds::constants::{env, labels};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Behavior, BehaviorFn, DriverConfig, Outcome, PodInfo, Shared};

/// Watches the Titus pods and drives each in its own task.
pub(super) async fn drive(
    client: kube::Client,
    config: DriverConfig,
    behavior: BehaviorFn,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let api: Api<Pod> = match &config.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let events =
        watcher::watcher(api, watcher::Config::default().labels(labels::TASK_ID)).default_backoff();
    tokio::pin!(events);
    // uid -> sender of "being deleted"
    let mut driven: HashMap<String, watch::Sender<bool>> = HashMap::new();
    let config = Arc::new(config);
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            () = stop.cancelled() => return,
        };
        let pod = match event {
            Some(Ok(Event::Apply(pod) | Event::InitApply(pod))) => pod,
            Some(Ok(Event::Delete(pod))) => {
                if let Some(tx) = pod.uid().and_then(|uid| driven.remove(&uid)) {
                    tx.send_replace(true);
                }
                continue;
            }
            Some(Ok(Event::Init | Event::InitDone)) => continue,
            Some(Err(error)) => {
                tracing::debug!(%error, "pod driver: watch error");
                continue;
            }
            None => return,
        };
        let Some(uid) = pod.uid() else { continue };
        let deleting = pod.metadata.deletion_timestamp.is_some();
        if let Some(tx) = driven.get(&uid) {
            if deleting {
                tx.send_replace(true);
            }
            continue;
        }
        let scheduler = pod.spec.as_ref().and_then(|s| s.scheduler_name.as_deref());
        if scheduler != Some(config.scheduler_name.as_str()) || is_terminal(&pod) {
            continue;
        }
        let (tx, rx) = watch::channel(deleting);
        driven.insert(uid, tx);
        let info = pod_info(&pod, &shared);
        let chosen = behavior(&info);
        let pods: Api<Pod> = Api::namespaced(client.clone(), &info.namespace);
        tokio::spawn(run_pod(
            pods,
            pod,
            info,
            chosen,
            config.clone(),
            shared.clone(),
            rx,
            stop.clone(),
        ));
    }
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn pod_info(pod: &Pod, shared: &Shared) -> PodInfo {
    let label = |key: &str| pod.labels().get(key).cloned().unwrap_or_default();
    let original_id = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.env.as_ref())
        .and_then(|env| env.iter().find(|e| e.name == env::TITUS_TASK_ORIGINAL_ID))
        .and_then(|e| e.value.clone())
        .unwrap_or_default();
    let index = label(labels::TASK_INDEX).parse().ok();
    let namespace = pod.namespace().unwrap_or_default();
    let job_name = label(labels::JOB_NAME);
    let chain = index.map_or_else(|| original_id.clone(), |i: u32| i.to_string());
    let attempt = {
        let mut attempts = shared.attempts.lock();
        let n = attempts
            .entry((namespace.clone(), job_name.clone(), chain))
            .or_insert(0);
        *n += 1;
        *n - 1
    };
    PodInfo {
        namespace,
        name: pod.name_any(),
        job_name,
        index,
        original_id,
        attempt,
    }
}

/// Drives one pod from pending to its end.
#[allow(clippy::too_many_arguments)]
async fn run_pod(
    pods: Api<Pod>,
    pod: Pod,
    info: PodInfo,
    behavior: Behavior,
    config: Arc<DriverConfig>,
    shared: Arc<Shared>,
    mut deleted: watch::Receiver<bool>,
    stop: CancellationToken,
) {
    let name = info.name.clone();
    let mut node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    if node.is_empty() {
        if let Outcome::Unschedulable { message } = &behavior.outcome {
            let _ = patch_status(&pods, &name, unschedulable(message)).await;
            return;
        }
        let Some(chosen) = pick_node(&config, &shared) else {
            return;
        };
        if *deleted.borrow() {
            return;
        }
        let binding = json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": { "name": name },
            "target": { "apiVersion": "v1", "kind": "Node", "name": chosen },
        });
        if pods
            .create_subresource::<Value, Value>("binding", &name, &PostParams::default(), &binding)
            .await
            .is_err()
        {
            return;
        }
        node = chosen;
    }
    let live_key = info
        .index
        .map(|i| (info.namespace.clone(), info.job_name.clone(), i));
    if let Some(key) = &live_key {
        let mut live = shared.live.lock();
        let set = live.entry(key.clone()).or_default();
        if !set.is_empty() {
            shared.violations.lock().push(format!(
                "index {} of job {} had live pods {:?} when {name} was bound",
                key.2, key.1, set
            ));
        }
        set.insert(name.clone());
    }
    shared.stats.lock().bound += 1;
    let ended = lifecycle(&pods, &name, &node, &behavior, &shared, &mut deleted, &stop).await;
    if let Some(key) = &live_key
        && let Some(set) = shared.live.lock().get_mut(key)
    {
        set.remove(&name);
    }
    let mut stats = shared.stats.lock();
    stats.ended += 1;
    if ended == End::Killed {
        stats.killed += 1;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Exited,
    Killed,
    Gone,
}

/// The agent's part: status through the phases; a deletion is answered with `TASK_KILLED` and
/// the final delete (unless the node is silenced, like a dead host).
async fn lifecycle(
    pods: &Api<Pod>,
    name: &str,
    node: &str,
    behavior: &Behavior,
    shared: &Shared,
    deleted: &mut watch::Receiver<bool>,
    stop: &CancellationToken,
) -> End {
    let started = jiff::Timestamp::now();
    let steps: [(Value, Duration, bool); 2] = [
        (
            starting(started),
            behavior.prepare,
            behavior.outcome == Outcome::StayStarting,
        ),
        (
            running(started),
            behavior.run,
            behavior.outcome == Outcome::RunUntilKilled,
        ),
    ];
    let crash = match behavior.outcome {
        Outcome::Crash { .. } => true,
        Outcome::Succeed
        | Outcome::Fail { .. }
        | Outcome::Lost
        | Outcome::RunUntilKilled
        | Outcome::StayStarting
        | Outcome::Unschedulable { .. } => false,
    };
    for (i, (status, wait, forever)) in steps.into_iter().enumerate() {
        if crash && i == 1 {
            break;
        }
        if !wait_alive(shared, node, deleted, stop).await {
            return end_killed(pods, name, node, shared, stop).await;
        }
        if patch_status(pods, name, status).await.is_err() {
            return End::Gone;
        }
        let until = if forever { Duration::MAX } else { wait };
        let killed = tokio::select! {
            () = tokio::time::sleep(until.min(Duration::from_secs(86_400 * 365))) => false,
            changed = deleted.wait_for(|d| *d) => changed.is_ok(),
            () = stop.cancelled() => return End::Gone,
        };
        if killed {
            return end_killed(pods, name, node, shared, stop).await;
        }
    }
    if !wait_alive(shared, node, deleted, stop).await {
        return end_killed(pods, name, node, shared, stop).await;
    }
    let last = match &behavior.outcome {
        Outcome::Succeed => terminated(
            started,
            "Succeeded",
            "TASK_FINISHED",
            0,
            "main container completed",
        ),
        Outcome::Fail { exit_code, message } => {
            terminated(started, "Failed", "TASK_FAILED", *exit_code, message)
        }
        Outcome::Crash { message } => terminated(started, "Failed", "TASK_CRASHED", 128, message),
        Outcome::Lost => terminated(
            started,
            "Failed",
            "TASK_LOST",
            128,
            "the runtime lost the container",
        ),
        Outcome::RunUntilKilled | Outcome::StayStarting | Outcome::Unschedulable { .. } => {
            return End::Gone;
        }
    };
    match patch_status(pods, name, last).await {
        Ok(()) => End::Exited,
        Err(()) => End::Gone,
    }
}

/// Waits while the node is silenced; `false` when the pod was deleted meanwhile.
async fn wait_alive(
    shared: &Shared,
    node: &str,
    deleted: &mut watch::Receiver<bool>,
    stop: &CancellationToken,
) -> bool {
    while shared.is_silenced(node) {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            () = stop.cancelled() => return false,
        }
    }
    !*deleted.borrow()
}

async fn end_killed(
    pods: &Api<Pod>,
    name: &str,
    node: &str,
    shared: &Shared,
    stop: &CancellationToken,
) -> End {
    // A dead agent does nothing; when it comes back (or the pod is force-deleted) it carries on.
    while shared.is_silenced(node) {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            () = stop.cancelled() => return End::Gone,
        }
    }
    let started = jiff::Timestamp::now();
    let _ = patch_status(
        pods,
        name,
        terminated(
            started,
            "Failed",
            "TASK_KILLED",
            143,
            "Pod killed on behalf of the control plane",
        ),
    )
    .await;
    let _ = pods
        .delete(
            name,
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await;
    End::Killed
}

fn pick_node(config: &DriverConfig, shared: &Shared) -> Option<String> {
    let n = config.nodes.len();
    let mut next = shared.next_node.lock();
    for _ in 0..n {
        let candidate = &config.nodes[*next % n];
        *next = next.wrapping_add(1);
        if !shared.is_silenced(&candidate.name) {
            return Some(candidate.name.clone());
        }
    }
    None
}

async fn patch_status(pods: &Api<Pod>, name: &str, status: Value) -> Result<(), ()> {
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({ "status": status })),
    )
    .await
    .map(|_| ())
    .map_err(|_| ())
}

fn time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn container(state: Value, ready: bool) -> Value {
    json!([{ "name": "main", "image": "driver", "imageID": "", "ready": ready, "restartCount": 0, "started": ready, "state": state }])
}

fn unschedulable(message: &str) -> Value {
    json!({ "phase": "Pending", "conditions": [{ "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message }] })
}

fn starting(at: jiff::Timestamp) -> Value {
    json!({
        "phase": "Pending", "reason": "TASK_STARTING", "message": "creating main container",
        "startTime": time(at),
        "containerStatuses": container(json!({ "waiting": { "reason": "TASK_STARTING" } }), false),
    })
}

fn running(at: jiff::Timestamp) -> Value {
    let now = jiff::Timestamp::now();
    json!({
        "phase": "Running", "reason": "TASK_RUNNING", "message": "main container started",
        "podIP": "10.200.0.1",
        "containerStatuses": container(json!({ "running": { "startedAt": time(now.max(at)) } }), true),
    })
}

fn terminated(
    started: jiff::Timestamp,
    phase: &str,
    reason: &str,
    code: i32,
    message: &str,
) -> Value {
    let now = jiff::Timestamp::now();
    json!({
        "phase": phase, "reason": reason, "message": message,
        "containerStatuses": container(json!({ "terminated": {
            "exitCode": code, "reason": reason, "message": message,
            "startedAt": time(started), "finishedAt": time(now),
        } }), false),
    })
}
