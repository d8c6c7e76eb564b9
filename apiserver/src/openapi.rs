//! OpenAPI documents: v3 per group version (what `kubectl apply` uses to learn that the server
//! validates fields itself, and what `kubectl explain` renders) and a v2 document.
//!
//! Built-in schemas come from k8s-openapi's schemars output; custom resources embed their
//! CRD's structural schema. Every kind's schema carries `x-kubernetes-group-version-kind`,
//! every PATCH operation its GVK and the `fieldValidation` parameter.

use serde_json::{Map, Value, json};

use crate::registry::{Registry, ResourceDef, Source};

const OBJECT_META_REF: &str =
    "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// The schema name of a kind in `components.schemas`.
pub fn schema_name(def: &ResourceDef) -> String {
    match &def.source {
        Source::Builtin(kind) => kind.definition.to_owned(),
        Source::Custom { .. } => {
            let reversed: Vec<&str> = def.group.split('.').rev().collect();
            format!("{}.{}.{}", reversed.join("."), def.version, def.kind)
        }
    }
}

fn gvk(def: &ResourceDef) -> Value {
    json!({"group": def.group, "version": def.version, "kind": def.kind})
}

/// The path of a group version in `/openapi/v3`: `api/v1` or `apis/<group>/<version>`.
pub fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: the index of group-version documents.
pub fn v3_index(registry: &Registry) -> Value {
    let generation = registry.generation();
    let mut paths = Map::new();
    for (group, versions) in registry.groups() {
        for version in versions {
            let path = gv_path(&group, &version);
            let hash = format!("{:016X}", fnv(&format!("{path}/{generation}")));
            paths.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
            );
        }
    }
    json!({"paths": paths})
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn custom_schema(def: &ResourceDef) -> Value {
    let mut schema = def
        .schema()
        .map(|s| s.schema().clone())
        .unwrap_or_else(|| json!({"type": "object"}));
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert("apiVersion".into(), json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}));
        props.insert("kind".into(), json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}));
        props.insert("metadata".into(), json!({"allOf": [{"$ref": OBJECT_META_REF}], "description": "Standard object's metadata."}));
    }
    schema
}

fn kind_schema(registry: &Registry, def: &ResourceDef) -> Value {
    let mut schema = match &def.source {
        Source::Builtin(kind) => registry
            .definitions()
            .get(kind.definition)
            .cloned()
            .unwrap_or_else(|| json!({})),
        Source::Custom { .. } => custom_schema(def),
    };
    schema["x-kubernetes-group-version-kind"] = json!([gvk(def)]);
    schema
}

fn operation(def: &ResourceDef, verb: &str, schema_ref: &str) -> Value {
    let mut op = json!({
        "operationId": format!("{verb}{}", def.kind),
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": gvk(def),
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": schema_ref}}}}},
    });
    let query = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
    match verb {
        "patch" => {
            op["parameters"] = json!([
                query("dryRun"),
                query("fieldManager"),
                query("fieldValidation"),
                query("force")
            ]);
            let mut content = Map::new();
            for media in [
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
            ] {
                content.insert(media.into(), json!({"schema": {"type": "object"}}));
            }
            op["requestBody"] = json!({"content": content, "required": true});
        }
        "put" | "post" => {
            op["parameters"] = json!([
                query("dryRun"),
                query("fieldManager"),
                query("fieldValidation")
            ]);
            op["requestBody"] = json!({"content": {"application/json": {"schema": {"$ref": schema_ref}}}, "required": true});
        }
        _ => {}
    }
    op
}

fn paths_for(def: &ResourceDef, schema_ref: &str, paths: &mut Map<String, Value>) {
    let prefix = format!("/{}", gv_path(&def.group, &def.version));
    let (collection, item) = if def.namespaced {
        (
            format!("{prefix}/namespaces/{{namespace}}/{}", def.plural),
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", def.plural),
        )
    } else {
        (
            format!("{prefix}/{}", def.plural),
            format!("{prefix}/{}/{{name}}", def.plural),
        )
    };
    paths.insert(collection, json!({"get": operation(def, "list", schema_ref), "post": operation(def, "post", schema_ref)}));
    paths.insert(item.clone(), json!({
        "get": operation(def, "get", schema_ref), "put": operation(def, "put", schema_ref),
        "patch": operation(def, "patch", schema_ref), "delete": operation(def, "delete", schema_ref)}));
    if def.status {
        paths.insert(
            format!("{item}/status"),
            json!({
            "get": operation(def, "get", schema_ref), "put": operation(def, "put", schema_ref),
            "patch": operation(def, "patch", schema_ref)}),
        );
    }
    if def.namespaced {
        paths.insert(
            format!("{prefix}/{}", def.plural),
            json!({"get": operation(def, "list", schema_ref)}),
        );
    }
}

/// `/openapi/v3/<gv path>`, if the group version is served.
pub fn v3_document(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let defs = registry.in_group_version(group, version);
    if defs.is_empty() {
        return None;
    }
    let mut schemas = (**registry.definitions()).clone();
    let mut paths = Map::new();
    for def in &defs {
        let name = schema_name(def);
        schemas.insert(name.clone(), kind_schema(registry, def));
        paths_for(def, &format!("#/components/schemas/{name}"), &mut paths);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// `/openapi/v2`: every kind in one Swagger 2.0 document.
pub fn v2_document(registry: &Registry) -> Value {
    let mut definitions = (**registry.definitions()).clone();
    let mut paths = Map::new();
    for def in registry.all() {
        let name = schema_name(&def);
        definitions.insert(name.clone(), kind_schema(registry, &def));
        paths_for(&def, &format!("#/definitions/{name}"), &mut paths);
    }
    let mut doc = json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.33.0"},
                         "paths": paths, "definitions": definitions});
    rewrite_refs(&mut doc);
    doc
}

fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref")
                && let Some(name) = r.strip_prefix("#/components/schemas/")
            {
                *r = format!("#/definitions/{name}");
            }
            map.values_mut().for_each(rewrite_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_documents_declare_field_validation_on_patch_with_the_gvk() {
        let registry = Registry::new();
        let index = v3_index(&registry);
        assert!(
            index["paths"]["api/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/api/v1?hash=")
        );
        let doc = v3_document(&registry, "", "v1").unwrap();
        let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "ConfigMap"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        let cm = &doc["components"]["schemas"]["io.k8s.api.core.v1.ConfigMap"];
        assert_eq!(
            cm["x-kubernetes-group-version-kind"][0]["kind"],
            "ConfigMap"
        );
        assert!(
            doc["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
                .is_object()
        );
    }

    #[test]
    fn custom_resource_schema_names_follow_kubernetes() {
        let registry = Registry::new();
        let crd = json!({"metadata": {"name": "titusjobs.titus.dev"}, "spec": {"group": "titus.dev", "scope": "Namespaced",
            "names": {"plural": "titusjobs", "kind": "TitusJob"},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object"}}}}}]}});
        let defs = crate::crd::resource_defs(&crd, &registry).unwrap();
        assert_eq!(schema_name(&defs[0]), "dev.titus.v1alpha1.TitusJob");
        let v2 = v2_document(&registry);
        assert!(!v2.to_string().contains("#/components/schemas/"));
    }
}
