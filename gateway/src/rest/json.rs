//! Titus REST JSON: the protobuf JSON mapping with proto field names (`jobDescriptor`,
//! `memoryMB`, `Capacity`), enums by name, 64-bit integers as JSON numbers (as Titus's REST
//! gateway wrote them), default values included. Parsing accepts proto names and JSON names,
//! numbers or strings for 64-bit integers, and ignores unknown fields.

use prost::Message;
use prost_reflect::{DeserializeOptions, DynamicMessage, SerializeOptions};

use crate::error::ApiError;
use crate::pb;

fn serialize_options() -> SerializeOptions {
    SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(false)
        .skip_default_fields(false)
}

/// `message` (a `com.netflix.titus.<name>`) as Titus REST JSON.
pub fn to_json<M: Message>(message: &M, name: &str) -> serde_json::Value {
    let Some(descriptor) = pb::message_descriptor(name) else {
        return serde_json::Value::Null;
    };
    DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .ok()
        .and_then(|d| {
            d.serialize_with_options(serde_json::value::Serializer, &serialize_options())
                .ok()
        })
        .unwrap_or(serde_json::Value::Null)
}

/// Parses Titus REST JSON into a `com.netflix.titus.<name>`.
///
/// # Errors
/// `InvalidArgument` when the JSON does not fit the message.
pub fn from_json<M: Message + Default>(
    value: serde_json::Value,
    name: &str,
) -> Result<M, ApiError> {
    let descriptor = pb::message_descriptor(name)
        .ok_or_else(|| ApiError::InvalidArgument(format!("unknown message {name}")))?;
    let options = DeserializeOptions::new().deny_unknown_fields(false);
    let dynamic = DynamicMessage::deserialize_with_options(descriptor, value, &options)
        .map_err(|e| ApiError::InvalidArgument(format!("Invalid {name} JSON: {e}")))?;
    dynamic
        .transcode_to::<M>()
        .map_err(|e| ApiError::InvalidArgument(format!("Invalid {name} JSON: {e}")))
}

/// Parses a request body (JSON text) into a `com.netflix.titus.<name>`.
///
/// # Errors
/// `InvalidArgument` for malformed JSON or JSON that does not fit the message.
pub fn parse_body<M: Message + Default>(body: &[u8], name: &str) -> Result<M, ApiError> {
    let value: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::InvalidArgument(format!("Malformed JSON body: {e}")))?
    };
    from_json(value, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_uses_proto_field_names_and_numbers_for_64_bit_integers() {
        let job = pb::Job {
            id: "j".into(),
            job_descriptor: Some(pb::JobDescriptor {
                container: Some(pb::Container {
                    resources: Some(pb::ContainerResources {
                        memory_mb: 512,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: Some(pb::JobStatus {
                timestamp: 1_700_000_000_000,
                ..Default::default()
            }),
            ..Default::default()
        };
        let json = to_json(&job, "Job");
        assert_eq!(
            json["jobDescriptor"]["container"]["resources"]["memoryMB"],
            512
        );
        assert_eq!(json["status"]["timestamp"], 1_700_000_000_000u64);
        assert_eq!(json["status"]["state"], "Accepted");
        let back: pb::Job = from_json(json, "Job").unwrap();
        assert_eq!(back, job);
    }

    #[test]
    fn capital_c_capacity_parses_by_its_proto_name() {
        let update: pb::JobCapacityUpdate = parse_body(
            br#"{"jobId": "x", "Capacity": {"min": 1, "desired": 2, "max": "3"}, "extra": true}"#,
            "JobCapacityUpdate",
        )
        .unwrap();
        assert_eq!(update.capacity.unwrap().max, 3);
    }

    #[test]
    fn malformed_json_is_an_invalid_argument() {
        let err = parse_body::<pb::Capacity>(b"{nope", "Capacity").unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        let err = parse_body::<pb::Capacity>(br#"{"min": "many"}"#, "Capacity").unwrap_err();
        assert!(
            err.to_string().starts_with("Invalid Capacity JSON"),
            "{err}"
        );
    }
}
