//! `meta.k8s.io/v1` Table responses (what `kubectl get` prints): the built-in kinds' columns
//! as Kubernetes prints them, and custom resources' `additionalPrinterColumns`.

use serde_json::{Value, json};

use crate::builtin::BuiltinId;
use crate::jsonpath::{evaluate, scalar_string};
use crate::meta;
use crate::registry::{PrinterColumn, ResourceDef, Source};

/// What to embed in each row's `object`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    /// Nothing.
    None,
    /// A PartialObjectMetadata (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// From the `includeObject` query parameter.
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

struct Column {
    name: &'static str,
    type_: &'static str,
    format: &'static str,
    priority: i64,
    description: &'static str,
}

const fn col(name: &'static str, type_: &'static str, priority: i64) -> Column {
    Column {
        name,
        type_,
        format: "",
        priority,
        description: "",
    }
}

fn builtin_columns(id: BuiltinId) -> Vec<Column> {
    let name = Column {
        format: "name",
        description: "Name must be unique within a namespace.",
        ..col("Name", "string", 0)
    };
    let age = col("Age", "string", 0);
    let mut cols = vec![name];
    match id {
        BuiltinId::Pod => cols.extend([
            col("Ready", "string", 0),
            col("Status", "string", 0),
            col("Restarts", "string", 0),
            age,
            col("IP", "string", 1),
            col("Node", "string", 1),
            col("Nominated Node", "string", 1),
            col("Readiness Gates", "string", 1),
        ]),
        BuiltinId::Node => cols.extend([
            col("Status", "string", 0),
            col("Roles", "string", 0),
            age,
            col("Version", "string", 0),
            col("Internal-IP", "string", 1),
        ]),
        BuiltinId::Namespace => cols.extend([col("Status", "string", 0), age]),
        BuiltinId::Event | BuiltinId::EventV1 => {
            cols = vec![
                col("Last Seen", "string", 0),
                col("Type", "string", 0),
                col("Reason", "string", 0),
                col("Object", "string", 0),
                col("Message", "string", 0),
            ];
        }
        BuiltinId::ConfigMap => cols.extend([col("Data", "integer", 0), age]),
        BuiltinId::Secret => {
            cols.extend([col("Type", "string", 0), col("Data", "integer", 0), age])
        }
        BuiltinId::Deployment => cols.extend([
            col("Ready", "string", 0),
            col("Up-to-date", "integer", 0),
            col("Available", "integer", 0),
            age,
        ]),
        BuiltinId::Lease => cols.extend([col("Holder", "string", 0), age]),
        BuiltinId::Service => cols.extend([
            col("Type", "string", 0),
            col("Cluster-IP", "string", 0),
            col("External-IP", "string", 0),
            col("Port(s)", "string", 0),
            age,
        ]),
        BuiltinId::CustomResourceDefinition => cols.push(col("Created At", "date", 0)),
        BuiltinId::ServiceAccount
        | BuiltinId::DaemonSet
        | BuiltinId::Role
        | BuiltinId::RoleBinding
        | BuiltinId::ClusterRole
        | BuiltinId::ClusterRoleBinding
        | BuiltinId::ValidatingWebhookConfiguration
        | BuiltinId::MutatingWebhookConfiguration
        | BuiltinId::PodDisruptionBudget => cols.push(age),
    }
    cols
}

fn age(obj: &Value) -> Value {
    json!(
        meta::meta_str(obj, "creationTimestamp")
            .map(meta::human_age)
            .unwrap_or_else(|| "<unknown>".into())
    )
}

fn builtin_cells(id: BuiltinId, obj: &Value) -> Vec<Value> {
    let name = json!(meta::name(obj));
    let s = |p: &str| obj.pointer(p).map(scalar_string).unwrap_or_default();
    match id {
        BuiltinId::Pod => {
            let statuses = obj
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses.iter().filter(|c| c["ready"] == true).count();
            let restarts: i64 = statuses
                .iter()
                .filter_map(|c| c["restartCount"].as_i64())
                .sum();
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(obj)),
                json!(restarts.to_string()),
                age(obj),
                json!(or_none(s("/status/podIP"))),
                json!(or_none(s("/spec/nodeName"))),
                json!("<none>"),
                json!("<none>"),
            ]
        }
        BuiltinId::Node => {
            let ready = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                .map(|c| {
                    if c["status"] == "True" {
                        "Ready"
                    } else {
                        "NotReady"
                    }
                })
                .unwrap_or("Unknown");
            let status = if obj.pointer("/spec/unschedulable") == Some(&json!(true)) {
                format!("{ready},SchedulingDisabled")
            } else {
                ready.to_owned()
            };
            let ip = obj
                .pointer("/status/addresses")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
                .map(|x| scalar_string(&x["address"]))
                .unwrap_or_else(|| "<none>".into());
            vec![
                name,
                json!(status),
                json!("<none>"),
                age(obj),
                json!(s("/status/nodeInfo/kubeletVersion")),
                json!(ip),
            ]
        }
        BuiltinId::Namespace => vec![name, json!(s("/status/phase")), age(obj)],
        BuiltinId::Event | BuiltinId::EventV1 => {
            let last = [
                "/lastTimestamp",
                "/eventTime",
                "/metadata/creationTimestamp",
            ]
            .iter()
            .find_map(|p| {
                obj.pointer(p)
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty())
            })
            .map(meta::human_age)
            .unwrap_or_default();
            let object = format!(
                "{}/{}",
                s("/involvedObject/kind").to_lowercase(),
                s("/involvedObject/name")
            );
            vec![
                json!(last),
                json!(s("/type")),
                json!(s("/reason")),
                json!(object),
                json!(s("/message")),
            ]
        }
        BuiltinId::ConfigMap => {
            let n = obj
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
                + obj
                    .get("binaryData")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len());
            vec![name, json!(n), age(obj)]
        }
        BuiltinId::Secret => {
            let n = obj
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len());
            vec![name, json!(s("/type")), json!(n), age(obj)]
        }
        BuiltinId::Deployment => {
            let ready = obj
                .pointer("/status/readyReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let want = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let updated = obj
                .pointer("/status/updatedReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let available = obj
                .pointer("/status/availableReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            vec![
                name,
                json!(format!("{ready}/{want}")),
                json!(updated),
                json!(available),
                age(obj),
            ]
        }
        BuiltinId::Lease => vec![name, json!(s("/spec/holderIdentity")), age(obj)],
        BuiltinId::Service => {
            let ports: Vec<String> = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            format!(
                                "{}/{}",
                                scalar_string(&p["port"]),
                                p["protocol"].as_str().unwrap_or("TCP")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            vec![
                name,
                json!(s("/spec/type")),
                json!(or_none(s("/spec/clusterIP"))),
                json!("<none>"),
                json!(if ports.is_empty() {
                    "<none>".to_owned()
                } else {
                    ports.join(",")
                }),
                age(obj),
            ]
        }
        BuiltinId::CustomResourceDefinition => vec![
            name,
            json!(meta::meta_str(obj, "creationTimestamp").unwrap_or_default()),
        ],
        BuiltinId::ServiceAccount
        | BuiltinId::DaemonSet
        | BuiltinId::Role
        | BuiltinId::RoleBinding
        | BuiltinId::ClusterRole
        | BuiltinId::ClusterRoleBinding
        | BuiltinId::ValidatingWebhookConfiguration
        | BuiltinId::MutatingWebhookConfiguration
        | BuiltinId::PodDisruptionBudget => vec![name, age(obj)],
    }
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

/// The STATUS column kubectl shows for a pod.
fn pod_status(pod: &Value) -> String {
    if meta::is_deleting(pod) {
        return "Terminating".into();
    }
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for c in &statuses {
        if let Some(reason) = c.pointer("/state/waiting/reason").and_then(Value::as_str) {
            return reason.into();
        }
        if let Some(reason) = c
            .pointer("/state/terminated/reason")
            .and_then(Value::as_str)
        {
            return reason.into();
        }
    }
    pod.pointer("/status/reason")
        .and_then(Value::as_str)
        .or_else(|| pod.pointer("/status/phase").and_then(Value::as_str))
        .unwrap_or("Unknown")
        .to_owned()
}

fn custom_columns(cols: &[PrinterColumn]) -> Vec<Value> {
    let mut out = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    let has_age = cols
        .iter()
        .any(|c| c.json_path == ".metadata.creationTimestamp");
    for c in cols {
        out.push(json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority}));
    }
    if !has_age && cols.is_empty() {
        out.push(json!({"name": "Age", "type": "date", "format": "", "description": "CreationTimestamp", "priority": 0}));
    }
    out
}

fn custom_cells(cols: &[PrinterColumn], obj: &Value) -> Vec<Value> {
    let mut cells = vec![json!(meta::name(obj))];
    for c in cols {
        let values = evaluate(obj, &c.json_path);
        let cell = match values.as_slice() {
            [] => Value::Null,
            [one] if c.type_ == "date" => {
                json!(one.as_str().map(meta::human_age).unwrap_or_default())
            }
            [one] => (*one).clone(),
            many => json!(
                many.iter()
                    .map(|v| scalar_string(v))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        cells.push(cell);
    }
    if cols.is_empty() {
        cells.push(age(obj));
    }
    cells
}

/// Column definitions of a resource.
pub fn columns(def: &ResourceDef) -> Vec<Value> {
    match &def.source {
        Source::Builtin(b) => builtin_columns(b.id)
            .into_iter()
            .map(|c| json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority}))
            .collect(),
        Source::Custom { .. } => custom_columns(&def.printer_columns),
    }
}

/// One row of a table.
pub fn row(def: &ResourceDef, obj: &Value, include: IncludeObject) -> Value {
    let cells = match &def.source {
        Source::Builtin(b) => builtin_cells(b.id, obj),
        Source::Custom { .. } => custom_cells(&def.printer_columns, obj),
    };
    let mut row = json!({"cells": cells});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => row["object"] = partial_metadata(obj),
        IncludeObject::Object => row["object"] = obj.clone(),
    }
    row
}

/// A whole Table.
pub fn table(
    def: &ResourceDef,
    objects: &[Value],
    list_meta: Value,
    include: IncludeObject,
    with_columns: bool,
) -> Value {
    let mut t = json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
        "rows": objects.iter().map(|o| row(def, o, include)).collect::<Vec<_>>()});
    if with_columns {
        t["columnDefinitions"] = json!(columns(def));
    }
    t
}

/// An object reduced to PartialObjectMetadata.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
           "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({}))})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn pods_print_like_kubectl() {
        let registry = Registry::new();
        let def = registry.get("", "v1", "pods").unwrap();
        let pod = json!({"metadata": {"name": "p", "creationTimestamp": meta::now_rfc3339()},
            "spec": {"containers": [{"name": "c"}], "nodeName": "n1"},
            "status": {"phase": "Running", "containerStatuses": [{"ready": true, "restartCount": 2}]}});
        let r = row(&def, &pod, IncludeObject::None);
        assert_eq!(r["cells"][0], "p");
        assert_eq!(r["cells"][1], "1/1");
        assert_eq!(r["cells"][2], "Running");
        assert_eq!(r["cells"][3], "2");
        assert_eq!(r["cells"][6], "n1");
        assert_eq!(columns(&def).len(), r["cells"].as_array().unwrap().len());
    }

    #[test]
    fn custom_resources_use_their_printer_columns() {
        let registry = Registry::new();
        let crd = json!({"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "additionalPrinterColumns": [{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}],
                "schema": {"openAPIV3Schema": {"type": "object"}}}]}});
        let def = &crate::crd::resource_defs(&crd, &registry).unwrap()[0];
        let obj = json!({"metadata": {"name": "w"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let t = table(def, &[obj], json!({}), IncludeObject::Metadata, true);
        assert_eq!(t["columnDefinitions"][1]["name"], "Ready");
        assert_eq!(t["rows"][0]["cells"], json!(["w", "True"]));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }
}
