//! The JSON of calls and events, checked against the shapes in mesos-offers.md.

#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::mesos::types::{CommandInfo, Resource, TaskState};

const F: &str = "c2f6d3a4-5b7e-4e1f-9a0b-1d2e3f4a5b6c-0001";
const S3: &str = "c2f6d3a4-5b7e-4e1f-9a0b-1d2e3f4a5b6c-S3";
const O17: &str = "c2f6d3a4-5b7e-4e1f-9a0b-1d2e3f4a5b6c-O17";

fn to_json(call: &Call) -> serde_json::Value {
    serde_json::to_value(call).unwrap()
}

#[test]
fn first_and_repeated_subscribe_have_the_documented_shape() {
    let mut info = FrameworkInfo::titus("titus-offer-adapter", "root", "titus");
    assert_eq!(
        to_json(&Call::subscribe(info.clone())),
        json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
            "user": "root", "name": "titus-offer-adapter", "roles": ["titus"],
            "failover_timeout": 604800.0, "checkpoint": true,
            "capabilities": [{"type": "MULTI_ROLE"}, {"type": "PARTITION_AWARE"},
                             {"type": "TASK_KILLING_STATE"}, {"type": "GPU_RESOURCES"}]}}})
    );
    info.id = Some(Id::new(F));
    let again = to_json(&Call::subscribe(info));
    assert_eq!(again["framework_id"], json!({"value": F}));
    assert_eq!(
        again["subscribe"]["framework_info"]["id"],
        json!({"value": F})
    );
}

#[test]
fn accept_with_launch_carries_the_task_info() {
    let task = TaskInfo {
        name: "job-42-worker-0".into(),
        task_id: Id::new("job-42-worker-0-1"),
        agent_id: Id::new(S3),
        resources: vec![
            Resource::scalar("cpus", 2.0),
            Resource::scalar("mem", 4096.0),
        ],
        command: Some(CommandInfo {
            shell: Some(true),
            value: Some("echo hello && sleep 60".into()),
            ..CommandInfo::default()
        }),
        container: None,
        labels: None,
        kill_policy: None,
        data: None,
    };
    let call = Call::launch(&Id::new(F), vec![Id::new(O17)], vec![task], 5.0);
    let text = serde_json::to_string(&call).unwrap();
    assert!(
        text.contains("\"refuse_seconds\":5.0"),
        "doubles keep their decimal point: {text}"
    );
    assert_eq!(
        to_json(&call),
        json!({"framework_id": {"value": F}, "type": "ACCEPT", "accept": {
            "offer_ids": [{"value": O17}],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": [{
                "name": "job-42-worker-0",
                "task_id": {"value": "job-42-worker-0-1"},
                "agent_id": {"value": S3},
                "resources": [
                    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2.0}},
                    {"name": "mem", "type": "SCALAR", "scalar": {"value": 4096.0}}],
                "command": {"shell": true, "value": "echo hello && sleep 60"}}]}}],
            "filters": {"refuse_seconds": 5.0}}})
    );
}

#[test]
fn decline_acknowledge_kill_and_reconcile_have_the_documented_shape() {
    let f = Id::new(F);
    assert_eq!(
        to_json(&Call::decline(&f, vec![Id::new(O17)], 3600.0)),
        json!({"framework_id": {"value": F}, "type": "DECLINE",
               "decline": {"offer_ids": [{"value": O17}], "filters": {"refuse_seconds": 3600.0}}})
    );
    assert_eq!(
        to_json(&Call::acknowledge(
            &f,
            Id::new(S3),
            Id::new("t1"),
            "D4+tW9nLRp+hZXCGdyiVDg==".into()
        )),
        json!({"framework_id": {"value": F}, "type": "ACKNOWLEDGE", "acknowledge": {
            "agent_id": {"value": S3}, "task_id": {"value": "t1"}, "uuid": "D4+tW9nLRp+hZXCGdyiVDg=="}})
    );
    assert_eq!(
        to_json(&Call::kill(&f, Id::new("t1"), Some(Id::new(S3)))),
        json!({"framework_id": {"value": F}, "type": "KILL",
               "kill": {"task_id": {"value": "t1"}, "agent_id": {"value": S3}}})
    );
    assert_eq!(
        to_json(&Call::reconcile(&f, vec![])),
        json!({"framework_id": {"value": F}, "type": "RECONCILE", "reconcile": {}}),
        "implicit reconciliation still sends the reconcile object"
    );
    let explicit = Call::reconcile(
        &f,
        vec![ReconcileTask {
            task_id: Id::new("t1"),
            agent_id: Some(Id::new(S3)),
        }],
    );
    assert_eq!(
        to_json(&explicit)["reconcile"],
        json!({"tasks": [{"task_id": {"value": "t1"}, "agent_id": {"value": S3}}]})
    );
}

#[test]
fn documented_events_parse() {
    let subscribed: Event = serde_json::from_str(
        r#"{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"F"},"heartbeat_interval_seconds":15.0}}"#,
    )
    .unwrap();
    assert_eq!(subscribed.kind, EventType::Subscribed);
    assert_eq!(
        subscribed.subscribed.unwrap().heartbeat_interval_seconds,
        Some(15.0)
    );

    let offers: Event = serde_json::from_str(
        r#"{"type":"OFFERS","offers":{"offers":[{"id":{"value":"O17"},"framework_id":{"value":"F"},
            "agent_id":{"value":"S3"},"hostname":"agent-7","resources":[
            {"name":"cpus","type":"SCALAR","scalar":{"value":8.0},"role":"*","allocation_info":{"role":"titus"}},
            {"name":"ports","type":"RANGES","ranges":{"range":[{"begin":31000,"end":32000}]}}],
            "attributes":[{"name":"zone","type":"TEXT","text":{"value":"us-east-1a"}}],
            "allocation_info":{"role":"titus"},"some_future_field":1}]}}"#,
    )
    .unwrap();
    let offer = &offers.offers.unwrap().offers[0];
    assert_eq!(offer.id.value, "O17");
    assert_eq!(
        offer.resources[1].ranges.as_ref().unwrap().range[0].end,
        32000
    );

    let error: Event =
        serde_json::from_str(r#"{"type":"ERROR","error":{"message":"Framework failed over"}}"#)
            .unwrap();
    assert_eq!(error.error.unwrap().message, "Framework failed over");

    let update: Event = serde_json::from_str(
        r#"{"type":"UPDATE","update":{"status":{"task_id":{"value":"t1"},"state":"TASK_FAILED",
            "reason":"REASON_CONTAINER_LIMITATION_MEMORY","source":"SOURCE_AGENT",
            "agent_id":{"value":"S3"},"timestamp":1717000100.5,"uuid":"fJ5meXQlQN6US+B/wfkK5w=="}}}"#,
    )
    .unwrap();
    let status = update.update.unwrap().status;
    assert_eq!(status.state, TaskState::TaskFailed);
    assert_eq!(status.uuid.as_deref(), Some("fJ5meXQlQN6US+B/wfkK5w=="));

    let future: Event = serde_json::from_str(r#"{"type":"SOMETHING_NEW"}"#).unwrap();
    assert_eq!(
        future.kind,
        EventType::Unknown,
        "unknown event types are tolerated"
    );
    let heartbeat = serde_json::to_string(&Event::bare(EventType::Heartbeat)).unwrap();
    assert_eq!(heartbeat, r#"{"type":"HEARTBEAT"}"#);
    assert_eq!(heartbeat.len(), 20);
}
