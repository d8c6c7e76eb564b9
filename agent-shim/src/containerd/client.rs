//! The connection to containerd: one gRPC channel, requests tagged with the agent's namespace
//! (and a lease while pulling), and the mapping of gRPC failures onto [`RuntimeError`].

use std::path::Path;

use containerd_client::services::v1::{
    containers_client::ContainersClient, content_client::ContentClient, diff_client::DiffClient,
    images_client::ImagesClient, leases_client::LeasesClient,
    snapshots::snapshots_client::SnapshotsClient, tasks_client::TasksClient,
};
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::runtime::RuntimeError;

/// containerd's gRPC header naming the namespace of a request.
const NAMESPACE_HEADER: &str = "containerd-namespace";
/// containerd's gRPC header naming the lease that protects what a request creates from GC.
const LEASE_HEADER: &str = "containerd-lease";

/// A namespaced containerd connection. Cheap to clone (the channel is shared).
#[derive(Clone)]
pub(crate) struct Ctr {
    channel: Channel,
    namespace: AsciiMetadataValue,
}

impl Ctr {
    /// Connects to the socket at `path`.
    pub(crate) async fn connect(path: &Path, namespace: &str) -> Result<Self, RuntimeError> {
        let namespace =
            AsciiMetadataValue::try_from(namespace).map_err(|_| RuntimeError::Corrupt {
                what: "configuration",
                subject: "containerd namespace".into(),
                reason: format!("{namespace:?} is not a valid header value"),
            })?;
        let channel =
            containerd_client::connect(path)
                .await
                .map_err(|source| RuntimeError::Connect {
                    path: path.to_owned(),
                    source,
                })?;
        Ok(Self { channel, namespace })
    }

    /// `msg` as a request in the agent's namespace.
    pub(crate) fn req<T>(&self, msg: T) -> Request<T> {
        let mut req = Request::new(msg);
        req.metadata_mut()
            .insert(NAMESPACE_HEADER, self.namespace.clone());
        req
    }

    /// `msg` as a request in the agent's namespace under `lease`.
    pub(crate) fn leased<T>(&self, msg: T, lease: &AsciiMetadataValue) -> Request<T> {
        let mut req = self.req(msg);
        req.metadata_mut().insert(LEASE_HEADER, lease.clone());
        req
    }

    pub(crate) fn containers(&self) -> ContainersClient<Channel> {
        ContainersClient::new(self.channel.clone())
    }
    pub(crate) fn content(&self) -> ContentClient<Channel> {
        ContentClient::new(self.channel.clone())
    }
    pub(crate) fn diff(&self) -> DiffClient<Channel> {
        DiffClient::new(self.channel.clone())
    }
    pub(crate) fn images(&self) -> ImagesClient<Channel> {
        ImagesClient::new(self.channel.clone())
    }
    pub(crate) fn leases(&self) -> LeasesClient<Channel> {
        LeasesClient::new(self.channel.clone())
    }
    pub(crate) fn snapshots(&self) -> SnapshotsClient<Channel> {
        SnapshotsClient::new(self.channel.clone())
    }
    pub(crate) fn tasks(&self) -> TasksClient<Channel> {
        TasksClient::new(self.channel.clone())
    }
}

/// Wraps a failed call as [`RuntimeError::Containerd`].
pub(crate) fn failed(
    operation: &'static str,
    subject: impl std::fmt::Display,
) -> impl FnOnce(Status) -> RuntimeError {
    move |source| RuntimeError::Containerd {
        operation,
        subject: subject.to_string(),
        source,
    }
}

/// `Ok(None)` for NotFound, the value otherwise.
pub(crate) fn found<T>(result: Result<T, Status>) -> Result<Option<T>, Status> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(status) if status.code() == Code::NotFound => Ok(None),
        Err(status) => Err(status),
    }
}

/// `Ok(())` for NotFound too: deleting what is gone is success.
pub(crate) fn gone<T>(result: Result<T, Status>) -> Result<(), Status> {
    found(result).map(|_| ())
}

/// `prost_types::Timestamp` to `jiff::Timestamp` (`None` for unset or out of range).
pub(crate) fn timestamp(ts: Option<&prost_types::Timestamp>) -> Option<jiff::Timestamp> {
    let ts = ts?;
    if ts.seconds == 0 && ts.nanos == 0 {
        return None;
    }
    jiff::Timestamp::new(ts.seconds, ts.nanos).ok()
}
