//! The cache's data and the pure apply step: watcher event in, changes out.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use titus_crds::{TitusJob, TitusTask};

use super::{Change, Event, resource_version};
use crate::pb;
use crate::query::SortKey;
use crate::translate::{job_accepted_ms, job_to_proto, task_accepted_ms, task_to_proto};

/// A cached job: the object, its rendering and its sort key.
#[derive(Clone, Debug)]
pub struct JobEntry {
    /// The `TitusJob` as last seen.
    pub object: Arc<TitusJob>,
    /// The Titus `Job`.
    pub proto: Arc<pb::Job>,
    /// (creation ms, job id).
    pub key: SortKey,
    /// `metadata.resourceVersion` as a number (0 when not numeric).
    pub resource_version: u64,
}

/// A cached task: the object, its rendering and its sort key.
#[derive(Clone, Debug)]
pub struct TaskEntry {
    /// The `TitusTask` as last seen.
    pub object: Arc<TitusTask>,
    /// The Titus `Task`.
    pub proto: Arc<pb::Task>,
    /// (creation ms, task id).
    pub key: SortKey,
    /// `metadata.resourceVersion` as a number (0 when not numeric).
    pub resource_version: u64,
}

#[derive(Debug, Default)]
pub(super) struct State {
    seq: u64,
    jobs: HashMap<String, JobEntry>,
    job_order: BTreeSet<SortKey>,
    job_names: HashMap<String, String>,
    tasks: HashMap<String, TaskEntry>,
    task_order: BTreeSet<SortKey>,
    tasks_by_job: HashMap<String, BTreeSet<String>>,
    jobs_synced: bool,
    tasks_synced: bool,
    job_relist: Option<HashSet<String>>,
    task_relist: Option<HashSet<String>>,
}

const FINISHED_JOB: i32 = pb::job_status::JobState::Finished as i32;
const FINISHED_TASK: i32 = pb::task_status::TaskState::Finished as i32;

impl State {
    pub(super) fn seq(&self) -> u64 {
        self.seq
    }

    pub(super) fn is_synced(&self) -> bool {
        self.jobs_synced && self.tasks_synced
    }

    pub(super) fn view(&self) -> CacheView<'_> {
        CacheView { state: self }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub(super) fn apply_job_event(&mut self, event: Event<TitusJob>, now_ms: u64) -> Vec<Change> {
        match event {
            Event::Init => {
                self.job_relist = Some(HashSet::new());
                Vec::new()
            }
            Event::InitApply(job) => {
                if let (Some(seen), Some(id)) = (self.job_relist.as_mut(), job.job_id()) {
                    seen.insert(id.to_string());
                }
                self.upsert_job(job, now_ms)
            }
            Event::InitDone => {
                let seen = self.job_relist.take().unwrap_or_default();
                let gone: Vec<String> = self
                    .jobs
                    .keys()
                    .filter(|id| !seen.contains(*id))
                    .cloned()
                    .collect();
                self.jobs_synced = true;
                gone.iter()
                    .flat_map(|id| self.remove_job(id, now_ms))
                    .collect()
            }
            Event::Apply(job) => self.upsert_job(job, now_ms),
            Event::Delete(job) => match job.job_id() {
                Some(id) => self.remove_job(id, now_ms),
                None => Vec::new(),
            },
        }
    }

    pub(super) fn apply_task_event(&mut self, event: Event<TitusTask>, now_ms: u64) -> Vec<Change> {
        match event {
            Event::Init => {
                self.task_relist = Some(HashSet::new());
                Vec::new()
            }
            Event::InitApply(task) => {
                if let (Some(seen), Some(id)) = (self.task_relist.as_mut(), task.task_id()) {
                    seen.insert(id.to_string());
                }
                self.upsert_task(task)
            }
            Event::InitDone => {
                let seen = self.task_relist.take().unwrap_or_default();
                let gone: Vec<String> = self
                    .tasks
                    .keys()
                    .filter(|id| !seen.contains(*id))
                    .cloned()
                    .collect();
                self.tasks_synced = true;
                gone.iter()
                    .flat_map(|id| self.remove_task(id, now_ms))
                    .collect()
            }
            Event::Apply(task) => self.upsert_task(task),
            Event::Delete(task) => match task.task_id() {
                Some(id) => self.remove_task(id, now_ms),
                None => Vec::new(),
            },
        }
    }

    fn upsert_job(&mut self, job: TitusJob, now_ms: u64) -> Vec<Change> {
        let Some(id) = job.job_id().map(str::to_string) else {
            return Vec::new();
        };
        let name = job.metadata.name.clone().unwrap_or_default();
        let mut changes = Vec::new();
        // The same name now holding another job: the old one was deleted and re-created.
        if let Some(previous) = self.job_names.get(&name).cloned()
            && previous != id
        {
            changes.extend(self.remove_job(&previous, now_ms));
        }
        let rv = resource_version(&job.metadata);
        let existing = self.jobs.get(&id);
        if existing.is_some_and(|e| rv != 0 && e.resource_version == rv) {
            return changes;
        }
        let proto = Arc::new(job_to_proto(&job));
        let unchanged = existing.is_some_and(|e| same_job(&e.proto, &proto));
        let key = (job_accepted_ms(&job), id.clone());
        if let Some(old) = existing {
            self.job_order.remove(&old.key);
        }
        self.job_order.insert(key.clone());
        self.job_names.insert(name, id.clone());
        self.jobs.insert(
            id,
            JobEntry {
                object: Arc::new(job),
                proto: proto.clone(),
                key,
                resource_version: rv,
            },
        );
        if !unchanged {
            let seq = self.next_seq();
            changes.push(Change::Job {
                seq,
                job: proto,
                archived: false,
            });
        }
        changes
    }

    fn remove_job(&mut self, id: &str, now_ms: u64) -> Vec<Change> {
        let Some(entry) = self.jobs.remove(id) else {
            return Vec::new();
        };
        self.job_order.remove(&entry.key);
        if let Some(name) = &entry.object.metadata.name
            && self.job_names.get(name).is_some_and(|mapped| mapped == id)
        {
            self.job_names.remove(name);
        }
        let mut last = entry.proto;
        let mut changes = Vec::new();
        if last.status.as_ref().is_none_or(|s| s.state != FINISHED_JOB) {
            last = Arc::new(finished_job(&last, now_ms));
            let seq = self.next_seq();
            changes.push(Change::Job {
                seq,
                job: last.clone(),
                archived: false,
            });
        }
        let seq = self.next_seq();
        changes.push(Change::Job {
            seq,
            job: last,
            archived: true,
        });
        changes
    }

    fn upsert_task(&mut self, task: TitusTask) -> Vec<Change> {
        let Some(id) = task.task_id().map(str::to_string) else {
            return Vec::new();
        };
        let rv = resource_version(&task.metadata);
        let existing = self.tasks.get(&id);
        if existing.is_some_and(|e| rv != 0 && e.resource_version == rv) {
            return Vec::new();
        }
        let proto = Arc::new(task_to_proto(&task));
        let unchanged = existing.is_some_and(|e| same_task(&e.proto, &proto));
        let moved = existing.is_some_and(|e| e.proto.job_id != proto.job_id);
        let key = (task_accepted_ms(&task), id.clone());
        if let Some(old) = existing {
            let (old_key, old_job) = (old.key.clone(), old.proto.job_id.clone());
            self.task_order.remove(&old_key);
            self.unindex_task(&old_job, &id);
        }
        self.task_order.insert(key.clone());
        self.tasks_by_job
            .entry(proto.job_id.clone())
            .or_default()
            .insert(id.clone());
        self.tasks.insert(
            id,
            TaskEntry {
                object: Arc::new(task),
                proto: proto.clone(),
                key,
                resource_version: rv,
            },
        );
        if unchanged {
            return Vec::new();
        }
        let job = self.jobs.get(&proto.job_id).map(|j| j.proto.clone());
        let seq = self.next_seq();
        vec![Change::Task {
            seq,
            task: proto,
            job,
            archived: false,
            moved_from_another_job: moved,
        }]
    }

    fn unindex_task(&mut self, job_id: &str, task_id: &str) {
        if let Some(ids) = self.tasks_by_job.get_mut(job_id) {
            ids.remove(task_id);
            if ids.is_empty() {
                self.tasks_by_job.remove(job_id);
            }
        }
    }

    fn remove_task(&mut self, id: &str, now_ms: u64) -> Vec<Change> {
        let Some(entry) = self.tasks.remove(id) else {
            return Vec::new();
        };
        self.task_order.remove(&entry.key);
        self.unindex_task(&entry.proto.job_id, id);
        let job = self.jobs.get(&entry.proto.job_id).map(|j| j.proto.clone());
        let mut last = entry.proto;
        let mut changes = Vec::new();
        if last
            .status
            .as_ref()
            .is_none_or(|s| s.state != FINISHED_TASK)
        {
            last = Arc::new(finished_task(&last, now_ms));
            let seq = self.next_seq();
            changes.push(Change::Task {
                seq,
                task: last.clone(),
                job: job.clone(),
                archived: false,
                moved_from_another_job: false,
            });
        }
        let seq = self.next_seq();
        changes.push(Change::Task {
            seq,
            task: last,
            job,
            archived: true,
            moved_from_another_job: false,
        });
        changes
    }
}

/// Equal for Titus clients apart from the version: a change of metadata only (finalizers,
/// annotations, labels) moves `version` but is not worth an event.
fn same_job(a: &pb::Job, b: &pb::Job) -> bool {
    a.id == b.id
        && a.job_descriptor == b.job_descriptor
        && a.status == b.status
        && a.status_history == b.status_history
}

/// See [`same_job`].
fn same_task(a: &pb::Task, b: &pb::Task) -> bool {
    pb::Task {
        version: None,
        ..a.clone()
    } == pb::Task {
        version: None,
        ..b.clone()
    }
}

/// The last state of a job that left without a `Finished` status: `Finished`/`normal` (Titus's
/// job finish reason), previous status kept in the history.
fn finished_job(job: &pb::Job, now_ms: u64) -> pb::Job {
    let mut out = job.clone();
    if let Some(current) = out.status.take() {
        out.status_history.push(current);
    }
    out.status = Some(pb::JobStatus {
        state: FINISHED_JOB,
        reason_code: "normal".to_string(),
        reason_message: "the job's TitusJob object was deleted".to_string(),
        timestamp: now_ms,
    });
    out.version = Some(pb::Version { timestamp: now_ms });
    out
}

/// The last state of a task that left without a `Finished` status: `Finished`/`killed`.
fn finished_task(task: &pb::Task, now_ms: u64) -> pb::Task {
    let mut out = task.clone();
    if let Some(current) = out.status.take() {
        out.status_history.push(current);
    }
    out.status = Some(pb::TaskStatus {
        state: FINISHED_TASK,
        reason_code: "killed".to_string(),
        reason_message: "the task's TitusTask object was deleted".to_string(),
        timestamp: now_ms,
        container_state: Vec::new(),
    });
    out.version = Some(pb::Version { timestamp: now_ms });
    out
}

/// A read-only, consistent view of the cache.
#[derive(Debug)]
pub struct CacheView<'a> {
    state: &'a State,
}

impl<'a> CacheView<'a> {
    /// The job with this Titus job id.
    pub fn job(&self, id: &str) -> Option<&'a JobEntry> {
        self.state.jobs.get(id)
    }

    /// The task with this Titus task id.
    pub fn task(&self, id: &str) -> Option<&'a TaskEntry> {
        self.state.tasks.get(id)
    }

    /// The job stored under this object name.
    pub fn job_by_name(&self, name: &str) -> Option<&'a JobEntry> {
        self.state
            .job_names
            .get(name)
            .and_then(|id| self.state.jobs.get(id))
    }

    /// Every job, sorted by (creation time, id).
    pub fn jobs(&self) -> impl Iterator<Item = &'a JobEntry> + 'a {
        let state = self.state;
        state
            .job_order
            .iter()
            .filter_map(move |(_, id)| state.jobs.get(id))
    }

    /// Every task, sorted by (creation time, id).
    pub fn tasks(&self) -> impl Iterator<Item = &'a TaskEntry> + 'a {
        let state = self.state;
        state
            .task_order
            .iter()
            .filter_map(move |(_, id)| state.tasks.get(id))
    }

    /// The tasks of one job, sorted by (creation time, id).
    pub fn tasks_of(&self, job_id: &str) -> Vec<&'a TaskEntry> {
        let mut tasks: Vec<&TaskEntry> = self
            .state
            .tasks_by_job
            .get(job_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.state.tasks.get(id))
            .collect();
        tasks.sort_by(|a, b| a.key.cmp(&b.key));
        tasks
    }

    /// Number of jobs not yet `Finished`.
    pub fn active_job_count(&self) -> usize {
        self.state
            .jobs
            .values()
            .filter(|j| {
                j.proto
                    .status
                    .as_ref()
                    .is_none_or(|s| s.state != FINISHED_JOB)
            })
            .count()
    }

    /// Sequence number of the last applied change.
    pub fn seq(&self) -> u64 {
        self.state.seq
    }

    /// Whether both watchers have completed their first list.
    pub fn is_synced(&self) -> bool {
        self.state.is_synced()
    }
}
