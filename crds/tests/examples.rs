//! Every manifest in `examples/` parses, passes sanitize + validate, and round-trips through the
//! types without gaining or losing a field, so the examples cannot rot.

// Test helpers may unwrap: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde_json::Value;
use titus_crds::{AdmissionConfig, CapacityGroup, TitusJob, admit, validate_capacity_group};

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Numbers compare by value (`50` in YAML equals `50.0` from an `f64` field).
fn normalize(value: Value) -> Value {
    match value {
        Value::Number(n) => n.as_f64().map_or(Value::Number(n), Value::from),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, normalize(v))).collect())
        }
        other => other,
    }
}

#[test]
fn every_example_is_valid_and_round_trips_unchanged() {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let raw: Value = serde_saphyr::from_str(&text).unwrap();
        let round_tripped = match raw["kind"].as_str() {
            Some("TitusJob") => {
                let job: TitusJob = serde_json::from_value(raw.clone()).unwrap();
                let mut spec = job.spec.clone();
                if let Err(errors) = admit(&mut spec, &AdmissionConfig::default()) {
                    panic!("{name} is refused: {errors}");
                }
                serde_json::to_value(&job).unwrap()
            }
            Some("CapacityGroup") => {
                let group: CapacityGroup = serde_json::from_value(raw.clone()).unwrap();
                if let Err(errors) = validate_capacity_group(&group) {
                    panic!("{name} is refused: {errors}");
                }
                serde_json::to_value(&group).unwrap()
            }
            other => panic!("{name}: no check for kind {other:?}"),
        };
        assert_eq!(
            normalize(round_tripped),
            normalize(raw),
            "{name} does not round-trip"
        );
        seen.push(name);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "batch-job.yaml",
            "capacity-group.yaml",
            "constrained-job.yaml",
            "service-job.yaml"
        ]
    );
}

#[test]
fn the_batch_example_runs_three_busybox_tasks() {
    let text = std::fs::read_to_string(examples_dir().join("batch-job.yaml")).unwrap();
    let job: TitusJob = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(job.spec.batch.as_ref().map(|b| b.size), Some(3));
    assert_eq!(
        job.spec.container.image.name,
        "localhost:5000/titus/busybox"
    );
    assert_eq!(job.spec.container.image.tag, "1");
}
