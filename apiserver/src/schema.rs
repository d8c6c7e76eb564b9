//! Structural schemas of custom resources: pruning, defaulting and validation, as the
//! Kubernetes API server applies them to custom resources.
//!
//! Order on every write (as Kubernetes): prune unknown fields -> drop nulls of non-nullable
//! fields -> apply defaults -> validate. Unknown-field paths are reported so the request's
//! `fieldValidation` (Strict/Warn/Ignore) can decide what to do with them.

use std::collections::HashMap;

use regex::Regex;
use serde_json::{Map, Value};

use crate::error::{FieldError, FieldErrorType, render};

/// A CRD version's `openAPIV3Schema`, with its regular expressions compiled once.
#[derive(Debug, Clone)]
pub struct Structural {
    schema: Value,
    patterns: HashMap<String, Regex>,
}

/// ObjectMeta fields kept when pruning `metadata`.
const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

impl Structural {
    /// Compiles a schema.
    ///
    /// # Errors
    /// A pattern that is not a valid regular expression, with its path.
    pub fn new(schema: Value) -> Result<Self, String> {
        let mut patterns = HashMap::new();
        collect_patterns(&schema, "", &mut patterns)?;
        Ok(Self { schema, patterns })
    }

    /// The schema itself.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Removes fields the schema does not know; returns their paths.
    /// `apiVersion`, `kind` and ObjectMeta fields of `metadata` are always kept at the root.
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        let mut pruned = Vec::new();
        if let Some(map) = obj.as_object_mut() {
            prune_embedded_root(map, &self.schema, "", &mut pruned);
        }
        pruned
    }

    /// Applies `default`s where fields are missing, after dropping nulls of non-nullable fields.
    pub fn default(&self, obj: &mut Value) {
        apply_defaults(obj, &self.schema);
    }

    /// Validates an object; `metadata`, `apiVersion` and `kind` are checked elsewhere.
    pub fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let (Some(map), Some(props)) = (
            obj.as_object(),
            self.schema.get("properties").and_then(Value::as_object),
        ) {
            for (name, sub) in props {
                if matches!(name.as_str(), "metadata" | "apiVersion" | "kind") {
                    continue;
                }
                if let Some(value) = map.get(name) {
                    self.check(value, sub, name, &mut errors);
                }
            }
            for req in required(&self.schema) {
                if !matches!(req, "metadata" | "apiVersion" | "kind") && !map.contains_key(req) {
                    errors.push(FieldError::required(req));
                }
            }
        }
        errors
    }

    fn check(&self, value: &Value, schema: &Value, path: &str, errors: &mut Vec<FieldError>) {
        if value.is_null() {
            if !flag(schema, "nullable") {
                let expected = schema
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("object");
                errors.push(FieldError::invalid(
                    path,
                    value,
                    format!("{path} in body must be of type {expected}: \"null\""),
                ));
            }
            return;
        }
        if !self.check_type(value, schema, path, errors) {
            return;
        }
        self.check_value(value, schema, path, errors);
        match value {
            Value::Object(map) => self.check_object(map, schema, path, errors),
            Value::Array(items) => self.check_array(items, schema, path, errors),
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
        }
    }

    /// False when the value has the wrong type (then nothing else is checked).
    fn check_type(
        &self,
        value: &Value,
        schema: &Value,
        path: &str,
        errors: &mut Vec<FieldError>,
    ) -> bool {
        if flag(schema, "x-kubernetes-int-or-string") {
            if value.is_string() || is_integer(value) {
                return true;
            }
            errors.push(FieldError::invalid(
                path,
                value,
                format!(
                    "{path} in body must be of type int-or-string: {:?}",
                    type_name(value)
                ),
            ));
            return false;
        }
        let Some(expected) = schema.get("type").and_then(Value::as_str) else {
            return true;
        };
        let ok = match expected {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => is_integer(value),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            _ => true,
        };
        if !ok {
            errors.push(FieldError::invalid(
                path,
                value,
                format!(
                    "{path} in body must be of type {expected}: {:?}",
                    type_name(value)
                ),
            ));
        }
        ok
    }

    /// Value validations: enum, bounds, lengths, pattern, format, combinators.
    fn check_value(&self, value: &Value, schema: &Value, path: &str, errors: &mut Vec<FieldError>) {
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            let list = allowed.iter().map(render).collect::<Vec<_>>().join(", ");
            errors.push(FieldError::new(
                FieldErrorType::NotSupported,
                path,
                format!(
                    "Unsupported value: {}: supported values: {list}",
                    render(value)
                ),
            ));
        }
        if let Some(n) = value.as_f64() {
            check_number(n, value, schema, path, errors);
        }
        if let Some(s) = value.as_str() {
            self.check_string(s, value, schema, path, errors);
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            let Some(subs) = schema.get(key).and_then(Value::as_array) else {
                continue;
            };
            let results: Vec<Vec<FieldError>> = subs
                .iter()
                .map(|sub| {
                    let mut e = Vec::new();
                    self.check_value_only(value, sub, path, &mut e);
                    e
                })
                .collect();
            let passing = results.iter().filter(|r| r.is_empty()).count();
            match key {
                "allOf" => results.into_iter().for_each(|r| errors.extend(r)),
                "anyOf" if passing == 0 => {
                    errors.push(FieldError::invalid(
                        path,
                        value,
                        format!(
                            "{path} in body must be valid against at least one schema in anyOf"
                        ),
                    ));
                }
                "oneOf" if passing != 1 => {
                    errors.push(FieldError::invalid(
                        path,
                        value,
                        format!("{path} in body must validate one and only one schema (oneOf)"),
                    ));
                }
                _ => {}
            }
        }
        if let Some(not) = schema.get("not") {
            let mut e = Vec::new();
            self.check_value_only(value, not, path, &mut e);
            if e.is_empty() {
                errors.push(FieldError::invalid(
                    path,
                    value,
                    format!("{path} in body must not validate the schema (not)"),
                ));
            }
        }
    }

    /// Checks a value against a sub-schema of a combinator (types included when given).
    fn check_value_only(
        &self,
        value: &Value,
        schema: &Value,
        path: &str,
        errors: &mut Vec<FieldError>,
    ) {
        if self.check_type(value, schema, path, errors) {
            self.check_value(value, schema, path, errors);
            if let Some(map) = value.as_object() {
                for req in required(schema) {
                    if !map.contains_key(req) {
                        errors.push(FieldError::required(join(path, req)));
                    }
                }
                if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                    for (name, sub) in props {
                        if let Some(v) = map.get(name) {
                            self.check_value_only(v, sub, &join(path, name), errors);
                        }
                    }
                }
            }
        }
    }

    fn check_string(
        &self,
        s: &str,
        value: &Value,
        schema: &Value,
        path: &str,
        errors: &mut Vec<FieldError>,
    ) {
        let chars = s.chars().count() as u64;
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && chars > max
        {
            errors.push(FieldError::new(
                FieldErrorType::TooLong,
                path,
                format!("Too long: may not be more than {max} bytes"),
            ));
        }
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && chars < min
        {
            errors.push(FieldError::invalid(
                path,
                value,
                format!("{path} in body should be at least {min} chars long"),
            ));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
            && let Some(re) = self.patterns.get(pattern)
            && !re.is_match(s)
        {
            errors.push(FieldError::invalid(
                path,
                value,
                format!("{path} in body should match '{pattern}'"),
            ));
        }
        if let Some(format) = schema.get("format").and_then(Value::as_str)
            && let Some(problem) = check_format(format, s)
        {
            errors.push(FieldError::invalid(
                path,
                value,
                format!("{path} in body must be of type {format}: {problem}"),
            ));
        }
    }

    fn check_object(
        &self,
        map: &Map<String, Value>,
        schema: &Value,
        path: &str,
        errors: &mut Vec<FieldError>,
    ) {
        for req in required(schema) {
            if !map.contains_key(req) {
                errors.push(FieldError::required(join(path, req)));
            }
        }
        let count = map.len() as u64;
        if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
            && count > max
        {
            errors.push(FieldError::new(
                FieldErrorType::TooMany,
                path,
                format!("Too many: {count}: must have at most {max} items"),
            ));
        }
        if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
            && count < min
        {
            errors.push(FieldError::invalid(
                path,
                &Value::from(count),
                format!("{path} in body should have at least {min} properties"),
            ));
        }
        let props = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties").filter(|a| a.is_object());
        let embedded = flag(schema, "x-kubernetes-embedded-resource");
        for (name, value) in map {
            let child = join(path, name);
            if let Some(sub) = props.and_then(|p| p.get(name)) {
                self.check(value, sub, &child, errors);
            } else if let Some(sub) = additional {
                self.check(value, sub, &child, errors);
            } else if embedded && matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
        }
    }

    fn check_array(
        &self,
        items: &[Value],
        schema: &Value,
        path: &str,
        errors: &mut Vec<FieldError>,
    ) {
        let count = items.len() as u64;
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
            && count > max
        {
            errors.push(FieldError::new(
                FieldErrorType::TooMany,
                path,
                format!("Too many: {count}: must have at most {max} items"),
            ));
        }
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
            && count < min
        {
            errors.push(FieldError::invalid(
                path,
                &Value::from(count),
                format!("{path} in body should have at least {min} items"),
            ));
        }
        let list_type = schema.get("x-kubernetes-list-type").and_then(Value::as_str);
        if flag(schema, "uniqueItems") || list_type == Some("set") {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    errors.push(FieldError::new(
                        FieldErrorType::Duplicate,
                        format!("{path}[{i}]"),
                        format!("Duplicate value: {}", render(item)),
                    ));
                }
            }
        }
        if list_type == Some("map") {
            let keys: Vec<&str> = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|k| k.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let key_of = |item: &Value| {
                keys.iter()
                    .map(|k| item.get(*k).cloned().unwrap_or(Value::Null))
                    .collect::<Vec<_>>()
            };
            for (i, item) in items.iter().enumerate() {
                let key = key_of(item);
                if items[..i].iter().any(|other| key_of(other) == key) {
                    let shown = keys
                        .iter()
                        .zip(&key)
                        .map(|(k, v)| format!("\"{k}\":{v}"))
                        .collect::<Vec<_>>()
                        .join(",");
                    errors.push(FieldError::new(
                        FieldErrorType::Duplicate,
                        format!("{path}[{i}]"),
                        format!("Duplicate value: map[string]interface {{}}{{{shown}}}"),
                    ));
                }
            }
        }
        if let Some(sub) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                self.check(item, sub, &format!("{path}[{i}]"), errors);
            }
        }
    }
}

fn check_number(n: f64, value: &Value, schema: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        let exclusive = flag(schema, "exclusiveMaximum");
        if n > max || (exclusive && n >= max) {
            let op = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            errors.push(FieldError::invalid(
                path,
                value,
                format!("{path} in body should be {op} {}", number(max)),
            ));
        }
    }
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        let exclusive = flag(schema, "exclusiveMinimum");
        if n < min || (exclusive && n <= min) {
            let op = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            errors.push(FieldError::invalid(
                path,
                value,
                format!("{path} in body should be {op} {}", number(min)),
            ));
        }
    }
    if let Some(m) = schema.get("multipleOf").and_then(Value::as_f64)
        && m > 0.0
        && (n / m).fract().abs() > 1e-9
    {
        errors.push(FieldError::invalid(
            path,
            value,
            format!("{path} in body should be a multiple of {}", number(m)),
        ));
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str) {
        let out_of_range = match format {
            "int32" => n < f64::from(i32::MIN) || n > f64::from(i32::MAX),
            _ => false,
        };
        if out_of_range {
            errors.push(FieldError::invalid(
                path,
                value,
                format!("{path} in body must be of type {format}"),
            ));
        }
    }
}

fn check_format(format: &str, s: &str) -> Option<&'static str> {
    match format {
        "date-time" => s
            .parse::<jiff::Timestamp>()
            .is_err()
            .then_some("invalid date-time"),
        "date" => s
            .parse::<jiff::civil::Date>()
            .is_err()
            .then_some("invalid date"),
        "uuid" => uuid::Uuid::parse_str(s).is_err().then_some("invalid uuid"),
        "byte" => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .is_err()
                .then_some("invalid base64")
        }
        _ => None,
    }
}

fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

fn is_integer(v: &Value) -> bool {
    v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

fn required(schema: &Value) -> impl Iterator<Item = &str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn collect_patterns(
    schema: &Value,
    path: &str,
    out: &mut HashMap<String, Regex>,
) -> Result<(), String> {
    let Some(map) = schema.as_object() else {
        return Ok(());
    };
    if let Some(pattern) = map.get("pattern").and_then(Value::as_str) {
        let re = Regex::new(pattern)
            .map_err(|e| format!("{path}.pattern: invalid regular expression {pattern:?}: {e}"))?;
        out.insert(pattern.to_owned(), re);
    }
    for (key, sub) in map {
        match key.as_str() {
            "properties" | "patternProperties" | "definitions" => {
                if let Some(props) = sub.as_object() {
                    for (name, s) in props {
                        collect_patterns(s, &join(path, name), out)?;
                    }
                }
            }
            "items" | "additionalProperties" | "not" => collect_patterns(sub, path, out)?,
            "allOf" | "anyOf" | "oneOf" => {
                for s in sub.as_array().into_iter().flatten() {
                    collect_patterns(s, path, out)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Prunes an object whose root may carry apiVersion/kind/metadata.
fn prune_embedded_root(
    map: &mut Map<String, Value>,
    schema: &Value,
    path: &str,
    pruned: &mut Vec<String>,
) {
    if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        let unknown: Vec<String> = meta
            .keys()
            .filter(|k| !OBJECT_META_FIELDS.contains(&k.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            meta.shift_remove(&key);
            pruned.push(join(&join(path, "metadata"), &key));
        }
    }
    prune_object(map, schema, path, pruned, true);
}

fn prune_object(
    map: &mut Map<String, Value>,
    schema: &Value,
    path: &str,
    pruned: &mut Vec<String>,
    root: bool,
) {
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
    let embedded = root || flag(schema, "x-kubernetes-embedded-resource");
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        let child_path = join(path, &key);
        if embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            if !root
                && key == "metadata"
                && let Some(m) = map.get_mut("metadata").and_then(Value::as_object_mut)
            {
                let unknown: Vec<String> = m
                    .keys()
                    .filter(|k| !OBJECT_META_FIELDS.contains(&k.as_str()))
                    .cloned()
                    .collect();
                for k in unknown {
                    m.shift_remove(&k);
                    pruned.push(join(&child_path, &k));
                }
            }
            continue;
        }
        let sub = props
            .and_then(|p| p.get(&key))
            .or_else(|| additional.filter(|a| a.is_object()));
        match sub {
            Some(sub) => {
                if let Some(value) = map.get_mut(&key) {
                    prune_value(value, sub, &child_path, pruned);
                }
            }
            None if preserve || additional.and_then(Value::as_bool) == Some(true) => {}
            None => {
                map.shift_remove(&key);
                pruned.push(child_path);
            }
        }
    }
}

fn prune_value(value: &mut Value, schema: &Value, path: &str, pruned: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let structured =
                schema.get("properties").is_some() || schema.get("additionalProperties").is_some();
            if structured || !flag(schema, "x-kubernetes-preserve-unknown-fields") {
                prune_object(map, schema, path, pruned, false);
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_value(item, sub, &format!("{path}[{i}]"), pruned);
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

fn apply_defaults(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    if map.get(name).is_some_and(Value::is_null) && !flag(sub, "nullable") {
                        map.shift_remove(name);
                    }
                    if !map.contains_key(name)
                        && let Some(default) = sub.get("default")
                    {
                        map.insert(name.clone(), default.clone());
                    }
                    if let Some(child) = map.get_mut(name) {
                        apply_defaults(child, sub);
                    }
                }
            } else if let Some(sub) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for child in map.values_mut() {
                    apply_defaults(child, sub);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for item in items {
                    apply_defaults(item, sub);
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// Checks that a CRD schema is structural enough to serve: every property typed (unless it
/// preserves unknown fields or is int-or-string), no `$ref`, patterns compile.
pub fn check_structural(schema: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let Some(map) = schema.as_object() else {
        return;
    };
    if map.contains_key("$ref") {
        errors.push(FieldError::forbidden(
            join(path, "$ref"),
            "$ref is not allowed in a structural schema",
        ));
    }
    let typed = map.contains_key("type")
        || flag(schema, "x-kubernetes-int-or-string")
        || flag(schema, "x-kubernetes-preserve-unknown-fields");
    if !typed {
        errors.push(FieldError::required_because(
            join(path, "type"),
            "must not be empty for specified object fields",
        ));
    }
    if let Some(props) = map.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            check_structural(sub, &format!("{path}.properties[{name}]"), errors);
        }
    }
    if let Some(items) = map.get("items") {
        check_structural(items, &format!("{path}.items"), errors);
    }
    if let Some(additional) = map.get("additionalProperties").filter(|a| a.is_object()) {
        check_structural(additional, &format!("{path}.additionalProperties"), errors);
    }
    if let Some(pattern) = map.get("pattern").and_then(Value::as_str)
        && let Err(e) = Regex::new(pattern)
    {
        errors.push(FieldError::invalid(
            join(path, "pattern"),
            &Value::from(pattern),
            format!("must be a valid regular expression: {e}"),
        ));
    }
}

#[cfg(test)]
mod tests;
