//! Installs (server-side applies) the Titus CRDs and waits until they are served; for
//! `titus up`, tests and benchmarks. Production installs them with the Helm chart.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};

/// Field manager of the CRD apply.
pub const FIELD_MANAGER: &str = "titus-operator";

/// CRD installation failures.
#[derive(Debug, thiserror::Error)]
pub enum CrdInstallError {
    /// The apply failed.
    #[error("applying CRD {name}: {source}")]
    Apply {
        /// CRD name.
        name: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// The CRD did not become Established in time.
    #[error("CRD {name} is not established after {timeout:?}")]
    NotEstablished {
        /// CRD name.
        name: String,
        /// How long we waited.
        timeout: Duration,
    },
}

/// Applies every Titus CRD and waits (up to `timeout`) until each is Established.
///
/// # Errors
/// A refused apply or a CRD that is not established in time.
pub async fn install_crds(client: &kube::Client, timeout: Duration) -> Result<(), CrdInstallError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let crds = titus_crds::crd::crds();
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &params, &Patch::Apply(crd))
            .await
            .map_err(|source| CrdInstallError::Apply {
                name: name.clone(),
                source,
            })?;
    }
    let deadline = tokio::time::Instant::now() + timeout;
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        loop {
            let established = api.get_opt(&name).await.ok().flatten().is_some_and(|c| {
                c.status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if established {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(CrdInstallError::NotEstablished { name, timeout });
            }
            // Polling the API for a condition, with a deadline.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}
