//! The API server's behaviours through a real client (kube-rs) on an in-process server:
//! garbage collection, namespaces, pods (grace, binding, eviction), collections, dry runs,
//! selectors and names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams, PropagationPolicy};
use serde_json::json;
use titus_apiserver::{ApiServerConfig, RunningApiServer};

async fn start() -> (RunningApiServer, Client) {
    let running = titus_apiserver::start(ApiServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        fsync: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&running.kubeconfig()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    // kube-rs retries 429 (e.g. a refused eviction) for minutes by default; the tests want the answer.
    config.default_retry = false;
    let client = Client::try_from(config).unwrap();
    (running, client)
}

/// Polls until `check` holds, failing after 10 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn cm(name: &str, owner: Option<&ConfigMap>) -> ConfigMap {
    let mut value = json!({"metadata": {"name": name}, "data": {"k": "v"}});
    if let Some(owner) = owner {
        value["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap",
            "name": owner.metadata.name, "uid": owner.metadata.uid, "blockOwnerDeletion": true}]);
    }
    serde_json::from_value(value).unwrap()
}

#[tokio::test]
async fn background_deletion_collects_dependents_whose_owners_are_gone() {
    let (_server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let owner = api
        .create(&PostParams::default(), &cm("owner", None))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("child", Some(&owner)))
        .await
        .unwrap();
    let grandchild_owner = api.get("child").await.unwrap();
    api.create(
        &PostParams::default(),
        &cm("grandchild", Some(&grandchild_owner)),
    )
    .await
    .unwrap();
    api.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    eventually("the dependents to be collected", || async {
        api.get_opt("child").await.unwrap().is_none()
            && api.get_opt("grandchild").await.unwrap().is_none()
    })
    .await;
}

#[tokio::test]
async fn foreground_deletion_waits_for_dependents_and_orphan_keeps_them() {
    let (_server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let owner = api
        .create(&PostParams::default(), &cm("fg-owner", None))
        .await
        .unwrap();
    let mut held = cm("fg-child", Some(&owner));
    held.metadata.finalizers = Some(vec!["e2e.titus.dev/hold".into()]);
    api.create(&PostParams::default(), &held).await.unwrap();
    api.delete("fg-owner", &DeleteParams::foreground())
        .await
        .unwrap();
    // The owner waits (foregroundDeletion) while its dependent is held by a finalizer.
    eventually("the dependent to be marked for deletion", || async {
        api.get("fg-child")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    })
    .await;
    let owner_now = api.get("fg-owner").await.unwrap();
    assert!(
        owner_now
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"foregroundDeletion".to_owned())
    );
    api.patch(
        "fg-child",
        &Default::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("the owner to go once its dependent is gone", || async {
        api.get_opt("fg-owner").await.unwrap().is_none()
    })
    .await;

    let owner = api
        .create(&PostParams::default(), &cm("or-owner", None))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("or-child", Some(&owner)))
        .await
        .unwrap();
    api.delete(
        "or-owner",
        &DeleteParams {
            propagation_policy: Some(PropagationPolicy::Orphan),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    eventually("the orphaning owner to go", || async {
        api.get_opt("or-owner").await.unwrap().is_none()
    })
    .await;
    let orphan = api.get("or-child").await.unwrap();
    assert!(
        orphan
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty(),
        "the orphan lost its owner reference"
    );
}

#[tokio::test]
async fn deleting_a_namespace_removes_its_content_then_the_namespace() {
    let (_server, client) = start().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap(),
        )
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client, "doomed");
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("c{i}"), None))
            .await
            .unwrap();
    }
    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = namespaces.get_opt("doomed").await.unwrap();
    if let Some(ns) = terminating {
        assert_eq!(
            ns.status.and_then(|s| s.phase).as_deref(),
            Some("Terminating")
        );
        match api.create(&PostParams::default(), &cm("late", None)).await {
            Err(kube::Error::Api(e)) if e.code == 403 => {}
            // The namespace finished terminating between the get and the create.
            Err(kube::Error::Api(e)) if e.code == 404 => {
                assert!(namespaces.get_opt("doomed").await.unwrap().is_none())
            }
            other => panic!("creating in a terminating namespace must be forbidden: {other:?}"),
        }
    }
    eventually("the namespace to be gone", || async {
        namespaces.get_opt("doomed").await.unwrap().is_none()
    })
    .await;
    assert!(
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

fn pod(name: &str, labels: serde_json::Value) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels},
        "spec": {"schedulerName": "titus-scheduler", "terminationGracePeriodSeconds": 30,
                 "containers": [{"name": "main", "image": "busybox"}]}}))
    .unwrap()
}

async fn bind(client: &Client, name: &str, node: &str) -> Result<(), kube::Error> {
    let req = http::Request::post(format!("/api/v1/namespaces/default/pods/{name}/binding"))
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name}, "target": {"kind": "Node", "name": node}})).unwrap())
        .unwrap();
    client.request_text(req).await.map(|_| ())
}

#[tokio::test]
async fn pods_bind_once_and_bound_pods_terminate_gracefully() {
    let (_server, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let created = pods
        .create(&PostParams::default(), &pod("p", json!({})))
        .await
        .unwrap();
    assert_eq!(
        created.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Pending")
    );
    assert_eq!(
        created
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref()),
        Some("Always"),
        "defaults applied"
    );
    bind(&client, "p", "node-1").await.unwrap();
    let bound = pods.get("p").await.unwrap();
    assert_eq!(
        bound.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some("node-1")
    );
    match bind(&client, "p", "node-2").await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 409),
        other => panic!("binding twice must conflict: {other:?}"),
    }
    // A bound, running pod is not removed at once: it waits for its kubelet.
    pods.delete("p", &DeleteParams::default()).await.unwrap();
    let terminating = pods.get("p").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(30));
    // Its kubelet keeps reporting status during the grace period; that does not remove it.
    let report = json!({"status": {"phase": "Running"}});
    let reported = pods
        .patch_status("p", &Default::default(), &kube::api::Patch::Merge(report))
        .await
        .unwrap();
    assert_eq!(
        reported.status.and_then(|s| s.phase).as_deref(),
        Some("Running")
    );
    assert!(
        pods.get_opt("p").await.unwrap().is_some(),
        "a status update of a terminating pod keeps it"
    );
    // The kubelet's final delete with grace 0 removes it.
    pods.delete(
        "p",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(pods.get_opt("p").await.unwrap().is_none());
    // An unscheduled pod goes at once.
    pods.create(&PostParams::default(), &pod("q", json!({})))
        .await
        .unwrap();
    pods.delete("q", &DeleteParams::default()).await.unwrap();
    assert!(pods.get_opt("q").await.unwrap().is_none());
}

#[tokio::test]
async fn eviction_respects_pod_disruption_budgets() {
    let (_server, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for name in ["a", "b"] {
        pods.create(&PostParams::default(), &pod(name, json!({"app": "web"})))
            .await
            .unwrap();
        bind(&client, name, "node-1").await.unwrap();
        let status = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        pods.patch_status(name, &Default::default(), &kube::api::Patch::Merge(status))
            .await
            .unwrap();
    }
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    pdbs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "web"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}}))
        .unwrap(),
    )
    .await
    .unwrap();
    match pods.evict("a", &Default::default()).await {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 429);
            assert!(e.message.contains("disruption budget"), "{}", e.message);
        }
        other => panic!("eviction beyond the budget must be refused: {other:?}"),
    }
    pdbs.delete("web", &DeleteParams::default()).await.unwrap();
    pods.evict("a", &Default::default()).await.unwrap();
    assert!(
        pods.get("a")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some(),
        "an evicted running pod terminates gracefully"
    );
}

#[tokio::test]
async fn collections_dry_runs_selectors_and_generated_names_behave_like_kubernetes() {
    let (_server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    // generateName.
    let generated: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let created = api
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let name = created.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    // Dry run stores nothing.
    api.create(
        &PostParams {
            dry_run: true,
            ..Default::default()
        },
        &cm("dry", None),
    )
    .await
    .unwrap();
    assert!(api.get_opt("dry").await.unwrap().is_none());
    // Field and label selectors, pagination with continue.
    for i in 0..7 {
        let mut c = cm(&format!("sel-{i}"), None);
        c.metadata.labels = Some(
            [(
                "parity".to_owned(),
                (if i % 2 == 0 { "even" } else { "odd" }).to_owned(),
            )]
            .into(),
        );
        api.create(&PostParams::default(), &c).await.unwrap();
    }
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=sel-3"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    match api
        .list(&ListParams::default().fields("spec.bogus=x"))
        .await
    {
        Err(kube::Error::Api(e)) => {
            assert!(e.code == 400 && e.message.contains("field label not supported"))
        }
        other => panic!("unsupported field labels must be refused: {other:?}"),
    }
    let even = api
        .list(&ListParams::default().labels("parity=even"))
        .await
        .unwrap();
    assert_eq!(even.items.len(), 4);
    let first = api
        .list(&ListParams::default().labels("parity").limit(3))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 3);
    let token = first.metadata.continue_.clone().expect("a continue token");
    let rest = api
        .list(
            &ListParams::default()
                .labels("parity")
                .limit(10)
                .continue_token(&token),
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 4);
    // deletecollection with a selector.
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("parity=odd"),
    )
    .await
    .unwrap();
    assert_eq!(
        api.list(&ListParams::default().labels("parity"))
            .await
            .unwrap()
            .items
            .len(),
        4
    );
}
