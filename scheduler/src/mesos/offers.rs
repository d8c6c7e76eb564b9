//! Mesos offers into the scheduler's [`Agent`] model, and scheduler resources into Mesos
//! resources for a LAUNCH (mesos-offers.md §4, §8.1).
//!
//! All outstanding offers of one host form one agent (Fenzo's lease pool). Same-named scalar
//! resources are summed (reserved and unreserved `cpus` both count; Fenzo's lease object kept
//! only the last one). Revocable resources and persistent or non-`PATH` disks are left out:
//! tasks are not launched on them. Attributes are read as Titus did, by configurable names.

use serde::{Deserialize, Serialize};

use crate::mesos::types::{Attribute, Offer, Resource, ValueType};
use crate::model::{Agent, Tier};
use crate::resources::Resources;

/// Agent attribute names the mapping reads (Titus Mesos-era defaults).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(default)]
pub struct AttributeNames {
    /// Zone, when the offer has no fault domain (`zone`).
    pub zone: String,
    /// Instance type (`itype`).
    pub instance_type: String,
    /// Instance group / ASG (`asg`).
    pub instance_group: String,
    /// EC2 instance id (`id`).
    pub machine_id: String,
    /// CPU model (`cpuModel`).
    pub cpu_model: String,
    /// Kubernetes backend (`backend`).
    pub kube_backend: String,
    /// Tier, `Critical` or `Flex` (`tier`).
    pub tier: String,
}

impl Default for AttributeNames {
    fn default() -> Self {
        AttributeNames {
            zone: "zone".into(),
            instance_type: "itype".into(),
            instance_group: "asg".into(),
            machine_id: "id".into(),
            cpu_model: "cpuModel".into(),
            kube_backend: "backend".into(),
            tier: "tier".into(),
        }
    }
}

/// How offers become agents.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(default)]
pub struct OfferMapping {
    /// Attribute names.
    pub attributes: AttributeNames,
    /// Pod (task) slots of a Mesos agent, which has no such limit of its own.
    pub pods_per_agent: u64,
}

impl Default for OfferMapping {
    fn default() -> Self {
        OfferMapping {
            attributes: AttributeNames::default(),
            pods_per_agent: 1_000,
        }
    }
}

/// Why offers cannot form one agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// No offers given.
    #[error("no offers to map")]
    Empty,
    /// Offers from different hosts.
    #[error("offers of host {expected} and host {found} cannot form one agent")]
    MixedHosts {
        /// The first host.
        expected: String,
        /// Another host.
        found: String,
    },
}

/// The agent the outstanding offers of one host make up. The agent id is the host name (Mesos
/// agent ids change when an agent re-registers); the allocatable resources are the offered
/// ones, so the agent is empty from the scheduler's point of view.
///
/// # Errors
/// [`OfferError`] for no offers or offers of several hosts.
pub fn agent_from_offers(offers: &[&Offer], mapping: &OfferMapping) -> Result<Agent, OfferError> {
    let first = offers.first().ok_or(OfferError::Empty)?;
    if let Some(other) = offers.iter().find(|o| o.hostname != first.hostname) {
        return Err(OfferError::MixedHosts {
            expected: first.hostname.clone(),
            found: other.hostname.clone(),
        });
    }
    let mut sums = [0f64; 5];
    for resource in offers
        .iter()
        .flat_map(|o| o.resources.iter())
        .filter(|r| usable(r))
    {
        let slot = match resource.name.as_str() {
            "cpus" => 0,
            "mem" => 1,
            "disk" => 2,
            "network" => 3,
            "gpus" => 4,
            _ => continue,
        };
        sums[slot] += resource.scalar.map(|s| s.value).unwrap_or(0.0);
    }
    let allocatable = Resources {
        cpu_milli: quantity(sums[0] * 1000.0),
        memory_mb: quantity(sums[1]),
        disk_mb: quantity(sums[2]),
        network_mbps: quantity(sums[3]),
        gpu: quantity(sums[4].floor()),
        pods: mapping.pods_per_agent,
    };
    let mut agent = Agent::new(first.hostname.clone(), allocatable);
    for attribute in &first.attributes {
        agent
            .attributes
            .insert(attribute.name.clone(), attribute_value(attribute));
    }
    let names = &mapping.attributes;
    let attr = |name: &str| agent.attributes.get(name).cloned();
    let domain_zone = first
        .domain
        .as_ref()
        .and_then(|d| d.fault_domain.as_ref())
        .and_then(|f| f.zone.as_ref())
        .map(|z| z.name.clone());
    agent.zone = domain_zone.or_else(|| attr(&names.zone));
    agent.instance_type = attr(&names.instance_type);
    agent.instance_group = attr(&names.instance_group);
    agent.machine_id = attr(&names.machine_id);
    agent.cpu_model = attr(&names.cpu_model);
    agent.kube_backend = attr(&names.kube_backend);
    agent.tier = attr(&names.tier).and_then(|t| parse_tier(&t));
    Ok(agent)
}

/// Scalars the scheduler may hand to a task: not revocable, and no persistent volume or
/// MOUNT/BLOCK/RAW disk (those are all-or-nothing).
fn usable(resource: &Resource) -> bool {
    if resource.kind != ValueType::Scalar || resource.revocable.is_some() {
        return false;
    }
    match &resource.disk {
        None => true,
        Some(disk) => {
            disk.get("persistence").is_none()
                && disk
                    .get("source")
                    .and_then(|s| s.get("type"))
                    .is_none_or(|t| t == "PATH")
        }
    }
}

/// A non-negative finite amount rounded to an integer (Mesos scalars have 3 decimals).
fn quantity(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        value.round() as u64
    } else {
        0
    }
}

fn parse_tier(value: &str) -> Option<Tier> {
    Tier::ALL
        .into_iter()
        .find(|tier| tier.as_str().eq_ignore_ascii_case(value))
}

/// An attribute as a string: TEXT as is, SCALAR in decimal, RANGES as `[a-b,c-d]`, SET as
/// `{a,b}`.
pub fn attribute_value(attribute: &Attribute) -> String {
    match attribute.kind {
        ValueType::Text => attribute
            .text
            .as_ref()
            .map(|t| t.value.clone())
            .unwrap_or_default(),
        ValueType::Scalar => attribute
            .scalar
            .map(|s| s.value.to_string())
            .unwrap_or_default(),
        ValueType::Ranges => {
            let ranges = attribute
                .ranges
                .as_ref()
                .map(|r| r.range.as_slice())
                .unwrap_or_default();
            let parts: Vec<String> = ranges
                .iter()
                .map(|r| format!("{}-{}", r.begin, r.end))
                .collect();
            format!("[{}]", parts.join(","))
        }
        ValueType::Set => {
            let items = attribute
                .set
                .as_ref()
                .map(|s| s.item.join(","))
                .unwrap_or_default();
            format!("{{{items}}}")
        }
        ValueType::Unknown => String::new(),
    }
}

/// Mesos resources for a task asking `resources`: `cpus` and `mem` always (a task needs
/// resources), `disk`, `network` and `gpus` when non-zero.
pub fn task_resources(resources: &Resources) -> Vec<Resource> {
    let mut out = vec![
        Resource::scalar("cpus", resources.cpu_milli as f64 / 1000.0),
        Resource::scalar("mem", resources.memory_mb as f64),
    ];
    for (name, amount) in [
        ("disk", resources.disk_mb),
        ("network", resources.network_mbps),
        ("gpus", resources.gpu),
    ] {
        if amount > 0 {
            out.push(Resource::scalar(name, amount as f64));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The OFFERS example of mesos-offers.md §3.2.
    const OFFER: &str = r#"{
        "id": {"value": "O17"}, "framework_id": {"value": "F"}, "agent_id": {"value": "S3"},
        "hostname": "agent-7.example.internal",
        "domain": {"fault_domain": {"region": {"name": "us-east-1"}, "zone": {"name": "us-east-1a"}}},
        "allocation_info": {"role": "titus"},
        "resources": [
          {"name": "cpus", "type": "SCALAR", "scalar": {"value": 8.0}, "role": "*"},
          {"name": "mem", "type": "SCALAR", "scalar": {"value": 30720.0}, "role": "*"},
          {"name": "disk", "type": "SCALAR", "scalar": {"value": 102400.0}, "role": "*"},
          {"name": "network", "type": "SCALAR", "scalar": {"value": 1000.0}, "role": "*"},
          {"name": "gpus", "type": "SCALAR", "scalar": {"value": 1.0}, "role": "*"},
          {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 32000}]}},
          {"name": "cpus", "type": "SCALAR", "scalar": {"value": 4.0}, "role": "titus", "reservation": {"principal": "titus"}},
          {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2.0}, "revocable": {}},
          {"name": "disk", "type": "SCALAR", "scalar": {"value": 500.0}, "disk": {"persistence": {"id": "v1"}}}
        ],
        "attributes": [
          {"name": "zone", "type": "TEXT", "text": {"value": "ignored-domain-wins"}},
          {"name": "itype", "type": "TEXT", "text": {"value": "p3.2xlarge"}},
          {"name": "asg", "type": "TEXT", "text": {"value": "titusagent-gpu-v001"}},
          {"name": "id", "type": "TEXT", "text": {"value": "i-0abc123def4567890"}},
          {"name": "rack", "type": "SCALAR", "scalar": {"value": 12.0}},
          {"name": "keys", "type": "RANGES", "ranges": {"range": [{"begin": 1000, "end": 1500}]}}
        ]
    }"#;

    #[test]
    fn an_offer_becomes_an_agent_with_summed_resources_and_titus_attributes() {
        let offer: Offer = serde_json::from_str(OFFER).unwrap();
        let agent = agent_from_offers(&[&offer], &OfferMapping::default()).unwrap();
        assert_eq!(agent.id, "agent-7.example.internal");
        assert_eq!(
            agent.allocatable,
            Resources {
                cpu_milli: 12_000,
                memory_mb: 30_720,
                disk_mb: 102_400,
                network_mbps: 1_000,
                gpu: 1,
                pods: 1_000,
            },
            "reserved and unreserved cpus add up; revocable cpus and persistent disk do not"
        );
        assert_eq!(
            agent.zone.as_deref(),
            Some("us-east-1a"),
            "the fault domain wins"
        );
        assert_eq!(agent.instance_type.as_deref(), Some("p3.2xlarge"));
        assert_eq!(agent.instance_group.as_deref(), Some("titusagent-gpu-v001"));
        assert_eq!(agent.machine_id.as_deref(), Some("i-0abc123def4567890"));
        assert_eq!(agent.attributes["rack"], "12");
        assert_eq!(agent.attributes["keys"], "[1000-1500]");
    }

    #[test]
    fn two_offers_of_a_host_add_up_and_other_hosts_are_refused() {
        let a: Offer = serde_json::from_str(OFFER).unwrap();
        let mut b = a.clone();
        b.id.value = "O18".into();
        let agent = agent_from_offers(&[&a, &b], &OfferMapping::default()).unwrap();
        assert_eq!(agent.allocatable.cpu_milli, 24_000);
        b.hostname = "elsewhere".into();
        assert!(matches!(
            agent_from_offers(&[&a, &b], &OfferMapping::default()),
            Err(OfferError::MixedHosts { .. })
        ));
        assert_eq!(
            agent_from_offers(&[], &OfferMapping::default()),
            Err(OfferError::Empty)
        );
    }

    #[test]
    fn task_resources_always_carry_cpus_and_mem() {
        let names = |r: &Resources| -> Vec<String> {
            task_resources(r).into_iter().map(|r| r.name).collect()
        };
        assert_eq!(names(&Resources::ZERO), vec!["cpus", "mem"]);
        let full = Resources {
            cpu_milli: 2_500,
            memory_mb: 512,
            disk_mb: 10,
            network_mbps: 128,
            gpu: 1,
            pods: 1,
        };
        assert_eq!(names(&full), vec!["cpus", "mem", "disk", "network", "gpus"]);
        assert_eq!(task_resources(&full)[0].scalar.unwrap().value, 2.5);
    }
}
