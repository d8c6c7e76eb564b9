//! The driver task behind [`MesosFramework`](super::MesosFramework): one loop that owns the
//! subscription, the held offers and the known tasks, so no state is shared between tasks.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};

use super::{
    AckToken, Command, FrameworkConfig, FrameworkError, FrameworkEvent, HostOffers, StatusUpdate,
};
use crate::mesos::calls::{Call, Event, EventType, ReconcileTask};
use crate::mesos::offers::agent_from_offers;
use crate::mesos::recordio::RecordIoDecoder;
use crate::mesos::states::titus_state;
use crate::mesos::types::{Id, Offer, TaskStatus};

/// The scheduler endpoint path.
pub(crate) const SCHEDULER_PATH: &str = "/api/v1/scheduler";
/// The subscription id header.
pub(crate) const STREAM_ID: &str = "Mesos-Stream-Id";
/// Mesos' fixed heartbeat interval, assumed until SUBSCRIBED says otherwise.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Lease {
    offer: Offer,
    received: Instant,
}

struct Reconciliation {
    pending: BTreeSet<String>,
    next: Instant,
    interval: Duration,
}

/// Why a subscription ended.
enum Exit {
    Shutdown,
    Lost(String),
}

pub(super) struct Driver {
    config: FrameworkConfig,
    client: HttpClient,
    events: mpsc::Sender<FrameworkEvent>,
    framework_id: Option<Id>,
    stream_id: Option<String>,
    heartbeat: Duration,
    /// Held offers by host.
    offers: BTreeMap<String, Vec<Lease>>,
    /// Non-terminal tasks the framework knows, with their agent.
    tasks: BTreeMap<String, Option<Id>>,
    reconciliation: Option<Reconciliation>,
}

impl Driver {
    pub(super) fn new(config: FrameworkConfig, events: mpsc::Sender<FrameworkEvent>) -> Driver {
        Driver {
            framework_id: config.framework_info.id.clone(),
            config,
            client: Client::builder(TokioExecutor::new()).build_http(),
            events,
            stream_id: None,
            heartbeat: DEFAULT_HEARTBEAT,
            offers: BTreeMap::new(),
            tasks: BTreeMap::new(),
            reconciliation: None,
        }
    }

    pub(super) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut backoff = self.config.backoff_min;
        loop {
            let reason = match self.subscribe().await {
                Ok(response) => match self.serve(response, &mut commands, &mut backoff).await {
                    Exit::Shutdown => return,
                    Exit::Lost(reason) => reason,
                },
                Err(reason) => reason,
            };
            self.disconnected(reason).await;
            if !self.wait_disconnected(backoff, &mut commands).await {
                return;
            }
            backoff = (backoff * 2).min(self.config.backoff_max);
        }
    }

    async fn emit(&self, event: FrameworkEvent) {
        // A consumer that dropped its receiver no longer wants events; keep serving calls.
        let _ = self.events.send(event).await;
    }

    async fn subscribe(&mut self) -> Result<Response<Incoming>, String> {
        let mut info = self.config.framework_info.clone();
        info.id = self.framework_id.clone();
        let body = serde_json::to_vec(&Call::subscribe(info)).map_err(|e| e.to_string())?;
        let request = Request::post(format!("{}{SCHEDULER_PATH}", self.config.master))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("bad master address {}: {e}", self.config.master))?;
        let response = timeout(self.config.call_timeout, self.client.request(request))
            .await
            .map_err(|_| "SUBSCRIBE timed out".to_string())?
            .map_err(|e| format!("SUBSCRIBE failed: {e}"))?;
        if response.status() == StatusCode::TEMPORARY_REDIRECT {
            return Err(self.follow_redirect(&response));
        }
        if response.status() != StatusCode::OK {
            let status = response.status().as_u16();
            let text = body_text(response.into_body()).await;
            return Err(format!("SUBSCRIBE answered {status}: {text}"));
        }
        let stream_id = response
            .headers()
            .get(STREAM_ID)
            .and_then(|v| v.to_str().ok())
            .ok_or("SUBSCRIBE answer has no Mesos-Stream-Id")?;
        self.stream_id = Some(stream_id.to_string());
        Ok(response)
    }

    /// A non-leading master answers 307 with a protocol-relative `Location`.
    fn follow_redirect(&mut self, response: &Response<Incoming>) -> String {
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let leader = location
            .strip_prefix("//")
            .and_then(|rest| rest.split('/').next())
            .filter(|authority| !authority.is_empty());
        match leader {
            Some(authority) => {
                self.config.master = format!("http://{authority}");
                format!("redirected to the leading master {authority}")
            }
            None => format!("redirect without a usable Location: {location:?}"),
        }
    }

    async fn serve(
        &mut self,
        response: Response<Incoming>,
        commands: &mut mpsc::Receiver<Command>,
        backoff: &mut Duration,
    ) -> Exit {
        let mut body = response.into_body();
        let mut decoder = RecordIoDecoder::default();
        let mut deadline = Instant::now() + self.liveness();
        let mut housekeeping = tokio::time::interval(self.config.housekeeping_interval);
        loop {
            tokio::select! {
                frame = body.frame() => {
                    let data = match frame {
                        None => return Exit::Lost("event stream ended".into()),
                        Some(Err(e)) => return Exit::Lost(format!("event stream failed: {e}")),
                        Some(Ok(frame)) => match frame.into_data() {
                            Ok(data) => data,
                            Err(_) => continue,
                        },
                    };
                    decoder.push(&data);
                    loop {
                        let record = match decoder.next_record() {
                            Ok(Some(record)) => record,
                            Ok(None) => break,
                            Err(e) => return Exit::Lost(format!("bad event framing: {e}")),
                        };
                        deadline = Instant::now() + self.liveness();
                        if let Err(reason) = self.on_record(&record, backoff).await {
                            return Exit::Lost(reason);
                        }
                    }
                }
                () = sleep_until(deadline) => {
                    return Exit::Lost(format!(
                        "no event for {} heartbeat intervals", self.config.missed_heartbeats
                    ));
                }
                command = commands.recv() => match command {
                    None => return Exit::Shutdown,
                    Some(command) => self.on_command(command).await,
                },
                _ = housekeeping.tick() => {
                    self.expire_offers().await;
                    self.retry_reconciliation().await;
                }
            }
        }
    }

    fn liveness(&self) -> Duration {
        self.heartbeat * self.config.missed_heartbeats.max(1)
    }

    /// Serves commands while disconnected until the back-off delay has passed. False when the
    /// handle is gone.
    async fn wait_disconnected(
        &mut self,
        delay: Duration,
        commands: &mut mpsc::Receiver<Command>,
    ) -> bool {
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                () = sleep_until(until) => return true,
                command = commands.recv() => match command {
                    None => return false,
                    Some(command) => self.on_command(command).await,
                },
            }
        }
    }

    async fn disconnected(&mut self, reason: String) {
        tracing::warn!(%reason, "mesos subscription lost");
        self.stream_id = None;
        self.reconciliation = None;
        if !std::mem::take(&mut self.offers).is_empty() {
            self.emit(FrameworkEvent::OffersChanged { hosts: 0 }).await;
        }
        self.emit(FrameworkEvent::Disconnected { reason }).await;
    }

    async fn on_record(&mut self, record: &[u8], backoff: &mut Duration) -> Result<(), String> {
        let event: Event = match serde_json::from_slice(record) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring an event that does not parse");
                return Ok(());
            }
        };
        match event.kind {
            EventType::Subscribed => {
                let Some(subscribed) = event.subscribed else {
                    return Err("SUBSCRIBED without payload".into());
                };
                if let Some(seconds) = subscribed.heartbeat_interval_seconds.filter(|s| *s > 0.0) {
                    self.heartbeat = Duration::from_secs_f64(seconds);
                }
                let framework_id = subscribed.framework_id.value.clone();
                self.framework_id = Some(subscribed.framework_id);
                *backoff = self.config.backoff_min;
                self.offers.clear();
                self.emit(FrameworkEvent::Subscribed { framework_id }).await;
                self.start_reconciliation().await;
            }
            EventType::Offers => {
                let now = Instant::now();
                for offer in event.offers.map(|o| o.offers).unwrap_or_default() {
                    let host = offer.hostname.clone();
                    self.offers.entry(host).or_default().push(Lease {
                        offer,
                        received: now,
                    });
                }
                self.offers_changed().await;
            }
            EventType::Rescind => {
                if let Some(rescind) = event.rescind {
                    self.forget_offer(&rescind.offer_id.value);
                    self.offers_changed().await;
                }
            }
            EventType::Update => {
                if let Some(update) = event.update {
                    self.on_status(update.status).await;
                }
            }
            EventType::Failure => {
                let failure = event.failure.unwrap_or_default();
                if let (Some(agent_id), None) = (failure.agent_id, failure.executor_id) {
                    self.offers
                        .retain(|_, leases| leases.iter().all(|l| l.offer.agent_id != agent_id));
                    self.emit(FrameworkEvent::AgentLost {
                        agent_id: agent_id.value,
                    })
                    .await;
                    self.offers_changed().await;
                }
            }
            EventType::Error => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                self.emit(FrameworkEvent::Error {
                    message: message.clone(),
                })
                .await;
                return Err(format!("master sent ERROR: {message}"));
            }
            EventType::Heartbeat
            | EventType::InverseOffers
            | EventType::RescindInverseOffer
            | EventType::UpdateOperationStatus
            | EventType::Message
            | EventType::Unknown => {}
        }
        Ok(())
    }

    fn forget_offer(&mut self, offer_id: &str) {
        for leases in self.offers.values_mut() {
            leases.retain(|lease| lease.offer.id.value != offer_id);
        }
        self.offers.retain(|_, leases| !leases.is_empty());
    }

    async fn offers_changed(&self) {
        self.emit(FrameworkEvent::OffersChanged {
            hosts: self.offers.len(),
        })
        .await;
    }

    async fn on_status(&mut self, status: TaskStatus) {
        let task_id = status.task_id.value.clone();
        if status.state.is_terminal() {
            self.tasks.remove(&task_id);
        } else if status.agent_id.is_some() || !self.tasks.contains_key(&task_id) {
            self.tasks.insert(task_id.clone(), status.agent_id.clone());
        }
        if let Some(reconciliation) = &mut self.reconciliation {
            reconciliation.pending.remove(&task_id);
            if reconciliation.pending.is_empty() {
                self.reconciliation = None;
            }
        }
        let ack = match (&status.uuid, &status.agent_id) {
            (Some(uuid), Some(agent_id)) => Some(AckToken {
                agent_id: agent_id.clone(),
                task_id: status.task_id.clone(),
                uuid: uuid.clone(),
            }),
            (Some(_), None) | (None, _) => None,
        };
        self.emit(FrameworkEvent::TaskStatus(StatusUpdate {
            task_id,
            agent_id: status.agent_id.map(|id| id.value),
            state: status.state,
            titus: titus_state(status.state),
            reason: status.reason,
            message: status.message,
            source: status.source,
            ack,
        }))
        .await;
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Offers(reply) => {
                let _ = reply.send(Ok(self.host_offers()));
            }
            Command::Launch { host, tasks, reply } => {
                let _ = reply.send(self.launch(&host, tasks).await);
            }
            Command::Decline { host, reply } => {
                let result = match self.take_offers(&host) {
                    Ok((_, offer_ids)) => self.decline(offer_ids).await,
                    Err(e) => Err(e),
                };
                let _ = reply.send(result);
            }
            Command::Acknowledge { token, reply } => {
                let result = match self.framework_id.clone() {
                    Some(f) => {
                        self.call(&Call::acknowledge(
                            &f,
                            token.agent_id,
                            token.task_id,
                            token.uuid,
                        ))
                        .await
                    }
                    None => Err(FrameworkError::NotSubscribed),
                };
                let _ = reply.send(result);
            }
            Command::Kill { task_id, reply } => {
                let _ = reply.send(self.kill(task_id).await);
            }
            Command::Track {
                task_id,
                agent_id,
                reply,
            } => {
                self.tasks.insert(task_id, agent_id.map(Id::new));
                let _ = reply.send(Ok(()));
            }
            Command::Reconcile(reply) => {
                let result = if self.stream_id.is_some() {
                    self.start_reconciliation().await;
                    Ok(())
                } else {
                    Err(FrameworkError::NotSubscribed)
                };
                let _ = reply.send(result);
            }
        }
    }

    fn host_offers(&self) -> Vec<HostOffers> {
        self.offers
            .iter()
            .filter_map(|(host, leases)| {
                let offers: Vec<&Offer> = leases.iter().map(|l| &l.offer).collect();
                let agent = agent_from_offers(&offers, &self.config.offer_mapping).ok()?;
                Some(HostOffers {
                    host: host.clone(),
                    agent_id: offers.first()?.agent_id.value.clone(),
                    offer_ids: offers.iter().map(|o| o.id.value.clone()).collect(),
                    agent,
                })
            })
            .collect()
    }

    /// Removes and returns a host's offers (agent id, offer ids).
    fn take_offers(&mut self, host: &str) -> Result<(Id, Vec<Id>), FrameworkError> {
        if self.stream_id.is_none() {
            return Err(FrameworkError::NotSubscribed);
        }
        let no_offers = || FrameworkError::NoOffers {
            host: host.to_string(),
        };
        let leases = self.offers.remove(host).ok_or_else(no_offers)?;
        let agent_id = leases.first().ok_or_else(no_offers)?.offer.agent_id.clone();
        Ok((agent_id, leases.into_iter().map(|l| l.offer.id).collect()))
    }

    async fn launch(
        &mut self,
        host: &str,
        mut tasks: Vec<super::TaskInfo>,
    ) -> Result<(), FrameworkError> {
        let framework_id = self
            .framework_id
            .clone()
            .ok_or(FrameworkError::NotSubscribed)?;
        let (agent_id, offer_ids) = self.take_offers(host)?;
        self.offers_changed().await;
        for task in &mut tasks {
            task.agent_id = agent_id.clone();
            self.tasks
                .insert(task.task_id.value.clone(), Some(agent_id.clone()));
        }
        let task_ids: Vec<String> = tasks.iter().map(|t| t.task_id.value.clone()).collect();
        let call = Call::launch(
            &framework_id,
            offer_ids,
            tasks,
            self.config.accept_refuse_seconds,
        );
        let result = self.call(&call).await;
        if let Err(FrameworkError::Status { .. }) = &result {
            // Refused before anything was launched: nothing to reconcile.
            for id in task_ids {
                self.tasks.remove(&id);
            }
        }
        result
    }

    async fn decline(&mut self, offer_ids: Vec<Id>) -> Result<(), FrameworkError> {
        let framework_id = self
            .framework_id
            .clone()
            .ok_or(FrameworkError::NotSubscribed)?;
        self.offers_changed().await;
        let call = Call::decline(&framework_id, offer_ids, self.config.decline_refuse_seconds);
        self.call(&call).await
    }

    async fn kill(&mut self, task_id: String) -> Result<(), FrameworkError> {
        let framework_id = self
            .framework_id
            .clone()
            .ok_or(FrameworkError::NotSubscribed)?;
        let agent_id = self
            .tasks
            .get(&task_id)
            .ok_or_else(|| FrameworkError::UnknownTask {
                task_id: task_id.clone(),
            })?
            .clone();
        self.call(&Call::kill(&framework_id, Id::new(task_id), agent_id))
            .await
    }

    /// Declines every lease pool holding an offer older than `offer_hold` (all leases of such
    /// a host go, as in Fenzo).
    async fn expire_offers(&mut self) {
        let Some(cutoff) = Instant::now().checked_sub(self.config.offer_hold) else {
            return;
        };
        let expired: Vec<String> = self
            .offers
            .iter()
            .filter(|(_, leases)| leases.iter().any(|l| l.received <= cutoff))
            .map(|(host, _)| host.clone())
            .collect();
        for host in expired {
            if let Ok((_, offer_ids)) = self.take_offers(&host)
                && let Err(err) = self.decline(offer_ids).await
            {
                tracing::warn!(%host, %err, "declining expired offers failed");
            }
        }
    }

    async fn start_reconciliation(&mut self) {
        let Some(framework_id) = self.framework_id.clone() else {
            return;
        };
        if self.tasks.is_empty() {
            self.reconciliation = None;
            if let Err(err) = self.call(&Call::reconcile(&framework_id, Vec::new())).await {
                tracing::warn!(%err, "implicit reconciliation failed");
            }
            return;
        }
        let interval = self.config.reconcile_retry;
        self.reconciliation = Some(Reconciliation {
            pending: self.tasks.keys().cloned().collect(),
            next: Instant::now() + interval,
            interval,
        });
        self.send_reconcile(&framework_id).await;
    }

    async fn retry_reconciliation(&mut self) {
        let (Some(framework_id), Some(reconciliation)) =
            (self.framework_id.clone(), &mut self.reconciliation)
        else {
            return;
        };
        if Instant::now() < reconciliation.next {
            return;
        }
        reconciliation.interval =
            (reconciliation.interval * 2).min(self.config.reconcile_retry_max);
        reconciliation.next = Instant::now() + reconciliation.interval;
        self.send_reconcile(&framework_id).await;
    }

    async fn send_reconcile(&mut self, framework_id: &Id) {
        let Some(reconciliation) = &self.reconciliation else {
            return;
        };
        let tasks = reconciliation
            .pending
            .iter()
            .map(|task_id| ReconcileTask {
                task_id: Id::new(task_id.clone()),
                agent_id: self.tasks.get(task_id).cloned().flatten(),
            })
            .collect();
        if let Err(err) = self.call(&Call::reconcile(framework_id, tasks)).await {
            tracing::warn!(%err, "explicit reconciliation failed");
        }
    }

    /// Sends a non-SUBSCRIBE call on a pooled connection with the subscription's stream id.
    async fn call(&self, call: &Call) -> Result<(), FrameworkError> {
        let stream_id = self
            .stream_id
            .as_ref()
            .ok_or(FrameworkError::NotSubscribed)?;
        let transport = |message: String| FrameworkError::Transport {
            call: call.kind,
            message,
        };
        let body = serde_json::to_vec(call).map_err(|e| transport(e.to_string()))?;
        let request = Request::post(format!("{}{SCHEDULER_PATH}", self.config.master))
            .header(header::CONTENT_TYPE, "application/json")
            .header(STREAM_ID, stream_id.as_str())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| transport(e.to_string()))?;
        let response = timeout(self.config.call_timeout, self.client.request(request))
            .await
            .map_err(|_| transport("timed out".into()))?
            .map_err(|e| transport(e.to_string()))?;
        let status = response.status();
        if status == StatusCode::ACCEPTED || status == StatusCode::OK {
            return Ok(());
        }
        Err(FrameworkError::Status {
            call: call.kind,
            status: status.as_u16(),
            body: body_text(response.into_body()).await,
        })
    }
}

async fn body_text(body: Incoming) -> String {
    match timeout(Duration::from_secs(5), body.collect()).await {
        Ok(Ok(collected)) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        Ok(Err(e)) => format!("<unreadable body: {e}>"),
        Err(_) => "<body timed out>".to_string(),
    }
}
