//! The Pod `log` subresource (`kubectl logs`): like kube-apiserver, the server looks up the Pod's
//! node and proxies the request to the node agent's kubelet-style endpoint
//! `GET http://<InternalIP>:<daemonEndpoints.kubeletEndpoint.Port>/containerLogs/<ns>/<pod>/<container>`,
//! streaming the answer back (with `follow=true`, until the agent ends it).
//!
//! Plain HTTP to the agent, authenticated with this server's bearer token (the agent's
//! kubeconfig carries the same token): the agents of the embedded setup run on the same machine.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::builtin::BuiltinId;
use crate::error::ApiError;
use crate::read::Reply;
use crate::server::Server;

/// Query parameters passed on to the agent.
const FORWARDED: [&str; 7] = [
    "follow",
    "tailLines",
    "limitBytes",
    "previous",
    "timestamps",
    "sinceSeconds",
    "sinceTime",
];
/// How long connecting to an agent may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most of an agent's error body that is passed on.
const MAX_ERROR_BODY: usize = 4096;

/// Where and what to ask the agent.
#[derive(Debug, PartialEq, Eq)]
struct Upstream {
    authority: String,
    path_and_query: String,
}

fn containers(pod: &Value) -> Vec<String> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// The container a request is about: the one named, else the Pod's only one.
fn container_of(pod: &Value, name: &str, asked: Option<&str>) -> Result<String, ApiError> {
    let all = containers(pod);
    match (asked.filter(|c| !c.is_empty()), all.as_slice()) {
        (Some(asked), _) if all.iter().any(|c| c == asked) => Ok(asked.to_owned()),
        (Some(asked), _) => Err(ApiError::BadRequest(format!(
            "container {asked} is not valid for pod {name}"
        ))),
        (None, [only]) => Ok(only.clone()),
        (None, _) => Err(ApiError::BadRequest(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            all.join(" ")
        ))),
    }
}

/// `host:port` of a node's agent endpoint.
fn agent_authority(node: &Value, node_name: &str) -> Result<String, ApiError> {
    let address = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|a| a.get("type").and_then(Value::as_str) == Some("InternalIP"))
        .and_then(|a| a.get("address").and_then(Value::as_str))
        .ok_or_else(|| {
            ApiError::BadRequest(format!("node {node_name} has no InternalIP address"))
        })?;
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0)
        .ok_or_else(|| {
            ApiError::BadRequest(format!("node {node_name} has no kubelet endpoint port"))
        })?;
    Ok(if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    })
}

fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The agent request for the Pod `name` in `namespace`, from the Pod and its Node.
fn upstream(
    namespace: &str,
    name: &str,
    pod: &Value,
    node_of: impl FnOnce(&str) -> Result<Value, ApiError>,
    query: &HashMap<String, String>,
) -> Result<Upstream, ApiError> {
    let container = container_of(pod, name, query.get("container").map(String::as_str))?;
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::BadRequest(format!("pod {name} does not have a host assigned")))?;
    let authority = agent_authority(&node_of(node_name)?, node_name)?;
    let params: Vec<String> = FORWARDED
        .iter()
        .filter_map(|p| query.get(*p).map(|v| format!("{p}={}", encode(v))))
        .collect();
    let mut path_and_query = format!(
        "/containerLogs/{}/{}/{}",
        encode(namespace),
        encode(name),
        encode(&container)
    );
    if !params.is_empty() {
        path_and_query = format!("{path_and_query}?{}", params.join("&"));
    }
    Ok(Upstream {
        authority,
        path_and_query,
    })
}

/// Serves `GET .../pods/<name>/log` by proxying it to the Pod's node agent.
///
/// # Errors
/// The Pod or its Node is missing, the Pod is not bound or names no container, the agent is
/// unreachable or refuses (its message is passed on).
pub async fn pod_log(
    server: &Arc<Server>,
    token: &str,
    namespace: &str,
    name: &str,
    query: &HashMap<String, String>,
) -> Result<Reply, ApiError> {
    let pod = server.get_stored(&server.builtin_def(BuiltinId::Pod), namespace, name)?;
    let node_def = server.builtin_def(BuiltinId::Node);
    let target = upstream(
        namespace,
        name,
        &pod.value(),
        |node| Ok(server.get_stored(&node_def, "", node)?.value()),
        query,
    )?;
    let unreachable = |e: &dyn std::fmt::Display| {
        ApiError::Internal(format!(
            "cannot reach the node agent at {}: {e}",
            target.authority
        ))
    };
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect(&target.authority),
    )
    .await
    .map_err(|e| unreachable(&e))?
    .map_err(|e| unreachable(&e))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| unreachable(&e))?;
    tokio::spawn(connection);
    let request = http::Request::get(&target.path_and_query)
        .header(http::header::HOST, &target.authority)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Empty::<Bytes>::new())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| unreachable(&e))?;
    let status = response.status();
    let mut body = response.into_body();
    if !status.is_success() {
        let bytes = http_body_util::Limited::new(body, MAX_ERROR_BODY)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let message = String::from_utf8_lossy(&bytes).trim().to_owned();
        return Err(match status.as_u16() {
            400 => ApiError::BadRequest(message),
            404 => ApiError::BadRequest(format!("the node agent has no logs: {message}")),
            code => ApiError::Internal(format!("the node agent answered {code}: {message}")),
        });
    }
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return };
            if let Ok(data) = frame.into_data()
                && tx.send(data).await.is_err()
            {
                return;
            }
        }
    });
    Ok(Reply::Stream(rx))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(containers: &[&str], node: Option<&str>) -> Value {
        let containers: Vec<Value> = containers.iter().map(|c| json!({"name": c})).collect();
        json!({"spec": {"containers": containers, "nodeName": node}})
    }

    fn node() -> Value {
        json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}
        }})
    }

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_log_request_goes_to_the_nodes_internal_ip_and_kubelet_port_with_its_parameters() {
        let got = upstream(
            "default",
            "task-1",
            &pod(&["main"], Some("n1")),
            |n| {
                assert_eq!(n, "n1");
                Ok(node())
            },
            &query(&[("follow", "true"), ("tailLines", "10"), ("pretty", "1")]),
        )
        .unwrap();
        assert_eq!(got.authority, "127.0.0.1:10250");
        assert_eq!(
            got.path_and_query,
            "/containerLogs/default/task-1/main?follow=true&tailLines=10"
        );
    }

    #[test]
    fn unbound_pods_unknown_containers_and_nodes_without_endpoints_are_refused() {
        let ok_node = |_: &str| Ok(node());
        let err = |p: Value, q: &[(&str, &str)]| {
            upstream("d", "p", &p, ok_node, &query(q))
                .unwrap_err()
                .to_string()
        };
        assert!(err(pod(&["main"], None), &[]).contains("does not have a host assigned"));
        assert!(err(pod(&["main"], Some("n1")), &[("container", "x")]).contains("not valid"));
        assert!(err(pod(&["a", "b"], Some("n1")), &[]).contains("choose one of: [a b]"));
        let bare = upstream(
            "d",
            "p",
            &pod(&["main"], Some("n1")),
            |_| Ok(json!({})),
            &query(&[]),
        );
        assert!(bare.unwrap_err().to_string().contains("InternalIP"));
    }
}
