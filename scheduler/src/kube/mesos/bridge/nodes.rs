//! Virtual node upkeep: held offers into hosts, the Node objects, their status and Leases,
//! and deleting idle ones.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::watcher::Event;
use serde_json::json;

use super::{Bridge, Host, launched_agent, node_of, same_attributes};
use crate::kube::index::NODE_LEASE_NAMESPACE;
use crate::kube::mesos::FIELD_MANAGER;
use crate::kube::mesos::status::is_terminal;
use crate::kube::mesos::virtual_node::{
    self, HOSTNAME_ANNOTATION, Readiness, node_object, node_status,
};
use crate::kube::pod::pod_resources;
use crate::mesos::framework::HostOffers;
use crate::resources::Resources;

impl Bridge {
    /// Reads the held offers into the hosts and writes what changed.
    pub(super) async fn refresh_offers(&mut self) {
        let offers = match self.framework.offers().await {
            Ok(offers) => offers,
            Err(error) => {
                tracing::warn!(%error, "cannot read held offers");
                return;
            }
        };
        let mut offered: HashSet<String> = HashSet::new();
        let mut adopted: Vec<String> = Vec::new();
        for HostOffers {
            host,
            agent_id,
            agent,
            ..
        } in offers
        {
            let Some(name) = virtual_node::node_name(&host) else {
                tracing::warn!(%host, "host name cannot be a node name; declining its offers");
                if let Err(error) = self.framework.decline(&host).await {
                    tracing::warn!(%host, %error, "decline failed");
                }
                continue;
            };
            if !self.hosts.contains_key(&name) {
                adopted.push(name.clone());
            }
            let entry = self.hosts.entry(name.clone()).or_insert_with(|| Host {
                host: host.clone(),
                agent_id: None,
                agent: None,
                offered: None,
                lost: false,
                exists: false,
                metadata_written: false,
                written: None,
                last_seen: Instant::now(),
            });
            let changed_metadata = entry.agent_id.as_deref() != Some(agent_id.as_str())
                || entry
                    .agent
                    .as_ref()
                    .is_none_or(|a| !same_attributes(a, &agent));
            if changed_metadata {
                entry.metadata_written = false;
            }
            entry.host = host;
            entry.agent_id = Some(agent_id);
            entry.offered = Some(agent.allocatable);
            entry.agent = Some(agent);
            entry.lost = false;
            entry.last_seen = Instant::now();
            offered.insert(name);
        }
        for (name, host) in &mut self.hosts {
            if !offered.contains(name) {
                host.offered = None;
            }
        }
        for name in adopted {
            self.adopt_pods(&name);
        }
        self.sync_nodes().await;
    }

    /// Pods bound to a node before it was known as a virtual node wait for their launch.
    pub(super) fn adopt_pods(&mut self, node: &str) {
        let bound: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, p)| {
                node_of(p).is_some_and(|n| n == node)
                    && launched_agent(p).is_none()
                    && p.metadata.deletion_timestamp.is_none()
                    && !is_terminal(p.status.as_ref())
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in bound {
            self.waiting.entry(key).or_insert_with(Instant::now);
        }
    }

    // --- virtual nodes ---

    pub(super) fn readiness(&self, host: &Host) -> Readiness {
        if !self.subscribed {
            Readiness::Disconnected
        } else if host.lost {
            Readiness::AgentLost
        } else {
            Readiness::Active
        }
    }

    /// What the Titus tasks launched on each virtual node hold.
    pub(super) fn launched_by_node(&self) -> HashMap<String, Resources> {
        let mut out: HashMap<String, Resources> = HashMap::new();
        for pod in self.pods.values() {
            let (Some(node), Some(_)) = (node_of(pod), launched_agent(pod)) else {
                continue;
            };
            if is_terminal(pod.status.as_ref()) {
                continue;
            }
            if let Ok(r) = pod_resources(pod) {
                let sum = out.entry(node.clone()).or_default();
                *sum = sum.saturating_add(&r);
            }
        }
        out
    }

    /// Writes every virtual node whose metadata or status is not what it should be.
    pub(super) async fn sync_nodes(&mut self) {
        let launched = self.launched_by_node();
        let pods_per_agent = self.config.framework.offer_mapping.pods_per_agent;
        let names: Vec<String> = self.hosts.keys().cloned().collect();
        for name in names {
            let Some(host) = self.hosts.get(&name) else {
                continue;
            };
            let readiness = self.readiness(host);
            let held = launched.get(&name).copied().unwrap_or_default();
            let desired = (
                virtual_node::allocatable(host.offered.as_ref(), &held, pods_per_agent),
                readiness,
            );
            let write_metadata = !host.exists || !host.metadata_written;
            if host.written == Some(desired) && !write_metadata {
                continue;
            }
            let agent = host.agent.clone();
            let agent_id = host.agent_id.clone().unwrap_or_default();
            let nodes: Api<Node> = Api::all(self.ctx.client.clone());
            if write_metadata {
                let Some(agent) = agent else {
                    // Known only from an earlier run: keep its metadata until it offers again.
                    if !host.exists {
                        continue;
                    }
                    self.write_status(&name, desired).await;
                    continue;
                };
                let node = node_object(&name, &agent, &agent_id);
                match nodes
                    .patch(
                        &name,
                        &PatchParams::apply(FIELD_MANAGER).force(),
                        &Patch::Apply(&node),
                    )
                    .await
                {
                    Ok(_) => {
                        if let Some(h) = self.hosts.get_mut(&name) {
                            h.exists = true;
                            h.metadata_written = true;
                            h.written = None;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(node = %name, %error, "cannot write virtual node");
                        continue;
                    }
                }
            }
            self.write_status(&name, desired).await;
        }
    }

    pub(super) async fn write_status(&mut self, name: &str, desired: (Resources, Readiness)) {
        let nodes: Api<Node> = Api::all(self.ctx.client.clone());
        let status = node_status(&desired.0, desired.1, Timestamp::now());
        let patch = json!({"status": status});
        match nodes
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                if let Some(h) = self.hosts.get_mut(name) {
                    h.written = Some(desired);
                }
            }
            Err(error) => tracing::warn!(node = %name, %error, "cannot write virtual node status"),
        }
    }

    pub(super) fn on_node(&mut self, event: Event<Node>) {
        match event {
            Event::Apply(node) | Event::InitApply(node) => {
                let Some(name) = node.metadata.name.clone() else {
                    return;
                };
                let host_name = node
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(HOSTNAME_ANNOTATION).cloned())
                    .unwrap_or_else(|| name.clone());
                let agent_id = node
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(virtual_node::AGENT_ID_ANNOTATION).cloned());
                let known = self.hosts.contains_key(&name);
                let host = self.hosts.entry(name.clone()).or_insert_with(|| Host {
                    host: host_name,
                    agent_id,
                    agent: None,
                    offered: None,
                    lost: false,
                    exists: true,
                    metadata_written: true,
                    written: None,
                    last_seen: Instant::now(),
                });
                host.exists = true;
                if !known {
                    self.adopt_pods(&name);
                }
            }
            Event::Delete(node) => {
                if let Some(host) = node.metadata.name.and_then(|n| self.hosts.get_mut(&n)) {
                    host.exists = false;
                    host.written = None;
                }
            }
            Event::Init | Event::InitDone => {}
        }
    }

    pub(super) async fn renew_leases(&mut self) {
        let leases: Api<Lease> = Api::namespaced(self.ctx.client.clone(), NODE_LEASE_NAMESPACE);
        let seconds = i32::try_from(self.config.node_lease_duration.as_secs()).unwrap_or(40);
        let active: Vec<String> = self
            .hosts
            .iter()
            .filter(|(_, h)| h.exists && self.readiness(h) == Readiness::Active)
            .map(|(n, _)| n.clone())
            .collect();
        for name in active {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(NODE_LEASE_NAMESPACE.to_string()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(name.clone()),
                    lease_duration_seconds: Some(seconds),
                    renew_time: Some(MicroTime(Timestamp::now())),
                    ..LeaseSpec::default()
                }),
            };
            let mut value = serde_json::to_value(&lease).unwrap_or_default();
            value["apiVersion"] = json!("coordination.k8s.io/v1");
            value["kind"] = json!("Lease");
            if let Err(error) = leases
                .patch(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(value),
                )
                .await
            {
                tracing::warn!(node = %name, %error, "cannot renew virtual node lease");
            }
        }
    }

    /// Deletes virtual nodes that have neither offers nor Pods for `virtual_node_gc_after`.
    pub(super) async fn collect_garbage(&mut self) {
        let busy: HashSet<&String> = self.pods.values().filter_map(node_of).collect();
        let idle: Vec<String> = self
            .hosts
            .iter()
            .filter(|(name, h)| {
                h.offered.is_none()
                    && !busy.contains(name)
                    && h.last_seen.elapsed() >= self.config.virtual_node_gc_after
            })
            .map(|(n, _)| n.clone())
            .collect();
        let nodes: Api<Node> = Api::all(self.ctx.client.clone());
        let leases: Api<Lease> = Api::namespaced(self.ctx.client.clone(), NODE_LEASE_NAMESPACE);
        for name in idle {
            tracing::info!(node = %name, "deleting idle virtual node");
            let _ = nodes.delete(&name, &DeleteParams::default()).await;
            let _ = leases.delete(&name, &DeleteParams::default()).await;
            self.hosts.remove(&name);
        }
    }
}
