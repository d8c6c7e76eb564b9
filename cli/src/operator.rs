//! `titus operator`: the job and task controllers against any Kubernetes API (the embedded one
//! of `titus apiserver`, or a real cluster): flags become a [`titus_operator::OperatorConfig`]
//! for [`titus_operator::run`]. Also Titus admission for the embedded API server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use titus_operator::OperatorConfig;
use titus_operator::admission::webhook::WebhookConfig;
use titus_runtime::leader::LeaderElection;

/// Flags of `titus operator`.
#[derive(Args, Debug, Clone)]
pub struct OperatorArgs {
    /// Kubeconfig of the cluster (default: $KUBECONFIG, ~/.kube/config or in-cluster).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Watch only this namespace.
    #[arg(long, conflicts_with = "all_namespaces")]
    namespace: Option<String>,
    /// Watch every namespace (the default).
    #[arg(long)]
    all_namespaces: bool,
    /// Serve /healthz, /readyz and /metrics here.
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
    /// Serve the HTTPS admission webhook (/mutate, /validate) here; needs --tls-cert and --tls-key.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    webhook_addr: Option<SocketAddr>,
    /// Webhook serving certificate (PEM).
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// Webhook private key (PEM).
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Run without leader election (only when a single instance runs).
    #[arg(long)]
    no_leader_election: bool,
    /// Namespace of the `titus-operator` leader Lease (default: --namespace, else `default`).
    #[arg(long)]
    lease_namespace: Option<String>,
    /// Leader-election identity (default: hostname plus a random suffix). An instance that
    /// restarts with the same identity takes its Lease back at once.
    #[arg(long)]
    identity: Option<String>,
    /// Seconds a leader Lease is valid without renewal.
    #[arg(long, default_value_t = 15)]
    lease_duration_secs: u64,
    /// Install (server-side apply) the Titus CRDs before starting.
    #[arg(long)]
    install_crds: bool,
    /// Seconds without a node Lease renewal before its tasks are Disconnected.
    #[arg(long, default_value_t = 40)]
    node_lease_timeout_secs: u64,
    /// Seconds a task stays Disconnected before it is Finished/lost.
    #[arg(long, default_value_t = 600)]
    lost_timeout_secs: u64,
    /// Task passes run at once.
    #[arg(long, default_value_t = 64)]
    task_concurrency: u16,
}

impl OperatorArgs {
    fn config(&self) -> anyhow::Result<OperatorConfig> {
        let mut config = OperatorConfig {
            namespace: self.namespace.clone(),
            install_crds: self.install_crds,
            metrics_addr: self.metrics_addr,
            task_concurrency: self.task_concurrency,
            ..OperatorConfig::default()
        };
        if let Some(identity) = &self.identity {
            config.identity = identity.clone();
        }
        config.task_timeouts.node_lease_ms = self.node_lease_timeout_secs.saturating_mul(1000);
        config.task_timeouts.lost_ms = self.lost_timeout_secs.saturating_mul(1000);
        if let Some(addr) = self.webhook_addr {
            let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
                bail!("--webhook-addr needs --tls-cert and --tls-key");
            };
            config.webhook = Some(WebhookConfig {
                addr,
                cert_path: cert.clone(),
                key_path: key.clone(),
            });
        }
        if !self.no_leader_election {
            let namespace = self
                .lease_namespace
                .clone()
                .or_else(|| self.namespace.clone())
                .unwrap_or_else(|| "default".into());
            let duration = Duration::from_secs(self.lease_duration_secs.max(2));
            config.leader_election = Some(LeaderElection {
                lease_duration: duration,
                renew_deadline: duration.mul_f64(2.0 / 3.0),
                retry_period: (duration / 7).max(Duration::from_millis(200)),
                ..LeaderElection::new(titus_operator::LEASE_NAME, &namespace, &config.identity)
            });
        }
        Ok(config)
    }
}

/// Runs the operator until SIGINT/SIGTERM.
pub async fn run(args: OperatorArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let client = titus_runtime::client(args.kubeconfig.as_deref())
        .await
        .context("connecting to the Kubernetes API")?;
    titus_operator::run(config, client, titus_runtime::shutdown_signal())
        .await
        .context("running the operator")
}

/// Registers Titus admission of `TitusJob`s on the embedded API server.
pub fn register_admission(server: &titus_apiserver::RunningApiServer) {
    titus_operator::register(&server.server, titus_crds::AdmissionConfig::default());
}
