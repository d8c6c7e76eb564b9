//! What the scheduler reads of `TitusJob`s and `CapacityGroup`s. Pure.
//!
//! From a job: its id, capacity group, type and the hard and soft constraints of its container.
//! From capacity groups: the specs the tiered queue orders by, and each group's tier, looked up
//! by Titus name ignoring case (jobs and pod labels spell names differently: the pod label is
//! lower-cased).

use std::collections::{BTreeMap, HashMap};

use titus_crds::constants::DEFAULT_CAPACITY_GROUP;
use titus_crds::{CapacityGroup, TitusJob};

use crate::model::{CapacityGroupSpec, JobType, Tier};
use crate::resources::Resources;

/// The scheduling-relevant part of a `TitusJob`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobView {
    /// Titus job id (`status.jobId`, else `metadata.uid`).
    pub job_id: String,
    /// Capacity group name as the job gives it (`DEFAULT` when empty).
    pub capacity_group: String,
    /// Batch or service.
    pub job_type: JobType,
    /// Hard constraints.
    pub hard_constraints: BTreeMap<String, String>,
    /// Soft constraints.
    pub soft_constraints: BTreeMap<String, String>,
}

/// The view of a job; `None` without a name.
pub fn job_view(job: &TitusJob) -> Option<JobView> {
    job.metadata.name.as_ref()?;
    let spec = &job.spec;
    let job_type = match spec.job_type() {
        Some(titus_crds::JobType::Service) => JobType::Service,
        Some(titus_crds::JobType::Batch) | None => JobType::Batch,
    };
    Some(JobView {
        job_id: job.job_id().unwrap_or_default().to_string(),
        capacity_group: spec.effective_capacity_group().to_string(),
        job_type,
        hard_constraints: spec.container.hard_constraints.constraints.clone(),
        soft_constraints: spec.container.soft_constraints.constraints.clone(),
    })
}

/// Capacity groups by Titus name, ignoring case.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupIndex {
    /// Object key (`namespace/name`) → spec.
    by_object: BTreeMap<String, CapacityGroupSpec>,
    /// Lower-cased Titus name → spec (the first object by key wins a clash).
    by_name: HashMap<String, CapacityGroupSpec>,
    specs: Vec<CapacityGroupSpec>,
}

impl GroupIndex {
    /// Adds or replaces the group stored under `key`.
    pub fn upsert(&mut self, key: &str, group: &CapacityGroup) {
        self.by_object
            .insert(key.to_string(), capacity_group_spec(group));
        self.rebuild();
    }

    /// Removes the group stored under `key`.
    pub fn remove(&mut self, key: &str) -> bool {
        let removed = self.by_object.remove(key).is_some();
        if removed {
            self.rebuild();
        }
        removed
    }

    /// Object keys currently stored.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.by_object.keys()
    }

    fn rebuild(&mut self) {
        self.by_name.clear();
        for spec in self.by_object.values() {
            self.by_name
                .entry(spec.name.to_lowercase())
                .or_insert_with(|| spec.clone());
        }
        let mut specs: Vec<CapacityGroupSpec> = self.by_name.values().cloned().collect();
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        self.specs = specs;
    }

    /// The specs, one per Titus name.
    pub fn specs(&self) -> &[CapacityGroupSpec] {
        &self.specs
    }

    /// The canonical name and tier of a group named `name` in any case. An unknown name falls
    /// back to `DEFAULT` (Titus: unknown capacity groups are not rejected, placement uses
    /// `DEFAULT`), which is `Flex` unless a `DEFAULT` object says otherwise.
    pub fn resolve(&self, name: &str) -> (String, Tier) {
        let known = |n: &str| self.by_name.get(&n.to_lowercase());
        match known(name).or_else(|| known(DEFAULT_CAPACITY_GROUP)) {
            Some(spec) => (spec.name.clone(), spec.tier),
            None => (DEFAULT_CAPACITY_GROUP.to_string(), Tier::Flex),
        }
    }
}

/// A `CapacityGroup` as the placement core's spec.
pub fn capacity_group_spec(group: &CapacityGroup) -> CapacityGroupSpec {
    let d = &group.spec.resource_dimension;
    CapacityGroupSpec {
        name: group.titus_name().to_string(),
        tier: tier(group.spec.tier),
        instance: Resources {
            cpu_milli: (d.cpu.max(0.0) * 1000.0).round() as u64,
            memory_mb: u64::from(d.memory_mb),
            disk_mb: u64::from(d.disk_mb),
            network_mbps: u64::from(d.network_mbps),
            gpu: u64::from(d.gpu),
            pods: 0,
        },
        instance_count: u64::from(group.spec.instance_count),
    }
}

/// The placement core's tier for an API tier.
pub fn tier(tier: titus_crds::Tier) -> Tier {
    match tier {
        titus_crds::Tier::Critical => Tier::Critical,
        titus_crds::Tier::Flex => Tier::Flex,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use titus_crds::{CapacityGroupSpec as GroupSpec, ResourceDimension, TitusJobSpec};

    use super::*;

    fn group(name: &str, titus_name: &str, tier: titus_crds::Tier) -> CapacityGroup {
        CapacityGroup::new(
            name,
            GroupSpec {
                capacity_group_name: titus_name.into(),
                tier,
                resource_dimension: ResourceDimension {
                    cpu: 2.5,
                    memory_mb: 4096,
                    ..ResourceDimension::default()
                },
                instance_count: 10,
                ..GroupSpec::default()
            },
        )
    }

    #[test]
    fn a_job_gives_its_id_group_type_and_constraints() {
        let mut job = TitusJob::new(
            "web",
            TitusJobSpec::service(1, 3, 5)
                .with_capacity_group("Web_App")
                .with_hard_constraint("zoneBalance", "true")
                .with_soft_constraint("uniqueHost", "true"),
        );
        job.metadata.uid = Some("uid-1".into());
        let v = job_view(&job).unwrap();
        assert_eq!(v.job_id, "uid-1");
        assert_eq!(v.capacity_group, "Web_App");
        assert_eq!(v.job_type, JobType::Service);
        assert_eq!(v.hard_constraints.get("zoneBalance").unwrap(), "true");
        assert_eq!(v.soft_constraints.get("uniqueHost").unwrap(), "true");
        let batch = TitusJob::new("b", TitusJobSpec::batch(2));
        let v = job_view(&batch).unwrap();
        assert_eq!(v.capacity_group, DEFAULT_CAPACITY_GROUP);
        assert_eq!(v.job_type, JobType::Batch);
    }

    #[test]
    fn groups_resolve_by_titus_name_ignoring_case() {
        let mut index = GroupIndex::default();
        index.upsert(
            "ns/web-app",
            &group("web-app", "Web_App", titus_crds::Tier::Critical),
        );
        index.upsert("ns/batch", &group("batch", "", titus_crds::Tier::Flex));
        assert_eq!(index.resolve("web_app"), ("Web_App".into(), Tier::Critical));
        assert_eq!(index.resolve("BATCH"), ("batch".into(), Tier::Flex));
        assert_eq!(
            index.resolve("default"),
            (DEFAULT_CAPACITY_GROUP.into(), Tier::Flex)
        );
        assert_eq!(
            index.resolve("other"),
            (DEFAULT_CAPACITY_GROUP.into(), Tier::Flex),
            "unknown groups fall back to DEFAULT"
        );
        let spec = &index.specs()[0];
        assert_eq!(spec.name, "Web_App");
        assert_eq!(spec.instance.cpu_milli, 2500);
        assert_eq!(spec.instance_count, 10);
        index.upsert(
            "ns/default",
            &group("default", "", titus_crds::Tier::Critical),
        );
        assert_eq!(
            index.resolve("other"),
            ("default".into(), Tier::Critical),
            "the DEFAULT object decides the fallback's tier"
        );
        assert!(index.remove("ns/web-app"));
        assert_eq!(index.resolve("web_app"), ("default".into(), Tier::Critical));
        assert_eq!(index.specs().len(), 2);
    }
}
