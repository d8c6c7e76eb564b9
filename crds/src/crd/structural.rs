//! A check that a CRD's `openAPIV3Schema` is *structural* and uses only what the Kubernetes API
//! server accepts in `apiextensions.k8s.io/v1`, so a bad schema fails a unit test here rather than
//! the `kubectl apply` of a user.
//!
//! The rules follow the API server's CRD validation (apiextensions-apiserver): every node has a
//! `type` (unless it is `x-kubernetes-int-or-string` or keeps unknown fields), no `$ref` or
//! `definitions`, arrays have one `items` schema, `properties` and `additionalProperties` are not
//! both set, `additionalProperties: false` and `uniqueItems: true` are refused,
//! `x-kubernetes-preserve-unknown-fields` is only ever `true`, logical junctors (`allOf`, `anyOf`,
//! `oneOf`, `not`) add no types, defaults, descriptions or nullability, `metadata` at the root
//! constrains nothing, and only the formats the API server knows are used.
//! The embedded API server of this project applies the same function.

use serde_json::Value;

/// Keywords the API server accepts in a CRD schema node.
const ALLOWED_KEYWORDS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "properties",
    "additionalProperties",
    "nullable",
    "example",
    "externalDocs",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
];

/// Formats the API server validates (others are refused by this check, so none slips through
/// unvalidated).
const KNOWN_FORMATS: &[&str] = &[
    "int32",
    "int64",
    "float",
    "double",
    "byte",
    "binary",
    "date",
    "date-time",
    "password",
    "uuid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "duration",
];

const TYPES: &[&str] = &["object", "array", "string", "integer", "number", "boolean"];

const JUNCTORS: &[&str] = &["allOf", "anyOf", "oneOf"];

/// Keywords a node under a logical junctor may not carry.
const FORBIDDEN_IN_JUNCTOR: &[&str] = &[
    "type",
    "default",
    "description",
    "title",
    "nullable",
    "additionalProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
];

/// Every violation found in `schema` (an `openAPIV3Schema` as JSON), each prefixed with its JSON
/// path. Empty when the schema would be accepted.
pub fn structural_violations(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check_node(schema, "", false, &mut out);
    if let Some(Value::Object(meta)) = schema.get("properties").and_then(|p| p.get("metadata")) {
        let extra: Vec<&String> = meta
            .keys()
            .filter(|k| !matches!(k.as_str(), "type" | "description"))
            .collect();
        if !extra.is_empty() {
            out.push(format!(
                ".properties.metadata: must only be {{type: object}}, has {extra:?}"
            ));
        }
    }
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        out.push("root: type must be object".to_string());
    }
    out
}

fn check_node(node: &Value, path: &str, in_junctor: bool, out: &mut Vec<String>) {
    let Value::Object(map) = node else {
        out.push(format!("{path}: schema must be an object, not {node}"));
        return;
    };
    for key in map.keys() {
        if !ALLOWED_KEYWORDS.contains(&key.as_str()) {
            out.push(format!("{path}: keyword {key} is not allowed"));
        }
    }
    if in_junctor {
        for key in FORBIDDEN_IN_JUNCTOR {
            if map.contains_key(*key) {
                out.push(format!(
                    "{path}: {key} must not be set inside allOf/anyOf/oneOf/not"
                ));
            }
        }
    }
    let preserve = map.get("x-kubernetes-preserve-unknown-fields");
    if let Some(value) = preserve
        && value != &Value::Bool(true)
    {
        out.push(format!(
            "{path}: x-kubernetes-preserve-unknown-fields must be true"
        ));
    }
    let int_or_string = map.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let typ = map.get("type").and_then(Value::as_str);
    match typ {
        Some(t) if !TYPES.contains(&t) => out.push(format!("{path}: unknown type {t}")),
        Some(_) => {
            if int_or_string {
                out.push(format!(
                    "{path}: x-kubernetes-int-or-string must have no type"
                ));
            }
        }
        None => {
            if !in_junctor && !int_or_string && preserve.is_none() {
                out.push(format!("{path}: type must not be empty"));
            }
        }
    }
    if let Some(format) = map.get("format").and_then(Value::as_str)
        && !KNOWN_FORMATS.contains(&format)
    {
        out.push(format!(
            "{path}: format {format} is not one the API server knows"
        ));
    }
    if map.get("uniqueItems") == Some(&Value::Bool(true)) {
        out.push(format!("{path}: uniqueItems must not be true"));
    }
    check_object_keywords(map, path, in_junctor, out);
    check_array_keywords(map, typ, path, in_junctor, out);
    for junctor in JUNCTORS {
        if let Some(Value::Array(items)) = map.get(*junctor) {
            for (i, item) in items.iter().enumerate() {
                check_node(item, &format!("{path}.{junctor}[{i}]"), true, out);
            }
        }
    }
    if let Some(not) = map.get("not") {
        check_node(not, &format!("{path}.not"), true, out);
    }
}

fn check_object_keywords(
    map: &serde_json::Map<String, Value>,
    path: &str,
    in_junctor: bool,
    out: &mut Vec<String>,
) {
    let properties = map.get("properties");
    let additional = map.get("additionalProperties");
    if properties.is_some() && additional.is_some() {
        out.push(format!(
            "{path}: properties and additionalProperties are mutually exclusive"
        ));
    }
    match additional {
        Some(Value::Bool(false)) => {
            out.push(format!(
                "{path}: additionalProperties: false is not allowed"
            ));
        }
        Some(Value::Bool(true)) | None => {}
        Some(schema) => check_node(
            schema,
            &format!("{path}.additionalProperties"),
            in_junctor,
            out,
        ),
    }
    if let Some(Value::Object(props)) = properties {
        for (name, prop) in props {
            check_node(prop, &format!("{path}.properties.{name}"), in_junctor, out);
        }
    } else if let Some(other) = properties {
        out.push(format!("{path}: properties must be an object, not {other}"));
    }
}

fn check_array_keywords(
    map: &serde_json::Map<String, Value>,
    typ: Option<&str>,
    path: &str,
    in_junctor: bool,
    out: &mut Vec<String>,
) {
    match map.get("items") {
        Some(Value::Array(_)) => out.push(format!("{path}: items must be a single schema")),
        Some(items) => check_node(items, &format!("{path}.items"), in_junctor, out),
        None => {
            if typ == Some("array") {
                out.push(format!("{path}: array must have items"));
            }
        }
    }
}

/// Rewrites what schemars emits but a CRD should not carry, in place, walking only schema
/// positions (so a property that happens to be called `default` is left alone):
///
/// * unsigned integer formats become `int64` (or `int32` for `uint8`/`uint16`) with `minimum: 0`
///   and, for 8 to 32 bits, the type's `maximum`, so an out-of-range value is refused at the door
///   instead of failing to deserialize in a controller;
/// * `default` values are dropped: serde already defaults missing fields, and the API server
///   would otherwise write every default (`applicationName: ""`, `size: 0`, ...) into stored
///   objects, so a minimal manifest would not round-trip unchanged.
pub fn normalize_schema(node: &mut Value) {
    let Value::Object(map) = node else {
        return;
    };
    map.remove("default");
    let replacement = match map.get("format").and_then(Value::as_str) {
        Some("uint8") => Some(("int32", Some(u64::from(u8::MAX)))),
        Some("uint16") => Some(("int32", Some(u64::from(u16::MAX)))),
        Some("uint32") => Some(("int64", Some(u64::from(u32::MAX)))),
        Some("uint64" | "uint") => Some(("int64", None)),
        _ => None,
    };
    if let Some((format, maximum)) = replacement {
        map.insert("format".into(), Value::from(format));
        map.insert("minimum".into(), Value::from(0));
        if let Some(maximum) = maximum {
            map.insert("maximum".into(), Value::from(maximum));
        }
    }
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        props.values_mut().for_each(normalize_schema);
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(child) = map.get_mut(key) {
            normalize_schema(child);
        }
    }
    for junctor in JUNCTORS {
        if let Some(Value::Array(items)) = map.get_mut(*junctor) {
            items.iter_mut().for_each(normalize_schema);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_typed_schema_is_structural() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"a": {"type": "string"}}},
            "m": {"type": "object", "additionalProperties": {"type": "string"}},
            "l": {"type": "array", "items": {"type": "integer", "format": "int64"}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        }});
        assert_eq!(structural_violations(&schema), Vec::<String>::new());
    }

    #[test]
    fn untyped_nodes_refs_and_bad_junctors_are_reported() {
        let schema = json!({"type": "object", "properties": {
            "a": {"description": "no type"},
            "b": {"$ref": "#/definitions/X"},
            "c": {"type": "array"},
            "d": {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}},
            "e": {"type": "object", "oneOf": [{"type": "object"}]},
            "f": {"type": "integer", "format": "uint32"},
        }});
        let violations = structural_violations(&schema);
        for needle in [
            ".properties.a: type must not be empty",
            ".properties.b: keyword $ref is not allowed",
            ".properties.c: array must have items",
            ".properties.d: properties and additionalProperties are mutually exclusive",
            ".properties.e.oneOf[0]: type must not be set",
            ".properties.f: format uint32",
        ] {
            assert!(
                violations.iter().any(|v| v.starts_with(needle)),
                "missing {needle:?} in {violations:#?}"
            );
        }
    }

    #[test]
    fn unsigned_formats_become_bounded_int64_and_defaults_are_dropped() {
        let mut schema = json!({"type": "object", "properties": {
            "default": {"type": "integer", "format": "uint32", "minimum": 0, "default": 0},
        }});
        normalize_schema(&mut schema);
        assert_eq!(
            schema,
            json!({"type": "object", "properties": {
                "default": {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295u64},
            }})
        );
    }
}
