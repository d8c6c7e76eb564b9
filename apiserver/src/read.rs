//! get, list and watch, and the representations clients ask for with `Accept`
//! (objects, `Table`, `PartialObjectMetadata`).
//!
//! Lists are built by concatenating stored JSON (no re-serialization) when no conversion is
//! needed. A watch is a task per client that replays the resource's history after the
//! requested resourceVersion, then follows new events; selector transitions become
//! ADDED/DELETED as in Kubernetes' watch cache.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::registry::ResourceDef;
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::Server;
use crate::store::{EventType, ObjectKey, StoreError, StoredObject, WatchEvent};
use crate::table::{self, IncludeObject};

/// How a response should represent objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Representation {
    /// The objects themselves.
    Object,
    /// A meta.k8s.io Table.
    Table(IncludeObject),
    /// PartialObjectMetadata(List).
    Metadata,
}

impl Representation {
    /// Picks the first media range of `Accept` this server can produce.
    ///
    /// # Errors
    /// 406 when only unsupported types (protobuf, CBOR) are acceptable.
    pub fn negotiate(accept: &str, include: IncludeObject) -> Result<Self, ApiError> {
        if accept.trim().is_empty() {
            return Ok(Representation::Object);
        }
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default();
            let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
            let param = |k: &str| params.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
            if !matches!(
                media,
                "application/json" | "application/*" | "*/*" | "application/yaml"
            ) {
                continue;
            }
            match param("as") {
                None => return Ok(Representation::Object),
                Some("Table") if param("g") == Some("meta.k8s.io") => {
                    return Ok(Representation::Table(include));
                }
                Some("PartialObjectMetadata" | "PartialObjectMetadataList")
                    if param("g") == Some("meta.k8s.io") =>
                {
                    return Ok(Representation::Metadata);
                }
                Some(_) => continue,
            }
        }
        Err(ApiError::NotAcceptable(format!(
            "only the following media types are accepted: application/json, application/yaml (asked for {accept})"
        )))
    }
}

/// Query parameters of list and watch.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// `labelSelector`.
    pub label_selector: LabelSelector,
    /// `fieldSelector`.
    pub field_selector: FieldSelector,
    /// `limit`.
    pub limit: Option<usize>,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: Option<bool>,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
}

/// A response body: one JSON document, or a stream of watch events.
#[derive(Debug)]
pub enum Reply {
    /// A complete JSON body.
    Json {
        /// HTTP status.
        status: u16,
        /// Body.
        body: Bytes,
        /// `Warning` headers.
        warnings: Vec<String>,
    },
    /// Newline-delimited watch events.
    Stream(mpsc::Receiver<Bytes>),
    /// A list streamed in chunks straight from the stored objects (no whole-list buffer).
    List(ListBody),
}

/// A list response body produced chunk by chunk.
#[derive(Debug)]
pub struct ListBody {
    head: Option<Bytes>,
    objects: std::vec::IntoIter<Arc<StoredObject>>,
    first: bool,
    done: bool,
}

/// Chunks of a streamed list are about this large.
const LIST_CHUNK: usize = 64 * 1024;

impl Iterator for ListBody {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if let Some(head) = self.head.take() {
            return Some(head);
        }
        if self.done {
            return None;
        }
        let mut chunk = BytesMut::with_capacity(LIST_CHUNK + 4096);
        while chunk.len() < LIST_CHUNK {
            match self.objects.next() {
                Some(obj) => {
                    if !std::mem::take(&mut self.first) {
                        chunk.put_u8(b',');
                    }
                    chunk.put_slice(&obj.json);
                }
                None => {
                    chunk.put_slice(b"]}");
                    self.done = true;
                    break;
                }
            }
        }
        Some(chunk.freeze())
    }
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: u16, value: &Value) -> Self {
        Reply::Json {
            status,
            body: Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
            warnings: Vec::new(),
        }
    }
}

fn encode_continue(rv: u64, key: &ObjectKey) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"rv": rv, "ns": key.namespace, "name": key.name}).to_string())
}

fn decode_continue(token: &str) -> Result<(u64, ObjectKey), ApiError> {
    let bad = || ApiError::BadRequest(format!("invalid continue token {token:?}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v["rv"].as_u64().ok_or_else(bad)?;
    Ok((
        rv,
        ObjectKey::new(
            v["ns"].as_str().unwrap_or_default(),
            v["name"].as_str().unwrap_or_default(),
        ),
    ))
}

fn needs_conversion(def: &ResourceDef) -> bool {
    def.version != def.storage_version
        || def
            .builtin()
            .is_some_and(|b| b.id == crate::builtin::BuiltinId::EventV1)
}

/// The filter of a list or watch: namespace, label and field selectors.
pub fn matcher(
    namespace: Option<&str>,
    opts: &ListOptions,
) -> impl Fn(&StoredObject) -> bool + Send + Sync + 'static {
    let namespace = namespace.map(str::to_owned);
    let labels = opts.label_selector.clone();
    let fields = opts.field_selector.clone();
    move |obj: &StoredObject| {
        namespace.as_ref().is_none_or(|ns| &obj.key.namespace == ns)
            && labels.matches(&obj.labels)
            && fields.matches(|f| obj.field(f).unwrap_or_default().to_owned())
    }
}

impl Server {
    /// `GET` of one object.
    ///
    /// # Errors
    /// NotFound.
    pub fn get_object(
        &self,
        def: &ResourceDef,
        namespace: &str,
        name: &str,
        repr: Representation,
    ) -> Result<Reply, ApiError> {
        let stored = self.get_stored(def, namespace, name)?;
        let obj = self.from_storage(def, stored.value());
        Ok(Reply::json(200, &represent_one(def, obj, repr)))
    }

    /// `GET` of a collection.
    ///
    /// # Errors
    /// Bad selectors or continue tokens, an expired continue (410).
    pub fn list(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        opts: &ListOptions,
        repr: Representation,
    ) -> Result<Reply, ApiError> {
        let after = match &opts.continue_token {
            Some(token) if !token.is_empty() => Some(decode_continue(token)?.1),
            _ => None,
        };
        let keep = matcher(namespace, opts);
        // A field selector on metadata.name is a point lookup.
        let point = opts
            .field_selector
            .required("metadata.name")
            .filter(|_| !def.namespaced || namespace.is_some());
        let (objects, rv, more) = match point {
            Some(name) => {
                let ns = if def.namespaced {
                    namespace.unwrap_or_default()
                } else {
                    ""
                };
                let found = self
                    .store
                    .get(&def.storage, &ObjectKey::new(ns, name))
                    .filter(|o| keep(o) && after.is_none());
                (found.into_iter().collect(), self.store.current_rv(), false)
            }
            None => self
                .store
                .list(&def.storage, namespace, after.as_ref(), opts.limit, &keep),
        };
        let mut list_meta = json!({"resourceVersion": rv.to_string()});
        if more && let Some(last) = objects.last() {
            list_meta["continue"] = json!(encode_continue(rv, &last.key));
        }
        match repr {
            Representation::Object if !needs_conversion(def) => Ok(Reply::List(list_body(
                &def.api_version(),
                &def.list_kind,
                &list_meta,
                objects,
            ))),
            Representation::Object => {
                let items: Vec<Value> = objects
                    .iter()
                    .map(|o| self.from_storage(def, o.value()))
                    .collect();
                Ok(Reply::json(
                    200,
                    &json!({"apiVersion": def.api_version(), "kind": def.list_kind, "metadata": list_meta, "items": items}),
                ))
            }
            Representation::Table(include) => {
                let items: Vec<Value> = objects
                    .iter()
                    .map(|o| self.from_storage(def, o.value()))
                    .collect();
                Ok(Reply::json(
                    200,
                    &table::table(def, &items, list_meta, include, true),
                ))
            }
            Representation::Metadata => {
                let items: Vec<Value> = objects
                    .iter()
                    .map(|o| table::partial_metadata(&o.value()))
                    .collect();
                Ok(Reply::json(
                    200,
                    &json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": list_meta, "items": items}),
                ))
            }
        }
    }

    /// A watch: replays history after the requested version (or sends the current state as
    /// ADDED events), then streams changes until the client leaves or the timeout passes.
    ///
    /// # Errors
    /// Bad parameters. An expired resourceVersion is reported in-stream as an ERROR event.
    pub fn watch(
        self: &Arc<Self>,
        def: Arc<ResourceDef>,
        namespace: Option<String>,
        opts: ListOptions,
        repr: Representation,
    ) -> Result<Reply, ApiError> {
        let requested: Option<u64> = match opts.resource_version.as_deref() {
            None | Some("") | Some("0") => None,
            Some(rv) => Some(
                rv.parse()
                    .map_err(|_| ApiError::BadRequest(format!("invalid resourceVersion {rv:?}")))?,
            ),
        };
        let initial = opts.send_initial_events.unwrap_or(requested.is_none());
        let (tx, rx) = mpsc::channel(256);
        let server = self.clone();
        tokio::spawn(async move {
            let watcher = Watcher {
                server,
                def,
                namespace,
                opts,
                repr,
                tx,
                first_table: true,
            };
            watcher.run(requested, initial).await;
        });
        Ok(Reply::Stream(rx))
    }
}

struct Watcher {
    server: Arc<Server>,
    def: Arc<ResourceDef>,
    namespace: Option<String>,
    opts: ListOptions,
    repr: Representation,
    tx: mpsc::Sender<Bytes>,
    first_table: bool,
}

impl Watcher {
    async fn run(mut self, requested: Option<u64>, initial: bool) {
        let storage = self.def.storage.clone();
        let mut rx = self.server.store.subscribe(&storage);
        let mut last_rv = requested.unwrap_or(0);
        if initial {
            let keep = matcher(self.namespace.as_deref(), &self.opts);
            let (objects, rv, _) =
                self.server
                    .store
                    .list(&storage, self.namespace.as_deref(), None, None, &keep);
            if requested.is_none() {
                last_rv = rv;
            }
            for obj in objects {
                let line = self.event_line(EventType::Added, &obj);
                if self.tx.send(line).await.is_err() {
                    return;
                }
            }
            if self.opts.send_initial_events == Some(true) {
                let bookmark = self.bookmark(last_rv, true);
                if self.tx.send(bookmark).await.is_err() {
                    return;
                }
            }
        }
        let deadline = self.opts.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut ticker = tokio::time::interval(self.server.config.bookmark_interval);
        ticker.tick().await;
        loop {
            let durable = self.server.store.durable_rv();
            match self.server.store.events_after(&storage, last_rv, 512) {
                Err(StoreError::TooOld { requested, oldest }) => {
                    let status =
                        ApiError::Gone(format!("too old resource version: {requested} ({oldest})"))
                            .status();
                    let _ = self
                        .tx
                        .send(Bytes::from(format!(
                            "{}\n",
                            json!({"type": "ERROR", "object": status})
                        )))
                        .await;
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "watch stopped");
                    return;
                }
                Ok(events) if !events.is_empty() => {
                    for event in events {
                        last_rv = event.object.rv;
                        if let Some(line) = self.filter(&event)
                            && self.tx.send(line).await.is_err()
                        {
                            return;
                        }
                    }
                    continue;
                }
                Ok(_) => {}
            }
            let sleep_until =
                deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return },
                _ = ticker.tick(), if self.opts.bookmarks => {
                    last_rv = last_rv.max(durable);
                    let bookmark = self.bookmark(last_rv, false);
                    if self.tx.send(bookmark).await.is_err() { return; }
                }
                () = tokio::time::sleep_until(sleep_until) => if deadline.is_some() { return },
                () = self.tx.closed() => return,
            }
        }
    }

    /// Applies namespace and selectors, turning selector transitions into ADDED/DELETED.
    fn filter(&mut self, event: &WatchEvent) -> Option<Bytes> {
        let keep = matcher(self.namespace.as_deref(), &self.opts);
        let now = keep(&event.object);
        let kind = match event.kind {
            EventType::Added => now.then_some(EventType::Added),
            EventType::Deleted => now.then_some(EventType::Deleted),
            EventType::Modified => {
                let before = event.previous.as_ref().map_or(now, |p| keep(p));
                match (before, now) {
                    (true, true) => Some(EventType::Modified),
                    (false, true) => Some(EventType::Added),
                    (true, false) => Some(EventType::Deleted),
                    (false, false) => None,
                }
            }
        }?;
        Some(self.event_line(kind, &event.object))
    }

    fn event_line(&mut self, kind: EventType, obj: &StoredObject) -> Bytes {
        let mut out = BytesMut::with_capacity(obj.json.len() + 32);
        out.put_slice(b"{\"type\":\"");
        out.put_slice(kind.as_str().as_bytes());
        out.put_slice(b"\",\"object\":");
        match self.repr {
            Representation::Object if !needs_conversion(&self.def) => out.put_slice(&obj.json),
            Representation::Object => {
                let v = self.server.from_storage(&self.def, obj.value());
                out.put_slice(&serde_json::to_vec(&v).unwrap_or_default());
            }
            Representation::Table(include) => {
                let v = self.server.from_storage(&self.def, obj.value());
                let rv = crate::meta::meta_str(&v, "resourceVersion")
                    .unwrap_or_default()
                    .to_owned();
                let t = table::table(
                    &self.def,
                    &[v],
                    json!({"resourceVersion": rv}),
                    include,
                    self.first_table,
                );
                self.first_table = false;
                out.put_slice(&serde_json::to_vec(&t).unwrap_or_default());
            }
            Representation::Metadata => {
                out.put_slice(
                    &serde_json::to_vec(&table::partial_metadata(&obj.value())).unwrap_or_default(),
                );
            }
        }
        out.put_slice(b"}\n");
        out.freeze()
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let (api_version, kind) = match self.repr {
            Representation::Object => (self.def.api_version(), self.def.kind.clone()),
            Representation::Table(_) | Representation::Metadata => (
                "meta.k8s.io/v1".to_owned(),
                "PartialObjectMetadata".to_owned(),
            ),
        };
        Bytes::from(format!(
            "{}\n",
            json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version, "metadata": metadata}})
        ))
    }
}

fn represent_one(def: &ResourceDef, obj: Value, repr: Representation) -> Value {
    match repr {
        Representation::Object => obj,
        Representation::Table(include) => {
            let rv = crate::meta::meta_str(&obj, "resourceVersion")
                .unwrap_or_default()
                .to_owned();
            table::table(def, &[obj], json!({"resourceVersion": rv}), include, true)
        }
        Representation::Metadata => table::partial_metadata(&obj),
    }
}

/// Represents a written object as the client asked.
pub fn represent_written(def: &ResourceDef, obj: Value, repr: Representation) -> Value {
    represent_one(def, obj, repr)
}

fn list_body(
    api_version: &str,
    kind: &str,
    list_meta: &Value,
    objects: Vec<Arc<StoredObject>>,
) -> ListBody {
    let head = format!(
        "{{\"apiVersion\":{},\"kind\":{},\"metadata\":{},\"items\":[",
        json!(api_version),
        json!(kind),
        list_meta
    );
    ListBody {
        head: Some(Bytes::from(head)),
        objects: objects.into_iter(),
        first: true,
        done: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_pick_the_representation() {
        let meta = IncludeObject::Metadata;
        assert_eq!(
            Representation::negotiate("", meta).unwrap(),
            Representation::Object
        );
        assert_eq!(
            Representation::negotiate(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
                meta
            )
            .unwrap(),
            Representation::Table(meta)
        );
        assert_eq!(
            Representation::negotiate("application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1", meta).unwrap(),
            Representation::Metadata
        );
        assert!(Representation::negotiate("application/vnd.kubernetes.protobuf", meta).is_err());
    }

    #[test]
    fn streamed_lists_are_valid_json_in_bounded_chunks() {
        let objects: Vec<Arc<StoredObject>> = (0..3000)
            .map(|i| {
                Arc::new(StoredObject {
                    key: ObjectKey::new("ns", format!("o{i}")),
                    rv: i,
                    json: Bytes::from(format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(40))),
                    uid: String::new(),
                    labels: Default::default(),
                    fields: Vec::new(),
                    owner_uids: Vec::new(),
                    deleting: false,
                })
            })
            .collect();
        let chunks: Vec<Bytes> = list_body(
            "v1",
            "ConfigMapList",
            &json!({"resourceVersion": "9"}),
            objects,
        )
        .collect();
        assert!(chunks.len() > 2 && chunks.iter().all(|c| c.len() < LIST_CHUNK + 4096));
        let whole: Vec<u8> = chunks.concat();
        let parsed: Value = serde_json::from_slice(&whole).unwrap();
        assert_eq!(parsed["items"].as_array().unwrap().len(), 3000);
        assert_eq!(parsed["items"][2999]["i"], 2999);
        let empty: Vec<u8> = list_body("v1", "L", &json!({}), Vec::new())
            .collect::<Vec<_>>()
            .concat();
        assert_eq!(
            serde_json::from_slice::<Value>(&empty).unwrap()["items"],
            json!([])
        );
    }

    #[test]
    fn continue_tokens_round_trip() {
        let key = ObjectKey::new("ns", "name");
        assert_eq!(
            decode_continue(&encode_continue(42, &key)).unwrap(),
            (42, key)
        );
        assert!(decode_continue("%%%").is_err());
    }
}
