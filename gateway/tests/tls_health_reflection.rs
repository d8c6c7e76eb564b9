//! TLS with client certificates on both servers, gRPC health and server reflection.

mod support;

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use support::Env;
use titus_gateway::pb;
use titus_gateway::{GatewayConfig, TlsConfig};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

struct Pki {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> anyhow::Result<Pki> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf =
        |names: Vec<String>, usage: ExtendedKeyUsagePurpose| -> anyhow::Result<(String, String)> {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(names)?;
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &issuer)?;
            Ok((cert.pem(), key.serialize_pem()))
        };
    Ok(Pki {
        ca_pem: ca_cert.pem(),
        server: leaf(
            vec!["localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?,
        client: leaf(
            vec!["titus-client".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?,
    })
}

async fn channel(env: &Env, pki: &Pki, with_identity: bool) -> anyhow::Result<Channel> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    if with_identity {
        tls = tls.identity(Identity::from_pem(&pki.client.0, &pki.client.1));
    }
    Ok(
        Channel::from_shared(format!("https://{}", env.gateway.grpc_addr))?
            .tls_config(tls)?
            .connect()
            .await?,
    )
}

#[tokio::test]
async fn tls_with_client_certificates_guards_grpc_and_rest() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pki = pki()?;
    let env = Env::start_with(GatewayConfig {
        tls: Some(TlsConfig {
            cert_pem: pki.server.0.clone().into_bytes(),
            key_pem: pki.server.1.clone().into_bytes(),
            client_ca_pem: Some(pki.ca_pem.clone().into_bytes()),
        }),
        ..Default::default()
    })
    .await?;

    let mut grpc = pb::job_management_service_client::JobManagementServiceClient::new(
        channel(&env, &pki, true).await?,
    );
    let id = grpc
        .create_job(support::request(support::batch_descriptor("tls", 1)))
        .await?
        .into_inner()
        .id;
    assert!(titus_crds::ids::is_uuid(&id));

    // Without a client certificate the handshake or the first call fails.
    let refused = match channel(&env, &pki, false).await {
        Err(_) => true,
        Ok(c) => pb::job_management_service_client::JobManagementServiceClient::new(c)
            .find_job(support::request(pb::JobId { id: id.clone() }))
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate must be refused");

    // REST over TLS with the client certificate.
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(pki.ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let certs: Vec<rustls::pki_types::CertificateDer> =
        rustls::pki_types::pem::PemObject::pem_slice_iter(pki.client.0.as_bytes())
            .collect::<Result<_, _>>()?;
    let key =
        <rustls::pki_types::PrivateKeyDer as rustls::pki_types::pem::PemObject>::from_pem_slice(
            pki.client.1.as_bytes(),
        )?;
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(env.gateway.rest_addr).await?;
    let tls = connector
        .connect(rustls::pki_types::ServerName::try_from("localhost")?, tcp)
        .await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
    tokio::spawn(connection);
    let request = hyper::Request::get(format!("/api/v3/jobs/{id}"))
        .header("host", "localhost")
        .body(http_body_util::Empty::<bytes::Bytes>::new())?;
    let response = sender.send_request(request).await?;
    assert_eq!(response.status(), 200);
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn health_reports_serving_and_reflection_lists_the_titus_service() -> anyhow::Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let env = Env::start().await?;
    let channel = Channel::from_shared(format!("http://{}", env.gateway.grpc_addr))?
        .connect()
        .await?;
    let health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for service in ["", "com.netflix.titus.JobManagementService"] {
        let status = support::wait_for(std::time::Duration::from_secs(10), "SERVING", || {
            let mut health = health.clone();
            async move {
                let response = health
                    .check(tonic_health::pb::HealthCheckRequest {
                        service: service.into(),
                    })
                    .await
                    .ok()?;
                (response.into_inner().status == ServingStatus::Serving as i32).then_some(())
            }
        })
        .await;
        assert!(status.is_ok(), "{service:?} not serving");
    }

    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(channel);
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await?
        .into_inner();
    let response = responses.message().await?.and_then(|r| r.message_response);
    let services: Vec<String> = match response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => anyhow::bail!("unexpected reflection response {other:?}"),
    };
    assert!(
        services.contains(&"com.netflix.titus.JobManagementService".to_string()),
        "{services:?}"
    );
    assert!(
        services.contains(&"grpc.health.v1.Health".to_string()),
        "{services:?}"
    );
    env.stop().await;
    Ok(())
}
