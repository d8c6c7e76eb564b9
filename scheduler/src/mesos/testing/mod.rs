//! A stand-in Mesos master for tests, in process, on 127.0.0.1 (no Mesos master can be
//! installed here; mesos-offers.md §11).
//!
//! It follows the documented scheduler API (§1, §2, §6.4): `POST /api/v1/scheduler` only
//! (`405` otherwise); `Content-Type` exactly `application/json` (`415` otherwise, including
//! protobuf, which the stand-in does not speak; `400` when missing); SUBSCRIBE answered `200`
//! with `Mesos-Stream-Id` and a RecordIO stream starting with SUBSCRIBED and an immediate
//! HEARTBEAT, then one HEARTBEAT per interval; a SUBSCRIBE carrying `Mesos-Stream-Id`, a
//! non-SUBSCRIBE call without it or with another one, a call without `framework_id` or without
//! its sub-message: `400`; calls while no subscription is open: `403`; valid calls `202`. A new
//! subscription sends `ERROR "Framework failed over"` to the old stream and silently discards
//! outstanding offers. ACCEPT on unknown or mixed-agent offers answers the launched tasks with
//! master-generated `TASK_LOST` (`TASK_DROPPED` for `PARTITION_AWARE` frameworks) and
//! `REASON_INVALID_OFFERS`, without uuid. RECONCILE answers with `REASON_RECONCILIATION` updates
//! without uuid. Stream records are split at pseudo-random byte boundaries.
//!
//! Tests drive it with [`FakeMaster::offer`], [`FakeMaster::rescind`], [`FakeMaster::update`],
//! [`FakeMaster::drop_subscription`], [`FakeMaster::set_heartbeats`], and read what the
//! framework sent with [`FakeMaster::calls`] and [`FakeMaster::wait_for_calls`].

mod http;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::mesos::calls::{Call, Event, EventType, Offers, Rescind, Update};
use crate::mesos::recordio;
use crate::mesos::types::{
    Attribute, FrameworkInfo, Id, Offer, Resource, Source, TaskState, TaskStatus,
};

/// Errors of the stand-in's test controls.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FakeMasterError {
    /// The action needs an open subscription.
    #[error("no framework is subscribed")]
    NotSubscribed,
    /// A wait ran out of time.
    #[error("timed out waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
    },
    /// The server could not start.
    #[error("cannot start the stand-in master: {0}")]
    Start(String),
}

/// One request the stand-in received.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedCall {
    /// The call, when the body parsed as one.
    pub call: Option<Call>,
    /// The `Mesos-Stream-Id` header.
    pub stream_id: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The status answered.
    pub status: u16,
}

struct Stream {
    id: String,
    tx: mpsc::UnboundedSender<Bytes>,
}

struct MasterState {
    framework: Option<(Id, FrameworkInfo)>,
    stream: Option<Stream>,
    offers: BTreeMap<String, Offer>,
    tasks: BTreeMap<String, (Id, TaskState)>,
    calls: Vec<RecordedCall>,
    next_id: u64,
    heartbeats: bool,
    subscriptions: u32,
    split_seed: u64,
}

struct Shared {
    state: Mutex<MasterState>,
    changed: Notify,
    master_id: String,
    heartbeat_interval: Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, MasterState> {
        // A panic while holding the lock only happens in a failing test; keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl MasterState {
    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Sends an event on the open stream, split into 1 to 3 chunks at pseudo-random points.
    fn send(&mut self, event: &Event) {
        let Some(stream) = &self.stream else {
            return;
        };
        let Ok(json) = serde_json::to_vec(event) else {
            return;
        };
        let record = recordio::encode(&json);
        self.split_seed = self
            .split_seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let len = record.len();
        let a = (self.split_seed >> 33) as usize % len;
        let b = (self.split_seed >> 13) as usize % len;
        let (lo, hi) = (a.min(b), a.max(b));
        for piece in [record.slice(..lo), record.slice(lo..hi), record.slice(hi..)] {
            if !piece.is_empty() {
                let _ = stream.tx.send(piece);
            }
        }
    }

    fn partition_aware(&self) -> bool {
        self.framework
            .as_ref()
            .is_some_and(|(_, info)| info.has_capability("PARTITION_AWARE"))
    }

    fn status_event(
        &mut self,
        task_id: &str,
        state: TaskState,
        reason: Option<&str>,
        reliable: bool,
    ) -> Option<String> {
        let agent = self.tasks.get(task_id).map(|(agent, _)| agent.clone());
        if let Some(entry) = self.tasks.get_mut(task_id) {
            entry.1 = state;
        }
        let uuid = reliable.then(|| {
            base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes())
        });
        let status = TaskStatus {
            task_id: Id::new(task_id),
            state,
            message: None,
            source: Some(if reliable {
                Source::SourceExecutor
            } else {
                Source::SourceMaster
            }),
            reason: reason.map(str::to_string),
            data: None,
            agent_id: agent,
            executor_id: None,
            timestamp: None,
            uuid: uuid.clone(),
            healthy: None,
            container_status: None,
            labels: None,
        };
        let mut event = Event::bare(EventType::Update);
        event.update = Some(Update { status });
        self.send(&event);
        uuid
    }

    /// Closes the subscription: the framework is disconnected and its offers discarded.
    fn close_stream(&mut self) {
        self.stream = None;
        self.offers.clear();
    }
}

/// The stand-in master; stops when dropped.
pub struct FakeMaster {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl std::fmt::Debug for FakeMaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeMaster")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeMaster {
    /// Starts a master on an ephemeral 127.0.0.1 port sending heartbeats every `heartbeat`.
    ///
    /// # Errors
    /// [`FakeMasterError::Start`] when the port cannot be bound.
    pub async fn start(heartbeat: Duration) -> Result<FakeMaster, FakeMasterError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| FakeMasterError::Start(e.to_string()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| FakeMasterError::Start(e.to_string()))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(MasterState {
                framework: None,
                stream: None,
                offers: BTreeMap::new(),
                tasks: BTreeMap::new(),
                calls: Vec::new(),
                next_id: 0,
                heartbeats: true,
                subscriptions: 0,
                split_seed: 7,
            }),
            changed: Notify::new(),
            master_id: uuid::Uuid::new_v4().to_string(),
            heartbeat_interval: heartbeat,
        });
        let server = tokio::spawn(http::serve(listener, shared.clone()));
        Ok(FakeMaster {
            addr,
            shared,
            server,
        })
    }

    /// Base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The framework id the master assigned, once a framework subscribed.
    pub fn framework_id(&self) -> Option<String> {
        self.shared
            .lock()
            .framework
            .as_ref()
            .map(|(id, _)| id.value.clone())
    }

    /// Number of successful subscriptions so far.
    pub fn subscriptions(&self) -> u32 {
        self.shared.lock().subscriptions
    }

    /// Outstanding offer ids.
    pub fn outstanding_offers(&self) -> Vec<String> {
        self.shared.lock().offers.keys().cloned().collect()
    }

    /// Every request received so far.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.shared.lock().calls.clone()
    }

    /// Sends an OFFERS event with one offer of `resources` on `host` (agent `agent_id`) and
    /// returns its id.
    ///
    /// # Errors
    /// [`FakeMasterError::NotSubscribed`].
    pub fn offer(
        &self,
        host: &str,
        agent_id: &str,
        resources: Vec<Resource>,
        attributes: Vec<Attribute>,
    ) -> Result<String, FakeMasterError> {
        let mut state = self.shared.lock();
        let framework_id = match (&state.framework, &state.stream) {
            (Some((id, _)), Some(_)) => id.clone(),
            _ => return Err(FakeMasterError::NotSubscribed),
        };
        let offer_id = format!("{}-O{}", self.shared.master_id, state.next());
        let offer = Offer {
            id: Id::new(offer_id.clone()),
            framework_id,
            agent_id: Id::new(agent_id),
            hostname: host.to_string(),
            url: None,
            domain: None,
            resources,
            attributes,
            executor_ids: Vec::new(),
            allocation_info: None,
        };
        state.offers.insert(offer_id.clone(), offer.clone());
        let mut event = Event::bare(EventType::Offers);
        event.offers = Some(Offers {
            offers: vec![offer],
        });
        state.send(&event);
        Ok(offer_id)
    }

    /// Rescinds an outstanding offer (RESCIND event).
    pub fn rescind(&self, offer_id: &str) {
        let mut state = self.shared.lock();
        if state.offers.remove(offer_id).is_some() {
            let mut event = Event::bare(EventType::Rescind);
            event.rescind = Some(Rescind {
                offer_id: Id::new(offer_id),
            });
            state.send(&event);
        }
    }

    /// Sends a reliable (executor-generated, with uuid) status update for a launched task and
    /// returns the uuid; `None` when the task was never launched.
    pub fn update(&self, task_id: &str, state: TaskState) -> Option<String> {
        let mut master = self.shared.lock();
        if !master.tasks.contains_key(task_id) {
            return None;
        }
        master.status_event(task_id, state, None, true)
    }

    /// Ends the subscription stream as a dropped connection would.
    pub fn drop_subscription(&self) {
        self.shared.lock().close_stream();
        self.shared.changed.notify_waiters();
    }

    /// Turns periodic heartbeats on or off.
    pub fn set_heartbeats(&self, on: bool) {
        self.shared.lock().heartbeats = on;
    }

    /// Waits until `done` holds for the recorded calls, or `deadline` passes.
    ///
    /// # Errors
    /// [`FakeMasterError::Timeout`] naming `what`.
    pub async fn wait_for_calls(
        &self,
        what: &str,
        deadline: Duration,
        done: impl Fn(&[RecordedCall]) -> bool,
    ) -> Result<Vec<RecordedCall>, FakeMasterError> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let notified = self.shared.changed.notified();
            {
                let state = self.shared.lock();
                if done(&state.calls) {
                    return Ok(state.calls.clone());
                }
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return Err(FakeMasterError::Timeout {
                    what: what.to_string(),
                });
            }
        }
    }
}

impl Drop for FakeMaster {
    fn drop(&mut self) {
        self.server.abort();
        self.shared.lock().close_stream();
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
