//! Importing an image from an OCI image layout directory (as `umoci` or `skopeo copy oci:`
//! write them) into containerd, without a registry: the same content-store writes and layer
//! unpacking as a pull, with the blobs read from `blobs/<algorithm>/<hex>`.
//!
//! The image is recorded under the given reference and under `<repository>@<digest>`, so Pods
//! that name it by tag or by digest find it with `imagePullPolicy: IfNotPresent`.

use std::path::Path;

use serde::Deserialize;

use super::ContainerdRuntime;
use super::image::{self, Descriptor, Document};
use super::pull::{LayerSource, Pulled, Stored, ctr_descriptor, media_type_of, read_layout_blob};
use crate::runtime::{ImageInfo, RuntimeError};

/// Annotation naming an image in a layout's `index.json`.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Deserialize)]
struct LayoutIndex {
    manifests: Vec<LayoutEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutEntry {
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

/// The tag of a reference (`repo:tag` → `tag`), if any.
fn tag_of(reference: &str) -> Option<&str> {
    let name = reference.split('@').next().unwrap_or(reference);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.split_once(':').map(|(_, tag)| tag)
}

/// The repository part of a reference (without tag or digest).
fn repository_of(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    match (name.rfind(':'), name.rfind('/')) {
        (Some(colon), Some(slash)) if colon > slash => &name[..colon],
        (Some(colon), None) => &name[..colon],
        _ => name,
    }
}

/// Picks the layout entry for `reference`: the one named like its tag, else the only one.
fn choose<'a>(entries: &'a [LayoutEntry], reference: &str) -> Result<&'a LayoutEntry, String> {
    let named = tag_of(reference).and_then(|tag| {
        entries
            .iter()
            .find(|e| e.annotations.get(REF_NAME).map(String::as_str) == Some(tag))
    });
    match (named, entries) {
        (Some(entry), _) => Ok(entry),
        (None, [only]) => Ok(only),
        (None, _) => Err(format!(
            "the layout has {} images and none is named {:?}",
            entries.len(),
            tag_of(reference).unwrap_or_default()
        )),
    }
}

impl ContainerdRuntime {
    /// Imports the image of the OCI layout at `layout` (the entry named like `reference`'s tag,
    /// or the only one) as `reference`.
    ///
    /// # Errors
    /// [`RuntimeError::Pull`] when the layout is unreadable or inconsistent; containerd
    /// failures.
    pub async fn import_oci_layout(
        &self,
        layout: &Path,
        reference: &str,
    ) -> Result<ImageInfo, RuntimeError> {
        let bad = |reason: String| RuntimeError::Pull {
            image: reference.to_owned(),
            reason: format!("importing {}: {reason}", layout.display()),
        };
        let index_path = layout.join("index.json");
        let index_bytes = tokio::fs::read(&index_path)
            .await
            .map_err(|e| bad(format!("reading {}: {e}", index_path.display())))?;
        let index: LayoutIndex =
            serde_json::from_slice(&index_bytes).map_err(|e| bad(e.to_string()))?;
        let entry = choose(&index.manifests, reference).map_err(bad)?;
        let root_bytes = read_layout_blob(layout, &entry.digest).await.map_err(bad)?;
        let root_media_type =
            media_type_of(&root_bytes).unwrap_or_else(|| entry.media_type.clone());
        let (manifest, manifest_bytes, manifest_desc) =
            match Document::parse(&root_bytes).map_err(bad)? {
                Document::Manifest(m) => {
                    let desc = Descriptor {
                        media_type: root_media_type.clone(),
                        digest: entry.digest.clone(),
                        size: entry.size,
                        platform: None,
                    };
                    (m, root_bytes.clone(), desc)
                }
                Document::Index(index) => {
                    let desc = index
                        .linux_amd64()
                        .cloned()
                        .ok_or_else(|| bad("the image index has no linux/amd64 manifest".into()))?;
                    let bytes = read_layout_blob(layout, &desc.digest).await.map_err(bad)?;
                    match Document::parse(&bytes).map_err(bad)? {
                        Document::Manifest(m) => (m, bytes, desc),
                        Document::Index(_) => {
                            return Err(bad("an index points to another index".into()));
                        }
                    }
                }
            };
        let config_bytes = read_layout_blob(layout, &manifest.config.digest)
            .await
            .map_err(bad)?;
        let (config, diff_ids) = image::parse_config(&config_bytes).map_err(bad)?;
        if diff_ids.len() != manifest.layers.len() {
            return Err(bad("layer and diff id counts differ".into()));
        }
        let chains = image::chain_ids(&diff_ids);
        let top_chain = chains
            .last()
            .cloned()
            .ok_or_else(|| bad("no layers".into()))?;
        self.puller
            .store_leased(
                reference,
                &LayerSource::Layout(layout),
                Stored {
                    root_media_type: &root_media_type,
                    root_digest: &entry.digest,
                    root_bytes: &root_bytes,
                    manifest: &manifest,
                    manifest_bytes: &manifest_bytes,
                    manifest_desc: &manifest_desc,
                    config_bytes: &config_bytes,
                    chains: &chains,
                },
            )
            .await?;
        let by_digest = format!("{}@{}", repository_of(reference), entry.digest);
        self.puller
            .upsert_image(
                &by_digest,
                ctr_descriptor(&root_media_type, &entry.digest, root_bytes.len() as i64),
            )
            .await?;
        let info = ImageInfo {
            reference: reference.to_owned(),
            digest: entry.digest.clone(),
            config,
        };
        for name in [reference.to_owned(), by_digest] {
            self.remember(&Pulled {
                info: ImageInfo {
                    reference: name,
                    ..info.clone()
                },
                top_chain: top_chain.clone(),
            });
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_repository_and_tag() {
        let cases = [
            (
                "localhost:5000/titus/busybox:1",
                "localhost:5000/titus/busybox",
                Some("1"),
            ),
            (
                "localhost:5000/titus/busybox",
                "localhost:5000/titus/busybox",
                None,
            ),
            ("busybox:1", "busybox", Some("1")),
            ("reg/app@sha256:ab", "reg/app", None),
        ];
        for (reference, repository, tag) in cases {
            assert_eq!(repository_of(reference), repository, "{reference}");
            assert_eq!(tag_of(reference), tag, "{reference}");
        }
    }

    #[test]
    fn the_layout_entry_is_chosen_by_tag_or_by_being_alone() {
        let entry = |name: &str| LayoutEntry {
            media_type: image::OCI_MANIFEST.into(),
            digest: format!("sha256:{name}"),
            size: 1,
            annotations: [(REF_NAME.to_owned(), name.to_owned())].into(),
        };
        let two = [entry("1"), entry("entrypoint")];
        assert_eq!(
            choose(&two, "r/busybox:entrypoint").unwrap().digest,
            "sha256:entrypoint"
        );
        assert!(choose(&two, "r/busybox:2").is_err());
        let one = [entry("x")];
        assert_eq!(choose(&one, "r/busybox:1").unwrap().digest, "sha256:x");
    }
}
