//! One case per rule of the retry policies and the batch retry count.

#![allow(clippy::type_complexity)] // case tables are tuples

use super::*;
use titus_crds::RetryPolicy;

fn ending(reason: TaskReasonCode, kill: Option<TaskReasonCode>) -> Ending {
    Ending {
        reason,
        kill_reason: kill,
        finished_at: 10_000,
        started_for_ms: Some(1_000),
    }
}

#[test]
fn retry_delays_follow_each_policy() {
    let exp = RetryPolicy::exponential_back_off(2_000, 10_000, 5).resolved();
    #[rustfmt::skip]
    let cases: Vec<(&str, Option<Retry>, u64, Option<u64>, u64, u64)> = vec![
        // name, policy, previous back-off, started for, delay, carried back-off
        ("immediate is floored to 1 s", RetryPolicy::immediate(3).resolved(), 0, Some(10), 1_000, 0),
        ("delayed uses delayMs", RetryPolicy::delayed(3_000, 3).resolved(), 0, None, 3_000, 3_000),
        ("delayed below 1 s is floored", RetryPolicy::delayed(200, 3).resolved(), 0, None, 1_000, 200),
        ("exponential starts at initialDelayMs", exp, 0, None, 2_000, 2_000),
        ("exponential doubles", exp, 2_000, None, 4_000, 4_000),
        ("exponential doubles again", exp, 4_000, None, 8_000, 8_000),
        ("exponential is capped at the max", exp, 8_000, None, 10_000, 10_000),
        ("exponential stays at the max", exp, 10_000, None, 10_000, 10_000),
        ("5 min Started resets to no delay", exp, 8_000, Some(300_000), 0, 0),
        ("just under 5 min does not reset", exp, 8_000, Some(299_999), 10_000, 10_000),
        ("no policy behaves as immediate", None, 0, None, 1_000, 0),
    ];
    for (name, policy, previous, started_for, delay, back_off) in cases {
        let got = retry_delay(policy, previous, started_for);
        assert_eq!(
            got,
            RetryDelay {
                delay_ms: delay,
                back_off_ms: back_off
            },
            "{name}"
        );
    }
}

#[test]
fn exponential_back_off_with_a_sub_second_start_doubles_the_policy_value_not_the_floor() {
    let policy = RetryPolicy::exponential_back_off(300, 5_000, 9).resolved();
    let mut previous = 0;
    let mut delays = Vec::new();
    for _ in 0..6 {
        let d = retry_delay(policy, previous, None);
        delays.push(d.delay_ms);
        previous = d.back_off_ms;
    }
    assert_eq!(delays, [1_000, 1_000, 1_200, 2_400, 4_800, 5_000]);
}

fn attempt(resubmit: u32, system: u32, eviction: u32) -> TitusTaskSpec {
    TitusTaskSpec {
        resubmit_number: resubmit,
        system_resubmit_number: system,
        eviction_resubmit_number: eviction,
        ..TitusTaskSpec::default()
    }
}

#[test]
fn batch_attempts_are_retried_as_titus_counts() {
    use BatchVerdict::*;
    use TaskReasonCode as R;
    let batch = |retries: u32, on_limit: bool| BatchJobSpec {
        size: 1,
        runtime_limit_sec: 60,
        retry_policy: Some(RetryPolicy::immediate(retries)),
        retry_on_runtime_limit: on_limit,
    };
    #[rustfmt::skip]
    let cases: Vec<(&str, bool, BatchJobSpec, TitusTaskSpec, Ending, BatchVerdict)> = vec![
        ("normal is never retried", true, batch(3, false), attempt(0, 0, 0), ending(R::Normal, None), Succeeded),
        ("a failure within the budget is retried", true, batch(2, false), attempt(1, 0, 0), ending(R::Failed, None), Retry),
        ("retries=2 allows exactly three attempts", true, batch(2, false), attempt(2, 0, 0), ending(R::Failed, None), RetriesExhausted),
        ("retries=0 means one attempt", true, batch(0, false), attempt(0, 0, 0), ending(R::Failed, None), RetriesExhausted),
        ("a system error is always retried", true, batch(0, false), attempt(5, 0, 0), ending(R::TransientSystemError, None), Retry),
        ("crashed is a system error", true, batch(0, false), attempt(0, 0, 0), ending(R::Crashed, None), Retry),
        ("earlier system errors are not charged", true, batch(1, false), attempt(3, 3, 0), ending(R::Failed, None), Retry),
        ("earlier evictions are not charged", true, batch(1, false), attempt(2, 0, 2), ending(R::Failed, None), Retry),
        ("an evicted attempt itself is checked (retries=0)", true, batch(0, false), attempt(0, 0, 0), ending(R::Killed, Some(R::Evicted)), RetriesExhausted),
        ("a user kill is retried within the budget", true, batch(1, false), attempt(0, 0, 0), ending(R::Killed, Some(R::Killed)), Retry),
        ("runtime limit is not retried by default", true, batch(5, false), attempt(0, 0, 0), ending(R::Killed, Some(R::RuntimeLimitExceeded)), RuntimeLimitNotRetried),
        ("runtime limit is retried with retryOnRuntimeLimit", true, batch(5, true), attempt(0, 0, 0), ending(R::Killed, Some(R::RuntimeLimitExceeded)), Retry),
        ("nothing is retried once the job is killed", false, batch(5, false), attempt(0, 0, 0), ending(R::Failed, None), JobTerminating),
    ];
    for (name, accepted, spec, task, end, verdict) in cases {
        assert_eq!(
            batch_verdict(accepted, &spec, &task, &end),
            verdict,
            "{name}"
        );
    }
}

#[test]
fn replacement_counters_charge_the_right_counter() {
    use TaskReasonCode as R;
    #[rustfmt::skip]
    let cases = [
        ("user failure", ending(R::Failed, None), (3, 1, 1)),
        ("system error", ending(R::LocalSystemError, None), (3, 2, 1)),
        ("stuck in state finishes as a system error", ending(R::TransientSystemError, Some(R::StuckInState)), (3, 2, 1)),
        ("eviction", ending(R::Killed, Some(R::Evicted)), (3, 1, 2)),
    ];
    for (name, end, (resubmit, system, eviction)) in cases {
        let got = next_counters(&attempt(2, 1, 1), &end);
        assert_eq!(
            (
                got.resubmit_number,
                got.system_resubmit_number,
                got.eviction_resubmit_number
            ),
            (resubmit, system, eviction),
            "{name}"
        );
    }
}
