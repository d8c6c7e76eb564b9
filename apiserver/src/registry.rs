//! Which resources are served: the built-in kinds and every served version of every
//! established CRD. Handlers look resources up here by (group, version, plural); discovery and
//! OpenAPI documents are generated from it.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::{Map, Value};

use crate::builtin::{BUILTINS, BuiltinKind, ScalePaths};
use crate::schema::Structural;
use crate::typemodel::{ModelBuilder, TypeModel};

/// A CRD's `additionalPrinterColumns` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// OpenAPI type (string, integer, number, boolean, date).
    pub type_: String,
    /// OpenAPI format.
    pub format: String,
    /// Description.
    pub description: String,
    /// 0 = default view, >0 = wide.
    pub priority: i64,
    /// JSONPath of the value.
    pub json_path: String,
}

/// Where a resource's behaviour comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A built-in kind.
    Builtin(&'static BuiltinKind),
    /// A version of a custom resource.
    Custom {
        /// The CRD's name (`plural.group`).
        crd: String,
        /// The version's schema.
        schema: Option<Arc<Structural>>,
        /// `x-kubernetes-preserve-unknown-fields` at the root (no pruning at all).
        preserve_unknown: bool,
    },
}

/// One served (group, version, resource).
#[derive(Clone, Debug)]
pub struct ResourceDef {
    /// API group ("" for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Kind of lists.
    pub list_kind: String,
    /// Plural resource name.
    pub plural: String,
    /// Singular resource name.
    pub singular: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names.
    pub short_names: Vec<String>,
    /// Categories.
    pub categories: Vec<String>,
    /// Has a status subresource.
    pub status: bool,
    /// Scale subresource.
    pub scale: Option<ScalePaths>,
    /// Other subresources (binding, eviction, log, finalize).
    pub subresources: Vec<String>,
    /// Store key.
    pub storage: String,
    /// The version objects are stored in.
    pub storage_version: String,
    /// Behaviour.
    pub source: Source,
    /// Merge model for strategic merge patch and server-side apply.
    pub model: Arc<TypeModel>,
    /// Field labels usable in field selectors, besides metadata.name and metadata.namespace.
    pub field_labels: Vec<String>,
    /// Printer columns (custom resources).
    pub printer_columns: Vec<PrinterColumn>,
}

impl ResourceDef {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The built-in kind, if this is one.
    pub fn builtin(&self) -> Option<&'static BuiltinKind> {
        match &self.source {
            Source::Builtin(b) => Some(b),
            Source::Custom { .. } => None,
        }
    }

    /// The structural schema of a custom resource version.
    pub fn schema(&self) -> Option<&Structural> {
        match &self.source {
            Source::Custom { schema, .. } => schema.as_deref(),
            Source::Builtin(_) => None,
        }
    }

    /// Verbs for discovery.
    pub fn verbs(&self) -> Vec<&'static str> {
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

#[derive(Default)]
struct State {
    /// (group, version, plural) -> definition.
    resources: BTreeMap<(String, String, String), Arc<ResourceDef>>,
    /// Bumped on every change (OpenAPI and discovery caches key on it).
    generation: u64,
}

/// The set of served resources.
pub struct Registry {
    state: RwLock<State>,
    definitions: Arc<Map<String, Value>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// A registry serving the built-in kinds.
    pub fn new() -> Self {
        let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
        for kind in BUILTINS {
            kind.add_schema(&mut generator);
        }
        let definitions = Arc::new(generator.take_definitions(true));
        let mut state = State::default();
        for kind in BUILTINS {
            let model = Arc::new(ModelBuilder::new(&definitions).build_definition(kind.definition));
            let def = ResourceDef {
                group: kind.group.into(),
                version: kind.version.into(),
                kind: kind.kind.into(),
                list_kind: format!("{}List", kind.kind),
                plural: kind.plural.into(),
                singular: kind.singular.into(),
                namespaced: kind.namespaced,
                short_names: kind.short_names.iter().map(|s| (*s).to_owned()).collect(),
                categories: kind.categories.iter().map(|s| (*s).to_owned()).collect(),
                status: kind.status,
                scale: kind.scale(),
                subresources: kind.subresources.iter().map(|s| (*s).to_owned()).collect(),
                storage: kind.storage.into(),
                storage_version: "v1".into(),
                source: Source::Builtin(kind),
                model,
                field_labels: kind.field_labels.iter().map(|s| (*s).to_owned()).collect(),
                printer_columns: Vec::new(),
            };
            state.resources.insert(
                (def.group.clone(), def.version.clone(), def.plural.clone()),
                Arc::new(def),
            );
        }
        Self {
            state: RwLock::new(state),
            definitions,
        }
    }

    /// OpenAPI definitions of the built-in types (`#/components/schemas/...` references).
    pub fn definitions(&self) -> &Arc<Map<String, Value>> {
        &self.definitions
    }

    /// A merge model for a custom resource schema.
    pub fn custom_model(&self, schema: Option<&Value>) -> TypeModel {
        ModelBuilder::new(&self.definitions).build_custom_resource(schema)
    }

    /// Looks a served resource up.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.state
            .read()
            .resources
            .get(&(group.to_owned(), version.to_owned(), plural.to_owned()))
            .cloned()
    }

    /// The definition of the storage version for a store key.
    pub fn by_storage(&self, storage: &str) -> Option<Arc<ResourceDef>> {
        let state = self.state.read();
        let mut candidates = state.resources.values().filter(|d| d.storage == storage);
        let first = candidates.next()?.clone();
        Some(
            std::iter::once(first.clone())
                .chain(candidates.cloned())
                .find(|d| {
                    d.version == d.storage_version && d.group.is_empty() == first.group.is_empty()
                })
                .unwrap_or(first),
        )
    }

    /// Every served resource.
    pub fn all(&self) -> Vec<Arc<ResourceDef>> {
        self.state.read().resources.values().cloned().collect()
    }

    /// The change counter.
    pub fn generation(&self) -> u64 {
        self.state.read().generation
    }

    /// Serves exactly `defs` for the CRD `crd` (replacing what it served before).
    pub fn set_custom(&self, crd: &str, defs: Vec<ResourceDef>) {
        let mut state = self.state.write();
        state
            .resources
            .retain(|_, d| !matches!(&d.source, Source::Custom { crd: c, .. } if c == crd));
        for def in defs {
            state.resources.insert(
                (def.group.clone(), def.version.clone(), def.plural.clone()),
                Arc::new(def),
            );
        }
        state.generation += 1;
    }

    /// Groups and their versions, for discovery: core first, then groups by name.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let state = self.state.read();
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (group, version, _) in state.resources.keys() {
            let versions = groups.entry(group.clone()).or_default();
            if !versions.contains(version) {
                versions.push(version.clone());
            }
        }
        for versions in groups.values_mut() {
            versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        groups.into_iter().collect()
    }

    /// Resources of one group version.
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceDef>> {
        self.state
            .read()
            .resources
            .iter()
            .filter(|((g, v, _), _)| g == group && v == version)
            .map(|(_, d)| d.clone())
            .collect()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

/// Kubernetes version priority: GA > beta > alpha, higher numbers first.
pub fn version_priority(version: &str) -> (u8, u32, u32) {
    let Some(rest) = version.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let major: u32 = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    let (stage, num) = if let Some(n) = tail.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n)
    } else {
        return (0, 0, 0);
    };
    (stage, major, num.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::typemodel::ListKind;

    #[test]
    fn built_in_kinds_are_served_with_merge_models() {
        let registry = Registry::new();
        let pods = registry.get("", "v1", "pods").unwrap();
        assert_eq!(pods.kind, "Pod");
        let model = &pods.model;
        let spec = model.field(model.root(), "spec");
        assert_eq!(
            model.list_kind(model.field(spec, "containers")),
            ListKind::Map(vec!["name".into()])
        );
        assert!(registry.get("events.k8s.io", "v1", "events").is_some());
        assert_eq!(registry.by_storage("events").unwrap().group, "");
        let groups = registry.groups();
        assert_eq!(groups[0].0, "");
        assert!(groups.iter().any(|(g, _)| g == "apiextensions.k8s.io"));
    }

    #[test]
    fn versions_sort_like_kubernetes() {
        let mut versions = vec!["v1alpha1", "v1", "v2beta1", "v1beta2", "v2"];
        versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        assert_eq!(versions, ["v2", "v1", "v2beta1", "v1beta2", "v1alpha1"]);
    }
}
