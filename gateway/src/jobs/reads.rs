//! The read RPCs (`FindJob(s)`, `FindTask(s)`), as pure functions over a cache view.
//!
//! Finished jobs and tasks that still exist as objects are found like active ones: Titus users
//! relied on finding finished jobs through the gateway's archive fallback, and here a finished
//! batch job stays a `TitusJob` in state `Finished`.

use titus_crds::ids::is_uuid;

use crate::cache::{CacheView, TaskEntry};
use crate::error::ApiError;
use crate::pb;
use crate::query::{Criteria, PageRequest, Projection, SortKey, paginate};

/// Refuses a job id that is not a UUID.
pub fn check_job_id(id: &str) -> Result<(), ApiError> {
    if is_uuid(id) {
        Ok(())
    } else {
        Err(ApiError::InvalidJobId(id.to_string()))
    }
}

/// Refuses a task id that is not a UUID.
pub fn check_task_id(id: &str) -> Result<(), ApiError> {
    if is_uuid(id) {
        Ok(())
    } else {
        Err(ApiError::InvalidTaskId(id.to_string()))
    }
}

/// `FindJob`.
pub fn find_job(view: &CacheView<'_>, id: &str) -> Result<pb::Job, ApiError> {
    check_job_id(id)?;
    view.job(id)
        .map(|j| (*j.proto).clone())
        .ok_or_else(|| ApiError::JobNotFound(id.to_string()))
}

/// `FindTask`.
pub fn find_task(view: &CacheView<'_>, id: &str) -> Result<pb::Task, ApiError> {
    check_task_id(id)?;
    view.task(id)
        .map(|t| (*t.proto).clone())
        .ok_or_else(|| ApiError::TaskNotFound(id.to_string()))
}

/// The jobs matching `criteria`, sorted.
pub fn matching_jobs<'a>(
    view: &CacheView<'a>,
    criteria: &Criteria,
) -> Vec<(&'a SortKey, &'a pb::Job)> {
    let matches = |j: &'a crate::cache::JobEntry| {
        let tasks = view.tasks_of(&j.key.1);
        criteria
            .matches_job(&j.proto, tasks.iter().map(|t| t.proto.as_ref()))
            .then_some((&j.key, j.proto.as_ref()))
    };
    match criteria.job_ids() {
        Some(ids) => {
            let mut found: Vec<_> = ids
                .iter()
                .filter_map(|id| view.job(id))
                .filter_map(matches)
                .collect();
            found.sort_by(|a, b| a.0.cmp(b.0));
            found
        }
        None => view.jobs().filter_map(matches).collect(),
    }
}

/// The tasks matching `criteria`, sorted.
pub fn matching_tasks<'a>(
    view: &CacheView<'a>,
    criteria: &Criteria,
) -> Vec<(&'a SortKey, &'a pb::Task)> {
    let matches = |t: &'a TaskEntry| {
        let job = view.job(&t.proto.job_id).map(|j| j.proto.as_ref());
        criteria
            .matches_task(&t.proto, job)
            .then_some((&t.key, t.proto.as_ref()))
    };
    match criteria.job_ids() {
        Some(ids) => {
            let mut found: Vec<_> = ids
                .iter()
                .flat_map(|id| view.tasks_of(id))
                .filter_map(matches)
                .collect();
            found.sort_by(|a, b| a.0.cmp(b.0));
            found
        }
        None => view.tasks().filter_map(matches).collect(),
    }
}

/// `FindJobs`.
pub fn find_jobs(
    view: &CacheView<'_>,
    query: &pb::JobQuery,
) -> Result<pb::JobQueryResult, ApiError> {
    let criteria = Criteria::parse(&query.filtering_criteria)?;
    let page = PageRequest::from_proto(query.page.as_ref())?;
    let projection = Projection::job(&query.fields);
    let (items, pagination) = paginate(matching_jobs(view, &criteria), &page);
    Ok(pb::JobQueryResult {
        items: items
            .into_iter()
            .map(|j| project(projection.as_ref(), j))
            .collect(),
        pagination: Some(pagination),
    })
}

/// `FindTasks`.
pub fn find_tasks(
    view: &CacheView<'_>,
    query: &pb::TaskQuery,
) -> Result<pb::TaskQueryResult, ApiError> {
    let criteria = Criteria::parse(&query.filtering_criteria)?;
    let page = PageRequest::from_proto(query.page.as_ref())?;
    let projection = Projection::task(&query.fields);
    let (items, pagination) = paginate(matching_tasks(view, &criteria), &page);
    Ok(pb::TaskQueryResult {
        items: items
            .into_iter()
            .map(|t| project(projection.as_ref(), t))
            .collect(),
        pagination: Some(pagination),
    })
}

/// A copy of `message`, trimmed when there is a projection.
pub fn project<M: prost::Message + Default + Clone>(
    projection: Option<&Projection>,
    message: &M,
) -> M {
    match projection {
        Some(p) => p.apply(message),
        None => message.clone(),
    }
}
