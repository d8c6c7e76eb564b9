//! Errors of the controllers, classified once into stable categories: the category is the
//! `category` label of the error metric and decides how soon a failed pass is retried.

use std::time::Duration;

/// A failed reconcile pass.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A Kubernetes API call failed.
    #[error("{action} {kind} {namespace}/{name}: {source}")]
    Api {
        /// What was being done (`create`, `patch status`, ...).
        action: &'static str,
        /// Kind of the object.
        kind: &'static str,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
}

/// Stable error categories (metric label and retry policy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// A write lost an optimistic-concurrency race (409): retried at once from fresh state.
    Conflict,
    /// The object is gone (404).
    NotFound,
    /// The API server asked to slow down (429).
    Throttled,
    /// The API server refused the request as invalid or forbidden (400, 403, 422).
    Refused,
    /// The API server or the network failed (5xx, connection errors, timeouts).
    Unavailable,
    /// A bug: something that should not fail did.
    Internal,
}

impl ErrorCategory {
    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::Conflict => "conflict",
            ErrorCategory::NotFound => "not_found",
            ErrorCategory::Throttled => "throttled",
            ErrorCategory::Refused => "refused",
            ErrorCategory::Unavailable => "unavailable",
            ErrorCategory::Internal => "internal",
        }
    }

    /// How long to wait before retrying a pass that failed this way.
    pub fn retry_after(self) -> Duration {
        match self {
            ErrorCategory::Conflict | ErrorCategory::NotFound => Duration::from_millis(100),
            ErrorCategory::Throttled => Duration::from_secs(2),
            ErrorCategory::Unavailable => Duration::from_secs(1),
            ErrorCategory::Refused | ErrorCategory::Internal => Duration::from_secs(10),
        }
    }
}

/// The category of a Kubernetes client error.
pub fn categorize(error: &kube::Error) -> ErrorCategory {
    match error {
        kube::Error::Api(status) => match status.code {
            409 => ErrorCategory::Conflict,
            404 | 410 => ErrorCategory::NotFound,
            429 => ErrorCategory::Throttled,
            400 | 403 | 422 => ErrorCategory::Refused,
            _ => ErrorCategory::Unavailable,
        },
        kube::Error::SerdeError(_) | kube::Error::BuildRequest(_) => ErrorCategory::Internal,
        _ => ErrorCategory::Unavailable,
    }
}

/// The HTTP status code of an API error, if it is one.
pub fn api_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

impl ReconcileError {
    /// The category of this error.
    pub fn category(&self) -> ErrorCategory {
        match self {
            ReconcileError::Api { source, .. } => categorize(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("x", "y")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn api_errors_fall_into_stable_categories() {
        let cases = [
            (409, ErrorCategory::Conflict),
            (404, ErrorCategory::NotFound),
            (429, ErrorCategory::Throttled),
            (422, ErrorCategory::Refused),
            (403, ErrorCategory::Refused),
            (500, ErrorCategory::Unavailable),
            (503, ErrorCategory::Unavailable),
        ];
        for (code, category) in cases {
            assert_eq!(categorize(&api(code)), category, "{code}");
        }
        assert_eq!(ErrorCategory::Conflict.as_str(), "conflict");
    }
}
