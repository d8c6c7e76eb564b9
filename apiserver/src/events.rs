//! Conversion between `core/v1` Event (the storage form) and `events.k8s.io/v1` Event.
//!
//! Kubernetes stores one Event resource and serves it in both shapes; kube-rs's event recorder
//! writes `events.k8s.io/v1` while `kubectl describe` reads `core/v1`, so both must agree.

use serde_json::{Map, Value};

/// Field renames: (events.k8s.io/v1 name, core/v1 name).
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// events.k8s.io/v1 -> core/v1.
pub fn to_core(event: Value) -> Value {
    rename(event, "v1", |(v1, core)| (v1, core))
}

/// core/v1 -> events.k8s.io/v1.
pub fn to_events_v1(event: Value) -> Value {
    rename(event, "events.k8s.io/v1", |(v1, core)| (core, v1))
}

fn rename(
    event: Value,
    api_version: &str,
    direction: impl Fn((&'static str, &'static str)) -> (&'static str, &'static str),
) -> Value {
    let Value::Object(map) = event else {
        return event;
    };
    let mut out = Map::with_capacity(map.len());
    for (key, value) in map {
        let renamed = RENAMES
            .iter()
            .map(|r| direction(*r))
            .find(|(from, _)| *from == key)
            .map(|(_, to)| to);
        out.insert(renamed.map_or(key, str::to_owned), value);
    }
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_convert_both_ways_without_loss() {
        let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "started", "reason": "Started",
            "reportingController": "titus", "reportingInstance": "op-1", "type": "Normal",
            "eventTime": "2026-01-01T00:00:00.000000Z", "action": "Start"});
        let core = to_core(v1.clone());
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "started");
        assert_eq!(core["reportingComponent"], "titus");
        assert_eq!(to_events_v1(core), v1);
    }
}
