//! Table tests of the simulated runtime's timings and outcomes, on paused tokio time.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::runtime::{LogPaths, ProcessSpec, Resources};

const IMAGE: &str = "registry.test/app:1";

fn spec(id: &str, annotations: &[(&str, &str)]) -> ContainerSpec {
    let id = ContainerId::new(id).unwrap();
    ContainerSpec {
        logs: LogPaths::in_dir(Path::new("/logs"), &id),
        id,
        image: IMAGE.into(),
        process: ProcessSpec {
            args: vec!["/bin/true".into()],
            env: vec![],
            working_dir: "/".into(),
        },
        resources: Resources::default(),
        hostname: None,
        labels: BTreeMap::from([(labels::TASK_ID.to_string(), "task".to_string())]),
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

async fn runtime() -> SimulatedRuntime {
    let runtime = SimulatedRuntime::new(SimulatedConfig {
        missing_images: BTreeSet::from(["registry.test/missing:1".to_string()]),
        ..SimulatedConfig::default()
    });
    runtime.pull(IMAGE, &RegistryAuth::Anonymous).await.unwrap();
    runtime
}

fn ms(ts: Timestamp) -> i64 {
    ts.as_millisecond()
}

#[track_caller]
fn assert_state_at(state: &ContainerState, running: bool, at: u64) {
    assert_eq!(
        matches!(state, ContainerState::Running { .. }),
        running,
        "at {at} ms: {state:?}"
    );
}

struct Case {
    name: &'static str,
    annotations: &'static [(&'static str, &'static str)],
    /// When it becomes running (ms after create); `None`: never.
    running_at: Option<u64>,
    exit_at: u64,
    code: i32,
    reason: TerminationReason,
    message: &'static str,
}

#[tokio::test(start_paused = true)]
async fn containers_follow_their_prepare_and_run_annotations() {
    let cases = [
        Case {
            name: "defaults with a short run",
            annotations: &[(labels::MOCK_RUN_TIME, "10s")],
            running_at: Some(1_000),
            exit_at: 11_000,
            code: 0,
            reason: TerminationReason::Completed,
            message: "",
        },
        Case {
            name: "failing run",
            annotations: &[
                (labels::MOCK_PREPARE_TIME, "2s"),
                (
                    labels::MOCK_RUN_TIME,
                    "delay=5s; status=StatusFailed; message=boom",
                ),
            ],
            running_at: Some(2_000),
            exit_at: 7_000,
            code: FAILED_EXIT_CODE,
            reason: TerminationReason::Error,
            message: "boom",
        },
        Case {
            name: "failing prepare never runs",
            annotations: &[(
                labels::MOCK_PREPARE_TIME,
                "delay=1500ms; status=StatusFailed; message=bad image",
            )],
            running_at: None,
            exit_at: 1_500,
            code: FAILED_EXIT_CODE,
            reason: TerminationReason::Error,
            message: "bad image",
        },
        Case {
            name: "finished status with message",
            annotations: &[
                (labels::MOCK_PREPARE_TIME, "0"),
                (
                    labels::MOCK_RUN_TIME,
                    "delay=1m; status=StatusFinished; message=done",
                ),
            ],
            running_at: Some(0),
            exit_at: 60_000,
            code: 0,
            reason: TerminationReason::Completed,
            message: "done",
        },
    ];
    let runtime = runtime().await;
    for case in cases {
        let t0 = Instant::now();
        let created = runtime
            .create_and_start(&spec(
                case.name.replace(' ', "-").as_str(),
                case.annotations,
            ))
            .await
            .unwrap();
        let id = created.id.clone();
        if let Some(running_at) = case.running_at.filter(|at| *at > 0) {
            tokio::time::sleep_until(t0 + Duration::from_millis(running_at - 1)).await;
            assert_state_at(&runtime.status(&id).await.unwrap(), false, running_at - 1);
            tokio::time::sleep_until(t0 + Duration::from_millis(running_at + 1)).await;
            assert_state_at(&runtime.status(&id).await.unwrap(), true, running_at + 1);
        }
        let exit = runtime.wait(&id).await.unwrap();
        let base = ms(created.created_at);
        assert_eq!(
            ms(exit.finished_at) - base,
            case.exit_at as i64,
            "{}",
            case.name
        );
        assert_eq!(
            exit.started_at.map(|s| ms(s) - base),
            case.running_at.map(|r| r as i64),
            "{}",
            case.name
        );
        assert_eq!(exit.code, case.code, "{}", case.name);
        assert_eq!(exit.reason, case.reason, "{}", case.name);
        assert_eq!(exit.message, case.message, "{}", case.name);
        runtime.remove(&id).await.unwrap();
    }
    assert!(runtime.is_empty());
}

#[tokio::test(start_paused = true)]
async fn stop_honours_the_kill_time_within_the_grace_period_and_kills_after_it() {
    // (kill annotation, grace, stop after, exit after stop, code)
    let cases = [
        ("3s", 10, 60, 3_000, SIGTERM_EXIT_CODE),
        ("30s", 5, 60, 5_000, SIGKILL_EXIT_CODE),
        ("0", 5, 60, 0, SIGTERM_EXIT_CODE),
        // Stopped during prepare: never ran.
        ("1s", 10, 0, 1_000, SIGTERM_EXIT_CODE),
    ];
    let runtime = runtime().await;
    for (i, (kill, grace, stop_after, exit_after, code)) in cases.into_iter().enumerate() {
        let annotations = [
            (labels::MOCK_PREPARE_TIME, "1s"),
            (labels::MOCK_RUN_TIME, "status=StatusRunning"),
            (labels::MOCK_KILL_TIME, kill),
        ];
        let created = runtime
            .create_and_start(&spec(&format!("stop-{i}"), &annotations))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(stop_after)).await;
        let stopped_at = Instant::now();
        let exit = runtime
            .stop(&created.id, Duration::from_secs(grace))
            .await
            .unwrap();
        assert_eq!(
            stopped_at.elapsed(),
            Duration::from_millis(exit_after),
            "case {i}"
        );
        assert_eq!(exit.code, code, "case {i}");
        assert_eq!(exit.reason, TerminationReason::Killed, "case {i}");
        assert_eq!(exit.started_at.is_some(), stop_after > 1, "case {i}");
        // A second stop returns the same exit at once.
        assert_eq!(
            runtime.stop(&created.id, Duration::ZERO).await.unwrap(),
            exit
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_running_forever_container_is_still_running_after_a_day() {
    let runtime = runtime().await;
    let created = runtime
        .create_and_start(&spec(
            "forever",
            &[(labels::MOCK_RUN_TIME, "status=StatusRunning")],
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(86_400)).await;
    assert!(matches!(
        runtime.status(&created.id).await.unwrap(),
        ContainerState::Running { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn images_must_exist_and_be_pulled_and_ids_are_unique() {
    let runtime = runtime().await;
    assert!(matches!(
        runtime
            .pull("registry.test/missing:1", &RegistryAuth::Anonymous)
            .await,
        Err(RuntimeError::ImageNotFound { .. })
    ));
    let mut not_pulled = spec("np", &[]);
    not_pulled.image = "registry.test/other:1".into();
    assert!(matches!(
        runtime.create_and_start(&not_pulled).await,
        Err(RuntimeError::ImageNotPresent { .. })
    ));
    runtime.create_and_start(&spec("dup", &[])).await.unwrap();
    assert!(matches!(
        runtime.create_and_start(&spec("dup", &[])).await,
        Err(RuntimeError::ContainerAlreadyExists { .. })
    ));
    let listed = runtime.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].labels[labels::TASK_ID], "task");
    assert_eq!(listed[0].state, ContainerState::Created);
    let unknown = ContainerId::new("unknown").unwrap();
    assert!(matches!(
        runtime.wait(&unknown).await,
        Err(RuntimeError::ContainerNotFound { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_containers_run_to_completion_in_one_process() {
    let runtime = runtime().await;
    let n = 10_000;
    let annotations = [
        (labels::MOCK_PREPARE_TIME, "delay=2s; jitter=1s"),
        (labels::MOCK_RUN_TIME, "delay=1m; jitter=30s"),
    ];
    for i in 0..n {
        runtime
            .create_and_start(&spec(&format!("c{i}"), &annotations))
            .await
            .unwrap();
    }
    let ids: Vec<ContainerId> = runtime
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids.len(), n);
    let mut latest = Timestamp::UNIX_EPOCH;
    for id in &ids {
        let exit = runtime.wait(id).await.unwrap();
        assert_eq!(exit.code, 0);
        latest = latest.max(exit.finished_at);
    }
    // Everything is done within prepare + run + both jitters.
    assert!(ms(latest) <= 93_000, "latest exit at {latest}");
}
