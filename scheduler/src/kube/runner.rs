//! The scheduling loop: observe (apply watch events to the [`Index`]) → decide (`schedule()`
//! then [`plan`]) → act ([`Writer`]) → report (metrics, logs).
//!
//! An iteration runs when something changed that may place pending Pods differently, at most
//! `batch_window` after the first such change (changes arriving meanwhile join it), and at least
//! every `resync_interval` while Pods are pending. It runs only while this instance leads and
//! once every watch has listed. Binds and condition writes of one iteration run concurrently,
//! `write_concurrency` at a time; a failed bind releases its assignment.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::kube::SchedulerConfig;
use crate::kube::act::Writer;
use crate::kube::index::{Index, IndexConfig, IndexEvent};
use crate::kube::metrics::SchedulerMetrics;
use crate::kube::plan::{DemandReport, IterationPlan, plan};
use crate::placement::schedule;

/// Events applied at most before the loop looks at its timers again.
const DRAIN_BATCH: usize = 4096;

/// The loop's state.
pub(crate) struct Runner {
    config: Arc<SchedulerConfig>,
    index: Index,
    writer: Writer,
    metrics: SchedulerMetrics,
    published_demand: Option<DemandReport>,
    last_pending: usize,
    last_iteration: Instant,
    ready: watch::Sender<bool>,
    started: Instant,
    warned_unsynced: Option<Instant>,
}

impl Runner {
    pub(crate) fn new(
        config: Arc<SchedulerConfig>,
        writer: Writer,
        metrics: SchedulerMetrics,
        ready: watch::Sender<bool>,
    ) -> Runner {
        let index = Index::new(IndexConfig {
            scheduler_name: config.scheduler_name.clone(),
            nodes: config.nodes.clone(),
            assume_ttl: config.assume_ttl,
        });
        Runner {
            config,
            index,
            writer,
            metrics,
            published_demand: None,
            last_pending: 0,
            last_iteration: Instant::now(),
            ready,
            started: Instant::now(),
            warned_unsynced: None,
        }
    }

    /// Runs until `cancel` fires or the watches end.
    pub(crate) async fn run(
        mut self,
        mut events: mpsc::Receiver<IndexEvent>,
        mut leading: watch::Receiver<bool>,
        cancel: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(self.config.tick_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut wanted = false;
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                event = events.recv() => {
                    let Some(event) = event else { break };
                    let now = Timestamp::now();
                    self.index.apply(event, now);
                    for _ in 0..DRAIN_BATCH {
                        match events.try_recv() {
                            Ok(event) => self.index.apply(event, now),
                            Err(_) => break,
                        }
                    }
                }
                _ = tick.tick() => {
                    self.index.refresh(Timestamp::now());
                    self.warn_if_unsynced();
                    if self.last_pending > 0
                        && self.last_iteration.elapsed() >= self.config.resync_interval
                    {
                        wanted = true;
                    }
                }
                changed = leading.changed() => {
                    if changed.is_err() { break; }
                    let leader = *leading.borrow();
                    self.metrics.leader.set(i64::from(leader));
                    wanted = true;
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    deadline = None;
                    if *leading.borrow() && self.index.synced() {
                        wanted = self.iterate().await;
                    }
                }
            }
            wanted |= self.index.take_dirty();
            self.ready.send_if_modified(|ready| {
                let synced = self.index.synced();
                std::mem::replace(ready, synced) != synced
            });
            if wanted && deadline.is_none() && *leading.borrow() && self.index.synced() {
                deadline = Some(tokio::time::Instant::now() + self.config.batch_window);
                wanted = false;
            }
        }
    }

    /// Says, at most once a minute after the first 30 s, which watches have not listed yet.
    fn warn_if_unsynced(&mut self) {
        let quiet = Duration::from_secs(30);
        let due = self
            .warned_unsynced
            .is_none_or(|at| at.elapsed() >= 2 * quiet);
        if !self.index.synced() && self.started.elapsed() >= quiet && due {
            self.warned_unsynced = Some(Instant::now());
            tracing::warn!(
                unsynced = ?self.index.unsynced(),
                "not scheduling until every watch has listed (are the Titus CRDs installed?)"
            );
        }
    }

    /// One iteration; true when it left work for another one (deferred condition writes).
    async fn iterate(&mut self) -> bool {
        let started = Instant::now();
        let now = Timestamp::now();
        let pending = self.index.pending(self.config.max_tasks_per_iteration);
        let groups = self.index.groups().to_vec();
        let placing = Instant::now();
        let result = schedule(
            self.index.state_mut(),
            &pending.requests,
            &groups,
            &self.config.placement,
        );
        self.metrics
            .placement_seconds
            .observe(placing.elapsed().as_secs_f64());
        for assignment in &result.assignments {
            self.index
                .assume(&assignment.task_id, &assignment.agent_id, now);
        }
        let index = &self.index;
        let plan = plan(
            &result,
            &pending.invalid,
            |key| index.pod(key),
            self.config.max_condition_writes_per_iteration,
        );
        let failures = result.failures.len() + pending.invalid.len();
        self.act(&plan, now).await;
        self.last_pending = pending.total;
        self.last_iteration = Instant::now();
        self.report(&plan, pending.total, failures, started);
        if pending.waiting_for_job > 0 {
            tracing::debug!(
                pods = pending.waiting_for_job,
                "pods wait for their TitusJob to be seen"
            );
        }
        plan.deferred > 0
    }

    async fn act(&mut self, plan: &IterationPlan, now: Timestamp) {
        let concurrency = self.config.write_concurrency.max(1);
        let bound: Vec<(String, Result<(), kube::Error>)> =
            futures::stream::iter(plan.binds.clone())
                .map(|bind| {
                    let writer = self.writer.clone();
                    async move { (bind.key.clone(), writer.bind(&bind).await) }
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
        for (key, outcome) in bound {
            SchedulerMetrics::count(&self.metrics.binds, outcome.is_ok());
            if let Err(error) = outcome {
                log_write_error("bind", &key, &error);
                self.index.forget(&key);
            }
        }
        let marked: Vec<(String, Result<(), kube::Error>)> =
            futures::stream::iter(plan.unschedulable.clone())
                .map(|mark| {
                    let writer = self.writer.clone();
                    async move {
                        let outcome = writer.mark_unschedulable(&mark, now).await;
                        if outcome.is_ok()
                            && let Err(error) = writer.failed_scheduling_event(&mark, now).await
                        {
                            log_write_error("event", &mark.key, &error);
                        }
                        (mark.key.clone(), outcome)
                    }
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
        for (key, outcome) in marked {
            SchedulerMetrics::count(&self.metrics.condition_writes, outcome.is_ok());
            if let Err(error) = outcome {
                log_write_error("PodScheduled condition", &key, &error);
            }
        }
        if self.published_demand.as_ref() != Some(&plan.demand) {
            match self.writer.publish_demand(&plan.demand).await {
                Ok(()) => self.published_demand = Some(plan.demand.clone()),
                Err(error) => tracing::warn!(%error, "publishing unmet demand failed"),
            }
        }
    }

    fn report(&self, plan: &IterationPlan, pending: usize, failures: usize, started: Instant) {
        let elapsed = started.elapsed();
        let m = &self.metrics;
        m.iteration_seconds.observe(elapsed.as_secs_f64());
        m.placement_failures.inc_by(failures as u64);
        m.pending_tasks.set(to_i64(pending));
        m.agents.set(to_i64(self.index.state().agent_count()));
        m.placed_tasks.set(to_i64(self.index.state().task_count()));
        let demand: u32 = plan.demand.unmet_demand.iter().map(|d| d.tasks).sum();
        m.unmet_demand_tasks.set(i64::from(demand));
        tracing::debug!(
            pending,
            binds = plan.binds.len(),
            unschedulable = failures,
            condition_writes = plan.unschedulable.len(),
            deferred = plan.deferred,
            agents = self.index.state().agent_count(),
            ms = elapsed.as_millis() as u64,
            "scheduling iteration"
        );
    }
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn log_write_error(what: &str, pod: &str, error: &kube::Error) {
    match error {
        kube::Error::Api(status) if status.code == 404 || status.code == 409 => {
            tracing::debug!(%error, pod, what, "write refused; the watch will tell what changed");
        }
        _ => tracing::warn!(%error, pod, what, "write failed"),
    }
}
