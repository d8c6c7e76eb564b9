//! The three non-apply patch types: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and
//! Kubernetes' strategic merge patch (built-in kinds only), including its `$patch`,
//! `$retainKeys`, `$setElementOrder/` and `$deleteFromPrimitiveList/` directives.

use serde_json::{Map, Value};

use crate::typemodel::{ListKind, TypeId, TypeModel};

/// Patch content types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// Maps a Content-Type (parameters ignored).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        match content_type.split(';').next().unwrap_or_default().trim() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }
}

/// Applies an RFC 6902 JSON patch.
///
/// # Errors
/// A malformed patch or a failed operation (including `test`).
pub fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), String> {
    let patch: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| format!("the JSON patch is malformed: {e}"))?;
    json_patch::patch(doc, &patch).map_err(|e| e.to_string())
}

/// Applies an RFC 7386 JSON merge patch.
pub fn merge_patch(doc: &mut Value, patch: &Value) {
    json_patch::merge(doc, patch);
}

/// Applies a strategic merge patch to `doc` of type `ty`.
///
/// # Errors
/// A malformed directive.
pub fn strategic_merge(
    doc: &mut Value,
    patch: &Value,
    model: &TypeModel,
    ty: TypeId,
) -> Result<(), String> {
    let Some(patch_map) = patch.as_object() else {
        *doc = patch.clone();
        return Ok(());
    };
    match patch_map.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *doc = strip_directives(patch);
            return Ok(());
        }
        Some("delete") => {
            *doc = Value::Object(Map::new());
            return Ok(());
        }
        Some(other) if other != "merge" => return Err(format!("unknown patch type: {other}")),
        _ => {}
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let Some(doc_map) = doc.as_object_mut() else {
        return Ok(());
    };
    let mut orders = Vec::new();
    for (key, pv) in patch_map {
        if let Some(field) = key.strip_prefix("$setElementOrder/") {
            orders.push((field.to_owned(), pv.clone()));
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(remove)) = (
                doc_map.get_mut(field).and_then(Value::as_array_mut),
                pv.as_array(),
            ) {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if key == "$patch" || key == "$retainKeys" {
            continue;
        }
        if pv.is_null() {
            doc_map.shift_remove(key);
            continue;
        }
        let field_ty = model.field(ty, key);
        match (doc_map.get_mut(key), pv) {
            (Some(existing @ Value::Object(_)), Value::Object(_)) if !model.is_atomic(field_ty) => {
                strategic_merge(existing, pv, model, field_ty)?;
            }
            (Some(Value::Array(existing)), Value::Array(items)) => {
                merge_list(existing, items, model, field_ty)?;
            }
            (_, Value::Array(items)) => {
                let mut fresh = Vec::new();
                merge_list(&mut fresh, items, model, field_ty)?;
                doc_map.insert(key.clone(), Value::Array(fresh));
            }
            _ => {
                doc_map.insert(key.clone(), strip_directives(pv));
            }
        }
    }
    if let Some(retain) = patch_map.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        doc_map.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (field, order) in orders {
        let field_ty = model.field(ty, &field);
        if let (Some(list), Some(order)) = (
            doc_map.get_mut(&field).and_then(Value::as_array_mut),
            order.as_array(),
        ) {
            apply_order(list, order, &model.list_kind(field_ty));
        }
    }
    Ok(())
}

fn merge_list(
    existing: &mut Vec<Value>,
    items: &[Value],
    model: &TypeModel,
    ty: TypeId,
) -> Result<(), String> {
    match model.list_kind(ty) {
        ListKind::Map(keys) => {
            let Some(merge_key) = keys.first() else {
                *existing = items.iter().map(strip_directives).collect();
                return Ok(());
            };
            if items
                .iter()
                .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
            {
                *existing = items
                    .iter()
                    .filter(|i| i.get("$patch").is_none())
                    .map(strip_directives)
                    .collect();
                return Ok(());
            }
            let item_ty = model.items(ty);
            for item in items {
                let key = item.get(merge_key);
                let position = existing
                    .iter()
                    .position(|e| e.get(merge_key) == key && key.is_some());
                match (item.get("$patch").and_then(Value::as_str), position) {
                    (Some("delete"), Some(p)) => {
                        existing.remove(p);
                    }
                    (Some("delete"), None) => {}
                    (_, Some(p)) => strategic_merge(&mut existing[p], item, model, item_ty)?,
                    (_, None) => existing.push(strip_directives(item)),
                }
            }
        }
        ListKind::Set => {
            for item in items {
                if !existing.contains(item) {
                    existing.push(item.clone());
                }
            }
        }
        ListKind::Atomic => *existing = items.iter().map(strip_directives).collect(),
    }
    Ok(())
}

/// Reorders a list by `$setElementOrder` (items it names first, in its order).
fn apply_order(list: &mut [Value], order: &[Value], kind: &ListKind) {
    let rank = |item: &Value| -> usize {
        order
            .iter()
            .position(|o| match kind {
                ListKind::Map(keys) => keys
                    .first()
                    .is_some_and(|k| o.get(k).is_some() && o.get(k) == item.get(k)),
                ListKind::Set | ListKind::Atomic => o == item,
            })
            .unwrap_or(usize::MAX)
    };
    list.sort_by_key(rank);
}

/// Removes `$`-directives from a value that is inserted whole.
fn strip_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    fn pod_model() -> std::sync::Arc<TypeModel> {
        Registry::new().get("", "v1", "pods").unwrap().model.clone()
    }

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}, "finalizers": ["x"]},
               "spec": {"containers": [
                   {"name": "main", "image": "i:1", "env": [{"name": "A", "value": "1"}], "args": ["a", "b"]},
                   {"name": "side", "image": "s:1"}]}})
    }

    #[test]
    fn strategic_merge_merges_keyed_lists_and_replaces_atomic_ones() {
        let model = pod_model();
        let mut doc = pod();
        let patch = json!({"metadata": {"labels": {"b": null, "c": "3"}, "finalizers": ["y"]},
            "spec": {"containers": [{"name": "main", "image": "i:2", "env": [{"name": "B", "value": "2"}], "args": ["z"]}]}});
        strategic_merge(&mut doc, &patch, &model, model.root()).unwrap();
        assert_eq!(doc["metadata"]["labels"], json!({"a": "1", "c": "3"}));
        assert_eq!(doc["metadata"]["finalizers"], json!(["x", "y"]));
        let main = &doc["spec"]["containers"][0];
        assert_eq!(main["image"], "i:2");
        assert_eq!(
            main["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
        );
        assert_eq!(main["args"], json!(["z"]));
        assert_eq!(doc["spec"]["containers"][1]["name"], "side");
    }

    #[test]
    fn strategic_merge_directives_delete_replace_and_reorder() {
        let model = pod_model();
        let mut doc = pod();
        let patch = json!({
            "metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]},
            "spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "main"}],
                     "containers": [{"name": "main", "env": [{"$patch": "replace"}, {"name": "C", "value": "3"}]}]}});
        strategic_merge(&mut doc, &patch, &model, model.root()).unwrap();
        assert_eq!(doc["metadata"]["finalizers"], json!([]));
        assert_eq!(doc["spec"]["containers"][0]["name"], "side");
        assert_eq!(
            doc["spec"]["containers"][1]["env"],
            json!([{"name": "C", "value": "3"}])
        );
        let delete = json!({"spec": {"containers": [{"name": "side", "$patch": "delete"}]}});
        strategic_merge(&mut doc, &delete, &model, model.root()).unwrap();
        assert_eq!(doc["spec"]["containers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn json_and_merge_patches_follow_their_rfcs() {
        let mut doc = json!({"a": 1, "b": {"c": 2}});
        json_patch(&mut doc, &json!([{"op": "test", "path": "/a", "value": 1}, {"op": "replace", "path": "/b/c", "value": 3}])).unwrap();
        assert_eq!(doc, json!({"a": 1, "b": {"c": 3}}));
        assert!(json_patch(&mut doc, &json!([{"op": "test", "path": "/a", "value": 9}])).is_err());
        assert!(json_patch(&mut doc, &json!({"op": "add"})).is_err());
        merge_patch(&mut doc, &json!({"a": null, "b": {"d": 4}}));
        assert_eq!(doc, json!({"b": {"c": 3, "d": 4}}));
    }
}
