use super::*;
use crate::registry::Registry;
use std::sync::Arc;

const NOW: &str = "2026-11-24T00:00:00Z";

fn deployment_model() -> Arc<TypeModel> {
    Registry::new()
        .get("apps", "v1", "deployments")
        .unwrap()
        .model
        .clone()
}

fn deploy(replicas: i64, labels: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": "default", "labels": labels},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"spec": {"containers": [{"name": "main", "image": "i:1"}]}}}})
}

/// Server-side apply of `applied` by `manager` onto `live` (a Deployment, main resource).
fn apply_as(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, Vec<Conflict>> {
    apply(
        live,
        applied,
        manager,
        force,
        "apps/v1",
        Scope::Main,
        &deployment_model(),
        NOW,
    )
}

fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["manager"].as_str().unwrap().to_owned(),
                        e["operation"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn apply_creates_and_records_the_applied_fields() {
    let obj = apply_as(None, &deploy(3, json!({"app": "web"})), "helm", false).unwrap();
    assert_eq!(
        managers(&obj),
        vec![("helm".to_owned(), "Apply".to_owned())]
    );
    let fields = &obj["metadata"]["managedFields"][0]["fieldsV1"];
    assert_eq!(fields["f:spec"]["f:replicas"], json!({}));
    assert_eq!(fields["f:metadata"]["f:labels"]["f:app"], json!({}));
    let container =
        &fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"main\"}"];
    assert_eq!(container, &json!({".": {}, "f:image": {}, "f:name": {}}));
    let again = apply_as(Some(&obj), &deploy(3, json!({"app": "web"})), "helm", false).unwrap();
    assert_eq!(
        again, obj,
        "re-applying the same configuration changes nothing"
    );
}

#[test]
fn changing_a_field_another_manager_owns_conflicts_unless_forced() {
    let model = deployment_model();
    let applied = apply_as(None, &deploy(3, json!({})), "helm", false).unwrap();
    let mut scaled = applied.clone();
    scaled["spec"]["replicas"] = json!(5);
    track_update(
        Some(&applied),
        &mut scaled,
        "kubectl",
        "apps/v1",
        Scope::Main,
        &model,
        NOW,
    );
    assert_eq!(
        managers(&scaled),
        vec![
            ("helm".into(), "Apply".into()),
            ("kubectl".into(), "Update".into())
        ]
    );
    let conflicts = apply_as(Some(&scaled), &deploy(3, json!({})), "helm", false).unwrap_err();
    assert_eq!(
        conflicts,
        vec![Conflict {
            manager: "kubectl".into(),
            api_version: "apps/v1".into(),
            field: ".spec.replicas".into()
        }]
    );
    assert_eq!(
        conflict_message(&conflicts),
        "Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas"
    );
    let forced = apply_as(Some(&scaled), &deploy(3, json!({})), "helm", true).unwrap();
    assert_eq!(forced["spec"]["replicas"], 3);
    assert_eq!(
        managers(&forced),
        vec![("helm".into(), "Apply".into())],
        "kubectl lost its only field"
    );
    // Applying the value another manager already set is shared ownership, not a conflict.
    let same = apply(
        Some(&scaled),
        &{
            let mut d = deploy(5, json!({}));
            d["spec"]["replicas"] = json!(5);
            d
        },
        "other",
        false,
        "apps/v1",
        Scope::Main,
        &model,
        NOW,
    );
    assert!(same.is_ok());
}

#[test]
fn fields_an_applier_stops_applying_are_removed_unless_someone_else_owns_them() {
    let a = apply_as(
        None,
        &deploy(1, json!({"a": "1", "shared": "x"})),
        "alice",
        false,
    )
    .unwrap();
    let b = apply_as(Some(&a), &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"shared": "x", "b": "2"}}}), "bob", false).unwrap();
    let a2 = apply_as(Some(&b), &deploy(1, json!({})), "alice", false).unwrap();
    assert_eq!(a2["metadata"]["labels"], json!({"shared": "x", "b": "2"}));
}

#[test]
fn keyed_list_items_of_different_appliers_coexist() {
    let base = apply_as(None, &deploy(1, json!({})), "alice", false).unwrap();
    let side = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "side", "image": "s:1"}]}}}});
    let both = apply_as(Some(&base), &side, "bob", false).unwrap();
    let names: Vec<&str> = both["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["main", "side"]);
    let mut without_main = deploy(1, json!({}));
    without_main["spec"]["template"]["spec"]["containers"] = json!([]);
    let after = apply_as(Some(&both), &without_main, "alice", false).unwrap();
    let names: Vec<&str> = after["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["side"]);
}

#[test]
fn updates_move_ownership_to_the_writer_and_drop_removed_fields() {
    let model = deployment_model();
    let mut created = deploy(1, json!({"a": "1"}));
    track_update(
        None,
        &mut created,
        "kubectl-create",
        "apps/v1",
        Scope::Main,
        &model,
        NOW,
    );
    assert_eq!(
        managers(&created),
        vec![("kubectl-create".into(), "Update".into())]
    );
    let mut labelled = created.clone();
    labelled["metadata"]["labels"] = json!({"b": "2"});
    track_update(
        Some(&created),
        &mut labelled,
        "kubectl-label",
        "apps/v1",
        Scope::Main,
        &model,
        NOW,
    );
    let entries = labelled["metadata"]["managedFields"].as_array().unwrap();
    assert!(
        entries[0]["fieldsV1"]["f:metadata"].is_null(),
        "label a was removed, so nobody owns it"
    );
    assert_eq!(
        entries[1]["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:b": {}}}})
    );
}

#[test]
fn field_sets_round_trip_through_fields_v1() {
    let json = json!({"f:metadata": {"f:labels": {".": {}, "f:a": {}}}, "f:spec": {"f:list": {"k:{\"name\":\"x\"}": {".": {}, "f:v": {}}}}});
    assert_eq!(FieldSet::from_json(&json).to_json(), json);
}
