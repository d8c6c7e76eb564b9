//! Shared setup of the scheduler's API-server tests: an embedded API server with the Titus
//! CRDs, the scheduler running in-process against it, Nodes created the way agents register
//! them, and task Pods created the way the task controller creates them (same labels,
//! annotations, resources and scheduler name, owned by a `TitusTask` of a `TitusJob`).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;
use titus_apiserver::{ApiServerConfig, RunningApiServer};
use titus_crds::constants::{SCHEDULER_NAME, node as node_labels};
use titus_crds::pod::{TaskIdentity, pod_annotations, pod_command, pod_labels, pod_resources};
use titus_crds::{TitusJob, TitusJobSpec, TitusTask, TitusTaskSpec};
use titus_scheduler::kube::{SchedulerConfig, SchedulerError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use titus_e2e::wait_for;

/// Namespace the tests' jobs, tasks and Pods live in.
pub const NS: &str = "default";
/// Zones of the test fleet.
pub const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
/// How long a test waits for the scheduler to act.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// An API server with the scheduler running against it; both stop when dropped.
pub struct Harness {
    pub api: RunningApiServer,
    pub client: kube::Client,
    stop: Option<oneshot::Sender<()>>,
    scheduler: Option<JoinHandle<Result<(), SchedulerError>>>,
}

impl Harness {
    /// Starts an API server with the Titus CRDs (no scheduler yet).
    pub async fn api_only() -> anyhow::Result<Harness> {
        let api = titus_apiserver::start(ApiServerConfig {
            data_dir: None,
            bind: "127.0.0.1:0".parse()?,
            fsync: false,
            extra_sans: vec![],
        })
        .await?;
        let client = titus_runtime::client_from_yaml(&api.kubeconfig()).await?;
        install_crds(&client).await?;
        Ok(Harness {
            api,
            client,
            stop: None,
            scheduler: None,
        })
    }

    /// Starts an API server with the Titus CRDs and the scheduler (test timings, then
    /// `tweak`).
    pub async fn start(tweak: impl FnOnce(&mut SchedulerConfig)) -> anyhow::Result<Harness> {
        let mut harness = Self::api_only().await?;
        harness.start_scheduler(tweak);
        Ok(harness)
    }

    /// Starts the scheduler in-process.
    pub fn start_scheduler(&mut self, tweak: impl FnOnce(&mut SchedulerConfig)) {
        let mut config = SchedulerConfig {
            identity: "test-scheduler".into(),
            batch_window: Duration::from_millis(20),
            tick_interval: Duration::from_millis(200),
            resync_interval: Duration::from_secs(2),
            ..SchedulerConfig::default()
        };
        tweak(&mut config);
        let (stop, stopped) = oneshot::channel::<()>();
        let client = self.client.clone();
        self.stop = Some(stop);
        self.scheduler = Some(tokio::spawn(titus_scheduler::kube::run(
            config,
            client,
            async move {
                let _ = stopped.await;
            },
        )));
    }

    /// Stops the scheduler and waits for it.
    pub async fn stop_scheduler(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.scheduler.take() {
            tokio::time::timeout(DEADLINE, task)
                .await
                .context("scheduler did not stop")???;
        }
        Ok(())
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), NS)
    }

    pub fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.scheduler.take() {
            task.abort();
        }
    }
}

/// Creates the Titus CRDs and waits until they serve.
pub async fn install_crds(client: &kube::Client) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in titus_crds::crd::crds() {
        crds.create(&PostParams::default(), &crd).await?;
    }
    let jobs: Api<TitusJob> = Api::namespaced(client.clone(), NS);
    wait_for("the TitusJob CRD to serve", DEADLINE, || async {
        Ok(jobs.list(&ListParams::default()).await.ok().map(|_| ()))
    })
    .await
}

/// A node's shape.
#[derive(Clone, Debug)]
pub struct NodeShape {
    pub name: String,
    pub zone: String,
    pub instance_type: String,
    pub cores: u32,
    pub memory_gi: u32,
}

/// Creates a Node with Titus labels and marks it Ready with its allocatable, as an agent
/// registering would.
pub async fn create_node(client: &kube::Client, shape: &NodeShape) -> anyhow::Result<()> {
    create_node_with(client, shape, json!({}), true).await
}

/// As [`create_node`], with extra spec fields (taints replace the provider taint) and the
/// given readiness, so the node never appears in another state first.
pub async fn create_node_with(
    client: &kube::Client,
    shape: &NodeShape,
    spec: serde_json::Value,
    ready: bool,
) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let labels = BTreeMap::from([
        (node_labels::ZONE.to_string(), shape.zone.clone()),
        (
            node_labels::INSTANCE_TYPE.to_string(),
            shape.instance_type.clone(),
        ),
        (node_labels::ID.to_string(), format!("i-{}", shape.name)),
        (
            node_labels::ASG.to_string(),
            format!("titusagent-{}-v001", shape.instance_type),
        ),
        ("kubernetes.io/hostname".to_string(), shape.name.clone()),
    ]);
    let mut node = json!({
        "metadata": {"name": shape.name, "labels": labels},
        "spec": {"taints": [{"key": node_labels::TAINT_PROVIDER, "value": "titus", "effect": "NoSchedule"}]}
    });
    if let Some(extra) = spec.as_object() {
        for (key, value) in extra {
            node["spec"][key] = value.clone();
        }
    }
    let node: Node = serde_json::from_value(node)?;
    nodes.create(&PostParams::default(), &node).await?;
    set_node_status(client, &shape.name, shape.cores, shape.memory_gi, ready).await
}

/// Writes a node's allocatable and Ready condition.
pub async fn set_node_status(
    client: &kube::Client,
    name: &str,
    cores: u32,
    memory_gi: u32,
    ready: bool,
) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let allocatable = json!({
        "cpu": cores.to_string(), "memory": format!("{memory_gi}Gi"),
        "ephemeral-storage": "500Gi", "titus/network": "10G", "pods": "110"
    });
    let status = json!({"status": {
        "capacity": allocatable, "allocatable": allocatable,
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                        "reason": "KubeletReady", "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    }});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// The test fleet: 30 nodes, 10 per zone; in each zone 5 m5.2xlarge (8 cores, 32 GiB) and 5
/// r5.2xlarge (8 cores, 64 GiB). Names `node-<zone letter>-<i>`.
pub fn fleet() -> Vec<NodeShape> {
    let mut out = Vec::new();
    for zone in ZONES {
        let letter = zone.chars().last().unwrap_or('x');
        for i in 0..10 {
            let (instance_type, memory_gi) = if i < 5 {
                ("m5.2xlarge", 32)
            } else {
                ("r5.2xlarge", 64)
            };
            out.push(NodeShape {
                name: format!("node-{letter}-{i:02}"),
                zone: zone.to_string(),
                instance_type: instance_type.to_string(),
                cores: 8,
                memory_gi,
            });
        }
    }
    out
}

/// Creates the fleet.
pub async fn create_fleet(client: &kube::Client) -> anyhow::Result<Vec<NodeShape>> {
    let fleet = fleet();
    for shape in &fleet {
        create_node(client, shape).await?;
    }
    Ok(fleet)
}

/// Creates a `TitusJob` and returns it as stored (with its uid).
pub async fn create_job(
    client: &kube::Client,
    name: &str,
    spec: TitusJobSpec,
) -> anyhow::Result<TitusJob> {
    let jobs: Api<TitusJob> = Api::namespaced(client.clone(), NS);
    Ok(jobs
        .create(&PostParams::default(), &TitusJob::new(name, spec))
        .await?)
}

fn owner_of<K: Resource<DynamicType = ()>>(obj: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).to_string(),
        kind: K::kind(&()).to_string(),
        name: obj.name_any(),
        uid: obj.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Creates `count` tasks of `job` (a `TitusTask` each) and their Pods, as the job and task
/// controllers would; returns the Pod names (= task ids).
pub async fn create_task_pods(
    client: &kube::Client,
    job: &TitusJob,
    count: u32,
) -> anyhow::Result<Vec<String>> {
    let tasks: Api<TitusTask> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let job_id = job.uid().context("job uid")?;
    let job_name = job.name_any();
    let mut names = Vec::new();
    for i in 0..count {
        let task_id = uuid::Uuid::new_v4().to_string();
        let mut task = TitusTask::new(
            &task_id,
            TitusTaskSpec {
                job_id: job_id.clone(),
                job_name: job_name.clone(),
                index: job.spec.batch.as_ref().map(|_| i),
                original_id: task_id.clone(),
                ..TitusTaskSpec::default()
            },
        );
        task.metadata.owner_references = Some(vec![owner_of(job)]);
        let task = tasks.create(&PostParams::default(), &task).await?;
        let identity = TaskIdentity {
            job_id: job_id.clone(),
            task_id: task_id.clone(),
            original_id: task_id.clone(),
            index: task.spec.index,
        };
        let command = pod_command(&job.spec.container, &job.spec.attributes);
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {
                "name": task_id,
                "namespace": NS,
                "labels": pod_labels(&job.spec, &job_name, &identity),
                "annotations": pod_annotations(&job.spec, &job_id, None, &[]),
                "ownerReferences": [owner_of(&task)],
            },
            "spec": {
                "schedulerName": SCHEDULER_NAME,
                "restartPolicy": "Never",
                "tolerations": [{"key": node_labels::TAINT_PROVIDER, "operator": "Equal",
                                 "value": "titus", "effect": "NoSchedule"}],
                "containers": [{
                    "name": "main",
                    "image": format!("{}:{}", job.spec.container.image.name, job.spec.container.image.tag),
                    "command": command.command,
                    "args": command.args,
                    "resources": {
                        "requests": pod_resources(&job.spec.container.resources),
                        "limits": pod_resources(&job.spec.container.resources),
                    },
                }],
            },
        }))?;
        pods.create(&PostParams::default(), &pod).await?;
        names.push(task_id);
    }
    Ok(names)
}

/// The node each named Pod is bound to, once all are bound.
pub async fn wait_bound(
    client: &kube::Client,
    names: &[String],
) -> anyhow::Result<BTreeMap<String, String>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    wait_for(
        &format!("{} pods to be bound", names.len()),
        DEADLINE,
        || async {
            let mut out = BTreeMap::new();
            for name in names {
                let pod = pods.get(name).await?;
                match pod.spec.and_then(|s| s.node_name) {
                    Some(node) => out.insert(name.clone(), node),
                    None => return Ok(None),
                };
            }
            Ok(Some(out))
        },
    )
    .await
}

/// Waits until the Pod is `PodScheduled=False, Unschedulable` with a message `accept`s (the
/// diagnosis may change while the scheduler learns the cluster); returns the message.
pub async fn wait_unschedulable(
    client: &kube::Client,
    name: &str,
    accept: impl Fn(&str) -> bool,
) -> anyhow::Result<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let last = std::sync::Mutex::new(None::<String>);
    let outcome = wait_for(
        &format!("pod {name} to be marked unschedulable"),
        DEADLINE,
        || async {
            let pod = pods.get(name).await?;
            let message = pod
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .into_iter()
                .find(|c| {
                    c.type_ == "PodScheduled"
                        && c.status == "False"
                        && c.reason.as_deref() == Some("Unschedulable")
                })
                .and_then(|c| c.message);
            if let Ok(mut seen) = last.lock() {
                seen.clone_from(&message);
            }
            Ok(message.filter(|m| accept(m)))
        },
    )
    .await;
    outcome.with_context(|| {
        format!(
            "last message: {:?}",
            last.lock().ok().and_then(|m| m.clone())
        )
    })
}

/// A `titus_crds` job spec with `cores` CPUs and `memory_mb` per task.
pub fn batch_job(size: u32, cores: f64, memory_mb: u32) -> TitusJobSpec {
    TitusJobSpec::batch(size).with_cpu_memory(cores, memory_mb)
}

/// Reads one sample of the scheduler's `/metrics` at `addr`.
pub async fn metric(addr: std::net::SocketAddr, name: &str) -> anyhow::Result<Option<f64>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    Ok(body
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok()))
}
