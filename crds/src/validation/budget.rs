//! Disruption budget rules (Titus §8.1): one policy and one rate at most, percentages 0..100,
//! limits at least 1, intervals 1..3 600 000 ms, hourly windows inside 0..24 with start < end, and
//! known container health providers. Messages are Bean Validation's defaults, as Titus used.

use super::{Collector, ValidationConfig, java_double};
use crate::job::disruption::JobDisruptionBudget;

const F: &str = "spec.disruptionBudget";
const POLICY: &str = "disruptionBudget.disruptionBudgetPolicy";
const RATE: &str = "disruptionBudget.disruptionBudgetRate";
const MAX_INTERVAL_MS: u64 = 3_600_000;

/// Validates a disruption budget; used at creation and when an update changes the budget.
pub(crate) fn check_budget(
    budget: &JobDisruptionBudget,
    cfg: &ValidationConfig,
    c: &mut Collector,
) {
    if budget.policies_set() > 1 {
        c.hard(F, POLICY, "only one disruption budget policy may be set");
    }
    if budget.rates_set() > 1 {
        c.hard(F, RATE, "only one disruption budget rate may be set");
    }
    if let Some(p) = budget.availability_percentage_limit {
        percentage(
            p.percentage_of_healthy_containers,
            "availabilityPercentageLimit.percentageOfHealthyContainers",
            &format!("{POLICY}.percentageOfHealthyContainers"),
            c,
        );
    }
    if let Some(p) = budget.unhealthy_tasks_limit {
        at_least_one(
            u64::from(p.limit_of_unhealthy_containers),
            "unhealthyTasksLimit.limitOfUnhealthyContainers",
            &format!("{POLICY}.limitOfUnhealthyContainers"),
            c,
        );
    }
    if let Some(p) = budget.relocation_limit {
        at_least_one(
            u64::from(p.limit),
            "relocationLimit.limit",
            &format!("{POLICY}.limit"),
            c,
        );
    }
    if let Some(r) = budget.rate_percentage_per_hour {
        percentage(
            r.max_percentage_of_containers_relocated_in_hour,
            "ratePercentagePerHour.maxPercentageOfContainersRelocatedInHour",
            &format!("{RATE}.maxPercentageOfContainersRelocatedInHour"),
            c,
        );
    }
    if let Some(r) = budget.rate_per_interval {
        interval(r.interval_ms, "ratePerInterval.intervalMs", c);
        at_least_one(
            u64::from(r.limit_per_interval),
            "ratePerInterval.limitPerInterval",
            &format!("{RATE}.limitPerInterval"),
            c,
        );
    }
    if let Some(r) = budget.rate_percentage_per_interval {
        interval(r.interval_ms, "ratePercentagePerInterval.intervalMs", c);
        percentage(
            r.percentage_limit_per_interval,
            "ratePercentagePerInterval.percentageLimitPerInterval",
            &format!("{RATE}.percentageLimitPerInterval"),
            c,
        );
    }
    check_time_windows(budget, c);
    for (i, provider) in budget.container_health_providers.iter().enumerate() {
        let f = format!("{F}.containerHealthProviders[{i}].name");
        let t = format!("disruptionBudget.containerHealthProviders[{i}].name");
        if provider.name.is_empty() {
            c.hard(f, t, "size must be between 1 and 2147483647");
        } else if !cfg.container_health_providers.contains(&provider.name) {
            c.hard(
                f,
                t,
                format!("Unknown container health service: {}", provider.name),
            );
        }
    }
}

fn check_time_windows(budget: &JobDisruptionBudget, c: &mut Collector) {
    for (i, window) in budget.time_windows.iter().enumerate() {
        for (j, hours) in window.hourly_time_windows.iter().enumerate() {
            let f = format!("{F}.timeWindows[{i}].hourlyTimeWindows[{j}]");
            let t = format!("disruptionBudget.timeWindows[{i}].hourlyTimeWindows[{j}]");
            for (name, value) in [("startHour", hours.start_hour), ("endHour", hours.end_hour)] {
                if value > 24 {
                    c.hard(
                        format!("{f}.{name}"),
                        format!("{t}.{name}"),
                        "must be less than or equal to 24",
                    );
                }
            }
            if hours.start_hour >= hours.end_hour {
                c.hard(
                    f,
                    t,
                    format!(
                        "'startHour'({}) must be < 'endHour'({})",
                        hours.start_hour, hours.end_hour
                    ),
                );
            }
        }
    }
}

fn percentage(value: f64, field: &str, titus: &str, c: &mut Collector) {
    let f = format!("{F}.{field}");
    if value.is_nan() || value < 0.0 {
        c.hard(
            f,
            titus,
            format!(
                "must be greater than or equal to 0 (is {})",
                java_double(value)
            ),
        );
    } else if value > 100.0 {
        c.hard(
            f,
            titus,
            format!(
                "must be less than or equal to 100 (is {})",
                java_double(value)
            ),
        );
    }
}

fn at_least_one(value: u64, field: &str, titus: &str, c: &mut Collector) {
    if value < 1 {
        c.hard(
            format!("{F}.{field}"),
            titus,
            "must be greater than or equal to 1",
        );
    }
}

fn interval(value: u64, field: &str, c: &mut Collector) {
    let titus = format!("{RATE}.intervalMs");
    if value < 1 {
        c.hard(
            format!("{F}.{field}"),
            titus,
            "must be greater than or equal to 1",
        );
    } else if value > MAX_INTERVAL_MS {
        c.hard(
            format!("{F}.{field}"),
            titus,
            "must be less than or equal to 3600000",
        );
    }
}

/// Validates only a budget, e.g. for the gateway's `UpdateJobDisruptionBudget`.
///
/// # Errors
/// The violations, when any.
pub fn validate_budget(
    budget: &JobDisruptionBudget,
    cfg: &ValidationConfig,
) -> Result<(), super::ValidationErrors> {
    let mut c = Collector::default();
    check_budget(budget, cfg, &mut c);
    c.finish().into_result()
}
