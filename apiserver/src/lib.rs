//! An embedded, Kubernetes-compatible API server.
//!
//! It serves the subset of the Kubernetes API that kubectl, helm, kube-rs and this project's
//! components use — discovery, OpenAPI, built-in kinds, CustomResourceDefinitions and their
//! custom resources, watch, server-side apply, finalizers and garbage collection — faithfully
//! enough that those clients cannot tell it from a real one. Objects live in memory and in a
//! durable log on disk ([`store`]).
//!
//! Start with [`start`]; the request path is [`http`] -> [`server`] ([`write`](mod@write), [`read`]) ->
//! [`store`].

pub mod admission;
pub mod builtin;
pub mod crd;
pub mod discovery;
pub mod error;
pub mod events;
pub mod gc;
pub mod http;
pub mod jsonpath;
pub mod logs;
pub mod managed;
pub mod meta;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod read;
pub mod registry;
pub mod schema;
pub mod selector;
pub mod server;
pub mod store;
pub mod subresource;
pub mod table;
pub mod tls;
pub mod typemodel;
pub mod write;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use admission::{AdmissionHook, AdmissionRequest, Operation, Rejection};
pub use server::{Server, ServerConfig};

/// Version reported by `/version` (the Kubernetes release this server imitates).
pub const KUBERNETES_VERSION: &str = "v1.33.0";

/// How to run an API server.
#[derive(Clone, Debug)]
pub struct ApiServerConfig {
    /// Data directory (store, certificates, token). `None`: memory only, fresh credentials.
    pub data_dir: Option<PathBuf>,
    /// Listen address; port 0 picks a free port.
    pub bind: SocketAddr,
    /// fsync writes before acknowledging them.
    pub fsync: bool,
    /// Extra names (DNS or IP) for the serving certificate.
    pub extra_sans: Vec<String>,
}

impl Default for ApiServerConfig {
    fn default() -> Self {
        Self {
            data_dir: None,
            bind: SocketAddr::from(([127, 0, 0, 1], 6443)),
            fsync: true,
            extra_sans: Vec::new(),
        }
    }
}

/// Startup failures.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Storage could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] store::StoreError),
    /// Credentials could not be created or loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// A running API server.
#[derive(Debug)]
pub struct RunningApiServer {
    /// The server state (admission hooks are registered here).
    pub server: Arc<Server>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its credentials.
    pub credentials: tls::Credentials,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningApiServer {
    /// `https://<addr>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// A kubeconfig for this server.
    pub fn kubeconfig(&self) -> String {
        tls::kubeconfig(&self.url(), &self.credentials)
    }

    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
        self.server.store.shutdown();
    }
}

/// Opens the store and starts serving HTTPS.
///
/// # Errors
/// Storage, credential or bind failures.
pub async fn start(config: ApiServerConfig) -> Result<RunningApiServer, StartError> {
    let credentials = match &config.data_dir {
        Some(dir) => tls::load_or_create(&dir.join("pki"), &config.extra_sans)?,
        None => tls::ephemeral()?,
    };
    let server = Server::open(ServerConfig {
        data_dir: config.data_dir.as_ref().map(|d| d.join("store")),
        fsync: config.fsync,
        ..ServerConfig::default()
    })
    .await?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.bind,
        source,
    })?;
    let tls_config = tls::server_config(&credentials)?;
    let ctx = http::HttpContext {
        token: credentials.token.clone(),
        advertise: addr.to_string(),
        version: serde_json::json!({
            "major": "1", "minor": "33", "gitVersion": KUBERNETES_VERSION, "gitCommit": "titus", "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64",
            "emulationMajor": "1", "emulationMinor": "33", "minCompatibilityMajor": "1", "minCompatibilityMinor": "32",
        }),
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(http::serve(
        server.clone(),
        listener,
        tls_config,
        ctx,
        async {
            let _ = rx.await;
        },
    ));
    Ok(RunningApiServer {
        server,
        addr,
        credentials,
        shutdown: Some(tx),
        task,
    })
}
