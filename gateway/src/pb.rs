//! The Titus protobuf types and `JobManagementService` stubs generated from this project's own
//! protos (`gateway/proto/`, wire-compatible with upstream Titus), plus their descriptors.
//!
//! The descriptor pool drives what needs reflection: the REST JSON mapping, field projection
//! (`fields`, `jobFields`, `taskFields`) and the gRPC reflection service.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, MessageDescriptor};

tonic::include_proto!("com.netflix.titus");

/// The serialized `FileDescriptorSet` of every proto this crate compiles.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("titus_descriptor");

/// Package of every Titus message.
pub const PACKAGE: &str = "com.netflix.titus";

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    // The set is produced by protoc at build time, so decoding it cannot fail at run time unless
    // the build itself is broken; fall back to an empty pool rather than panic.
    DescriptorPool::decode(FILE_DESCRIPTOR_SET).unwrap_or_default()
});

/// The descriptor pool of the Titus protos.
pub fn pool() -> &'static DescriptorPool {
    &POOL
}

/// The descriptor of `com.netflix.titus.<name>`, if it exists.
pub fn message_descriptor(name: &str) -> Option<MessageDescriptor> {
    pool().get_message_by_name(&format!("{PACKAGE}.{name}"))
}
