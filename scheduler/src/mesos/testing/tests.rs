//! The stand-in answers raw requests as the documented API says.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use super::FakeMaster;
use crate::mesos::calls::{Event, EventType};
use crate::mesos::recordio::RecordIoDecoder;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn request(
    master: &FakeMaster,
    method: Method,
    headers: &[(&str, &str)],
    body: serde_json::Value,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("{}/api/v1/scheduler", master.url()));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

async fn status(client: &HttpClient, request: Request<Full<Bytes>>) -> StatusCode {
    client.request(request).await.unwrap().status()
}

fn subscribe_body() -> serde_json::Value {
    json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "root", "name": "test"}}})
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

#[tokio::test]
async fn methods_media_types_and_stream_ids_are_checked_as_documented() {
    let master = FakeMaster::start(Duration::from_secs(15)).await.unwrap();
    let client = client();
    let r = |m, h: &[(&str, &str)], b| request(&master, m, h, b);
    assert_eq!(
        status(&client, r(Method::GET, &[JSON], json!({}))).await,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let charset = ("Content-Type", "application/json; charset=utf-8");
    assert_eq!(
        status(&client, r(Method::POST, &[charset], subscribe_body())).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(
        status(&client, r(Method::POST, &[], subscribe_body())).await,
        StatusCode::BAD_REQUEST
    );
    let with_stream = [JSON, ("Mesos-Stream-Id", "x")];
    assert_eq!(
        status(&client, r(Method::POST, &with_stream, subscribe_body())).await,
        StatusCode::BAD_REQUEST
    );
    let no_type = json!({"framework_id": {"value": "F"}});
    assert_eq!(
        status(&client, r(Method::POST, &[JSON], no_type)).await,
        StatusCode::BAD_REQUEST
    );
    let protobuf_only = [JSON, ("Accept", "application/x-protobuf")];
    assert_eq!(
        status(&client, r(Method::POST, &protobuf_only, subscribe_body())).await,
        StatusCode::NOT_ACCEPTABLE
    );

    // A subscription: 200, JSON content type, a stream id, SUBSCRIBED then HEARTBEAT.
    let response = client
        .request(r(Method::POST, &[JSON], subscribe_body()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let stream_id = response.headers()["mesos-stream-id"]
        .to_str()
        .unwrap()
        .to_string();
    let mut body = response.into_body();
    let mut decoder = RecordIoDecoder::default();
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        decoder.push(&frame.into_data().unwrap());
        while let Some(record) = decoder.next_record().unwrap() {
            kinds.push(serde_json::from_slice::<Event>(&record).unwrap().kind);
        }
    }
    assert_eq!(kinds, vec![EventType::Subscribed, EventType::Heartbeat]);
    let framework_id = master.framework_id().unwrap();

    let decline = json!({"framework_id": {"value": framework_id}, "type": "DECLINE",
                         "decline": {"offer_ids": [{"value": "nope"}]}});
    assert_eq!(
        status(&client, r(Method::POST, &[JSON], decline.clone())).await,
        StatusCode::BAD_REQUEST,
        "missing stream id"
    );
    let wrong = [JSON, ("Mesos-Stream-Id", "not-the-stream")];
    assert_eq!(
        status(&client, r(Method::POST, &wrong, decline.clone())).await,
        StatusCode::BAD_REQUEST,
        "wrong stream id"
    );
    let right = [JSON, ("Mesos-Stream-Id", stream_id.as_str())];
    assert_eq!(
        status(&client, r(Method::POST, &right, decline.clone())).await,
        StatusCode::ACCEPTED
    );
    let no_reconcile = json!({"framework_id": {"value": framework_id}, "type": "RECONCILE"});
    assert_eq!(
        status(&client, r(Method::POST, &right, no_reconcile)).await,
        StatusCode::BAD_REQUEST
    );
    let bad_uuid = json!({"framework_id": {"value": framework_id}, "type": "ACKNOWLEDGE",
        "acknowledge": {"agent_id": {"value": "S1"}, "task_id": {"value": "t"}, "uuid": "c2hvcnQ="}});
    assert_eq!(
        status(&client, r(Method::POST, &right, bad_uuid)).await,
        StatusCode::BAD_REQUEST
    );

    drop(body);
    master.drop_subscription();
    assert_eq!(
        status(&client, r(Method::POST, &right, decline)).await,
        StatusCode::FORBIDDEN,
        "not subscribed"
    );
}
