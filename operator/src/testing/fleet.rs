//! The driver's fake nodes: Node objects with Titus's labels and an address, and the heartbeat
//! Leases their agents renew.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Namespace, Node};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use titus_crds::constants::node;
use tokio_util::sync::CancellationToken;

use super::{DriverError, Shared};
use crate::context::NODE_LEASE_NAMESPACE;

const FIELD_MANAGER: &str = "titus-pod-driver";

/// A fake node of the driver's fleet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeNode {
    /// Node name (also its instance id).
    pub name: String,
    /// Availability zone.
    pub zone: String,
    /// Its address.
    pub address: String,
}

impl FakeNode {
    /// A node in `zone`, with an address derived from its name.
    pub fn new(name: &str, zone: &str) -> Self {
        let n = name
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        Self {
            name: name.into(),
            zone: zone.into(),
            address: format!(
                "10.{}.{}.{}",
                (n >> 16) % 250 + 1,
                (n >> 8) % 250,
                n % 250 + 1
            ),
        }
    }
}

fn api_error(action: String) -> impl FnOnce(kube::Error) -> DriverError {
    move |source| DriverError::Api { action, source }
}

/// Creates the Lease namespace if needed, applies each Node (object and Ready status) and its
/// first Lease.
pub(super) async fn register(client: &kube::Client, nodes: &[FakeNode]) -> Result<(), DriverError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns =
        serde_json::from_value::<Namespace>(json!({"metadata": {"name": NODE_LEASE_NAMESPACE}}))
            .unwrap_or_default();
    match namespaces.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(api_error("creating the lease namespace".into())(e)),
    }
    let api: Api<Node> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for n in nodes {
        let object = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": n.name,
                "labels": {
                    "kubernetes.io/hostname": n.name,
                    "topology.kubernetes.io/zone": n.zone,
                    node::ZONE: n.zone,
                    node::REGION: "us-east-1",
                    node::INSTANCE_TYPE: "m5.large",
                    node::ID: n.name,
                    node::ASG: "titus-fake-agents",
                },
                "annotations": { "node.titus.netflix.com/ami": "ami-fake" },
            },
            "spec": { "taints": [{ "key": node::TAINT_PROVIDER, "value": "titus", "effect": "NoSchedule" }] },
        });
        api.patch(&n.name, &params, &Patch::Apply(&object))
            .await
            .map_err(api_error(format!("applying node {}", n.name)))?;
        let status = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": { "name": n.name },
            "status": {
                "addresses": [{ "type": "InternalIP", "address": n.address }],
                "capacity": { "cpu": "96", "memory": "768Gi", "pods": "1000" },
                "allocatable": { "cpu": "96", "memory": "768Gi", "pods": "1000" },
                "conditions": [{ "type": "Ready", "status": "True", "reason": "KubeletReady" }],
            },
        });
        api.patch_status(&n.name, &params, &Patch::Apply(&status))
            .await
            .map_err(api_error(format!("applying status of node {}", n.name)))?;
        renew(client, &n.name).await?;
    }
    Ok(())
}

async fn renew(client: &kube::Client, name: &str) -> Result<(), DriverError> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), NODE_LEASE_NAMESPACE);
    let lease = Lease {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NODE_LEASE_NAMESPACE.into()),
            ..kube::api::ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name.into()),
            lease_duration_seconds: Some(40),
            renew_time: Some(MicroTime(jiff::Timestamp::now())),
            ..LeaseSpec::default()
        }),
    };
    leases
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&lease),
        )
        .await
        .map(|_| ())
        .map_err(api_error(format!("renewing the lease of {name}")))
}

/// Renews the Leases of the nodes that are not silenced, every `period`.
pub(super) async fn heartbeat(
    client: kube::Client,
    nodes: Vec<FakeNode>,
    period: Duration,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = stop.cancelled() => return,
        }
        for n in &nodes {
            if shared.is_silenced(&n.name) {
                continue;
            }
            if let Err(error) = renew(&client, &n.name).await {
                tracing::debug!(%error, "pod driver: lease renewal failed");
            }
        }
    }
}
