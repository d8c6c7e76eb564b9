//! The decide step after `schedule()`: which Pods to bind where, which unplaceable Pods get a
//! new `PodScheduled=False` condition and Event, and the unmet demand to publish. Pure.
//!
//! A condition is written only when it would change (status, reason or message), so an
//! unchanged diagnosis costs no write however often the iteration runs; at most
//! `max_condition_writes` are planned per iteration and the rest wait for the next one.

use k8s_openapi::api::core::v1::ObjectReference;
use serde::{Deserialize, Serialize};

use crate::failure::UnmetDemand;
use crate::kube::pod::{PodView, UNSCHEDULABLE};
use crate::placement::SchedulingResult;

/// Bind one Pod to one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    /// `namespace/name`.
    pub key: String,
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// Node name.
    pub node: String,
}

/// Mark one Pod unschedulable.
#[derive(Clone, Debug, PartialEq)]
pub struct MarkUnschedulable {
    /// `namespace/name`.
    pub key: String,
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// The aggregated reasons (`0/120 offers: 80 insufficient memory, 40 zoneBalance`).
    pub message: String,
    /// True when `PodScheduled` was not already `False` (a new `lastTransitionTime`).
    pub transition: bool,
    /// What the Event is about: the Pod's `TitusTask`, else the Pod.
    pub regarding: ObjectReference,
}

/// The published unmet demand (ConfigMap `titus-scheduler-demand`, key `demand.json`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DemandReport {
    /// Failed tasks that more agents would place, by shape, largest first.
    pub unmet_demand: Vec<UnmetDemand>,
}

/// What one iteration does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IterationPlan {
    /// Binds, in assignment order.
    pub binds: Vec<Bind>,
    /// Conditions (and Events) to write.
    pub unschedulable: Vec<MarkUnschedulable>,
    /// Condition writes left for a later iteration.
    pub deferred: usize,
    /// Demand to publish.
    pub demand: DemandReport,
}

/// Plans the writes of one iteration. `invalid` lists pending Pods that were not scheduled at
/// all, with their message; `pod` looks Pods up by key.
pub fn plan<'a>(
    result: &SchedulingResult,
    invalid: &[(String, String)],
    pod: impl Fn(&str) -> Option<&'a PodView>,
    max_condition_writes: usize,
) -> IterationPlan {
    let mut out = IterationPlan {
        demand: DemandReport {
            unmet_demand: result.unmet_demand.clone(),
        },
        ..IterationPlan::default()
    };
    for assignment in &result.assignments {
        if let Some(view) = pod(&assignment.task_id) {
            out.binds.push(Bind {
                key: view.key.clone(),
                namespace: view.namespace.clone(),
                name: view.name.clone(),
                node: assignment.agent_id.clone(),
            });
        }
    }
    let failures = result
        .failures
        .iter()
        .map(|f| (f.task_id.as_str(), f.summary.as_str()))
        .chain(invalid.iter().map(|(k, m)| (k.as_str(), m.as_str())));
    for (key, message) in failures {
        let Some(view) = pod(key) else {
            continue;
        };
        let current = view.scheduled.as_ref();
        let unchanged = current.is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some(UNSCHEDULABLE)
                && c.message.as_deref() == Some(message)
        });
        if unchanged {
            continue;
        }
        if out.unschedulable.len() >= max_condition_writes {
            out.deferred += 1;
            continue;
        }
        out.unschedulable.push(MarkUnschedulable {
            key: view.key.clone(),
            namespace: view.namespace.clone(),
            name: view.name.clone(),
            message: message.to_string(),
            transition: current.is_none_or(|c| c.status != "False"),
            regarding: view.task_ref.clone().unwrap_or_else(|| ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(view.name.clone()),
                namespace: Some(view.namespace.clone()),
                ..ObjectReference::default()
            }),
        });
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::failure::{FailureCause, PlacementFailure};
    use crate::kube::pod::ScheduledCondition;
    use crate::placement::Assignment;
    use crate::resources::Resources;

    fn view(name: &str, scheduled: Option<(&str, &str)>, task: bool) -> PodView {
        PodView {
            key: format!("ns/{name}"),
            namespace: "ns".into(),
            name: name.into(),
            ours: true,
            node_name: None,
            terminal: false,
            deleting: false,
            resources: Ok(Resources::ZERO),
            job_name: None,
            job_id: None,
            job_type: None,
            capacity_group: None,
            created_ms: 0,
            task_ref: task.then(|| ObjectReference {
                kind: Some("TitusTask".into()),
                name: Some(name.into()),
                ..ObjectReference::default()
            }),
            scheduled: scheduled.map(|(status, message)| ScheduledCondition {
                status: status.into(),
                reason: (status == "False").then(|| UNSCHEDULABLE.to_string()),
                message: Some(message.into()),
            }),
        }
    }

    fn failure(name: &str, summary: &str) -> PlacementFailure {
        PlacementFailure {
            task_id: format!("ns/{name}"),
            job_id: "j".into(),
            cause: FailureCause::NoAgentFits,
            agents: 3,
            rejections: Vec::new(),
            summary: summary.into(),
        }
    }

    #[test]
    fn assignments_become_binds_and_changed_diagnoses_become_condition_writes() {
        let pods: HashMap<String, PodView> = [
            view("placed", None, true),
            view("new", None, true),
            view(
                "same",
                Some(("False", "0/3 offers: 3 insufficient cpu")),
                true,
            ),
            view(
                "changed",
                Some(("False", "0/3 offers: 3 uniqueHost")),
                false,
            ),
            view("was-true", Some(("True", "")), true),
            view("bad", None, true),
        ]
        .into_iter()
        .map(|v| (v.key.clone(), v))
        .collect();
        let result = SchedulingResult {
            assignments: vec![Assignment {
                task_id: "ns/placed".into(),
                job_id: "j".into(),
                agent_id: "n1".into(),
                fitness: 1.0,
            }],
            failures: ["new", "same", "changed", "was-true", "gone"]
                .iter()
                .map(|n| failure(n, "0/3 offers: 3 insufficient cpu"))
                .collect(),
            ..SchedulingResult::default()
        };
        let invalid = vec![("ns/bad".to_string(), "cannot read resources".to_string())];
        let plan = plan(&result, &invalid, |k| pods.get(k), 10);
        assert_eq!(
            plan.binds,
            vec![Bind {
                key: "ns/placed".into(),
                namespace: "ns".into(),
                name: "placed".into(),
                node: "n1".into(),
            }]
        );
        let written: Vec<(&str, bool)> = plan
            .unschedulable
            .iter()
            .map(|u| (u.name.as_str(), u.transition))
            .collect();
        assert_eq!(
            written,
            [
                ("new", true),
                ("changed", false),
                ("was-true", true),
                ("bad", true)
            ]
        );
        assert_eq!(
            plan.unschedulable[0].regarding.kind.as_deref(),
            Some("TitusTask")
        );
        assert_eq!(
            plan.unschedulable[1].regarding.kind.as_deref(),
            Some("Pod"),
            "no task owner: the event is on the pod"
        );
        assert_eq!(plan.deferred, 0);
    }

    #[test]
    fn condition_writes_are_bounded_per_iteration() {
        let pods: HashMap<String, PodView> = (0..5)
            .map(|i| view(&format!("p{i}"), None, true))
            .map(|v| (v.key.clone(), v))
            .collect();
        let result = SchedulingResult {
            failures: (0..5)
                .map(|i| failure(&format!("p{i}"), "0/1 offers"))
                .collect(),
            ..SchedulingResult::default()
        };
        let plan = plan(&result, &[], |k| pods.get(k), 2);
        assert_eq!(plan.unschedulable.len(), 2);
        assert_eq!(plan.deferred, 3);
    }
}
