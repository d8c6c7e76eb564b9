//! The built-in kinds served: their names, how a request body is decoded into them, their
//! defaults, validation, printer columns and selectable fields.
//!
//! Decoding goes through the k8s-openapi type of the kind (deserialize, then serialize), which
//! type-checks every field, drops unknown ones (reporting their paths for `fieldValidation`)
//! and normalizes the JSON exactly as a typed Kubernetes client would see it.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::FieldError;
use crate::meta;

/// Every built-in kind this server knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BuiltinId {
    /// core/v1 Namespace.
    Namespace,
    /// core/v1 Pod.
    Pod,
    /// core/v1 Node.
    Node,
    /// core/v1 Event.
    Event,
    /// events.k8s.io/v1 Event (same storage as core events).
    EventV1,
    /// core/v1 Secret.
    Secret,
    /// core/v1 ConfigMap.
    ConfigMap,
    /// core/v1 ServiceAccount.
    ServiceAccount,
    /// core/v1 Service.
    Service,
    /// coordination.k8s.io/v1 Lease.
    Lease,
    /// apiextensions.k8s.io/v1 CustomResourceDefinition.
    CustomResourceDefinition,
    /// apps/v1 Deployment (stored only).
    Deployment,
    /// apps/v1 DaemonSet (stored only).
    DaemonSet,
    /// rbac Role.
    Role,
    /// rbac RoleBinding.
    RoleBinding,
    /// rbac ClusterRole.
    ClusterRole,
    /// rbac ClusterRoleBinding.
    ClusterRoleBinding,
    /// admissionregistration ValidatingWebhookConfiguration (stored only).
    ValidatingWebhookConfiguration,
    /// admissionregistration MutatingWebhookConfiguration (stored only).
    MutatingWebhookConfiguration,
    /// policy/v1 PodDisruptionBudget.
    PodDisruptionBudget,
}

/// Scale subresource paths (JSON paths without the leading dot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    /// Desired replicas, e.g. `spec.replicas`.
    pub spec_replicas: String,
    /// Observed replicas, e.g. `status.replicas`.
    pub status_replicas: String,
    /// Label selector string, if any.
    pub label_selector: Option<String>,
}

/// Static description of a built-in kind.
#[derive(Debug)]
pub struct BuiltinKind {
    /// Which one.
    pub id: BuiltinId,
    /// API group ("" for core).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Resource plural.
    pub plural: &'static str,
    /// Resource singular.
    pub singular: &'static str,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: &'static [&'static str],
    /// kubectl categories.
    pub categories: &'static [&'static str],
    /// Has a `status` subresource.
    pub status: bool,
    /// Other subresources.
    pub subresources: &'static [&'static str],
    /// Store key (`plural` or `plural.group`), shared by kinds with one storage.
    pub storage: &'static str,
    /// OpenAPI definition name of the kind.
    pub definition: &'static str,
    /// Field labels usable in field selectors beyond metadata.name/namespace.
    pub field_labels: &'static [&'static str],
}

macro_rules! kind {
    ($id:ident, $group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, $namespaced:expr,
     short: $short:expr, cat: $cat:expr, status: $status:expr, sub: $sub:expr, storage: $storage:expr,
     def: $def:expr, fields: $fields:expr) => {
        BuiltinKind {
            id: BuiltinId::$id,
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            namespaced: $namespaced,
            short_names: $short,
            categories: $cat,
            status: $status,
            subresources: $sub,
            storage: $storage,
            definition: $def,
            field_labels: $fields,
        }
    };
}

/// All built-in kinds, in discovery order.
pub static BUILTINS: &[BuiltinKind] = &[
    kind!(Namespace, "", "v1", "Namespace", "namespaces", "namespace", false, short: &["ns"], cat: &[], status: true,
          sub: &["finalize"], storage: "namespaces", def: "io.k8s.api.core.v1.Namespace", fields: &["status.phase"]),
    kind!(Pod, "", "v1", "Pod", "pods", "pod", true, short: &["po"], cat: &["all"], status: true,
          sub: &["binding", "eviction", "log"], storage: "pods", def: "io.k8s.api.core.v1.Pod",
          fields: &["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                    "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"]),
    kind!(Node, "", "v1", "Node", "nodes", "node", false, short: &["no"], cat: &[], status: true, sub: &[],
          storage: "nodes", def: "io.k8s.api.core.v1.Node", fields: &["spec.unschedulable"]),
    kind!(Event, "", "v1", "Event", "events", "event", true, short: &["ev"], cat: &[], status: false, sub: &[],
          storage: "events", def: "io.k8s.api.core.v1.Event",
          fields: &["involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
                    "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
                    "reason", "reportingComponent", "source", "type"]),
    kind!(EventV1, "events.k8s.io", "v1", "Event", "events", "event", true, short: &["ev"], cat: &[], status: false,
          sub: &[], storage: "events", def: "io.k8s.api.events.v1.Event",
          fields: &["involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
                    "reason", "reportingComponent", "type"]),
    kind!(Secret, "", "v1", "Secret", "secrets", "secret", true, short: &[], cat: &[], status: false, sub: &[],
          storage: "secrets", def: "io.k8s.api.core.v1.Secret", fields: &["type"]),
    kind!(ConfigMap, "", "v1", "ConfigMap", "configmaps", "configmap", true, short: &["cm"], cat: &[], status: false,
          sub: &[], storage: "configmaps", def: "io.k8s.api.core.v1.ConfigMap", fields: &[]),
    kind!(ServiceAccount, "", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true, short: &["sa"], cat: &[],
          status: false, sub: &[], storage: "serviceaccounts", def: "io.k8s.api.core.v1.ServiceAccount", fields: &[]),
    kind!(Service, "", "v1", "Service", "services", "service", true, short: &["svc"], cat: &["all"], status: true,
          sub: &[], storage: "services", def: "io.k8s.api.core.v1.Service", fields: &[]),
    kind!(Lease, "coordination.k8s.io", "v1", "Lease", "leases", "lease", true, short: &[], cat: &[], status: false,
          sub: &[], storage: "leases.coordination.k8s.io", def: "io.k8s.api.coordination.v1.Lease", fields: &[]),
    kind!(CustomResourceDefinition, "apiextensions.k8s.io", "v1", "CustomResourceDefinition",
          "customresourcedefinitions", "customresourcedefinition", false, short: &["crd", "crds"], cat: &["api-extensions"],
          status: true, sub: &[], storage: "customresourcedefinitions.apiextensions.k8s.io",
          def: "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition", fields: &[]),
    kind!(Deployment, "apps", "v1", "Deployment", "deployments", "deployment", true, short: &["deploy"], cat: &["all"],
          status: true, sub: &["scale"], storage: "deployments.apps", def: "io.k8s.api.apps.v1.Deployment", fields: &[]),
    kind!(DaemonSet, "apps", "v1", "DaemonSet", "daemonsets", "daemonset", true, short: &["ds"], cat: &["all"],
          status: true, sub: &[], storage: "daemonsets.apps", def: "io.k8s.api.apps.v1.DaemonSet", fields: &[]),
    kind!(Role, "rbac.authorization.k8s.io", "v1", "Role", "roles", "role", true, short: &[], cat: &[], status: false,
          sub: &[], storage: "roles.rbac.authorization.k8s.io", def: "io.k8s.api.rbac.v1.Role", fields: &[]),
    kind!(RoleBinding, "rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", true, short: &[],
          cat: &[], status: false, sub: &[], storage: "rolebindings.rbac.authorization.k8s.io",
          def: "io.k8s.api.rbac.v1.RoleBinding", fields: &[]),
    kind!(ClusterRole, "rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", false, short: &[],
          cat: &[], status: false, sub: &[], storage: "clusterroles.rbac.authorization.k8s.io",
          def: "io.k8s.api.rbac.v1.ClusterRole", fields: &[]),
    kind!(ClusterRoleBinding, "rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings",
          "clusterrolebinding", false, short: &[], cat: &[], status: false, sub: &[],
          storage: "clusterrolebindings.rbac.authorization.k8s.io", def: "io.k8s.api.rbac.v1.ClusterRoleBinding", fields: &[]),
    kind!(ValidatingWebhookConfiguration, "admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration",
          "validatingwebhookconfigurations", "validatingwebhookconfiguration", false, short: &[], cat: &["api-extensions"],
          status: false, sub: &[], storage: "validatingwebhookconfigurations.admissionregistration.k8s.io",
          def: "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration", fields: &[]),
    kind!(MutatingWebhookConfiguration, "admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration",
          "mutatingwebhookconfigurations", "mutatingwebhookconfiguration", false, short: &[], cat: &["api-extensions"],
          status: false, sub: &[], storage: "mutatingwebhookconfigurations.admissionregistration.k8s.io",
          def: "io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration", fields: &[]),
    kind!(PodDisruptionBudget, "policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget", true,
          short: &["pdb"], cat: &[], status: true, sub: &[], storage: "poddisruptionbudgets.policy",
          def: "io.k8s.api.policy.v1.PodDisruptionBudget", fields: &[]),
];

/// Looks a built-in kind up.
pub fn builtin(id: BuiltinId) -> &'static BuiltinKind {
    // The table holds every id exactly once; fall back to the first entry defensively.
    BUILTINS.iter().find(|b| b.id == id).unwrap_or(&BUILTINS[0])
}

impl BuiltinKind {
    /// The scale subresource paths, when the kind has one.
    pub fn scale(&self) -> Option<ScalePaths> {
        (self.id == BuiltinId::Deployment).then(|| ScalePaths {
            spec_replicas: "spec.replicas".into(),
            status_replicas: "status.replicas".into(),
            label_selector: None,
        })
    }

    /// Decodes a request body into the kind: type-checks it, drops unknown fields (returned as
    /// paths) and normalizes it. The error message names the offending field.
    pub fn decode(&self, value: Value) -> Result<(Value, Vec<String>), String> {
        with_type!(self.id, typed, value)
    }

    /// Adds every OpenAPI definition this kind needs to the generator.
    pub fn add_schema(&self, generator: &mut schemars::SchemaGenerator) {
        with_type!(self.id, add_definitions, generator)
    }
}

/// Calls `$f::<T>($arg)` with the k8s-openapi type `T` of a built-in kind.
macro_rules! with_type {
    ($id:expr, $f:ident, $arg:expr) => {{
        use k8s_openapi::api::{
            admissionregistration, apps, coordination, core, events, policy, rbac,
        };
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
        match $id {
            BuiltinId::Namespace => $f::<core::v1::Namespace>($arg),
            BuiltinId::Pod => $f::<core::v1::Pod>($arg),
            BuiltinId::Node => $f::<core::v1::Node>($arg),
            BuiltinId::Event => $f::<core::v1::Event>($arg),
            BuiltinId::EventV1 => $f::<events::v1::Event>($arg),
            BuiltinId::Secret => $f::<core::v1::Secret>($arg),
            BuiltinId::ConfigMap => $f::<core::v1::ConfigMap>($arg),
            BuiltinId::ServiceAccount => $f::<core::v1::ServiceAccount>($arg),
            BuiltinId::Service => $f::<core::v1::Service>($arg),
            BuiltinId::Lease => $f::<coordination::v1::Lease>($arg),
            BuiltinId::CustomResourceDefinition => {
                $f::<apiextensions::v1::CustomResourceDefinition>($arg)
            }
            BuiltinId::Deployment => $f::<apps::v1::Deployment>($arg),
            BuiltinId::DaemonSet => $f::<apps::v1::DaemonSet>($arg),
            BuiltinId::Role => $f::<rbac::v1::Role>($arg),
            BuiltinId::RoleBinding => $f::<rbac::v1::RoleBinding>($arg),
            BuiltinId::ClusterRole => $f::<rbac::v1::ClusterRole>($arg),
            BuiltinId::ClusterRoleBinding => $f::<rbac::v1::ClusterRoleBinding>($arg),
            BuiltinId::ValidatingWebhookConfiguration => {
                $f::<admissionregistration::v1::ValidatingWebhookConfiguration>($arg)
            }
            BuiltinId::MutatingWebhookConfiguration => {
                $f::<admissionregistration::v1::MutatingWebhookConfiguration>($arg)
            }
            BuiltinId::PodDisruptionBudget => $f::<policy::v1::PodDisruptionBudget>($arg),
        }
    }};
}
use with_type;

fn add_definitions<T: schemars::JsonSchema>(generator: &mut schemars::SchemaGenerator) {
    generator.subschema_for::<T>();
}

/// Deserializes into `T` (collecting ignored field paths), then serializes back.
fn typed<T: DeserializeOwned + Serialize>(value: Value) -> Result<(Value, Vec<String>), String> {
    let mut unknown = Vec::new();
    let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(render_path(&path));
    let typed: T = {
        let ignored = serde_ignored::Deserializer::new(value, &mut on_unknown);
        serde_path_to_error::deserialize(ignored).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                e.inner().to_string()
            } else {
                format!("{path}: {}", e.inner())
            }
        })?
    };
    let out = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    Ok((out, unknown))
}

fn render_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", render_path(parent)),
        Path::Map { parent, key } => {
            let p = render_path(parent);
            if p.is_empty() {
                key.clone()
            } else {
                format!("{p}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => render_path(parent),
    }
}

/// Server-side defaults applied on create and update, as Kubernetes' defaulting functions do.
pub fn apply_defaults(id: BuiltinId, obj: &mut Value) {
    match id {
        BuiltinId::Pod => default_pod(obj),
        BuiltinId::Namespace => {
            let spec = meta::as_object(obj)
                .entry("spec")
                .or_insert_with(|| json!({}));
            let fins = meta::as_object(spec)
                .entry("finalizers")
                .or_insert_with(|| json!(["kubernetes"]));
            if fins.as_array().is_some_and(Vec::is_empty) {
                *fins = json!(["kubernetes"]);
            }
        }
        BuiltinId::Deployment => {
            let spec = meta::as_object(obj)
                .entry("spec")
                .or_insert_with(|| json!({}));
            let spec = meta::as_object(spec);
            spec.entry("replicas").or_insert(json!(1));
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
            spec.entry("progressDeadlineSeconds").or_insert(json!(600));
            spec.entry("strategy").or_insert(
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
            );
        }
        BuiltinId::Service => {
            let spec = meta::as_object(obj)
                .entry("spec")
                .or_insert_with(|| json!({}));
            let spec = meta::as_object(spec);
            spec.entry("type").or_insert(json!("ClusterIP"));
            spec.entry("sessionAffinity").or_insert(json!("None"));
        }
        BuiltinId::Secret => {
            meta::as_object(obj)
                .entry("type")
                .or_insert(json!("Opaque"));
        }
        BuiltinId::Node
        | BuiltinId::Event
        | BuiltinId::EventV1
        | BuiltinId::ConfigMap
        | BuiltinId::ServiceAccount
        | BuiltinId::Lease
        | BuiltinId::CustomResourceDefinition
        | BuiltinId::DaemonSet
        | BuiltinId::Role
        | BuiltinId::RoleBinding
        | BuiltinId::ClusterRole
        | BuiltinId::ClusterRoleBinding
        | BuiltinId::ValidatingWebhookConfiguration
        | BuiltinId::MutatingWebhookConfiguration
        | BuiltinId::PodDisruptionBudget => {}
    }
}

fn default_pod(obj: &mut Value) {
    let root = meta::as_object(obj);
    let spec = meta::as_object(root.entry("spec").or_insert_with(|| json!({})));
    spec.entry("restartPolicy").or_insert(json!("Always"));
    spec.entry("terminationGracePeriodSeconds")
        .or_insert(json!(30));
    spec.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    spec.entry("schedulerName")
        .or_insert(json!("default-scheduler"));
    spec.entry("securityContext").or_insert(json!({}));
    spec.entry("enableServiceLinks").or_insert(json!(true));
    spec.entry("priority").or_insert(json!(0));
    spec.entry("serviceAccountName").or_insert(json!("default"));
    for list in ["containers", "initContainers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers {
            let c = meta::as_object(c);
            let latest = c.get("image").and_then(Value::as_str).is_some_and(|i| {
                let tail = i.rsplit('/').next().unwrap_or(i);
                !i.contains('@') && (!tail.contains(':') || tail.ends_with(":latest"))
            });
            c.entry("imagePullPolicy").or_insert(json!(if latest {
                "Always"
            } else {
                "IfNotPresent"
            }));
            c.entry("terminationMessagePath")
                .or_insert(json!("/dev/termination-log"));
            c.entry("terminationMessagePolicy").or_insert(json!("File"));
        }
    }
}

/// Status a new object starts with (clients cannot set status on create for these kinds).
pub fn initial_status(id: BuiltinId, obj: &Value) -> Option<Value> {
    match id {
        BuiltinId::Pod => Some(json!({"phase": "Pending", "qosClass": pod_qos_class(obj)})),
        BuiltinId::Namespace => Some(json!({"phase": "Active"})),
        BuiltinId::Deployment
        | BuiltinId::DaemonSet
        | BuiltinId::Service
        | BuiltinId::PodDisruptionBudget => Some(json!({})),
        BuiltinId::Node
        | BuiltinId::Event
        | BuiltinId::EventV1
        | BuiltinId::Secret
        | BuiltinId::ConfigMap
        | BuiltinId::ServiceAccount
        | BuiltinId::Lease
        | BuiltinId::CustomResourceDefinition
        | BuiltinId::Role
        | BuiltinId::RoleBinding
        | BuiltinId::ClusterRole
        | BuiltinId::ClusterRoleBinding
        | BuiltinId::ValidatingWebhookConfiguration
        | BuiltinId::MutatingWebhookConfiguration => None,
    }
}

/// Kubernetes' QoS class of a pod: Guaranteed when every container's requests equal its
/// limits for cpu and memory, BestEffort when nothing is requested, else Burstable.
fn pod_qos_class(pod: &Value) -> &'static str {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let requests = c.pointer("/resources/requests");
        let limits = c.pointer("/resources/limits");
        any |= requests.is_some_and(|r| r.as_object().is_some_and(|m| !m.is_empty()))
            || limits.is_some_and(|l| l.as_object().is_some_and(|m| !m.is_empty()));
        for res in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(res));
            let request = requests.and_then(|r| r.get(res)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    if guaranteed {
        "Guaranteed"
    } else if any {
        "Burstable"
    } else {
        "BestEffort"
    }
}

/// Kind-specific validation beyond types (names, required fields), as Kubernetes refuses them.
pub fn validate(id: BuiltinId, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let name = meta::name(obj);
    match id {
        BuiltinId::Namespace | BuiltinId::Service => {
            if let Some(msg) = meta::check_dns_label(name) {
                errors.push(FieldError::invalid("metadata.name", &json!(name), msg));
            }
        }
        BuiltinId::Pod => validate_pod(obj, old, &mut errors),
        BuiltinId::Role
        | BuiltinId::RoleBinding
        | BuiltinId::ClusterRole
        | BuiltinId::ClusterRoleBinding => {}
        BuiltinId::Node
        | BuiltinId::Event
        | BuiltinId::EventV1
        | BuiltinId::Secret
        | BuiltinId::ConfigMap
        | BuiltinId::ServiceAccount
        | BuiltinId::Lease
        | BuiltinId::CustomResourceDefinition
        | BuiltinId::Deployment
        | BuiltinId::DaemonSet
        | BuiltinId::ValidatingWebhookConfiguration
        | BuiltinId::MutatingWebhookConfiguration
        | BuiltinId::PodDisruptionBudget => {}
    }
    if id == BuiltinId::Deployment && obj.pointer("/spec/selector").is_none() {
        errors.push(FieldError::required("spec.selector"));
    }
    errors
}

fn validate_pod(pod: &Value, old: Option<&Value>, errors: &mut Vec<FieldError>) {
    let containers = pod.pointer("/spec/containers").and_then(Value::as_array);
    match containers {
        None => errors.push(FieldError::required("spec.containers")),
        Some(list) if list.is_empty() => errors.push(FieldError::required("spec.containers")),
        Some(list) => {
            let mut seen = Vec::new();
            for (i, c) in list.iter().enumerate() {
                let cname = c.get("name").and_then(Value::as_str).unwrap_or_default();
                if let Some(msg) = meta::check_dns_label(cname) {
                    errors.push(FieldError::invalid(
                        format!("spec.containers[{i}].name"),
                        &json!(cname),
                        msg,
                    ));
                }
                if seen.contains(&cname) {
                    errors.push(FieldError::new(
                        crate::error::FieldErrorType::Duplicate,
                        format!("spec.containers[{i}].name"),
                        format!("Duplicate value: {cname:?}"),
                    ));
                }
                seen.push(cname);
                if c.get("image")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    errors.push(FieldError::required(format!("spec.containers[{i}].image")));
                }
            }
        }
    }
    // Pod specs are immutable after creation except for a few fields.
    if let Some(old) = old {
        let strip = |p: &Value| {
            let mut spec = p.get("spec").cloned().unwrap_or(Value::Null);
            if let Some(m) = spec.as_object_mut() {
                for mutable in [
                    "activeDeadlineSeconds",
                    "tolerations",
                    "schedulingGates",
                    "terminationGracePeriodSeconds",
                ] {
                    m.shift_remove(mutable);
                }
                if let Some(cs) = m.get_mut("containers").and_then(Value::as_array_mut) {
                    for c in cs {
                        if let Some(c) = c.as_object_mut() {
                            c.shift_remove("image");
                        }
                    }
                }
            }
            spec
        };
        if strip(pod) != strip(old) {
            errors.push(FieldError::forbidden(
                "spec",
                "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            ));
        }
    }
}

/// Value of a selectable field of a built-in object.
pub fn field_value(obj: &Value, label: &str) -> String {
    let mut cur = obj;
    for part in label.split('.') {
        match cur.get(part) {
            Some(next) => cur = next,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null | Value::Array(_) | Value::Object(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_reports_unknown_fields_and_type_errors_with_paths() {
        let pod = builtin(BuiltinId::Pod);
        let (value, unknown) = pod
            .decode(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                           "spec": {"containers": [{"name": "c", "image": "i", "bogus": 1}], "junk": true}}))
            .unwrap();
        assert_eq!(unknown, vec!["spec.containers[0].bogus", "spec.junk"]);
        assert!(value.pointer("/spec/junk").is_none());
        let err = builtin(BuiltinId::Deployment)
            .decode(json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": "three"}}))
            .unwrap_err();
        assert!(err.starts_with("spec.replicas:"), "{err}");
    }

    #[test]
    fn pods_get_kubernetes_defaults_and_a_qos_class() {
        let mut pod = json!({"spec": {"containers": [{"name": "c", "image": "busybox",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}});
        apply_defaults(BuiltinId::Pod, &mut pod);
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(
            initial_status(BuiltinId::Pod, &pod).unwrap()["qosClass"],
            "Guaranteed"
        );
    }

    #[test]
    fn pods_need_containers_with_images_and_are_mostly_immutable() {
        let bad = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}});
        let errors: Vec<_> = validate(BuiltinId::Pod, &bad, None)
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(errors, vec!["spec.containers[0].image: Required value"]);
        let old = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "a"}]}});
        let mut new = old.clone();
        new["spec"]["nodeName"] = json!("n1");
        assert_eq!(validate(BuiltinId::Pod, &new, Some(&old)).len(), 1);
        let mut image_change = old.clone();
        image_change["spec"]["containers"][0]["image"] = json!("b");
        assert!(validate(BuiltinId::Pod, &image_change, Some(&old)).is_empty());
    }
}
