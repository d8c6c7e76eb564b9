//! The event streams: `ObserveJobs`, `ObserveJob` and `ObserveJobsWithKeepAlive`.
//!
//! Each stream sends a snapshot of the matching jobs, then their tasks, then `SnapshotEnd`, then
//! every later change of a matching job or task as the full entity, in the cache's order
//! (§11.2). Criteria and projections are the query ones. `archived` events (an entity leaving)
//! are dropped except on the keep-alive stream. `ObserveJob` completes once the job's `Finished`
//! update and the `Finished` updates of all its tasks were sent, or when the job leaves.
//!
//! Keep-alive: the answer to a `KeepAliveRequest` is sent only once every change the cache had
//! applied when the request arrived has been processed (sent, or filtered out) by this stream,
//! so the answer proves the client is up to date with the gateway's view. A newer request
//! replaces an unanswered one. A client half-close does not end the stream.
//!
//! A stream that falls further behind than the cache's change buffer ends with `ABORTED` (Titus
//! did the same when its cache went stale): the client re-subscribes and gets a fresh snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::cache::{Cache, Change, now_ms};
use crate::jobs::reads::{matching_jobs, matching_tasks, project};
use crate::pb;
use crate::pb::job_change_notification::{JobUpdate, Notification, SnapshotEnd, TaskUpdate};
use crate::query::{Criteria, Projection};

/// Buffer between a stream's producer and gRPC.
const STREAM_BUFFER: usize = 256;

/// What a stream sends.
#[derive(Clone, Debug, Default)]
pub struct ObserveRequest {
    /// Which jobs and tasks.
    pub criteria: Criteria,
    /// `jobFields` projection.
    pub job_fields: Option<Projection>,
    /// `taskFields` projection.
    pub task_fields: Option<Projection>,
    /// Send `archived` events (keep-alive stream only).
    pub keep_archived: bool,
    /// `ObserveJob`: complete once this job and its tasks have finished.
    pub until_finished: Option<String>,
}

/// The stream type of all three RPCs.
pub type NotificationStream = ReceiverStream<Result<pb::JobChangeNotification, Status>>;

/// Starts a stream; `keep_alives` carries the client's keep-alive requests, if any.
pub fn observe(
    cache: Arc<Cache>,
    request: ObserveRequest,
    keep_alives: Option<mpsc::Receiver<pb::KeepAliveRequest>>,
) -> NotificationStream {
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(async move {
        let mut pump = Pump {
            cache,
            request,
            tx,
            sent_tasks: HashMap::new(),
            job_finished_sent: false,
        };
        pump.run(keep_alives).await;
    });
    ReceiverStream::new(rx)
}

fn notification(n: Notification) -> pb::JobChangeNotification {
    pb::JobChangeNotification {
        notification: Some(n),
        timestamp: now_ms(),
    }
}

const FINISHED_JOB: i32 = pb::job_status::JobState::Finished as i32;
const FINISHED_TASK: i32 = pb::task_status::TaskState::Finished as i32;

fn task_finished(task: &pb::Task) -> bool {
    task.status
        .as_ref()
        .is_some_and(|s| s.state == FINISHED_TASK)
}

struct Pump {
    cache: Arc<Cache>,
    request: ObserveRequest,
    tx: mpsc::Sender<Result<pb::JobChangeNotification, Status>>,
    /// `ObserveJob`: tasks sent so far and whether their last update was `Finished`.
    sent_tasks: HashMap<String, bool>,
    job_finished_sent: bool,
}

enum Step {
    Continue,
    Done,
}

impl Pump {
    async fn run(&mut self, mut keep_alives: Option<mpsc::Receiver<pb::KeepAliveRequest>>) {
        let criteria = self.request.criteria.clone();
        let ((jobs, tasks), mut processed, mut changes) = self.cache.snapshot_and_subscribe(|v| {
            let jobs: Vec<pb::Job> = matching_jobs(v, &criteria)
                .into_iter()
                .map(|(_, j)| j.clone())
                .collect();
            let tasks: Vec<pb::Task> = matching_tasks(v, &criteria)
                .into_iter()
                .map(|(_, t)| t.clone())
                .collect();
            (jobs, tasks)
        });
        for job in &jobs {
            if !self.send_job(job, false).await {
                return;
            }
        }
        for task in &tasks {
            if !self.send_task(task, false, false).await {
                return;
            }
        }
        if !self.send(Notification::SnapshotEnd(SnapshotEnd {})).await || self.complete() {
            return;
        }
        let mut pending: Option<(pb::KeepAliveRequest, u64)> = None;
        let cache = self.cache.clone();
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(change) => {
                        if change.seq() > processed {
                            processed = change.seq();
                            match self.handle(&change).await {
                                Step::Continue => {}
                                Step::Done => return,
                            }
                        }
                        if pending.as_ref().is_some_and(|(_, target)| processed >= *target)
                            && let Some((request, _)) = pending.take()
                            && !self.answer(request).await
                        {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        let message = format!("observer fell behind by {missed} changes; subscribe again");
                        let _ = self.tx.send(Err(Status::aborted(message))).await;
                        return;
                    }
                    Err(RecvError::Closed) => {
                        let _ = self.tx.send(Err(Status::unavailable("the job cache stopped"))).await;
                        return;
                    }
                },
                request = next(&mut keep_alives) => match request {
                    Some(request) => {
                        let target = self.cache.seq();
                        if processed >= target {
                            if !self.answer(request).await {
                                return;
                            }
                        } else {
                            pending = Some((request, target));
                        }
                    }
                    // Half-close: no more keep-alives, the stream goes on.
                    None => keep_alives = None,
                },
                () = self.tx.closed() => return,
                () = cache.closed() => {
                    let _ = self.tx.send(Err(Status::unavailable("the gateway is shutting down"))).await;
                    return;
                }
            }
        }
    }

    async fn handle(&mut self, change: &Change) -> Step {
        let sent = match change {
            Change::Job { job, archived, .. } => {
                if *archived && self.request.until_finished.as_deref() == Some(job.id.as_str()) {
                    return Step::Done;
                }
                if *archived && !self.request.keep_archived {
                    return Step::Continue;
                }
                let matches = if self.request.criteria.has_task_criteria() {
                    self.cache.read(|v| {
                        let tasks = v.tasks_of(&job.id);
                        self.request
                            .criteria
                            .matches_job(job, tasks.iter().map(|t| t.proto.as_ref()))
                    })
                } else {
                    self.request.criteria.matches_job(job, std::iter::empty())
                };
                !matches || self.send_job(job, *archived).await
            }
            Change::Task {
                task,
                job,
                archived,
                moved_from_another_job,
                ..
            } => {
                if *archived && !self.request.keep_archived {
                    return Step::Continue;
                }
                !self.request.criteria.matches_task(task, job.as_deref())
                    || self
                        .send_task(task, *archived, *moved_from_another_job)
                        .await
            }
        };
        if !sent || self.complete() {
            Step::Done
        } else {
            Step::Continue
        }
    }

    /// `ObserveJob`: the job's `Finished` update was sent, and every task of it in the cache has
    /// had its `Finished` update sent.
    fn complete(&self) -> bool {
        let Some(job_id) = &self.request.until_finished else {
            return false;
        };
        if !self.job_finished_sent {
            return false;
        }
        self.cache.read(|v| {
            v.tasks_of(job_id)
                .iter()
                .all(|t| self.sent_tasks.get(&t.proto.id).copied().unwrap_or(false))
        })
    }

    async fn send_job(&mut self, job: &pb::Job, archived: bool) -> bool {
        if self.request.until_finished.as_deref() == Some(job.id.as_str())
            && job.status.as_ref().is_some_and(|s| s.state == FINISHED_JOB)
        {
            self.job_finished_sent = true;
        }
        let job = project(self.request.job_fields.as_ref(), job);
        self.send(Notification::JobUpdate(JobUpdate {
            job: Some(job),
            archived,
        }))
        .await
    }

    async fn send_task(&mut self, task: &pb::Task, archived: bool, moved: bool) -> bool {
        if self.request.until_finished.is_some() {
            self.sent_tasks.insert(task.id.clone(), task_finished(task));
        }
        let task = project(self.request.task_fields.as_ref(), task);
        self.send(Notification::TaskUpdate(TaskUpdate {
            task: Some(task),
            moved_from_another_job: moved,
            archived,
        }))
        .await
    }

    async fn answer(&self, request: pb::KeepAliveRequest) -> bool {
        self.send(Notification::KeepAliveResponse(pb::KeepAliveResponse {
            request: Some(request),
            timestamp: now_ms(),
        }))
        .await
    }

    async fn send(&self, n: Notification) -> bool {
        self.tx.send(Ok(notification(n))).await.is_ok()
    }
}

async fn next(
    keep_alives: &mut Option<mpsc::Receiver<pb::KeepAliveRequest>>,
) -> Option<pb::KeepAliveRequest> {
    match keep_alives {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
