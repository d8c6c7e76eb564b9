//! The generated CRDs: checked-in YAML matches the types, schemas are structural, and the
//! metadata (names, subresources, printer columns) is what kubectl users rely on.

// Test helpers may unwrap: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use titus_crds::crd::structural::structural_violations;
use titus_crds::crd::{crd_files, crds, crds_yaml, schemas};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fails when a checked-in CRD (in `crds/` or in the Helm chart's `crds/`) differs from the
/// types; `TITUS_BLESS=1` rewrites the files instead.
#[test]
fn checked_in_crd_yaml_matches_the_types() {
    let bless = std::env::var_os("TITUS_BLESS").is_some();
    let dirs = [crate_dir(), crate_dir().join("../charts/titus/crds")];
    let mut stale = Vec::new();
    for (name, yaml) in crd_files().unwrap() {
        for dir in &dirs {
            let path = dir.join(&name);
            if bless {
                std::fs::write(&path, &yaml).unwrap();
                continue;
            }
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            if on_disk != yaml {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:?} drifted from the types; regenerate with: TITUS_BLESS=1 cargo nextest run -p titus-crds"
    );
}

#[test]
fn rendered_crd_yaml_parses_back_to_the_same_crds() {
    for ((name, yaml), crd) in crd_files().unwrap().into_iter().zip(crds()) {
        let parsed: CustomResourceDefinition = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(parsed, crd, "{name}");
    }
    let all: Vec<CustomResourceDefinition> =
        serde_saphyr::from_multiple(&crds_yaml().unwrap()).unwrap();
    assert_eq!(all, crds());
}

#[test]
fn every_schema_is_structural() {
    for crd in crds() {
        for schema in schemas(&crd) {
            let violations = structural_violations(&schema);
            assert!(
                violations.is_empty(),
                "{:?}: {violations:#?}",
                crd.metadata.name
            );
        }
    }
}

/// Collects the JSON paths of schema nodes that keep unknown fields.
fn untyped_paths(node: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    let Some(map) = node.as_object() else { return };
    if map.get("x-kubernetes-preserve-unknown-fields").is_some() {
        out.push(path.to_string());
    }
    if let Some(props) = map.get("properties").and_then(|p| p.as_object()) {
        for (name, child) in props {
            untyped_paths(child, &format!("{path}.{name}"), out);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = map.get(key) {
            untyped_paths(child, &format!("{path}[]"), out);
        }
    }
}

#[test]
fn the_only_free_form_field_is_the_platform_sidecar_arguments() {
    let mut paths = Vec::new();
    for crd in crds() {
        for schema in schemas(&crd) {
            untyped_paths(&schema, "", &mut paths);
        }
    }
    assert_eq!(paths, [".spec.platformSidecars[].arguments"]);
}

#[test]
fn crd_metadata_matches_the_resource_model() {
    let expected = [
        ("titusjobs.titus.dev", "TitusJob", "tj"),
        ("titustasks.titus.dev", "TitusTask", "tt"),
        ("capacitygroups.titus.dev", "CapacityGroup", "cg"),
        ("instancegroups.titus.dev", "InstanceGroup", "ig"),
    ];
    let crds = crds();
    assert_eq!(crds.len(), expected.len());
    for (crd, (name, kind, short)) in crds.iter().zip(expected) {
        assert_eq!(crd.metadata.name.as_deref(), Some(name));
        assert_eq!(crd.spec.group, "titus.dev");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.kind, kind);
        assert_eq!(crd.spec.names.short_names, Some(vec![short.to_string()]));
        assert_eq!(crd.spec.names.categories, Some(vec!["titus".to_string()]));
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(version.served && version.storage);
        let subresources = version.subresources.as_ref().unwrap();
        assert!(
            subresources.status.is_some(),
            "{kind} has a status subresource"
        );
        assert!(
            version
                .additional_printer_columns
                .as_ref()
                .is_some_and(|c| c.len() >= 4),
            "{kind} has printer columns"
        );
    }
    let scale = crds[0].spec.versions[0]
        .subresources
        .as_ref()
        .and_then(|s| s.scale.clone())
        .unwrap();
    assert_eq!(scale.spec_replicas_path, ".spec.service.capacity.desired");
    assert_eq!(scale.status_replicas_path, ".status.replicas");
    assert_eq!(
        scale.label_selector_path.as_deref(),
        Some(".status.selector")
    );
    for crd in &crds[1..] {
        assert!(
            crd.spec.versions[0]
                .subresources
                .as_ref()
                .unwrap()
                .scale
                .is_none()
        );
    }
}

#[test]
fn integer_fields_carry_bounds_and_no_defaults_are_injected() {
    let yaml = crds_yaml().unwrap();
    assert!(
        !yaml.contains("format: uint"),
        "unsigned formats are rewritten"
    );
    assert!(
        !yaml.contains("default:"),
        "no defaults are written into stored objects"
    );
    assert!(yaml.contains("maximum: 4294967295"));
}
