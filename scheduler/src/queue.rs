//! The tiered queue: in which order pending tasks are offered to placement, and which wait for
//! capacity-group quota (Fenzo's `TieredQueue`, `QueueBucket`, `TierSla`).
//!
//! - Tiers: every `Critical` task is served before any `Flex` task.
//! - Buckets: inside a tier, one bucket per capacity group. The next task comes from the bucket
//!   with the smallest *dominant usage share*, then the smaller group name:
//!
//!   ```text
//!   usage share  = max_R usage_R / tier_capacity_R            R ∈ {cpu, memory, network, disk}
//!   alloc share  = max_R guarantee_R / Σ_groups guarantee_R   (1.0 when the tier has no group
//!                                                              specs; 0.001 for a group without one)
//!   dominant     = usage share / max(0.0001, alloc share)
//!   ```
//!
//!   so groups are served in proportion to their guarantees. `usage` counts the group's placed
//!   tasks in the tier plus what this iteration assigned; the share is recomputed after each
//!   assignment.
//! - Inside a bucket: smaller `order_key` (older) first, then task id.
//! - Guarantees limit, they do not reject: when the tier has group specs, a task is admitted if
//!   its group stays within its guarantee (`usage + task ≤ guarantee`), or else if the task fits
//!   in the tier capacity nobody is guaranteed (`tier capacity − Σ_groups max(usage,
//!   guarantee)`). Otherwise it fails for this iteration with
//!   [`FailureCause::CapacityGroupGuaranteeExhausted`](crate::failure::FailureCause) and waits,
//!   as Titus's over-guarantee work did.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

use crate::cluster::ClusterState;
use crate::model::{CapacityGroupSpec, TaskRequest, Tier};
use crate::resources::Resources;

const NO_SPEC_SHARE: f64 = 0.001;
const MIN_SHARE: f64 = 0.0001;

/// The result of asking whether a task may use capacity now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Admission {
    Admitted,
    Wait {
        usage: Resources,
        guarantee: Resources,
        tier_remaining: Resources,
    },
}

struct Bucket<'t> {
    name: String,
    tasks: Vec<&'t TaskRequest>,
    next: usize,
    usage: Resources,
    guarantee: Option<Resources>,
    alloc_share: f64,
}

/// Pending tasks of one tier, in service order.
pub(crate) struct TierQueue<'t> {
    capacity: Resources,
    has_specs: bool,
    buckets: Vec<Bucket<'t>>,
    heap: BinaryHeap<Reverse<(Share, usize)>>,
    /// Σ over every group in the tier of max(usage, guarantee).
    effective: Resources,
    effective_of: HashMap<String, Resources>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Share(f64, u32);

impl Eq for Share {}

impl PartialOrd for Share {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Share {
    // Ties on the share go to the bucket whose name sorts first (rank precomputed in `.1`).
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

impl<'t> TierQueue<'t> {
    /// Builds the queue of `tier` from the pending tasks of that tier.
    pub fn new(
        tier: Tier,
        tasks: Vec<&'t TaskRequest>,
        groups: &[CapacityGroupSpec],
        state: &ClusterState,
    ) -> TierQueue<'t> {
        let specs: HashMap<&str, Resources> = groups
            .iter()
            .filter(|group| group.tier == tier)
            .map(|group| (group.name.as_str(), group.guarantee()))
            .collect();
        let total_guarantee = specs
            .values()
            .fold(Resources::ZERO, |acc, g| acc.saturating_add(g));
        let mut by_group: HashMap<&str, Vec<&'t TaskRequest>> = HashMap::new();
        for task in tasks {
            by_group
                .entry(task.capacity_group.as_str())
                .or_default()
                .push(task);
        }
        let mut names: Vec<&str> = by_group.keys().copied().collect();
        names.sort_unstable();
        let mut buckets = Vec::with_capacity(names.len());
        for name in names {
            let mut tasks = by_group.remove(name).unwrap_or_default();
            tasks.sort_by(|a, b| {
                a.order_key
                    .cmp(&b.order_key)
                    .then_with(|| a.task_id.cmp(&b.task_id))
            });
            let guarantee = specs.get(name).copied();
            buckets.push(Bucket {
                name: name.to_string(),
                tasks,
                next: 0,
                usage: state.capacity_group_usage(tier, name),
                guarantee,
                alloc_share: alloc_share(guarantee, &total_guarantee, specs.is_empty()),
            });
        }
        let mut effective_of: HashMap<String, Resources> = HashMap::new();
        for (name, usage) in state.capacity_groups_in_use(tier) {
            effective_of.insert(name.to_string(), usage);
        }
        for (name, guarantee) in &specs {
            let entry = effective_of.entry((*name).to_string()).or_default();
            *entry = entry.max(guarantee);
        }
        let effective = effective_of
            .values()
            .fold(Resources::ZERO, |acc, r| acc.saturating_add(r));
        let mut queue = TierQueue {
            capacity: state.tier_capacity(tier),
            has_specs: !specs.is_empty(),
            buckets,
            heap: BinaryHeap::new(),
            effective,
            effective_of,
        };
        for index in 0..queue.buckets.len() {
            queue.push(index);
        }
        queue
    }

    fn push(&mut self, index: usize) {
        let bucket = &self.buckets[index];
        if bucket.next < bucket.tasks.len() {
            let share =
                dominant_share(&bucket.usage, &self.capacity) / bucket.alloc_share.max(MIN_SHARE);
            self.heap.push(Reverse((Share(share, index as u32), index)));
        }
    }

    /// The next task to serve and its bucket, or `None` when the tier is done. The caller must
    /// report back with [`TierQueue::served`].
    pub fn next_task(&mut self) -> Option<(usize, &'t TaskRequest)> {
        let Reverse((_, index)) = self.heap.pop()?;
        let bucket = &mut self.buckets[index];
        let task = bucket.tasks[bucket.next];
        bucket.next += 1;
        Some((index, task))
    }

    /// Whether the bucket's next task may use capacity now.
    pub fn admit(&self, index: usize, ask: &Resources) -> Admission {
        if !self.has_specs {
            return Admission::Admitted;
        }
        let bucket = &self.buckets[index];
        let guarantee = bucket.guarantee.unwrap_or_default();
        let within_guarantee = bounded(&bucket.usage.saturating_add(ask), &guarantee);
        let tier_remaining = self.capacity.saturating_sub(&self.effective);
        if within_guarantee || bounded(ask, &tier_remaining) {
            Admission::Admitted
        } else {
            Admission::Wait {
                usage: bucket.usage,
                guarantee,
                tier_remaining,
            }
        }
    }

    /// Reports the outcome of the task [`TierQueue::next_task`] returned and re-queues its
    /// bucket.
    pub fn served(&mut self, index: usize, assigned: Option<&Resources>) {
        if let Some(ask) = assigned {
            let bucket = &mut self.buckets[index];
            bucket.usage = bucket.usage.saturating_add(ask);
            let new_effective = bucket.usage.max(&bucket.guarantee.unwrap_or_default());
            let old = self
                .effective_of
                .insert(bucket.name.clone(), new_effective)
                .unwrap_or_default();
            self.effective = self
                .effective
                .saturating_sub(&old)
                .saturating_add(&new_effective);
        }
        self.push(index);
    }
}

/// `a ≤ b` in the dimensions guarantees are expressed in (Fenzo's `ResAllocs`: cpu, memory,
/// network, disk); GPUs and Pod slots never hold a task back here.
fn bounded(a: &Resources, b: &Resources) -> bool {
    shared_dims(a)
        .into_iter()
        .zip(shared_dims(b))
        .all(|(x, y)| x <= y)
}

fn shared_dims(r: &Resources) -> [u64; 4] {
    [r.cpu_milli, r.memory_mb, r.network_mbps, r.disk_mb]
}

fn dominant_share(usage: &Resources, capacity: &Resources) -> f64 {
    shared_dims(usage)
        .into_iter()
        .zip(shared_dims(capacity))
        .filter(|(_, total)| *total > 0)
        .map(|(used, total)| used as f64 / total as f64)
        .fold(0.0, f64::max)
}

fn alloc_share(guarantee: Option<Resources>, total: &Resources, no_specs: bool) -> f64 {
    if no_specs {
        return 1.0;
    }
    let Some(guarantee) = guarantee else {
        return NO_SPEC_SHARE;
    };
    shared_dims(&guarantee)
        .into_iter()
        .zip(shared_dims(total))
        .map(|(own, total)| {
            if total == 0 {
                NO_SPEC_SHARE
            } else {
                own as f64 / total as f64
            }
        })
        .fold(0.0, f64::max)
}
