//! One case per Titus rule of the job type (batch size, runtime limit, service capacity), the
//! retry and migration policies, and the disruption budget.

// Test helpers may unwrap: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{Case, batch, budget, case, service};
use titus_crds::RetryPolicy;
use titus_crds::job::disruption::{
    AvailabilityPercentageLimitPolicy, ContainerHealthProvider, HourlyTimeWindow, RatePerInterval,
    RatePercentagePerHour, RatePercentagePerInterval, RelocationLimitPolicy, TimeWindow,
    UnhealthyTasksLimitPolicy,
};
use titus_crds::job::ext::{ExponentialBackOffRetry, MigrationPolicy};

fn job_type_cases() -> Vec<Case> {
    vec![
        case(
            "batch size zero",
            batch(),
            |s| s.batch.as_mut().unwrap().size = 0,
            "spec.batch.size",
            "extensions.size",
            "Batch job must have at least one task",
        ),
        case(
            "batch too big",
            batch(),
            |s| s.batch.as_mut().unwrap().size = 1001,
            "spec.batch.size",
            "extensions.size",
            "Batch job too big 1001 > 1000",
        ),
        case(
            "runtime limit zero",
            batch(),
            |s| s.batch.as_mut().unwrap().runtime_limit_sec = 0,
            "spec.batch.runtimeLimitSec",
            "extensions.runtimeLimitMs",
            "Runtime limit too low (must be at least 5sec, but is 0[ms])",
        ),
        case(
            "runtime limit below five seconds",
            batch(),
            |s| s.batch.as_mut().unwrap().runtime_limit_sec = 4,
            "spec.batch.runtimeLimitSec",
            "extensions.runtimeLimitMs",
            "Runtime limit too low (must be at least 5sec, but is 4000[ms])",
        ),
        case(
            "runtime limit above ten days",
            batch(),
            |s| s.batch.as_mut().unwrap().runtime_limit_sec = 864_001,
            "spec.batch.runtimeLimitSec",
            "extensions.runtimeLimitMs",
            "Runtime limit too high 864001000 > 864000000",
        ),
        case(
            "batch retry policy missing",
            batch(),
            |s| s.batch.as_mut().unwrap().retry_policy = None,
            "spec.batch.retryPolicy",
            "extensions.retryPolicy",
            "Unknown retry policy POLICY_NOT_SET",
        ),
        case(
            "service retry policy empty",
            service(),
            |s| s.service.as_mut().unwrap().retry_policy = Some(RetryPolicy::default()),
            "spec.service.retryPolicy",
            "extensions.retryPolicy",
            "Unknown retry policy POLICY_NOT_SET",
        ),
        case(
            "two retry policies",
            batch(),
            |s| {
                s.batch.as_mut().unwrap().retry_policy = Some(RetryPolicy {
                    delayed: RetryPolicy::delayed(1, 1).delayed,
                    ..RetryPolicy::immediate(1)
                })
            },
            "spec.batch.retryPolicy",
            "extensions.retryPolicy",
            "only one of immediate, delayed or exponentialBackOff may be set",
        ),
        case(
            "exponential max below initial",
            batch(),
            |s| {
                s.batch.as_mut().unwrap().retry_policy = Some(RetryPolicy {
                    exponential_back_off: Some(ExponentialBackOffRetry {
                        initial_delay_ms: 5000,
                        max_delay_interval_ms: 1000,
                        retries: 1,
                    }),
                    ..Default::default()
                })
            },
            "spec.batch.retryPolicy.exponentialBackOff.maxDelayIntervalMs",
            "extensions.retryPolicy.maxDelayMs",
            "Max delay (1000) must be >= initial delay (5000)",
        ),
        case(
            "capacity min above desired",
            service(),
            |s| s.service.as_mut().unwrap().capacity.min = 3,
            "spec.service.capacity",
            "extensions.capacity",
            "'min'(3) must be <= 'desired'(2)",
        ),
        case(
            "capacity desired above max",
            service(),
            |s| s.service.as_mut().unwrap().capacity.desired = 11,
            "spec.service.capacity",
            "extensions.capacity",
            "'desired'(11) must be <= 'max'(10)",
        ),
        case(
            "capacity min above max",
            service(),
            |s| {
                let c = &mut s.service.as_mut().unwrap().capacity;
                c.min = 12;
                c.desired = 12;
            },
            "spec.service.capacity",
            "extensions.capacity",
            "'min'(12) must be <= 'max'(10)",
        ),
        case(
            "service too big",
            service(),
            |s| s.service.as_mut().unwrap().capacity.max = 10_001,
            "spec.service.capacity.max",
            "extensions.capacity",
            "Service job too big 10001 > 10000",
        ),
        case(
            "service above the application limit",
            service(),
            |s| s.service.as_mut().unwrap().capacity.max = 2_501,
            "spec.service.capacity.max",
            "jobDescriptor.extensions.capacity.max",
            "Service job size is limited to 2500, but is 2501",
        ),
        case(
            "two migration policies",
            service(),
            |s| {
                s.service.as_mut().unwrap().migration_policy = Some(MigrationPolicy {
                    system_default: MigrationPolicy::system_default().system_default,
                    ..MigrationPolicy::self_managed()
                })
            },
            "spec.service.migrationPolicy",
            "extensions.migrationPolicy",
            "only one of systemDefault or selfManaged may be set",
        ),
        case(
            "scale-down task id not a UUID",
            service(),
            |s| s.service.as_mut().unwrap().scale_down_task_ids = vec!["t-1".into()],
            "spec.service.scaleDownTaskIds[0]",
            "taskId",
            "Task id must be UUID string, but is: t-1",
        ),
        case(
            "two budget policies",
            batch(),
            budget(|b| {
                b.relocation_limit = Some(RelocationLimitPolicy { limit: 1 });
                b.unhealthy_tasks_limit = Some(UnhealthyTasksLimitPolicy {
                    limit_of_unhealthy_containers: 1,
                });
            }),
            "spec.disruptionBudget",
            "disruptionBudget.disruptionBudgetPolicy",
            "only one disruption budget policy may be set",
        ),
        case(
            "two budget rates",
            batch(),
            budget(|b| {
                b.relocation_limit = Some(RelocationLimitPolicy { limit: 1 });
                b.rate_per_interval = Some(RatePerInterval {
                    interval_ms: 1,
                    limit_per_interval: 1,
                });
            }),
            "spec.disruptionBudget",
            "disruptionBudget.disruptionBudgetRate",
            "only one disruption budget rate may be set",
        ),
        case(
            "availability above 100",
            batch(),
            budget(|b| {
                b.availability_percentage_limit = Some(AvailabilityPercentageLimitPolicy {
                    percentage_of_healthy_containers: 101.0,
                })
            }),
            "spec.disruptionBudget.availabilityPercentageLimit.percentageOfHealthyContainers",
            "disruptionBudget.disruptionBudgetPolicy.percentageOfHealthyContainers",
            "must be less than or equal to 100 (is 101.0)",
        ),
        case(
            "unhealthy limit zero",
            batch(),
            budget(|b| {
                b.unhealthy_tasks_limit = Some(UnhealthyTasksLimitPolicy {
                    limit_of_unhealthy_containers: 0,
                })
            }),
            "spec.disruptionBudget.unhealthyTasksLimit.limitOfUnhealthyContainers",
            "disruptionBudget.disruptionBudgetPolicy.limitOfUnhealthyContainers",
            "must be greater than or equal to 1",
        ),
        case(
            "relocation limit zero",
            batch(),
            budget(|b| b.relocation_limit = Some(RelocationLimitPolicy { limit: 0 })),
            "spec.disruptionBudget.relocationLimit.limit",
            "disruptionBudget.disruptionBudgetPolicy.limit",
            "must be greater than or equal to 1",
        ),
        case(
            "hourly rate negative",
            batch(),
            budget(|b| {
                b.relocation_limit = Some(RelocationLimitPolicy { limit: 1 });
                b.rate_unlimited = None;
                b.rate_percentage_per_hour = Some(RatePercentagePerHour {
                    max_percentage_of_containers_relocated_in_hour: -1.0,
                });
            }),
            "spec.disruptionBudget.ratePercentagePerHour.maxPercentageOfContainersRelocatedInHour",
            "disruptionBudget.disruptionBudgetRate.maxPercentageOfContainersRelocatedInHour",
            "must be greater than or equal to 0 (is -1.0)",
        ),
        case(
            "rate interval zero",
            batch(),
            budget(|b| {
                b.relocation_limit = Some(RelocationLimitPolicy { limit: 1 });
                b.rate_unlimited = None;
                b.rate_per_interval = Some(RatePerInterval {
                    interval_ms: 0,
                    limit_per_interval: 1,
                });
            }),
            "spec.disruptionBudget.ratePerInterval.intervalMs",
            "disruptionBudget.disruptionBudgetRate.intervalMs",
            "must be greater than or equal to 1",
        ),
        case(
            "rate interval above an hour",
            batch(),
            budget(|b| {
                b.relocation_limit = Some(RelocationLimitPolicy { limit: 1 });
                b.rate_unlimited = None;
                b.rate_percentage_per_interval = Some(RatePercentagePerInterval {
                    interval_ms: 3_600_001,
                    percentage_limit_per_interval: 5.0,
                });
            }),
            "spec.disruptionBudget.ratePercentagePerInterval.intervalMs",
            "disruptionBudget.disruptionBudgetRate.intervalMs",
            "must be less than or equal to 3600000",
        ),
        case(
            "rate limit per interval zero",
            batch(),
            budget(|b| {
                b.relocation_limit = Some(RelocationLimitPolicy { limit: 1 });
                b.rate_unlimited = None;
                b.rate_per_interval = Some(RatePerInterval {
                    interval_ms: 1000,
                    limit_per_interval: 0,
                });
            }),
            "spec.disruptionBudget.ratePerInterval.limitPerInterval",
            "disruptionBudget.disruptionBudgetRate.limitPerInterval",
            "must be greater than or equal to 1",
        ),
        case(
            "hourly window start not before end",
            batch(),
            budget(|b| {
                b.relocation_limit = Some(RelocationLimitPolicy { limit: 1 });
                b.time_windows = vec![TimeWindow {
                    hourly_time_windows: vec![HourlyTimeWindow {
                        start_hour: 10,
                        end_hour: 10,
                    }],
                    ..Default::default()
                }];
            }),
            "spec.disruptionBudget.timeWindows[0].hourlyTimeWindows[0]",
            "disruptionBudget.timeWindows[0].hourlyTimeWindows[0]",
            "'startHour'(10) must be < 'endHour'(10)",
        ),
        case(
            "hourly window past 24",
            batch(),
            budget(|b| {
                b.relocation_limit = Some(RelocationLimitPolicy { limit: 1 });
                b.time_windows = vec![TimeWindow {
                    hourly_time_windows: vec![HourlyTimeWindow {
                        start_hour: 1,
                        end_hour: 25,
                    }],
                    ..Default::default()
                }];
            }),
            "spec.disruptionBudget.timeWindows[0].hourlyTimeWindows[0].endHour",
            "disruptionBudget.timeWindows[0].hourlyTimeWindows[0].endHour",
            "must be less than or equal to 24",
        ),
        case(
            "unknown health provider",
            batch(),
            budget(|b| {
                b.relocation_limit = Some(RelocationLimitPolicy { limit: 1 });
                b.container_health_providers = vec![ContainerHealthProvider {
                    name: "eureka".into(),
                    attributes: Default::default(),
                }];
            }),
            "spec.disruptionBudget.containerHealthProviders[0].name",
            "disruptionBudget.containerHealthProviders[0].name",
            "Unknown container health service: eureka",
        ),
    ]
}

#[test]
fn each_job_type_retry_and_budget_rule_reports_its_field_paths_and_titus_message() {
    support::assert_cases(job_type_cases());
}
