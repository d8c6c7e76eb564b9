//! How to run a gateway: addresses, namespace, TLS, admission and limits.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use titus_crds::AdmissionConfig;

/// Titus's gRPC port.
pub const DEFAULT_GRPC_PORT: u16 = 7104;
/// Titus's REST port.
pub const DEFAULT_REST_PORT: u16 = 7001;

/// Gateway settings. [`Default`] gives Titus's ports on 127.0.0.1, namespace `default`, no TLS
/// and Titus's admission defaults and limits.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// gRPC listen address (port 0 picks a free port).
    pub grpc_bind: SocketAddr,
    /// REST listen address (port 0 picks a free port).
    pub rest_bind: SocketAddr,
    /// Namespace whose `TitusJob`s and `TitusTask`s the gateway serves and creates.
    pub namespace: String,
    /// TLS for both servers; `None` serves plain text.
    pub tls: Option<TlsConfig>,
    /// Sanitizer and validator settings (shared with the API server's admission).
    pub admission: AdmissionConfig,
    /// Largest number of active jobs (Titus: 20 000).
    pub max_active_jobs: usize,
    /// How many changes a slow observer may lag behind before its stream is aborted.
    pub change_buffer: usize,
    /// How long a request waits for the cache's first sync before `UNAVAILABLE`.
    pub cache_sync_timeout: Duration,
    /// How long a write waits for the cache to show it (read-your-writes).
    pub write_visibility_timeout: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            grpc_bind: SocketAddr::from(([127, 0, 0, 1], DEFAULT_GRPC_PORT)),
            rest_bind: SocketAddr::from(([127, 0, 0, 1], DEFAULT_REST_PORT)),
            namespace: "default".to_string(),
            tls: None,
            admission: AdmissionConfig::default(),
            max_active_jobs: 20_000,
            change_buffer: 65_536,
            cache_sync_timeout: Duration::from_secs(30),
            write_visibility_timeout: Duration::from_secs(5),
        }
    }
}

/// TLS material, PEM-encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// Server certificate chain.
    pub cert_pem: Vec<u8>,
    /// Server private key.
    pub key_pem: Vec<u8>,
    /// When set, clients must present a certificate signed by this CA.
    pub client_ca_pem: Option<Vec<u8>>,
}

impl TlsConfig {
    /// Reads the PEM files.
    ///
    /// # Errors
    /// The first file that cannot be read.
    pub fn from_files(
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
    ) -> std::io::Result<TlsConfig> {
        Ok(TlsConfig {
            cert_pem: std::fs::read(cert)?,
            key_pem: std::fs::read(key)?,
            client_ca_pem: client_ca.map(std::fs::read).transpose()?,
        })
    }
}
