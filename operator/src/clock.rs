//! Time for the act layer. Decision code never reads the clock: it is handed `now` (milliseconds
//! since the Unix epoch, Titus's unit) by the reconciler, which reads it from a [`Clock`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A source of the current time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in ms since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        ms_of(jiff::Timestamp::now())
    }
}

/// A clock tests move by hand.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock at `now_ms`.
    pub fn at(now_ms: u64) -> Self {
        Self(Arc::new(AtomicU64::new(now_ms)))
    }

    /// Moves the clock forward.
    pub fn advance_ms(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Milliseconds since the Unix epoch of a timestamp (0 before the epoch).
pub fn ms_of(t: jiff::Timestamp) -> u64 {
    u64::try_from(t.as_millisecond()).unwrap_or(0)
}

/// Milliseconds since the Unix epoch of a Kubernetes `Time`.
pub fn ms_of_time(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> u64 {
    ms_of(t.0)
}

/// A duration in ms as Titus shows it in `task.retryDelay` (`1s`, `2m30s`, `250ms`).
pub fn human_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_render_like_titus_retry_delays() {
        let cases = [
            (0, "0s"),
            (250, "250ms"),
            (1_000, "1s"),
            (150_000, "2m30s"),
            (3_600_000, "1h"),
        ];
        for (ms, text) in cases {
            assert_eq!(human_ms(ms), text, "{ms}");
        }
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::at(10);
        assert_eq!(clock.now_ms(), 10);
        clock.advance_ms(5);
        assert_eq!(clock.now_ms(), 15);
    }
}
