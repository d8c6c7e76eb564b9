//! Query criteria (`filteringCriteria`): parsed once into [`Criteria`], then matched against
//! jobs and tasks.
//!
//! Keys are Titus's (§11.3); an unknown key is refused with `"Unrecognized field(s) [k]"`. Values are
//! trimmed and an empty value means "no filter". String comparisons are exact; `jobType`,
//! `jobState` and `taskStates` ignore case. All criteria are ANDed. For a job, task criteria
//! (`taskIds`, `taskStates`, `needsMigration`) hold when any of its tasks matches them; for a task,
//! job criteria are checked against its job. `taskStateReasons` and `skipSystemFailures` apply to
//! tasks only, as in Titus.

use std::collections::{BTreeMap, BTreeSet};

use titus_crds::TaskReasonCode;
use titus_crds::constants::DEFAULT_CAPACITY_GROUP;

use crate::error::ApiError;
use crate::pb;

/// Every key Titus accepts.
pub const KEYS: [&str; 23] = [
    "jobIds",
    "taskIds",
    "owner",
    "applicationName",
    "appName",
    "capacityGroup",
    "imageName",
    "imageTag",
    "jobGroupStack",
    "jobGroupDetail",
    "jobGroupSequence",
    "jobType",
    "jobState",
    "taskStates",
    "taskStateReasons",
    "attributes",
    "labels",
    "attributes.op",
    "labels.op",
    "needsMigration",
    "skipSystemFailures",
    "platformSidecar",
    "platformSidecarChannel",
];

/// Batch or service, for `jobType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// `batch`.
    Batch,
    /// `service`.
    Service,
}

/// Parsed filtering criteria. `Default` matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Criteria {
    job_ids: Option<BTreeSet<String>>,
    task_ids: Option<BTreeSet<String>>,
    owner: Option<String>,
    application_name: Option<String>,
    capacity_group: Option<String>,
    image_name: Option<String>,
    image_tag: Option<String>,
    job_group_stack: Option<String>,
    job_group_detail: Option<String>,
    job_group_sequence: Option<String>,
    job_type: Option<JobKind>,
    job_state: Option<i32>,
    task_states: Option<BTreeSet<i32>>,
    task_state_reasons: Option<BTreeSet<String>>,
    /// key -> accepted values; an empty set means "key present".
    attributes: BTreeMap<String, BTreeSet<String>>,
    attributes_or: bool,
    needs_migration: bool,
    skip_system_failures: bool,
    platform_sidecar: Option<String>,
    platform_sidecar_channel: Option<String>,
}

fn list(value: &str) -> BTreeSet<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn task_state(name: &str) -> Option<i32> {
    use pb::task_status::TaskState as S;
    [
        S::Accepted,
        S::Launched,
        S::StartInitiated,
        S::Started,
        S::KillInitiated,
        S::Disconnected,
        S::Finished,
    ]
    .into_iter()
    .find(|s| s.as_str_name().eq_ignore_ascii_case(name))
    .map(|s| s as i32)
}

fn job_state(name: &str) -> Option<i32> {
    use pb::job_status::JobState as S;
    [S::Accepted, S::KillInitiated, S::Finished]
        .into_iter()
        .find(|s| s.as_str_name().eq_ignore_ascii_case(name))
        .map(|s| s as i32)
}

impl Criteria {
    /// Parses a `filteringCriteria` map.
    ///
    /// # Errors
    /// `UnrecognizedCriteria` for unknown keys (`cell` included: Titus had no such key),
    /// `InvalidArgument`
    /// for bad `jobType`, `jobState`, `taskStates` or boolean values.
    pub fn parse(map: &BTreeMap<String, String>) -> Result<Criteria, ApiError> {
        let unknown: Vec<String> = map
            .keys()
            .filter(|k| !KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(ApiError::UnrecognizedCriteria(unknown));
        }
        let mut c = Criteria::default();
        for (key, raw) in map {
            let value = raw.trim();
            if value.is_empty() {
                continue;
            }
            let text = Some(value.to_string());
            match key.as_str() {
                "jobIds" => c.job_ids = Some(list(value)),
                "taskIds" => c.task_ids = Some(list(value)),
                "owner" => c.owner = text,
                "applicationName" | "appName" => c.application_name = text,
                "capacityGroup" => c.capacity_group = text,
                "imageName" => c.image_name = text,
                "imageTag" => c.image_tag = text,
                "jobGroupStack" => c.job_group_stack = text,
                "jobGroupDetail" => c.job_group_detail = text,
                "jobGroupSequence" => c.job_group_sequence = text,
                "jobType" => c.job_type = Some(parse_job_type(value)?),
                "jobState" => {
                    c.job_state = Some(job_state(value).ok_or_else(|| {
                        ApiError::InvalidArgument(format!("Invalid jobState value {value}"))
                    })?);
                }
                "taskStates" => c.task_states = parse_task_states(value)?,
                "taskStateReasons" => c.task_state_reasons = Some(list(value)),
                "attributes" | "labels" => c.attributes = parse_attributes(value),
                "attributes.op" | "labels.op" => c.attributes_or = parse_op(value)?,
                "needsMigration" => c.needs_migration = parse_bool(key, value)?,
                "skipSystemFailures" => c.skip_system_failures = parse_bool(key, value)?,
                "platformSidecar" => c.platform_sidecar = text,
                "platformSidecarChannel" => c.platform_sidecar_channel = text,
                _ => return Err(ApiError::UnrecognizedCriteria(vec![key.clone()])),
            }
        }
        Ok(c)
    }

    /// Whether a task criterion is set (a job then needs a matching task).
    pub fn has_task_criteria(&self) -> bool {
        self.task_ids.is_some() || self.task_states.is_some() || self.needs_migration
    }

    /// Whether any job-level criterion is set.
    pub fn has_job_criteria(&self) -> bool {
        self.job_ids.is_some()
            || self.owner.is_some()
            || self.application_name.is_some()
            || self.capacity_group.is_some()
            || self.image_name.is_some()
            || self.image_tag.is_some()
            || self.job_group_stack.is_some()
            || self.job_group_detail.is_some()
            || self.job_group_sequence.is_some()
            || self.job_type.is_some()
            || self.job_state.is_some()
            || !self.attributes.is_empty()
            || self.platform_sidecar.is_some()
            || self.platform_sidecar_channel.is_some()
    }

    /// The job ids named by `jobIds`, if any (lets callers look jobs up directly).
    pub fn job_ids(&self) -> Option<&BTreeSet<String>> {
        self.job_ids.as_ref()
    }

    /// Whether a job matches; `tasks` are its tasks (used only for task criteria).
    pub fn matches_job<'a>(
        &self,
        job: &pb::Job,
        mut tasks: impl Iterator<Item = &'a pb::Task>,
    ) -> bool {
        self.matches_job_fields(job)
            && (!self.has_task_criteria() || tasks.any(|t| self.matches_task_fields(t, true)))
    }

    /// Whether a task matches; `job` is its job (job criteria fail when it is unknown).
    pub fn matches_task(&self, task: &pb::Task, job: Option<&pb::Job>) -> bool {
        if let Some(ids) = &self.job_ids
            && !ids.contains(&task.job_id)
        {
            return false;
        }
        let job_ok = match job {
            Some(job) => self.matches_job_fields(job),
            None => !self.has_job_criteria(),
        };
        job_ok && self.matches_task_fields(task, false)
    }

    fn matches_job_fields(&self, job: &pb::Job) -> bool {
        if !self.has_job_criteria() {
            return true;
        }
        let empty = pb::JobDescriptor::default();
        let d = job.job_descriptor.as_ref().unwrap_or(&empty);
        let container = d.container.as_ref();
        let image = container.and_then(|c| c.image.as_ref());
        let group = d.job_group_info.as_ref();
        let capacity_group = if d.capacity_group.is_empty() {
            DEFAULT_CAPACITY_GROUP
        } else {
            d.capacity_group.as_str()
        };
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref()
                .is_none_or(|w| w == have.unwrap_or_default())
        };
        let state = job.status.as_ref().map_or(0, |s| s.state);
        let kind = match d.job_spec {
            Some(pb::job_descriptor::JobSpec::Batch(_)) => Some(JobKind::Batch),
            Some(pb::job_descriptor::JobSpec::Service(_)) => Some(JobKind::Service),
            None => None,
        };
        self.job_ids
            .as_ref()
            .is_none_or(|ids| ids.contains(&job.id))
            && eq(&self.owner, d.owner.as_ref().map(|o| o.team_email.as_str()))
            && eq(&self.application_name, Some(&d.application_name))
            && eq(&self.capacity_group, Some(capacity_group))
            && eq(&self.image_name, image.map(|i| i.name.as_str()))
            && eq(&self.image_tag, image.map(|i| i.tag.as_str()))
            && eq(&self.job_group_stack, group.map(|g| g.stack.as_str()))
            && eq(&self.job_group_detail, group.map(|g| g.detail.as_str()))
            && eq(&self.job_group_sequence, group.map(|g| g.sequence.as_str()))
            && self.job_type.is_none_or(|t| Some(t) == kind)
            && self.job_state.is_none_or(|s| s == state)
            && self.matches_attributes(&d.attributes)
            && self.matches_sidecars(&d.platform_sidecars)
    }

    fn matches_attributes(&self, attributes: &BTreeMap<String, String>) -> bool {
        if self.attributes.is_empty() {
            return true;
        }
        let one = |(key, values): (&String, &BTreeSet<String>)| match attributes.get(key) {
            Some(v) => values.is_empty() || values.contains(v),
            None => false,
        };
        if self.attributes_or {
            self.attributes.iter().any(one)
        } else {
            self.attributes.iter().all(one)
        }
    }

    fn matches_sidecars(&self, sidecars: &[pb::PlatformSidecar]) -> bool {
        let by_name = self
            .platform_sidecar
            .as_ref()
            .is_none_or(|n| sidecars.iter().any(|s| &s.name == n));
        let by_channel = self
            .platform_sidecar_channel
            .as_ref()
            .is_none_or(|c| sidecars.iter().any(|s| &s.channel == c));
        by_name && by_channel
    }

    /// Task criteria; `for_job` leaves out the task-only ones, as Titus did for job queries.
    fn matches_task_fields(&self, task: &pb::Task, for_job: bool) -> bool {
        let (state, reason) = task
            .status
            .as_ref()
            .map_or((0, ""), |s| (s.state, s.reason_code.as_str()));
        let finished = state == pb::task_status::TaskState::Finished as i32;
        let ids_ok = self
            .task_ids
            .as_ref()
            .is_none_or(|ids| ids.contains(&task.id));
        let states_ok = self.task_states.as_ref().is_none_or(|s| s.contains(&state));
        let migration_ok = !self.needs_migration
            || task
                .migration_details
                .as_ref()
                .is_some_and(|m| m.needs_migration);
        if for_job {
            return ids_ok && states_ok && migration_ok;
        }
        let reasons_ok = self
            .task_state_reasons
            .as_ref()
            .is_none_or(|r| r.contains(reason));
        let system_failure = finished && TaskReasonCode::parse(reason).is_system_error();
        ids_ok
            && states_ok
            && migration_ok
            && reasons_ok
            && !(self.skip_system_failures && system_failure)
    }
}

fn parse_job_type(value: &str) -> Result<JobKind, ApiError> {
    if value.eq_ignore_ascii_case("batch") {
        Ok(JobKind::Batch)
    } else if value.eq_ignore_ascii_case("service") {
        Ok(JobKind::Service)
    } else {
        Err(ApiError::InvalidArgument(format!(
            "Invalid jobType value {value}"
        )))
    }
}

fn parse_task_states(value: &str) -> Result<Option<BTreeSet<i32>>, ApiError> {
    let names = list(value);
    if names.iter().any(|n| n.eq_ignore_ascii_case("any")) {
        return Ok(None);
    }
    names
        .iter()
        .map(|n| {
            task_state(n)
                .ok_or_else(|| ApiError::InvalidArgument(format!("Invalid task state value {n}")))
        })
        .collect::<Result<BTreeSet<_>, _>>()
        .map(|set| (!set.is_empty()).then_some(set))
}

fn parse_attributes(value: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.split_once(':') {
            Some((k, v)) => {
                out.entry(k.trim().to_string())
                    .or_default()
                    .insert(v.trim().to_string());
            }
            None => {
                out.entry(item.to_string()).or_default();
            }
        }
    }
    out
}

fn parse_op(value: &str) -> Result<bool, ApiError> {
    if value.eq_ignore_ascii_case("or") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("and") {
        Ok(false)
    } else {
        Err(ApiError::InvalidArgument(format!(
            "Invalid attributes.op value {value} (expected 'and' or 'or')"
        )))
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ApiError> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ApiError::InvalidArgument(format!(
            "Invalid {key} value {value} (expected true or false)"
        )))
    }
}

#[cfg(test)]
#[path = "criteria_tests.rs"]
mod tests;
