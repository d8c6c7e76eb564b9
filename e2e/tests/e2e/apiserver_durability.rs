//! Durability: every acknowledged write survives `kill -9`, with its resourceVersion, and
//! watches continue from an old resourceVersion after the restart.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use titus_e2e::Cluster;

#[tokio::test]
async fn acknowledged_writes_survive_kill_9_and_watches_resume_from_old_versions()
-> anyhow::Result<()> {
    let mut cluster = Cluster::apiserver().await?;
    if cluster.is_external() {
        return Ok(()); // Nothing to kill on a real cluster; the other tests still run there.
    }
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await?, "default");
    // Concurrent creates, each acknowledged with its resourceVersion.
    let creates = futures::stream::iter(0..400)
        .map(|i| {
            let api = api.clone();
            async move {
                let mut cm = ConfigMap::default();
                cm.metadata.name = Some(format!("cm-{i:04}"));
                cm.data = Some([("i".to_owned(), i.to_string())].into());
                let created = api.create(&PostParams::default(), &cm).await?;
                Ok::<_, kube::Error>((i, created.metadata.resource_version.unwrap_or_default()))
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    cluster.kill9()?;
    cluster.restart().await?;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await?, "default");
    for (i, rv) in &creates {
        let stored = api.get(&format!("cm-{i:04}")).await?;
        assert_eq!(
            stored.metadata.resource_version.as_deref(),
            Some(rv.as_str()),
            "cm-{i:04} kept its resourceVersion"
        );
        assert_eq!(
            stored.data.unwrap_or_default().get("i"),
            Some(&i.to_string())
        );
    }
    // A watch from an old version replays everything after it, in order, without a relist.
    let mut versions: Vec<u64> = creates
        .iter()
        .filter_map(|(_, rv)| rv.parse().ok())
        .collect();
    versions.sort_unstable();
    let from = versions[99];
    let mut stream = api
        .watch(&WatchParams::default().timeout(10), &from.to_string())
        .await?
        .boxed();
    let mut seen = Vec::new();
    while seen.len() < versions.len() - 100 {
        match stream.try_next().await? {
            Some(WatchEvent::Added(cm)) => seen.push(
                cm.metadata
                    .resource_version
                    .unwrap_or_default()
                    .parse::<u64>()?,
            ),
            Some(WatchEvent::Error(e)) => panic!("watch from {from} failed: {e:?}"),
            Some(_) => {}
            None => break,
        }
    }
    assert_eq!(
        seen,
        versions[100..],
        "every event after {from} is replayed in order"
    );
    Ok(())
}
