//! CustomResourceDefinitions of the four kinds, rendered as YAML, and the check that their
//! schemas are structural (what a real API server requires).
//!
//! The generated manifests are checked in as `crds/<plural>.titus.dev.yaml` (one file per kind,
//! named like the CRD object, so `kubectl apply -f crds/` installs them and the Helm chart copies
//! them). A test fails when they drift from the types; regenerate with
//! `TITUS_BLESS=1 cargo nextest run -p titus-crds` (or `titus crds` prints them).

pub mod structural;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_core::CustomResourceExt;

use crate::capacity_group::CapacityGroup;
use crate::instance_group::InstanceGroup;
use crate::job::TitusJob;
use crate::task::TitusTask;

/// Errors of CRD rendering.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// YAML serialization failed.
    #[error("cannot render CRD {name} as YAML")]
    Yaml {
        /// CRD name.
        name: String,
        /// Cause.
        #[source]
        source: serde_saphyr::SerializeError,
    },
}

/// The CRDs of every kind: `TitusJob`, `TitusTask`, `CapacityGroup`, `InstanceGroup`.
///
/// # Guarantees
/// Each schema is structural ([`structural::structural_violations`] finds nothing; a test
/// asserts it), carries no `default`s, and unsigned integers carry `int64` bounds the API server
/// enforces (see [`structural::normalize_schema`]).
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        TitusJob::crd(),
        TitusTask::crd(),
        CapacityGroup::crd(),
        InstanceGroup::crd(),
    ]
    .into_iter()
    .map(normalized)
    .collect()
}

/// The `openAPIV3Schema` of each version of `crd`, as JSON.
pub fn schemas(crd: &CustomResourceDefinition) -> Vec<serde_json::Value> {
    crd.spec
        .versions
        .iter()
        .filter_map(|v| v.schema.as_ref()?.open_api_v3_schema.as_ref())
        .filter_map(|s| serde_json::to_value(s).ok())
        .collect()
}

fn normalized(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        let Some(validation) = version.schema.as_mut() else {
            continue;
        };
        let Some(schema) = validation.open_api_v3_schema.as_ref() else {
            continue;
        };
        // Round-trips through JSON: the typed schema has the same fields as its JSON form.
        let Ok(mut json) = serde_json::to_value(schema) else {
            continue;
        };
        structural::normalize_schema(&mut json);
        if let Ok(rewritten) = serde_json::from_value(json) {
            validation.open_api_v3_schema = Some(rewritten);
        }
    }
    crd
}

/// One CRD as a YAML document (no leading `---`).
///
/// # Errors
/// [`CrdError::Yaml`] if serialization fails (it does not for these types).
pub fn crd_yaml(crd: &CustomResourceDefinition) -> Result<String, CrdError> {
    serde_saphyr::to_string(crd).map_err(|source| CrdError::Yaml {
        name: crd.metadata.name.clone().unwrap_or_default(),
        source,
    })
}

/// Every CRD as one multi-document YAML string (`---` before each document).
///
/// # Errors
/// [`CrdError::Yaml`] if serialization fails.
pub fn crds_yaml() -> Result<String, CrdError> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&crd_yaml(&crd)?);
    }
    Ok(out)
}

/// `(file name, YAML)` of each checked-in manifest: `<plural>.titus.dev.yaml`, with a header
/// saying the file is generated.
///
/// # Errors
/// [`CrdError::Yaml`] if serialization fails.
pub fn crd_files() -> Result<Vec<(String, String)>, CrdError> {
    crds()
        .iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let body = crd_yaml(crd)?;
            Ok((
                format!("{name}.yaml"),
                format!(
                    "# Generated from the titus-crds types; do not edit.\n\
                     # Regenerate: TITUS_BLESS=1 cargo nextest run -p titus-crds\n{body}"
                ),
            ))
        })
        .collect()
}
