//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`).
//!
//! client-go's typed clientset writes built-in objects as protobuf; helm stores its releases
//! as Secrets that way. The server decodes the `k8s\0` envelope (`runtime.Unknown`) and the
//! kinds such clients write here (Secret, ConfigMap, DeleteOptions) into JSON; responses stay JSON, which
//! every client accepts (they always list `application/json` in `Accept`).

use std::collections::BTreeMap;

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
        "protobuf bodies are accepted for Secret, ConfigMap and DeleteOptions only, not {0}; send application/json"
    )]
    UnsupportedKind(String),
}

const MAGIC: &[u8] = b"k8s\0";

/// One decoded field: number and value.
enum Field<'a> {
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

    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, ProtobufError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let field = match tag & 7 {
            0 => Field::Varint(self.varint()?),
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| ProtobufError::Malformed("length"))?;
                if len > self.buf.len() {
                    return Err(ProtobufError::Malformed("truncated field"));
                }
                let (head, rest) = self.buf.split_at(len);
                self.buf = rest;
                Field::Bytes(head)
            }
            1 => {
                self.skip(8)?;
                Field::Varint(0)
            }
            5 => {
                self.skip(4)?;
                Field::Varint(0)
            }
            _ => return Err(ProtobufError::Malformed("unsupported wire type")),
        };
        Ok(Some((tag >> 3, field)))
    }

    fn skip(&mut self, n: usize) -> Result<(), ProtobufError> {
        if self.buf.len() < n {
            return Err(ProtobufError::Malformed("truncated fixed field"));
        }
        self.buf = &self.buf[n..];
        Ok(())
    }
}

fn fields(buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, ProtobufError> {
    let mut reader = Reader { buf };
    let mut out = Vec::new();
    while let Some(f) = reader.next()? {
        out.push(f);
    }
    Ok(out)
}

fn string(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A map entry message (key = 1, value = 2).
fn entry(bytes: &[u8]) -> Result<(String, Vec<u8>), ProtobufError> {
    let (mut key, mut value) = (String::new(), Vec::new());
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Bytes(b)) => key = string(b),
            (2, Field::Bytes(b)) => value = b.to_vec(),
            _ => {}
        }
    }
    Ok((key, value))
}

fn object_meta(bytes: &[u8]) -> Result<Value, ProtobufError> {
    let mut meta = Map::new();
    let (mut labels, mut annotations, mut finalizers, mut owners) =
        (BTreeMap::new(), BTreeMap::new(), Vec::new(), Vec::new());
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Bytes(b)) => drop(meta.insert("name".into(), json!(string(b)))),
            (2, Field::Bytes(b)) => drop(meta.insert("generateName".into(), json!(string(b)))),
            (3, Field::Bytes(b)) => drop(meta.insert("namespace".into(), json!(string(b)))),
            (5, Field::Bytes(b)) => drop(meta.insert("uid".into(), json!(string(b)))),
            (6, Field::Bytes(b)) => drop(meta.insert("resourceVersion".into(), json!(string(b)))),
            (11, Field::Bytes(b)) => {
                let (k, v) = entry(b)?;
                labels.insert(k, string(&v));
            }
            (12, Field::Bytes(b)) => {
                let (k, v) = entry(b)?;
                annotations.insert(k, string(&v));
            }
            (13, Field::Bytes(b)) => owners.push(owner_reference(b)?),
            (14, Field::Bytes(b)) => finalizers.push(string(b)),
            _ => {}
        }
    }
    if !labels.is_empty() {
        meta.insert("labels".into(), json!(labels));
    }
    if !annotations.is_empty() {
        meta.insert("annotations".into(), json!(annotations));
    }
    if !owners.is_empty() {
        meta.insert("ownerReferences".into(), Value::Array(owners));
    }
    if !finalizers.is_empty() {
        meta.insert("finalizers".into(), json!(finalizers));
    }
    Ok(Value::Object(meta))
}

fn owner_reference(bytes: &[u8]) -> Result<Value, ProtobufError> {
    let mut r = Map::new();
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Bytes(b)) => drop(r.insert("kind".into(), json!(string(b)))),
            (3, Field::Bytes(b)) => drop(r.insert("name".into(), json!(string(b)))),
            (4, Field::Bytes(b)) => drop(r.insert("uid".into(), json!(string(b)))),
            (5, Field::Bytes(b)) => drop(r.insert("apiVersion".into(), json!(string(b)))),
            (6, Field::Varint(v)) => drop(r.insert("controller".into(), json!(v != 0))),
            (7, Field::Varint(v)) => drop(r.insert("blockOwnerDeletion".into(), json!(v != 0))),
            _ => {}
        }
    }
    Ok(Value::Object(r))
}

fn secret(bytes: &[u8]) -> Result<Value, ProtobufError> {
    let mut obj = json!({"apiVersion": "v1", "kind": "Secret"});
    let (mut data, mut string_data) = (Map::new(), Map::new());
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Bytes(b)) => obj["metadata"] = object_meta(b)?,
            (2, Field::Bytes(b)) => {
                let (k, v) = entry(b)?;
                data.insert(
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(v)),
                );
            }
            (3, Field::Bytes(b)) => obj["type"] = json!(string(b)),
            (4, Field::Bytes(b)) => {
                let (k, v) = entry(b)?;
                string_data.insert(k, json!(string(&v)));
            }
            (5, Field::Varint(v)) => obj["immutable"] = json!(v != 0),
            _ => {}
        }
    }
    if !data.is_empty() {
        obj["data"] = Value::Object(data);
    }
    if !string_data.is_empty() {
        obj["stringData"] = Value::Object(string_data);
    }
    Ok(obj)
}

fn config_map(bytes: &[u8]) -> Result<Value, ProtobufError> {
    let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap"});
    let (mut data, mut binary) = (Map::new(), Map::new());
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Bytes(b)) => obj["metadata"] = object_meta(b)?,
            (2, Field::Bytes(b)) => {
                let (k, v) = entry(b)?;
                data.insert(k, json!(string(&v)));
            }
            (3, Field::Bytes(b)) => {
                let (k, v) = entry(b)?;
                binary.insert(
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(v)),
                );
            }
            (4, Field::Varint(v)) => obj["immutable"] = json!(v != 0),
            _ => {}
        }
    }
    if !data.is_empty() {
        obj["data"] = Value::Object(data);
    }
    if !binary.is_empty() {
        obj["binaryData"] = Value::Object(binary);
    }
    Ok(obj)
}

fn delete_options(bytes: &[u8]) -> Result<Value, ProtobufError> {
    let mut obj = json!({"apiVersion": "v1", "kind": "DeleteOptions"});
    let mut dry_run = Vec::new();
    for (number, field) in fields(bytes)? {
        match (number, field) {
            // int64 travels as a two's-complement varint.
            (1, Field::Varint(v)) => obj["gracePeriodSeconds"] = json!(v as i64),
            (2, Field::Bytes(b)) => {
                let mut pre = Map::new();
                for (n, f) in fields(b)? {
                    match (n, f) {
                        (1, Field::Bytes(u)) => drop(pre.insert("uid".into(), json!(string(u)))),
                        (2, Field::Bytes(r)) => {
                            drop(pre.insert("resourceVersion".into(), json!(string(r))))
                        }
                        _ => {}
                    }
                }
                obj["preconditions"] = Value::Object(pre);
            }
            (3, Field::Varint(v)) => obj["orphanDependents"] = json!(v != 0),
            (4, Field::Bytes(b)) => obj["propagationPolicy"] = json!(string(b)),
            (5, Field::Bytes(b)) => dry_run.push(string(b)),
            _ => {}
        }
    }
    if !dry_run.is_empty() {
        obj["dryRun"] = json!(dry_run);
    }
    Ok(obj)
}

/// Decodes a `k8s\0`-prefixed protobuf body into its JSON form.
///
/// # Errors
/// Malformed data or a kind not decoded here.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or(ProtobufError::Malformed("missing k8s envelope"))?;
    let (mut kind, mut raw) = (String::new(), &[][..]);
    for (number, field) in fields(envelope)? {
        match (number, field) {
            (1, Field::Bytes(type_meta)) => {
                for (n, f) in fields(type_meta)? {
                    if let (2, Field::Bytes(k)) = (n, f) {
                        kind = string(k);
                    }
                }
            }
            (2, Field::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    match kind.as_str() {
        "Secret" => secret(raw),
        "ConfigMap" => config_map(raw),
        "DeleteOptions" => delete_options(raw),
        other => Err(ProtobufError::UnsupportedKind(other.to_owned())),
    }
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
        let type_meta = [field(1, b"v1"), field(2, b"Secret")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &secret)].concat();
        let obj = decode(&body).unwrap();
        assert_eq!(obj["kind"], "Secret");
        assert_eq!(obj["metadata"]["name"], "sh.helm.release.v1.demo.v1");
        assert_eq!(obj["metadata"]["labels"]["owner"], "helm");
        assert_eq!(obj["metadata"]["finalizers"], json!(["x/y"]));
        assert_eq!(obj["data"]["release"], "AQI=");
        assert_eq!(obj["type"], "helm.sh/release.v1");
    }

    #[test]
    fn protobuf_delete_options_decode() {
        let options = [vec![0x08, 0x05], field(4, b"Background")].concat();
        let type_meta = [field(1, b"v1"), field(2, b"DeleteOptions")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &options)].concat();
        let obj = decode(&body).unwrap();
        assert_eq!(obj["gracePeriodSeconds"], 5);
        assert_eq!(obj["propagationPolicy"], "Background");
    }

    #[test]
    fn other_kinds_and_garbage_are_refused() {
        let type_meta = [field(1, b"v1"), field(2, b"Pod")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta)].concat();
        assert_eq!(
            decode(&body).unwrap_err(),
            ProtobufError::UnsupportedKind("Pod".into())
        );
        assert!(decode(b"{}").is_err());
        assert!(decode(&[MAGIC, &[0x0a, 0x7f]].concat()).is_err());
    }
}
