//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`).
//!
//! client-go's typed clients send built-in objects as protobuf (since Kubernetes 1.31): helm
//! stores its releases as Secrets that way, and kubectl's imperative commands (`create
//! namespace`, `create configmap`, `create role`, ...) do too. The server decodes the `k8s\0`
//! envelope (`runtime.Unknown`) and, through the message tables below (written from Kubernetes'
//! wire definitions), the kinds those clients create here. Deeper kinds (Pods, Deployments)
//! are refused with 415 and a hint to send JSON (`kubectl apply` always does). Responses are JSON,
//! which every client accepts.

use base64::Engine;
use serde_json::{Map, Value, json};

/// Why a protobuf body could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtobufError {
    /// Not a `k8s\0` envelope or truncated data.
    #[error("malformed protobuf body: {0}")]
    Malformed(&'static str),
    /// A kind whose protobuf form is not decoded here.
    #[error(
        "protobuf request bodies are decoded for Namespace, ConfigMap, Secret, ServiceAccount, RBAC kinds and DeleteOptions, not {0}; send application/json (kubectl apply -f does)"
    )]
    UnsupportedKind(String),
}

/// How one field is encoded.
#[derive(Debug)]
enum Kind {
    String,
    Bool,
    Int,
    /// `map<string,string>`.
    StringMap,
    /// `map<string,bytes>`, rendered base64 as in JSON.
    BytesMap,
    /// `repeated string`.
    Strings,
    Message(&'static [Field]),
    Messages(&'static [Field]),
}

/// (field number, JSON name, encoding).
type Field = (u64, &'static str, Kind);

const OWNER_REFERENCE: &[Field] = &[
    (1, "kind", Kind::String),
    (3, "name", Kind::String),
    (4, "uid", Kind::String),
    (5, "apiVersion", Kind::String),
    (6, "controller", Kind::Bool),
    (7, "blockOwnerDeletion", Kind::Bool),
];
// Timestamps and managedFields are the server's to set; they are not decoded.
const OBJECT_META: &[Field] = &[
    (1, "name", Kind::String),
    (2, "generateName", Kind::String),
    (3, "namespace", Kind::String),
    (5, "uid", Kind::String),
    (6, "resourceVersion", Kind::String),
    (7, "generation", Kind::Int),
    (11, "labels", Kind::StringMap),
    (12, "annotations", Kind::StringMap),
    (13, "ownerReferences", Kind::Messages(OWNER_REFERENCE)),
    (14, "finalizers", Kind::Strings),
];
const SECRET: &[Field] = &[
    (1, "metadata", Kind::Message(OBJECT_META)),
    (2, "data", Kind::BytesMap),
    (3, "type", Kind::String),
    (4, "stringData", Kind::StringMap),
    (5, "immutable", Kind::Bool),
];
const CONFIG_MAP: &[Field] = &[
    (1, "metadata", Kind::Message(OBJECT_META)),
    (2, "data", Kind::StringMap),
    (3, "binaryData", Kind::BytesMap),
    (4, "immutable", Kind::Bool),
];
const NAMESPACE_SPEC: &[Field] = &[(1, "finalizers", Kind::Strings)];
const NAMESPACE: &[Field] = &[
    (1, "metadata", Kind::Message(OBJECT_META)),
    (2, "spec", Kind::Message(NAMESPACE_SPEC)),
];
const OBJECT_REFERENCE: &[Field] = &[
    (1, "kind", Kind::String),
    (2, "namespace", Kind::String),
    (3, "name", Kind::String),
    (4, "uid", Kind::String),
    (5, "apiVersion", Kind::String),
    (6, "resourceVersion", Kind::String),
    (7, "fieldPath", Kind::String),
];
const LOCAL_OBJECT_REFERENCE: &[Field] = &[(1, "name", Kind::String)];
const SERVICE_ACCOUNT: &[Field] = &[
    (1, "metadata", Kind::Message(OBJECT_META)),
    (2, "secrets", Kind::Messages(OBJECT_REFERENCE)),
    (
        3,
        "imagePullSecrets",
        Kind::Messages(LOCAL_OBJECT_REFERENCE),
    ),
    (4, "automountServiceAccountToken", Kind::Bool),
];
const POLICY_RULE: &[Field] = &[
    (1, "verbs", Kind::Strings),
    (2, "apiGroups", Kind::Strings),
    (3, "resources", Kind::Strings),
    (4, "resourceNames", Kind::Strings),
    (5, "nonResourceURLs", Kind::Strings),
];
const LABEL_SELECTOR_REQUIREMENT: &[Field] = &[
    (1, "key", Kind::String),
    (2, "operator", Kind::String),
    (3, "values", Kind::Strings),
];
const LABEL_SELECTOR: &[Field] = &[
    (1, "matchLabels", Kind::StringMap),
    (
        2,
        "matchExpressions",
        Kind::Messages(LABEL_SELECTOR_REQUIREMENT),
    ),
];
const AGGREGATION_RULE: &[Field] = &[(1, "clusterRoleSelectors", Kind::Messages(LABEL_SELECTOR))];
const ROLE: &[Field] = &[
    (1, "metadata", Kind::Message(OBJECT_META)),
    (2, "rules", Kind::Messages(POLICY_RULE)),
];
const CLUSTER_ROLE: &[Field] = &[
    (1, "metadata", Kind::Message(OBJECT_META)),
    (2, "rules", Kind::Messages(POLICY_RULE)),
    (3, "aggregationRule", Kind::Message(AGGREGATION_RULE)),
];
const SUBJECT: &[Field] = &[
    (1, "kind", Kind::String),
    (2, "apiGroup", Kind::String),
    (3, "name", Kind::String),
    (4, "namespace", Kind::String),
];
const ROLE_REF: &[Field] = &[
    (1, "apiGroup", Kind::String),
    (2, "kind", Kind::String),
    (3, "name", Kind::String),
];
const ROLE_BINDING: &[Field] = &[
    (1, "metadata", Kind::Message(OBJECT_META)),
    (2, "subjects", Kind::Messages(SUBJECT)),
    (3, "roleRef", Kind::Message(ROLE_REF)),
];
const PRECONDITIONS: &[Field] = &[
    (1, "uid", Kind::String),
    (2, "resourceVersion", Kind::String),
];
const DELETE_OPTIONS: &[Field] = &[
    (1, "gracePeriodSeconds", Kind::Int),
    (2, "preconditions", Kind::Message(PRECONDITIONS)),
    (3, "orphanDependents", Kind::Bool),
    (4, "propagationPolicy", Kind::String),
    (5, "dryRun", Kind::Strings),
];

/// The message table of a kind, by the envelope's TypeMeta.
fn message_for(kind: &str) -> Option<&'static [Field]> {
    Some(match kind {
        "Secret" => SECRET,
        "ConfigMap" => CONFIG_MAP,
        "Namespace" => NAMESPACE,
        "ServiceAccount" => SERVICE_ACCOUNT,
        "Role" => ROLE,
        "ClusterRole" => CLUSTER_ROLE,
        "RoleBinding" | "ClusterRoleBinding" => ROLE_BINDING,
        "DeleteOptions" => DELETE_OPTIONS,
        _ => return None,
    })
}

/// A field as it comes off the wire.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self
                .buf
                .split_first()
                .ok_or(ProtobufError::Malformed("truncated varint"))?;
            self.buf = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::Malformed("varint too long"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtobufError> {
        if n > self.buf.len() {
            return Err(ProtobufError::Malformed("truncated field"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next (field number, value); fixed-width fields are skipped (none are decoded here).
    fn next(&mut self) -> Result<Option<(u64, Wire<'a>)>, ProtobufError> {
        while !self.buf.is_empty() {
            let tag = self.varint()?;
            let wire = match tag & 7 {
                0 => Wire::Varint(self.varint()?),
                2 => {
                    let len = usize::try_from(self.varint()?)
                        .map_err(|_| ProtobufError::Malformed("length"))?;
                    Wire::Bytes(self.take(len)?)
                }
                1 => {
                    self.take(8)?;
                    continue;
                }
                5 => {
                    self.take(4)?;
                    continue;
                }
                _ => return Err(ProtobufError::Malformed("unsupported wire type")),
            };
            return Ok(Some((tag >> 3, wire)));
        }
        Ok(None)
    }
}

fn text(bytes: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(bytes).into_owned())
}

/// A map entry message (key = 1, value = 2).
fn entry(bytes: &[u8]) -> Result<(String, &[u8]), ProtobufError> {
    let (mut key, mut value) = (String::new(), &[][..]);
    let mut reader = Reader { buf: bytes };
    while let Some((number, wire)) = reader.next()? {
        match (number, wire) {
            (1, Wire::Bytes(b)) => key = String::from_utf8_lossy(b).into_owned(),
            (2, Wire::Bytes(b)) => value = b,
            _ => {}
        }
    }
    Ok((key, value))
}

/// Decodes a message by its table into a JSON object.
fn message(bytes: &[u8], fields: &'static [Field]) -> Result<Value, ProtobufError> {
    let mut out = Map::new();
    let mut reader = Reader { buf: bytes };
    while let Some((number, wire)) = reader.next()? {
        let Some((_, name, kind)) = fields.iter().find(|(n, _, _)| *n == number) else {
            continue;
        };
        let name = (*name).to_owned();
        match (kind, wire) {
            // Kubernetes writes empty strings on the wire where JSON omits them: treat as absent.
            (Kind::String, Wire::Bytes([])) => {}
            (Kind::String, Wire::Bytes(b)) => drop(out.insert(name, text(b))),
            (Kind::Bool, Wire::Varint(v)) => drop(out.insert(name, json!(v != 0))),
            // int64 travels as a two's-complement varint.
            (Kind::Int, Wire::Varint(v)) => drop(out.insert(name, json!(v as i64))),
            (Kind::StringMap, Wire::Bytes(b)) => {
                let (k, v) = entry(b)?;
                map_slot(&mut out, name).insert(k, text(v));
            }
            (Kind::BytesMap, Wire::Bytes(b)) => {
                let (k, v) = entry(b)?;
                map_slot(&mut out, name).insert(
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(v)),
                );
            }
            (Kind::Strings, Wire::Bytes(b)) => list_slot(&mut out, name).push(text(b)),
            (Kind::Message(sub), Wire::Bytes(b)) => drop(out.insert(name, message(b, sub)?)),
            (Kind::Messages(sub), Wire::Bytes(b)) => {
                let item = message(b, sub)?;
                list_slot(&mut out, name).push(item);
            }
            _ => return Err(ProtobufError::Malformed("a field has the wrong wire type")),
        }
    }
    Ok(Value::Object(out))
}

fn map_slot(out: &mut Map<String, Value>, name: String) -> &mut Map<String, Value> {
    crate::meta::as_object(out.entry(name).or_insert_with(|| json!({})))
}

fn list_slot(out: &mut Map<String, Value>, name: String) -> &mut Vec<Value> {
    let slot = out.entry(name).or_insert_with(|| json!([]));
    if !slot.is_array() {
        *slot = json!([]);
    }
    match slot {
        Value::Array(items) => items,
        _ => unreachable!("the slot was just made an array"),
    }
}

/// Decodes a `k8s\0`-prefixed protobuf body into its JSON form.
///
/// # Errors
/// Malformed data or a kind not decoded here.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    const TYPE_META: &[Field] = &[(1, "apiVersion", Kind::String), (2, "kind", Kind::String)];
    let envelope = body
        .strip_prefix(b"k8s\0".as_slice())
        .ok_or(ProtobufError::Malformed("missing k8s envelope"))?;
    let (mut type_meta, mut raw) = (Value::Null, &[][..]);
    let mut reader = Reader { buf: envelope };
    while let Some((number, wire)) = reader.next()? {
        match (number, wire) {
            (1, Wire::Bytes(b)) => type_meta = message(b, TYPE_META)?,
            (2, Wire::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let kind = type_meta
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let table = message_for(kind).ok_or_else(|| ProtobufError::UnsupportedKind(kind.to_owned()))?;
    let mut obj = message(raw, table)?;
    obj["apiVersion"] = type_meta.get("apiVersion").cloned().unwrap_or(Value::Null);
    obj["kind"] = json!(kind);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![u8::try_from((number << 3) | 2).unwrap()];
        out.push(u8::try_from(bytes.len()).unwrap());
        out.extend_from_slice(bytes);
        out
    }

    fn entry_bytes(k: &str, v: &[u8]) -> Vec<u8> {
        [field(1, k.as_bytes()), field(2, v)].concat()
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [field(1, api_version.as_bytes()), field(2, kind.as_bytes())].concat();
        [b"k8s\0".to_vec(), field(1, &type_meta), field(2, raw)].concat()
    }

    #[test]
    fn a_protobuf_secret_decodes_like_its_json_form() {
        let meta = [
            field(1, b"sh.helm.release.v1.demo.v1"),
            field(11, &entry_bytes("owner", b"helm")),
            field(14, b"x/y"),
        ]
        .concat();
        let secret = [
            field(1, &meta),
            field(2, &entry_bytes("release", b"\x01\x02")),
            field(3, b"helm.sh/release.v1"),
        ]
        .concat();
        let obj = decode(&envelope("v1", "Secret", &secret)).unwrap();
        assert_eq!(obj["kind"], "Secret");
        assert_eq!(obj["apiVersion"], "v1");
        assert_eq!(obj["metadata"]["name"], "sh.helm.release.v1.demo.v1");
        assert_eq!(obj["metadata"]["labels"]["owner"], "helm");
        assert_eq!(obj["metadata"]["finalizers"], json!(["x/y"]));
        assert_eq!(obj["data"]["release"], "AQI=");
        assert_eq!(obj["type"], "helm.sh/release.v1");
    }

    #[test]
    fn rbac_namespaces_and_delete_options_decode() {
        let rule = [
            field(1, b"get"),
            field(1, b"list"),
            field(2, b""),
            field(3, b"pods"),
        ]
        .concat();
        let role = [field(1, &field(1, b"reader")), field(2, &rule)].concat();
        let obj = decode(&envelope("rbac.authorization.k8s.io/v1", "Role", &role)).unwrap();
        assert_eq!(
            obj["rules"],
            json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}])
        );
        let ns = [
            field(1, &field(1, b"team-a")),
            field(2, &field(1, b"kubernetes")),
        ]
        .concat();
        let obj = decode(&envelope("v1", "Namespace", &ns)).unwrap();
        assert_eq!(obj["spec"]["finalizers"], json!(["kubernetes"]));
        let empty_type = [field(1, &field(1, b"s")), field(3, b"")].concat();
        assert!(
            decode(&envelope("v1", "Secret", &empty_type))
                .unwrap()
                .get("type")
                .is_none(),
            "empty strings are absent"
        );
        let options = [vec![0x08, 0x05], field(4, b"Background")].concat();
        let obj = decode(&envelope("v1", "DeleteOptions", &options)).unwrap();
        assert_eq!(obj["gracePeriodSeconds"], 5);
        assert_eq!(obj["propagationPolicy"], "Background");
    }

    #[test]
    fn other_kinds_and_garbage_are_refused() {
        assert_eq!(
            decode(&envelope("v1", "Pod", &[])).unwrap_err(),
            ProtobufError::UnsupportedKind("Pod".into())
        );
        assert!(decode(b"{}").is_err());
        assert!(decode(&[b"k8s\0".as_slice(), &[0x0a, 0x7f]].concat()).is_err());
        // Unknown fields are skipped; a known field with the wrong wire type is malformed.
        assert!(decode(&envelope("v1", "ConfigMap", &[0x48, 0x01])).is_ok());
        assert!(decode(&envelope("v1", "Secret", &[0x18, 0x01])).is_err());
    }
}
