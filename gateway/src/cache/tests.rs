use super::*;
use titus_crds::job::status::{JobState, TitusJobStatus};
use titus_crds::task::TitusTaskSpec;
use titus_crds::{TaskState, TitusJobSpec, TitusTaskStatus};

const JOB: &str = "0c6f7c1e-4a4f-4f3a-9c53-1a2b3c4d5e6f";
const OTHER_JOB: &str = "11111111-2222-4333-8444-555555555555";
const TASK: &str = "8d1f2e3a-1b2c-4d5e-8f90-a1b2c3d4e5f6";

fn job(uid: &str, name: &str, rv: u64) -> TitusJob {
    let mut job = TitusJob::new(name, TitusJobSpec::batch(1));
    job.metadata.uid = Some(uid.to_string());
    job.metadata.resource_version = Some(rv.to_string());
    job
}

fn finished(mut job: TitusJob) -> TitusJob {
    job.status = Some(TitusJobStatus {
        state: JobState::Finished,
        timestamp: 5,
        ..TitusJobStatus::default()
    });
    job
}

fn task(job_id: &str, rv: u64, state: TaskState) -> TitusTask {
    let mut task = TitusTask::new(
        TASK,
        TitusTaskSpec {
            job_id: job_id.to_string(),
            ..TitusTaskSpec::default()
        },
    );
    task.metadata.resource_version = Some(rv.to_string());
    task.status = Some(TitusTaskStatus {
        state,
        timestamp: rv,
        ..TitusTaskStatus::default()
    });
    task
}

fn kinds(changes: &[Change]) -> Vec<(&'static str, u64, bool)> {
    changes
        .iter()
        .map(|c| match c {
            Change::Job { seq, archived, .. } => ("job", *seq, *archived),
            Change::Task { seq, archived, .. } => ("task", *seq, *archived),
        })
        .collect()
}

fn synced() -> Cache {
    let cache = Cache::new(64);
    cache.apply_job_event(Event::Init);
    cache.apply_job_event(Event::InitDone);
    cache.apply_task_event(Event::Init);
    cache.apply_task_event(Event::InitDone);
    cache
}

#[test]
fn the_cache_is_ready_only_after_both_lists() {
    let cache = Cache::new(16);
    cache.apply_job_event(Event::Init);
    cache.apply_job_event(Event::InitDone);
    assert!(!cache.is_ready());
    cache.apply_task_event(Event::Init);
    cache.apply_task_event(Event::InitDone);
    assert!(cache.is_ready());
}

#[test]
fn every_change_is_numbered_and_repeats_are_dropped() {
    let cache = synced();
    let (_, seq, mut rx) = cache.snapshot_and_subscribe(|v| v.jobs().count());
    assert_eq!(seq, 0);
    cache.apply_job_event(Event::Apply(job(JOB, "a", 1)));
    cache.apply_job_event(Event::Apply(job(JOB, "a", 1)));
    cache.apply_task_event(Event::Apply(task(JOB, 2, TaskState::Accepted)));
    cache.apply_task_event(Event::Apply(task(JOB, 3, TaskState::Started)));
    let received: Vec<Arc<Change>> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    let received: Vec<Change> = received.iter().map(|c| (**c).clone()).collect();
    assert_eq!(
        kinds(&received),
        vec![("job", 1, false), ("task", 2, false), ("task", 3, false)]
    );
    match &received[1] {
        Change::Task { job, .. } => assert_eq!(job.as_ref().map(|j| j.id.as_str()), Some(JOB)),
        other => panic!("expected a task change, got {other:?}"),
    }
    cache.read(|v| {
        assert_eq!(v.tasks_of(JOB).len(), 1);
        assert_eq!(v.job_by_name("a").map(|j| j.key.1.as_str()), Some(JOB));
    });
}

#[test]
fn an_object_that_leaves_unfinished_gets_a_finished_update_before_its_archived_event() {
    let cache = synced();
    cache.apply_job_event(Event::Apply(job(JOB, "a", 1)));
    cache.apply_task_event(Event::Apply(task(JOB, 2, TaskState::Started)));
    let (_, _, mut rx) = cache.snapshot_and_subscribe(|_| ());
    cache.apply_task_event(Event::Delete(task(JOB, 2, TaskState::Started)));
    cache.apply_job_event(Event::Delete(job(JOB, "a", 1)));
    let received: Vec<Change> = std::iter::from_fn(|| rx.try_recv().ok())
        .map(|c| (*c).clone())
        .collect();
    assert_eq!(
        kinds(&received),
        vec![
            ("task", 3, false),
            ("task", 4, true),
            ("job", 5, false),
            ("job", 6, true)
        ]
    );
    match &received[0] {
        Change::Task { task, .. } => {
            let status = task.status.clone().unwrap_or_default();
            assert_eq!(status.state, pb::task_status::TaskState::Finished as i32);
            assert_eq!(status.reason_code, "killed");
            assert_eq!(task.status_history.len(), 1);
        }
        other => panic!("expected a task change, got {other:?}"),
    }
    assert!(cache.read(|v| v.job(JOB).is_none() && v.task(TASK).is_none()));
}

#[test]
fn a_finished_job_leaves_with_only_its_archived_event() {
    let cache = synced();
    cache.apply_job_event(Event::Apply(finished(job(JOB, "a", 1))));
    let (_, _, mut rx) = cache.snapshot_and_subscribe(|_| ());
    cache.apply_job_event(Event::Delete(finished(job(JOB, "a", 1))));
    let received: Vec<Change> = std::iter::from_fn(|| rx.try_recv().ok())
        .map(|c| (*c).clone())
        .collect();
    assert_eq!(kinds(&received), vec![("job", 2, true)]);
}

#[test]
fn a_relist_removes_what_was_deleted_while_the_watch_was_down() {
    let cache = synced();
    cache.apply_job_event(Event::Apply(job(JOB, "a", 1)));
    cache.apply_job_event(Event::Apply(job(OTHER_JOB, "b", 2)));
    cache.apply_job_event(Event::Init);
    cache.apply_job_event(Event::InitApply(job(OTHER_JOB, "b", 2)));
    cache.apply_job_event(Event::InitDone);
    assert!(cache.read(|v| v.job(JOB).is_none() && v.job(OTHER_JOB).is_some()));
    assert_eq!(cache.read(|v| v.active_job_count()), 1);
}

#[test]
fn a_task_changing_job_is_marked_as_moved() {
    let cache = synced();
    cache.apply_task_event(Event::Apply(task(JOB, 1, TaskState::Started)));
    let (_, _, mut rx) = cache.snapshot_and_subscribe(|_| ());
    cache.apply_task_event(Event::Apply(task(OTHER_JOB, 2, TaskState::Started)));
    match rx.try_recv().map(|c| (*c).clone()) {
        Ok(Change::Task {
            moved_from_another_job,
            ..
        }) => assert!(moved_from_another_job),
        other => panic!("expected a moved task, got {other:?}"),
    }
    cache.read(|v| {
        assert!(v.tasks_of(JOB).is_empty());
        assert_eq!(v.tasks_of(OTHER_JOB).len(), 1);
    });
}

#[test]
fn a_name_reused_by_a_new_job_retires_the_old_one() {
    let cache = synced();
    cache.apply_job_event(Event::Apply(job(JOB, "same", 1)));
    cache.apply_job_event(Event::Apply(job(OTHER_JOB, "same", 2)));
    cache.read(|v| {
        assert!(v.job(JOB).is_none());
        assert_eq!(
            v.job_by_name("same").map(|j| j.key.1.as_str()),
            Some(OTHER_JOB)
        );
    });
}

#[tokio::test]
async fn waiters_wake_when_the_condition_becomes_true() {
    let cache = Arc::new(synced());
    let waiter = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .wait_until(Duration::from_secs(10), |v| v.job(JOB).is_some())
                .await
        })
    };
    cache.apply_job_event(Event::Apply(job(JOB, "a", 1)));
    assert!(waiter.await.unwrap());
    assert!(
        !cache
            .wait_until(Duration::from_millis(10), |v| v.job(OTHER_JOB).is_some())
            .await
    );
}
