//! The agent's log endpoint, shaped like the kubelet's: `GET /containerLogs/{namespace}/{pod}/
//! {container}?follow=&tailLines=&limitBytes=&previous=&timestamps=` serves a container's
//! output as plain text, and with `follow=true` keeps streaming until the container has exited.
//! The API server proxies the Pod `log` subresource here (see `apiserver/src/logs.rs`), using the
//! Node's InternalIP and `daemonEndpoints.kubeletEndpoint.Port`.
//!
//! Plain HTTP: the endpoint is meant for the API server on the same machine or network; when a
//! bearer token is configured, every request must carry it (the embedded API server forwards its
//! own token, which is the one in the agent's kubeconfig).
//!
//! The node agents keep a [`LogIndex`] (Pod → log files, finished or not) up to date; the
//! containers' output is written by the log [`driver`] (interleaved, with times: [`cri`]) or, for
//! a runtime without it, to plain files ([`read`]).

pub mod cri;
pub mod driver;
pub mod read;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;

use self::read::{LogOptions, stream_logs};
use crate::runtime::LogPaths;

/// Where one Pod's main container writes, as the node agent last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Pod uid (the container id).
    pub uid: String,
    /// Name of the container whose logs these are.
    pub container: String,
    /// Its log files.
    pub paths: LogPaths,
    /// The container has exited (or never ran): no more output will come.
    pub finished: bool,
}

struct Entry {
    target: LogTarget,
    finished: watch::Sender<bool>,
}

/// Pods whose logs this process serves, shared by every node agent of the process.
#[derive(Default)]
pub struct LogIndex {
    entries: Mutex<HashMap<(String, String), Entry>>,
    keys: Mutex<HashMap<String, (String, String)>>,
}

impl std::fmt::Debug for LogIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pods = self.entries.lock().map(|e| e.len()).unwrap_or_default();
        f.debug_struct("LogIndex")
            .field("pods", &pods)
            .finish_non_exhaustive()
    }
}

impl LogIndex {
    /// Records (or updates) a Pod's log target.
    pub fn upsert(&self, target: LogTarget) {
        let key = (target.namespace.clone(), target.pod.clone());
        let (Ok(mut entries), Ok(mut keys)) = (self.entries.lock(), self.keys.lock()) else {
            return;
        };
        keys.insert(target.uid.clone(), key.clone());
        match entries.get_mut(&key) {
            Some(entry) if entry.target.uid == target.uid => {
                entry.finished.send_if_modified(|finished| {
                    let changed = *finished != target.finished;
                    *finished = target.finished;
                    changed
                });
                entry.target = target;
            }
            Some(_) | None => {
                let (finished, _) = watch::channel(target.finished);
                entries.insert(key, Entry { target, finished });
            }
        }
    }

    /// Forgets the Pod with this uid (its followers end).
    pub fn remove_uid(&self, uid: &str) {
        let (Ok(mut entries), Ok(mut keys)) = (self.entries.lock(), self.keys.lock()) else {
            return;
        };
        if let Some(key) = keys.remove(uid)
            && entries.get(&key).is_some_and(|e| e.target.uid == uid)
        {
            entries.remove(&key);
        }
    }

    /// The Pod's log target and a receiver that turns true when its container has finished.
    pub fn lookup(&self, namespace: &str, pod: &str) -> Option<(LogTarget, watch::Receiver<bool>)> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(&(namespace.to_owned(), pod.to_owned()))?;
        Some((entry.target.clone(), entry.finished.subscribe()))
    }
}

/// Why a log request is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LogError {
    /// No such Pod on this node.
    #[error("pod {pod:?} in namespace {namespace:?} is not on this node")]
    PodNotFound {
        /// Namespace.
        namespace: String,
        /// Pod name.
        pod: String,
    },
    /// The Pod has no container of that name.
    #[error("container {container:?} is not in pod {pod:?}")]
    ContainerNotFound {
        /// Pod name.
        pod: String,
        /// Container asked for.
        container: String,
    },
    /// A query parameter is malformed or asks for something not kept.
    #[error("{0}")]
    BadRequest(String),
    /// The request has no or the wrong bearer token.
    #[error("unauthorized")]
    Unauthorized,
}

impl IntoResponse for LogError {
    fn into_response(self) -> Response {
        let status = match &self {
            LogError::PodNotFound { .. } | LogError::ContainerNotFound { .. } => {
                StatusCode::NOT_FOUND
            }
            LogError::BadRequest(_) => StatusCode::BAD_REQUEST,
            LogError::Unauthorized => StatusCode::UNAUTHORIZED,
        };
        (status, self.to_string()).into_response()
    }
}

#[derive(Clone)]
struct Shared {
    index: Arc<LogIndex>,
    token: Option<String>,
}

/// The endpoint's routes over `index`; with `token`, requests must present it as a bearer token.
pub fn router(index: Arc<LogIndex>, token: Option<String>) -> Router {
    Router::new()
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs),
        )
        .route("/healthz", get(|| async { "ok" }))
        .with_state(Shared { index, token })
}

/// Serves [`router`] on `listener` until `shutdown` resolves.
///
/// # Errors
/// Serving failures.
pub async fn serve(
    listener: tokio::net::TcpListener,
    index: Arc<LogIndex>,
    token: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(index, token))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn container_logs(
    State(shared): State<Shared>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, LogError> {
    if let Some(token) = &shared.token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if presented.map(str::trim) != Some(token.as_str()) {
            return Err(LogError::Unauthorized);
        }
    }
    let options = LogOptions::parse(query.as_deref().unwrap_or_default(), jiff::Timestamp::now())?;
    let (target, finished) =
        shared
            .index
            .lookup(&namespace, &pod)
            .ok_or_else(|| LogError::PodNotFound {
                namespace: namespace.clone(),
                pod: pod.clone(),
            })?;
    if container != target.container {
        return Err(LogError::ContainerNotFound { pod, container });
    }
    if options.previous {
        return Err(LogError::BadRequest(format!(
            "previous terminated container {container:?} in pod {pod:?} not found: Titus containers are never restarted"
        )));
    }
    let timed = tokio::fs::try_exists(cri::combined_log(&target.paths))
        .await
        .unwrap_or(false);
    if !timed && (options.timestamps || options.since.is_some()) {
        return Err(LogError::BadRequest(
            "timestamps and since are not available: this container's output was stored without times (no log driver)".into(),
        ));
    }
    let body = Body::from_stream(stream_logs(target.paths, options, finished));
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response())
}
