//! The act step: the few writes the scheduler makes to the Kubernetes API.
//!
//! - `POST pods/{name}/binding` (the only way it places a Pod);
//! - a strategic-merge patch of the Pod's `PodScheduled` condition (`False`, `Unschedulable`,
//!   the aggregated reasons), like kube-scheduler;
//! - an `events.k8s.io` Event `FailedScheduling` on the Pod's `TitusTask`, one per new
//!   diagnosis (the condition write decides when: an unchanged diagnosis writes nothing, so
//!   there is nothing to fold into a series; kube-runtime's `Recorder` would also keep the first
//!   note of a series, hiding a changed diagnosis);
//! - the unmet demand, server-side applied to ConfigMap `titus-scheduler-demand`.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use titus_crds::constants::events;

use crate::kube::plan::{Bind, DemandReport, MarkUnschedulable};
use crate::kube::pod::{POD_SCHEDULED, UNSCHEDULABLE};

/// Field manager and Event reporter of everything the scheduler writes.
pub const FIELD_MANAGER: &str = "titus-scheduler";
/// Name of the ConfigMap the unmet demand is published in (scheduler namespace).
pub const DEMAND_CONFIG_MAP: &str = "titus-scheduler-demand";
/// Key of the demand JSON in that ConfigMap.
pub const DEMAND_KEY: &str = "demand.json";

/// Writes to the API on behalf of the scheduler.
#[derive(Clone)]
pub struct Writer {
    client: kube::Client,
    instance: String,
    namespace: String,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("instance", &self.instance)
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl Writer {
    /// A writer whose Events name `instance` as the reporting instance and whose ConfigMaps
    /// live in `namespace`.
    pub fn new(client: kube::Client, namespace: &str, instance: &str) -> Writer {
        Writer {
            client,
            instance: instance.to_string(),
            namespace: namespace.to_string(),
        }
    }

    /// Binds the Pod to its node.
    ///
    /// # Errors
    /// The API's answer: 409 when the Pod is already bound or being deleted, 404 when gone.
    pub async fn bind(&self, bind: &Bind) -> Result<(), kube::Error> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &bind.namespace);
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": bind.name, "namespace": bind.namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": bind.node},
        });
        pods.create_subresource::<_, serde_json::Value>(
            "binding",
            &bind.name,
            &PostParams::default(),
            &binding,
        )
        .await
        .map(|_| ())
    }

    /// Sets `PodScheduled=False, reason=Unschedulable` with the aggregated message.
    ///
    /// # Errors
    /// The API's answer.
    pub async fn mark_unschedulable(
        &self,
        mark: &MarkUnschedulable,
        now: Timestamp,
    ) -> Result<(), kube::Error> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &mark.namespace);
        let mut condition = json!({
            "type": POD_SCHEDULED,
            "status": "False",
            "reason": UNSCHEDULABLE,
            "message": mark.message,
            "lastProbeTime": null,
        });
        if mark.transition {
            condition["lastTransitionTime"] = json!(now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
        let patch = json!({"status": {"conditions": [condition]}});
        pods.patch_status(
            &mark.name,
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .await
        .map(|_| ())
    }

    /// Publishes a `FailedScheduling` Warning Event about the Pod's task at `now`.
    ///
    /// # Errors
    /// The API's answer.
    pub async fn failed_scheduling_event(
        &self,
        mark: &MarkUnschedulable,
        now: Timestamp,
    ) -> Result<(), kube::Error> {
        let namespace = mark
            .regarding
            .namespace
            .clone()
            .unwrap_or_else(|| mark.namespace.clone());
        let about = mark
            .regarding
            .name
            .clone()
            .unwrap_or_else(|| mark.name.clone());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{about}.{:x}", now.as_nanosecond())),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some("Warning".to_string()),
            reason: Some(events::FAILED_SCHEDULING.to_string()),
            action: Some("Scheduling".to_string()),
            note: Some(mark.message.chars().take(1000).collect()),
            regarding: Some(mark.regarding.clone()),
            reporting_controller: Some(FIELD_MANAGER.to_string()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        api.create(&PostParams::default(), &event).await.map(|_| ())
    }

    /// Server-side applies the demand report to the demand ConfigMap.
    ///
    /// # Errors
    /// The API's answer, or a report that does not serialize.
    pub async fn publish_demand(&self, report: &DemandReport) -> Result<(), kube::Error> {
        let data = serde_json::to_string_pretty(report).map_err(kube::Error::SerdeError)?;
        apply_config_map(
            &self.client,
            &self.namespace,
            DEMAND_CONFIG_MAP,
            FIELD_MANAGER,
            DEMAND_KEY,
            &data,
        )
        .await
    }
}

/// Server-side applies ConfigMap `name` holding `key: value`, owned by `field_manager`.
///
/// # Errors
/// The API's answer.
pub async fn apply_config_map(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    field_manager: &str,
    key: &str,
    value: &str,
) -> Result<(), kube::Error> {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {key: value},
    });
    maps.patch(
        name,
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(map),
    )
    .await
    .map(|_| ())
}
