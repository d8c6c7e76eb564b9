//! Titus placement constraints: parsing the job's `name -> value` maps and the per-agent rules.
//!
//! The ten names Titus accepts (titus-semantics §7.1) are matched case-insensitively. Boolean
//! constraints are on when their value is `true` in any case (the final Titus rule; Fenzo-era
//! Titus compared with `"true"` exactly); value constraints with an empty value are ignored, as
//! Titus did. Value comparisons (`availabilityZone`, `machineId`, `machineGroup`, `machineType`,
//! `kubeBackend`, `cpuModel`) ignore case, as Titus's Fenzo-era evaluators did.
//!
//! Evaluation that depends on the job's other tasks (`uniqueHost`, `zoneBalance`) lives in
//! [`zone_balance_allows`] and [`zone_balance_fitness`] here and in the placement engine, which
//! owns the counts.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::InstanceGroupLifecycle;

/// The constraint names Titus accepts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConstraintName {
    /// At most one task of the job per agent.
    UniqueHost,
    /// The task is alone on its agent.
    ExclusiveHost,
    /// The job's tasks are balanced across zones.
    ZoneBalance,
    /// The agent's instance group is `Active`.
    ActiveHost,
    /// The agent is in the given zone.
    AvailabilityZone,
    /// The agent has the given EC2 instance id.
    MachineId,
    /// The agent belongs to the given instance group.
    MachineGroup,
    /// The agent has the given instance type.
    MachineType,
    /// The agent runs the given Kubernetes backend.
    KubeBackend,
    /// The agent has the given CPU model.
    CpuModel,
}

impl ConstraintName {
    /// All names, in the order hard constraints are evaluated and failures listed.
    pub const ALL: [ConstraintName; 10] = [
        ConstraintName::ExclusiveHost,
        ConstraintName::UniqueHost,
        ConstraintName::ZoneBalance,
        ConstraintName::ActiveHost,
        ConstraintName::AvailabilityZone,
        ConstraintName::MachineId,
        ConstraintName::MachineGroup,
        ConstraintName::MachineType,
        ConstraintName::KubeBackend,
        ConstraintName::CpuModel,
    ];

    /// The exact Titus spelling (`uniqueHost`, `zoneBalance`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ConstraintName::UniqueHost => "uniqueHost",
            ConstraintName::ExclusiveHost => "exclusiveHost",
            ConstraintName::ZoneBalance => "zoneBalance",
            ConstraintName::ActiveHost => "activeHost",
            ConstraintName::AvailabilityZone => "availabilityZone",
            ConstraintName::MachineId => "machineId",
            ConstraintName::MachineGroup => "machineGroup",
            ConstraintName::MachineType => "machineType",
            ConstraintName::KubeBackend => "kubeBackend",
            ConstraintName::CpuModel => "cpuModel",
        }
    }

    /// Parses a name, ignoring case.
    pub fn parse(name: &str) -> Option<ConstraintName> {
        ConstraintName::ALL
            .into_iter()
            .find(|known| known.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for ConstraintName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a constraint map cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    /// A name Titus does not know (the Titus validator's wording).
    #[error("unrecognized constraints [{names}]")]
    Unrecognized {
        /// The unknown names, comma-separated, as given.
        names: String,
    },
    /// The same constraint given twice with names differing only in case.
    #[error("constraint {name} given more than once")]
    Duplicate {
        /// The constraint.
        name: ConstraintName,
    },
}

/// One side (hard or soft) of a task's constraints, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ConstraintSet {
    /// `uniqueHost=true`.
    pub unique_host: bool,
    /// `exclusiveHost=true`.
    pub exclusive_host: bool,
    /// `zoneBalance=true`.
    pub zone_balance: bool,
    /// `activeHost=true`.
    pub active_host: bool,
    /// `availabilityZone=<zone>`.
    pub availability_zone: Option<String>,
    /// `machineId=<instance id>`.
    pub machine_id: Option<String>,
    /// `machineGroup=<instance group>`.
    pub machine_group: Option<String>,
    /// `machineType=<instance type>`.
    pub machine_type: Option<String>,
    /// `kubeBackend=<backend>`.
    pub kube_backend: Option<String>,
    /// `cpuModel=<model>`.
    pub cpu_model: Option<String>,
}

impl ConstraintSet {
    /// Parses a Titus constraint map.
    ///
    /// # Errors
    /// [`ConstraintError::Unrecognized`] for a name outside §7.1; [`ConstraintError::Duplicate`]
    /// when two keys name the same constraint.
    pub fn parse(map: &BTreeMap<String, String>) -> Result<ConstraintSet, ConstraintError> {
        let unknown: Vec<&str> = map
            .keys()
            .filter(|name| ConstraintName::parse(name).is_none())
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(ConstraintError::Unrecognized {
                names: unknown.join(", "),
            });
        }
        let mut set = ConstraintSet::default();
        let mut seen = Vec::with_capacity(map.len());
        for (raw, value) in map {
            let Some(name) = ConstraintName::parse(raw) else {
                continue;
            };
            if seen.contains(&name) {
                return Err(ConstraintError::Duplicate { name });
            }
            seen.push(name);
            set.apply(name, value);
        }
        Ok(set)
    }

    fn apply(&mut self, name: ConstraintName, value: &str) {
        let flag = value.trim().eq_ignore_ascii_case("true");
        let text = (!value.is_empty()).then(|| value.to_string());
        match name {
            ConstraintName::UniqueHost => self.unique_host = flag,
            ConstraintName::ExclusiveHost => self.exclusive_host = flag,
            ConstraintName::ZoneBalance => self.zone_balance = flag,
            ConstraintName::ActiveHost => self.active_host = flag,
            ConstraintName::AvailabilityZone => self.availability_zone = text,
            ConstraintName::MachineId => self.machine_id = text,
            ConstraintName::MachineGroup => self.machine_group = text,
            ConstraintName::MachineType => self.machine_type = text,
            ConstraintName::KubeBackend => self.kube_backend = text,
            ConstraintName::CpuModel => self.cpu_model = text,
        }
    }

    /// True when no constraint is on.
    pub fn is_empty(&self) -> bool {
        *self == ConstraintSet::default()
    }

    /// The constraints that are on, in evaluation order.
    pub fn active(&self) -> impl Iterator<Item = ConstraintName> + '_ {
        ConstraintName::ALL
            .into_iter()
            .filter(|name| self.is_on(*name))
    }

    fn is_on(&self, name: ConstraintName) -> bool {
        match name {
            ConstraintName::UniqueHost => self.unique_host,
            ConstraintName::ExclusiveHost => self.exclusive_host,
            ConstraintName::ZoneBalance => self.zone_balance,
            ConstraintName::ActiveHost => self.active_host,
            ConstraintName::AvailabilityZone => self.availability_zone.is_some(),
            ConstraintName::MachineId => self.machine_id.is_some(),
            ConstraintName::MachineGroup => self.machine_group.is_some(),
            ConstraintName::MachineType => self.machine_type.is_some(),
            ConstraintName::KubeBackend => self.kube_backend.is_some(),
            ConstraintName::CpuModel => self.cpu_model.is_some(),
        }
    }

    /// The attribute constraints (those that depend only on what the agent is, not on which
    /// tasks it runs) that fail on an agent with these attributes, in evaluation order.
    pub(crate) fn attribute_failures<'a>(
        &'a self,
        agent: &'a AgentAttributes<'a>,
    ) -> impl Iterator<Item = ConstraintName> + 'a {
        let checks = [
            (
                ConstraintName::ActiveHost,
                !self.active_host || agent.lifecycle == InstanceGroupLifecycle::Active,
            ),
            (
                ConstraintName::AvailabilityZone,
                value_matches(&self.availability_zone, agent.zone),
            ),
            (
                ConstraintName::MachineGroup,
                value_matches(&self.machine_group, agent.instance_group),
            ),
            (
                ConstraintName::MachineType,
                value_matches(&self.machine_type, agent.instance_type),
            ),
            (
                ConstraintName::KubeBackend,
                value_matches(&self.kube_backend, agent.kube_backend),
            ),
            (
                ConstraintName::CpuModel,
                value_matches(&self.cpu_model, agent.cpu_model),
            ),
        ];
        checks
            .into_iter()
            .filter(|(_, passes)| !passes)
            .map(|(name, _)| name)
    }
}

/// The agent attributes attribute constraints read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AgentAttributes<'a> {
    pub lifecycle: InstanceGroupLifecycle,
    pub zone: Option<&'a str>,
    pub instance_group: Option<&'a str>,
    pub instance_type: Option<&'a str>,
    pub kube_backend: Option<&'a str>,
    pub cpu_model: Option<&'a str>,
}

/// A value constraint passes when it is off, or when the agent has the value (ignoring case).
pub(crate) fn value_matches(wanted: &Option<String>, actual: Option<&str>) -> bool {
    match wanted {
        None => true,
        Some(wanted) => actual.is_some_and(|actual| actual.eq_ignore_ascii_case(wanted)),
    }
}

/// The Fenzo-era hard `zoneBalance` rule (Titus `V3ZoneBalancedHardConstraintEvaluator`).
///
/// `target` is the number of the job's running and just-assigned tasks in the candidate zone;
/// `counts` those of every zone holding at least one of them. The zone is allowed when it holds
/// none, or fewer than the busiest zone, or when all populated zones are equal and at least
/// `expected_zones` zones are populated (Titus used 3).
pub fn zone_balance_allows(
    target: u32,
    counts: impl Iterator<Item = u32>,
    expected_zones: u32,
) -> bool {
    if target == 0 {
        return true;
    }
    let (mut min, mut max, mut zones) = (u32::MAX, 0u32, 0u32);
    for count in counts {
        min = min.min(count);
        max = max.max(count);
        zones += 1;
    }
    if expected_zones > zones {
        min = 0;
    }
    min == max || target < max
}

/// The soft `zoneBalance` fitness (Titus `V3ZoneBalancedFitnessCalculator`).
///
/// 1.0 when the candidate zone holds none of the job's tasks; otherwise, with
/// `avg = ceil((total + 1) / max(expected_zones, populated zones))`, `(avg − target) / avg` when
/// `target < avg`, else 0.01. An agent without a zone scores 0.01.
pub fn zone_balance_fitness(
    target: Option<u32>,
    counts: impl Iterator<Item = u32>,
    expected_zones: u32,
) -> f64 {
    const NOT_MATCHING: f64 = 0.01;
    let Some(target) = target else {
        return NOT_MATCHING;
    };
    if target == 0 {
        return 1.0;
    }
    let (mut total, mut zones) = (0f64, 0u32);
    for count in counts {
        total += f64::from(count);
        zones += 1;
    }
    let avg = ((total + 1.0) / f64::from(expected_zones.max(zones).max(1))).ceil();
    if f64::from(target) < avg {
        (avg - f64::from(target)) / avg
    } else {
        NOT_MATCHING
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names_are_case_insensitive_and_booleans_accept_any_case_of_true() {
        let set = ConstraintSet::parse(&map(&[
            ("UNIQUEHOST", "True"),
            ("zonebalance", "false"),
            ("AvailabilityZone", "us-east-1a"),
            ("machineType", ""),
        ]))
        .unwrap();
        assert!(set.unique_host);
        assert!(!set.zone_balance);
        assert_eq!(set.availability_zone.as_deref(), Some("us-east-1a"));
        assert_eq!(set.machine_type, None, "an empty value is ignored");
        let names: Vec<_> = set.active().collect();
        assert_eq!(
            names,
            vec![ConstraintName::UniqueHost, ConstraintName::AvailabilityZone]
        );
    }

    #[test]
    fn unknown_and_duplicate_names_are_rejected() {
        assert_eq!(
            ConstraintSet::parse(&map(&[("toleration", "x"), ("uniqueHost", "true")])),
            Err(ConstraintError::Unrecognized {
                names: "toleration".into()
            })
        );
        assert_eq!(
            ConstraintSet::parse(&map(&[("uniqueHost", "true"), ("UniqueHost", "true")])),
            Err(ConstraintError::Duplicate {
                name: ConstraintName::UniqueHost
            })
        );
    }

    #[test]
    fn hard_zone_balance_follows_the_fenzo_era_rule() {
        // (target count, counts of populated zones, allowed)
        let cases: &[(u32, &[u32], bool)] = &[
            (0, &[3, 3], true),     // empty zone: always allowed
            (1, &[1, 2], true),     // fewer than the busiest zone
            (2, &[1, 2], false),    // already the busiest
            (1, &[1, 1], false),    // two zones equal, but fewer than 3 populated
            (1, &[1, 1, 1], true),  // three zones equal
            (2, &[2, 1, 1], false), // busiest of three
        ];
        for (target, counts, allowed) in cases {
            assert_eq!(
                zone_balance_allows(*target, counts.iter().copied(), 3),
                *allowed,
                "target {target} counts {counts:?}"
            );
        }
    }

    #[test]
    fn soft_zone_balance_follows_the_titus_formula() {
        let f = |target, counts: &[u32]| zone_balance_fitness(target, counts.iter().copied(), 3);
        assert_eq!(f(None, &[1]), 0.01);
        assert_eq!(f(Some(0), &[4, 4]), 1.0);
        // total 3 over 3 zones: avg = ceil(4/3) = 2; target 1 -> 0.5
        assert_eq!(f(Some(1), &[1, 1, 1]), 0.5);
        // total 4 over 2 zones: avg = ceil(5/3) = 2; target 2 -> not matching
        assert_eq!(f(Some(2), &[2, 2]), 0.01);
    }
}
