//! Job disruption budget (proto `JobDisruptionBudget`): one policy, one rate, time windows and
//! container health providers. Used by the eviction service and the capacity manager's drains.
//!
//! Each proto oneof (`Policy`, `Rate`) is a set of optional sibling fields; the validator enforces
//! at most one of each and `sanitize` fills the job-type default (Titus §8.1).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Empty, StringMap, is_zero_f64, is_zero_u32, is_zero_u64};

/// Proto `JobDisruptionBudget`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobDisruptionBudget {
    /// Policy: the owner migrates its own tasks within `relocationTimeMs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_managed: Option<SelfManagedPolicy>,
    /// Policy: keep at least this percentage of tasks healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_percentage_limit: Option<AvailabilityPercentageLimitPolicy>,
    /// Policy: allow at most this many unhealthy tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_tasks_limit: Option<UnhealthyTasksLimitPolicy>,
    /// Policy: a task may be evicted at most `limit` times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relocation_limit: Option<RelocationLimitPolicy>,
    /// Rate: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_unlimited: Option<Empty>,
    /// Rate: a percentage of tasks per rolling hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_percentage_per_hour: Option<RatePercentagePerHour>,
    /// Rate: a number of tasks per rolling interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_interval: Option<RatePerInterval>,
    /// Rate: a percentage of tasks per rolling interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_percentage_per_interval: Option<RatePercentagePerInterval>,
    /// Eviction is allowed only inside at least one window; none = always.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub time_windows: Vec<TimeWindow>,
    /// Health providers that define "healthy" for the availability policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_health_providers: Vec<ContainerHealthProvider>,
}

/// Proto `JobDisruptionBudget.SelfManaged`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SelfManagedPolicy {
    /// Time the owner has to migrate a task. 0 is Titus's "legacy" marker that `sanitize`
    /// replaces with the job-type default.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub relocation_time_ms: u64,
}

/// Proto `JobDisruptionBudget.AvailabilityPercentageLimit`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilityPercentageLimitPolicy {
    /// 0..100.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub percentage_of_healthy_containers: f64,
}

/// Proto `JobDisruptionBudget.UnhealthyTasksLimit`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnhealthyTasksLimitPolicy {
    /// At least 1.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub limit_of_unhealthy_containers: u32,
}

/// Proto `JobDisruptionBudget.RelocationLimit`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct RelocationLimitPolicy {
    /// At least 1.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub limit: u32,
}

/// Proto `JobDisruptionBudget.RatePercentagePerHour`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RatePercentagePerHour {
    /// 0..100.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub max_percentage_of_containers_relocated_in_hour: f64,
}

/// Proto `JobDisruptionBudget.RatePerInterval`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RatePerInterval {
    /// 1..3600000.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub interval_ms: u64,
    /// At least 1.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub limit_per_interval: u32,
}

/// Proto `JobDisruptionBudget.RatePercentagePerInterval`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RatePercentagePerInterval {
    /// 1..3600000.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub interval_ms: u64,
    /// 0..100.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub percentage_limit_per_interval: f64,
}

/// Day of week (proto `Day`).
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    JsonSchema,
)]
pub enum Day {
    /// Monday.
    #[default]
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

/// Proto `TimeWindow`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimeWindow {
    /// Days; none = every day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<Day>,
    /// Hours; none = all day. Hours match `startHour <= hour <= endHour` (end inclusive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hourly_time_windows: Vec<HourlyTimeWindow>,
    /// Zone id (`America/Los_Angeles`, or a short id such as `PST`); empty means UTC.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub time_zone: String,
}

/// Proto `TimeWindow.HourlyTimeWindow`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HourlyTimeWindow {
    /// 0..24, less than `endHour`.
    #[serde(default)]
    pub start_hour: u32,
    /// 0..24.
    #[serde(default)]
    pub end_hour: u32,
}

/// Proto `ContainerHealthProvider`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ContainerHealthProvider {
    /// A configured provider name (default list: `alwaysHealthy`).
    #[serde(default)]
    pub name: String,
    /// Provider settings.
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub attributes: StringMap,
}

/// A resolved disruption budget policy, for controllers to match on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DisruptionBudgetPolicy {
    /// `selfManaged`.
    SelfManaged {
        /// Relocation time.
        relocation_time_ms: u64,
    },
    /// `availabilityPercentageLimit`.
    AvailabilityPercentageLimit {
        /// Minimum healthy percentage.
        percentage_of_healthy_containers: f64,
    },
    /// `unhealthyTasksLimit`.
    UnhealthyTasksLimit {
        /// Maximum unhealthy tasks.
        limit_of_unhealthy_containers: u32,
    },
    /// `relocationLimit`.
    RelocationLimit {
        /// Maximum evictions per task.
        limit: u32,
    },
}

impl DisruptionBudgetPolicy {
    /// The Titus core class name, used in pod annotation
    /// `v3.job.titus.netflix.com/disruption-budget-policy`.
    pub fn class_name(&self) -> &'static str {
        match self {
            DisruptionBudgetPolicy::SelfManaged { .. } => "SelfManagedDisruptionBudgetPolicy",
            DisruptionBudgetPolicy::AvailabilityPercentageLimit { .. } => {
                "AvailabilityPercentageLimitDisruptionBudgetPolicy"
            }
            DisruptionBudgetPolicy::UnhealthyTasksLimit { .. } => {
                "UnhealthyTasksLimitDisruptionBudgetPolicy"
            }
            DisruptionBudgetPolicy::RelocationLimit { .. } => {
                "RelocationLimitDisruptionBudgetPolicy"
            }
        }
    }
}

/// A resolved disruption budget rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DisruptionBudgetRate {
    /// `rateUnlimited`.
    Unlimited,
    /// `ratePercentagePerHour`.
    PercentagePerHour {
        /// Percentage of tasks per rolling hour.
        max_percentage_of_containers_relocated_in_hour: f64,
    },
    /// `ratePerInterval`.
    PerInterval {
        /// Interval.
        interval_ms: u64,
        /// Tasks per interval.
        limit_per_interval: u32,
    },
    /// `ratePercentagePerInterval`.
    PercentagePerInterval {
        /// Interval.
        interval_ms: u64,
        /// Percentage of tasks per interval.
        percentage_limit_per_interval: f64,
    },
}

impl JobDisruptionBudget {
    /// `selfManaged{relocationTimeMs}` with `rateUnlimited`: the shape of Titus's defaults.
    pub fn self_managed_unlimited(relocation_time_ms: u64) -> Self {
        JobDisruptionBudget {
            self_managed: Some(SelfManagedPolicy { relocation_time_ms }),
            rate_unlimited: Some(Empty {}),
            ..JobDisruptionBudget::default()
        }
    }

    /// Number of policy members set (valid budgets have one).
    pub fn policies_set(&self) -> usize {
        usize::from(self.self_managed.is_some())
            + usize::from(self.availability_percentage_limit.is_some())
            + usize::from(self.unhealthy_tasks_limit.is_some())
            + usize::from(self.relocation_limit.is_some())
    }

    /// Number of rate members set (valid budgets have one).
    pub fn rates_set(&self) -> usize {
        usize::from(self.rate_unlimited.is_some())
            + usize::from(self.rate_percentage_per_hour.is_some())
            + usize::from(self.rate_per_interval.is_some())
            + usize::from(self.rate_percentage_per_interval.is_some())
    }

    /// The policy, first in proto field order; `None` when no policy is set.
    pub fn policy(&self) -> Option<DisruptionBudgetPolicy> {
        if let Some(p) = self.self_managed {
            return Some(DisruptionBudgetPolicy::SelfManaged {
                relocation_time_ms: p.relocation_time_ms,
            });
        }
        if let Some(p) = self.availability_percentage_limit {
            return Some(DisruptionBudgetPolicy::AvailabilityPercentageLimit {
                percentage_of_healthy_containers: p.percentage_of_healthy_containers,
            });
        }
        if let Some(p) = self.unhealthy_tasks_limit {
            return Some(DisruptionBudgetPolicy::UnhealthyTasksLimit {
                limit_of_unhealthy_containers: p.limit_of_unhealthy_containers,
            });
        }
        self.relocation_limit
            .map(|p| DisruptionBudgetPolicy::RelocationLimit { limit: p.limit })
    }

    /// The rate, first in proto field order; `None` when no rate is set.
    pub fn rate(&self) -> Option<DisruptionBudgetRate> {
        if self.rate_unlimited.is_some() {
            return Some(DisruptionBudgetRate::Unlimited);
        }
        if let Some(r) = self.rate_percentage_per_hour {
            return Some(DisruptionBudgetRate::PercentagePerHour {
                max_percentage_of_containers_relocated_in_hour: r
                    .max_percentage_of_containers_relocated_in_hour,
            });
        }
        if let Some(r) = self.rate_per_interval {
            return Some(DisruptionBudgetRate::PerInterval {
                interval_ms: r.interval_ms,
                limit_per_interval: r.limit_per_interval,
            });
        }
        self.rate_percentage_per_interval
            .map(|r| DisruptionBudgetRate::PercentagePerInterval {
                interval_ms: r.interval_ms,
                percentage_limit_per_interval: r.percentage_limit_per_interval,
            })
    }

    /// Titus's "legacy" marker: no policy at all, or `selfManaged` with `relocationTimeMs = 0`.
    /// `sanitize` replaces such a budget with the job-type default.
    pub fn is_legacy(&self) -> bool {
        match self.policy() {
            None => true,
            Some(DisruptionBudgetPolicy::SelfManaged { relocation_time_ms }) => {
                relocation_time_ms == 0
            }
            Some(_) => false,
        }
    }
}
