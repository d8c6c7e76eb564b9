//! The API server's shared state and the steps every write shares: type checks, decoding
//! (typed or structural), version conversion, metadata validation and admission.
//!
//! The write verbs themselves are in [`crate::write`], reads and watches in [`crate::read`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::admission::{Admission, AdmissionRequest, Operation, Rejection};
use crate::builtin::{self, BUILTINS, BuiltinId};
use crate::crd;
use crate::error::{ApiError, FieldError, Target};
use crate::events;
use crate::meta;
use crate::registry::{Registry, ResourceDef, Source};
use crate::store::{ObjectKey, Store, StoreConfig, StoreError};

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where objects are stored; `None` keeps them in memory only (tests).
    pub data_dir: Option<PathBuf>,
    /// fsync the log before acknowledging writes.
    pub fsync: bool,
    /// Watch history kept per resource.
    pub history_per_resource: usize,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
    /// How often the garbage collector rescans everything (it also runs on every deletion).
    pub gc_interval: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            data_dir: None,
            fsync: true,
            history_per_resource: 50_000,
            bookmark_interval: Duration::from_secs(10),
            gc_interval: Duration::from_secs(5),
        }
    }
}

/// How a request wants unknown fields treated (`fieldValidation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Refuse the request.
    Strict,
    /// Drop them and warn.
    #[default]
    Warn,
    /// Drop them silently.
    Ignore,
}

/// Per-request write options.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: do everything but persist.
    pub dry_run: bool,
    /// `fieldManager`.
    pub field_manager: Option<String>,
    /// `fieldValidation`.
    pub field_validation: FieldValidation,
    /// Authenticated user.
    pub user: String,
    /// The client's User-Agent (default field manager).
    pub user_agent: String,
    /// `force` for server-side apply.
    pub force: bool,
}

impl WriteOptions {
    /// Options for writes the server makes itself (garbage collector, controllers).
    pub fn system(manager: &str) -> Self {
        Self {
            field_manager: Some(manager.to_owned()),
            user: "system:apiserver".into(),
            field_validation: FieldValidation::Ignore,
            ..Self::default()
        }
    }

    /// The field manager of a non-apply write: the parameter, else the User-Agent's program name.
    pub fn manager(&self) -> String {
        if let Some(m) = self.field_manager.as_ref().filter(|m| !m.is_empty()) {
            return m.clone();
        }
        let agent = self.user_agent.split('/').next().unwrap_or_default();
        if agent.is_empty() {
            "unknown".into()
        } else {
            agent.to_owned()
        }
    }
}

/// The result of a write.
#[derive(Debug)]
pub struct Written {
    /// The object as stored, in the requested version.
    pub object: Value,
    /// Warnings for the `Warning` header.
    pub warnings: Vec<String>,
    /// True when the write created the object (201).
    pub created: bool,
}

/// The API server.
pub struct Server {
    /// Objects.
    pub store: Arc<Store>,
    /// Served resources.
    pub registry: Registry,
    /// Admission hooks.
    pub admission: Admission,
    pub(crate) config: ServerConfig,
    pub(crate) gc_wake: tokio::sync::Notify,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Namespaces that always exist.
pub const DEFAULT_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

impl Server {
    /// Opens the store, serves every stored CRD again and makes sure the default namespaces exist.
    /// Starts the garbage collector on the current tokio runtime.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn open(config: ServerConfig) -> Result<Arc<Server>, StoreError> {
        let store = Store::open(StoreConfig {
            dir: config.data_dir.clone(),
            fsync: config.fsync,
            history_per_resource: config.history_per_resource,
            ..StoreConfig::default()
        })?;
        let server = Arc::new(Server {
            store,
            registry: Registry::new(),
            admission: Admission::default(),
            config,
            gc_wake: tokio::sync::Notify::new(),
        });
        for kind in BUILTINS {
            if let Some(def) = server.registry.get(kind.group, kind.version, kind.plural) {
                server.install_field_extractor(&def);
            }
        }
        let crd_def = server.crd_def();
        let (crds, _, _) = server
            .store
            .list(&crd_def.storage, None, None, None, &|_| true);
        for stored in crds {
            server.serve_crd(&stored.value());
        }
        for ns in DEFAULT_NAMESPACES {
            server.ensure_namespace(ns).await;
        }
        crate::gc::spawn(server.clone());
        Ok(server)
    }

    async fn ensure_namespace(&self, name: &str) {
        let def = self.builtin_def(BuiltinId::Namespace);
        if self
            .store
            .get(&def.storage, &ObjectKey::new("", name))
            .is_some()
        {
            return;
        }
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        if let Err(error) = self
            .create(&def, "", ns, &WriteOptions::system("titus-apiserver"))
            .await
        {
            tracing::warn!(%error, namespace = name, "could not create a default namespace");
        }
    }

    /// The definition of a built-in kind.
    pub fn builtin_def(&self, id: BuiltinId) -> Arc<ResourceDef> {
        let kind = builtin::builtin(id);
        // Built-ins are registered at construction and never removed.
        match self.registry.get(kind.group, kind.version, kind.plural) {
            Some(def) => def,
            None => unreachable!("built-in kind {} is always registered", kind.kind),
        }
    }

    fn crd_def(&self) -> Arc<ResourceDef> {
        self.builtin_def(BuiltinId::CustomResourceDefinition)
    }

    /// Registers field-selector extraction for a resource's storage.
    pub(crate) fn install_field_extractor(&self, def: &ResourceDef) {
        let labels = def.field_labels.clone();
        self.store.set_field_extractor(
            &def.storage,
            Arc::new(move |obj: &Value| {
                labels
                    .iter()
                    .map(|l| (l.clone(), builtin::field_value(obj, l)))
                    .collect()
            }),
        );
    }

    /// Serves (or stops serving) the resources of a stored CRD, according to its status.
    pub(crate) fn serve_crd(&self, crd_obj: &Value) {
        let name = meta::name(crd_obj);
        if !crd::is_established(crd_obj) {
            self.registry.set_custom(name, Vec::new());
            return;
        }
        match crd::resource_defs(crd_obj, &self.registry) {
            Ok(defs) => {
                if let Some(first) = defs.first() {
                    self.install_field_extractor(first);
                }
                self.registry.set_custom(name, defs);
            }
            Err(error) => tracing::warn!(crd = name, %error, "cannot serve CRD"),
        }
    }

    /// Storage form of an object of `def`'s version.
    pub(crate) fn to_storage(&self, def: &ResourceDef, obj: Value) -> Value {
        match (&def.source, def.builtin().map(|b| b.id)) {
            (_, Some(BuiltinId::EventV1)) => events::to_core(obj),
            (Source::Custom { .. }, _) if def.version != def.storage_version => {
                let mut obj = obj;
                obj["apiVersion"] = json!(format!("{}/{}", def.group, def.storage_version));
                obj
            }
            _ => obj,
        }
    }

    /// An object in storage form, as `def`'s version serves it.
    pub fn from_storage(&self, def: &ResourceDef, obj: Value) -> Value {
        match (&def.source, def.builtin().map(|b| b.id)) {
            (_, Some(BuiltinId::EventV1)) => events::to_events_v1(obj),
            (Source::Custom { .. }, _) if def.version != def.storage_version => {
                let mut obj = obj;
                obj["apiVersion"] = json!(def.api_version());
                obj
            }
            _ => obj,
        }
    }

    /// Checks `apiVersion`/`kind` of a request body against the endpoint, filling them in.
    pub(crate) fn check_type_meta(
        &self,
        def: &ResourceDef,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        if !obj.is_object() {
            return Err(ApiError::BadRequest(
                "the request body must be a JSON object".into(),
            ));
        }
        let api_version = def.api_version();
        match obj.get("apiVersion").and_then(Value::as_str) {
            Some(v) if !v.is_empty() && v != api_version => {
                return Err(ApiError::BadRequest(format!(
                    "the API version in the data ({v}) does not match the expected API version ({api_version})"
                )));
            }
            _ => obj["apiVersion"] = json!(api_version),
        }
        match obj.get("kind").and_then(Value::as_str) {
            Some(k) if !k.is_empty() && k != def.kind => {
                return Err(ApiError::BadRequest(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    def.kind
                )));
            }
            _ => obj["kind"] = json!(def.kind),
        }
        Ok(())
    }

    /// Decodes a body of `def`'s kind: type-checks, prunes unknown fields (per
    /// `fieldValidation`) and applies defaults. Returns the object and its warnings.
    pub(crate) fn decode(
        &self,
        def: &ResourceDef,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let cannot = |detail: String| {
            ApiError::BadRequest(format!(
                "{} in version {:?} cannot be handled as a {}: {detail}",
                def.kind, def.version, def.kind
            ))
        };
        let (mut obj, unknown) = match &def.source {
            Source::Builtin(kind) => kind.decode(obj).map_err(cannot)?,
            Source::Custom {
                schema,
                preserve_unknown,
                ..
            } => {
                let mut obj = obj;
                let unknown = match schema {
                    Some(s) if !preserve_unknown => s.prune(&mut obj),
                    _ => Vec::new(),
                };
                (obj, unknown)
            }
        };
        let mut warnings = Vec::new();
        if !unknown.is_empty() {
            match opts.field_validation {
                FieldValidation::Strict => {
                    let list: Vec<String> = unknown
                        .iter()
                        .map(|p| format!("unknown field {p:?}"))
                        .collect();
                    return Err(cannot(format!(
                        "strict decoding error: {}",
                        list.join(", ")
                    )));
                }
                FieldValidation::Warn => {
                    warnings.extend(unknown.iter().map(|p| format!("unknown field {p:?}")))
                }
                FieldValidation::Ignore => {}
            }
        }
        match &def.source {
            Source::Builtin(kind) => builtin::apply_defaults(kind.id, &mut obj),
            Source::Custom {
                schema: Some(s), ..
            } => s.default(&mut obj),
            Source::Custom { schema: None, .. } => {}
        }
        Ok((obj, warnings))
    }

    /// Validates metadata and the kind's own rules; `Err` lists every problem.
    pub(crate) fn validate(
        &self,
        def: &ResourceDef,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let mut errors = validate_metadata(def, obj);
        match &def.source {
            Source::Builtin(kind) => {
                errors.extend(builtin::validate(kind.id, obj, old));
                if kind.id == BuiltinId::CustomResourceDefinition {
                    errors.extend(crd::validate(obj));
                }
            }
            Source::Custom {
                schema: Some(s), ..
            } => errors.extend(s.validate(obj)),
            Source::Custom { schema: None, .. } => {}
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid {
                target: Target::new(&def.group, &def.kind, meta::name(obj)),
                causes: errors,
            })
        }
    }

    /// Runs admission (mutating then, after `validate`, validating) for a request.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn admit(
        &self,
        def: &ResourceDef,
        operation: Operation,
        subresource: &str,
        object: Option<&mut Value>,
        old: Option<&Value>,
        opts: &WriteOptions,
        validate: impl FnOnce(Option<&Value>) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        let (namespace, name) = match (&object, old) {
            (Some(o), _) => (meta::namespace(o).to_owned(), meta::name(o).to_owned()),
            (None, Some(o)) => (meta::namespace(o).to_owned(), meta::name(o).to_owned()),
            (None, None) => (String::new(), String::new()),
        };
        let base = AdmissionRequest {
            operation,
            group: &def.group,
            version: &def.version,
            kind: &def.kind,
            resource: &def.plural,
            subresource,
            namespace: &namespace,
            name: &name,
            object: None,
            old_object: old,
            user: &opts.user,
            dry_run: opts.dry_run,
        };
        let reject = |r: Rejection| match r {
            Rejection::Invalid(causes) => ApiError::Invalid {
                target: Target::new(&def.group, &def.kind, &name),
                causes,
            },
            Rejection::Forbidden(msg) => ApiError::Forbidden(format!(
                "{} {:?} is forbidden: {msg}",
                if def.group.is_empty() {
                    def.plural.clone()
                } else {
                    format!("{}.{}", def.plural, def.group)
                },
                name
            )),
        };
        match object {
            Some(obj) => {
                let snapshot = obj.clone();
                self.admission
                    .mutate(
                        &AdmissionRequest {
                            object: Some(&snapshot),
                            ..base
                        },
                        obj,
                    )
                    .map_err(reject)?;
                validate(Some(obj))?;
                self.admission
                    .validate(&AdmissionRequest {
                        object: Some(obj),
                        ..base
                    })
                    .map_err(reject)
            }
            None => {
                validate(None)?;
                self.admission.validate(&base).map_err(reject)
            }
        }
    }

    /// Wakes the garbage collector (after deletions and finalizer changes).
    pub(crate) fn wake_gc(&self) {
        self.gc_wake.notify_one();
    }

    /// Store key of an object of `def` in `namespace`.
    pub(crate) fn key(def: &ResourceDef, namespace: &str, name: &str) -> ObjectKey {
        ObjectKey::new(if def.namespaced { namespace } else { "" }, name)
    }

    /// Error target of `def` (resource plural) for NotFound/Conflict errors.
    pub(crate) fn target(def: &ResourceDef, name: &str) -> Target {
        Target::new(&def.group, &def.plural, name)
    }
}

/// Metadata rules every object follows.
fn validate_metadata(def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let name = meta::name(obj);
    if name.is_empty() {
        errors.push(FieldError::required_because(
            "metadata.name",
            "name or generateName is required",
        ));
    } else if let Some(msg) = meta::check_dns_subdomain(name) {
        errors.push(FieldError::invalid("metadata.name", &json!(name), msg));
    }
    for (key, value) in meta::labels(obj) {
        if let Some(msg) = meta::check_qualified_name(&key) {
            errors.push(FieldError::invalid("metadata.labels", &json!(key), msg));
        }
        if let Some(msg) = meta::check_label_value(&value) {
            errors.push(FieldError::invalid(
                format!("metadata.labels.{key}"),
                &json!(value),
                msg,
            ));
        }
    }
    if let Some(annotations) = obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        let mut total = 0;
        for (key, value) in annotations {
            total += key.len() + value.as_str().map_or(0, str::len);
            if let Some(msg) = meta::check_qualified_name(key) {
                errors.push(FieldError::invalid(
                    "metadata.annotations",
                    &json!(key),
                    msg,
                ));
            }
        }
        if total > 256 * 1024 {
            errors.push(FieldError::new(
                crate::error::FieldErrorType::TooLong,
                "metadata.annotations",
                "Too long: may not be more than 262144 bytes",
            ));
        }
    }
    for (i, finalizer) in meta::finalizers(obj).iter().enumerate() {
        if let Some(msg) = meta::check_qualified_name(finalizer) {
            errors.push(FieldError::invalid(
                format!("metadata.finalizers[{i}]"),
                &json!(finalizer),
                msg,
            ));
        }
    }
    if let Some(refs) = obj
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
    {
        for (i, r) in refs.iter().enumerate() {
            for field in ["apiVersion", "kind", "name", "uid"] {
                if r.get(field)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    errors.push(FieldError::required(format!(
                        "metadata.ownerReferences[{i}].{field}"
                    )));
                }
            }
        }
    }
    if def.namespaced && meta::namespace(obj).is_empty() {
        errors.push(FieldError::required("metadata.namespace"));
    }
    errors
}
