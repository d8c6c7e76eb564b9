//! Classification of a final reason from a pod message (titus-semantics §4.4): configurable
//! patterns tried in Titus's order `invalidRequest`, `crashed`, `transientSystemError`,
//! `localSystemError`, `unknownSystemError`, each matched against the whole message (Java
//! `matches`).

use regex::Regex;
use titus_crds::TaskReasonCode;

/// The patterns, in the order they are tried.
#[derive(Clone, Debug)]
pub struct ReasonPatterns {
    patterns: Vec<(TaskReasonCode, Regex)>,
}

/// A pattern that does not compile.
#[derive(Debug, thiserror::Error)]
#[error("invalid {code} reason pattern {pattern:?}: {source}")]
pub struct PatternError {
    /// The reason code it was for.
    pub code: String,
    /// The pattern.
    pub pattern: String,
    /// Cause.
    #[source]
    pub source: regex::Error,
}

impl ReasonPatterns {
    /// Patterns for (reason code, regex) pairs, tried in the given order.
    ///
    /// # Errors
    /// A pattern that is not a valid regex.
    pub fn new(pairs: &[(TaskReasonCode, &str)]) -> Result<Self, PatternError> {
        let patterns = pairs
            .iter()
            .map(|(code, pattern)| {
                Regex::new(&format!("^(?s:{pattern})$"))
                    .map(|re| (code.clone(), re))
                    .map_err(|source| PatternError {
                        code: code.to_string(),
                        pattern: (*pattern).to_string(),
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    /// The reason code the message calls for, if any pattern matches.
    pub fn classify(&self, message: &str) -> Option<TaskReasonCode> {
        self.patterns
            .iter()
            .find(|(_, re)| re.is_match(message))
            .map(|(code, _)| code.clone())
    }
}

impl Default for ReasonPatterns {
    /// Titus's defaults: `.*<code>.*` for each code.
    fn default() -> Self {
        let built = Self::new(&[
            (TaskReasonCode::InvalidRequest, ".*invalidRequest.*"),
            (TaskReasonCode::Crashed, ".*crashed.*"),
            (
                TaskReasonCode::TransientSystemError,
                ".*transientSystemError.*",
            ),
            (TaskReasonCode::LocalSystemError, ".*localSystemError.*"),
            (TaskReasonCode::UnknownSystemError, ".*unknownSystemError.*"),
        ]);
        // The literal patterns above always compile.
        built.unwrap_or(Self {
            patterns: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_classified_in_titus_order() {
        let p = ReasonPatterns::default();
        let cases = [
            (
                "bad image: invalidRequest",
                Some(TaskReasonCode::InvalidRequest),
            ),
            ("container crashed", Some(TaskReasonCode::Crashed)),
            (
                "crashed after invalidRequest",
                Some(TaskReasonCode::InvalidRequest),
            ),
            (
                "multi\nline transientSystemError",
                Some(TaskReasonCode::TransientSystemError),
            ),
            (
                "agent localSystemError",
                Some(TaskReasonCode::LocalSystemError),
            ),
            (
                "unknownSystemError",
                Some(TaskReasonCode::UnknownSystemError),
            ),
            ("exit code 3", None),
        ];
        for (message, code) in cases {
            assert_eq!(p.classify(message), code, "{message}");
        }
    }

    #[test]
    fn a_bad_pattern_is_reported() {
        assert!(ReasonPatterns::new(&[(TaskReasonCode::Crashed, "(")]).is_err());
    }
}
