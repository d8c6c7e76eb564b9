//! OCI image documents, parsed just enough to pull and unpack: index → platform manifest → config
//! and layers, plus the layer chain ids that name unpacked snapshots. Pure: no I/O.

use std::collections::BTreeMap;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::runtime::ImageConfig;

/// OCI image index.
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list (schema 2).
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest (schema 2).
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Every manifest type the puller accepts, for the registry's `Accept` header.
pub(crate) const ACCEPTED: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// The only platform the agent runs.
pub(crate) const OS: &str = "linux";
/// The only architecture the agent runs.
pub(crate) const ARCHITECTURE: &str = "amd64";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// Platform of an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Platform {
    pub architecture: String,
    pub os: String,
}

/// An image manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Manifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// An image index / manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Index {
    pub manifests: Vec<Descriptor>,
}

/// A manifest document as found in a registry or content store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Document {
    Index(Index),
    Manifest(Manifest),
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
}

impl Document {
    /// Parses a manifest or index; the media type field decides, else the shape.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, String> {
        let probe: Probe = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let is_index = match probe.media_type.as_deref() {
            Some(OCI_INDEX | DOCKER_LIST) => true,
            Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
            Some(other) => return Err(format!("unsupported manifest media type {other}")),
            None => probe.manifests.is_some(),
        };
        if is_index {
            serde_json::from_slice(bytes)
                .map(Document::Index)
                .map_err(|e| format!("image index: {e}"))
        } else {
            serde_json::from_slice(bytes)
                .map(Document::Manifest)
                .map_err(|e| format!("image manifest: {e}"))
        }
    }
}

impl Index {
    /// The linux/amd64 manifest (the first one when several match).
    pub(crate) fn linux_amd64(&self) -> Option<&Descriptor> {
        self.manifests.iter().find(|m| {
            m.platform
                .as_ref()
                .is_some_and(|p| p.os == OS && p.architecture == ARCHITECTURE)
        })
    }
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    config: Option<ConfigBody>,
    rootfs: RootFs,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ConfigBody {
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

/// An image config's runtime defaults and its layers' uncompressed digests.
pub(crate) fn parse_config(bytes: &[u8]) -> Result<(ImageConfig, Vec<String>), String> {
    let file: ConfigFile =
        serde_json::from_slice(bytes).map_err(|e| format!("image config: {e}"))?;
    let body = file.config.unwrap_or_default();
    let config = ImageConfig {
        entrypoint: body.entrypoint.unwrap_or_default(),
        cmd: body.cmd.unwrap_or_default(),
        env: body.env.unwrap_or_default(),
        working_dir: body.working_dir.filter(|w| !w.is_empty()),
        user: body.user.filter(|u| !u.is_empty()),
    };
    Ok((config, file.rootfs.diff_ids))
}

/// Chain ids of a layer stack: the first is the first diff id, each next one is
/// `sha256(<previous chain id> + " " + <diff id>)`. They name committed snapshots.
pub(crate) fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut chains: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match chains.last() {
            None => diff_id.clone(),
            Some(parent) => sha256_digest(format!("{parent} {diff_id}").as_bytes()),
        };
        chains.push(next);
    }
    chains
}

/// `sha256:<hex>` of `bytes` (an OCI content digest).
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in hash {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// containerd GC labels that keep a manifest's config and layers alive while the manifest is.
pub(crate) fn manifest_gc_labels(manifest: &Manifest) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert(
        "containerd.io/gc.ref.content.config".to_owned(),
        manifest.config.digest.clone(),
    );
    for (i, layer) in manifest.layers.iter().enumerate() {
        labels.insert(
            format!("containerd.io/gc.ref.content.l.{i}"),
            layer.digest.clone(),
        );
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:c","size":10},
        "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:l0","size":5},
                  {"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:l1","size":6}]}"#;

    const INDEX: &str = r#"{"schemaVersion":2,"manifests":[
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:arm","size":1,
         "platform":{"architecture":"arm64","os":"linux"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:amd","size":2,
         "platform":{"architecture":"amd64","os":"linux"}}]}"#;

    #[test]
    fn documents_are_told_apart_by_media_type_or_shape() {
        let Ok(Document::Manifest(m)) = Document::parse(MANIFEST.as_bytes()) else {
            panic!("manifest not parsed");
        };
        assert_eq!(m.config.digest, "sha256:c");
        assert_eq!(m.layers.len(), 2);
        let Ok(Document::Index(index)) = Document::parse(INDEX.as_bytes()) else {
            panic!("index without media type not parsed");
        };
        assert_eq!(
            index.linux_amd64().map(|d| d.digest.as_str()),
            Some("sha256:amd")
        );
        let bad = Document::parse(br#"{"mediaType":"application/x-nope"}"#);
        assert!(bad.unwrap_err().contains("unsupported"));
    }

    #[test]
    fn an_index_without_linux_amd64_has_no_platform_manifest() {
        let Ok(Document::Index(index)) = Document::parse(
            br#"{"manifests":[{"mediaType":"m","digest":"sha256:a","size":1,"platform":{"architecture":"arm64","os":"linux"}}]}"#,
        ) else {
            panic!("index not parsed");
        };
        assert_eq!(index.linux_amd64(), None);
    }

    #[test]
    fn config_gives_docker_defaults_and_diff_ids() {
        let (config, diff_ids) = parse_config(
            br#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/e"],"Cmd":["c"],
               "Env":["PATH=/bin"],"WorkingDir":"/w","User":""},"rootfs":{"type":"layers","diff_ids":["sha256:d0"]}}"#,
        )
        .unwrap();
        assert_eq!(config.entrypoint, vec!["/e"]);
        assert_eq!(config.cmd, vec!["c"]);
        assert_eq!(config.env, vec!["PATH=/bin"]);
        assert_eq!(config.working_dir.as_deref(), Some("/w"));
        assert_eq!(config.user, None);
        assert_eq!(diff_ids, vec!["sha256:d0"]);
        let (bare, _) = parse_config(br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#).unwrap();
        assert_eq!(bare, ImageConfig::default());
    }

    #[test]
    fn chain_ids_hash_the_parent_chain_with_each_diff_id() {
        let diff_ids = vec!["sha256:a".to_string(), "sha256:b".to_string()];
        let chains = chain_ids(&diff_ids);
        assert_eq!(chains[0], "sha256:a");
        // sha256("sha256:a sha256:b"), computed independently with sha256sum.
        assert_eq!(
            chains[1],
            "sha256:970a948bffa8de94d6e22d747ba8c95030e6e546909f98f54e99a13005e173a8"
        );
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn manifest_gc_labels_reference_config_and_every_layer() {
        let Ok(Document::Manifest(m)) = Document::parse(MANIFEST.as_bytes()) else {
            panic!("manifest not parsed");
        };
        let labels = manifest_gc_labels(&m);
        assert_eq!(labels["containerd.io/gc.ref.content.config"], "sha256:c");
        assert_eq!(labels["containerd.io/gc.ref.content.l.0"], "sha256:l0");
        assert_eq!(labels["containerd.io/gc.ref.content.l.1"], "sha256:l1");
    }
}
