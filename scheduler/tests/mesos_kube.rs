//! The Mesos adapter end to end: the stand-in Mesos master, the embedded API server, and the
//! scheduler with `mesos` set. Offers become virtual Nodes, a task Pod is bound to one and
//! launched with ACCEPT/LAUNCH, status updates reach the Pod as an agent reports them, a
//! rescinded offer is never launched on, a dropped subscription is resumed with the framework
//! id and reconciled, and deleting a Pod kills its task.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kube_support;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams};
use kube_support::*;
use titus_scheduler::kube::MesosBridgeConfig;
use titus_scheduler::mesos::calls::{Call, CallType};
use titus_scheduler::mesos::testing::{FakeMaster, RecordedCall};
use titus_scheduler::mesos::types::{Attribute, Resource, TaskState};

fn mesos_config(master: &FakeMaster) -> MesosBridgeConfig {
    let mut config = MesosBridgeConfig::new(master.url());
    config.framework.backoff_min = Duration::from_millis(20);
    config.framework.backoff_max = Duration::from_millis(200);
    config.framework.housekeeping_interval = Duration::from_millis(20);
    config.framework.reconcile_retry = Duration::from_millis(500);
    config.launch_delay = Duration::from_millis(30);
    config.housekeeping_interval = Duration::from_millis(20);
    config.node_lease_interval = Duration::from_millis(200);
    config
}

fn agent_resources(cpus: f64) -> Vec<Resource> {
    vec![
        Resource::scalar("cpus", cpus),
        Resource::scalar("mem", 16_384.0),
        Resource::scalar("disk", 100_000.0),
        Resource::scalar("network", 1_000.0),
    ]
}

fn attributes(zone: &str, id: &str) -> Vec<Attribute> {
    vec![
        Attribute::text("zone", zone),
        Attribute::text("itype", "m5.2xlarge"),
        Attribute::text("asg", "titusagent-mesos-v001"),
        Attribute::text("id", id),
    ]
}

fn calls(all: &[RecordedCall], kind: CallType) -> Vec<&Call> {
    all.iter()
        .filter_map(|c| c.call.as_ref())
        .filter(|c| c.kind == kind)
        .collect()
}

/// Task ids launched by an ACCEPT, and its offer ids.
fn accept_of(call: &Call) -> (Vec<String>, Vec<String>) {
    let accept = call.accept.as_ref().unwrap();
    let tasks = accept
        .operations
        .iter()
        .filter_map(|o| o.launch.as_ref())
        .flat_map(|l| l.task_infos.iter().map(|t| t.task_id.value.clone()))
        .collect();
    let offers = accept.offer_ids.iter().map(|o| o.value.clone()).collect();
    (tasks, offers)
}

async fn wait_node_cpu(nodes: &Api<Node>, name: &str, cpu: &str) -> anyhow::Result<Node> {
    wait_for(
        &format!("virtual node {name} with cpu {cpu}"),
        DEADLINE,
        || async {
            let Some(node) = nodes.get_opt(name).await? else {
                return Ok(None);
            };
            let allocatable = node
                .status
                .as_ref()
                .and_then(|s| s.allocatable.as_ref())
                .and_then(|a| a.get("cpu"))
                .map(|q| q.0.clone());
            Ok((allocatable.as_deref() == Some(cpu)).then_some(node))
        },
    )
    .await
}

async fn wait_pod(
    pods: &Api<Pod>,
    name: &str,
    what: &str,
    done: impl Fn(&Pod) -> bool,
) -> anyhow::Result<Pod> {
    wait_for(&format!("pod {name}: {what}"), DEADLINE, || async {
        let pod = pods.get(name).await?;
        Ok(done(&pod).then_some(pod))
    })
    .await
}

fn phase_and_reason(pod: &Pod) -> (Option<&str>, Option<&str>) {
    let status = pod.status.as_ref();
    (
        status.and_then(|s| s.phase.as_deref()),
        status.and_then(|s| s.reason.as_deref()),
    )
}

async fn wait_calls(
    master: &FakeMaster,
    what: &str,
    done: impl Fn(&[RecordedCall]) -> bool,
) -> anyhow::Result<Vec<RecordedCall>> {
    Ok(master.wait_for_calls(what, DEADLINE, done).await?)
}

/// Once the framework subscribed, offers 8 cores on `mesos-agent-1` (agent `S1`, zone a).
async fn offer_agent1(master: &FakeMaster) -> anyhow::Result<String> {
    wait_for("the framework to subscribe", DEADLINE, || async {
        Ok((master.subscriptions() >= 1).then_some(()))
    })
    .await?;
    Ok(master.offer(
        "mesos-agent-1",
        "S1",
        agent_resources(8.0),
        attributes("us-east-1a", "i-m1"),
    )?)
}

/// The ACCEPT that launched `task`, once sent.
async fn wait_accept(master: &FakeMaster, task: &str) -> anyhow::Result<Call> {
    let launches = |c: &&Call| accept_of(c).0.iter().any(|t| t == task);
    let recorded = wait_calls(master, &format!("ACCEPT of {task}"), |all| {
        calls(all, CallType::Accept).iter().any(launches)
    })
    .await?;
    Ok(calls(&recorded, CallType::Accept)
        .into_iter()
        .find(launches)
        .cloned()
        .unwrap())
}

#[tokio::test]
async fn offers_become_nodes_pods_launch_and_report_and_the_framework_survives_a_reconnect()
-> anyhow::Result<()> {
    let master = FakeMaster::start(Duration::from_millis(200)).await?;
    let config = mesos_config(&master);
    let h = Harness::start(|c| c.mesos = Some(config)).await?;

    // An offer becomes a Ready virtual node with the agent's attributes and a renewed Lease.
    let offer1 = offer_agent1(&master).await?;
    let framework_id = master.framework_id().unwrap();
    let nodes = h.nodes();
    let node = wait_node_cpu(&nodes, "mesos-agent-1", "8000m").await?;
    let labels = node.metadata.labels.clone().unwrap();
    assert_eq!(labels["node.titus.netflix.com/backend"], "mesos");
    assert_eq!(
        labels["failure-domain.beta.kubernetes.io/zone"],
        "us-east-1a"
    );
    assert_eq!(labels["beta.kubernetes.io/instance-type"], "m5.2xlarge");
    let taints = node.spec.as_ref().unwrap().taints.clone().unwrap();
    assert_eq!(taints[0].key, "node.titus.netflix.com/backend");
    let ready = &node.status.as_ref().unwrap().conditions.as_ref().unwrap()[0];
    assert_eq!(
        (ready.type_.as_str(), ready.status.as_str()),
        ("Ready", "True")
    );
    let leases: Api<Lease> = Api::namespaced(h.client.clone(), "kube-node-lease");
    wait_for("the virtual node's lease", DEADLINE, || async {
        Ok(leases.get_opt("mesos-agent-1").await?.map(|_| ()))
    })
    .await?;

    // A task pod is bound to it and launched with ACCEPT/LAUNCH on the held offer.
    let spec = batch_job(1, 1.0, 512)
        .with_entry_point(["/bin/sh", "-c"])
        .with_command(["echo hello"]);
    let job = create_job(&h.client, "mesos-job", spec.clone()).await?;
    let task = create_task_pods(&h.client, &job, 1).await?.remove(0);
    let bound = wait_bound(&h.client, std::slice::from_ref(&task)).await?;
    assert_eq!(bound[&task], "mesos-agent-1");
    let accept = wait_accept(&master, &task).await?;
    assert_eq!(accept_of(&accept).1, vec![offer1.clone()]);
    let info = &accept.accept.as_ref().unwrap().operations[0]
        .launch
        .as_ref()
        .unwrap()
        .task_infos[0];
    assert_eq!(info.agent_id.value, "S1");
    let cpus = info.resources.iter().find(|r| r.name == "cpus").unwrap();
    assert_eq!(cpus.scalar.unwrap().value, 1.0);
    let command = info.command.as_ref().unwrap();
    assert_eq!(command.arguments, ["/bin/sh", "-c", "echo hello"]);
    assert_eq!(
        info.container.as_ref().unwrap()["mesos"]["image"]["docker"]["name"],
        "localhost:5000/titus/busybox:1"
    );
    let pods = h.pods();
    wait_pod(&pods, &task, "launch recorded", |p| {
        p.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.get("mesos.titus.dev/agent-id").map(String::as_str) == Some("S1"))
    })
    .await?;

    // Status updates reach the pod as an agent reports them, and are acknowledged.
    let starting = master.update(&task, TaskState::TaskStarting).unwrap();
    wait_pod(&pods, &task, "TASK_STARTING", |p| {
        phase_and_reason(p) == (Some("Pending"), Some("TASK_STARTING"))
    })
    .await?;
    wait_calls(&master, "ACKNOWLEDGE of TASK_STARTING", |all| {
        calls(all, CallType::Acknowledge)
            .iter()
            .any(|c| c.acknowledge.as_ref().unwrap().uuid == starting)
    })
    .await?;
    master.update(&task, TaskState::TaskRunning).unwrap();
    wait_pod(&pods, &task, "Running", |p| {
        phase_and_reason(p) == (Some("Running"), Some("TASK_RUNNING"))
    })
    .await?;
    master.update(&task, TaskState::TaskFinished).unwrap();
    let finished = wait_pod(&pods, &task, "Succeeded", |p| {
        phase_and_reason(p) == (Some("Succeeded"), Some("TASK_FINISHED"))
    })
    .await?;
    let main = &finished.status.unwrap().container_statuses.unwrap()[0];
    assert_eq!(
        main.state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .exit_code,
        0
    );

    // A rescinded offer lowers the node and is never launched on.
    let offer2 = master.offer(
        "mesos-agent-2",
        "S2",
        agent_resources(8.0),
        attributes("us-east-1b", "i-m2"),
    )?;
    wait_node_cpu(&nodes, "mesos-agent-2", "8000m").await?;
    master.rescind(&offer2);
    wait_node_cpu(&nodes, "mesos-agent-2", "0m").await?;
    let second = create_task_pods(&h.client, &job, 1).await?.remove(0);
    wait_unschedulable(&h.client, &second, |m| {
        m.starts_with("0/2 offers: 2 insufficient cpu")
    })
    .await?;
    assert!(
        calls(&master.calls(), CallType::Accept)
            .iter()
            .all(|c| !accept_of(c).1.contains(&offer2)),
        "no ACCEPT names the rescinded offer"
    );
    let offer3 = master.offer(
        "mesos-agent-2",
        "S2",
        agent_resources(8.0),
        attributes("us-east-1b", "i-m2"),
    )?;
    let accept = wait_accept(&master, &second).await?;
    assert_eq!(accept_of(&accept).1, vec![offer3]);
    assert_eq!(
        wait_bound(&h.client, std::slice::from_ref(&second)).await?[&second],
        "mesos-agent-2"
    );
    master.update(&second, TaskState::TaskRunning).unwrap();
    wait_pod(&pods, &second, "Running", |p| {
        phase_and_reason(p).0 == Some("Running")
    })
    .await?;

    // A dropped connection re-subscribes with the framework id and reconciles the task.
    let before = master.calls().len();
    master.drop_subscription();
    let recorded = wait_calls(&master, "re-subscription and reconciliation", |all| {
        let later = &all[before.min(all.len())..];
        let resubscribed = calls(later, CallType::Subscribe).iter().any(|c| {
            c.framework_id.as_ref().map(|id| id.value.as_str()) == Some(framework_id.as_str())
        });
        let reconciled = calls(later, CallType::Reconcile).iter().any(|c| {
            c.reconcile
                .as_ref()
                .unwrap()
                .tasks
                .iter()
                .any(|t| t.task_id.value == second)
        });
        resubscribed && reconciled
    })
    .await?;
    let subscribe = calls(&recorded[before..], CallType::Subscribe)[0];
    assert_eq!(
        subscribe
            .subscribe
            .as_ref()
            .unwrap()
            .framework_info
            .id
            .as_ref()
            .map(|id| id.value.as_str()),
        Some(framework_id.as_str())
    );
    assert_eq!(
        master.framework_id().as_deref(),
        Some(framework_id.as_str())
    );

    // Deleting the pod kills its task; the pod goes once TASK_KILLED is recorded.
    pods.delete(&second, &DeleteParams::default()).await?;
    wait_calls(&master, "KILL of the second task", |all| {
        calls(all, CallType::Kill)
            .iter()
            .any(|c| c.kill.as_ref().unwrap().task_id.value == second)
    })
    .await?;
    wait_for("the killed pod to be gone", DEADLINE, || async {
        Ok(pods.get_opt(&second).await?.is_none().then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_pod_bound_to_a_host_without_offers_fails_lost_after_the_launch_timeout()
-> anyhow::Result<()> {
    let master = FakeMaster::start(Duration::from_millis(200)).await?;
    let mut config = mesos_config(&master);
    config.launch_timeout = Duration::from_millis(500);
    let mut h = Harness::api_only().await?;
    h.start_scheduler(|c| c.mesos = Some(config));
    let offer = offer_agent1(&master).await?;
    let nodes = h.nodes();
    wait_node_cpu(&nodes, "mesos-agent-1", "8000m").await?;
    // Bind a pod to the virtual node directly, then take the offer away before the launch.
    master.rescind(&offer);
    wait_node_cpu(&nodes, "mesos-agent-1", "0m").await?;
    let job = create_job(&h.client, "late", batch_job(1, 1.0, 512)).await?;
    h.stop_scheduler().await?;
    let task = create_task_pods(&h.client, &job, 1).await?.remove(0);
    let pods = h.pods();
    pods.create_subresource::<_, serde_json::Value>(
        "binding",
        &task,
        &Default::default(),
        &serde_json::json!({"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": task, "namespace": NS},
            "target": {"apiVersion": "v1", "kind": "Node", "name": "mesos-agent-1"}}),
    )
    .await?;
    h.start_scheduler(|c| {
        c.mesos = Some({
            let mut config = mesos_config(&master);
            config.launch_timeout = Duration::from_millis(500);
            config
        })
    });
    let pod = wait_pod(&pods, &task, "failed lost", |p| {
        phase_and_reason(p) == (Some("Failed"), Some("TASK_LOST"))
    })
    .await?;
    let message = pod.status.unwrap().message.unwrap_or_default();
    assert!(
        message.contains("no Mesos offer for host mesos-agent-1"),
        "{message}"
    );
    assert!(calls(&master.calls(), CallType::Accept).is_empty());
    Ok(())
}
