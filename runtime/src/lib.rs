//! Shared plumbing of the components that talk to Kubernetes (operator, scheduler, agent,
//! gateway): building a client from a kubeconfig, Lease-based leader election ([`leader`]),
//! the health and metrics endpoints ([`serve_health`]) and graceful shutdown
//! ([`shutdown_signal`]).

pub mod leader;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

/// Client construction failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The kubeconfig could not be read.
    #[error("cannot read kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// No usable configuration (no kubeconfig, not in a cluster).
    #[error("no Kubernetes configuration found: {0}")]
    Infer(#[from] kube::Error),
}

/// A client for the cluster of `kubeconfig`, or the inferred one (in-cluster service account,
/// `$KUBECONFIG`, `~/.kube/config`) when `None`.
///
/// # Errors
/// An unreadable kubeconfig or no configuration at all.
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, ClientError> {
    let Some(path) = kubeconfig else {
        return Ok(kube::Client::try_default().await?);
    };
    let kubeconfig_error = |source| ClientError::Kubeconfig {
        path: path.display().to_string(),
        source,
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(kubeconfig_error)?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .map_err(kubeconfig_error)?;
    Ok(kube::Client::try_from(config)?)
}

/// A client for a kubeconfig given as text (in-process use, e.g. `titus up` and tests).
///
/// # Errors
/// An unusable kubeconfig.
pub async fn client_from_yaml(kubeconfig: &str) -> Result<kube::Client, ClientError> {
    let kubeconfig_error = |source| ClientError::Kubeconfig {
        path: "<inline>".into(),
        source,
    };
    let kubeconfig = kube::config::Kubeconfig::from_yaml(kubeconfig).map_err(kubeconfig_error)?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .map_err(kubeconfig_error)?;
    Ok(kube::Client::try_from(config)?)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// Serves `/healthz` (alive), `/readyz` (200 while `ready` is true, else 503) and `/metrics`
/// (Prometheus text format) on `listener` until `shutdown` resolves.
///
/// # Errors
/// Serving failures.
pub async fn serve_health(
    listener: tokio::net::TcpListener,
    registry: Arc<Registry>,
    ready: watch::Receiver<bool>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = *ready.borrow();
                async move {
                    if ready {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                async move {
                    let mut body = String::new();
                    match prometheus_client::encoding::text::encode(&mut body, &registry) {
                        Ok(()) => (
                            StatusCode::OK,
                            [(
                                axum::http::header::CONTENT_TYPE,
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )],
                            body,
                        )
                            .into_response(),
                        Err(e) => {
                            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
                        }
                    }
                }
            }),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Binds `addr` for [`serve_health`].
///
/// # Errors
/// The address is taken.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
