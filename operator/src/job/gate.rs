//! Spacing of job passes triggered by task changes.
//!
//! Every change of a task wakes its job, and a job pass looks at all of the job's tasks: a job of
//! 1,000 tasks moving through their states would be planned thousands of times. The gate lets
//! the first change of a quiet job through at once and folds later ones into one trigger at the
//! end of the interval. Level-triggered, so nothing is lost: the delayed pass reads the latest
//! cache, whichever task woke it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Per-job trigger state.
#[derive(Debug)]
struct Gate<T> {
    last_sent: Instant,
    pending: Option<T>,
}

/// Spaces triggers per job at least `interval` apart. `T` is what wakes the job (a task).
#[derive(Debug)]
pub struct JobTriggerGate<T> {
    interval: Duration,
    gates: HashMap<String, Gate<T>>,
}

impl<T> JobTriggerGate<T> {
    /// A gate with this interval; `Duration::ZERO` lets everything through.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            gates: HashMap::new(),
        }
    }

    /// A change of job `job`: returned when it may go now, else held (replacing a held one).
    pub fn offer(&mut self, job: &str, trigger: T, now: Instant) -> Option<T> {
        if self.interval.is_zero() {
            return Some(trigger);
        }
        match self.gates.get_mut(job) {
            Some(gate) if gate.pending.is_some() || now < gate.last_sent + self.interval => {
                gate.pending = Some(trigger);
                None
            }
            Some(gate) => {
                gate.last_sent = now;
                Some(trigger)
            }
            None => {
                self.gates.insert(
                    job.to_owned(),
                    Gate {
                        last_sent: now,
                        pending: None,
                    },
                );
                Some(trigger)
            }
        }
    }

    /// Held triggers whose interval has passed; forgets jobs quiet for a while.
    pub fn due(&mut self, now: Instant) -> Vec<T> {
        let interval = self.interval;
        let mut out = Vec::new();
        self.gates.retain(|_, gate| {
            if gate.last_sent + interval <= now
                && let Some(trigger) = gate.pending.take()
            {
                gate.last_sent = now;
                out.push(trigger);
            }
            gate.pending.is_some() || now < gate.last_sent + interval * 20
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_first_change_goes_at_once_and_later_ones_fold_into_one() {
        let t0 = Instant::now();
        let mut gate = JobTriggerGate::new(200 * MS);
        // (job, trigger, offset ms, let through now)
        let cases = [
            ("a", 1, 0, true),
            ("a", 2, 10, false),
            ("a", 3, 20, false),
            ("b", 4, 30, true),
            ("a", 5, 250, false), // still held: the held one goes first, at a tick
        ];
        for (job, trigger, at, through) in cases {
            let got = gate.offer(job, trigger, t0 + at * MS);
            assert_eq!(got.is_some(), through, "{job} {trigger}");
        }
        assert_eq!(
            gate.gates.values().filter(|g| g.pending.is_some()).count(),
            1
        );
        assert_eq!(
            gate.due(t0 + 260 * MS),
            vec![5],
            "the latest held trigger of a"
        );
        assert_eq!(
            gate.gates.values().filter(|g| g.pending.is_some()).count(),
            0
        );
        assert!(gate.due(t0 + 300 * MS).is_empty());
        assert_eq!(gate.offer("a", 6, t0 + 300 * MS), None, "a was sent at 260");
        assert_eq!(gate.due(t0 + 400 * MS), Vec::<i32>::new(), "not before 460");
        assert_eq!(gate.due(t0 + 460 * MS), vec![6]);
    }

    #[test]
    fn a_zero_interval_lets_everything_through() {
        let t0 = Instant::now();
        let mut gate = JobTriggerGate::new(Duration::ZERO);
        assert!((0..5).all(|i| gate.offer("a", i, t0).is_some()));
        assert!(gate.due(t0).is_empty());
    }

    #[test]
    fn quiet_jobs_are_forgotten() {
        let t0 = Instant::now();
        let mut gate = JobTriggerGate::new(10 * MS);
        gate.offer("a", 1, t0);
        assert!(gate.due(t0 + 1000 * MS).is_empty());
        assert!(gate.gates.is_empty());
        assert_eq!(gate.offer("a", 2, t0 + 1001 * MS), Some(2));
    }
}
