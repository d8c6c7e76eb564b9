//! The HTTPS admission webhook for real clusters: `AdmissionReview` v1 over TLS (rustls, the
//! certificate and key read from PEM files), `POST /mutate` (sanitize, answered with a JSON
//! patch) and `POST /validate`, both backed by [`TitusAdmission`]. `GET /healthz` answers `ok`.
//!
//! Register it with a `MutatingWebhookConfiguration` pointing at `/mutate` and a
//! `ValidatingWebhookConfiguration` pointing at `/validate`, for `titusjobs.titus.dev`
//! CREATE and UPDATE (including the `scale` subresource).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use kube::core::admission::{
    AdmissionRequest, AdmissionResponse, AdmissionReview, Operation as KubeOperation,
};
use kube::core::response::{StatusCause, StatusDetails, StatusSummary};
use kube::core::{DynamicObject, Status};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use titus_apiserver::{Operation, Rejection};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::{GROUP, KIND, TitusAdmission};

/// Where and with which certificate the webhook serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Listen address.
    pub addr: SocketAddr,
    /// Serving certificate chain (PEM).
    pub cert_path: PathBuf,
    /// Private key (PEM).
    pub key_path: PathBuf,
}

/// Failures to start the webhook.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The certificate or key could not be read.
    #[error("reading {path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the certificate or key.
    #[error("tls configuration: {0}")]
    Tls(#[from] rustls::Error),
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

/// The rustls configuration from PEM files.
///
/// # Errors
/// Unreadable or unusable certificate or key.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, WebhookError> {
    let pem = |path: &Path| {
        let path = path.to_owned();
        move |e: rustls::pki_types::pem::Error| WebhookError::Pem {
            path,
            message: e.to_string(),
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(pem(cert))?
        .collect::<Result<_, _>>()
        .map_err(pem(cert))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(pem(key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves the webhook per `config` until `shutdown` resolves.
///
/// # Errors
/// Certificate, key or bind failures.
pub async fn serve(
    config: &WebhookConfig,
    admission: Arc<TitusAdmission>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), WebhookError> {
    let tls = tls_config(&config.cert_path, &config.key_path)?;
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| WebhookError::Bind {
            addr: config.addr,
            source,
        })?;
    serve_on(listener, tls, admission, shutdown).await;
    Ok(())
}

/// Serves the webhook on a bound listener.
pub async fn serve_on(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    admission: Arc<TitusAdmission>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let app = router(admission);
    let acceptor = TlsAcceptor::from(tls);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "webhook accept failed");
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                tracing::debug!(%peer, "webhook tls handshake failed");
                return;
            };
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let app = app.clone();
                    async move {
                        Ok::<_, Infallible>(
                            app.oneshot(req.map(axum::body::Body::new))
                                .await
                                .unwrap_or_else(|e| match e {}),
                        )
                    }
                });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(error) = builder.serve_connection(TokioIo::new(tls), service).await {
                tracing::debug!(%error, %peer, "webhook connection ended with an error");
            }
        });
    }
}

/// The webhook's routes.
pub fn router(admission: Arc<TitusAdmission>) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/validate", post(validate))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(admission)
}

type Review = AdmissionReview<DynamicObject>;

async fn mutate(
    State(admission): State<Arc<TitusAdmission>>,
    Json(review): Json<Review>,
) -> Json<Value> {
    Json(wire(answer(&admission, review, Step::Mutate)))
}

async fn validate(
    State(admission): State<Arc<TitusAdmission>>,
    Json(review): Json<Review>,
) -> Json<Value> {
    Json(wire(answer(&admission, review, Step::Validate)))
}

/// The review as Kubernetes reads it: `response.patch` is a `[]byte`, i.e. a base64 string in
/// JSON (kube-core serializes it as an array of numbers).
fn wire(review: Review) -> Value {
    use base64::Engine;
    let patch = review
        .response
        .as_ref()
        .and_then(|r| r.patch.as_ref())
        .map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes));
    let mut value = serde_json::to_value(&review).unwrap_or(Value::Null);
    if let (Some(patch), Some(response)) = (patch, value.get_mut("response")) {
        response["patch"] = Value::String(patch);
    }
    value
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Mutate,
    Validate,
}

/// The response to one review (pure, so it is tested without TLS).
fn answer(admission: &TitusAdmission, review: Review, step: Step) -> Review {
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(request) => request,
        Err(_) => {
            return AdmissionResponse::invalid("no request in the AdmissionReview").into_review();
        }
    };
    let response = AdmissionResponse::from(&request);
    if request.kind.group != GROUP || request.kind.kind != KIND {
        return response.into_review();
    }
    let operation = match request.operation {
        KubeOperation::Create => Operation::Create,
        KubeOperation::Update => Operation::Update,
        KubeOperation::Delete => Operation::Delete,
        KubeOperation::Connect => return response.into_review(),
    };
    let subresource = request.sub_resource.clone().unwrap_or_default();
    let to_value =
        |o: &Option<DynamicObject>| o.as_ref().and_then(|o| serde_json::to_value(o).ok());
    let object = to_value(&request.object);
    let old = to_value(&request.old_object);
    let outcome = match (step, object) {
        (Step::Mutate, Some(original)) => {
            let mut mutated = original.clone();
            admission
                .mutate_object(operation, &subresource, &mut mutated, old.as_ref())
                .map(|()| Some(json_patch::diff(&original, &mutated)))
        }
        (Step::Mutate, None) => Ok(None),
        (Step::Validate, object) => admission
            .validate_object(operation, &subresource, object.as_ref(), old.as_ref())
            .map(|()| None),
    };
    match outcome {
        Ok(Some(patch)) if !patch.0.is_empty() => match response.clone().with_patch(patch) {
            Ok(patched) => patched.into_review(),
            Err(_) => response.into_review(),
        },
        Ok(_) => response.into_review(),
        Err(rejection) => refuse(response, &request, rejection).into_review(),
    }
}

/// A refusal as the API server would word it: 422 Invalid with one cause per field, or 403.
fn refuse(
    mut response: AdmissionResponse,
    request: &AdmissionRequest<DynamicObject>,
    rejection: Rejection,
) -> AdmissionResponse {
    response.allowed = false;
    response.result = match rejection {
        Rejection::Invalid(causes) => {
            let messages: Vec<String> = causes.iter().map(|c| c.message()).collect();
            Status {
                status: Some(StatusSummary::Failure),
                code: 422,
                message: format!(
                    "{KIND}.{GROUP} {:?} is invalid: {}",
                    request.name,
                    messages.join(", ")
                ),
                reason: "Invalid".into(),
                details: Some(StatusDetails {
                    name: request.name.clone(),
                    group: GROUP.into(),
                    kind: KIND.into(),
                    causes: causes
                        .iter()
                        .map(|c| StatusCause {
                            reason: "FieldValueInvalid".into(),
                            message: c.detail.clone(),
                            field: c.field.clone(),
                        })
                        .collect(),
                    uid: String::new(),
                    retry_after_seconds: 0,
                }),
                metadata: None,
            }
        }
        Rejection::Forbidden(message) => Status {
            status: Some(StatusSummary::Failure),
            code: 403,
            message,
            reason: "Forbidden".into(),
            details: None,
            metadata: None,
        },
    };
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use titus_crds::{TitusJob, TitusJobSpec};

    fn review(operation: &str, object: Value, old: Option<Value>) -> Review {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u-1",
                "kind": {"group": "titus.dev", "version": "v1alpha1", "kind": "TitusJob"},
                "resource": {"group": "titus.dev", "version": "v1alpha1", "resource": "titusjobs"},
                "name": "job",
                "namespace": "default",
                "operation": operation,
                "userInfo": {"username": "alice"},
                "object": object,
                "oldObject": old,
                "dryRun": false
            }
        }))
        .unwrap()
    }

    fn job(spec: TitusJobSpec) -> Value {
        serde_json::to_value(TitusJob::new("job", spec)).unwrap()
    }

    #[test]
    fn mutate_answers_a_json_patch_that_raises_minimums() {
        let admission = TitusAdmission::default();
        let answer = answer(
            &admission,
            review(
                "CREATE",
                job(TitusJobSpec::batch(1).with_cpu_memory(0.5, 128)),
                None,
            ),
            Step::Mutate,
        );
        let response = wire(answer)["response"].clone();
        assert_eq!(response["allowed"], true);
        assert_eq!(response["uid"], "u-1");
        assert_eq!(response["patchType"], "JSONPatch");
        let patch = base64::engine::general_purpose::STANDARD
            .decode(response["patch"].as_str().unwrap())
            .unwrap();
        let patch: Value = serde_json::from_slice(&patch).unwrap();
        let text = patch.to_string();
        assert!(text.contains("/spec/container/resources/cpu"), "{text}");
    }

    #[test]
    fn validate_refuses_with_422_and_field_causes() {
        let admission = TitusAdmission::default();
        let answer = answer(
            &admission,
            review("CREATE", job(TitusJobSpec::batch(0)), None),
            Step::Validate,
        );
        let response = serde_json::to_value(&answer).unwrap()["response"].clone();
        assert_eq!(response["allowed"], false);
        assert_eq!(response["status"]["code"], 422);
        assert_eq!(
            response["status"]["details"]["causes"][0]["field"],
            "spec.batch.size"
        );
        assert!(
            response["status"]["message"]
                .as_str()
                .unwrap()
                .contains("spec.batch.size")
        );
    }

    #[test]
    fn other_kinds_and_deletes_are_allowed() {
        let admission = TitusAdmission::default();
        let mut other = review("CREATE", job(TitusJobSpec::batch(0)), None);
        other.request.as_mut().unwrap().kind.kind = "CapacityGroup".into();
        let r = serde_json::to_value(answer(&admission, other, Step::Validate)).unwrap();
        assert_eq!(r["response"]["allowed"], true);
        let delete = review("DELETE", Value::Null, Some(job(TitusJobSpec::batch(0))));
        let r = serde_json::to_value(answer(&admission, delete, Step::Validate)).unwrap();
        assert_eq!(r["response"]["allowed"], true);
    }
}
