//! Fitness: how good an agent is for a task, in `[0, 1]`, higher is better.
//!
//! ```text
//! util_R   = (allocatable_R − free_R + ask_R) / allocatable_R      R ∈ {cpu, memory, network}
//! binpack  = Σ w_R · util_R / Σ w_R        over the R the agent has (allocatable_R > 0)
//! soft     = mean of the soft constraints' scores (1.0 when the task has none)
//! fitness  = (w_soft · soft + w_binpack · binpack) / (w_soft + w_binpack) × lifecycle factor
//! ```
//!
//! `util_R` is Fenzo's `BinPackingFitnessCalculators` value (the agent's utilisation of R if the
//! task lands there), so the fullest agent that still fits wins. The soft/bin-packing weights
//! default to Fenzo's combination weights 0.50 and 0.35 (its third, resource-set term is unused
//! here and dropped, so the result is renormalised to `[0, 1]`). The lifecycle factor is 1.0 for
//! `Active` agents and 1e-6 for `PhasedOut` ones (Titus's `AgentManagementFitnessCalculator`
//! score), which puts every phased-out agent behind every active one.

use serde::{Deserialize, Serialize};

use crate::model::InstanceGroupLifecycle;
use crate::resources::Resources;

/// Weights and factors of the fitness formula.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(default)]
pub struct FitnessConfig {
    /// Weight of CPU utilisation in the bin-packing score.
    pub cpu_weight: f64,
    /// Weight of memory utilisation in the bin-packing score.
    pub memory_weight: f64,
    /// Weight of network utilisation in the bin-packing score.
    pub network_weight: f64,
    /// Weight of the soft-constraint score (Fenzo: 0.50).
    pub soft_weight: f64,
    /// Weight of the bin-packing score (Fenzo: 0.35).
    pub binpack_weight: f64,
    /// Multiplier for agents of `PhasedOut` instance groups (Titus: 1e-6).
    pub phased_out_factor: f64,
}

impl Default for FitnessConfig {
    fn default() -> Self {
        FitnessConfig {
            cpu_weight: 1.0,
            memory_weight: 1.0,
            network_weight: 1.0,
            soft_weight: 0.50,
            binpack_weight: 0.35,
            phased_out_factor: 1e-6,
        }
    }
}

impl FitnessConfig {
    /// The bin-packing score of placing `ask` on an agent with `allocatable` and `free`.
    pub fn binpack(&self, allocatable: &Resources, free: &Resources, ask: &Resources) -> f64 {
        let dims = [
            (
                self.cpu_weight,
                allocatable.cpu_milli,
                free.cpu_milli,
                ask.cpu_milli,
            ),
            (
                self.memory_weight,
                allocatable.memory_mb,
                free.memory_mb,
                ask.memory_mb,
            ),
            (
                self.network_weight,
                allocatable.network_mbps,
                free.network_mbps,
                ask.network_mbps,
            ),
        ];
        let (mut sum, mut weights) = (0.0, 0.0);
        for (weight, total, free, ask) in dims {
            if total == 0 || weight <= 0.0 {
                continue;
            }
            let used_after = total.saturating_sub(free).saturating_add(ask);
            sum += weight * (used_after as f64 / total as f64).min(1.0);
            weights += weight;
        }
        if weights == 0.0 { 1.0 } else { sum / weights }
    }

    /// Combines the bin-packing and soft scores and applies the lifecycle factor.
    pub fn combine(&self, binpack: f64, soft: f64, lifecycle: InstanceGroupLifecycle) -> f64 {
        let total = self.soft_weight + self.binpack_weight;
        let combined = if total > 0.0 {
            (self.soft_weight * soft + self.binpack_weight * binpack) / total
        } else {
            binpack
        };
        match lifecycle {
            InstanceGroupLifecycle::PhasedOut => combined * self.phased_out_factor,
            InstanceGroupLifecycle::Active
            | InstanceGroupLifecycle::Inactive
            | InstanceGroupLifecycle::Removable => combined,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn res(cpu_milli: u64, memory_mb: u64, network_mbps: u64) -> Resources {
        Resources {
            cpu_milli,
            memory_mb,
            network_mbps,
            ..Resources::ZERO
        }
    }

    #[test]
    fn binpack_is_the_mean_utilisation_after_placement() {
        let config = FitnessConfig::default();
        let alloc = res(16_000, 64_000, 10_000);
        // Half of the agent already used, the task takes another quarter: 0.75 everywhere.
        let free = res(8_000, 32_000, 5_000);
        let ask = res(4_000, 16_000, 2_500);
        assert!((config.binpack(&alloc, &free, &ask) - 0.75).abs() < 1e-12);
        // A dimension the agent does not have is left out of the mean.
        let no_net = res(16_000, 64_000, 0);
        let ask_no_net = res(4_000, 16_000, 0);
        assert!((config.binpack(&no_net, &free, &ask_no_net) - 0.75).abs() < 1e-12);
    }

    #[test]
    fn fuller_agents_score_higher_and_phased_out_agents_lowest() {
        let config = FitnessConfig::default();
        let alloc = res(16_000, 64_000, 10_000);
        let ask = res(1_000, 4_000, 500);
        let empty = config.binpack(&alloc, &alloc, &ask);
        let half = config.binpack(&alloc, &res(8_000, 32_000, 5_000), &ask);
        assert!(half > empty);
        let active = config.combine(empty, 1.0, InstanceGroupLifecycle::Active);
        let phased = config.combine(1.0, 1.0, InstanceGroupLifecycle::PhasedOut);
        assert!(active > phased);
        assert!((config.combine(1.0, 1.0, InstanceGroupLifecycle::Active) - 1.0).abs() < 1e-12);
    }
}
