//! The watches that feed the index: one kube-runtime watcher per kind (list once, then watch,
//! relist on desync, back off on errors), each forwarding its events into one channel the
//! scheduling loop drains.

use std::fmt::Debug;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;
use titus_crds::{CapacityGroup, TitusJob};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::kube::index::{IndexEvent, NODE_LEASE_NAMESPACE};

/// Field selector of the Pod watch: Pods that may still hold resources (as kube-scheduler).
pub const LIVE_PODS: &str = "status.phase!=Succeeded,status.phase!=Failed";

/// Starts the watches. `namespace` limits Pods, `TitusJob`s and `CapacityGroup`s (`None`: all
/// namespaces); Nodes are cluster-wide and Leases are read in `kube-node-lease`.
pub fn spawn(
    client: &kube::Client,
    namespace: Option<&str>,
    events: &mpsc::Sender<IndexEvent>,
) -> Vec<JoinHandle<()>> {
    let scoped = |c: &kube::Client| -> (Api<Pod>, Api<TitusJob>, Api<CapacityGroup>) {
        match namespace {
            Some(ns) => (
                Api::namespaced(c.clone(), ns),
                Api::namespaced(c.clone(), ns),
                Api::namespaced(c.clone(), ns),
            ),
            None => (
                Api::all(c.clone()),
                Api::all(c.clone()),
                Api::all(c.clone()),
            ),
        }
    };
    let (pods, jobs, groups) = scoped(client);
    vec![
        forward(
            "nodes",
            Api::<Node>::all(client.clone()),
            watcher::Config::default(),
            events.clone(),
            IndexEvent::node,
        ),
        forward(
            "node leases",
            Api::<Lease>::namespaced(client.clone(), NODE_LEASE_NAMESPACE),
            watcher::Config::default(),
            events.clone(),
            IndexEvent::lease,
        ),
        forward(
            "pods",
            pods,
            watcher::Config::default().fields(LIVE_PODS),
            events.clone(),
            IndexEvent::pod,
        ),
        forward(
            "titusjobs",
            jobs,
            watcher::Config::default(),
            events.clone(),
            IndexEvent::job,
        ),
        forward(
            "capacitygroups",
            groups,
            watcher::Config::default(),
            events.clone(),
            IndexEvent::capacity_group,
        ),
    ]
}

/// Forwards one kind's events until the receiver is gone.
pub fn forward<K, E>(
    what: &'static str,
    api: Api<K>,
    config: watcher::Config,
    events: mpsc::Sender<E>,
    wrap: fn(Event<K>) -> E,
) -> JoinHandle<()>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    E: Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = watcher::watcher(api, config).default_backoff().boxed();
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => {
                    if events.send(wrap(event)).await.is_err() {
                        return;
                    }
                }
                Err(error) => tracing::warn!(%error, what, "watch failed; retrying with back-off"),
            }
        }
    })
}
