//! CustomResourceDefinitions: validating them, turning their served versions into
//! [`ResourceDef`]s, and the status (`NamesAccepted`, `Established`, `Terminating`) the API
//! server maintains.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::builtin::ScalePaths;
use crate::error::FieldError;
use crate::meta;
use crate::registry::{PrinterColumn, Registry, ResourceDef, Source};
use crate::schema::{Structural, check_structural};

/// Finalizer the server puts on every CRD so its custom resources are deleted first.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Strips the leading dot of a CRD JSON path (`.spec.replicas` -> `spec.replicas`).
fn dotless(path: &str) -> String {
    path.trim_start_matches('.').to_owned()
}

/// Validates a CRD the way the apiextensions API server does (the parts that matter here).
pub fn validate(crd: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let group = str_at(crd, "/spec/group");
    let plural = str_at(crd, "/spec/names/plural");
    let name = meta::name(crd);
    if group.is_empty() {
        errors.push(FieldError::required("spec.group"));
    } else if !group.contains('.') {
        errors.push(FieldError::invalid(
            "spec.group",
            &json!(group),
            "should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() {
        errors.push(FieldError::required("spec.names.plural"));
    }
    if str_at(crd, "/spec/names/kind").is_empty() {
        errors.push(FieldError::required("spec.names.kind"));
    }
    if name != format!("{plural}.{group}") {
        errors.push(FieldError::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group".to_string(),
        ));
    }
    let scope = str_at(crd, "/spec/scope");
    if scope != "Namespaced" && scope != "Cluster" {
        errors.push(FieldError::new(
            crate::error::FieldErrorType::NotSupported,
            "spec.scope",
            format!("Unsupported value: {scope:?}: supported values: \"Cluster\", \"Namespaced\""),
        ));
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        errors.push(FieldError::required("spec.versions"));
    }
    let storage_count = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if !versions.is_empty() && storage_count != 1 {
        errors.push(FieldError::invalid(
            "spec.versions",
            &json!(versions.len()),
            "must have exactly one version marked as storage version",
        ));
    }
    for (i, version) in versions.iter().enumerate() {
        if let Some(schema) = version.pointer("/schema/openAPIV3Schema") {
            let path = format!("spec.versions[{i}].schema.openAPIV3Schema");
            check_structural(schema, &path, &mut errors);
        } else {
            errors.push(FieldError::required(format!(
                "spec.versions[{i}].schema.openAPIV3Schema"
            )));
        }
    }
    errors
}

/// The served resources of an established CRD.
///
/// # Errors
/// A schema whose patterns do not compile.
pub fn resource_defs(crd: &Value, registry: &Registry) -> Result<Vec<ResourceDef>, String> {
    let crd_name = meta::name(crd).to_owned();
    let names = crd.pointer("/spec/names").cloned().unwrap_or(Value::Null);
    let kind = str_at(&names, "/kind").to_owned();
    let plural = str_at(&names, "/plural").to_owned();
    let singular = match str_at(&names, "/singular") {
        "" => kind.to_lowercase(),
        s => s.to_owned(),
    };
    let list_kind = match str_at(&names, "/listKind") {
        "" => format!("{kind}List"),
        s => s.to_owned(),
    };
    let group = str_at(crd, "/spec/group").to_owned();
    let namespaced = str_at(crd, "/spec/scope") == "Namespaced";
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .map(|v| str_at(v, "/name").to_owned())
        .unwrap_or_default();
    let mut defs = Vec::new();
    for version in versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool) == Some(true))
    {
        let schema_value = version.pointer("/schema/openAPIV3Schema").cloned();
        let schema = match &schema_value {
            Some(s) => Some(Arc::new(Structural::new(s.clone())?)),
            None => None,
        };
        let preserve_unknown = schema_value
            .as_ref()
            .and_then(|s| s.get("x-kubernetes-preserve-unknown-fields"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let scale = version.pointer("/subresources/scale").map(|s| ScalePaths {
            spec_replicas: dotless(str_at(s, "/specReplicasPath")),
            status_replicas: dotless(str_at(s, "/statusReplicasPath")),
            label_selector: s
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .map(dotless),
        });
        let printer_columns = version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| PrinterColumn {
                        name: str_at(c, "/name").to_owned(),
                        type_: str_at(c, "/type").to_owned(),
                        format: str_at(c, "/format").to_owned(),
                        description: str_at(c, "/description").to_owned(),
                        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                        json_path: str_at(c, "/jsonPath").to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let field_labels = version
            .get("selectableFields")
            .and_then(Value::as_array)
            .map(|f| f.iter().map(|s| dotless(str_at(s, "/jsonPath"))).collect())
            .unwrap_or_default();
        let model = Arc::new(registry.custom_model(schema_value.as_ref()));
        defs.push(ResourceDef {
            group: group.clone(),
            version: str_at(version, "/name").to_owned(),
            kind: kind.clone(),
            list_kind: list_kind.clone(),
            plural: plural.clone(),
            singular: singular.clone(),
            namespaced,
            short_names: strings(names.get("shortNames")),
            categories: strings(names.get("categories")),
            status: version.pointer("/subresources/status").is_some(),
            scale,
            subresources: Vec::new(),
            storage: crd_name.clone(),
            storage_version: storage_version.clone(),
            source: Source::Custom {
                crd: crd_name.clone(),
                schema,
                preserve_unknown,
            },
            model,
            field_labels,
            printer_columns,
        });
    }
    Ok(defs)
}

/// Computes the status the server reports for a CRD. `names_conflict` names another resource
/// already serving the same plural in the group.
pub fn status(crd: &Value, names_conflict: Option<String>) -> Value {
    let now = meta::now_rfc3339();
    let names = crd
        .pointer("/spec/names")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let previous = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let since = |ty: &str, status: &str| {
        previous
            .iter()
            .find(|c| c["type"] == ty && c["status"] == status)
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(now))
    };
    let accepted = names_conflict.is_none();
    let mut conditions = vec![
        if accepted {
            json!({"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                   "message": "no conflicts found", "lastTransitionTime": since("NamesAccepted", "True")})
        } else {
            json!({"type": "NamesAccepted", "status": "False", "reason": "NameConflict",
                   "message": names_conflict.unwrap_or_default(), "lastTransitionTime": since("NamesAccepted", "False")})
        },
        if accepted {
            json!({"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                   "message": "the initial names have been accepted", "lastTransitionTime": since("Established", "True")})
        } else {
            json!({"type": "Established", "status": "False", "reason": "NotAccepted",
                   "message": "not all names are accepted", "lastTransitionTime": since("Established", "False")})
        },
    ];
    if meta::is_deleting(crd) {
        conditions.push(json!({"type": "Terminating", "status": "True", "reason": "InstanceDeletionInProgress",
            "message": "CustomResource deletion is in progress", "lastTransitionTime": since("Terminating", "True")}));
    }
    let mut accepted_names = names.clone();
    if let Some(map) = accepted_names.as_object_mut() {
        map.entry("singular")
            .or_insert_with(|| json!(str_at(&names, "/kind").to_lowercase()));
        map.entry("listKind")
            .or_insert_with(|| json!(format!("{}List", str_at(&names, "/kind"))));
    }
    let mut stored: Vec<String> = strings(crd.pointer("/status/storedVersions"));
    if let Some(storage) = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        })
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
        && !stored.iter().any(|s| s == storage)
    {
        stored.push(storage.to_owned());
    }
    json!({"conditions": conditions, "acceptedNames": if accepted { accepted_names } else { json!({"plural": "", "kind": ""}) },
           "storedVersions": stored})
}

/// True when the CRD's `Established` condition is true.
pub fn is_established(crd: &Value) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true,
                     "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                     "additionalPrinterColumns": [{"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}],
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}}}},
                    {"name": "v1beta1", "served": false, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object"}}}]}})
    }

    #[test]
    fn served_versions_become_resources_with_their_subresources() {
        let registry = Registry::new();
        let defs = resource_defs(&crd(), &registry).unwrap();
        assert_eq!(defs.len(), 1);
        let def = &defs[0];
        assert_eq!(
            (
                def.kind.as_str(),
                def.plural.as_str(),
                def.singular.as_str()
            ),
            ("Widget", "widgets", "widget")
        );
        assert!(def.status);
        assert_eq!(def.scale.as_ref().unwrap().spec_replicas, "spec.replicas");
        assert_eq!(def.printer_columns[0].json_path, ".spec.replicas");
        assert_eq!(def.storage, "widgets.example.com");
    }

    #[test]
    fn crds_are_validated_and_get_established() {
        assert!(validate(&crd()).is_empty());
        let mut bad = crd();
        bad["spec"]["group"] = json!("nodots");
        bad["spec"]["versions"][0]["storage"] = json!(false);
        let messages: Vec<String> = validate(&bad).iter().map(FieldError::message).collect();
        assert!(
            messages.iter().any(|m| m.starts_with("spec.group")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("exactly one version")),
            "{messages:?}"
        );
        let mut with_status = crd();
        with_status["status"] = status(&crd(), None);
        assert!(is_established(&with_status));
        assert_eq!(with_status["status"]["storedVersions"], json!(["v1"]));
        assert_eq!(
            with_status["status"]["acceptedNames"]["listKind"],
            "WidgetList"
        );
    }
}
