//! The scheduler's in-memory index of the cluster, fed by watch events and never rebuilt per
//! decision: it keeps the [`ClusterState`] the placement core decides from in step with Nodes,
//! node Leases, Pods, `TitusJob`s and `CapacityGroup`s. No I/O: the runner feeds it
//! [`IndexEvent`]s and the time, and reads pending tasks out of it.
//!
//! | event | effect on the cluster state |
//! | --- | --- |
//! | Node added/changed | `upsert_agent` when it may take placements (then its bound Pods are placed), `remove_agent` when it may not (cordoned, not Ready, untolerated taint, Lease older than 40 s) |
//! | Node deleted | `remove_agent`: its Pods' capacity is released |
//! | Lease renewed | the Node's liveness is re-judged (also on every clock tick) |
//! | our Pod bound, not finished | `place_task` (no-op when the scheduler assumed it already) |
//! | our Pod finished or deleted | `release_task` |
//! | another scheduler's Pod bound | counted in the agent's `used` |
//! | `TitusJob`/`CapacityGroup` changed | placements of its Pods re-recorded (capacity group, tier, `exclusiveHost`) |
//!
//! Assignments made by `schedule()` are *assumed*: they stay in the state while the bind is in
//! flight and until the watch shows the Pod bound; a failed bind ([`Index::forget`]) or a bind
//! never observed within `assume_ttl` releases them.
//!
//! Relists (watcher `Init` … `InitDone`) remove the objects that were not listed again, and the
//! scheduler does not decide before every kind has been listed once ([`Index::synced`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::watcher::Event;
use titus_crds::{CapacityGroup, TitusJob};

use crate::cluster::ClusterState;
use crate::kube::job::{GroupIndex, JobView, job_view};
use crate::kube::node::{NodeRules, NodeView, node_view, reporting};
use crate::kube::pod::{PodView, placed_task, pod_view, task_request};
use crate::model::{CapacityGroupSpec, TaskRequest};
use crate::resources::Resources;

/// A watch event of one of the kinds the index follows.
#[derive(Debug)]
pub enum IndexEvent {
    /// Nodes.
    Node(Box<Event<Node>>),
    /// Node heartbeat Leases (`kube-node-lease`).
    Lease(Box<Event<Lease>>),
    /// Pods (all schedulers: others' Pods use node capacity too).
    Pod(Box<Event<Pod>>),
    /// Titus jobs.
    Job(Box<Event<TitusJob>>),
    /// Capacity groups.
    CapacityGroup(Box<Event<CapacityGroup>>),
}

impl IndexEvent {
    /// A Node event.
    pub fn node(event: Event<Node>) -> IndexEvent {
        IndexEvent::Node(Box::new(event))
    }

    /// A Lease event.
    pub fn lease(event: Event<Lease>) -> IndexEvent {
        IndexEvent::Lease(Box::new(event))
    }

    /// A Pod event.
    pub fn pod(event: Event<Pod>) -> IndexEvent {
        IndexEvent::Pod(Box::new(event))
    }

    /// A `TitusJob` event.
    pub fn job(event: Event<TitusJob>) -> IndexEvent {
        IndexEvent::Job(Box::new(event))
    }

    /// A `CapacityGroup` event.
    pub fn capacity_group(event: Event<CapacityGroup>) -> IndexEvent {
        IndexEvent::CapacityGroup(Box::new(event))
    }
}

/// The kinds the index follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Nodes.
    Node,
    /// Leases.
    Lease,
    /// Pods.
    Pod,
    /// Titus jobs.
    Job,
    /// Capacity groups.
    CapacityGroup,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 5] = [
        Kind::Node,
        Kind::Lease,
        Kind::Pod,
        Kind::Job,
        Kind::CapacityGroup,
    ];
}

/// Index settings.
#[derive(Clone, Debug)]
pub struct IndexConfig {
    /// `spec.schedulerName` of the Pods this scheduler places.
    pub scheduler_name: String,
    /// Node rules.
    pub nodes: NodeRules,
    /// How long an assignment stays assumed without the watch showing the Pod bound.
    pub assume_ttl: Duration,
}

/// Pending work of one iteration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pending {
    /// Tasks to place, Critical first, then oldest first; at most the requested number.
    pub requests: Vec<TaskRequest>,
    /// Pending Pods whose resources cannot be read: (pod key, message).
    pub invalid: Vec<(String, String)>,
    /// Pending Pods waiting for their `TitusJob` to be seen.
    pub waiting_for_job: usize,
    /// Pending Pods in total (before the bound).
    pub total: usize,
}

#[derive(Clone, Debug)]
struct NodeEntry {
    view: NodeView,
    in_state: bool,
}

#[derive(Clone, Debug)]
struct Assumed {
    node: String,
    at: Timestamp,
}

#[derive(Clone, Debug)]
struct PodEntry {
    view: PodView,
    assumed: Option<Assumed>,
    /// What this Pod adds to its node's `used` (Pods of other schedulers).
    foreign: Option<(String, Resources)>,
}

/// The index (see the module docs).
#[derive(Debug)]
pub struct Index {
    config: IndexConfig,
    state: ClusterState,
    nodes: HashMap<String, NodeEntry>,
    leases: HashMap<String, Timestamp>,
    foreign_used: HashMap<String, Resources>,
    pods: HashMap<String, PodEntry>,
    pods_by_node: HashMap<String, BTreeSet<String>>,
    pods_by_job: HashMap<String, BTreeSet<String>>,
    jobs: HashMap<String, JobView>,
    groups: GroupIndex,
    relisting: HashMap<Kind, HashSet<String>>,
    synced: HashSet<Kind>,
    dirty: bool,
    now: Timestamp,
}

/// Namespace of node heartbeat Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

fn object_key(namespace: Option<&String>, name: Option<&String>) -> Option<String> {
    let name = name?;
    Some(match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.clone(),
    })
}

impl Index {
    /// An empty index.
    pub fn new(config: IndexConfig) -> Index {
        Index {
            config,
            state: ClusterState::new(),
            nodes: HashMap::new(),
            leases: HashMap::new(),
            foreign_used: HashMap::new(),
            pods: HashMap::new(),
            pods_by_node: HashMap::new(),
            pods_by_job: HashMap::new(),
            jobs: HashMap::new(),
            groups: GroupIndex::default(),
            relisting: HashMap::new(),
            synced: HashSet::new(),
            dirty: false,
            now: Timestamp::UNIX_EPOCH,
        }
    }

    /// The cluster state placement decides from.
    pub fn state(&self) -> &ClusterState {
        &self.state
    }

    /// The cluster state, for `schedule()` (whose assignments must then be [`Index::assume`]d).
    pub fn state_mut(&mut self) -> &mut ClusterState {
        &mut self.state
    }

    /// Capacity group specs.
    pub fn groups(&self) -> &[CapacityGroupSpec] {
        self.groups.specs()
    }

    /// A Pod by key (`namespace/name`).
    pub fn pod(&self, key: &str) -> Option<&PodView> {
        self.pods.get(key).map(|e| &e.view)
    }

    /// True once every kind has been listed.
    pub fn synced(&self) -> bool {
        Kind::ALL.iter().all(|k| self.synced.contains(k))
    }

    /// Kinds not listed yet.
    pub fn unsynced(&self) -> Vec<Kind> {
        Kind::ALL
            .into_iter()
            .filter(|k| !self.synced.contains(k))
            .collect()
    }

    /// True (and reset) when something changed that may let pending Pods be placed
    /// differently.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Applies one watch event observed at `now`.
    pub fn apply(&mut self, event: IndexEvent, now: Timestamp) {
        self.now = now;
        match event {
            IndexEvent::Node(e) => {
                self.apply_kind(Kind::Node, *e, Self::upsert_node, |i, k| i.delete_node(k))
            }
            IndexEvent::Lease(e) => self.apply_kind(Kind::Lease, *e, Self::upsert_lease, |i, k| {
                i.delete_lease(k)
            }),
            IndexEvent::Pod(e) => {
                self.apply_kind(Kind::Pod, *e, Self::upsert_pod, |i, k| i.delete_pod(k))
            }
            IndexEvent::Job(e) => {
                self.apply_kind(Kind::Job, *e, Self::upsert_job, |i, k| i.delete_job(k))
            }
            IndexEvent::CapacityGroup(e) => {
                self.apply_kind(Kind::CapacityGroup, *e, Self::upsert_group, |i, k| {
                    i.delete_group(k)
                })
            }
        }
    }

    fn apply_kind<K: kube::Resource>(
        &mut self,
        kind: Kind,
        event: Event<K>,
        upsert: fn(&mut Self, &str, &K),
        delete: fn(&mut Self, &str),
    ) {
        let key_of = |obj: &K| object_key(obj.meta().namespace.as_ref(), obj.meta().name.as_ref());
        match event {
            Event::Init => {
                self.relisting.insert(kind, HashSet::new());
            }
            Event::InitApply(obj) => {
                if let Some(key) = key_of(&obj) {
                    upsert(self, &key, &obj);
                    self.relisting.entry(kind).or_default().insert(key);
                }
            }
            Event::InitDone => {
                let seen = self.relisting.remove(&kind).unwrap_or_default();
                for key in self.keys(kind) {
                    if !seen.contains(&key) {
                        delete(self, &key);
                    }
                }
                self.synced.insert(kind);
                self.dirty = true;
            }
            Event::Apply(obj) => {
                if let Some(key) = key_of(&obj) {
                    upsert(self, &key, &obj);
                }
            }
            Event::Delete(obj) => {
                if let Some(key) = key_of(&obj) {
                    delete(self, &key);
                }
            }
        }
    }

    fn keys(&self, kind: Kind) -> Vec<String> {
        match kind {
            Kind::Node => self.nodes.keys().cloned().collect(),
            Kind::Lease => self.leases.keys().cloned().collect(),
            Kind::Pod => self.pods.keys().cloned().collect(),
            Kind::Job => self.jobs.keys().cloned().collect(),
            Kind::CapacityGroup => self.groups.keys().cloned().collect(),
        }
    }

    /// Re-judges node liveness and expires assumptions at `now` (call on a clock tick).
    pub fn refresh(&mut self, now: Timestamp) {
        self.now = now;
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for name in names {
            self.refresh_node(&name);
        }
        let ttl = SignedDuration::try_from(self.config.assume_ttl).unwrap_or(SignedDuration::MAX);
        let expired: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, e)| {
                e.view.node_name.is_none()
                    && e.assumed
                        .as_ref()
                        .is_some_and(|a| now.duration_since(a.at) > ttl)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            tracing::warn!(pod = %key, "bind not observed in time; assignment released");
            self.forget(&key);
        }
    }

    /// Records that `schedule()` assigned the Pod to `node` (the state already holds it).
    pub fn assume(&mut self, key: &str, node: &str, now: Timestamp) {
        if let Some(entry) = self.pods.get_mut(key) {
            entry.assumed = Some(Assumed {
                node: node.to_string(),
                at: now,
            });
        }
    }

    /// Drops an assumed assignment (its bind failed): the capacity is released unless the
    /// watch already shows the Pod bound.
    pub fn forget(&mut self, key: &str) {
        match self.pods.get_mut(key) {
            Some(entry) => {
                entry.assumed = None;
                self.reconcile_pod(key);
            }
            None => {
                if self.state.release_task(key).is_some() {
                    self.dirty = true;
                }
            }
        }
    }

    // --- nodes and leases ---

    fn upsert_node(&mut self, name: &str, node: &Node) {
        let Some(view) = node_view(node, &self.config.nodes) else {
            return;
        };
        let changed = self.nodes.get(name).is_none_or(|e| e.view != view);
        let in_state = self.nodes.get(name).is_some_and(|e| e.in_state);
        self.nodes
            .insert(name.to_string(), NodeEntry { view, in_state });
        if changed {
            if in_state {
                // Re-upsert with the new attributes; placements are kept.
                self.push_agent(name);
            }
            self.refresh_node(name);
        }
    }

    fn delete_node(&mut self, name: &str) {
        if self.nodes.remove(name).is_some() && self.state.remove_agent(name).is_some() {
            self.dirty = true;
        }
    }

    fn upsert_lease(&mut self, key: &str, lease: &Lease) {
        let spec = lease.spec.as_ref();
        let renewed = spec
            .and_then(|s| s.renew_time.as_ref().or(s.acquire_time.as_ref()))
            .map(|t| t.0);
        match renewed {
            Some(at) => {
                self.leases.insert(key.to_string(), at);
            }
            None => {
                self.leases.remove(key);
            }
        }
        self.lease_changed(key);
    }

    fn delete_lease(&mut self, key: &str) {
        self.leases.remove(key);
        self.lease_changed(key);
    }

    fn lease_changed(&mut self, key: &str) {
        if let Some(node) = key
            .strip_prefix(NODE_LEASE_NAMESPACE)
            .and_then(|k| k.strip_prefix('/'))
            && self.nodes.contains_key(node)
        {
            let node = node.to_string();
            self.refresh_node(&node);
        }
    }

    fn lease_renewed(&self, node: &str) -> Option<Timestamp> {
        self.leases
            .get(&format!("{NODE_LEASE_NAMESPACE}/{node}"))
            .copied()
    }

    /// Puts the node in or out of the state according to its view and liveness.
    fn refresh_node(&mut self, name: &str) {
        let Some(entry) = self.nodes.get(name) else {
            return;
        };
        let usable = entry.view.exclusion.is_none()
            && reporting(self.lease_renewed(name), self.now, &self.config.nodes);
        match (usable, entry.in_state) {
            (true, false) => {
                if self.push_agent(name) {
                    if let Some(e) = self.nodes.get_mut(name) {
                        e.in_state = true;
                    }
                    let keys: Vec<String> = self
                        .pods_by_node
                        .get(name)
                        .map(|s| s.iter().cloned().collect())
                        .unwrap_or_default();
                    let assumed: Vec<String> = self
                        .pods
                        .iter()
                        .filter(|(_, e)| e.assumed.as_ref().is_some_and(|a| a.node == name))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for key in keys.into_iter().chain(assumed) {
                        self.reconcile_pod(&key);
                    }
                    self.dirty = true;
                }
            }
            (false, true) => {
                let why = entry
                    .view
                    .exclusion
                    .as_ref()
                    .map_or_else(|| "not reporting".to_string(), ToString::to_string);
                tracing::info!(node = %name, %why, "node takes no placements");
                self.state.remove_agent(name);
                if let Some(e) = self.nodes.get_mut(name) {
                    e.in_state = false;
                }
                self.dirty = true;
            }
            (true, true) | (false, false) => {}
        }
    }

    /// Upserts the node's agent with what other schedulers' Pods use; false when refused.
    fn push_agent(&mut self, name: &str) -> bool {
        let Some(entry) = self.nodes.get(name) else {
            return false;
        };
        let mut agent = entry.view.agent.clone();
        agent.used = self.foreign_used.get(name).copied().unwrap_or_default();
        let before = self.state.agent(name).map(|a| (a.allocatable, a.used));
        let after = (agent.allocatable, agent.used);
        match self.state.upsert_agent(agent) {
            Ok(()) => {
                if before != Some(after) {
                    self.dirty = true;
                }
                true
            }
            Err(error) => {
                tracing::warn!(node = %name, %error, "node left out of placement");
                false
            }
        }
    }

    // --- pods ---

    fn upsert_pod(&mut self, key: &str, pod: &Pod) {
        let Some(view) = pod_view(pod, &self.config.scheduler_name) else {
            return;
        };
        let old = self.pods.remove(key);
        let (assumed, old_view) = match old {
            Some(e) => {
                self.unindex_pod(key, &e);
                (e.assumed, Some(e.view))
            }
            None => (None, None),
        };
        let was_pending = old_view.as_ref().filter(|_| assumed.is_none());
        let assumed = if view.node_name.is_some() {
            None
        } else {
            assumed
        };
        let is_pending = Some(&view).filter(|_| assumed.is_none());
        if pending_relevant(was_pending) != pending_relevant(is_pending) {
            self.dirty = true;
        }
        let foreign = (!view.ours && view.holds_resources())
            .then(|| {
                let node = view.node_name.clone()?;
                let resources = view.resources.clone().ok()?;
                Some((node, resources))
            })
            .flatten();
        let entry = PodEntry {
            view,
            assumed,
            foreign,
        };
        self.index_pod(key, &entry);
        self.pods.insert(key.to_string(), entry);
        self.reconcile_pod(key);
    }

    fn delete_pod(&mut self, key: &str) {
        if let Some(entry) = self.pods.remove(key) {
            self.unindex_pod(key, &entry);
            if entry.view.is_pending() {
                self.dirty = true;
            }
        }
        if self.state.release_task(key).is_some() {
            self.dirty = true;
        }
    }

    fn index_pod(&mut self, key: &str, entry: &PodEntry) {
        if let Some(node) = &entry.view.node_name {
            self.pods_by_node
                .entry(node.clone())
                .or_default()
                .insert(key.to_string());
        }
        if let Some(job) = job_key(&entry.view) {
            self.pods_by_job
                .entry(job)
                .or_default()
                .insert(key.to_string());
        }
        if let Some((node, resources)) = &entry.foreign {
            let used = self.foreign_used.entry(node.clone()).or_default();
            *used = used.saturating_add(resources);
            self.push_if_in_state(node);
        }
    }

    fn unindex_pod(&mut self, key: &str, entry: &PodEntry) {
        if let Some(node) = &entry.view.node_name {
            remove_from(&mut self.pods_by_node, node, key);
        }
        if let Some(job) = job_key(&entry.view) {
            remove_from(&mut self.pods_by_job, &job, key);
        }
        if let Some((node, resources)) = &entry.foreign {
            if let Some(used) = self.foreign_used.get_mut(node) {
                *used = used.saturating_sub(resources);
                if *used == Resources::ZERO {
                    self.foreign_used.remove(node);
                }
            }
            self.push_if_in_state(node);
        }
    }

    fn push_if_in_state(&mut self, node: &str) {
        if self.nodes.get(node).is_some_and(|e| e.in_state) {
            self.push_agent(node);
        }
    }

    /// Makes the state hold what this Pod holds: its node (or assumed node) while it is ours
    /// and not finished, nothing otherwise.
    fn reconcile_pod(&mut self, key: &str) {
        let Some(entry) = self.pods.get(key) else {
            return;
        };
        let view = &entry.view;
        let target = if !view.ours || view.terminal {
            None
        } else {
            view.node_name
                .clone()
                .or_else(|| entry.assumed.as_ref().map(|a| a.node.clone()))
        };
        let record = target
            .filter(|node| self.nodes.get(node).is_some_and(|e| e.in_state))
            .and_then(|node| {
                let job = job_key(view).and_then(|k| self.jobs.get(&k));
                let request = task_request(view, job, &self.groups).ok()?;
                Some((node, placed_task(&request)))
            });
        match record {
            Some((node, placed)) => {
                let same = self.state.task_agent(key) == Some(node.as_str())
                    && self
                        .state
                        .agent(&node)
                        .and_then(|a| a.placed.get(key))
                        .is_some_and(|p| *p == placed);
                if same {
                    return;
                }
                if self.state.task_agent(key).is_some() {
                    self.dirty = true;
                }
                if let Err(error) = self.state.place_task(&node, key, placed) {
                    tracing::warn!(pod = %key, %node, %error, "cannot record placement");
                }
            }
            None => {
                if self.state.release_task(key).is_some() {
                    self.dirty = true;
                }
            }
        }
    }

    // --- jobs and capacity groups ---

    fn upsert_job(&mut self, key: &str, job: &TitusJob) {
        let Some(view) = job_view(job) else {
            return;
        };
        if self.jobs.get(key) == Some(&view) {
            return;
        }
        self.jobs.insert(key.to_string(), view);
        self.job_changed(key);
    }

    fn delete_job(&mut self, key: &str) {
        if self.jobs.remove(key).is_some() {
            self.job_changed(key);
        }
    }

    fn job_changed(&mut self, key: &str) {
        let pods: Vec<String> = self
            .pods_by_job
            .get(key)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for pod in &pods {
            self.reconcile_pod(pod);
        }
        if !pods.is_empty() {
            self.dirty = true;
        }
    }

    fn upsert_group(&mut self, key: &str, group: &CapacityGroup) {
        self.groups.upsert(key, group);
        self.groups_changed();
    }

    fn delete_group(&mut self, key: &str) {
        if self.groups.remove(key) {
            self.groups_changed();
        }
    }

    fn groups_changed(&mut self) {
        let ours: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, e)| e.view.ours)
            .map(|(k, _)| k.clone())
            .collect();
        for key in ours {
            self.reconcile_pod(&key);
        }
        self.dirty = true;
    }

    // --- decisions read this ---

    /// The pending tasks, at most `limit` of them: Critical first, then oldest first.
    pub fn pending(&self, limit: usize) -> Pending {
        let mut out = Pending::default();
        for entry in self.pods.values() {
            let view = &entry.view;
            if !view.is_pending() || entry.assumed.is_some() {
                continue;
            }
            out.total += 1;
            let job = match job_key(view) {
                Some(key) => match self.jobs.get(&key) {
                    Some(job) => Some(job),
                    None => {
                        out.waiting_for_job += 1;
                        continue;
                    }
                },
                None => None,
            };
            match task_request(view, job, &self.groups) {
                Ok(request) => out.requests.push(request),
                Err(error) => out
                    .invalid
                    .push((view.key.clone(), format!("cannot read resources: {error}"))),
            }
        }
        out.requests.sort_by(|a, b| {
            (a.tier, a.order_key, &a.task_id).cmp(&(b.tier, b.order_key, &b.task_id))
        });
        out.requests.truncate(limit);
        out.invalid.sort();
        out
    }
}

/// `namespace/job-name` of the Pod's job, when it names one.
fn job_key(view: &PodView) -> Option<String> {
    view.job_name
        .as_ref()
        .map(|name| format!("{}/{name}", view.namespace))
}

/// The fields that decide whether and how a Pod is scheduled.
fn pending_relevant(view: Option<&PodView>) -> Option<PodView> {
    view.filter(|v| v.is_pending()).map(|v| PodView {
        scheduled: None,
        ..v.clone()
    })
}

fn remove_from(map: &mut HashMap<String, BTreeSet<String>>, key: &str, value: &str) {
    if let Some(set) = map.get_mut(key) {
        set.remove(value);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
