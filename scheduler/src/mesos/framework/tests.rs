//! The framework driver against the stand-in master, over real HTTP on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tokio::sync::mpsc::Receiver;

use super::*;
use crate::mesos::calls::{Call, CallType};
use crate::mesos::states::{TitusReasonCode, TitusTaskState};
use crate::mesos::testing::{FakeMaster, RecordedCall};
use crate::mesos::types::{Attribute, Id, Resource, TaskInfo, TaskState};

const DEADLINE: Duration = Duration::from_secs(10);

fn config(master: &FakeMaster) -> FrameworkConfig {
    let mut config = FrameworkConfig::new(
        master.url(),
        FrameworkInfo::titus("titus-offer-adapter", "root", "titus"),
    );
    config.backoff_min = Duration::from_millis(20);
    config.backoff_max = Duration::from_millis(200);
    config.housekeeping_interval = Duration::from_millis(20);
    config.reconcile_retry = Duration::from_millis(500);
    config
}

async fn start(config: FrameworkConfig) -> (MesosFramework, Receiver<FrameworkEvent>) {
    let (framework, mut events) = MesosFramework::start(config);
    next_event(&mut events, "SUBSCRIBED", |e| {
        matches!(e, FrameworkEvent::Subscribed { .. })
    })
    .await;
    (framework, events)
}

/// The next event matching `wanted`, skipping others, within the deadline.
async fn next_event(
    events: &mut Receiver<FrameworkEvent>,
    what: &str,
    wanted: impl Fn(&FrameworkEvent) -> bool,
) -> FrameworkEvent {
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        let event = tokio::time::timeout_at(until, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no {what} event within {DEADLINE:?}"))
            .expect("driver is running");
        if wanted(&event) {
            return event;
        }
    }
}

async fn status_of(
    events: &mut Receiver<FrameworkEvent>,
    task: &str,
    state: TaskState,
) -> StatusUpdate {
    let event = next_event(
        events,
        &format!("{state:?} of {task}"),
        |e| matches!(e, FrameworkEvent::TaskStatus(s) if s.task_id == task && s.state == state),
    )
    .await;
    match event {
        FrameworkEvent::TaskStatus(status) => status,
        other => panic!("unexpected {other:?}"),
    }
}

fn resources(cpus: f64, mem: f64) -> Vec<Resource> {
    vec![Resource::scalar("cpus", cpus), Resource::scalar("mem", mem)]
}

fn task(id: &str) -> TaskInfo {
    TaskInfo {
        name: id.to_string(),
        task_id: Id::new(id),
        agent_id: Id::new("filled-in-by-the-driver"),
        resources: resources(1.0, 512.0),
        command: None,
        container: None,
        labels: None,
        kill_policy: None,
        data: None,
    }
}

fn calls_of(calls: &[RecordedCall], kind: CallType) -> Vec<&RecordedCall> {
    calls
        .iter()
        .filter(|c| c.call.as_ref().is_some_and(|call| call.kind == kind))
        .collect()
}

fn call_body(recorded: &RecordedCall) -> &Call {
    recorded.call.as_ref().expect("parsed call")
}

async fn offered(
    master: &FakeMaster,
    events: &mut Receiver<FrameworkEvent>,
    host: &str,
    agent: &str,
) -> String {
    let offer_id = master
        .offer(
            host,
            agent,
            resources(8.0, 16_384.0),
            vec![Attribute::text("zone", "us-east-1a")],
        )
        .unwrap();
    next_event(
        events,
        "offers",
        |e| matches!(e, FrameworkEvent::OffersChanged { hosts } if *hosts > 0),
    )
    .await;
    offer_id
}

#[tokio::test]
async fn offers_become_a_launch_carrying_the_task() {
    let master = FakeMaster::start(Duration::from_millis(200)).await.unwrap();
    let (framework, mut events) = start(config(&master)).await;
    let offer_id = offered(&master, &mut events, "agent-1", "S1").await;

    let held = framework.offers().await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].offer_ids, vec![offer_id.clone()]);
    assert_eq!(held[0].agent.allocatable.cpu_milli, 8_000);
    assert_eq!(held[0].agent.zone.as_deref(), Some("us-east-1a"));

    framework.launch("agent-1", vec![task("t1")]).await.unwrap();
    let calls = master.calls();
    let subscribe_stream = calls_of(&calls, CallType::Subscribe)[0].stream_id.clone();
    assert_eq!(subscribe_stream, None, "SUBSCRIBE carries no stream id");
    let accept = calls_of(&calls, CallType::Accept)[0];
    assert_eq!(accept.status, 202);
    assert_eq!(accept.content_type.as_deref(), Some("application/json"));
    assert!(accept.stream_id.is_some());
    let body = call_body(accept).accept.as_ref().unwrap();
    assert_eq!(body.offer_ids, vec![Id::new(offer_id)]);
    let launched = &body.operations[0].launch.as_ref().unwrap().task_infos[0];
    assert_eq!(body.operations[0].kind, "LAUNCH");
    assert_eq!(launched.task_id, Id::new("t1"));
    assert_eq!(
        launched.agent_id,
        Id::new("S1"),
        "the driver targets the offers' agent"
    );
    assert!(master.outstanding_offers().is_empty());
    assert!(
        framework.offers().await.unwrap().is_empty(),
        "launched offers are used up"
    );
}

#[tokio::test]
async fn running_and_finished_updates_surface_as_titus_states_and_are_acknowledged() {
    let master = FakeMaster::start(Duration::from_millis(200)).await.unwrap();
    let (framework, mut events) = start(config(&master)).await;
    offered(&master, &mut events, "agent-1", "S1").await;
    framework.launch("agent-1", vec![task("t1")]).await.unwrap();

    for (state, titus) in [
        (
            TaskState::TaskRunning,
            (TitusTaskState::Started, TitusReasonCode::Normal),
        ),
        (
            TaskState::TaskFinished,
            (TitusTaskState::Finished, TitusReasonCode::Normal),
        ),
    ] {
        let uuid = master.update("t1", state).unwrap();
        let status = status_of(&mut events, "t1", state).await;
        assert_eq!(status.titus, Some(titus));
        assert_eq!(status.agent_id.as_deref(), Some("S1"));
        let token = status.ack.expect("a reliable update must be acknowledged");
        assert_eq!(token.uuid(), uuid);
        framework.acknowledge(token).await.unwrap();
        let calls = master
            .wait_for_calls("ACKNOWLEDGE", DEADLINE, |calls| {
                calls_of(calls, CallType::Acknowledge).iter().any(|c| {
                    call_body(c)
                        .acknowledge
                        .as_ref()
                        .is_some_and(|a| a.uuid == uuid)
                })
            })
            .await
            .unwrap();
        let ack = calls_of(&calls, CallType::Acknowledge).pop().unwrap();
        assert_eq!(ack.status, 202);
        assert_eq!(
            call_body(ack).acknowledge.as_ref().unwrap().task_id,
            Id::new("t1")
        );
    }
    assert_eq!(
        framework.kill("t1").await,
        Err(FrameworkError::UnknownTask {
            task_id: "t1".into()
        }),
        "a finished task is forgotten"
    );
}

#[tokio::test]
async fn a_rescinded_offer_is_never_launched_on() {
    let master = FakeMaster::start(Duration::from_millis(200)).await.unwrap();
    let (framework, mut events) = start(config(&master)).await;
    let first = offered(&master, &mut events, "agent-1", "S1").await;
    let second = offered(&master, &mut events, "agent-1", "S1").await;
    let lonely = offered(&master, &mut events, "agent-2", "S2").await;
    assert_eq!(framework.offers().await.unwrap()[0].offer_ids.len(), 2);

    master.rescind(&first);
    master.rescind(&lonely);
    next_event(&mut events, "rescind", |e| {
        matches!(e, FrameworkEvent::OffersChanged { hosts: 1 })
    })
    .await;
    assert_eq!(
        framework.launch("agent-2", vec![task("t2")]).await,
        Err(FrameworkError::NoOffers {
            host: "agent-2".into()
        })
    );
    framework.launch("agent-1", vec![task("t1")]).await.unwrap();
    let calls = master.calls();
    let accepts = calls_of(&calls, CallType::Accept);
    assert_eq!(accepts.len(), 1, "nothing was sent for the rescinded host");
    let offer_ids = &call_body(accepts[0]).accept.as_ref().unwrap().offer_ids;
    assert_eq!(
        offer_ids,
        &vec![Id::new(second)],
        "the rescinded offer is not listed"
    );
}

#[tokio::test]
async fn a_dropped_connection_resubscribes_with_the_framework_id_and_reconciles() {
    let master = FakeMaster::start(Duration::from_millis(200)).await.unwrap();
    let (framework, mut events) = start(config(&master)).await;
    let framework_id = master.framework_id().unwrap();
    offered(&master, &mut events, "agent-1", "S1").await;
    framework.launch("agent-1", vec![task("t1")]).await.unwrap();
    let first_stream = calls_of(&master.calls(), CallType::Accept)[0]
        .stream_id
        .clone();

    master.drop_subscription();
    next_event(&mut events, "disconnect", |e| {
        matches!(e, FrameworkEvent::Disconnected { .. })
    })
    .await;
    let again = next_event(&mut events, "re-subscription", |e| {
        matches!(e, FrameworkEvent::Subscribed { .. })
    })
    .await;
    assert_eq!(
        again,
        FrameworkEvent::Subscribed {
            framework_id: framework_id.clone()
        }
    );

    let explicit = |c: &&RecordedCall| {
        call_body(c)
            .reconcile
            .as_ref()
            .is_some_and(|r| !r.tasks.is_empty())
    };
    let calls = master
        .wait_for_calls("explicit RECONCILE", DEADLINE, |calls| {
            calls_of(calls, CallType::Reconcile).iter().any(&explicit)
        })
        .await
        .unwrap();
    let reconciles = calls_of(&calls, CallType::Reconcile);
    assert_eq!(
        call_body(reconciles[0]).reconcile,
        Some(Default::default()),
        "with no known task the first subscription reconciles implicitly"
    );
    let subscribes = calls_of(&calls, CallType::Subscribe);
    assert_eq!(subscribes.len(), 2);
    let resubscribe = call_body(subscribes[1]);
    assert_eq!(
        resubscribe.framework_id,
        Some(Id::new(framework_id.clone()))
    );
    let info_id = resubscribe
        .subscribe
        .as_ref()
        .unwrap()
        .framework_info
        .id
        .clone();
    assert_eq!(info_id, Some(Id::new(framework_id)));
    assert_eq!(subscribes[1].status, 200);

    let reconcile = *reconciles.iter().find(|c| explicit(c)).unwrap();
    assert_eq!(reconcile.status, 202);
    assert_ne!(
        reconcile.stream_id, first_stream,
        "calls use the new subscription's stream id"
    );
    let asked = &call_body(reconcile).reconcile.as_ref().unwrap().tasks;
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].task_id, Id::new("t1"));
    assert_eq!(asked[0].agent_id, Some(Id::new("S1")));

    let answer = status_of(&mut events, "t1", TaskState::TaskStaging).await;
    assert_eq!(answer.reason.as_deref(), Some("REASON_RECONCILIATION"));
    assert_eq!(
        answer.ack, None,
        "master-generated updates are never acknowledged"
    );
}

#[tokio::test]
async fn missed_heartbeats_count_as_a_lost_connection() {
    let master = FakeMaster::start(Duration::from_millis(50)).await.unwrap();
    let mut config = config(&master);
    config.missed_heartbeats = 3;
    let (_framework, mut events) = start(config).await;
    master.set_heartbeats(false);
    let lost = next_event(&mut events, "disconnect", |e| {
        matches!(e, FrameworkEvent::Disconnected { .. })
    })
    .await;
    assert_eq!(
        lost,
        FrameworkEvent::Disconnected {
            reason: "no event for 3 heartbeat intervals".into()
        }
    );
    master.set_heartbeats(true);
    next_event(&mut events, "re-subscription", |e| {
        matches!(e, FrameworkEvent::Subscribed { .. })
    })
    .await;
    assert_eq!(master.subscriptions(), 2);
}

#[tokio::test]
async fn offers_held_too_long_are_declined_with_a_filter() {
    let master = FakeMaster::start(Duration::from_millis(200)).await.unwrap();
    let mut config = config(&master);
    config.offer_hold = Duration::from_millis(100);
    config.decline_refuse_seconds = 30.0;
    let (framework, mut events) = start(config).await;
    let offer_id = offered(&master, &mut events, "agent-1", "S1").await;
    let calls = master
        .wait_for_calls("DECLINE", DEADLINE, |calls| {
            !calls_of(calls, CallType::Decline).is_empty()
        })
        .await
        .unwrap();
    let decline = call_body(calls_of(&calls, CallType::Decline)[0])
        .decline
        .clone()
        .unwrap();
    assert_eq!(decline.offer_ids, vec![Id::new(offer_id)]);
    assert_eq!(decline.filters.unwrap().refuse_seconds, Some(30.0));
    assert!(framework.offers().await.unwrap().is_empty());
}

#[tokio::test]
async fn kill_names_the_agent_and_the_killed_update_maps_to_finished_killed() {
    let master = FakeMaster::start(Duration::from_millis(200)).await.unwrap();
    let (framework, mut events) = start(config(&master)).await;
    offered(&master, &mut events, "agent-1", "S1").await;
    framework.launch("agent-1", vec![task("t1")]).await.unwrap();
    framework.kill("t1").await.unwrap();
    let kill = calls_of(&master.calls(), CallType::Kill)[0].clone();
    assert_eq!(
        call_body(&kill).kill.as_ref().unwrap().agent_id,
        Some(Id::new("S1"))
    );
    let status = status_of(&mut events, "t1", TaskState::TaskKilled).await;
    assert_eq!(
        status.titus,
        Some((TitusTaskState::Finished, TitusReasonCode::Killed))
    );
}

#[tokio::test]
async fn offers_feed_the_scheduler_and_its_assignment_is_launched() {
    use crate::mesos::offers::task_resources;
    use crate::{ClusterState, PlacementConfig, Resources, TaskRequest, schedule};

    let master = FakeMaster::start(Duration::from_millis(200)).await.unwrap();
    let (framework, mut events) = start(config(&master)).await;
    master
        .offer("big", "S1", resources(16.0, 65_536.0), vec![])
        .unwrap();
    let small_offer = master
        .offer("small", "S2", resources(4.0, 16_384.0), vec![])
        .unwrap();
    next_event(&mut events, "two hosts", |e| {
        matches!(e, FrameworkEvent::OffersChanged { hosts: 2 })
    })
    .await;

    let mut state = ClusterState::new();
    for host in framework.offers().await.unwrap() {
        state.upsert_agent(host.agent).unwrap();
    }
    let ask = Resources {
        cpu_milli: 2_000,
        memory_mb: 1_024,
        pods: 1,
        ..Resources::ZERO
    };
    let result = schedule(
        &mut state,
        &[TaskRequest::new("t1", "j1", ask)],
        &[],
        &PlacementConfig::default(),
    );
    let assignment = &result.assignments[0];
    assert_eq!(
        assignment.agent_id, "small",
        "bin packing prefers the host it fills most"
    );

    let mut info = task("t1");
    info.resources = task_resources(&ask);
    framework
        .launch(&assignment.agent_id, vec![info])
        .await
        .unwrap();
    let calls = master.calls();
    let accept = call_body(calls_of(&calls, CallType::Accept)[0])
        .accept
        .clone()
        .unwrap();
    assert_eq!(accept.offer_ids, vec![Id::new(small_offer)]);
    let launched = &accept.operations[0].launch.as_ref().unwrap().task_infos[0];
    assert_eq!(launched.agent_id, Id::new("S2"));
    assert_eq!(launched.resources, resources(2.0, 1_024.0));
}
