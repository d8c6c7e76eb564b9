//! The object store: every object in memory, every change logged to disk before it is
//! acknowledged, and a per-resource history of recent changes that watches replay from.
//!
//! Start reading at [`Store::write`] (the single write path) and [`Store::events_after`]
//! (what a watch reads).
//!
//! # Guarantees
//! - One global, strictly increasing resourceVersion; the log holds changes in that order.
//! - A write is acknowledged (`Store::durable` resolves) only after its log record is on disk
//!   (fsynced when `fsync` is on; written to the OS otherwise, which survives `kill -9`).
//! - Watchers see a change only once it is durable, so nobody acts on a write that a crash
//!   could take back.
//! - After a restart the recent history is rebuilt from the log, so a watch resumes from an
//!   old resourceVersion without relisting, as long as that version is inside the window.

mod wal;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar};

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::watch;

pub use wal::{Record, RecordKind};

/// Identifies an object within one resource: namespace ("" when cluster-scoped) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

impl ObjectKey {
    /// Builds a key.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// One stored object: its serialized form plus the metadata reads filter on.
#[derive(Debug)]
pub struct StoredObject {
    /// Where it lives.
    pub key: ObjectKey,
    /// resourceVersion of its last change.
    pub rv: u64,
    /// The object as JSON, with `metadata.resourceVersion` already set to `rv`.
    pub json: Bytes,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// Values of the resource's selectable fields (field selectors), by path.
    pub fields: Vec<(String, String)>,
    /// uids named in `metadata.ownerReferences`.
    pub owner_uids: Vec<String>,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

impl StoredObject {
    /// Parses the stored JSON.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }

    /// Value of a selectable field, if the resource has it (`metadata.name` and
    /// `metadata.namespace` always).
    pub fn field(&self, path: &str) -> Option<&str> {
        match path {
            "metadata.name" => Some(&self.key.name),
            "metadata.namespace" => Some(&self.key.namespace),
            _ => self
                .fields
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, v)| v.as_str()),
        }
    }
}

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// Kubernetes' wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change of one object, as watchers see it.
#[derive(Debug)]
pub struct WatchEvent {
    /// What happened.
    pub kind: EventType,
    /// The object after the change (its last state for deletions, with the deletion's rv).
    pub object: Arc<StoredObject>,
    /// The object before the change, when known (used to filter selector transitions).
    pub previous: Option<Arc<StoredObject>>,
}

/// A write to the store.
#[derive(Debug)]
pub enum Write {
    /// Create; fails with [`StoreError::AlreadyExists`] when the key is taken.
    Create(Value),
    /// Replace; `expected_rv` (when given) must match the current resourceVersion.
    Update {
        /// Optimistic-concurrency precondition.
        expected_rv: Option<u64>,
        /// The new object.
        value: Value,
    },
    /// Remove, recording `last` (the final state) in the delete event.
    Delete {
        /// Optimistic-concurrency precondition.
        expected_rv: Option<u64>,
        /// The object's final state (for the DELETED event).
        last: Value,
    },
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Create on a taken key.
    #[error("{resource} {key} already exists")]
    AlreadyExists {
        /// `resource.group`.
        resource: String,
        /// The key.
        key: ObjectKey,
    },
    /// Update/delete of a missing object.
    #[error("{resource} {key} not found")]
    NotFound {
        /// `resource.group`.
        resource: String,
        /// The key.
        key: ObjectKey,
    },
    /// resourceVersion precondition failed.
    #[error("{resource} {key} has resourceVersion {actual}, not {expected}")]
    Conflict {
        /// `resource.group`.
        resource: String,
        /// The key.
        key: ObjectKey,
        /// The precondition.
        expected: u64,
        /// The current version.
        actual: u64,
    },
    /// The requested history is no longer kept.
    #[error("too old resource version: {requested} ({oldest})")]
    TooOld {
        /// What was asked for.
        requested: u64,
        /// The oldest version still served.
        oldest: u64,
    },
    /// The object could not be serialized.
    #[error("cannot serialize object: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The log could not be written or read.
    #[error("storage i/o in {path}: {source}")]
    Io {
        /// File involved.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// Store settings.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Directory of the log and snapshots; `None` keeps everything in memory only.
    pub dir: Option<PathBuf>,
    /// fsync the log before acknowledging writes (group commit).
    pub fsync: bool,
    /// Start a new log segment and snapshot once a segment grows past this many bytes.
    pub segment_bytes: u64,
    /// How many recent events each resource keeps for watches.
    pub history_per_resource: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            dir: None,
            fsync: true,
            segment_bytes: 64 << 20,
            history_per_resource: 50_000,
        }
    }
}

/// Extracts the selectable fields of an object of a resource.
pub type FieldExtractor = Arc<dyn Fn(&Value) -> Vec<(String, String)> + Send + Sync>;

struct ResourceState {
    objects: BTreeMap<ObjectKey, Arc<StoredObject>>,
    history: VecDeque<Arc<WatchEvent>>,
    /// Every event after this rv is in `history`.
    compacted_rv: u64,
    /// Highest durable rv of this resource's events; watchers wait on it.
    published: Arc<watch::Sender<u64>>,
}

impl ResourceState {
    fn new(compacted_rv: u64) -> Self {
        Self {
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            compacted_rv,
            published: Arc::new(watch::channel(0).0),
        }
    }
}

struct Inner {
    rv: u64,
    resources: HashMap<String, ResourceState>,
    /// Events after this rv are retained for every resource (minus per-resource trimming).
    history_floor: u64,
    extractors: HashMap<String, FieldExtractor>,
    by_uid: HashMap<String, (String, ObjectKey)>,
    dependents: HashMap<String, HashSet<(String, ObjectKey)>>,
    segment: Option<Segment>,
}

struct Segment {
    file: Arc<File>,
    path: PathBuf,
    bytes: u64,
}

/// Group-commit state shared with the fsync thread.
struct Durability {
    state: std::sync::Mutex<DurableState>,
    wake: Condvar,
    synced: watch::Sender<u64>,
    fsync: bool,
}

struct DurableState {
    appended: u64,
    synced: u64,
    file: Option<Arc<File>>,
    to_publish: Vec<(Arc<watch::Sender<u64>>, u64)>,
    shutdown: bool,
}

/// The object store. Cheap to share behind an `Arc`.
pub struct Store {
    inner: Mutex<Inner>,
    durability: Arc<Durability>,
    config: StoreConfig,
    snapshotting: Arc<AtomicBool>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Store {
    /// Opens the store, replaying the snapshot and log in `config.dir` if any.
    ///
    /// # Errors
    /// Fails when the directory cannot be read or written.
    pub fn open(config: StoreConfig) -> Result<Arc<Store>, StoreError> {
        let durability = Arc::new(Durability {
            state: std::sync::Mutex::new(DurableState {
                appended: 0,
                synced: 0,
                file: None,
                to_publish: Vec::new(),
                shutdown: false,
            }),
            wake: Condvar::new(),
            synced: watch::channel(0).0,
            fsync: config.fsync,
        });
        let mut inner = Inner {
            rv: 0,
            resources: HashMap::new(),
            history_floor: 0,
            extractors: HashMap::new(),
            by_uid: HashMap::new(),
            dependents: HashMap::new(),
            segment: None,
        };
        if let Some(dir) = &config.dir {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
            recover(dir, &mut inner, config.history_per_resource)?;
        }
        {
            let mut d = durability.lock();
            d.appended = inner.rv;
            d.synced = inner.rv;
            d.file = inner.segment.as_ref().map(|s| s.file.clone());
        }
        durability.synced.send_replace(inner.rv);
        for state in inner.resources.values() {
            state.published.send_replace(inner.rv);
        }
        let store = Arc::new(Store {
            inner: Mutex::new(inner),
            durability: durability.clone(),
            config,
            snapshotting: Arc::new(AtomicBool::new(false)),
        });
        std::thread::Builder::new()
            .name("store-fsync".into())
            .spawn(move || sync_loop(&durability))
            .map_err(io_err(Path::new("<fsync thread>")))?;
        Ok(store)
    }

    /// Registers how to extract selectable fields for a resource, and reindexes its objects.
    pub fn set_field_extractor(&self, resource: &str, extractor: FieldExtractor) {
        let mut inner = self.inner.lock();
        if let Some(state) = inner.resources.get_mut(resource) {
            let reindex = |obj: &Arc<StoredObject>| {
                Arc::new(StoredObject {
                    fields: extractor(&obj.value()),
                    ..clone_meta(obj)
                })
            };
            for obj in state.objects.values_mut() {
                *obj = reindex(obj);
            }
            for event in state.history.iter_mut() {
                *event = Arc::new(WatchEvent {
                    kind: event.kind,
                    object: reindex(&event.object),
                    previous: event.previous.as_ref().map(reindex),
                });
            }
        }
        inner.extractors.insert(resource.to_owned(), extractor);
    }

    /// The current (latest assigned) resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.inner.lock().rv
    }

    /// Reads one object.
    pub fn get(&self, resource: &str, key: &ObjectKey) -> Option<Arc<StoredObject>> {
        self.inner
            .lock()
            .resources
            .get(resource)?
            .objects
            .get(key)
            .cloned()
    }

    /// Lists objects of a resource (in one namespace when given), in key order, starting after
    /// `after`, keeping those `keep` accepts, at most `limit` of them. Returns the objects, the
    /// store's rv at the time of the read, and whether more objects follow.
    pub fn list(
        &self,
        resource: &str,
        namespace: Option<&str>,
        after: Option<&ObjectKey>,
        limit: Option<usize>,
        keep: &dyn Fn(&StoredObject) -> bool,
    ) -> (Vec<Arc<StoredObject>>, u64, bool) {
        let inner = self.inner.lock();
        let Some(state) = inner.resources.get(resource) else {
            return (Vec::new(), inner.rv, false);
        };
        let mut out = Vec::new();
        let lower = match (after, namespace) {
            (Some(key), _) => std::ops::Bound::Excluded(key.clone()),
            (None, Some(ns)) => std::ops::Bound::Included(ObjectKey::new(ns, "")),
            (None, None) => std::ops::Bound::Unbounded,
        };
        let mut more = false;
        for (key, obj) in state.objects.range((lower, std::ops::Bound::Unbounded)) {
            if let Some(ns) = namespace
                && key.namespace != ns
            {
                break;
            }
            if !keep(obj) {
                continue;
            }
            if limit.is_some_and(|l| out.len() >= l) {
                more = true;
                break;
            }
            out.push(obj.clone());
        }
        (out, inner.rv, more)
    }

    /// Finds an object by uid: its resource and key.
    pub fn locate_uid(&self, uid: &str) -> Option<(String, ObjectKey)> {
        self.inner.lock().by_uid.get(uid).cloned()
    }

    /// Objects whose ownerReferences name `uid`.
    pub fn dependents_of(&self, uid: &str) -> Vec<(String, ObjectKey)> {
        let inner = self.inner.lock();
        let mut out: Vec<_> = inner
            .dependents
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Every resource that has (or had) objects.
    pub fn resources(&self) -> Vec<String> {
        let mut out: Vec<String> = self.inner.lock().resources.keys().cloned().collect();
        out.sort();
        out
    }

    /// The single write path: checks preconditions, assigns the next resourceVersion, logs the
    /// change, applies it in memory and queues its event. Returns the stored object.
    /// Call [`Store::durable`] with its rv before acknowledging the write.
    ///
    /// # Errors
    /// Precondition failures ([`StoreError::AlreadyExists`], [`StoreError::NotFound`],
    /// [`StoreError::Conflict`]) and log i/o errors; nothing changes on error.
    pub fn write(
        &self,
        resource: &str,
        key: &ObjectKey,
        write: Write,
    ) -> Result<Arc<StoredObject>, StoreError> {
        let mut inner = self.inner.lock();
        let current = inner
            .resources
            .get(resource)
            .and_then(|s| s.objects.get(key))
            .cloned();
        let (kind, mut value, expected) = match write {
            Write::Create(value) => {
                if current.is_some() {
                    return Err(StoreError::AlreadyExists {
                        resource: resource.into(),
                        key: key.clone(),
                    });
                }
                (EventType::Added, value, None)
            }
            Write::Update { expected_rv, value } => (EventType::Modified, value, expected_rv),
            Write::Delete { expected_rv, last } => (EventType::Deleted, last, expected_rv),
        };
        if kind != EventType::Added {
            let Some(cur) = &current else {
                return Err(StoreError::NotFound {
                    resource: resource.into(),
                    key: key.clone(),
                });
            };
            if let Some(expected) = expected
                && expected != cur.rv
            {
                return Err(StoreError::Conflict {
                    resource: resource.into(),
                    key: key.clone(),
                    expected,
                    actual: cur.rv,
                });
            }
        }
        let rv = inner.rv + 1;
        crate::meta::set_resource_version(&mut value, rv);
        let json = Bytes::from(serde_json::to_vec(&value)?);
        let fields = inner
            .extractors
            .get(resource)
            .map(|x| x(&value))
            .unwrap_or_default();
        let object = Arc::new(build_object(key.clone(), rv, json, &value, fields));
        let record_kind = match kind {
            EventType::Added => RecordKind::Added,
            EventType::Modified => RecordKind::Modified,
            EventType::Deleted => RecordKind::Deleted,
        };
        self.append(
            &mut inner,
            &Record {
                rv,
                kind: record_kind,
                group_resource: resource.to_owned(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                json: object.json.clone(),
            },
        )?;
        inner.rv = rv;
        let cap = self.config.history_per_resource;
        let sender = apply(
            &mut inner,
            resource,
            kind,
            object.clone(),
            current,
            cap,
            true,
        );
        self.durability.appended(rv, sender);
        drop(inner);
        Ok(object)
    }

    fn append(&self, inner: &mut Inner, record: &Record) -> Result<(), StoreError> {
        let Some(segment) = inner.segment.as_mut() else {
            return Ok(());
        };
        let bytes = record.encode();
        (&*segment.file)
            .write_all(&bytes)
            .map_err(io_err(&segment.path))?;
        segment.bytes += bytes.len() as u64;
        if segment.bytes >= self.config.segment_bytes && !self.snapshotting.load(Ordering::Acquire)
        {
            self.rotate(inner, record.rv)?;
        }
        Ok(())
    }

    /// Starts a new segment after `rv` and snapshots the state at `rv` in the background.
    fn rotate(&self, inner: &mut Inner, rv: u64) -> Result<(), StoreError> {
        let Some(dir) = self.config.dir.clone() else {
            return Ok(());
        };
        let Some(old) = inner.segment.take() else {
            return Ok(());
        };
        old.file.sync_data().map_err(io_err(&old.path))?;
        let path = wal::segment_path(&dir, rv + 1);
        let file = Arc::new(wal::open_segment(&path, None).map_err(io_err(&path))?);
        wal::sync_dir(&dir).map_err(io_err(&dir))?;
        self.durability.lock().file = Some(file.clone());
        inner.segment = Some(Segment {
            file,
            path,
            bytes: 0,
        });
        // append() runs before apply(), so memory holds the state at rv - 1; the record at rv
        // sits in the segment just closed, which recovery keeps and replays.
        let snapshot_rv = rv - 1;
        let snapshot: Vec<(String, Vec<Arc<StoredObject>>)> = inner
            .resources
            .iter()
            .map(|(r, s)| (r.clone(), s.objects.values().cloned().collect()))
            .collect();
        self.snapshotting.store(true, Ordering::Release);
        let flag = self.snapshotting.clone();
        std::thread::spawn(move || {
            if let Err(error) = write_snapshot_files(&dir, snapshot_rv, rv + 1, snapshot) {
                tracing::error!(%error, "snapshot failed; the log keeps everything");
            }
            flag.store(false, Ordering::Release);
        });
        Ok(())
    }

    /// Resolves once everything up to `rv` is durable.
    pub async fn durable(&self, rv: u64) {
        let mut rx = self.durability.synced.subscribe();
        // The channel only closes when the store is dropped; then there is nothing to wait for.
        let _ = rx.wait_for(|synced| *synced >= rv).await;
    }

    /// Events of `resource` after `after_rv` that are durable, at most `max` of them.
    ///
    /// # Errors
    /// [`StoreError::TooOld`] when events after `after_rv` are no longer all kept.
    pub fn events_after(
        &self,
        resource: &str,
        after_rv: u64,
        max: usize,
    ) -> Result<Vec<Arc<WatchEvent>>, StoreError> {
        let inner = self.inner.lock();
        let Some(state) = inner.resources.get(resource) else {
            if after_rv < inner.history_floor {
                return Err(StoreError::TooOld {
                    requested: after_rv,
                    oldest: inner.history_floor,
                });
            }
            return Ok(Vec::new());
        };
        if after_rv < state.compacted_rv {
            return Err(StoreError::TooOld {
                requested: after_rv,
                oldest: state.compacted_rv,
            });
        }
        let published = *state.published.borrow();
        let start = state.history.partition_point(|e| e.object.rv <= after_rv);
        Ok(state
            .history
            .range(start..)
            .take_while(|e| e.object.rv <= published)
            .take(max)
            .cloned()
            .collect())
    }

    /// A receiver that changes whenever new events of `resource` become visible.
    pub fn subscribe(&self, resource: &str) -> watch::Receiver<u64> {
        let mut inner = self.inner.lock();
        // A kind without state has had no event since the history floor: none was dropped.
        let floor = inner.history_floor;
        inner
            .resources
            .entry(resource.to_owned())
            .or_insert_with(|| ResourceState::new(floor))
            .published
            .subscribe()
    }

    /// The newest durable rv (for bookmarks).
    pub fn durable_rv(&self) -> u64 {
        *self.durability.synced.borrow()
    }

    /// Stops the fsync thread after a final sync.
    pub fn shutdown(&self) {
        self.durability.lock().shutdown = true;
        self.durability.wake.notify_one();
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Writes the snapshot at `snapshot_rv`, then drops files no longer needed: older snapshots and
/// every segment except the current one (starting at `current_segment`) and the one before it
/// (it holds the watch history a restarted server replays).
fn write_snapshot_files(
    dir: &Path,
    snapshot_rv: u64,
    current_segment: u64,
    snapshot: Vec<(String, Vec<Arc<StoredObject>>)>,
) -> io::Result<()> {
    let records = snapshot.into_iter().flat_map(|(resource, objects)| {
        objects
            .into_iter()
            .filter(move |o| o.rv <= snapshot_rv)
            .map(move |o| Record {
                rv: o.rv,
                kind: RecordKind::Added,
                group_resource: resource.clone(),
                namespace: o.key.namespace.clone(),
                name: o.key.name.clone(),
                json: o.json.clone(),
            })
    });
    wal::write_snapshot(dir, snapshot_rv, records)?;
    for (old_rv, path) in wal::list_numbered(dir, "snapshot-", ".snap")? {
        if old_rv < snapshot_rv {
            fs::remove_file(path)?;
        }
    }
    let segments = wal::list_numbered(dir, "wal-", ".log")?;
    let current = segments
        .iter()
        .position(|(first, _)| *first == current_segment);
    if let Some(current) = current {
        for (_, path) in segments.iter().take(current.saturating_sub(1)) {
            fs::remove_file(path)?;
        }
    }
    wal::sync_dir(dir)
}

impl Durability {
    fn lock(&self) -> std::sync::MutexGuard<'_, DurableState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that the log holds everything up to `rv`; `sender` publishes it once durable.
    fn appended(&self, rv: u64, sender: Arc<watch::Sender<u64>>) {
        let mut state = self.lock();
        state.appended = rv;
        state.to_publish.push((sender, rv));
        self.wake.notify_one();
    }
}

/// The group-commit loop: one fsync covers every write appended while the previous one ran.
fn sync_loop(d: &Durability) {
    loop {
        let (target, file) = {
            let mut state = d.lock();
            while state.appended <= state.synced && !state.shutdown {
                state = d
                    .wake
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if state.appended <= state.synced {
                return;
            }
            (state.appended, state.file.clone())
        };
        if d.fsync
            && let Some(Err(error)) = file.as_ref().map(|f| f.sync_data())
        {
            tracing::error!(%error, "fsync of the store log failed");
        }
        let publish = {
            let mut state = d.lock();
            state.synced = target;
            let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut state.to_publish)
                .into_iter()
                .partition(|(_, rv)| *rv <= target);
            state.to_publish = later;
            now
        };
        for (sender, rv) in publish {
            sender.send_if_modified(|v| {
                let changed = *v < rv;
                *v = (*v).max(rv);
                changed
            });
        }
        d.synced.send_replace(target);
    }
}

fn clone_meta(obj: &StoredObject) -> StoredObject {
    StoredObject {
        key: obj.key.clone(),
        rv: obj.rv,
        json: obj.json.clone(),
        uid: obj.uid.clone(),
        labels: obj.labels.clone(),
        fields: obj.fields.clone(),
        owner_uids: obj.owner_uids.clone(),
        deleting: obj.deleting,
    }
}

fn build_object(
    key: ObjectKey,
    rv: u64,
    json: Bytes,
    value: &Value,
    fields: Vec<(String, String)>,
) -> StoredObject {
    StoredObject {
        key,
        rv,
        json,
        uid: crate::meta::uid(value).to_owned(),
        labels: crate::meta::labels(value).into_iter().collect(),
        fields,
        owner_uids: crate::meta::owner_uids(value),
        deleting: crate::meta::is_deleting(value),
    }
}

/// Applies a change to memory: objects, indexes, history. Returns the resource's publisher.
fn apply(
    inner: &mut Inner,
    resource: &str,
    kind: EventType,
    object: Arc<StoredObject>,
    previous: Option<Arc<StoredObject>>,
    history_cap: usize,
    record_history: bool,
) -> Arc<watch::Sender<u64>> {
    if let Some(prev) = &previous {
        unindex(inner, resource, prev);
    }
    if kind != EventType::Deleted {
        index(inner, resource, &object);
    }
    let floor = inner.history_floor;
    let state = inner
        .resources
        .entry(resource.to_owned())
        .or_insert_with(|| ResourceState::new(floor));
    match kind {
        EventType::Deleted => {
            state.objects.remove(&object.key);
        }
        EventType::Added | EventType::Modified => {
            state.objects.insert(object.key.clone(), object.clone());
        }
    }
    if record_history {
        push_history(
            state,
            Arc::new(WatchEvent {
                kind,
                object,
                previous,
            }),
            history_cap,
        );
    }
    state.published.clone()
}

fn push_history(state: &mut ResourceState, event: Arc<WatchEvent>, history_cap: usize) {
    state.history.push_back(event);
    while state.history.len() > history_cap {
        if let Some(evicted) = state.history.pop_front() {
            state.compacted_rv = evicted.object.rv;
        }
    }
}

fn index(inner: &mut Inner, resource: &str, obj: &StoredObject) {
    if obj.uid.is_empty() {
        return;
    }
    inner
        .by_uid
        .insert(obj.uid.clone(), (resource.to_owned(), obj.key.clone()));
    for owner in &obj.owner_uids {
        inner
            .dependents
            .entry(owner.clone())
            .or_default()
            .insert((resource.to_owned(), obj.key.clone()));
    }
}

fn unindex(inner: &mut Inner, resource: &str, obj: &StoredObject) {
    if obj.uid.is_empty() {
        return;
    }
    inner.by_uid.remove(&obj.uid);
    for owner in &obj.owner_uids {
        if let Some(set) = inner.dependents.get_mut(owner) {
            set.remove(&(resource.to_owned(), obj.key.clone()));
            if set.is_empty() {
                inner.dependents.remove(owner);
            }
        }
    }
}

/// Rebuilds memory from the newest complete snapshot and the log segments.
fn recover(dir: &Path, inner: &mut Inner, history_cap: usize) -> Result<(), StoreError> {
    for (_, tmp) in wal::list_numbered(dir, "snapshot-", ".snap.tmp").map_err(io_err(dir))? {
        fs::remove_file(&tmp).map_err(io_err(&tmp))?;
    }
    let mut snapshot_rv = 0;
    for (rv, path) in wal::list_numbered(dir, "snapshot-", ".snap")
        .map_err(io_err(dir))?
        .into_iter()
        .rev()
    {
        if let Some(records) = wal::read_snapshot(&path).map_err(io_err(&path))? {
            for record in records {
                load(inner, record, false, history_cap);
            }
            snapshot_rv = rv;
            break;
        }
        tracing::warn!(path = %path.display(), "ignoring an incomplete snapshot");
    }
    inner.rv = snapshot_rv;
    let segments = wal::list_numbered(dir, "wal-", ".log").map_err(io_err(dir))?;
    inner.history_floor = segments
        .first()
        .map_or(snapshot_rv, |(first, _)| first.saturating_sub(1))
        .min(snapshot_rv);
    for state in inner.resources.values_mut() {
        state.compacted_rv = inner.history_floor;
    }
    let last = segments.len().checked_sub(1);
    for (i, (_, path)) in segments.iter().enumerate() {
        let (records, good_end) = wal::read_records(path).map_err(io_err(path))?;
        for record in records {
            let rv = record.rv;
            if rv <= snapshot_rv {
                history_only(inner, record, history_cap);
            } else {
                load(inner, record, true, history_cap);
                inner.rv = inner.rv.max(rv);
            }
        }
        if Some(i) == last {
            let file = Arc::new(wal::open_segment(path, Some(good_end)).map_err(io_err(path))?);
            inner.segment = Some(Segment {
                file,
                path: path.clone(),
                bytes: good_end,
            });
        }
    }
    if inner.segment.is_none() {
        let path = wal::segment_path(dir, inner.rv + 1);
        let file = Arc::new(wal::open_segment(&path, None).map_err(io_err(&path))?);
        wal::sync_dir(dir).map_err(io_err(dir))?;
        inner.segment = Some(Segment {
            file,
            path,
            bytes: 0,
        });
    }
    Ok(())
}

fn decode_record(record: &Record) -> (ObjectKey, Value) {
    let key = ObjectKey::new(record.namespace.clone(), record.name.clone());
    (
        key,
        serde_json::from_slice(&record.json).unwrap_or(Value::Null),
    )
}

/// Applies a logged change to memory (and history when `with_history`).
fn load(inner: &mut Inner, record: Record, with_history: bool, history_cap: usize) {
    let (key, value) = decode_record(&record);
    let object = Arc::new(build_object(
        key.clone(),
        record.rv,
        record.json.clone(),
        &value,
        Vec::new(),
    ));
    let previous = inner
        .resources
        .get(&record.group_resource)
        .and_then(|s| s.objects.get(&key))
        .cloned();
    let kind = match record.kind {
        RecordKind::Added => EventType::Added,
        RecordKind::Modified => EventType::Modified,
        RecordKind::Deleted => EventType::Deleted,
        RecordKind::SnapshotEnd => return,
    };
    apply(
        inner,
        &record.group_resource,
        kind,
        object,
        previous,
        history_cap,
        with_history,
    );
}

/// Adds a change that the snapshot already contains to the watch history only.
fn history_only(inner: &mut Inner, record: Record, history_cap: usize) {
    let kind = match record.kind {
        RecordKind::Added => EventType::Added,
        RecordKind::Modified => EventType::Modified,
        RecordKind::Deleted => EventType::Deleted,
        RecordKind::SnapshotEnd => return,
    };
    let (key, value) = decode_record(&record);
    let object = Arc::new(build_object(
        key,
        record.rv,
        record.json.clone(),
        &value,
        Vec::new(),
    ));
    let floor = inner.history_floor;
    let state = inner
        .resources
        .entry(record.group_resource)
        .or_insert_with(|| ResourceState::new(floor));
    push_history(
        state,
        Arc::new(WatchEvent {
            kind,
            object,
            previous: None,
        }),
        history_cap,
    );
}

#[cfg(test)]
mod tests;
