//! The server's own controllers, run as one level-triggered loop: the ownerReference garbage
//! collector (background, foreground and orphan propagation), namespace termination, CRD
//! cleanup, and pods bound to nodes that no longer exist.
//!
//! Each pass recomputes what to do from the current objects, so a restart at any point
//! simply resumes; it runs on every deletion and every `gc_interval`.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::builtin::BuiltinId;
use crate::crd::CLEANUP_FINALIZER;
use crate::error::ApiError;
use crate::meta;
use crate::registry::ResourceDef;
use crate::server::{Server, WriteOptions};
use crate::store::{ObjectKey, StoredObject, Write};
use crate::write::{DeleteOptions, Subresource};

const MANAGER: &str = "garbage-collector";

/// Starts the loop on the current runtime.
pub fn spawn(server: Arc<Server>) {
    tokio::spawn(async move {
        loop {
            if let Err(error) = pass(&server).await {
                tracing::warn!(%error, "garbage collection pass failed; retrying");
            }
            tokio::select! {
                () = server.gc_wake.notified() => {}
                () = tokio::time::sleep(server.config.gc_interval) => {}
            }
        }
    });
}

/// One pass over every object.
///
/// # Errors
/// The first write failure (the next pass retries).
pub async fn pass(server: &Arc<Server>) -> Result<(), ApiError> {
    let opts = WriteOptions::system(MANAGER);
    for storage in server.store.resources() {
        let Some(def) = server.registry.by_storage(&storage) else {
            continue;
        };
        let (objects, _, _) = server.store.list(&storage, None, None, None, &|_| true);
        for obj in objects {
            if obj.deleting {
                finalize(server, &def, &obj, &opts).await?;
            } else if !obj.owner_uids.is_empty()
                && obj
                    .owner_uids
                    .iter()
                    .all(|uid| server.store.locate_uid(uid).is_none())
            {
                let background = DeleteOptions {
                    propagation_policy: Some("Background".into()),
                    ..DeleteOptions::default()
                };
                ignore_gone(
                    server
                        .delete(&def, &obj.key.namespace, &obj.key.name, &background, &opts)
                        .await,
                )?;
            }
        }
    }
    Ok(())
}

fn ignore_gone<T>(result: Result<T, ApiError>) -> Result<(), ApiError> {
    match result {
        Ok(_) | Err(ApiError::NotFound(_) | ApiError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Works on an object that is being deleted: whatever its finalizers wait for.
async fn finalize(
    server: &Arc<Server>,
    def: &Arc<ResourceDef>,
    obj: &StoredObject,
    opts: &WriteOptions,
) -> Result<(), ApiError> {
    let value = obj.value();
    let finalizers = meta::finalizers(&value);
    let dependents = server.store.dependents_of(&obj.uid);
    if finalizers.iter().any(|f| f == "orphan") {
        for (storage, key) in &dependents {
            orphan(server, storage, key, &obj.uid).await?;
        }
        return remove_finalizer(server, def, obj, "orphan", opts).await;
    }
    if finalizers.iter().any(|f| f == "foregroundDeletion") {
        if dependents.is_empty() {
            return remove_finalizer(server, def, obj, "foregroundDeletion", opts).await;
        }
        let foreground = DeleteOptions {
            propagation_policy: Some("Foreground".into()),
            ..DeleteOptions::default()
        };
        for (storage, key) in &dependents {
            if let Some(dep_def) = server.registry.by_storage(storage) {
                ignore_gone(
                    server
                        .delete(&dep_def, &key.namespace, &key.name, &foreground, opts)
                        .await,
                )?;
            }
        }
        return Ok(());
    }
    match def.builtin().map(|b| b.id) {
        Some(BuiltinId::Namespace) => terminate_namespace(server, def, obj, opts).await,
        Some(BuiltinId::CustomResourceDefinition)
            if finalizers.iter().any(|f| f == CLEANUP_FINALIZER) =>
        {
            cleanup_crd(server, def, obj, opts).await
        }
        Some(BuiltinId::Pod) => {
            // Like Kubernetes' pod GC: a terminating pod whose node is gone has nobody to finish
            // it; once its grace period is over, remove it.
            let node = value
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let nodes = server.builtin_def(BuiltinId::Node);
            let overdue = meta::meta_str(&value, "deletionTimestamp")
                .and_then(meta::parse_time)
                .is_some_and(|deadline| deadline <= jiff::Timestamp::now());
            let node_gone = !node.is_empty()
                && server
                    .store
                    .get(&nodes.storage, &ObjectKey::new("", node))
                    .is_none();
            if finalizers.is_empty() && overdue && node_gone {
                let now = DeleteOptions {
                    grace_period_seconds: Some(0),
                    ..DeleteOptions::default()
                };
                ignore_gone(
                    server
                        .delete(def, &obj.key.namespace, &obj.key.name, &now, opts)
                        .await,
                )?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Drops the owner reference to `owner_uid` from a dependent.
async fn orphan(
    server: &Arc<Server>,
    storage: &str,
    key: &ObjectKey,
    owner_uid: &str,
) -> Result<(), ApiError> {
    let Some(def) = server.registry.by_storage(storage) else {
        return Ok(());
    };
    let Some(stored) = server.store.get(storage, key) else {
        return Ok(());
    };
    let mut value = server.from_storage(&def, stored.value());
    if let Some(refs) = value
        .pointer_mut("/metadata/ownerReferences")
        .and_then(Value::as_array_mut)
    {
        refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
        if refs.is_empty() {
            meta::metadata_mut(&mut value).shift_remove("ownerReferences");
        }
    }
    ignore_gone(
        server
            .update(
                &def,
                &key.namespace,
                &key.name,
                value,
                Subresource::Main,
                &WriteOptions::system(MANAGER),
            )
            .await,
    )
}

async fn remove_finalizer(
    server: &Arc<Server>,
    def: &ResourceDef,
    obj: &StoredObject,
    finalizer: &str,
    opts: &WriteOptions,
) -> Result<(), ApiError> {
    let mut value = server.from_storage(def, obj.value());
    let remaining: Vec<String> = meta::finalizers(&value)
        .into_iter()
        .filter(|f| f != finalizer)
        .collect();
    meta::set_finalizers(&mut value, &remaining);
    ignore_gone(
        server
            .update(
                def,
                &obj.key.namespace,
                &obj.key.name,
                value,
                Subresource::Main,
                opts,
            )
            .await,
    )
}

/// Deletes everything in a terminating namespace, then lets the namespace go.
async fn terminate_namespace(
    server: &Arc<Server>,
    def: &ResourceDef,
    obj: &StoredObject,
    opts: &WriteOptions,
) -> Result<(), ApiError> {
    let namespace = obj.key.name.clone();
    let mut remaining = 0;
    let mut seen = Vec::new();
    for res in server.registry.all() {
        if !res.namespaced || seen.contains(&res.storage) {
            continue;
        }
        seen.push(res.storage.clone());
        let Some(storage_def) = server.registry.by_storage(&res.storage) else {
            continue;
        };
        let deleted = server
            .delete_collection(
                &storage_def,
                Some(&namespace),
                &|o| !o.deleting,
                &DeleteOptions::default(),
                opts,
            )
            .await?;
        let (left, _, _) = server
            .store
            .list(&res.storage, Some(&namespace), None, None, &|_| true);
        remaining += left.len();
        let _ = deleted;
    }
    if remaining > 0 {
        return Ok(());
    }
    let value = obj.value();
    if !meta::finalizers(&value).is_empty() {
        return Ok(());
    }
    // spec.finalizers ("kubernetes") is ours to clear; then the namespace is gone.
    match server.store.write(
        &def.storage,
        &obj.key,
        Write::Delete {
            expected_rv: Some(obj.rv),
            last: finalized(value),
        },
    ) {
        Ok(stored) => {
            server.store.durable(stored.rv).await;
            Ok(())
        }
        Err(_) => Ok(()),
    }
}

fn finalized(mut ns: Value) -> Value {
    ns["spec"]["finalizers"] = json!([]);
    ns
}

/// Deletes every custom resource of a CRD being deleted, then releases it.
async fn cleanup_crd(
    server: &Arc<Server>,
    def: &ResourceDef,
    obj: &StoredObject,
    opts: &WriteOptions,
) -> Result<(), ApiError> {
    let crd_name = obj.key.name.clone();
    let (left, _, _) = server.store.list(&crd_name, None, None, None, &|_| true);
    if left.is_empty() {
        return remove_finalizer(server, def, obj, CLEANUP_FINALIZER, opts).await;
    }
    if let Some(cr_def) = server.registry.by_storage(&crd_name) {
        for cr in left.iter().filter(|o| !o.deleting) {
            ignore_gone(
                server
                    .delete(
                        &cr_def,
                        &cr.key.namespace,
                        &cr.key.name,
                        &DeleteOptions::default(),
                        opts,
                    )
                    .await,
            )?;
        }
    }
    Ok(())
}
