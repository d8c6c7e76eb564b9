//! Prometheus metrics of the Kubernetes scheduler loop and the Mesos bridge (prefix
//! `titus_scheduler_`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A `result` label: `success` or `failure`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `success` / `failure`.
    pub result: &'static str,
}

/// A Mesos task state label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// `TASK_RUNNING`, ...
    pub state: String,
}

/// Every metric the scheduler exports. Cheap to clone (shared handles).
#[derive(Clone, Debug)]
pub struct SchedulerMetrics {
    /// Seconds per scheduling iteration (schedule plus writes).
    pub iteration_seconds: Histogram,
    /// Seconds spent in `schedule()` alone.
    pub placement_seconds: Histogram,
    /// Binds by result.
    pub binds: Family<ResultLabel, Counter>,
    /// Tasks not placed, summed over iterations.
    pub placement_failures: Counter,
    /// `PodScheduled=False` condition writes by result.
    pub condition_writes: Family<ResultLabel, Counter>,
    /// Pending task Pods at the last iteration.
    pub pending_tasks: Gauge,
    /// Agents (usable Nodes) in the cluster state.
    pub agents: Gauge,
    /// Tasks holding resources in the cluster state.
    pub placed_tasks: Gauge,
    /// Failed tasks that more agents would place, at the last iteration.
    pub unmet_demand_tasks: Gauge,
    /// 1 while this instance leads.
    pub leader: Gauge,
    /// Mesos launches (ACCEPT calls) by result.
    pub mesos_launches: Family<ResultLabel, Counter>,
    /// Mesos status updates by state.
    pub mesos_updates: Family<StateLabel, Counter>,
}

impl Default for SchedulerMetrics {
    fn default() -> Self {
        let seconds = || Histogram::new(exponential_buckets(0.001, 2.0, 16));
        SchedulerMetrics {
            iteration_seconds: seconds(),
            placement_seconds: seconds(),
            binds: Family::default(),
            placement_failures: Counter::default(),
            condition_writes: Family::default(),
            pending_tasks: Gauge::default(),
            agents: Gauge::default(),
            placed_tasks: Gauge::default(),
            unmet_demand_tasks: Gauge::default(),
            leader: Gauge::default(),
            mesos_launches: Family::default(),
            mesos_updates: Family::default(),
        }
    }
}

impl SchedulerMetrics {
    /// Registers every metric under `titus_scheduler_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("titus_scheduler");
        r.register(
            "iteration_duration_seconds",
            "Seconds per scheduling iteration (placement and writes)",
            self.iteration_seconds.clone(),
        );
        r.register(
            "placement_duration_seconds",
            "Seconds spent placing tasks in one iteration",
            self.placement_seconds.clone(),
        );
        r.register("binds", "Pod binds by result", self.binds.clone());
        r.register(
            "placement_failures",
            "Tasks an iteration could not place",
            self.placement_failures.clone(),
        );
        r.register(
            "condition_writes",
            "PodScheduled=False writes by result",
            self.condition_writes.clone(),
        );
        r.register(
            "pending_tasks",
            "Pending task pods at the last iteration",
            self.pending_tasks.clone(),
        );
        r.register("agents", "Nodes that take placements", self.agents.clone());
        r.register(
            "placed_tasks",
            "Tasks holding resources on nodes",
            self.placed_tasks.clone(),
        );
        r.register(
            "unmet_demand_tasks",
            "Unplaced tasks more nodes would place",
            self.unmet_demand_tasks.clone(),
        );
        r.register(
            "leader",
            "1 while this instance is the leader",
            self.leader.clone(),
        );
        r.register(
            "mesos_launches",
            "Mesos ACCEPT/LAUNCH calls by result",
            self.mesos_launches.clone(),
        );
        r.register(
            "mesos_status_updates",
            "Mesos task status updates by state",
            self.mesos_updates.clone(),
        );
    }

    /// Counts a result.
    pub fn count(family: &Family<ResultLabel, Counter>, ok: bool) {
        family
            .get_or_create(&ResultLabel {
                result: if ok { "success" } else { "failure" },
            })
            .inc();
    }
}
