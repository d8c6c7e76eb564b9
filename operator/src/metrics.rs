//! Prometheus metrics of the operator: reconciles by controller and result, errors by stable
//! category, reconcile latency, tasks by Titus state, and whether this instance leads.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use titus_crds::TaskState;
use titus_crds::job::status::TaskCounts;

use crate::error::ErrorCategory;

/// A controller of this operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControllerName {
    /// The job controller.
    Job,
    /// The task controller.
    Task,
}

impl ControllerName {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ControllerName::Job => "job",
            ControllerName::Task => "task",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    controller: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    controller: &'static str,
    category: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// The operator's metrics, registered in [`Metrics::registry`].
#[derive(Debug)]
pub struct Metrics {
    /// The registry served on `/metrics`.
    pub registry: Arc<Registry>,
    reconciles: Family<ReconcileLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    latency: Family<ControllerLabels, Histogram>,
    tasks: Family<StateLabels, Gauge>,
    leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("titus_operator");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let latency = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let tasks = Family::<StateLabels, Gauge>::default();
        let leader = Gauge::default();
        registry.register(
            "reconciles",
            "Reconcile passes by controller and result (ok, error, skipped)",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconcile passes by controller and error category",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconcile passes",
            latency.clone(),
        );
        registry.register("tasks", "TitusTasks by Titus task state", tasks.clone());
        registry.register(
            "leader",
            "1 while this instance holds the titus-operator lease",
            leader.clone(),
        );
        Self {
            registry: Arc::new(registry),
            reconciles,
            errors,
            latency,
            tasks,
            leader,
        }
    }

    /// Records a finished pass.
    pub fn reconciled(
        &self,
        controller: ControllerName,
        error: Option<ErrorCategory>,
        took: Duration,
    ) {
        let result = if error.is_some() { "error" } else { "ok" };
        self.reconciles
            .get_or_create(&ReconcileLabels {
                controller: controller.as_str(),
                result,
            })
            .inc();
        if let Some(category) = error {
            self.errors
                .get_or_create(&ErrorLabels {
                    controller: controller.as_str(),
                    category: category.as_str(),
                })
                .inc();
        }
        self.latency
            .get_or_create(&ControllerLabels {
                controller: controller.as_str(),
            })
            .observe(took.as_secs_f64());
    }

    /// Records a pass skipped because this instance does not lead.
    pub fn skipped(&self, controller: ControllerName) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                controller: controller.as_str(),
                result: "skipped",
            })
            .inc();
    }

    /// Sets the task gauges.
    pub fn set_task_counts(&self, counts: &TaskCounts) {
        for state in TaskState::ALL {
            self.tasks
                .get_or_create(&StateLabels {
                    state: state.as_str(),
                })
                .set(i64::from(counts.get(state)));
        }
    }

    /// Sets the leader gauge.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_with_controller_result_and_category_labels() {
        let m = Metrics::new();
        m.reconciled(ControllerName::Job, None, Duration::from_millis(3));
        m.reconciled(
            ControllerName::Task,
            Some(ErrorCategory::Conflict),
            Duration::from_millis(1),
        );
        m.set_task_counts(&TaskCounts::from_states([TaskState::Started]));
        m.set_leader(true);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &m.registry).unwrap();
        for needle in [
            r#"titus_operator_reconciles_total{controller="job",result="ok"} 1"#,
            r#"titus_operator_reconcile_errors_total{controller="task",category="conflict"} 1"#,
            r#"titus_operator_tasks{state="Started"} 1"#,
            "titus_operator_leader 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
