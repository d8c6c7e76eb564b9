//! The operator's network endpoints: the HTTPS admission webhook (AdmissionReview v1 over TLS
//! with a certificate from files) and the health/metrics endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use titus_crds::{TitusJob, TitusJobSpec};
use titus_operator::TitusAdmission;
use titus_operator::admission::webhook;
use titus_operator::testing::Behavior;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::*;

/// POSTs `body` to `path` over TLS, trusting `ca_pem`.
async fn post_tls(port: u16, ca_pem: &str, path: &str, body: &Value) -> anyhow::Result<Value> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1")?.to_owned(), tcp)
        .await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(connection);
    let request = http::Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(body)?)))?;
    let response = sender.send_request(request).await?;
    assert_eq!(response.status(), 200);
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok(serde_json::from_slice(&bytes)?)
}

fn review(spec: TitusJobSpec) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "4b0e",
            "kind": {"group": "titus.dev", "version": "v1alpha1", "kind": "TitusJob"},
            "resource": {"group": "titus.dev", "version": "v1alpha1", "resource": "titusjobs"},
            "name": "job", "namespace": "default", "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": serde_json::to_value(TitusJob::new("job", spec)).unwrap(),
            "dryRun": false
        }
    })
}

#[tokio::test]
async fn the_admission_webhook_answers_reviews_over_tls_with_certificates_from_files()
-> anyhow::Result<()> {
    let creds = titus_apiserver::tls::ephemeral()?;
    let dir = tempfile::tempdir()?;
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, &creds.cert_pem)?;
    std::fs::write(&key, &creds.key_pem)?;
    let tls = webhook::tls_config(&cert, &key)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(webhook::serve_on(
        listener,
        tls,
        Arc::new(TitusAdmission::default()),
        async move {
            let _ = stopped.await;
        },
    ));
    let refused = post_tls(
        port,
        &creds.ca_pem,
        "/validate",
        &review(TitusJobSpec::batch(0)),
    )
    .await?;
    let response = &refused["response"];
    assert_eq!(
        (response["uid"].as_str(), response["allowed"].as_bool()),
        (Some("4b0e"), Some(false))
    );
    assert_eq!(response["status"]["code"], 422);
    assert_eq!(
        response["status"]["details"]["causes"][0]["field"],
        "spec.batch.size"
    );
    let mutated = post_tls(
        port,
        &creds.ca_pem,
        "/mutate",
        &review(TitusJobSpec::batch(1).with_cpu_memory(0.1, 1)),
    )
    .await?;
    assert_eq!(mutated["response"]["allowed"], true);
    assert_eq!(mutated["response"]["patchType"], "JSONPatch");
    let patch = mutated["response"]["patch"]
        .as_str()
        .expect("the patch is a base64 string ([]byte)");
    use base64::Engine;
    let patch: Value =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(patch)?)?;
    assert!(
        patch.to_string().contains("/spec/container/resources/cpu"),
        "{patch}"
    );
    let stop_result = stop.send(());
    assert!(stop_result.is_ok());
    tokio::time::timeout(Duration::from_secs(5), server).await??;
    Ok(())
}

/// A plain HTTP/1.1 GET.
async fn get(port: u16, path: &str) -> anyhow::Result<String> {
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut out = String::new();
    tcp.read_to_string(&mut out).await?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_are_served() -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = titus_operator::OperatorConfig {
        metrics_addr: Some(format!("127.0.0.1:{port}").parse()?),
        ..test_config()
    }
    .with_leader_election("default");
    let env = start(config, 1, behavior(|_| Behavior::succeed())).await?;
    env.create_job("counted", TitusJobSpec::batch(2)).await?;
    wait_job_state(
        &env,
        "counted",
        "Finished",
        std::time::Duration::from_secs(30),
    )
    .await?;
    let metrics = wait_for(
        "metrics with the finished tasks",
        Duration::from_secs(10),
        || async {
            let body = get(port, "/metrics").await?;
            Ok(body
                .contains("titus_operator_tasks{state=\"Finished\"} 2")
                .then_some(body))
        },
    )
    .await?;
    for needle in [
        "titus_operator_reconciles_total{controller=\"job\",result=\"ok\"}",
        "titus_operator_reconciles_total{controller=\"task\",result=\"ok\"}",
        "titus_operator_leader 1",
    ] {
        assert!(metrics.contains(needle), "missing {needle}:\n{metrics}");
    }
    assert!(get(port, "/healthz").await?.starts_with("HTTP/1.1 200"));
    assert!(get(port, "/readyz").await?.starts_with("HTTP/1.1 200"));
    env.shutdown().await;
    Ok(())
}
