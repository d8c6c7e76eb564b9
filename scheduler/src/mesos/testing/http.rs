//! The stand-in master's HTTP side: request validation in the documented order, and the
//! streaming SUBSCRIBE response.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

use super::{MasterState, RecordedCall, Shared, Stream};
use crate::mesos::calls::{Call, CallType, ErrorEvent, Event, EventType, Subscribed};
use crate::mesos::types::{Id, TaskState};

const STREAM_ID: &str = "Mesos-Stream-Id";
type Body = BoxBody<Bytes, Infallible>;

pub(super) async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    while let Ok((socket, _)) = listener.accept().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(shared, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), service)
                .await;
        });
    }
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(message.to_string())).boxed());
    *response.status_mut() = status;
    response
}

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_string();
    if path != "/api/v1/scheduler" && path != "/master/api/v1/scheduler" {
        return text(StatusCode::NOT_FOUND, "");
    }
    if request.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "Expecting a 'POST' request");
    }
    let headers = request.headers().clone();
    let content_type = header_str(&headers, header::CONTENT_TYPE);
    let stream_id = header_str(&headers, STREAM_ID);
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return text(StatusCode::BAD_REQUEST, "Failed to read the body"),
    };
    let call: Option<Call> = serde_json::from_slice(&body).ok();
    let response = match &content_type {
        None => text(
            StatusCode::BAD_REQUEST,
            "Expecting 'Content-Type' to be present",
        ),
        Some(ct) if ct != "application/json" => text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expecting 'Content-Type' of application/json",
        ),
        Some(_) => dispatch(&shared, &headers, &body, call.clone()),
    };
    shared.lock().calls.push(RecordedCall {
        call,
        stream_id,
        content_type,
        status: response.status().as_u16(),
    });
    shared.changed.notify_waiters();
    response
}

fn dispatch(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    body: &[u8],
    call: Option<Call>,
) -> Response<Body> {
    let raw: serde_json::Value = match serde_json::from_slice(body) {
        Ok(raw) => raw,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("Failed to parse body into JSON: {e}"),
            );
        }
    };
    let Some(call) = call else {
        return text(
            StatusCode::BAD_REQUEST,
            "Failed to convert JSON into Call protobuf",
        );
    };
    if call.kind == CallType::Unknown {
        return match raw.get("type").and_then(|t| t.as_str()) {
            Some("UNKNOWN") => text(StatusCode::NOT_IMPLEMENTED, "Received 'UNKNOWN' call"),
            _ => text(StatusCode::BAD_REQUEST, "Expecting 'type' to be present"),
        };
    }
    if call.kind == CallType::Subscribe {
        return subscribe(shared, headers, call);
    }
    let mut state = shared.lock();
    let Some(framework_id) = call.framework_id.clone() else {
        return text(
            StatusCode::BAD_REQUEST,
            "Expecting 'framework_id' to be present",
        );
    };
    if state.framework.as_ref().map(|(id, _)| id) != Some(&framework_id) {
        return text(StatusCode::BAD_REQUEST, "Framework cannot be found");
    }
    let Some(sent) = header_str(headers, STREAM_ID) else {
        return text(
            StatusCode::BAD_REQUEST,
            "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
        );
    };
    let Some(current) = state.stream.as_ref().map(|s| s.id.clone()) else {
        return text(StatusCode::FORBIDDEN, "Framework is not subscribed");
    };
    if sent != current {
        return text(
            StatusCode::BAD_REQUEST,
            &format!(
                "The stream ID '{sent}' included in this request didn't match the stream ID \
                 currently associated with framework ID '{}'",
                framework_id.value
            ),
        );
    }
    match apply(&mut state, call) {
        Ok(()) => text(StatusCode::ACCEPTED, ""),
        Err(message) => text(StatusCode::BAD_REQUEST, &message),
    }
}

fn subscribe(shared: &Arc<Shared>, headers: &HeaderMap, call: Call) -> Response<Body> {
    if headers.contains_key(STREAM_ID) {
        return text(
            StatusCode::BAD_REQUEST,
            "Subscribe calls should not include the 'Mesos-Stream-Id' header",
        );
    }
    if let Some(accept) = header_str(headers, header::ACCEPT)
        && !["application/json", "application/*", "*/*"]
            .iter()
            .any(|t| accept.contains(t))
    {
        return text(
            StatusCode::NOT_ACCEPTABLE,
            "Expecting 'Accept' to allow application/json",
        );
    }
    let Some(subscribe) = call.subscribe else {
        return text(
            StatusCode::BAD_REQUEST,
            "Expecting 'subscribe' to be present",
        );
    };
    let mut info = subscribe.framework_info;
    if call.framework_id.is_some() && call.framework_id != info.id {
        return text(
            StatusCode::BAD_REQUEST,
            "'framework_id' differs from 'subscribe.framework_info.id'",
        );
    }
    let mut state = shared.lock();
    let id = match info.id.clone() {
        Some(id) => id,
        None => Id::new(format!("{}-{:04}", shared.master_id, state.next())),
    };
    info.id = Some(id.clone());
    // The previous subscription is told, then closed; its offers are gone without RESCIND.
    let mut failed_over = Event::bare(EventType::Error);
    failed_over.error = Some(ErrorEvent {
        message: "Framework failed over".to_string(),
    });
    state.send(&failed_over);
    state.close_stream();
    let (tx, rx) = mpsc::unbounded_channel();
    let stream_id = uuid::Uuid::new_v4().to_string();
    state.stream = Some(Stream {
        id: stream_id.clone(),
        tx,
    });
    state.framework = Some((id.clone(), info));
    state.subscriptions += 1;
    let mut subscribed = Event::bare(EventType::Subscribed);
    subscribed.subscribed = Some(Subscribed {
        framework_id: id,
        heartbeat_interval_seconds: Some(shared.heartbeat_interval.as_secs_f64()),
        master_info: None,
    });
    state.send(&subscribed);
    state.send(&Event::bare(EventType::Heartbeat));
    drop(state);
    tokio::spawn(heartbeats(shared.clone(), stream_id.clone()));
    let body = EventStream {
        rx,
        shared: shared.clone(),
        stream_id: stream_id.clone(),
    };
    let mut response = Response::new(body.boxed());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = http::HeaderValue::from_str(&stream_id) {
        response.headers_mut().insert(STREAM_ID, value);
    }
    response
}

async fn heartbeats(shared: Arc<Shared>, stream_id: String) {
    loop {
        tokio::time::sleep(shared.heartbeat_interval).await;
        let mut state = shared.lock();
        if state.stream.as_ref().map(|s| &s.id) != Some(&stream_id) {
            return;
        }
        if state.heartbeats {
            state.send(&Event::bare(EventType::Heartbeat));
        }
    }
}

/// Applies a validated non-SUBSCRIBE call; `Err` is a 400 message.
fn apply(state: &mut MasterState, call: Call) -> Result<(), String> {
    match call.kind {
        CallType::Accept => {
            let accept = call.accept.ok_or("Expecting 'accept' to be present")?;
            let agents: Vec<Option<Id>> = accept
                .offer_ids
                .iter()
                .map(|id| state.offers.get(&id.value).map(|o| o.agent_id.clone()))
                .collect();
            let valid = !agents.is_empty()
                && agents.iter().all(Option::is_some)
                && agents.windows(2).all(|w| w[0] == w[1]);
            for id in &accept.offer_ids {
                state.offers.remove(&id.value);
            }
            let launched = accept
                .operations
                .into_iter()
                .filter_map(|op| op.launch)
                .flat_map(|launch| launch.task_infos);
            for task in launched {
                state.tasks.insert(
                    task.task_id.value.clone(),
                    (task.agent_id.clone(), TaskState::TaskStaging),
                );
                if !valid {
                    let lost = if state.partition_aware() {
                        TaskState::TaskDropped
                    } else {
                        TaskState::TaskLost
                    };
                    state.status_event(
                        &task.task_id.value,
                        lost,
                        Some("REASON_INVALID_OFFERS"),
                        false,
                    );
                    state.tasks.remove(&task.task_id.value);
                }
            }
        }
        CallType::Decline => {
            let decline = call.decline.ok_or("Expecting 'decline' to be present")?;
            for id in decline.offer_ids {
                state.offers.remove(&id.value);
            }
        }
        CallType::Acknowledge => {
            let ack = call
                .acknowledge
                .ok_or("Expecting 'acknowledge' to be present")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&ack.uuid)
                .map_err(|e| format!("Failed to validate scheduler::Call: bad uuid: {e}"))?;
            if bytes.len() != 16 {
                return Err("Failed to validate scheduler::Call: uuid is not 16 bytes".into());
            }
        }
        CallType::Reconcile => {
            let reconcile = call
                .reconcile
                .ok_or("Expecting 'reconcile' to be present")?;
            let ids: Vec<String> = if reconcile.tasks.is_empty() {
                state.tasks.keys().cloned().collect()
            } else {
                reconcile
                    .tasks
                    .into_iter()
                    .map(|t| t.task_id.value)
                    .collect()
            };
            for id in ids {
                let known = state.tasks.get(&id).map(|(_, s)| *s);
                let answer = known.unwrap_or(if state.partition_aware() {
                    TaskState::TaskGone
                } else {
                    TaskState::TaskLost
                });
                state.status_event(&id, answer, Some("REASON_RECONCILIATION"), false);
            }
        }
        CallType::Kill => {
            let kill = call.kill.ok_or("Expecting 'kill' to be present")?;
            if state.tasks.contains_key(&kill.task_id.value) {
                state.status_event(&kill.task_id.value, TaskState::TaskKilled, None, true);
            }
        }
        CallType::Teardown
        | CallType::Revive
        | CallType::Suppress
        | CallType::Shutdown
        | CallType::Message
        | CallType::Request
        | CallType::Subscribe
        | CallType::Unknown => {}
    }
    Ok(())
}

/// The SUBSCRIBE response body: records pushed by the master. Dropping it (the client went
/// away) disconnects the framework.
struct EventStream {
    rx: mpsc::UnboundedReceiver<Bytes>,
    shared: Arc<Shared>,
    stream_id: String,
}

impl hyper::body::Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if state.stream.as_ref().map(|s| &s.id) == Some(&self.stream_id) {
            state.close_stream();
        }
        drop(state);
        self.shared.changed.notify_waiters();
    }
}
