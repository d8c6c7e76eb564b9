//! `titus scheduler`: the Titus scheduler against any Kubernetes API server, placing task Pods
//! (`schedulerName: titus-scheduler`) on Nodes and, with `--mesos-master`, on the agents of a
//! Mesos master (as virtual Nodes). Runs until SIGINT/SIGTERM; only the leader of Lease
//! `titus-scheduler` acts.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use titus_scheduler::kube::{MesosBridgeConfig, SchedulerConfig};
use titus_scheduler::mesos::types::FrameworkInfo;

/// Arguments of `titus scheduler`.
#[derive(Args, Debug, Clone)]
pub struct SchedulerArgs {
    /// Kubeconfig of the cluster (default: in-cluster, then $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Namespace of the leader Lease and of ConfigMaps `titus-scheduler-demand` and
    /// `titus-scheduler-mesos`.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Read Pods, TitusJobs and CapacityGroups of this namespace only (default: all).
    #[arg(long)]
    watch_namespace: Option<String>,
    /// Leader-election identity (default: host name plus a random suffix).
    #[arg(long)]
    identity: Option<String>,
    /// Serve /healthz, /readyz and /metrics on this address.
    #[arg(long)]
    health_bind: Option<SocketAddr>,
    /// Zones a `zoneBalance` job is spread over (Titus: 3).
    #[arg(long, default_value_t = 3)]
    expected_zones: u32,
    /// Also schedule on the agents of this Mesos master, e.g. `http://mesos-master:5050`.
    #[arg(long)]
    mesos_master: Option<String>,
    /// Mesos framework name.
    #[arg(long, default_value = "titus")]
    mesos_framework_name: String,
    /// Mesos role the framework subscribes with.
    #[arg(long, default_value = "titus")]
    mesos_role: String,
    /// User Mesos runs the tasks as.
    #[arg(long, default_value = "root")]
    mesos_user: String,
}

impl SchedulerArgs {
    fn config(&self) -> SchedulerConfig {
        let mut config = SchedulerConfig {
            namespace: self.namespace.clone(),
            watch_namespace: self.watch_namespace.clone(),
            health_bind: self.health_bind,
            ..SchedulerConfig::default()
        };
        if let Some(identity) = &self.identity {
            config.identity = identity.clone();
        }
        config.placement.expected_zones = self.expected_zones;
        config.mesos = self.mesos_master.as_ref().map(|master| {
            let mut mesos = MesosBridgeConfig::new(master.clone());
            mesos.framework.framework_info = FrameworkInfo::titus(
                &self.mesos_framework_name,
                &self.mesos_user,
                &self.mesos_role,
            );
            mesos
        });
        config
    }
}

/// Runs the scheduler until SIGINT or SIGTERM.
pub async fn run(args: SchedulerArgs) -> anyhow::Result<()> {
    let client = titus_runtime::client(args.kubeconfig.as_deref())
        .await
        .context("connecting to the Kubernetes API")?;
    titus_scheduler::kube::run(args.config(), client, titus_runtime::shutdown_signal())
        .await
        .context("running the scheduler")
}
