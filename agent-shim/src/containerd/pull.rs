//! Client-side image pull into containerd (containerd 1.6 has no Transfer service).
//!
//! Like containerd's Go client: fetch the manifest (index → linux/amd64 manifest), config and
//! layers from the registry with `oci-client`; stream each blob into containerd's content store
//! under a lease, with the GC labels that keep the tree alive; create or update the image record;
//! unpack each layer with `snapshots.prepare → diff.apply → snapshots.commit` keyed by chain id.
//! Everything already present is skipped, so a second pull only re-reads the manifest.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use containerd_client::services::v1::{
    ApplyRequest, CreateImageRequest, CreateRequest as CreateLeaseRequest,
    DeleteRequest as DeleteLeaseRequest, GetImageRequest, Image, InfoRequest, UpdateImageRequest,
    WriteAction, WriteContentRequest,
    snapshots::{
        CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
    },
};
use containerd_client::types::Descriptor as CtrDescriptor;
use futures::{StreamExt, stream};
use oci_client::Reference;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth as OciAuth;
use tonic::Code;
use tonic::metadata::AsciiMetadataValue;

use super::client::{Ctr, failed, found};
use super::image::{self, Descriptor, Document, Manifest};
use crate::runtime::{ImageInfo, RegistryAuth, RuntimeError};

/// Largest data chunk sent in one content-write message (containerd's default gRPC limit is 16 MiB).
const MAX_CHUNK: usize = 1 << 20;

/// What a pull (or a look-up in the store) yields.
#[derive(Debug, Clone)]
pub(crate) struct Pulled {
    pub info: ImageInfo,
    /// Chain id of the top layer: the parent of a container's rootfs snapshot.
    pub top_chain: String,
}

/// A registry-side failure, classified once here.
fn pull_error(image: &str, err: OciDistributionError) -> RuntimeError {
    let not_found = match &err {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::NotFound
                    | OciErrorCode::BlobUnknown
            )
        }),
        OciDistributionError::ServerError { code, .. } => *code == 404,
        _ => false,
    };
    if not_found {
        RuntimeError::ImageNotFound {
            image: image.to_owned(),
            reason: err.to_string(),
        }
    } else {
        RuntimeError::Pull {
            image: image.to_owned(),
            reason: err.to_string(),
        }
    }
}

fn oci_descriptor(d: &Descriptor) -> OciDescriptor {
    OciDescriptor {
        media_type: d.media_type.clone(),
        digest: d.digest.clone(),
        size: d.size,
        ..OciDescriptor::default()
    }
}

pub(super) fn ctr_descriptor(media_type: &str, digest: &str, size: i64) -> CtrDescriptor {
    CtrDescriptor {
        media_type: media_type.to_owned(),
        digest: digest.to_owned(),
        size,
        annotations: Default::default(),
    }
}

/// Pulls images into one containerd namespace.
pub(crate) struct Puller {
    pub ctr: Ctr,
    /// Registry clients by registry and credentials: an `oci_client::Client` keeps the first
    /// credentials it is given for a registry, so each pair gets its own.
    pub clients: std::sync::Mutex<HashMap<(String, RegistryAuth), Arc<oci_client::Client>>>,
    pub plain_http_registries: Vec<String>,
    pub snapshotter: String,
    /// Credentials by registry host, used when a pull passes [`RegistryAuth::Anonymous`].
    pub credentials: BTreeMap<String, RegistryAuth>,
    pub sequence: AtomicU64,
}

impl Puller {
    fn unique(&self, what: &str) -> String {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        format!("titus-{what}-{}-{n}", std::process::id())
    }

    fn client_for(&self, reference: &Reference, auth: &RegistryAuth) -> Arc<oci_client::Client> {
        let registry = reference.resolve_registry().to_owned();
        let key = (registry.clone(), auth.clone());
        let make = || {
            let protocol = if super::uses_plain_http(&registry, &self.plain_http_registries) {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            };
            Arc::new(oci_client::Client::new(ClientConfig {
                protocol,
                platform_resolver: Some(Box::new(oci_client::client::linux_amd64_resolver)),
                ..ClientConfig::default()
            }))
        };
        match self.clients.lock() {
            Ok(mut clients) => clients.entry(key).or_insert_with(make).clone(),
            Err(_) => make(),
        }
    }

    /// The credentials for a pull: the ones given, else the configured ones of the registry.
    fn auth_for(&self, reference: &Reference, auth: &RegistryAuth) -> RegistryAuth {
        match auth {
            RegistryAuth::Anonymous => self
                .credentials
                .get(reference.resolve_registry())
                .cloned()
                .unwrap_or_default(),
            RegistryAuth::Basic { .. } => auth.clone(),
        }
    }

    /// Pulls `image` and unpacks it.
    pub(crate) async fn pull(
        &self,
        image: &str,
        auth: &RegistryAuth,
    ) -> Result<Pulled, RuntimeError> {
        let reference =
            Reference::try_from(image).map_err(|e| RuntimeError::InvalidImageReference {
                image: image.to_owned(),
                reason: e.to_string(),
            })?;
        let credentials = self.auth_for(&reference, auth);
        let oci = self.client_for(&reference, &credentials);
        let auth = match &credentials {
            RegistryAuth::Anonymous => OciAuth::Anonymous,
            RegistryAuth::Basic { username, password } => {
                OciAuth::Basic(username.clone(), password.clone())
            }
        };
        let (root_bytes, root_digest) = oci
            .pull_manifest_raw(&reference, &auth, &image::ACCEPTED)
            .await
            .map_err(|e| pull_error(image, e))?;
        let corrupt = |reason: String| RuntimeError::Pull {
            image: image.to_owned(),
            reason,
        };
        let root = Document::parse(&root_bytes).map_err(corrupt)?;
        let root_media_type = media_type_of(&root_bytes).unwrap_or_else(|| {
            match root {
                Document::Index(_) => image::OCI_INDEX,
                Document::Manifest(_) => image::OCI_MANIFEST,
            }
            .to_owned()
        });
        let (manifest, manifest_bytes, manifest_desc) = match root {
            Document::Manifest(m) => {
                let desc = Descriptor {
                    media_type: root_media_type.clone(),
                    digest: root_digest.clone(),
                    size: root_bytes.len() as i64,
                    platform: None,
                };
                (m, root_bytes.clone(), desc)
            }
            Document::Index(index) => {
                let desc = index
                    .linux_amd64()
                    .cloned()
                    .ok_or_else(|| RuntimeError::Pull {
                        image: image.to_owned(),
                        reason: "the image index has no linux/amd64 manifest".into(),
                    })?;
                let by_digest = Reference::with_digest(
                    reference.registry().to_owned(),
                    reference.repository().to_owned(),
                    desc.digest.clone(),
                );
                let (bytes, _) = oci
                    .pull_manifest_raw(&by_digest, &auth, &image::ACCEPTED)
                    .await
                    .map_err(|e| pull_error(image, e))?;
                match Document::parse(&bytes).map_err(corrupt)? {
                    Document::Manifest(m) => (m, bytes, desc),
                    Document::Index(_) => {
                        return Err(corrupt("an image index points to another index".into()));
                    }
                }
            }
        };

        let mut config_bytes = Vec::with_capacity(manifest.config.size.max(0) as usize);
        oci.pull_blob(
            &reference,
            &oci_descriptor(&manifest.config),
            &mut config_bytes,
        )
        .await
        .map_err(|e| pull_error(image, e))?;
        let (config, diff_ids) = image::parse_config(&config_bytes).map_err(corrupt)?;
        if diff_ids.len() != manifest.layers.len() {
            return Err(corrupt(format!(
                "{} layers but {} diff ids in the config",
                manifest.layers.len(),
                diff_ids.len()
            )));
        }
        let chains = image::chain_ids(&diff_ids);
        let top_chain = chains
            .last()
            .cloned()
            .ok_or_else(|| corrupt("image has no layers".into()))?;

        let source = LayerSource::Registry {
            oci: &oci,
            reference: &reference,
        };
        self.store_leased(
            image,
            &source,
            Stored {
                root_media_type: &root_media_type,
                root_digest: &root_digest,
                root_bytes: &root_bytes,
                manifest: &manifest,
                manifest_bytes: &manifest_bytes,
                manifest_desc: &manifest_desc,
                config_bytes: &config_bytes,
                chains: &chains,
            },
        )
        .await?;
        Ok(Pulled {
            info: ImageInfo {
                reference: image.to_owned(),
                digest: root_digest,
                config,
            },
            top_chain,
        })
    }

    /// A lease protecting what is created under it from containerd's GC until it is deleted
    /// (or expires, an hour later, if the agent dies first).
    pub(crate) async fn create_lease(
        &self,
        subject: &str,
    ) -> Result<AsciiMetadataValue, RuntimeError> {
        let id = self.unique("lease");
        // A lease outlives a crashed agent for an hour at most.
        let expire = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
        let req = CreateLeaseRequest {
            id: id.clone(),
            labels: [("containerd.io/gc.expire".to_owned(), expire)].into(),
        };
        self.ctr
            .leases()
            .create(self.ctr.req(req))
            .await
            .map_err(failed("leases.create", subject))?;
        AsciiMetadataValue::try_from(id.as_str()).map_err(|_| RuntimeError::Corrupt {
            what: "lease id",
            subject: id,
            reason: "not a header value".into(),
        })
    }

    pub(crate) async fn delete_lease(&self, lease: &AsciiMetadataValue) {
        let Ok(id) = lease.to_str() else { return };
        let req = DeleteLeaseRequest {
            id: id.to_owned(),
            sync: false,
        };
        if let Err(status) = self.ctr.leases().delete(self.ctr.req(req)).await {
            tracing::warn!(lease = id, error = %status.message(), "deleting lease failed");
        }
    }

    /// [`Puller::store`] under a lease that protects the new content from containerd's GC until
    /// the image record references it.
    pub(super) async fn store_leased(
        &self,
        image: &str,
        source: &LayerSource<'_>,
        s: Stored<'_>,
    ) -> Result<(), RuntimeError> {
        let lease = self.create_lease(image).await?;
        let stored = self.store(image, source, &lease, s).await;
        self.delete_lease(&lease).await;
        stored
    }

    /// Writes an image's documents and layers into the content store, records the image under
    /// `image` and unpacks its layers.
    pub(super) async fn store(
        &self,
        image: &str,
        source: &LayerSource<'_>,
        lease: &AsciiMetadataValue,
        s: Stored<'_>,
    ) -> Result<(), RuntimeError> {
        for layer in &s.manifest.layers {
            if self.content_exists(&layer.digest).await? {
                continue;
            }
            let blob = match source {
                LayerSource::Registry { oci, reference } => oci
                    .pull_blob_stream(reference, &oci_descriptor(layer))
                    .await
                    .map_err(|e| pull_error(image, e))
                    .map(futures::future::Either::Left)?,
                LayerSource::Layout(dir) => {
                    let bytes = read_layout_blob(dir, &layer.digest)
                        .await
                        .map_err(|reason| RuntimeError::Pull {
                            image: image.to_owned(),
                            reason,
                        })?;
                    futures::future::Either::Right(stream::iter([Ok(bytes::Bytes::from(bytes))]))
                }
            };
            self.write_content(image, lease, layer, blob, BTreeMap::new())
                .await?;
        }
        let top = s.chains.last().cloned().unwrap_or_default();
        let config_labels = BTreeMap::from([(
            format!("containerd.io/gc.ref.snapshot.{}", self.snapshotter),
            top,
        )]);
        self.write_bytes(
            image,
            lease,
            &s.manifest.config,
            s.config_bytes,
            config_labels,
        )
        .await?;
        let manifest_labels = image::manifest_gc_labels(s.manifest);
        self.write_bytes(
            image,
            lease,
            s.manifest_desc,
            s.manifest_bytes,
            manifest_labels,
        )
        .await?;
        if s.root_digest != s.manifest_desc.digest {
            let index_desc = Descriptor {
                media_type: s.root_media_type.to_owned(),
                digest: s.root_digest.to_owned(),
                size: s.root_bytes.len() as i64,
                platform: None,
            };
            let labels = BTreeMap::from([(
                "containerd.io/gc.ref.content.m.0".to_owned(),
                s.manifest_desc.digest.clone(),
            )]);
            self.write_bytes(image, lease, &index_desc, s.root_bytes, labels)
                .await?;
        }
        self.upsert_image(
            image,
            ctr_descriptor(s.root_media_type, s.root_digest, s.root_bytes.len() as i64),
        )
        .await?;
        self.unpack(image, lease, s.manifest, s.chains).await
    }

    async fn content_exists(&self, digest: &str) -> Result<bool, RuntimeError> {
        let req = InfoRequest {
            digest: digest.to_owned(),
        };
        let info = found(self.ctr.content().info(self.ctr.req(req)).await)
            .map_err(failed("content.info", digest))?;
        Ok(info.is_some())
    }

    async fn write_bytes(
        &self,
        image: &str,
        lease: &AsciiMetadataValue,
        desc: &Descriptor,
        bytes: &[u8],
        labels: BTreeMap<String, String>,
    ) -> Result<(), RuntimeError> {
        let data = bytes::Bytes::copy_from_slice(bytes);
        let blob = futures::future::Either::Right(stream::iter([Ok::<_, std::io::Error>(data)]));
        self.write_content(image, lease, desc, blob, labels).await
    }

    /// Streams `blob` into the content store and commits it with `labels`. Content that is
    /// already present is left alone.
    async fn write_content(
        &self,
        image: &str,
        lease: &AsciiMetadataValue,
        desc: &Descriptor,
        blob: Blob,
        labels: BTreeMap<String, String>,
    ) -> Result<(), RuntimeError> {
        let reference = self.unique("write");
        let source_error: Arc<ErrorSlot> = Arc::default();
        let first = WriteContentRequest {
            action: WriteAction::Write as i32,
            r#ref: reference.clone(),
            total: desc.size,
            expected: desc.digest.clone(),
            ..Default::default()
        };
        let data_ref = reference.clone();
        let error_slot = source_error.clone();
        let data = blob
            .flat_map(|chunk| {
                let pieces: Vec<Result<bytes::Bytes, std::io::Error>> = match chunk {
                    Ok(bytes) => (0..bytes.len())
                        .step_by(MAX_CHUNK)
                        .map(|at| Ok(bytes.slice(at..(at + MAX_CHUNK).min(bytes.len()))))
                        .collect(),
                    Err(e) => vec![Err(e)],
                };
                stream::iter(pieces)
            })
            .scan(0i64, move |offset, chunk| {
                let next = match chunk {
                    Ok(bytes) => {
                        let req = WriteContentRequest {
                            action: WriteAction::Write as i32,
                            r#ref: data_ref.clone(),
                            offset: *offset,
                            data: bytes.to_vec(),
                            ..Default::default()
                        };
                        *offset += bytes.len() as i64;
                        Some(req)
                    }
                    Err(e) => {
                        error_slot.set(e.to_string());
                        None
                    }
                };
                futures::future::ready(next)
            });
        let commit_slot = source_error.clone();
        let commit = WriteContentRequest {
            action: WriteAction::Commit as i32,
            r#ref: reference,
            total: desc.size,
            expected: desc.digest.clone(),
            offset: desc.size,
            labels: labels.into_iter().collect(),
            ..Default::default()
        };
        // The commit is sent only when the blob stream ended without an error.
        let tail = stream::once(async move { commit })
            .filter(move |_| futures::future::ready(commit_slot.get().is_none()));
        let requests = stream::iter([first]).chain(data).chain(tail);
        let result = self
            .ctr
            .content()
            .write(self.ctr.leased(requests, lease))
            .await;
        let mut responses = match result {
            Ok(responses) => responses.into_inner(),
            Err(status) if status.code() == Code::AlreadyExists => return Ok(()),
            Err(status) => return Err(failed("content.write", &desc.digest)(status)),
        };
        loop {
            match responses.message().await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(status) if status.code() == Code::AlreadyExists => return Ok(()),
                Err(status) => return Err(failed("content.write", &desc.digest)(status)),
            }
        }
        if let Some(reason) = source_error.get() {
            return Err(RuntimeError::Pull {
                image: image.to_owned(),
                reason: format!("downloading {}: {reason}", desc.digest),
            });
        }
        Ok(())
    }

    pub(super) async fn upsert_image(
        &self,
        image: &str,
        target: CtrDescriptor,
    ) -> Result<(), RuntimeError> {
        let get = GetImageRequest {
            name: image.to_owned(),
        };
        let existing = found(self.ctr.images().get(self.ctr.req(get)).await)
            .map_err(failed("images.get", image))?
            .and_then(|r| r.into_inner().image);
        let record = Image {
            name: image.to_owned(),
            target: Some(target.clone()),
            ..Default::default()
        };
        match existing {
            Some(current) if current.target.as_ref() == Some(&target) => Ok(()),
            Some(_) => {
                let req = UpdateImageRequest {
                    image: Some(record),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["target".into()],
                    }),
                    ..Default::default()
                };
                self.ctr
                    .images()
                    .update(self.ctr.req(req))
                    .await
                    .map(|_| ())
                    .map_err(failed("images.update", image))
            }
            None => {
                let req = CreateImageRequest {
                    image: Some(record),
                    ..Default::default()
                };
                match self.ctr.images().create(self.ctr.req(req)).await {
                    Ok(_) => Ok(()),
                    // Another pull of the same image won the race.
                    Err(status) if status.code() == Code::AlreadyExists => Ok(()),
                    Err(status) => Err(failed("images.create", image)(status)),
                }
            }
        }
    }

    async fn snapshot_exists(&self, key: &str) -> Result<bool, RuntimeError> {
        let req = StatSnapshotRequest {
            snapshotter: self.snapshotter.clone(),
            key: key.to_owned(),
        };
        let stat = found(self.ctr.snapshots().stat(self.ctr.req(req)).await)
            .map_err(failed("snapshots.stat", key))?;
        Ok(stat.is_some())
    }

    async fn unpack(
        &self,
        image: &str,
        lease: &AsciiMetadataValue,
        manifest: &Manifest,
        chains: &[String],
    ) -> Result<(), RuntimeError> {
        for (i, (layer, chain)) in manifest.layers.iter().zip(chains).enumerate() {
            if self.snapshot_exists(chain).await? {
                continue;
            }
            let parent = if i == 0 {
                String::new()
            } else {
                chains[i - 1].clone()
            };
            let key = self.unique("extract");
            let prepare = PrepareSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.clone(),
                parent,
                labels: Default::default(),
            };
            let mounts = self
                .ctr
                .snapshots()
                .prepare(self.ctr.leased(prepare, lease))
                .await
                .map_err(failed("snapshots.prepare", chain))?
                .into_inner()
                .mounts;
            let apply = ApplyRequest {
                diff: Some(ctr_descriptor(&layer.media_type, &layer.digest, layer.size)),
                mounts,
                ..Default::default()
            };
            let applied = self.ctr.diff().apply(self.ctr.leased(apply, lease)).await;
            let committed = match applied {
                Ok(_) => {
                    let commit = CommitSnapshotRequest {
                        snapshotter: self.snapshotter.clone(),
                        name: chain.clone(),
                        key: key.clone(),
                        labels: Default::default(),
                    };
                    self.ctr
                        .snapshots()
                        .commit(self.ctr.leased(commit, lease))
                        .await
                        .map(|_| ())
                        .map_err(|s| ("snapshots.commit", s))
                }
                Err(status) => Err(("diff.apply", status)),
            };
            if let Err((operation, status)) = committed {
                self.remove_snapshot(&key).await;
                // A concurrent unpack of the same layer committed it first.
                if status.code() == Code::AlreadyExists {
                    continue;
                }
                tracing::warn!(image, layer = %layer.digest, "unpacking layer failed");
                return Err(failed(operation, chain)(status));
            }
        }
        Ok(())
    }

    async fn remove_snapshot(&self, key: &str) {
        let req = RemoveSnapshotRequest {
            snapshotter: self.snapshotter.clone(),
            key: key.to_owned(),
        };
        if let Err(status) = self.ctr.snapshots().remove(self.ctr.req(req)).await
            && status.code() != Code::NotFound
        {
            tracing::warn!(key, error = %status.message(), "removing snapshot failed");
        }
    }

    /// The image as already stored in containerd (after an agent restart, or pulled by someone
    /// else): walks image → index → manifest → config.
    pub(crate) async fn stored(&self, image: &str) -> Result<Option<Pulled>, RuntimeError> {
        let get = GetImageRequest {
            name: image.to_owned(),
        };
        let Some(record) = found(self.ctr.images().get(self.ctr.req(get)).await)
            .map_err(failed("images.get", image))?
            .and_then(|r| r.into_inner().image)
        else {
            return Ok(None);
        };
        let corrupt = |reason: String| RuntimeError::Corrupt {
            what: "stored image",
            subject: image.to_owned(),
            reason,
        };
        let target = record.target.ok_or_else(|| corrupt("no target".into()))?;
        let root_bytes = self.read_content(&target.digest).await?;
        let manifest = match Document::parse(&root_bytes).map_err(corrupt)? {
            Document::Manifest(m) => m,
            Document::Index(index) => {
                let desc = index
                    .linux_amd64()
                    .ok_or_else(|| corrupt("no linux/amd64 manifest".into()))?;
                match Document::parse(&self.read_content(&desc.digest).await?).map_err(corrupt)? {
                    Document::Manifest(m) => m,
                    Document::Index(_) => return Err(corrupt("nested index".into())),
                }
            }
        };
        let (config, diff_ids) =
            image::parse_config(&self.read_content(&manifest.config.digest).await?)
                .map_err(corrupt)?;
        let top_chain = image::chain_ids(&diff_ids)
            .pop()
            .ok_or_else(|| corrupt("no layers".into()))?;
        if !self.snapshot_exists(&top_chain).await? {
            return Ok(None);
        }
        Ok(Some(Pulled {
            info: ImageInfo {
                reference: image.to_owned(),
                digest: target.digest,
                config,
            },
            top_chain,
        }))
    }

    async fn read_content(&self, digest: &str) -> Result<Vec<u8>, RuntimeError> {
        let req = containerd_client::services::v1::ReadContentRequest {
            digest: digest.to_owned(),
            ..Default::default()
        };
        let mut stream = self
            .ctr
            .content()
            .read(self.ctr.req(req))
            .await
            .map_err(failed("content.read", digest))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(chunk) = stream
            .message()
            .await
            .map_err(failed("content.read", digest))?
        {
            out.extend_from_slice(&chunk.data);
        }
        Ok(out)
    }
}

/// The `mediaType` field of a manifest document, if it has one.
pub(super) fn media_type_of(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct M {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<M>(bytes).ok()?.media_type
}

/// The documents of one pull, handed from the fetch phase to the store phase.
pub(super) struct Stored<'a> {
    pub root_media_type: &'a str,
    pub root_digest: &'a str,
    pub root_bytes: &'a [u8],
    pub manifest: &'a Manifest,
    pub manifest_bytes: &'a [u8],
    pub manifest_desc: &'a Descriptor,
    pub config_bytes: &'a [u8],
    pub chains: &'a [String],
}

/// Where layer blobs come from: a registry, or the `blobs/` directory of an OCI image layout.
pub(super) enum LayerSource<'a> {
    Registry {
        oci: &'a oci_client::Client,
        reference: &'a Reference,
    },
    Layout(&'a std::path::Path),
}

/// A blob's bytes as a stream: from a registry, or already in memory. A concrete type (not a
/// boxed trait object) keeps the pull future provably `Send`.
type Blob = futures::future::Either<
    oci_client::client::SizedStream,
    stream::Iter<std::array::IntoIter<Result<bytes::Bytes, std::io::Error>, 1>>,
>;

/// A blob of an OCI image layout (`blobs/<algorithm>/<hex>`).
pub(super) async fn read_layout_blob(
    layout: &std::path::Path,
    digest: &str,
) -> Result<Vec<u8>, String> {
    let (algorithm, hex) = digest
        .split_once(':')
        .filter(|(a, h)| !a.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
        .ok_or_else(|| format!("invalid digest {digest:?}"))?;
    let path = layout.join("blobs").join(algorithm).join(hex);
    tokio::fs::read(&path)
        .await
        .map_err(|e| format!("reading {}: {e}", path.display()))
}

/// The first download error of a blob stream, shared between the request stream and the caller.
#[derive(Default)]
struct ErrorSlot(std::sync::Mutex<Option<String>>);

impl ErrorSlot {
    fn set(&self, reason: String) {
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert(reason);
        }
    }

    fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|slot| slot.clone())
    }
}
