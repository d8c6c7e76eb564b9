//! Resource vectors: what an agent offers and what a task asks for.
//!
//! Every quantity is an integer in the unit Titus uses on the wire (CPU in thousandths of a core,
//! memory and disk in MB, network in Mbps, whole GPUs, Pod slots), so comparisons are exact and the
//! scheduler never accumulates floating-point drift. Arithmetic is checked: an overflow or an
//! underflow is an error naming the dimension, never a wrap-around.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One dimension of [`Resources`].
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    /// CPU, in thousandths of a core.
    Cpu,
    /// Memory, in MB.
    Memory,
    /// Ephemeral disk, in MB.
    Disk,
    /// Network bandwidth, in Mbps.
    Network,
    /// Whole GPUs.
    Gpu,
    /// Pod (or Mesos task) slots.
    Pods,
}

impl ResourceKind {
    /// Every dimension, in the order failure messages list them.
    pub const ALL: [ResourceKind; 6] = [
        ResourceKind::Cpu,
        ResourceKind::Memory,
        ResourceKind::Disk,
        ResourceKind::Network,
        ResourceKind::Gpu,
        ResourceKind::Pods,
    ];

    /// The lower-case name used in failure summaries (`cpu`, `memory`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Cpu => "cpu",
            ResourceKind::Memory => "memory",
            ResourceKind::Disk => "disk",
            ResourceKind::Network => "network",
            ResourceKind::Gpu => "gpu",
            ResourceKind::Pods => "pods",
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of resource arithmetic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// A sum does not fit in 64 bits.
    #[error("{kind} overflows")]
    Overflow {
        /// The dimension that overflowed.
        kind: ResourceKind,
    },
    /// A subtraction would go below zero.
    #[error("{kind} would go negative: {have} - {take}")]
    Underflow {
        /// The dimension that underflowed.
        kind: ResourceKind,
        /// The amount present.
        have: u64,
        /// The amount subtracted.
        take: u64,
    },
}

/// A resource vector (an agent's allocatable or free resources, or a task's request).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(default)]
pub struct Resources {
    /// CPU in thousandths of a core (`2500` = 2.5 cores).
    pub cpu_milli: u64,
    /// Memory in MB.
    pub memory_mb: u64,
    /// Ephemeral disk in MB.
    pub disk_mb: u64,
    /// Network bandwidth in Mbps.
    pub network_mbps: u64,
    /// Whole GPUs.
    pub gpu: u64,
    /// Pod slots (a task takes one).
    pub pods: u64,
}

impl Resources {
    /// No resources at all.
    pub const ZERO: Resources = Resources {
        cpu_milli: 0,
        memory_mb: 0,
        disk_mb: 0,
        network_mbps: 0,
        gpu: 0,
        pods: 0,
    };

    /// The amount of one dimension.
    pub fn get(&self, kind: ResourceKind) -> u64 {
        match kind {
            ResourceKind::Cpu => self.cpu_milli,
            ResourceKind::Memory => self.memory_mb,
            ResourceKind::Disk => self.disk_mb,
            ResourceKind::Network => self.network_mbps,
            ResourceKind::Gpu => self.gpu,
            ResourceKind::Pods => self.pods,
        }
    }

    fn get_mut(&mut self, kind: ResourceKind) -> &mut u64 {
        match kind {
            ResourceKind::Cpu => &mut self.cpu_milli,
            ResourceKind::Memory => &mut self.memory_mb,
            ResourceKind::Disk => &mut self.disk_mb,
            ResourceKind::Network => &mut self.network_mbps,
            ResourceKind::Gpu => &mut self.gpu,
            ResourceKind::Pods => &mut self.pods,
        }
    }

    /// `self + other`, or the first dimension that overflows.
    pub fn checked_add(&self, other: &Resources) -> Result<Resources, ResourceError> {
        let mut out = *self;
        for kind in ResourceKind::ALL {
            let slot = out.get_mut(kind);
            *slot = slot
                .checked_add(other.get(kind))
                .ok_or(ResourceError::Overflow { kind })?;
        }
        Ok(out)
    }

    /// `self - other`, or the first dimension that would go negative.
    pub fn checked_sub(&self, other: &Resources) -> Result<Resources, ResourceError> {
        let mut out = *self;
        for kind in ResourceKind::ALL {
            let have = out.get(kind);
            let take = other.get(kind);
            *out.get_mut(kind) =
                have.checked_sub(take)
                    .ok_or(ResourceError::Underflow { kind, have, take })?;
        }
        Ok(out)
    }

    /// `self - other`, stopping at zero in every dimension.
    pub fn saturating_sub(&self, other: &Resources) -> Resources {
        let mut out = *self;
        for kind in ResourceKind::ALL {
            *out.get_mut(kind) = out.get(kind).saturating_sub(other.get(kind));
        }
        out
    }

    /// `self + other`, stopping at `u64::MAX` in every dimension (for totals that are only
    /// reported, never subtracted back).
    pub fn saturating_add(&self, other: &Resources) -> Resources {
        let mut out = *self;
        for kind in ResourceKind::ALL {
            *out.get_mut(kind) = out.get(kind).saturating_add(other.get(kind));
        }
        out
    }

    /// The dimension-wise maximum.
    pub fn max(&self, other: &Resources) -> Resources {
        let mut out = *self;
        for kind in ResourceKind::ALL {
            *out.get_mut(kind) = out.get(kind).max(other.get(kind));
        }
        out
    }

    /// `self * factor`, or the first dimension that overflows.
    pub fn checked_mul(&self, factor: u64) -> Result<Resources, ResourceError> {
        let mut out = *self;
        for kind in ResourceKind::ALL {
            let slot = out.get_mut(kind);
            *slot = slot
                .checked_mul(factor)
                .ok_or(ResourceError::Overflow { kind })?;
        }
        Ok(out)
    }

    /// True when `self` fits in `available` in every dimension.
    pub fn fits_in(&self, available: &Resources) -> bool {
        self.cpu_milli <= available.cpu_milli
            && self.memory_mb <= available.memory_mb
            && self.disk_mb <= available.disk_mb
            && self.network_mbps <= available.network_mbps
            && self.gpu <= available.gpu
            && self.pods <= available.pods
    }

    /// The dimensions in which `self` does not fit in `available`.
    pub fn shortfalls(&self, available: &Resources) -> impl Iterator<Item = ResourceKind> + '_ {
        let available = *available;
        ResourceKind::ALL
            .into_iter()
            .filter(move |kind| self.get(*kind) > available.get(*kind))
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cpu={}.{:03} memoryMB={} diskMB={} networkMbps={} gpu={}",
            self.cpu_milli / 1000,
            self.cpu_milli % 1000,
            self.memory_mb,
            self.disk_mb,
            self.network_mbps,
            self.gpu
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn r(cpu_milli: u64, memory_mb: u64) -> Resources {
        Resources {
            cpu_milli,
            memory_mb,
            ..Resources::ZERO
        }
    }

    #[test]
    fn addition_and_subtraction_are_checked_per_dimension() {
        assert_eq!(r(1000, 10).checked_add(&r(500, 5)), Ok(r(1500, 15)));
        assert_eq!(r(1000, 10).checked_sub(&r(500, 5)), Ok(r(500, 5)));
        assert_eq!(
            r(1000, 10).checked_sub(&r(500, 11)),
            Err(ResourceError::Underflow {
                kind: ResourceKind::Memory,
                have: 10,
                take: 11
            })
        );
        assert_eq!(
            r(u64::MAX, 0).checked_add(&r(1, 0)),
            Err(ResourceError::Overflow {
                kind: ResourceKind::Cpu
            })
        );
        assert_eq!(r(1, 1).saturating_sub(&r(5, 0)), r(0, 1));
    }

    #[test]
    fn fit_and_shortfalls_name_every_missing_dimension() {
        assert!(r(1000, 10).fits_in(&r(1000, 10)));
        assert!(!r(1001, 11).fits_in(&r(1000, 10)));
        let short: Vec<_> = r(1001, 11).shortfalls(&r(1000, 10)).collect();
        assert_eq!(short, vec![ResourceKind::Cpu, ResourceKind::Memory]);
    }

    #[test]
    fn display_shows_cores_with_three_decimals() {
        assert_eq!(
            r(2500, 512).to_string(),
            "cpu=2.500 memoryMB=512 diskMB=0 networkMbps=0 gpu=0"
        );
    }
}
