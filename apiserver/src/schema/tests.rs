use super::*;
use serde_json::json;

fn job_schema() -> Structural {
    Structural::new(json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["owner"],
                "properties": {
                    "owner": {"type": "string", "pattern": "^.+@.+$"},
                    "size": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1},
                    "tier": {"type": "string", "enum": ["Critical", "Flex"], "default": "Flex"},
                    "name": {"type": "string", "minLength": 1, "maxLength": 8},
                    "tags": {"type": "array", "maxItems": 2, "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                    "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port"],
                              "items": {"type": "object", "properties": {"port": {"type": "integer"}}}},
                    "env": {"type": "object", "additionalProperties": {"type": "string"}},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "quantity": {"x-kubernetes-int-or-string": true},
                    "limits": {"type": "object", "default": {}, "properties": {"cpu": {"type": "number", "default": 1.0}}},
                    "note": {"type": "string", "nullable": true}
                }
            },
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }
    }))
    .unwrap()
}

fn errors_of(spec: Value) -> Vec<String> {
    let schema = job_schema();
    let mut obj = json!({"apiVersion": "titus.dev/v1alpha1", "kind": "TitusJob", "metadata": {"name": "j"}, "spec": spec});
    schema.prune(&mut obj);
    schema.default(&mut obj);
    schema
        .validate(&obj)
        .iter()
        .map(FieldError::message)
        .collect()
}

#[test]
fn each_structural_rule_reports_the_field_like_kubernetes() {
    let cases: &[(&str, Value, &str)] = &[
        ("missing required", json!({}), "spec.owner: Required value"),
        (
            "wrong type",
            json!({"owner": "a@b", "size": "ten"}),
            "spec.size: Invalid value: \"ten\": spec.size in body must be of type integer: \"string\"",
        ),
        (
            "below minimum",
            json!({"owner": "a@b", "size": 0}),
            "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1",
        ),
        (
            "above maximum",
            json!({"owner": "a@b", "size": 1001}),
            "spec.size: Invalid value: 1001: spec.size in body should be less than or equal to 1000",
        ),
        (
            "not in enum",
            json!({"owner": "a@b", "tier": "Gold"}),
            "spec.tier: Unsupported value: \"Gold\": supported values: \"Critical\", \"Flex\"",
        ),
        (
            "pattern",
            json!({"owner": "nobody"}),
            "spec.owner: Invalid value: \"nobody\": spec.owner in body should match '^.+@.+$'",
        ),
        (
            "too short",
            json!({"owner": "a@b", "name": ""}),
            "spec.name: Invalid value: \"\": spec.name in body should be at least 1 chars long",
        ),
        (
            "too long",
            json!({"owner": "a@b", "name": "abcdefghi"}),
            "spec.name: Too long: may not be more than 8 bytes",
        ),
        (
            "too many items",
            json!({"owner": "a@b", "tags": ["a", "b", "c"]}),
            "spec.tags: Too many: 3: must have at most 2 items",
        ),
        (
            "duplicate set item",
            json!({"owner": "a@b", "tags": ["a", "a"]}),
            "spec.tags[1]: Duplicate value: \"a\"",
        ),
        (
            "duplicate map key",
            json!({"owner": "a@b", "ports": [{"port": 80}, {"port": 80}]}),
            "spec.ports[1]: Duplicate value: map[string]interface {}{\"port\":80}",
        ),
        (
            "map value type",
            json!({"owner": "a@b", "env": {"A": 1}}),
            "spec.env.A: Invalid value: 1: spec.env.A in body must be of type string: \"integer\"",
        ),
        (
            "int or string",
            json!({"owner": "a@b", "quantity": true}),
            "spec.quantity: Invalid value: true: spec.quantity in body must be of type int-or-string: \"boolean\"",
        ),
    ];
    for (name, spec, expected) in cases {
        let errors = errors_of(spec.clone());
        assert_eq!(errors, vec![expected.to_string()], "case {name}");
    }
}

#[test]
fn valid_objects_pass_and_integral_floats_count_as_integers() {
    assert!(
        errors_of(json!({"owner": "a@b", "size": 3.0, "quantity": "500m", "note": null}))
            .is_empty()
    );
    assert!(errors_of(json!({"owner": "a@b", "quantity": 2})).is_empty());
}

#[test]
fn defaults_fill_missing_fields_and_nested_defaults() {
    let schema = job_schema();
    let mut obj = json!({"spec": {"owner": "a@b", "size": null}});
    schema.default(&mut obj);
    assert_eq!(
        obj["spec"]["size"], 1,
        "null of a non-nullable field is dropped, then defaulted"
    );
    assert_eq!(obj["spec"]["tier"], "Flex");
    assert_eq!(obj["spec"]["limits"], json!({"cpu": 1.0}));
}

#[test]
fn pruning_drops_unknown_fields_and_reports_their_paths() {
    let schema = job_schema();
    let mut obj = json!({
        "apiVersion": "titus.dev/v1alpha1", "kind": "TitusJob",
        "metadata": {"name": "j", "bogus": 1},
        "spec": {"owner": "a@b", "extra": true, "free": {"anything": {"goes": 1}},
                 "ports": [{"port": 1, "junk": 2}], "env": {"A": "b"}},
        "status": {"whatever": 1},
        "top": 1
    });
    let pruned = schema.prune(&mut obj);
    assert_eq!(
        pruned,
        vec!["metadata.bogus", "spec.extra", "spec.ports[0].junk", "top"]
    );
    assert_eq!(obj["spec"]["free"], json!({"anything": {"goes": 1}}));
    assert_eq!(obj["spec"]["env"], json!({"A": "b"}));
    assert_eq!(obj["status"], json!({"whatever": 1}));
    assert_eq!(obj["metadata"], json!({"name": "j"}));
}

#[test]
fn schemas_must_be_structural() {
    let mut errors = Vec::new();
    check_structural(
        &json!({"type": "object", "properties": {"a": {"description": "untyped"}, "b": {"$ref": "#/x", "type": "string"}}}),
        "spec.validation.openAPIV3Schema",
        &mut errors,
    );
    let messages: Vec<String> = errors.iter().map(FieldError::message).collect();
    assert_eq!(
        messages,
        vec![
            "spec.validation.openAPIV3Schema.properties[a].type: Required value: must not be empty for specified object fields",
            "spec.validation.openAPIV3Schema.properties[b].$ref: Forbidden: $ref is not allowed in a structural schema",
        ]
    );
    assert!(Structural::new(json!({"type": "string", "pattern": "("})).is_err());
}
