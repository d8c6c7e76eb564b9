//! Feeds the cache from kube-runtime watchers of `TitusJob` and `TitusTask` in one namespace.
//!
//! The watcher lists, then watches, and re-lists after a broken watch (with back-off); the cache
//! turns a re-list into changes, including the removal of objects deleted meanwhile.

use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use titus_crds::{TitusJob, TitusTask};
use tokio::task::JoinHandle;

use super::{Cache, Event};

/// Starts the two watchers; they run until their handles are aborted.
pub fn spawn_watchers(
    cache: Arc<Cache>,
    client: kube::Client,
    namespace: &str,
) -> Vec<JoinHandle<()>> {
    let jobs: Api<TitusJob> = Api::namespaced(client.clone(), namespace);
    let tasks: Api<TitusTask> = Api::namespaced(client, namespace);
    let job_cache = cache.clone();
    vec![
        tokio::spawn(run(jobs, "TitusJob", move |e| job_cache.apply_job_event(e))),
        tokio::spawn(run(tasks, "TitusTask", move |e| cache.apply_task_event(e))),
    ]
}

async fn run<K>(api: Api<K>, kind: &'static str, apply: impl Fn(Event<K>))
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(watcher::Event::Init) => apply(Event::Init),
            Ok(watcher::Event::InitApply(object)) => apply(Event::InitApply(object)),
            Ok(watcher::Event::InitDone) => apply(Event::InitDone),
            Ok(watcher::Event::Apply(object)) => apply(Event::Apply(object)),
            Ok(watcher::Event::Delete(object)) => apply(Event::Delete(object)),
            Err(error) => tracing::warn!(%error, kind, "watch failed; retrying with back-off"),
        }
    }
}
