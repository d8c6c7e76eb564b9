//! kube-rs against `titus apiserver`: watchers and reflectors, optimistic concurrency,
//! server-side apply, and Status errors.

use std::time::Duration;

use futures::StreamExt;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, reflector};
use serde_json::json;
use titus_e2e::{Cluster, wait_for};

use crate::support::install_widgets;

fn widget_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("e2e.titus.dev", "v1", "Widget"),
        "widgets",
    )
}

fn widget(name: &str, color: &str) -> DynamicObject {
    let mut obj = DynamicObject::new(name, &widget_resource());
    obj.data = json!({"spec": {"color": color}});
    obj
}

#[tokio::test]
async fn a_reflector_follows_changes_and_resumes_after_the_server_is_killed_and_restarted()
-> anyhow::Result<()> {
    let mut cluster = Cluster::apiserver().await?;
    install_widgets(&cluster).await?;
    let client = cluster.client().await?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &widget_resource());
    let writer = reflector::store::Writer::new(widget_resource());
    let reader = writer.as_reader();
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let stream = watcher::watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .map(move |e| {
            if let Ok(event) = &e {
                let kind = match event {
                    Event::Init => "init",
                    Event::InitApply(_) => "init-apply",
                    Event::InitDone => "init-done",
                    Event::Apply(_) => "apply",
                    Event::Delete(_) => "delete",
                };
                let _ = events_tx.send(kind);
            }
            e
        })
        .reflect(writer)
        .for_each(|_| async {});
    let task = tokio::spawn(stream);
    let color = |name: &str| {
        reader
            .state()
            .into_iter()
            .find(|o| o.metadata.name.as_deref() == Some(name))
            .map(|o| o.data["spec"]["color"].clone())
    };

    api.create(&PostParams::default(), &widget("w1", "red"))
        .await?;
    wait_for(
        "the reflector to see the create",
        Duration::from_secs(20),
        || async { Ok(color("w1").filter(|c| c == "red").map(|_| ())) },
    )
    .await?;
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"color": "green"}})),
    )
    .await?;
    wait_for(
        "the reflector to see the update",
        Duration::from_secs(20),
        || async { Ok(color("w1").filter(|c| c == "green").map(|_| ())) },
    )
    .await?;
    api.create(&PostParams::default(), &widget("w2", "blue"))
        .await?;
    api.delete("w1", &Default::default()).await?;
    wait_for(
        "the reflector to see the delete",
        Duration::from_secs(20),
        || async { Ok((color("w1").is_none() && color("w2").is_some()).then_some(())) },
    )
    .await?;

    // Drain what was seen so far, then kill the server hard and bring it back.
    while events.try_recv().is_ok() {}
    cluster.kill9()?;
    cluster.restart().await?;
    let api2: Api<DynamicObject> =
        Api::namespaced_with(cluster.client().await?, "default", &widget_resource());
    api2.create(&PostParams::default(), &widget("w3", "red"))
        .await?;
    wait_for(
        "the resumed watch to deliver a change made after the restart",
        Duration::from_secs(30),
        || async { Ok(color("w3").map(|_| ())) },
    )
    .await?;
    let mut after_restart = Vec::new();
    while let Ok(kind) = events.try_recv() {
        after_restart.push(kind);
    }
    assert!(
        !after_restart.contains(&"init"),
        "the watch resumed from its resourceVersion without relisting: {after_restart:?}"
    );
    task.abort();
    Ok(())
}

#[tokio::test]
async fn a_stale_update_gets_409_and_server_side_apply_works_like_kube_rs_expects()
-> anyhow::Result<()> {
    let cluster = Cluster::apiserver().await?;
    install_widgets(&cluster).await?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client().await?, "default", &widget_resource());
    let created = api
        .create(&PostParams::default(), &widget("w", "red"))
        .await?;

    // Optimistic concurrency: two writers start from the same version; the second loses.
    let mut first = created.clone();
    first.data["spec"]["color"] = json!("green");
    api.replace("w", &PostParams::default(), &first).await?;
    let mut stale = created.clone();
    stale.data["spec"]["color"] = json!("blue");
    match api.replace("w", &PostParams::default(), &stale).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 409);
            assert_eq!(status.reason, "Conflict");
        }
        other => panic!("a stale update must fail with 409, got {other:?}"),
    }

    // Server-side apply: create through apply, re-apply, and a conflicting manager.
    let applied = json!({"apiVersion": "e2e.titus.dev/v1", "kind": "Widget", "metadata": {"name": "ssa"}, "spec": {"color": "red", "replicas": 2}});
    let a = PatchParams::apply("manager-a");
    let obj = api.patch("ssa", &a, &Patch::Apply(&applied)).await?;
    assert_eq!(obj.data["spec"]["replicas"], 2);
    let managers: Vec<String> = obj
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["manager-a"]);
    let again = api.patch("ssa", &a, &Patch::Apply(&applied)).await?;
    assert_eq!(
        again.metadata.resource_version, obj.metadata.resource_version,
        "re-applying is a no-op"
    );
    let other = json!({"apiVersion": "e2e.titus.dev/v1", "kind": "Widget", "metadata": {"name": "ssa"}, "spec": {"replicas": 7}});
    match api
        .patch(
            "ssa",
            &PatchParams::apply("manager-b"),
            &Patch::Apply(&other),
        )
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 409);
            assert!(
                status.message.contains("conflict with \"manager-a\"")
                    && status.message.contains(".spec.replicas"),
                "{}",
                status.message
            );
        }
        other => panic!("changing another manager's field must conflict, got {other:?}"),
    }
    let forced = api
        .patch(
            "ssa",
            &PatchParams::apply("manager-b").force(),
            &Patch::Apply(&other),
        )
        .await?;
    assert_eq!(forced.data["spec"]["replicas"], 7);
    // manager-a no longer applies replicas after the force; dropping color from its config removes it.
    let smaller = json!({"apiVersion": "e2e.titus.dev/v1", "kind": "Widget", "metadata": {"name": "ssa"}, "spec": {"color": "red"}});
    let kept = api.patch("ssa", &a, &Patch::Apply(&smaller)).await?;
    assert_eq!(
        kept.data["spec"]["replicas"], 7,
        "a field owned by manager-b stays"
    );
    Ok(())
}

#[tokio::test]
async fn invalid_objects_get_a_422_status_naming_the_field() -> anyhow::Result<()> {
    let cluster = Cluster::apiserver().await?;
    install_widgets(&cluster).await?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client().await?, "default", &widget_resource());
    let mut bad = widget("bad", "purple");
    bad.data["spec"]["replicas"] = json!("many");
    match api.create(&PostParams::default(), &bad).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422);
            assert_eq!(status.reason, "Invalid");
            assert!(
                status
                    .message
                    .contains("spec.color: Unsupported value: \"purple\""),
                "{}",
                status.message
            );
            assert!(
                status
                    .message
                    .contains("spec.replicas: Invalid value: \"many\""),
                "{}",
                status.message
            );
        }
        other => panic!("expected 422, got {other:?}"),
    }
    assert!(api.get_opt("bad").await?.is_none(), "nothing is stored");
    Ok(())
}
