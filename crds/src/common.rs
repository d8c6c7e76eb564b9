//! Small types shared by several kinds, and the serde helpers that keep manifests quiet.
//!
//! Optional scalars follow proto3 JSON habits: a zero, `false` or empty value is left out when
//! serialized, so a minimal manifest round-trips through the API unchanged and the gateway can
//! translate to and from the Titus protos without inventing presence.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::task::TaskReasonCode;

/// A plain string map, as Titus's `map<string, string>` fields.
pub type StringMap = BTreeMap<String, String>;

/// Titus scheduling tier (proto `Tier`).
///
/// `Critical` is served first (latency-sensitive services on reserved capacity); `Flex` is the
/// default (latency-insensitive or batch work on elastic capacity).
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
pub enum Tier {
    /// Highest scheduling priority: reserved capacity.
    Critical,
    /// Default tier: elastic capacity.
    #[default]
    Flex,
}

impl Tier {
    /// The lower-case name used in node taints and labels (`critical`, `flex`).
    pub fn as_label_value(self) -> &'static str {
        match self {
            Tier::Critical => "critical",
            Tier::Flex => "flex",
        }
    }

    /// The exact Titus name (`Critical`, `Flex`).
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Critical => "Critical",
            Tier::Flex => "Flex",
        }
    }
}

/// Resources of one instance or one task slot (Titus `ResourceDimension`).
///
/// `cpu` is a number of cores and may be fractional, as in Titus's capacity group model.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDimension {
    /// CPU cores.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub cpu: f64,
    /// Number of GPUs.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub gpu: u32,
    /// Memory in MiB.
    #[serde(rename = "memoryMB", default, skip_serializing_if = "is_zero_u32")]
    pub memory_mb: u32,
    /// Ephemeral disk in MiB.
    #[serde(rename = "diskMB", default, skip_serializing_if = "is_zero_u32")]
    pub disk_mb: u32,
    /// Network bandwidth in Mbps.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub network_mbps: u32,
}

/// One Titus status (`JobStatus` / `TaskStatus` without container states): the current one of an
/// object, or an entry of its `statusHistory`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(bound = "S: JsonSchema + Default + Serialize")]
pub struct StatusEntry<S> {
    /// State.
    #[serde(default)]
    pub state: S,
    /// Titus reason code.
    #[serde(default)]
    pub reason_code: TaskReasonCode,
    /// Human message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason_message: String,
    /// Time of the transition into this state, ms since the Unix epoch.
    #[serde(default)]
    pub timestamp: u64,
}

/// An empty proto message whose presence carries the meaning (`RateUnlimited`,
/// `MigrationPolicy.SystemDefault`, ...). Serialized as `{}`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Empty {}

/// `true` when the value equals its type's default; used to leave default sub-objects out.
pub(crate) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

pub(crate) fn is_zero_u32(value: &u32) -> bool {
    *value == 0
}

pub(crate) fn is_zero_u64(value: &u64) -> bool {
    *value == 0
}

pub(crate) fn is_zero_f64(value: &f64) -> bool {
    *value == 0.0
}

pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}

/// Schema of an arbitrary JSON object (proto `google.protobuf.Struct`): the one intentionally
/// untyped spot in the CRDs, kept by the API server as it is.
pub(crate) fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "nullable": true,
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Condition `status` values.
pub mod condition_status {
    /// The condition holds.
    pub const TRUE: &str = "True";
    /// The condition does not hold.
    pub const FALSE: &str = "False";
    /// Not known.
    pub const UNKNOWN: &str = "Unknown";
}

/// Sets (adds or replaces) the condition of `new.type_` in `conditions`.
///
/// # Guarantees
/// `lastTransitionTime` is kept from the existing condition when its `status` does not change, so
/// a controller may call this on every pass without making the object change every time.
/// Returns `true` when anything changed.
pub fn set_condition(conditions: &mut Vec<Condition>, new: Condition) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => {
            let transition_time = if existing.status == new.status {
                existing.last_transition_time.clone()
            } else {
                new.last_transition_time.clone()
            };
            let updated = Condition {
                last_transition_time: transition_time,
                ..new
            };
            if *existing == updated {
                false
            } else {
                *existing = updated;
                true
            }
        }
        None => {
            conditions.push(new);
            true
        }
    }
}

/// Finds the condition of the given type.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Builds a condition; `now_ms` is milliseconds since the Unix epoch (the caller's clock).
pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
    now_ms: u64,
) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: message.into(),
        observed_generation,
        last_transition_time: time_from_ms(now_ms),
    }
}

/// Converts milliseconds since the Unix epoch to a Kubernetes `Time`, clamping values that do not
/// fit a timestamp to the epoch.
pub fn time_from_ms(ms: u64) -> Time {
    let ms = i64::try_from(ms).unwrap_or(0);
    Time(jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_condition_keeps_transition_time_when_status_is_unchanged() {
        let mut conditions = vec![condition("Ready", "True", "A", "m", None, 1_000)];
        let changed = set_condition(
            &mut conditions,
            condition("Ready", "True", "B", "m2", None, 5_000),
        );
        assert!(changed);
        assert_eq!(conditions[0].reason, "B");
        assert_eq!(conditions[0].last_transition_time, time_from_ms(1_000));
    }

    #[test]
    fn set_condition_moves_transition_time_when_status_changes() {
        let mut conditions = vec![condition("Ready", "True", "A", "m", None, 1_000)];
        set_condition(
            &mut conditions,
            condition("Ready", "False", "A", "m", None, 5_000),
        );
        assert_eq!(conditions[0].last_transition_time, time_from_ms(5_000));
    }

    #[test]
    fn setting_an_identical_condition_reports_no_change() {
        let mut conditions = vec![condition("Ready", "True", "A", "m", None, 1_000)];
        let changed = set_condition(
            &mut conditions,
            condition("Ready", "True", "A", "m", None, 9_000),
        );
        assert!(!changed);
        assert_eq!(conditions.len(), 1);
    }
}
