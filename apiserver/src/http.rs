//! HTTPS serving: TLS with HTTP/2 and HTTP/1.1, bearer-token authentication, routing of
//! Kubernetes API paths, and turning verbs into calls on [`Server`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::discovery;
use crate::error::ApiError;
use crate::openapi;
use crate::patch::PatchType;
use crate::read::{ListOptions, Reply, Representation, represent_written};
use crate::registry::ResourceDef;
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::{FieldValidation, Server, WriteOptions, Written};
use crate::table::IncludeObject;
use crate::write::{DeleteOptions, Subresource};

/// Response body type.
pub type Body = BoxBody<Bytes, Infallible>;

/// Largest accepted request body.
const MAX_BODY: usize = 32 << 20;

/// What the HTTP layer needs besides the server.
#[derive(Clone, Debug)]
pub struct HttpContext {
    /// Bearer token every API request must present.
    pub token: String,
    /// Address clients reach us at (for `/api`).
    pub advertise: String,
    /// Server version reported by `/version`.
    pub version: Value,
}

/// Serves HTTPS on `listener` until `shutdown` resolves.
pub async fn serve(
    server: Arc<Server>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    ctx: HttpContext,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let ctx = Arc::new(ctx);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, server, ctx) = (acceptor.clone(), server.clone(), ctx.clone());
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(error)) => {
                        tracing::debug!(%error, %peer, "tls handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let service = hyper::service::service_fn(move |req| {
                let (server, ctx) = (server.clone(), ctx.clone());
                async move { Ok::<_, Infallible>(handle(server, ctx, peer, req).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(error) = builder.serve_connection(TokioIo::new(tls), service).await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
}

fn full(status: u16, content_type: &str, body: Bytes) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(body).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

fn json_response(status: u16, value: &Value) -> Response<Body> {
    full(
        status,
        "application/json",
        Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
    )
}

fn error_response(error: &ApiError) -> Response<Body> {
    json_response(error.code(), &error.status())
}

fn reply_response(reply: Reply) -> Response<Body> {
    match reply {
        Reply::Json {
            status,
            body,
            warnings,
        } => {
            let mut resp = full(status, "application/json", body);
            for w in warnings {
                if let Ok(v) = http::HeaderValue::from_str(&format!("299 - {:?}", w)) {
                    resp.headers_mut().append(header::WARNING, v);
                }
            }
            resp
        }
        Reply::List(body) => {
            let stream = futures::stream::iter(body).map(|b| Ok::<_, Infallible>(Frame::data(b)));
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
        }
        Reply::Stream(rx) => {
            let stream = tokio_stream::wrappers::ReceiverStream::new(rx)
                .map(|b| Ok::<_, Infallible>(Frame::data(b)));
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CACHE_CONTROL, "no-cache, private")
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
        }
    }
}

fn is_public(path: &str) -> bool {
    matches!(path, "/version" | "/healthz" | "/livez" | "/readyz")
        || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
}

async fn handle(
    server: Arc<Server>,
    ctx: Arc<HttpContext>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    if !is_public(&path) {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if presented.map(str::trim) != Some(ctx.token.as_str()) {
            return error_response(&ApiError::Unauthorized);
        }
    }
    let query = parse_query(req.uri().query().unwrap_or_default());
    let header_str = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let accept = header_str(header::ACCEPT);
    let content_type = header_str(header::CONTENT_TYPE);
    let user_agent = header_str(header::USER_AGENT);
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return error_response(&ApiError::BadRequest(format!(
                "cannot read request body: {error}"
            )));
        }
    };
    let request = ApiRequest {
        method,
        path,
        query,
        accept,
        content_type,
        user_agent,
        body,
    };
    let started = std::time::Instant::now();
    let mut response = match route(&server, &ctx, &request).await {
        Ok(reply) => reply_response(reply),
        Err(error) => error_response(&error),
    };
    if request.path.ends_with("/log") && response.status().is_success() {
        // Pod logs are plain text, proxied from the node agent (see `logs`).
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
    }
    tracing::debug!(method = %request.method, path = %request.path, content_type = %request.content_type, accept = %request.accept, status = response.status().as_u16(), %peer,
        elapsed_ms = started.elapsed().as_millis() as u64, "request");
    response
}

/// One parsed request.
struct ApiRequest {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    accept: String,
    content_type: String,
    user_agent: String,
    body: Bytes,
}

impl ApiRequest {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.param(name), Some("true" | "1"))
    }

    fn json_body(&self) -> Result<Value, ApiError> {
        if self.body.is_empty() {
            return Ok(json!({}));
        }
        if self
            .content_type
            .starts_with("application/vnd.kubernetes.protobuf")
        {
            return crate::protobuf::decode(&self.body).map_err(|e| match e {
                crate::protobuf::ProtobufError::UnsupportedKind(_) => {
                    ApiError::UnsupportedMediaType(e.to_string())
                }
                crate::protobuf::ProtobufError::Malformed(_) => ApiError::BadRequest(e.to_string()),
            });
        }
        if self.content_type.starts_with("application/yaml") {
            let text =
                std::str::from_utf8(&self.body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            return serde_saphyr::from_str(text)
                .map_err(|e| ApiError::BadRequest(format!("invalid YAML: {e}")));
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON in request body: {e}")))
    }

    fn write_options(&self) -> Result<WriteOptions, ApiError> {
        let field_validation = match self.param("fieldValidation") {
            None | Some("") | Some("Warn") => FieldValidation::Warn,
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "fieldValidation parameter unsupported: {other}. Valid values are Ignore, Warn, Strict"
                )));
            }
        };
        Ok(WriteOptions {
            dry_run: self.param("dryRun").is_some_and(|d| d == "All"),
            field_manager: self.param("fieldManager").map(str::to_owned),
            field_validation,
            user: "titus-admin".into(),
            user_agent: self.user_agent.clone(),
            force: self.flag("force"),
        })
    }

    fn list_options(&self, def: &ResourceDef) -> Result<ListOptions, ApiError> {
        let label_selector = LabelSelector::parse(self.param("labelSelector").unwrap_or_default())
            .map_err(ApiError::BadRequest)?;
        let field_selector = FieldSelector::parse(
            self.param("fieldSelector").unwrap_or_default(),
            &def.field_labels,
        )
        .map_err(ApiError::BadRequest)?;
        let parse_num = |name: &str| -> Result<Option<u64>, ApiError> {
            self.param(name)
                .filter(|v| !v.is_empty())
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| ApiError::BadRequest(format!("invalid {name}: {v:?}")))
                })
                .transpose()
        };
        Ok(ListOptions {
            label_selector,
            field_selector,
            limit: parse_num("limit")?.filter(|l| *l > 0).map(|l| l as usize),
            continue_token: self.param("continue").map(str::to_owned),
            resource_version: self.param("resourceVersion").map(str::to_owned),
            bookmarks: self.flag("allowWatchBookmarks"),
            send_initial_events: self.param("sendInitialEvents").map(|v| v == "true"),
            timeout: parse_num("timeoutSeconds")?.map(Duration::from_secs),
        })
    }

    fn representation(&self) -> Result<Representation, ApiError> {
        Representation::negotiate(
            &self.accept,
            IncludeObject::parse(self.param("includeObject")),
        )
    }

    fn delete_options(&self) -> Result<DeleteOptions, ApiError> {
        let body = if self.body.is_empty() {
            json!({})
        } else {
            self.json_body()?
        };
        let grace = self
            .param("gracePeriodSeconds")
            .and_then(|g| g.parse().ok())
            .or_else(|| body.get("gracePeriodSeconds").and_then(Value::as_i64));
        let orphan = self
            .param("orphanDependents")
            .map(|o| o == "true")
            .or_else(|| body.get("orphanDependents").and_then(Value::as_bool));
        let propagation = self
            .param("propagationPolicy")
            .map(str::to_owned)
            .or_else(|| {
                body.get("propagationPolicy")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .or_else(|| {
                orphan.map(|o| {
                    if o {
                        "Orphan".to_owned()
                    } else {
                        "Background".to_owned()
                    }
                })
            });
        Ok(DeleteOptions {
            grace_period_seconds: grace,
            propagation_policy: propagation,
            precondition_uid: body
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_owned),
            precondition_rv: body
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

fn parse_query(query: &str) -> HashMap<String, String> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// A resource path, parsed.
struct ResourcePath<'a> {
    group: &'a str,
    version: &'a str,
    namespace: Option<&'a str>,
    resource: &'a str,
    name: Option<&'a str>,
    subresource: Option<&'a str>,
    legacy_watch: bool,
}

fn parse_resource_path<'a>(
    group: &'a str,
    version: &'a str,
    rest: &[&'a str],
) -> Option<ResourcePath<'a>> {
    let (legacy_watch, rest) = match rest.split_first() {
        Some((&"watch", tail)) => (true, tail),
        _ => (false, rest),
    };
    let namespaced = rest.first() == Some(&"namespaces")
        && rest.len() >= 3
        && !(rest.len() == 3 && matches!(rest[2], "status" | "finalize"));
    let (namespace, tail) = if namespaced {
        (Some(rest[1]), &rest[2..])
    } else {
        (None, rest)
    };
    let (resource, name, subresource) = match tail {
        [r] => (*r, None, None),
        [r, n] => (*r, Some(*n), None),
        [r, n, s] => (*r, Some(*n), Some(*s)),
        _ => return None,
    };
    Some(ResourcePath {
        group,
        version,
        namespace,
        resource,
        name,
        subresource,
        legacy_watch,
    })
}

async fn route(
    server: &Arc<Server>,
    ctx: &HttpContext,
    req: &ApiRequest,
) -> Result<Reply, ApiError> {
    let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let get = req.method == Method::GET;
    match segments.as_slice() {
        ["version"] => Ok(Reply::json(200, &ctx.version)),
        ["healthz" | "livez" | "readyz", ..] => Ok(Reply::Json {
            status: 200,
            body: Bytes::from_static(b"ok"),
            warnings: Vec::new(),
        }),
        ["api"] if get => Ok(Reply::json(200, &discovery::core_versions(&ctx.advertise))),
        ["api", "v1"] if get => Ok(Reply::json(
            200,
            &discovery::resources(&server.registry, "", "v1").unwrap_or_default(),
        )),
        ["apis"] if get => Ok(Reply::json(200, &discovery::groups(&server.registry))),
        ["apis", group] if get => discovery::group(&server.registry, group)
            .map(|d| Reply::json(200, &d))
            .ok_or_else(|| not_found_path(req)),
        ["apis", group, version] if get => discovery::resources(&server.registry, group, version)
            .map(|d| Reply::json(200, &d))
            .ok_or_else(|| not_found_path(req)),
        ["openapi", "v2"] if get => {
            if !req.accept.is_empty() && !req.accept.contains("json") && !req.accept.contains("*/*")
            {
                return Err(ApiError::NotAcceptable(
                    "only application/json is served for /openapi/v2".into(),
                ));
            }
            Ok(Reply::json(200, &openapi::v2_document(&server.registry)))
        }
        ["openapi", "v3"] if get => Ok(Reply::json(200, &openapi::v3_index(&server.registry))),
        ["openapi", "v3", "api", version] if get => {
            openapi::v3_document(&server.registry, "", version)
                .map(|d| Reply::json(200, &d))
                .ok_or_else(|| not_found_path(req))
        }
        ["openapi", "v3", "apis", group, version] if get => {
            openapi::v3_document(&server.registry, group, version)
                .map(|d| Reply::json(200, &d))
                .ok_or_else(|| not_found_path(req))
        }
        ["api", "v1", rest @ ..] => match parse_resource_path("", "v1", rest) {
            Some(path) => resource(server, &ctx.token, req, path).await,
            None => Err(not_found_path(req)),
        },
        ["apis", group, version, rest @ ..] => match parse_resource_path(group, version, rest) {
            Some(path) => resource(server, &ctx.token, req, path).await,
            None => Err(not_found_path(req)),
        },
        _ => Err(not_found_path(req)),
    }
}

fn not_found_path(req: &ApiRequest) -> ApiError {
    ApiError::NotFound(crate::error::Target::new("", "", &req.path))
}

async fn resource(
    server: &Arc<Server>,
    token: &str,
    req: &ApiRequest,
    path: ResourcePath<'_>,
) -> Result<Reply, ApiError> {
    let Some(def) = server.registry.get(path.group, path.version, path.resource) else {
        return Err(not_found_path(req));
    };
    if !def.namespaced && path.namespace.is_some() {
        return Err(not_found_path(req));
    }
    let namespace = path.namespace.unwrap_or_default();
    let sub = match path.subresource {
        None => Subresource::Main,
        Some("status") if def.status => Subresource::Status,
        Some("scale") if def.scale.is_some() => Subresource::Scale,
        Some(other) if def.subresources.iter().any(|s| s == other) => Subresource::Main,
        Some(_) => return Err(not_found_path(req)),
    };
    let extra = path
        .subresource
        .filter(|s| !matches!(*s, "status" | "scale"));
    match (&req.method, path.name) {
        (&Method::GET, None) => {
            let opts = req.list_options(&def)?;
            let repr = req.representation()?;
            let ns = path.namespace.map(str::to_owned);
            if path.legacy_watch || req.flag("watch") {
                server.watch(def, ns, opts, repr)
            } else {
                server.list(&def, ns.as_deref(), &opts, repr)
            }
        }
        (&Method::GET, Some(name)) => match (sub, extra) {
            (Subresource::Scale, _) => {
                let obj =
                    server.from_storage(&def, server.get_stored(&def, namespace, name)?.value());
                Ok(Reply::json(200, &crate::subresource::scale_of(&def, &obj)?))
            }
            (_, Some("log")) => {
                crate::logs::pod_log(server, token, namespace, name, &req.query).await
            }
            _ if path.legacy_watch || req.flag("watch") => {
                let mut opts = req.list_options(&def)?;
                opts.field_selector
                    .0
                    .push(crate::selector::FieldRequirement {
                        field: "metadata.name".into(),
                        value: name.to_owned(),
                        negated: false,
                    });
                server.watch(
                    def,
                    path.namespace.map(str::to_owned),
                    opts,
                    req.representation()?,
                )
            }
            _ => server.get_object(&def, namespace, name, req.representation()?),
        },
        (&Method::POST, None) => {
            let opts = req.write_options()?;
            let written = server
                .create(&def, namespace, req.json_body()?, &opts)
                .await?;
            written_reply(&def, written, req, 201)
        }
        (&Method::POST, Some(name)) => match extra {
            Some("binding") => {
                server.bind_pod(namespace, name, &req.json_body()?).await?;
                Ok(Reply::json(
                    201,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                ))
            }
            Some("eviction") => {
                let opts = req.write_options()?;
                server
                    .evict_pod(namespace, name, &req.json_body()?, &opts)
                    .await?;
                Ok(Reply::json(
                    201,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                ))
            }
            _ => Err(ApiError::MethodNotAllowed(format!(
                "POST is not supported on {}",
                req.path
            ))),
        },
        (&Method::PUT, Some(name)) => {
            let opts = req.write_options()?;
            if sub == Subresource::Scale {
                let scale = server
                    .update_scale(&def, namespace, name, req.json_body()?, &opts)
                    .await?;
                return Ok(Reply::json(200, &scale));
            }
            let written = server
                .update(&def, namespace, name, req.json_body()?, sub, &opts)
                .await?;
            written_reply(&def, written, req, 200)
        }
        (&Method::PATCH, Some(name)) => {
            let opts = req.write_options()?;
            let Some(patch_type) = PatchType::from_content_type(&req.content_type) else {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {:?})",
                    req.content_type
                )));
            };
            let written = server
                .patch(&def, namespace, name, patch_type, &req.body, sub, &opts)
                .await?;
            if sub == Subresource::Scale {
                return Ok(Reply::json(
                    200,
                    &crate::subresource::scale_of(&def, &written.object)?,
                ));
            }
            let status = if written.created { 201 } else { 200 };
            written_reply(&def, written, req, status)
        }
        (&Method::DELETE, Some(name)) => {
            let written = server
                .delete(
                    &def,
                    namespace,
                    name,
                    &req.delete_options()?,
                    &req.write_options()?,
                )
                .await?;
            written_reply(&def, written, req, 200)
        }
        (&Method::DELETE, None) => {
            let opts = req.list_options(&def)?;
            let keep = {
                let (labels, fields) = (opts.label_selector.clone(), opts.field_selector.clone());
                move |o: &crate::store::StoredObject| {
                    labels.matches(&o.labels)
                        && fields.matches(|f| o.field(f).unwrap_or_default().to_owned())
                }
            };
            let deleted = server
                .delete_collection(
                    &def,
                    path.namespace,
                    &keep,
                    &req.delete_options()?,
                    &req.write_options()?,
                )
                .await?;
            Ok(Reply::json(
                200,
                &json!({"apiVersion": def.api_version(), "kind": def.list_kind, "metadata": {}, "items": deleted}),
            ))
        }
        (method, _) => Err(ApiError::MethodNotAllowed(format!(
            "{method} is not supported on {}",
            req.path
        ))),
    }
}

fn written_reply(
    def: &ResourceDef,
    written: Written,
    req: &ApiRequest,
    status: u16,
) -> Result<Reply, ApiError> {
    let value = represent_written(def, written.object, req.representation()?);
    Ok(Reply::Json {
        status,
        body: Bytes::from(serde_json::to_vec(&value).unwrap_or_default()),
        warnings: written.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_paths_parse_into_resources() {
        let p =
            parse_resource_path("", "v1", &["namespaces", "ns1", "pods", "p", "status"]).unwrap();
        assert_eq!(
            (p.namespace, p.resource, p.name, p.subresource),
            (Some("ns1"), "pods", Some("p"), Some("status"))
        );
        let ns = parse_resource_path("", "v1", &["namespaces", "ns1", "status"]).unwrap();
        assert_eq!(
            (ns.namespace, ns.resource, ns.name, ns.subresource),
            (None, "namespaces", Some("ns1"), Some("status"))
        );
        let list = parse_resource_path("", "v1", &["namespaces"]).unwrap();
        assert_eq!((list.resource, list.name), ("namespaces", None));
        let watch = parse_resource_path("apps", "v1", &["watch", "namespaces", "d", "deployments"])
            .unwrap();
        assert!(watch.legacy_watch);
        assert_eq!(
            (watch.namespace, watch.resource),
            (Some("d"), "deployments")
        );
        assert!(parse_resource_path("", "v1", &["a", "b", "c", "d"]).is_none());
    }
}
