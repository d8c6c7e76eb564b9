//! Listening: the gRPC server (JobManagementService, health, reflection) on tonic and the REST
//! server on axum, each on its own address, with optional TLS (a server certificate, plus client
//! certificate verification when a client CA is configured).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic_health::pb::health_server::{Health, HealthServer};

use crate::GatewayError;
use crate::config::TlsConfig;
use crate::grpc::GrpcService;
use crate::pb;
use crate::pb::job_management_service_server::JobManagementServiceServer;

/// Binds an address, reporting which one failed.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Bind { addr, source })
}

/// Serves gRPC on `listener` until `shutdown` completes.
pub async fn serve_grpc<H: Health>(
    listener: TcpListener,
    tls: Option<&TlsConfig>,
    service: GrpcService,
    health: HealthServer<H>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), GatewayError> {
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| GatewayError::Reflection(e.to_string()))?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| GatewayError::Reflection(e.to_string()))?;
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        let mut config =
            ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem));
        if let Some(ca) = &tls.client_ca_pem {
            config = config.client_ca_root(Certificate::from_pem(ca));
        }
        builder = builder
            .tls_config(config)
            .map_err(|e| GatewayError::Tls(e.to_string()))?;
    }
    builder
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(JobManagementServiceServer::new(service))
        // No Nagle: a multi-frame response must not wait for the client's delayed ACK.
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
        .map_err(|e| GatewayError::Serve(e.to_string()))
}

/// The rustls configuration of the REST server.
///
/// # Errors
/// `Tls` for unreadable certificates or keys.
pub fn rest_tls(tls: &TlsConfig) -> Result<TlsAcceptor, GatewayError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| GatewayError::Tls(format!("{what}: {e}"));
    let certs = CertificateDer::pem_slice_iter(&tls.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("server certificate", &e))?;
    let key = PrivateKeyDer::from_pem_slice(&tls.key_pem).map_err(|e| bad("server key", &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("protocol versions", &e))?;
    let builder = match &tls.client_ca_pem {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca) {
                roots
                    .add(cert.map_err(|e| bad("client CA", &e))?)
                    .map_err(|e| bad("client CA", &e))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| bad("client verifier", &e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| bad("server certificate", &e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves the REST router on `listener` (HTTP/1.1 and HTTP/2, TLS when given) until `shutdown`
/// turns true; open connections are then closed.
pub async fn serve_rest(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, %error, "cannot disable Nagle's algorithm");
                }
                let (app, tls) = (app.clone(), tls.clone());
                connections.spawn(async move {
                    let service = TowerToHyperService::new(app);
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let served = match tls {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(stream) => builder.serve_connection(TokioIo::new(stream), service).await,
                            Err(error) => {
                                tracing::debug!(%peer, %error, "TLS handshake failed");
                                return;
                            }
                        },
                        None => builder.serve_connection(TokioIo::new(stream), service).await,
                    };
                    if let Err(error) = served {
                        tracing::debug!(%peer, %error, "REST connection ended with an error");
                    }
                });
                while connections.try_join_next().is_some() {}
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    connections.shutdown().await;
}
