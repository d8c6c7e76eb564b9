//! The write verbs: create, update, patch (JSON, merge, strategic, apply), delete and
//! deletecollection, for main resources and their status/scale subresources.
//!
//! # Guarantees
//! - Optimistic concurrency: a stale `resourceVersion` gets 409; patches without one retry on
//!   concurrent writes.
//! - No-op updates do not write (the resourceVersion stays).
//! - Deletion honours finalizers, pod grace periods, preconditions and propagation policies;
//!   the object disappears only when nothing holds it.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::admission::Operation;
use crate::builtin::{self, BuiltinId};
use crate::crd;
use crate::error::{ApiError, FieldError, from_store};
use crate::managed::{self, Scope};
use crate::meta;
use crate::patch::{self, PatchType};
use crate::registry::{ResourceDef, Source};
use crate::server::{Server, WriteOptions, Written};
use crate::store::{StoredObject, Write};

/// Which part of an object a write targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subresource {
    /// The object itself.
    Main,
    /// `/status`.
    Status,
    /// `/scale` (translated onto the object's replicas path).
    Scale,
}

/// `DeleteOptions` that matter.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    /// `gracePeriodSeconds`.
    pub grace_period_seconds: Option<i64>,
    /// `propagationPolicy`: Orphan, Background, Foreground.
    pub propagation_policy: Option<String>,
    /// `preconditions.uid`.
    pub precondition_uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub precondition_rv: Option<String>,
}

/// How managedFields are produced for a write.
enum Managed {
    /// Track it as an Update by this manager.
    Update(String),
    /// Already computed (server-side apply).
    Preset,
}

fn scope(def: &ResourceDef, sub: Subresource) -> Scope {
    match (sub, def.status) {
        (Subresource::Status, _) => Scope::Status,
        (Subresource::Main | Subresource::Scale, true) => Scope::Main,
        (Subresource::Main | Subresource::Scale, false) => Scope::All,
    }
}

fn sub_name(sub: Subresource) -> &'static str {
    match sub {
        Subresource::Main => "",
        Subresource::Status => "status",
        Subresource::Scale => "scale",
    }
}

/// Everything but metadata and status: a change here bumps `metadata.generation`.
fn spec_part(obj: &Value) -> Value {
    let mut copy = obj.clone();
    if let Some(m) = copy.as_object_mut() {
        m.shift_remove("metadata");
        m.shift_remove("status");
    }
    copy
}

impl Server {
    /// Creates an object in `namespace` ("" for cluster-scoped resources).
    ///
    /// # Errors
    /// Bad input (400/422), an existing object (409), admission refusals, a missing or
    /// terminating namespace.
    pub async fn create(
        &self,
        def: &ResourceDef,
        namespace: &str,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        self.check_type_meta(def, &mut obj)?;
        let meta_map = meta::metadata_mut(&mut obj);
        if def.namespaced {
            match meta_map.get("namespace").and_then(Value::as_str) {
                Some(ns) if !ns.is_empty() && ns != namespace => {
                    return Err(ApiError::BadRequest(
                        "the namespace of the provided object does not match the namespace sent on the request".into(),
                    ));
                }
                _ => {
                    meta_map.insert("namespace".into(), json!(namespace));
                }
            }
        } else {
            meta_map.shift_remove("namespace");
        }
        let has_name = meta_map
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        if !has_name
            && let Some(prefix) = meta_map
                .get("generateName")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
        {
            let name = format!("{prefix}{}", meta::random_suffix());
            meta_map.insert("name".into(), json!(name));
        }
        let (obj, warnings) = self.decode(def, obj, opts)?;
        let manager = opts.manager();
        self.create_decoded(def, obj, opts, Managed::Update(manager), warnings)
            .await
    }

    async fn create_decoded(
        &self,
        def: &ResourceDef,
        mut obj: Value,
        opts: &WriteOptions,
        managed: Managed,
        warnings: Vec<String>,
    ) -> Result<Written, ApiError> {
        let now = meta::now_rfc3339();
        {
            let m = meta::metadata_mut(&mut obj);
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(now));
            m.insert("generation".into(), json!(1));
            for system in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                m.shift_remove(system);
            }
            if matches!(managed, Managed::Update(_)) {
                m.shift_remove("managedFields");
            }
        }
        self.prepare_create(def, &mut obj);
        let scope = scope(def, Subresource::Main);
        self.admit(
            def,
            Operation::Create,
            "",
            Some(&mut obj),
            None,
            opts,
            |o| match o {
                Some(o) => self.validate(def, o, None),
                None => Ok(()),
            },
        )?;
        if let Managed::Update(manager) = &managed {
            managed::track_update(
                None,
                &mut obj,
                manager,
                &def.api_version(),
                scope,
                &def.model,
                &now,
            );
        }
        let name = meta::name(&obj).to_owned();
        let namespace = meta::namespace(&obj).to_owned();
        if def.namespaced {
            self.check_namespace_open(&namespace)?;
        }
        if opts.dry_run {
            return Ok(Written {
                object: obj,
                warnings,
                created: true,
            });
        }
        let stored = self
            .store
            .write(
                &def.storage,
                &Self::key(def, &namespace, &name),
                Write::Create(self.to_storage(def, obj)),
            )
            .map_err(|e| from_store(e, Self::target(def, &name)))?;
        self.store.durable(stored.rv).await;
        self.after_write(def, &stored);
        Ok(Written {
            object: self.from_storage(def, stored.value()),
            warnings,
            created: true,
        })
    }

    /// Kind-specific fields of a new object: initial status, CRD conditions, finalizers.
    fn prepare_create(&self, def: &ResourceDef, obj: &mut Value) {
        if let Some(map) = obj.as_object_mut()
            && def.status
        {
            map.shift_remove("status");
        }
        if let Some(kind) = def.builtin() {
            if let Some(status) = builtin::initial_status(kind.id, obj) {
                obj["status"] = status;
            }
            if kind.id == BuiltinId::CustomResourceDefinition {
                let mut fins = meta::finalizers(obj);
                if !fins.iter().any(|f| f == crd::CLEANUP_FINALIZER) {
                    fins.push(crd::CLEANUP_FINALIZER.into());
                }
                meta::set_finalizers(obj, &fins);
                let conflict = self.crd_name_conflict(obj);
                obj["status"] = crd::status(obj, conflict);
            }
        }
    }

    /// Another CRD or built-in already serving this group/plural.
    fn crd_name_conflict(&self, crd_obj: &Value) -> Option<String> {
        let group = crd_obj
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let plural = crd_obj
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or_default();
        self.registry
            .all()
            .into_iter()
            .find(|d| {
                d.group == group
                    && d.plural == plural
                    && !matches!(&d.source, Source::Custom { crd, .. } if crd == meta::name(crd_obj))
            })
            .map(|d| format!("{:?} is already in use", d.plural))
    }

    fn check_namespace_open(&self, namespace: &str) -> Result<(), ApiError> {
        let ns_def = self.builtin_def(BuiltinId::Namespace);
        match self
            .store
            .get(&ns_def.storage, &Self::key(&ns_def, "", namespace))
        {
            None => Err(ApiError::NotFound(Self::target(&ns_def, namespace))),
            Some(ns) if meta::is_deleting(&ns.value()) => Err(ApiError::Forbidden(format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Effects of a committed write on the server itself (CRDs start or stop being served).
    fn after_write(&self, def: &ResourceDef, stored: &StoredObject) {
        if def
            .builtin()
            .is_some_and(|b| b.id == BuiltinId::CustomResourceDefinition)
        {
            self.serve_crd(&stored.value());
        }
    }

    /// Replaces an object (or its status) with `obj`.
    ///
    /// # Errors
    /// NotFound, a stale resourceVersion (409), invalid input, admission refusals.
    pub async fn update(
        &self,
        def: &ResourceDef,
        namespace: &str,
        name: &str,
        mut obj: Value,
        sub: Subresource,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        self.check_type_meta(def, &mut obj)?;
        let body_name = meta::name(&obj);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let old = self.get_stored(def, namespace, name)?;
        let expected = meta::resource_version(&obj);
        let (decoded, warnings) = self.decode(def, obj, opts)?;
        self.update_decoded(
            def,
            &old,
            decoded,
            sub,
            opts,
            Managed::Update(opts.manager()),
            expected.or(Some(old.rv)),
            warnings,
        )
        .await
    }

    pub(crate) fn get_stored(
        &self,
        def: &ResourceDef,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<StoredObject>, ApiError> {
        self.store
            .get(&def.storage, &Self::key(def, namespace, name))
            .ok_or_else(|| ApiError::NotFound(Self::target(def, name)))
    }

    #[allow(clippy::too_many_arguments)]
    async fn update_decoded(
        &self,
        def: &ResourceDef,
        old: &StoredObject,
        incoming: Value,
        sub: Subresource,
        opts: &WriteOptions,
        managed: Managed,
        expected_rv: Option<u64>,
        warnings: Vec<String>,
    ) -> Result<Written, ApiError> {
        let old_v = self.from_storage(def, old.value());
        let mut new = match sub {
            Subresource::Status => {
                let mut n = old_v.clone();
                n["status"] = incoming.get("status").cloned().unwrap_or(Value::Null);
                if let Managed::Preset = managed {
                    n["metadata"]["managedFields"] = incoming
                        .pointer("/metadata/managedFields")
                        .cloned()
                        .unwrap_or(Value::Null);
                }
                n
            }
            Subresource::Main | Subresource::Scale => {
                let mut n = incoming;
                if def.status {
                    match old_v.get("status") {
                        Some(status) => n["status"] = status.clone(),
                        None => {
                            if let Some(m) = n.as_object_mut() {
                                m.shift_remove("status");
                            }
                        }
                    }
                }
                n
            }
        };
        if new.get("status").is_some_and(Value::is_null)
            && let Some(m) = new.as_object_mut()
        {
            m.shift_remove("status");
        }
        carry_system_metadata(&old_v, &mut new, matches!(managed, Managed::Update(_)));
        let old_finalizers = meta::finalizers(&old_v);
        if meta::is_deleting(&old_v)
            && let Some(added) = meta::finalizers(&new)
                .into_iter()
                .find(|f| !old_finalizers.contains(f))
        {
            return Err(ApiError::Invalid {
                target: crate::error::Target::new(&def.group, &def.kind, meta::name(&old_v)),
                causes: vec![FieldError::forbidden(
                    "metadata.finalizers",
                    format!(
                        "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{added:?}}}"
                    ),
                )],
            });
        }
        self.admit(
            def,
            Operation::Update,
            sub_name(sub),
            Some(&mut new),
            Some(&old_v),
            opts,
            |o| match o {
                Some(o) => self.validate(def, o, Some(&old_v)),
                None => Ok(()),
            },
        )?;
        if def
            .builtin()
            .is_some_and(|b| b.id == BuiltinId::CustomResourceDefinition)
        {
            let conflict = self.crd_name_conflict(&new);
            new["status"] = crd::status(&new, conflict);
        }
        if spec_part(&new) != spec_part(&old_v) {
            new["metadata"]["generation"] = json!(meta::generation(&old_v) + 1);
        }
        let mut unchanged_check = new.clone();
        meta::set_resource_version(&mut unchanged_check, old.rv);
        if let Managed::Preset = managed {
            // Apply results carry fresh managedFields; compare them too.
        } else if unchanged_check == old_v {
            return Ok(Written {
                object: old_v,
                warnings,
                created: false,
            });
        }
        if let Managed::Update(manager) = &managed {
            managed::track_update(
                Some(&old_v),
                &mut new,
                manager,
                &def.api_version(),
                scope(def, sub),
                &def.model,
                &meta::now_rfc3339(),
            );
        }
        let mut check = new.clone();
        meta::set_resource_version(&mut check, old.rv);
        if check == old_v {
            return Ok(Written {
                object: old_v,
                warnings,
                created: false,
            });
        }
        if opts.dry_run {
            return Ok(Written {
                object: new,
                warnings,
                created: false,
            });
        }
        let key = old.key.clone();
        let name = old.key.name.clone();
        // As Kubernetes: an update removes a terminating object only once nothing holds it — no
        // finalizers and no grace period left (a pod's kubelet still reports during its grace).
        let grace_left = new
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            > 0;
        let write = if meta::is_deleting(&new) && meta::finalizers(&new).is_empty() && !grace_left {
            Write::Delete {
                expected_rv,
                last: self.to_storage(def, new),
            }
        } else {
            Write::Update {
                expected_rv,
                value: self.to_storage(def, new),
            }
        };
        let deleted = matches!(write, Write::Delete { .. });
        let stored = self
            .store
            .write(&def.storage, &key, write)
            .map_err(|e| from_store(e, Self::target(def, &name)))?;
        self.store.durable(stored.rv).await;
        self.after_write(def, &stored);
        if deleted || meta::finalizers(&stored.value()).len() != old_finalizers.len() {
            self.wake_gc();
        }
        Ok(Written {
            object: self.from_storage(def, stored.value()),
            warnings,
            created: false,
        })
    }

    /// Patches an object (or its status/scale). Server-side apply creates missing objects.
    ///
    /// # Errors
    /// As [`Server::update`], plus malformed patches (400), unsupported patch types (415) and
    /// apply conflicts (409).
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        def: &ResourceDef,
        namespace: &str,
        name: &str,
        patch_type: PatchType,
        body: &[u8],
        sub: Subresource,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let patch_value = parse_patch(patch_type, body)?;
        if patch_type == PatchType::Strategic && def.builtin().is_none() {
            return Err(ApiError::UnsupportedMediaType("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".to_string()));
        }
        if patch_type == PatchType::Apply && opts.field_manager.as_deref().is_none_or(str::is_empty)
        {
            return Err(ApiError::BadRequest(
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into(),
            ));
        }
        let patch_rv = patch_value
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok());
        for _attempt in 0..8 {
            let old = self
                .store
                .get(&def.storage, &Self::key(def, namespace, name));
            let Some(old) = old else {
                if patch_type == PatchType::Apply && sub == Subresource::Main {
                    return self
                        .apply_create(def, namespace, name, patch_value, opts)
                        .await;
                }
                return Err(ApiError::NotFound(Self::target(def, name)));
            };
            let old_v = self.from_storage(def, old.value());
            let (new, managed) = match sub {
                Subresource::Scale => (
                    self.patch_scale(def, &old_v, patch_type, &patch_value)?,
                    Managed::Update(opts.manager()),
                ),
                Subresource::Main | Subresource::Status => {
                    self.patched(def, &old_v, patch_type, &patch_value, sub, opts)?
                }
            };
            let mut new = new;
            self.check_type_meta(def, &mut new)?;
            let (decoded, warnings) = self.decode(def, new, opts)?;
            let expected = patch_rv.or(Some(old.rv));
            match self
                .update_decoded(def, &old, decoded, sub, opts, managed, expected, warnings)
                .await
            {
                Err(ApiError::Conflict { .. }) if patch_rv.is_none() => continue,
                result => return result,
            }
        }
        Err(ApiError::Conflict {
            target: Self::target(def, name),
            message: "the object is being modified too often; please try again".into(),
        })
    }

    fn patched(
        &self,
        def: &ResourceDef,
        old: &Value,
        patch_type: PatchType,
        patch_value: &Value,
        sub: Subresource,
        opts: &WriteOptions,
    ) -> Result<(Value, Managed), ApiError> {
        let mut doc = old.clone();
        let bad = |e: String| ApiError::BadRequest(e);
        match patch_type {
            PatchType::Json => {
                patch::json_patch(&mut doc, patch_value).map_err(|e| ApiError::Invalid {
                    target: crate::error::Target::new(&def.group, &def.kind, meta::name(old)),
                    causes: vec![FieldError::invalid("", &Value::Null, e)],
                })?
            }
            PatchType::Merge => patch::merge_patch(&mut doc, patch_value),
            PatchType::Strategic => {
                patch::strategic_merge(&mut doc, patch_value, &def.model, def.model.root())
                    .map_err(bad)?
            }
            PatchType::Apply => {
                let applied_name = meta::name(patch_value);
                if !applied_name.is_empty() && applied_name != meta::name(old) {
                    return Err(ApiError::BadRequest(format!(
                        "the name of the object ({applied_name}) does not match the name on the URL ({})",
                        meta::name(old)
                    )));
                }
                let manager = opts.field_manager.clone().unwrap_or_default();
                let merged = managed::apply(
                    Some(old),
                    patch_value,
                    &manager,
                    opts.force,
                    &def.api_version(),
                    scope(def, sub),
                    &def.model,
                    &meta::now_rfc3339(),
                )
                .map_err(|conflicts| ApiError::ApplyConflict {
                    target: Self::target(def, meta::name(old)),
                    message: managed::conflict_message(&conflicts),
                    causes: conflicts
                        .into_iter()
                        .map(|c| (c.field, c.manager))
                        .collect(),
                })?;
                return Ok((merged, Managed::Preset));
            }
        }
        Ok((doc, Managed::Update(opts.manager())))
    }

    async fn apply_create(
        &self,
        def: &ResourceDef,
        namespace: &str,
        name: &str,
        applied: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let mut applied = applied;
        self.check_type_meta(def, &mut applied)?;
        let applied_name = meta::name(&applied);
        if !applied_name.is_empty() && applied_name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({applied_name}) does not match the name on the URL ({name})"
            )));
        }
        meta::set_meta_str(&mut applied, "name", name);
        if def.namespaced {
            meta::set_meta_str(&mut applied, "namespace", namespace);
        }
        let (decoded, warnings) = self.decode(def, applied, opts)?;
        let manager = opts.field_manager.clone().unwrap_or_default();
        let scope = scope(def, Subresource::Main);
        let merged = managed::apply(
            None,
            &decoded,
            &manager,
            opts.force,
            &def.api_version(),
            scope,
            &def.model,
            &meta::now_rfc3339(),
        )
        .map_err(|_| ApiError::Internal("apply to a new object cannot conflict".into()))?;
        self.create_decoded(def, merged, opts, Managed::Preset, warnings)
            .await
    }

    /// Deletes an object, or marks it for deletion when finalizers or a grace period hold it.
    ///
    /// # Errors
    /// NotFound, failed preconditions (409), admission refusals.
    pub async fn delete(
        &self,
        def: &ResourceDef,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        for _attempt in 0..8 {
            let old = self.get_stored(def, namespace, name)?;
            let old_v = self.from_storage(def, old.value());
            check_preconditions(def, &old_v, options)?;
            self.admit(def, Operation::Delete, "", None, Some(&old_v), opts, |_| {
                Ok(())
            })?;
            let plan = plan_delete(def, &old_v, options, &meta::now_rfc3339());
            if opts.dry_run {
                return Ok(Written {
                    object: old_v,
                    warnings: Vec::new(),
                    created: false,
                });
            }
            let (write, deleted) = match plan {
                DeletePlan::Unchanged => {
                    return Ok(Written {
                        object: old_v,
                        warnings: Vec::new(),
                        created: false,
                    });
                }
                DeletePlan::Remove(last) => (
                    Write::Delete {
                        expected_rv: Some(old.rv),
                        last: self.to_storage(def, last),
                    },
                    true,
                ),
                DeletePlan::Mark(marked) => (
                    Write::Update {
                        expected_rv: Some(old.rv),
                        value: self.to_storage(def, marked),
                    },
                    false,
                ),
            };
            match self.store.write(&def.storage, &old.key, write) {
                Ok(stored) => {
                    self.store.durable(stored.rv).await;
                    self.after_write(def, &stored);
                    if deleted
                        && def
                            .builtin()
                            .is_some_and(|b| b.id == BuiltinId::CustomResourceDefinition)
                    {
                        self.registry.set_custom(name, Vec::new());
                    }
                    self.wake_gc();
                    return Ok(Written {
                        object: self.from_storage(def, stored.value()),
                        warnings: Vec::new(),
                        created: false,
                    });
                }
                Err(crate::store::StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(from_store(e, Self::target(def, name))),
            }
        }
        Err(ApiError::Conflict {
            target: Self::target(def, name),
            message: "the object is being modified too often".into(),
        })
    }

    /// Deletes every object matching `keep` in the namespace (all namespaces when `None`).
    ///
    /// # Errors
    /// The first failure other than NotFound.
    pub async fn delete_collection(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        keep: &(dyn Fn(&StoredObject) -> bool + Send + Sync),
        options: &DeleteOptions,
        opts: &WriteOptions,
    ) -> Result<Vec<Value>, ApiError> {
        let (objects, _, _) = self.store.list(&def.storage, namespace, None, None, keep);
        let mut deleted = Vec::new();
        for obj in objects {
            match self
                .delete(def, &obj.key.namespace, &obj.key.name, options, opts)
                .await
            {
                Ok(w) => deleted.push(w.object),
                Err(ApiError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }
}

/// Keeps what clients cannot change through updates.
fn carry_system_metadata(old: &Value, new: &mut Value, keep_managed: bool) {
    let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let m = meta::metadata_mut(new);
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "name",
        "namespace",
        "generation",
    ] {
        match old_meta.get(field) {
            Some(v) => {
                m.insert(field.into(), v.clone());
            }
            None => {
                m.shift_remove(field);
            }
        }
    }
    if keep_managed {
        match old_meta.get("managedFields") {
            Some(v) => {
                m.insert("managedFields".into(), v.clone());
            }
            None => {
                m.shift_remove("managedFields");
            }
        }
    }
}

fn parse_patch(patch_type: PatchType, body: &[u8]) -> Result<Value, ApiError> {
    let parsed: Result<Value, String> = match patch_type {
        PatchType::Apply => {
            let text =
                std::str::from_utf8(body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            serde_saphyr::from_str::<Value>(text).map_err(|e| e.to_string())
        }
        PatchType::Json | PatchType::Merge | PatchType::Strategic => {
            serde_json::from_slice(body).map_err(|e| e.to_string())
        }
    };
    let value = parsed.map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?;
    match (patch_type, &value) {
        (PatchType::Json, Value::Array(_)) => Ok(value),
        (PatchType::Json, _) => Err(ApiError::BadRequest(
            "json patch must be an array of operations".into(),
        )),
        (_, Value::Object(_)) => Ok(value),
        _ => Err(ApiError::BadRequest(
            "the patch must be a JSON object".into(),
        )),
    }
}

fn check_preconditions(
    def: &ResourceDef,
    obj: &Value,
    options: &DeleteOptions,
) -> Result<(), ApiError> {
    let name = meta::name(obj);
    if let Some(uid) = options
        .precondition_uid
        .as_deref()
        .filter(|u| !u.is_empty())
        && uid != meta::uid(obj)
    {
        return Err(ApiError::Conflict {
            target: Server::target(def, name),
            message: format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                meta::uid(obj)
            ),
        });
    }
    if let Some(rv) = options.precondition_rv.as_deref().filter(|r| !r.is_empty()) {
        let actual = meta::meta_str(obj, "resourceVersion").unwrap_or_default();
        if rv != actual {
            return Err(ApiError::Conflict {
                target: Server::target(def, name),
                message: format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                ),
            });
        }
    }
    Ok(())
}

/// What a delete does to an object.
#[derive(Debug, PartialEq)]
enum DeletePlan {
    /// Remove it now (its final state).
    Remove(Value),
    /// Keep it with a deletionTimestamp (and maybe an added finalizer).
    Mark(Value),
    /// Already being deleted and nothing new: leave it.
    Unchanged,
}

/// The pure decision of a delete: finalizers, propagation policy, pod grace periods.
fn plan_delete(def: &ResourceDef, obj: &Value, options: &DeleteOptions, now: &str) -> DeletePlan {
    let is_pod = def.builtin().is_some_and(|b| b.id == BuiltinId::Pod);
    let mut finalizers = meta::finalizers(obj);
    match options.propagation_policy.as_deref() {
        Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => {
            finalizers.push("orphan".into())
        }
        Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
            finalizers.push("foregroundDeletion".into());
        }
        _ => {}
    }
    let grace = if is_pod { pod_grace(obj, options) } else { 0 };
    let spec_finalizers = def.builtin().is_some_and(|b| b.id == BuiltinId::Namespace)
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
    if meta::is_deleting(obj) {
        let mut marked = obj.clone();
        let mut changed = finalizers != meta::finalizers(obj);
        if is_pod {
            let current = obj
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if grace < current {
                changed = true;
                set_deletion(&mut marked, now, grace);
            }
        }
        if finalizers.is_empty() && !spec_finalizers && (!is_pod || grace == 0) {
            return DeletePlan::Remove(marked);
        }
        if !changed {
            return DeletePlan::Unchanged;
        }
        meta::set_finalizers(&mut marked, &finalizers);
        return DeletePlan::Mark(marked);
    }
    if finalizers.is_empty() && grace == 0 && !spec_finalizers {
        return DeletePlan::Remove(obj.clone());
    }
    let mut marked = obj.clone();
    meta::set_finalizers(&mut marked, &finalizers);
    set_deletion(&mut marked, now, grace);
    if spec_finalizers {
        marked["status"]["phase"] = json!("Terminating");
    }
    DeletePlan::Mark(marked)
}

fn set_deletion(obj: &mut Value, now: &str, grace: i64) {
    let at = meta::parse_time(now)
        .and_then(|t| t.checked_add(jiff::SignedDuration::from_secs(grace)).ok())
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| now.to_owned());
    let m = meta::metadata_mut(obj);
    m.insert("deletionTimestamp".into(), json!(at));
    m.insert("deletionGracePeriodSeconds".into(), json!(grace));
}

/// A pod's grace period: none when it never ran on a node or already finished.
fn pod_grace(pod: &Value, options: &DeleteOptions) -> i64 {
    let unscheduled = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if unscheduled || phase == "Succeeded" || phase == "Failed" {
        return 0;
    }
    options
        .grace_period_seconds
        .or_else(|| {
            pod.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30)
        .max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn pod(node: Option<&str>, phase: &str) -> Value {
        let mut p = json!({"metadata": {"name": "p"}, "spec": {"terminationGracePeriodSeconds": 20}, "status": {"phase": phase}});
        if let Some(n) = node {
            p["spec"]["nodeName"] = json!(n);
        }
        p
    }

    #[test]
    fn deletion_plans_follow_kubernetes_rules() {
        let registry = Registry::new();
        let pods = registry.get("", "v1", "pods").unwrap();
        let cms = registry.get("", "v1", "configmaps").unwrap();
        let none = DeleteOptions::default();
        let now = "2026-01-01T00:00:00Z";
        // Unscheduled and finished pods go at once; running pods get their grace period.
        assert!(matches!(
            plan_delete(&pods, &pod(None, "Pending"), &none, now),
            DeletePlan::Remove(_)
        ));
        assert!(matches!(
            plan_delete(&pods, &pod(Some("n"), "Failed"), &none, now),
            DeletePlan::Remove(_)
        ));
        let DeletePlan::Mark(marked) = plan_delete(&pods, &pod(Some("n"), "Running"), &none, now)
        else {
            panic!()
        };
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 20);
        assert_eq!(
            marked["metadata"]["deletionTimestamp"],
            "2026-01-01T00:00:20Z"
        );
        // The kubelet's final delete with grace 0 removes it.
        let zero = DeleteOptions {
            grace_period_seconds: Some(0),
            ..DeleteOptions::default()
        };
        assert!(matches!(
            plan_delete(&pods, &marked, &zero, now),
            DeletePlan::Remove(_)
        ));
        // Finalizers hold objects; repeated deletes change nothing.
        let held = json!({"metadata": {"name": "c", "finalizers": ["x/y"]}});
        let DeletePlan::Mark(marked) = plan_delete(&cms, &held, &none, now) else {
            panic!()
        };
        assert_eq!(
            plan_delete(&cms, &marked, &none, now),
            DeletePlan::Unchanged
        );
        // Propagation policies add their finalizers.
        let plain = json!({"metadata": {"name": "c"}});
        let fg = DeleteOptions {
            propagation_policy: Some("Foreground".into()),
            ..DeleteOptions::default()
        };
        let DeletePlan::Mark(marked) = plan_delete(&cms, &plain, &fg, now) else {
            panic!()
        };
        assert_eq!(meta::finalizers(&marked), vec!["foregroundDeletion"]);
        assert!(matches!(
            plan_delete(&cms, &plain, &none, now),
            DeletePlan::Remove(_)
        ));
    }
}
