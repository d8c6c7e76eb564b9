//! How an object's fields merge: which maps are granular, which lists are atomic, sets, or
//! maps keyed by some fields. Strategic merge patch and server-side apply both walk an object
//! together with its [`TypeModel`].
//!
//! Built-in kinds get their model from their OpenAPI schema plus Kubernetes' list metadata
//! ([`LIST_MAPS`], [`LIST_SETS`], [`ATOMIC_MAPS`]); custom resources from the CRD's structural
//! schema and its `x-kubernetes-list-type`/`x-kubernetes-map-type` annotations.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Index of a node in a [`TypeModel`].
pub type TypeId = usize;

/// How a list merges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// Replaced as a whole.
    Atomic,
    /// A set of scalars: merged by value.
    Set,
    /// A list of objects identified by these key fields: merged item by item.
    Map(Vec<String>),
}

/// One node of the type graph.
#[derive(Clone, Debug, PartialEq)]
pub enum TypeNode {
    /// A scalar, or something replaced whole.
    Scalar,
    /// An object with known fields (unknown fields are untyped).
    Struct {
        /// Field name to type.
        fields: HashMap<String, TypeId>,
        /// Replaced whole (`x-kubernetes-map-type: atomic`).
        atomic: bool,
    },
    /// A string-keyed map of values of one type.
    Map {
        /// Value type.
        values: TypeId,
        /// Replaced whole.
        atomic: bool,
    },
    /// A list.
    List {
        /// Item type.
        items: TypeId,
        /// How it merges.
        kind: ListKind,
    },
    /// No schema (preserve-unknown-fields, free JSON): maps merge granularly, lists are atomic.
    Untyped,
}

/// A type graph; node 0 is the root object type. Cheap to share in an `Arc`.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeModel {
    nodes: Vec<TypeNode>,
}

/// The untyped node id present in every model.
pub const UNTYPED: TypeId = 1;

impl TypeModel {
    /// A model where everything is untyped.
    pub fn untyped() -> Self {
        Self {
            nodes: vec![TypeNode::Untyped, TypeNode::Untyped],
        }
    }

    /// The root type.
    pub fn root(&self) -> TypeId {
        0
    }

    /// A node by id (untyped for unknown ids).
    pub fn node(&self, id: TypeId) -> &TypeNode {
        self.nodes.get(id).unwrap_or(&TypeNode::Untyped)
    }

    /// The type of field `name` of a value of type `id`.
    pub fn field(&self, id: TypeId, name: &str) -> TypeId {
        match self.node(id) {
            TypeNode::Struct { fields, .. } => fields.get(name).copied().unwrap_or(UNTYPED),
            TypeNode::Map { values, .. } => *values,
            TypeNode::Scalar | TypeNode::List { .. } | TypeNode::Untyped => UNTYPED,
        }
    }

    /// The item type of a list type.
    pub fn items(&self, id: TypeId) -> TypeId {
        match self.node(id) {
            TypeNode::List { items, .. } => *items,
            TypeNode::Scalar
            | TypeNode::Struct { .. }
            | TypeNode::Map { .. }
            | TypeNode::Untyped => UNTYPED,
        }
    }

    /// How a list of type `id` merges.
    pub fn list_kind(&self, id: TypeId) -> ListKind {
        match self.node(id) {
            TypeNode::List { kind, .. } => kind.clone(),
            TypeNode::Scalar
            | TypeNode::Struct { .. }
            | TypeNode::Map { .. }
            | TypeNode::Untyped => ListKind::Atomic,
        }
    }

    /// True when values of type `id` are replaced whole.
    pub fn is_atomic(&self, id: TypeId) -> bool {
        match self.node(id) {
            TypeNode::Scalar => true,
            TypeNode::Struct { atomic, .. } | TypeNode::Map { atomic, .. } => *atomic,
            TypeNode::List { kind, .. } => *kind == ListKind::Atomic,
            TypeNode::Untyped => false,
        }
    }
}

/// Builds models from OpenAPI v3 schemas whose `$ref`s point into a shared definitions map.
#[derive(Debug)]
pub struct ModelBuilder<'a> {
    definitions: &'a Map<String, Value>,
    nodes: Vec<TypeNode>,
    by_def: HashMap<String, TypeId>,
}

impl<'a> ModelBuilder<'a> {
    /// A builder over `definitions` (name -> schema, refs written `#/components/schemas/<name>`).
    pub fn new(definitions: &'a Map<String, Value>) -> Self {
        Self {
            definitions,
            nodes: vec![TypeNode::Untyped, TypeNode::Untyped],
            by_def: HashMap::new(),
        }
    }

    /// Builds the model of the definition `name`.
    pub fn build_definition(mut self, name: &str) -> TypeModel {
        let root = self.definition(name);
        self.finish(root)
    }

    /// Builds the model of a custom resource: `apiVersion`, `kind`, `metadata` (the built-in
    /// ObjectMeta) and the schema's other properties.
    pub fn build_custom_resource(mut self, schema: Option<&Value>) -> TypeModel {
        let root = self.push(TypeNode::Untyped);
        let mut fields = HashMap::new();
        fields.insert("apiVersion".to_owned(), self.push(TypeNode::Scalar));
        fields.insert("kind".to_owned(), self.push(TypeNode::Scalar));
        fields.insert("metadata".to_owned(), self.definition(OBJECT_META));
        if let Some(props) = schema
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object)
        {
            for (name, sub) in props {
                if !matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
                    let id = self.schema(sub, None, name);
                    fields.insert(name.clone(), id);
                }
            }
        }
        self.nodes[root] = TypeNode::Struct {
            fields,
            atomic: false,
        };
        self.finish(root)
    }

    fn finish(mut self, root: TypeId) -> TypeModel {
        // Make the requested root node id 0.
        self.nodes.swap(0, root);
        for node in &mut self.nodes {
            remap(node, root);
        }
        TypeModel { nodes: self.nodes }
    }

    fn push(&mut self, node: TypeNode) -> TypeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn definition(&mut self, name: &str) -> TypeId {
        if let Some(id) = self.by_def.get(name) {
            return *id;
        }
        let id = self.push(TypeNode::Untyped);
        self.by_def.insert(name.to_owned(), id);
        if let Some(schema) = self.definitions.get(name) {
            let node = self.object_node(schema, Some(name));
            self.nodes[id] = node;
        }
        id
    }

    fn schema(&mut self, schema: &Value, def: Option<&str>, field: &str) -> TypeId {
        if let Some(target) = reference(schema) {
            return self.definition(target);
        }
        let node = match schema.get("type").and_then(Value::as_str) {
            Some("array") => {
                let items = schema
                    .get("items")
                    .map_or(UNTYPED, |i| self.schema(i, None, ""));
                let kind = list_kind(schema, def, field);
                TypeNode::List { items, kind }
            }
            Some("object") | None if is_object_like(schema) => self.object_node(schema, None),
            _ if preserves_unknown(schema) => TypeNode::Untyped,
            _ => TypeNode::Scalar,
        };
        // A map value of a known definition field may be atomic by Kubernetes' metadata.
        let node = match (node, def) {
            (TypeNode::Map { values, .. }, Some(def)) if ATOMIC_MAPS.contains(&(def, field)) => {
                TypeNode::Map {
                    values,
                    atomic: true,
                }
            }
            (node, _) => node,
        };
        self.push(node)
    }

    fn object_node(&mut self, schema: &Value, def: Option<&str>) -> TypeNode {
        if let Some(target) = reference(schema) {
            let id = self.definition(target);
            return self.nodes[id].clone();
        }
        // schemars wraps referenced types with descriptions as `allOf: [{$ref}]`.
        if let Some(first) = schema
            .get("allOf")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return self.object_node(first, def);
        }
        let atomic = schema.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic");
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            let mut fields = HashMap::new();
            for (name, sub) in props {
                let id = self.schema(sub, def, name);
                fields.insert(name.clone(), id);
            }
            return TypeNode::Struct { fields, atomic };
        }
        match schema.get("additionalProperties") {
            Some(values) if values.is_object() => {
                let values = self.schema(values, None, "");
                TypeNode::Map { values, atomic }
            }
            _ if schema.get("type").and_then(Value::as_str) == Some("object")
                && !preserves_unknown(schema) =>
            {
                TypeNode::Map {
                    values: UNTYPED,
                    atomic,
                }
            }
            _ => TypeNode::Untyped,
        }
    }
}

fn remap(node: &mut TypeNode, root: TypeId) {
    let swap = |id: &mut TypeId| {
        if *id == root {
            *id = 0;
        } else if *id == 0 {
            *id = root;
        }
    };
    match node {
        TypeNode::Struct { fields, .. } => fields.values_mut().for_each(swap),
        TypeNode::Map { values, .. } => swap(values),
        TypeNode::List { items, .. } => swap(items),
        TypeNode::Scalar | TypeNode::Untyped => {}
    }
}

fn reference(schema: &Value) -> Option<&str> {
    let r = schema.get("$ref")?.as_str()?;
    Some(r.rsplit('/').next().unwrap_or(r))
}

fn is_object_like(schema: &Value) -> bool {
    schema.get("properties").is_some()
        || schema.get("additionalProperties").is_some()
        || schema.get("allOf").is_some()
        || schema.get("type").and_then(Value::as_str) == Some("object")
}

fn preserves_unknown(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

fn list_kind(schema: &Value, def: Option<&str>, field: &str) -> ListKind {
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => return ListKind::Set,
        Some("map") => {
            let keys = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|k| {
                    k.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            return ListKind::Map(keys);
        }
        Some(_) => return ListKind::Atomic,
        None => {}
    }
    let Some(def) = def else {
        return ListKind::Atomic;
    };
    if let Some((_, _, keys)) = LIST_MAPS.iter().find(|(d, f, _)| *d == def && *f == field) {
        return ListKind::Map(keys.iter().map(|k| (*k).to_owned()).collect());
    }
    if LIST_SETS.contains(&(def, field)) {
        return ListKind::Set;
    }
    ListKind::Atomic
}

/// The OpenAPI definition name of ObjectMeta.
pub const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// Kubernetes list-map fields of the built-in kinds served here: (definition, field, keys).
/// The key is also the strategic-merge-patch merge key.
pub const LIST_MAPS: &[(&str, &str, &[&str])] = &[
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        &["uid"],
    ),
    ("io.k8s.api.core.v1.PodSpec", "containers", &["name"]),
    ("io.k8s.api.core.v1.PodSpec", "initContainers", &["name"]),
    (
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        &["name"],
    ),
    ("io.k8s.api.core.v1.PodSpec", "volumes", &["name"]),
    ("io.k8s.api.core.v1.PodSpec", "hostAliases", &["ip"]),
    ("io.k8s.api.core.v1.PodSpec", "imagePullSecrets", &["name"]),
    ("io.k8s.api.core.v1.PodSpec", "resourceClaims", &["name"]),
    ("io.k8s.api.core.v1.PodSpec", "schedulingGates", &["name"]),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        &["topologyKey"],
    ),
    ("io.k8s.api.core.v1.Container", "env", &["name"]),
    ("io.k8s.api.core.v1.Container", "ports", &["containerPort"]),
    (
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        &["mountPath"],
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        &["devicePath"],
    ),
    ("io.k8s.api.core.v1.PodStatus", "conditions", &["type"]),
    ("io.k8s.api.core.v1.PodStatus", "podIPs", &["ip"]),
    ("io.k8s.api.core.v1.PodStatus", "hostIPs", &["ip"]),
    ("io.k8s.api.core.v1.NodeStatus", "conditions", &["type"]),
    ("io.k8s.api.core.v1.NodeStatus", "addresses", &["type"]),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        &["type"],
    ),
    ("io.k8s.api.core.v1.ServiceSpec", "ports", &["port"]),
    ("io.k8s.api.core.v1.ServiceStatus", "conditions", &["type"]),
    ("io.k8s.api.core.v1.ServiceAccount", "secrets", &["name"]),
    (
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        &["type"],
    ),
    (
        "io.k8s.api.apps.v1.DaemonSetStatus",
        "conditions",
        &["type"],
    ),
    (
        "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
        "conditions",
        &["type"],
    ),
    (
        "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration",
        "webhooks",
        &["name"],
    ),
    (
        "io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration",
        "webhooks",
        &["name"],
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus",
        "conditions",
        &["type"],
    ),
];

/// Kubernetes list-set fields of the built-in kinds served here.
pub const LIST_SETS: &[(&str, &str)] = &[
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
    ),
    ("io.k8s.api.core.v1.NodeSpec", "podCIDRs"),
];

/// Kubernetes atomic-map fields of the built-in kinds served here.
pub const ATOMIC_MAPS: &[(&str, &str)] = &[
    ("io.k8s.api.core.v1.PodSpec", "nodeSelector"),
    ("io.k8s.api.core.v1.ServiceSpec", "selector"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn definitions() -> Map<String, Value> {
        let defs = json!({
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {"type": "object", "properties": {
                "name": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "finalizers": {"type": "array", "items": {"type": "string"}}}},
            "io.k8s.api.core.v1.PodSpec": {"type": "object", "properties": {
                "containers": {"type": "array", "items": {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}},
                "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}}}},
            "io.k8s.api.core.v1.Container": {"type": "object", "properties": {
                "name": {"type": "string"}, "args": {"type": "array", "items": {"type": "string"}}}},
            "io.k8s.api.core.v1.Pod": {"type": "object", "properties": {
                "metadata": {"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]},
                "spec": {"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}}},
        });
        defs.as_object().unwrap().clone()
    }

    #[test]
    fn built_in_models_carry_kubernetes_list_metadata() {
        let defs = definitions();
        let model = ModelBuilder::new(&defs).build_definition("io.k8s.api.core.v1.Pod");
        let spec = model.field(model.root(), "spec");
        let containers = model.field(spec, "containers");
        assert_eq!(
            model.list_kind(containers),
            ListKind::Map(vec!["name".into()])
        );
        let args = model.field(model.items(containers), "args");
        assert_eq!(model.list_kind(args), ListKind::Atomic);
        assert!(model.is_atomic(model.field(spec, "nodeSelector")));
        let meta = model.field(model.root(), "metadata");
        assert_eq!(
            model.list_kind(model.field(meta, "finalizers")),
            ListKind::Set
        );
        assert!(!model.is_atomic(model.field(meta, "labels")));
    }

    #[test]
    fn custom_resource_models_follow_x_kubernetes_annotations() {
        let defs = definitions();
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port"],
                      "items": {"type": "object", "properties": {"port": {"type": "integer"}}}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "args": {"type": "array", "items": {"type": "string"}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}});
        let model = ModelBuilder::new(&defs).build_custom_resource(Some(&schema));
        let spec = model.field(model.root(), "spec");
        assert_eq!(
            model.list_kind(model.field(spec, "ports")),
            ListKind::Map(vec!["port".into()])
        );
        assert_eq!(model.list_kind(model.field(spec, "tags")), ListKind::Set);
        assert_eq!(model.list_kind(model.field(spec, "args")), ListKind::Atomic);
        assert_eq!(model.node(model.field(spec, "free")), &TypeNode::Untyped);
        let meta = model.field(model.root(), "metadata");
        assert_eq!(
            model.list_kind(model.field(meta, "finalizers")),
            ListKind::Set
        );
    }
}
