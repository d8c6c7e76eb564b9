//! Who is calling: Titus call metadata from request headers.
//!
//! Titus clients name themselves with `X-Titus-CallerId` (and `X-Titus-CallerType`,
//! `X-Titus-DirectCallerId`, `X-Titus-CallReason`, `X-Titus-Debug`), or with a serialized
//! `CallMetadata` in the binary `X-Titus-CallMetadata-bin` header, which wins when present. The
//! caller id becomes the job's `titus.createdBy` attribute and the kill caller; the debug flag
//! asks for the `X-Titus-Error-bin` trailer on errors.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use http::HeaderMap;
use prost::Message;

use crate::pb;

/// Header naming the original caller.
pub const CALLER_ID: &str = "x-titus-callerid";
/// Header with the caller type (`Unknown`, `Application`, `User`).
pub const CALLER_TYPE: &str = "x-titus-callertype";
/// Header naming the direct caller (a proxy, when there is one).
pub const DIRECT_CALLER_ID: &str = "x-titus-directcallerid";
/// Header with the reason of the call.
pub const CALL_REASON: &str = "x-titus-callreason";
/// Header asking for debug error details.
pub const DEBUG: &str = "x-titus-debug";
/// Binary header with a serialized `CallMetadata`.
pub const CALL_METADATA_BIN: &str = "x-titus-callmetadata-bin";
/// Caller id used when a request names none.
pub const UNKNOWN_CALLER: &str = "unknown";

/// Caller identity of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallMetadata {
    /// The original caller (first of `CallMetadata.callers`, or `X-Titus-CallerId`, or the direct
    /// caller); empty when unknown.
    pub caller_id: String,
    /// The reason given for the call.
    pub call_reason: String,
    /// Whether the caller asked for debug error details.
    pub debug: bool,
}

impl CallMetadata {
    /// Reads the Titus call headers.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .unwrap_or_default()
                .to_string()
        };
        let debug_header = text(DEBUG).eq_ignore_ascii_case("true");
        if let Some(metadata) = headers
            .get(CALL_METADATA_BIN)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| decode_call_metadata(v.trim()))
        {
            #[allow(deprecated)] // callerId is the legacy single-caller field
            let caller_id = metadata
                .callers
                .first()
                .map(|c| c.id.clone())
                .filter(|id| !id.is_empty())
                .unwrap_or(metadata.caller_id);
            return CallMetadata {
                caller_id,
                call_reason: metadata.call_reason,
                debug: metadata.debug || debug_header,
            };
        }
        let caller_id = Some(text(CALLER_ID))
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| text(DIRECT_CALLER_ID));
        CallMetadata {
            caller_id,
            call_reason: text(CALL_REASON),
            debug: debug_header,
        }
    }

    /// The caller id, or `unknown`.
    pub fn caller(&self) -> &str {
        if self.caller_id.is_empty() {
            UNKNOWN_CALLER
        } else {
            &self.caller_id
        }
    }
}

fn decode_call_metadata(text: &str) -> Option<pb::CallMetadata> {
    let bytes = STANDARD_NO_PAD
        .decode(text.trim_end_matches('='))
        .or_else(|_| STANDARD.decode(text))
        .ok()?;
    pb::CallMetadata::decode(bytes.as_slice()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn caller_id_header_names_the_caller() {
        let call = CallMetadata::from_headers(&headers(&[
            ("x-titus-callerid", "alice"),
            ("x-titus-callreason", "deploy"),
            ("x-titus-debug", "TRUE"),
        ]));
        assert_eq!(call.caller(), "alice");
        assert_eq!(call.call_reason, "deploy");
        assert!(call.debug);
    }

    #[test]
    fn binary_call_metadata_wins_over_plain_headers() {
        let metadata = pb::CallMetadata {
            callers: vec![pb::call_metadata::Caller {
                id: "spinnaker".into(),
                ..Default::default()
            }],
            call_reason: "rollout".into(),
            ..Default::default()
        };
        let value = STANDARD_NO_PAD.encode(metadata.encode_to_vec());
        let call = CallMetadata::from_headers(&headers(&[
            ("x-titus-callerid", "alice"),
            ("x-titus-callmetadata-bin", &value),
        ]));
        assert_eq!(call.caller(), "spinnaker");
        assert_eq!(call.call_reason, "rollout");
    }

    #[test]
    fn no_headers_means_an_unknown_caller() {
        let call = CallMetadata::from_headers(&HeaderMap::new());
        assert_eq!(call.caller(), "unknown");
        assert!(!call.debug);
        let direct = CallMetadata::from_headers(&headers(&[("x-titus-directcallerid", "proxy")]));
        assert_eq!(direct.caller(), "proxy");
    }
}
