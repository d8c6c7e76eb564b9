//! Titus retry policies (titus-semantics §2.9, §5): whether a finished attempt gets a replacement,
//! after which delay, and the replacement's resubmit bookkeeping (§3). Pure.
//!
//! * Delay: `immediate` none, `delayed` `delayMs` (its `initialDelayMs` is ignored, as by Titus's
//!   converter), `exponentialBackOff` `initialDelayMs` doubling per consecutive failure up to
//!   `maxDelayIntervalMs`. The effective delay is at least 1 s; it is 0, and the back-off starts
//!   over, when the failed attempt had been `Started` for 5 min. The chain's back-off value
//!   travels in the replacement's `spec.backOffDelayMs`, so it survives controller restarts.
//! * Counting (batch only): a system error is always retried; otherwise the user failures before
//!   the attempt (`resubmitNumber - systemResubmitNumber - evictionResubmitNumber`) must be below
//!   `retries`. Service replacements are unlimited.

use titus_crds::job::ext::BatchJobSpec;
use titus_crds::task::TitusTaskSpec;
use titus_crds::{Retry, TaskReasonCode, TaskState, TitusTask};

/// Titus's minimum retry interval (1 s).
pub const MIN_RETRY_INTERVAL_MS: u64 = 1_000;
/// An attempt `Started` this long resets the back-off (`taskRetryerResetTimeMs`, 5 min).
pub const RETRYER_RESET_MS: u64 = 300_000;

/// How a finished attempt ended, read from its status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ending {
    /// Reason code of the `Finished` status.
    pub reason: TaskReasonCode,
    /// Reason code of the attempt's first `KillInitiated` status, when it was killed.
    pub kill_reason: Option<TaskReasonCode>,
    /// When it reached `Finished`, ms since the Unix epoch.
    pub finished_at: u64,
    /// How long it had been `Started`, when it started.
    pub started_for_ms: Option<u64>,
}

impl Ending {
    /// `true` when the attempt was removed by a capacity decrease or a kill-with-shrink.
    pub fn scaled_down(&self) -> bool {
        self.kill_reason == Some(TaskReasonCode::ScaledDown)
    }
}

/// The ending of `task`, when it is `Finished`.
pub fn ending(task: &TitusTask) -> Option<Ending> {
    let status = task.status.as_ref()?;
    if status.state != TaskState::Finished {
        return None;
    }
    let finished_at = status.finished_at.unwrap_or(status.timestamp);
    let kill_reason = status
        .status_history
        .iter()
        .find(|e| e.state == TaskState::KillInitiated)
        .map(|e| e.reason_code.clone())
        .or_else(|| {
            task.spec
                .kill_request
                .as_ref()
                .map(|k| k.reason.reason_code())
        });
    Some(Ending {
        reason: status.reason_code.clone(),
        kill_reason,
        finished_at,
        started_for_ms: status
            .started_at
            .map(|started| finished_at.saturating_sub(started)),
    })
}

/// The delay before a replacement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryDelay {
    /// Effective delay: at least [`MIN_RETRY_INTERVAL_MS`], or 0 after a reset.
    pub delay_ms: u64,
    /// The policy value the replacement carries in `spec.backOffDelayMs`.
    pub back_off_ms: u64,
}

/// The delay before the replacement of an attempt that carried `previous_back_off_ms` and had
/// been `Started` for `started_for_ms`. `None` policy (an invalid job) behaves as `immediate`.
pub fn retry_delay(
    policy: Option<Retry>,
    previous_back_off_ms: u64,
    started_for_ms: Option<u64>,
) -> RetryDelay {
    if started_for_ms.is_some_and(|ms| ms >= RETRYER_RESET_MS) {
        return RetryDelay {
            delay_ms: 0,
            back_off_ms: 0,
        };
    }
    let policy_ms = match policy {
        None | Some(Retry::Immediate { .. }) => 0,
        Some(Retry::Delayed { delay_ms, .. }) => delay_ms,
        Some(Retry::ExponentialBackOff {
            initial_delay_ms,
            max_delay_interval_ms,
            ..
        }) => {
            let cap = max_delay_interval_ms.max(initial_delay_ms);
            if previous_back_off_ms == 0 {
                initial_delay_ms
            } else {
                previous_back_off_ms.saturating_mul(2).min(cap)
            }
        }
    };
    RetryDelay {
        delay_ms: policy_ms.max(MIN_RETRY_INTERVAL_MS),
        back_off_ms: policy_ms,
    }
}

/// Why a finished batch attempt is or is not retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchVerdict {
    /// Create a replacement (after the retry delay).
    Retry,
    /// Finished `normal`: the index is done.
    Succeeded,
    /// The user failures of this index used up `retries`.
    RetriesExhausted,
    /// Killed for exceeding the runtime limit and `retryOnRuntimeLimit` is off.
    RuntimeLimitNotRetried,
    /// The job is no longer `Accepted`.
    JobTerminating,
}

/// Titus's batch retry rule for a finished attempt (§5).
pub fn batch_verdict(
    job_accepted: bool,
    batch: &BatchJobSpec,
    attempt: &TitusTaskSpec,
    ending: &Ending,
) -> BatchVerdict {
    if ending.reason == TaskReasonCode::Normal {
        return BatchVerdict::Succeeded;
    }
    if !job_accepted {
        return BatchVerdict::JobTerminating;
    }
    if ending.kill_reason == Some(TaskReasonCode::RuntimeLimitExceeded)
        && !batch.retry_on_runtime_limit
    {
        return BatchVerdict::RuntimeLimitNotRetried;
    }
    if ending.reason.is_system_error() {
        return BatchVerdict::Retry;
    }
    let retries = batch
        .retry_policy
        .as_ref()
        .and_then(|p| p.resolved())
        .map_or(0, |r| r.retries());
    if user_failures_before(attempt) < retries {
        BatchVerdict::Retry
    } else {
        BatchVerdict::RetriesExhausted
    }
}

/// User failures of the chain before this attempt (earlier system errors and evictions are not
/// charged).
pub fn user_failures_before(attempt: &TitusTaskSpec) -> u32 {
    attempt
        .resubmit_number
        .saturating_sub(attempt.system_resubmit_number)
        .saturating_sub(attempt.eviction_resubmit_number)
}

/// Resubmit counters of the replacement of `attempt`, which ended as `ending`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters {
    /// `resubmitNumber`.
    pub resubmit_number: u32,
    /// `systemResubmitNumber`.
    pub system_resubmit_number: u32,
    /// `evictionResubmitNumber`.
    pub eviction_resubmit_number: u32,
}

/// The replacement's counters: +1 resubmit; +1 system when the attempt ended with a system
/// error; +1 eviction when it was evicted.
pub fn next_counters(attempt: &TitusTaskSpec, ending: &Ending) -> Counters {
    Counters {
        resubmit_number: attempt.resubmit_number.saturating_add(1),
        system_resubmit_number: attempt
            .system_resubmit_number
            .saturating_add(u32::from(ending.reason.is_system_error())),
        eviction_resubmit_number: attempt.eviction_resubmit_number.saturating_add(u32::from(
            ending.kill_reason == Some(TaskReasonCode::Evicted),
        )),
    }
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
