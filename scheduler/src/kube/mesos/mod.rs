//! The Mesos adapter: a Mesos master's agents as virtual Nodes, so the one scheduling loop
//! places task Pods on Mesos agents and Kubernetes Nodes alike.
//!
//! While this scheduler leads, the bridge subscribes to the master ([`MesosFramework`](crate::mesos::framework::MesosFramework)) and:
//!
//! 1. mirrors every agent that offers as a virtual Node ([`virtual_node`]): allocatable = what
//!    its held offers give plus what the Titus tasks launched there hold, `Ready` while the
//!    subscription lives and the agent is not lost, its Lease in `kube-node-lease` renewed;
//!    a rescinded or declined offer lowers the allocatable; unusable offers (hosts whose name
//!    cannot be a Node name) are declined;
//! 2. launches the Pods the scheduler bound to a virtual node with ACCEPT/LAUNCH on the held
//!    offers of that host ([`launch`]), all Pods bound to one host within `launch_delay` in
//!    one ACCEPT (it consumes every offer of the host). Before the call it records the Mesos
//!    agent id on the Pod (annotation `mesos.titus.dev/agent-id`), so a restarted bridge knows
//!    which Pods may run and reconciles them. A Pod bound to a host that has no offer for
//!    `launch_timeout` fails `TASK_LOST`, as Mesos fails a launch on invalid offers;
//! 3. writes each status update into the Pod status the way a Titus agent reports it
//!    ([`status`]), then acknowledges it (write-ahead, as the Mesos guide asks); an update for
//!    a Pod that already finished, or for a task no Pod knows, is answered with KILL;
//! 4. on Pod deletion sends KILL (re-sent every `kill_retry`), and once the terminal update
//!    is recorded deletes the Pod with grace period 0, as a kubelet would;
//! 5. after every (re-)subscription reconciles the tasks of every Pod it launched (the
//!    framework driver re-subscribes with the framework id, which is kept in ConfigMap
//!    `titus-scheduler-mesos` across restarts and leader changes).

mod bridge;
pub mod launch;
pub mod status;
pub mod virtual_node;

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::kube::metrics::SchedulerMetrics;
use crate::mesos::framework::FrameworkConfig;
use crate::mesos::types::FrameworkInfo;

/// ConfigMap (scheduler namespace) holding the framework id.
pub const STATE_CONFIG_MAP: &str = "titus-scheduler-mesos";
/// Key of the framework id in that ConfigMap.
pub const FRAMEWORK_ID_KEY: &str = "framework-id";
/// Pod annotation: the Mesos agent the Pod's task was launched on (written before the launch).
pub const POD_AGENT_ID_ANNOTATION: &str = "mesos.titus.dev/agent-id";
/// Field manager of the bridge's writes.
pub const FIELD_MANAGER: &str = "titus-scheduler-mesos";

/// Settings of the Mesos adapter.
#[derive(Clone, Debug)]
pub struct MesosBridgeConfig {
    /// The framework driver's settings (master URL, framework info, timings).
    pub framework: FrameworkConfig,
    /// How long Pods bound to one host are gathered before their ACCEPT.
    pub launch_delay: Duration,
    /// How long a bound Pod waits for an offer of its host before it fails `TASK_LOST`.
    pub launch_timeout: Duration,
    /// How often virtual nodes' Leases are renewed.
    pub node_lease_interval: Duration,
    /// Duration written in the virtual nodes' Leases.
    pub node_lease_duration: Duration,
    /// How often KILL is re-sent for a deleted Pod whose task still runs.
    pub kill_retry: Duration,
    /// A virtual node without offers and without Pods for this long is deleted.
    pub virtual_node_gc_after: Duration,
    /// Period of the bridge's housekeeping (launches, kills, leases).
    pub housekeeping_interval: Duration,
}

impl MesosBridgeConfig {
    /// Defaults for the master at `master` (`http://host:5050`), framework `titus`, role
    /// `titus`, user `root`.
    pub fn new(master: impl Into<String>) -> MesosBridgeConfig {
        MesosBridgeConfig {
            framework: FrameworkConfig::new(master, FrameworkInfo::titus("titus", "root", "titus")),
            launch_delay: Duration::from_millis(100),
            launch_timeout: Duration::from_secs(60),
            node_lease_interval: Duration::from_secs(10),
            node_lease_duration: Duration::from_secs(40),
            kill_retry: Duration::from_secs(30),
            virtual_node_gc_after: Duration::from_secs(600),
            housekeeping_interval: Duration::from_millis(100),
        }
    }
}

/// What the bridge needs from the scheduler around it.
#[derive(Clone)]
pub(crate) struct BridgeContext {
    pub client: kube::Client,
    /// Where the state ConfigMap lives.
    pub namespace: String,
    /// Pods of this scheduler are the ones launched on Mesos.
    pub scheduler_name: String,
    /// Pods are watched in this namespace (`None`: all).
    pub watch_namespace: Option<String>,
    pub metrics: SchedulerMetrics,
}

/// Runs the bridge while `leading` is true, until `cancel`.
pub(crate) async fn supervise(
    config: MesosBridgeConfig,
    context: BridgeContext,
    mut leading: watch::Receiver<bool>,
    cancel: CancellationToken,
) {
    while !cancel.is_cancelled() {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = until(&mut leading, true) => {}
        }
        let term = cancel.child_token();
        let run = bridge::run(config.clone(), context.clone(), term.clone());
        tokio::pin!(run);
        tokio::select! {
            () = &mut run => {
                // The bridge only ends by itself when it cannot go on; start it again.
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            () = until(&mut leading, false) => {
                term.cancel();
                run.await;
            }
        }
    }
}

/// Resolves once `leading` is `wanted` (never, once the sender is gone and it is not).
async fn until(leading: &mut watch::Receiver<bool>, wanted: bool) {
    if leading.wait_for(|l| *l == wanted).await.is_err() {
        std::future::pending::<()>().await;
    }
}
