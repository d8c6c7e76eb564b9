use super::*;
use crate::meta;
use serde_json::json;

fn obj(name: &str, label: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": {"app": label}},
           "data": {"k": "v"}})
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::new("default", name)
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("titus-store-test-{}", uuid::Uuid::new_v4()));
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn open(dir: &Path, segment_bytes: u64) -> Arc<Store> {
    Store::open(StoreConfig {
        dir: Some(dir.to_owned()),
        fsync: true,
        segment_bytes,
        history_per_resource: 1000,
    })
    .unwrap()
}

#[test]
fn writes_get_increasing_versions_and_preconditions_hold() {
    let store = Store::open(StoreConfig::default()).unwrap();
    let a = store
        .write("configmaps", &key("a"), Write::Create(obj("a", "x")))
        .unwrap();
    let b = store
        .write("configmaps", &key("b"), Write::Create(obj("b", "x")))
        .unwrap();
    assert_eq!((a.rv, b.rv), (1, 2));
    assert_eq!(meta::resource_version(&a.value()), Some(1));
    assert!(matches!(
        store.write("configmaps", &key("a"), Write::Create(obj("a", "x"))),
        Err(StoreError::AlreadyExists { .. })
    ));
    let stale = store.write(
        "configmaps",
        &key("a"),
        Write::Update {
            expected_rv: Some(7),
            value: obj("a", "y"),
        },
    );
    assert!(matches!(
        stale,
        Err(StoreError::Conflict {
            expected: 7,
            actual: 1,
            ..
        })
    ));
    let updated = store
        .write(
            "configmaps",
            &key("a"),
            Write::Update {
                expected_rv: Some(1),
                value: obj("a", "y"),
            },
        )
        .unwrap();
    assert_eq!(updated.rv, 3);
    assert_eq!(updated.labels.get("app").map(String::as_str), Some("y"));
    assert_eq!(store.current_rv(), 3);
}

#[test]
fn lists_page_through_keys_in_order_and_filter() {
    let store = Store::open(StoreConfig::default()).unwrap();
    for (i, name) in ["c", "a", "b", "d"].iter().enumerate() {
        let label = if i % 2 == 0 { "even" } else { "odd" };
        store
            .write("configmaps", &key(name), Write::Create(obj(name, label)))
            .unwrap();
    }
    let all = |_: &StoredObject| true;
    let (page, _, more) = store.list("configmaps", Some("default"), None, Some(2), &all);
    assert_eq!(
        page.iter().map(|o| o.key.name.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert!(more);
    let (rest, _, more) = store.list(
        "configmaps",
        Some("default"),
        Some(&page[1].key),
        Some(2),
        &all,
    );
    assert_eq!(
        rest.iter().map(|o| o.key.name.as_str()).collect::<Vec<_>>(),
        ["c", "d"]
    );
    assert!(!more);
    let even = |o: &StoredObject| o.labels.get("app").is_some_and(|v| v == "even");
    let (evens, _, _) = store.list("configmaps", None, None, None, &even);
    assert_eq!(
        evens
            .iter()
            .map(|o| o.key.name.as_str())
            .collect::<Vec<_>>(),
        ["b", "c"]
    );
    let (other_ns, _, _) = store.list("configmaps", Some("kube-system"), None, None, &all);
    assert!(other_ns.is_empty());
}

#[tokio::test]
async fn events_become_visible_once_durable_in_order() {
    let store = Store::open(StoreConfig::default()).unwrap();
    let mut rx = store.subscribe("configmaps");
    let a = store
        .write("configmaps", &key("a"), Write::Create(obj("a", "x")))
        .unwrap();
    store.durable(a.rv).await;
    store
        .write(
            "configmaps",
            &key("a"),
            Write::Delete {
                expected_rv: None,
                last: obj("a", "x"),
            },
        )
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen = store.events_after("configmaps", 0, 10).unwrap();
        if seen.len() < 2 {
            tokio::time::timeout_at(deadline, rx.changed())
                .await
                .unwrap()
                .unwrap();
        }
    }
    assert_eq!(
        seen.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [EventType::Added, EventType::Deleted]
    );
    assert_eq!(seen[1].object.rv, 2);
    assert!(store.get("configmaps", &key("a")).is_none());
    assert_eq!(store.events_after("configmaps", 1, 10).unwrap().len(), 1);
}

#[tokio::test]
async fn everything_acknowledged_survives_a_restart_with_its_version() {
    let dir = temp_dir();
    {
        let store = open(&dir, 64 << 20);
        for i in 0..50 {
            let o = store
                .write(
                    "configmaps",
                    &key(&format!("cm{i}")),
                    Write::Create(obj(&format!("cm{i}"), "x")),
                )
                .unwrap();
            store.durable(o.rv).await;
        }
        store
            .write(
                "configmaps",
                &key("cm0"),
                Write::Delete {
                    expected_rv: None,
                    last: obj("cm0", "x"),
                },
            )
            .unwrap();
        store.durable(51).await;
        // No clean shutdown: the next open must cope with whatever is on disk.
        std::mem::forget(store);
    }
    let store = open(&dir, 64 << 20);
    assert_eq!(store.current_rv(), 51);
    assert!(store.get("configmaps", &key("cm0")).is_none());
    assert_eq!(store.get("configmaps", &key("cm7")).unwrap().rv, 8);
    let resumed = store.events_after("configmaps", 40, 100).unwrap();
    assert_eq!(resumed.first().map(|e| e.object.rv), Some(41));
    assert_eq!(resumed.last().map(|e| e.kind), Some(EventType::Deleted));
    let next = store
        .write("configmaps", &key("new"), Write::Create(obj("new", "x")))
        .unwrap();
    assert_eq!(next.rv, 52);
}

#[tokio::test]
async fn snapshots_and_segment_rotation_keep_state_and_recent_history() {
    let dir = temp_dir();
    {
        let store = open(&dir, 4096);
        for i in 0..300 {
            let name = format!("cm{}", i % 40);
            let write = if i < 40 {
                Write::Create(obj(&name, "x"))
            } else {
                Write::Update {
                    expected_rv: None,
                    value: obj(&name, &format!("v{i}")),
                }
            };
            let o = store.write("configmaps", &key(&name), write).unwrap();
            store.durable(o.rv).await;
        }
        // Let the background snapshot finish before the simulated crash.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while store.snapshotting.load(Ordering::Acquire) {
            assert!(
                std::time::Instant::now() < deadline,
                "snapshot did not finish"
            );
            std::thread::yield_now();
        }
        std::mem::forget(store);
    }
    let snapshots = wal::list_numbered(&dir, "snapshot-", ".snap").unwrap();
    assert_eq!(snapshots.len(), 1, "older snapshots are removed");
    assert!(
        wal::list_numbered(&dir, "wal-", ".log").unwrap().len() <= 2,
        "old segments are removed"
    );
    let store = open(&dir, 4096);
    assert_eq!(store.current_rv(), 300);
    let cm5 = store.get("configmaps", &key("cm5")).unwrap();
    assert_eq!(cm5.labels.get("app").map(String::as_str), Some("v285"));
    assert_eq!(cm5.rv, 286);
    // Recent history is replayable; versions before the kept window are reported as too old.
    assert_eq!(store.events_after("configmaps", 299, 10).unwrap().len(), 1);
    assert!(matches!(
        store.events_after("configmaps", 1, 10),
        Err(StoreError::TooOld { .. })
    ));
}

#[test]
fn owner_and_uid_indexes_follow_writes() {
    let store = Store::open(StoreConfig::default()).unwrap();
    let mut child = obj("child", "x");
    child["metadata"]["ownerReferences"] =
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "parent", "uid": "uid-parent"}]);
    store
        .write("configmaps", &key("child"), Write::Create(child.clone()))
        .unwrap();
    assert_eq!(
        store.dependents_of("uid-parent"),
        vec![("configmaps".to_owned(), key("child"))]
    );
    assert_eq!(
        store.locate_uid("uid-child"),
        Some(("configmaps".to_owned(), key("child")))
    );
    store
        .write(
            "configmaps",
            &key("child"),
            Write::Delete {
                expected_rv: None,
                last: child,
            },
        )
        .unwrap();
    assert!(store.dependents_of("uid-parent").is_empty());
    assert!(store.locate_uid("uid-child").is_none());
}

#[test]
fn history_beyond_its_window_is_too_old() {
    let store = Store::open(StoreConfig {
        history_per_resource: 3,
        ..StoreConfig::default()
    })
    .unwrap();
    for i in 0..6 {
        store
            .write(
                "configmaps",
                &key(&format!("c{i}")),
                Write::Create(obj(&format!("c{i}"), "x")),
            )
            .unwrap();
    }
    assert!(matches!(
        store.events_after("configmaps", 2, 10),
        Err(StoreError::TooOld { oldest: 3, .. })
    ));
}

#[test]
fn a_resource_never_written_has_lost_no_history() {
    // A watch of a kind nobody wrote yet (a new CRD) from a version listed a moment earlier
    // resumes: no event of it can have been dropped.
    let store = Store::open(StoreConfig::default()).unwrap();
    store
        .write("configmaps", &key("a"), Write::Create(obj("a", "x")))
        .unwrap();
    let listed_at = store.current_rv();
    store
        .write("configmaps", &key("b"), Write::Create(obj("b", "x")))
        .unwrap();
    let _changes = store.subscribe("titusjobs.titus.dev");
    assert!(
        store
            .events_after("titusjobs.titus.dev", listed_at, 10)
            .unwrap()
            .is_empty()
    );
}
