//! Scale-down victim order (titus-semantics §6.3, Titus's `ScaleDownEvaluator`). Pure.
//!
//! Tasks named in `spec.service.scaleDownTaskIds` go first (kill-with-shrink). Then, each group
//! exhausted before the next: tasks already being killed (they simply are not replaced), tasks
//! still `Accepted`, tasks being launched (`Launched`, `StartInitiated`, and `Disconnected` ones,
//! whose agent is not reporting), then `Started` tasks. Inside a group Titus balances: find the
//! largest number of the group's tasks on one agent; among the zones with such an agent take the
//! zone with the most tasks; in it the agent with the most tasks; kill its task with the oldest
//! current-status timestamp. Ties go to the smaller name, so the order is deterministic.

use std::collections::BTreeMap;

/// The scale-down group of a task, in victim order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    /// Already `KillInitiated` or with a kill request.
    Dying,
    /// `Accepted`: no node yet.
    Accepted,
    /// `Launched`, `StartInitiated` or `Disconnected`.
    Launching,
    /// `Started`.
    Started,
}

/// A live task the scale-down may pick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Task id.
    pub name: &'a str,
    /// Its group.
    pub group: Group,
    /// `agent.zone` (Titus's default `default`).
    pub zone: &'a str,
    /// `agent.instanceId` (empty before placement).
    pub agent: &'a str,
    /// Timestamp of the current status, ms.
    pub timestamp: u64,
}

/// Up to `count` victims, in Titus's order: `explicit` ids first (in their order, when they are
/// candidates), then the groups with balancing.
pub fn select_victims<'a>(
    candidates: &[Candidate<'a>],
    explicit: &[String],
    count: usize,
) -> Vec<&'a str> {
    let mut out: Vec<&'a str> = Vec::new();
    for id in explicit {
        if out.len() == count {
            return out;
        }
        if let Some(c) = candidates
            .iter()
            .find(|c| c.name == id && !out.contains(&c.name))
        {
            out.push(c.name);
        }
    }
    for group in [
        Group::Dying,
        Group::Accepted,
        Group::Launching,
        Group::Started,
    ] {
        let members: Vec<&Candidate<'a>> = candidates
            .iter()
            .filter(|c| c.group == group && !out.contains(&c.name))
            .collect();
        let wanted = count.saturating_sub(out.len());
        out.extend(balanced(members, wanted));
    }
    out
}

/// Picks `wanted` tasks of one group with Titus's zone/agent balancing.
fn balanced<'a>(mut remaining: Vec<&Candidate<'a>>, wanted: usize) -> Vec<&'a str> {
    let mut out = Vec::new();
    while out.len() < wanted && !remaining.is_empty() {
        // zone -> agent -> indexes into `remaining`
        let mut layout: BTreeMap<&str, BTreeMap<&str, Vec<usize>>> = BTreeMap::new();
        for (i, c) in remaining.iter().enumerate() {
            layout
                .entry(c.zone)
                .or_default()
                .entry(c.agent)
                .or_default()
                .push(i);
        }
        let max_on_agent = layout
            .values()
            .flat_map(|agents| agents.values().map(Vec::len))
            .max()
            .unwrap_or(0);
        let zone_size =
            |agents: &BTreeMap<&str, Vec<usize>>| -> usize { agents.values().map(Vec::len).sum() };
        let Some(agents) = layout
            .values()
            .filter(|agents| agents.values().any(|t| t.len() == max_on_agent))
            // max_by_key keeps the last maximum; iterate in reverse so ties go to the first zone.
            .rev()
            .max_by_key(|agents| zone_size(agents))
        else {
            break;
        };
        let Some(tasks) = agents.values().rev().max_by_key(|t| t.len()) else {
            break;
        };
        let Some(&oldest) = tasks
            .iter()
            .min_by_key(|&&i| (remaining[i].timestamp, remaining[i].name))
        else {
            break;
        };
        out.push(remaining.swap_remove(oldest).name);
    }
    out
}

#[cfg(test)]
#[allow(clippy::type_complexity)]
mod tests {
    use super::*;

    fn c<'a>(name: &'a str, group: Group, zone: &'a str, agent: &'a str, ts: u64) -> Candidate<'a> {
        Candidate {
            name,
            group,
            zone,
            agent,
            timestamp: ts,
        }
    }

    #[test]
    fn victims_follow_titus_order_and_balancing() {
        use Group::*;
        #[rustfmt::skip]
        let cases: Vec<(&str, Vec<Candidate>, Vec<String>, usize, Vec<&str>)> = vec![
            ("explicit ids go first, in their order",
             vec![c("a", Started, "z1", "i1", 1), c("b", Accepted, "default", "", 1), c("x", Started, "z1", "i2", 9)],
             vec!["x".into(), "gone".into()], 2, vec!["x", "b"]),
            ("dying tasks before accepted ones",
             vec![c("acc", Accepted, "default", "", 1), c("dying", Dying, "z1", "i1", 5)],
             vec![], 1, vec!["dying"]),
            ("accepted before launching before started",
             vec![c("s", Started, "z1", "i1", 1), c("l", Launching, "z1", "i1", 1), c("a", Accepted, "default", "", 9)],
             vec![], 3, vec!["a", "l", "s"]),
            ("oldest status first among unplaced tasks",
             vec![c("new", Accepted, "default", "", 20), c("old", Accepted, "default", "", 10)],
             vec![], 1, vec!["old"]),
            ("the most loaded agent loses a task first",
             vec![c("a1", Started, "z1", "i1", 1), c("b1", Started, "z1", "i2", 1), c("b2", Started, "z1", "i2", 2)],
             vec![], 1, vec!["b1"]),
            ("among zones with a max agent, the zone with most tasks",
             vec![c("a1", Started, "z1", "i1", 1), c("a2", Started, "z1", "i1", 2),
                  c("b1", Started, "z2", "i2", 1), c("b2", Started, "z2", "i2", 2), c("b3", Started, "z2", "i3", 3)],
             vec![], 1, vec!["b1"]),
            ("balancing repeats until enough victims",
             vec![c("a1", Started, "z1", "i1", 1), c("a2", Started, "z1", "i1", 2), c("a3", Started, "z1", "i1", 3),
                  c("b1", Started, "z2", "i2", 1)],
             vec![], 3, vec!["a1", "a2", "a3"]),
            ("zones even out: one from each zone",
             vec![c("a1", Started, "z1", "i1", 1), c("a2", Started, "z1", "i1", 2),
                  c("b1", Started, "z2", "i2", 3), c("b2", Started, "z2", "i2", 4)],
             vec![], 2, vec!["a1", "b1"]),
            ("never more than asked",
             vec![c("a", Accepted, "default", "", 1), c("b", Accepted, "default", "", 2)],
             vec![], 0, vec![]),
            ("never more than there are",
             vec![c("a", Accepted, "default", "", 1)],
             vec![], 5, vec!["a"]),
        ];
        for (name, candidates, explicit, count, expected) in cases {
            assert_eq!(
                select_victims(&candidates, &explicit, count),
                expected,
                "{name}"
            );
        }
    }
}
