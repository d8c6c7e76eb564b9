//! The JSONPath subset CRD printer columns use: `.a.b`, `.a[0]`, `.a[*].b`,
//! `.a[?(@.type=="Ready")].status`, and `\.` for dots inside keys.

use serde_json::Value;

#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    Filter {
        path: Vec<String>,
        value: String,
        negated: bool,
    },
}

fn parse(path: &str) -> Option<Vec<Step>> {
    let path = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim();
    let path = path.strip_prefix('$').unwrap_or(path);
    let mut steps = Vec::new();
    let chars: Vec<char> = path.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let mut name = String::new();
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    name.push(chars[i]);
                    i += 1;
                }
                if !name.is_empty() {
                    steps.push(Step::Field(name));
                }
            }
            '[' => {
                let end = chars[i..].iter().position(|c| *c == ']')? + i;
                let inner: String = chars[i + 1..end].iter().collect();
                steps.push(parse_bracket(inner.trim())?);
                i = end + 1;
            }
            _ => return None,
        }
    }
    Some(steps)
}

fn parse_bracket(inner: &str) -> Option<Step> {
    if inner == "*" {
        return Some(Step::All);
    }
    if let Ok(n) = inner.parse() {
        return Some(Step::Index(n));
    }
    if let Some(quoted) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return Some(Step::Field(quoted.to_owned()));
    }
    let expr = inner.strip_prefix("?(")?.strip_suffix(')')?.trim();
    let (lhs, rhs, negated) = if let Some((l, r)) = expr.split_once("!=") {
        (l, r, true)
    } else {
        let (l, r) = expr.split_once("==")?;
        (l, r, false)
    };
    let path = lhs
        .trim()
        .strip_prefix("@.")?
        .split('.')
        .map(str::to_owned)
        .collect();
    let value = rhs.trim().trim_matches('"').trim_matches('\'').to_owned();
    Some(Step::Filter {
        path,
        value,
        negated,
    })
}

/// Evaluates `path` against `root`; unknown syntax yields nothing.
pub fn evaluate<'a>(root: &'a Value, path: &str) -> Vec<&'a Value> {
    let Some(steps) = parse(path) else {
        return Vec::new();
    };
    let mut current = vec![root];
    for step in &steps {
        let mut next = Vec::new();
        for value in current {
            match step {
                Step::Field(name) => next.extend(value.get(name)),
                Step::Index(n) => next.extend(value.get(*n)),
                Step::All => match value {
                    Value::Array(items) => next.extend(items.iter()),
                    Value::Object(map) => next.extend(map.values()),
                    Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
                },
                Step::Filter {
                    path,
                    value: expected,
                    negated,
                } => {
                    for item in value.as_array().into_iter().flatten() {
                        let mut cur = Some(item);
                        for part in path {
                            cur = cur.and_then(|c| c.get(part));
                        }
                        let actual = cur.map(scalar_string).unwrap_or_default();
                        if (actual == *expected) != *negated {
                            next.push(item);
                        }
                    }
                }
            }
        }
        current = next;
    }
    current
}

/// A value as printed in a table cell.
pub fn scalar_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evaluates_the_printer_column_subset() {
        let obj = json!({"metadata": {"labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"ports": [{"port": 80}, {"port": 443}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Done", "status": "False"}]}});
        assert_eq!(evaluate(&obj, ".spec.ports[1].port"), vec![&json!(443)]);
        assert_eq!(
            evaluate(&obj, ".spec.ports[*].port"),
            vec![&json!(80), &json!(443)]
        );
        assert_eq!(
            evaluate(&obj, ".status.conditions[?(@.type==\"Ready\")].status"),
            vec![&json!("True")]
        );
        assert_eq!(
            evaluate(&obj, ".metadata.labels.app\\.kubernetes\\.io/name"),
            vec![&json!("web")]
        );
        assert!(evaluate(&obj, ".missing.path").is_empty());
        assert!(evaluate(&obj, "not a path").is_empty());
    }
}
