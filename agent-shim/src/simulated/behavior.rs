//! Simulated behaviour of a container at each lifecycle step, parsed from Titus's mock-agent Pod
//! annotations (`github.com.netflix.titus.executor/{prepareTime,runTime,killTime}`, set from job
//! attributes `titusParameter.mockVK.*`). Pure.
//!
//! Value syntax (as in Titus's mock agent): either a Go duration (`10s`, `1m30s`, `250ms`) or
//! commands separated by `;`: `delay=<duration>`, `jitter=<duration>`,
//! `status=StatusFinished|StatusFailed|StatusRunning|StatusUnknown`, `message=<text>`.
//! An invalid value falls back to the default behaviour with the parse error as its message.
//! Jitter is deterministic here: derived from the container id, so runs are reproducible.

use std::time::Duration;

/// How a lifecycle step ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimulatedStatus {
    /// Not given (the run step then finishes successfully).
    Unknown,
    /// Keeps running (run step: never exits by itself).
    Running,
    /// Ends successfully (exit code 0).
    Finished,
    /// Ends in failure (exit code 1).
    Failed,
}

/// One lifecycle step's behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behavior {
    /// Base delay of the step.
    pub delay: Duration,
    /// The delay varies by up to ± this much, per container.
    pub jitter: Duration,
    /// How the step ends.
    pub status: SimulatedStatus,
    /// Message reported with the outcome.
    pub message: String,
}

impl Behavior {
    /// Titus's default prepare step: 1 s.
    pub fn default_prepare() -> Self {
        Self::after(Duration::from_secs(1))
    }

    /// Titus's default run step: 1 h ± 30 min, then finished.
    pub fn default_run() -> Self {
        Self {
            delay: Duration::from_secs(3600),
            jitter: Duration::from_secs(1800),
            status: SimulatedStatus::Finished,
            message: "mockVM container completed".into(),
        }
    }

    /// Titus's default kill step: 1 s.
    pub fn default_kill() -> Self {
        Self::after(Duration::from_secs(1))
    }

    /// A plain delay.
    pub fn after(delay: Duration) -> Self {
        Self {
            delay,
            jitter: Duration::ZERO,
            status: SimulatedStatus::Unknown,
            message: String::new(),
        }
    }

    /// Parses an annotation value.
    ///
    /// # Errors
    /// A description of the first bad part.
    pub fn parse(spec: &str) -> Result<Self, String> {
        if let Ok(delay) = parse_go_duration(spec.trim()) {
            return Ok(Self::after(delay));
        }
        let mut behavior = Self::after(Duration::ZERO);
        for command in spec.split(';') {
            let (key, value) = command
                .split_once('=')
                .ok_or_else(|| format!("<command_name>=<command_value> expected in {command:?}"))?;
            let (key, value) = (key.trim(), value.trim());
            match key {
                "delay" => behavior.delay = parse_go_duration(value)?,
                "jitter" => behavior.jitter = parse_go_duration(value)?,
                "status" => {
                    behavior.status = match value {
                        "StatusUnknown" => SimulatedStatus::Unknown,
                        "StatusRunning" => SimulatedStatus::Running,
                        "StatusFinished" => SimulatedStatus::Finished,
                        "StatusFailed" => SimulatedStatus::Failed,
                        other => return Err(format!("invalid status {other:?}")),
                    }
                }
                "message" => behavior.message = value.to_owned(),
                "" => return Err("command name not provided".into()),
                other => return Err(format!("unrecognized command {other:?}")),
            }
        }
        Ok(behavior)
    }

    /// The annotation's behaviour, or `default` (carrying the parse error as message) when the
    /// value is absent or invalid.
    pub fn from_annotation(value: Option<&str>, default: Self) -> Self {
        match value.filter(|v| !v.trim().is_empty()) {
            None => default,
            Some(value) => Self::parse(value).unwrap_or_else(|error| Self {
                message: error,
                ..default
            }),
        }
    }

    /// The delay for container `id`: `delay ± jitter`, the offset a fixed function of the id.
    pub fn delay_for(&self, id: &str) -> Duration {
        if self.jitter.is_zero() {
            return self.delay;
        }
        // FNV-1a of the id, mapped onto [-jitter, +jitter] in milliseconds.
        let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let span = self.jitter.as_millis().min(u128::from(u64::MAX / 4)) as u64;
        let offset = hash % (2 * span + 1);
        let delay_ms = self.delay.as_millis().min(u128::from(u64::MAX / 4)) as u64;
        Duration::from_millis((delay_ms + offset).saturating_sub(span))
    }
}

/// Parses a Go `time.ParseDuration` string: a sequence of decimal numbers with units
/// `ns`, `us`/`µs`, `ms`, `s`, `m`, `h` (`1h30m`, `1.5s`, `0`). Negative durations are refused.
///
/// # Errors
/// A description when the string is not a duration.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?}");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if number_len == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_like_go() {
        let cases = [
            ("0", Some(0)),
            ("10s", Some(10_000)),
            ("250ms", Some(250)),
            ("1m30s", Some(90_000)),
            ("1.5h", Some(5_400_000)),
            ("2h45m", Some(9_900_000)),
            ("1500us", Some(1)),
            ("", None),
            ("10", None),
            ("s", None),
            ("-1s", None),
            ("1x", None),
        ];
        for (text, millis) in cases {
            let got = parse_go_duration(text).ok().map(|d| d.as_millis() as u64);
            assert_eq!(got, millis, "{text:?}");
        }
    }

    #[test]
    fn behaviors_parse_from_a_duration_or_commands() {
        assert_eq!(
            Behavior::parse("5s").unwrap(),
            Behavior::after(Duration::from_secs(5))
        );
        let full =
            Behavior::parse("delay=2s; jitter=500ms; status=StatusFailed; message=boom").unwrap();
        assert_eq!(full.delay, Duration::from_secs(2));
        assert_eq!(full.jitter, Duration::from_millis(500));
        assert_eq!(full.status, SimulatedStatus::Failed);
        assert_eq!(full.message, "boom");
        assert_eq!(
            Behavior::parse("status=StatusRunning").unwrap().status,
            SimulatedStatus::Running
        );
        for bad in ["delay", "delay=x", "status=Nope", "color=red", "=1"] {
            assert!(Behavior::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_invalid_annotation_falls_back_to_the_default_with_the_error_as_message() {
        let fallback = Behavior::from_annotation(Some("delay=soon"), Behavior::default_kill());
        assert_eq!(fallback.delay, Duration::from_secs(1));
        assert!(fallback.message.contains("soon"), "{}", fallback.message);
        assert_eq!(
            Behavior::from_annotation(None, Behavior::default_run()),
            Behavior::default_run()
        );
        assert_eq!(
            Behavior::from_annotation(Some("  "), Behavior::default_prepare()),
            Behavior::default_prepare()
        );
    }

    #[test]
    fn jitter_is_deterministic_per_container_and_bounded() {
        let b = Behavior {
            jitter: Duration::from_secs(30),
            ..Behavior::after(Duration::from_secs(60))
        };
        let mut distinct = std::collections::BTreeSet::new();
        for i in 0..100 {
            let id = format!("task-{i}");
            let d = b.delay_for(&id);
            assert_eq!(d, b.delay_for(&id), "same id, same delay");
            assert!(
                d >= Duration::from_secs(30) && d <= Duration::from_secs(90),
                "{d:?}"
            );
            distinct.insert(d);
        }
        assert!(distinct.len() > 50, "jitter spreads containers out");
        assert_eq!(
            Behavior::after(Duration::from_secs(3)).delay_for("x"),
            Duration::from_secs(3)
        );
    }
}
