//! Errors a reconcile can end with, split the way an operator needs them split:
//! terminal (only a manifest change helps), recoverable (retry with backoff) and
//! waiting (a dependency or an external artefact is not there yet).

use std::fmt;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// How an error should be handled by whoever drives reconciles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Severity {
    /// Retrying cannot help; wait for the manifest to change.
    Terminal,
    /// Throttling, 5xx, timeouts: retry with backoff.
    Recoverable,
    /// Something this object needs does not exist yet.
    Waiting,
}

/// A reconcile failure with a machine-readable reason and a message a person can act on.
/// Messages never contain secret values: they are built from names, codes and AWS error
/// messages, which do not echo request payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileError {
    pub severity: Severity,
    pub reason: String,
    pub message: String,
    /// Retry no later than this (e.g. before a token expires), whatever the backoff says.
    pub retry_before: Option<std::time::Duration>,
    /// The resource is no longer usable (e.g. its token expired): Ready turns False.
    pub unready: bool,
}

impl ReconcileError {
    pub fn terminal(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Severity::Terminal, reason, message)
    }

    pub fn recoverable(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Severity::Recoverable, reason, message)
    }

    pub fn waiting(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Severity::Waiting, reason, message)
    }

    fn new(severity: Severity, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity,
            reason: reason.into(),
            message: message.into(),
            retry_before: None,
            unready: false,
        }
    }

    /// Cap the retry delay at `limit`.
    pub fn retry_before(mut self, limit: std::time::Duration) -> Self {
        self.retry_before = Some(limit);
        self
    }

    /// Mark the resource as unusable while this error lasts.
    pub fn unready(mut self) -> Self {
        self.unready = true;
        self
    }

    /// Classify an AWS SDK error. `action` names what was attempted ("CreateRole agentcore-…").
    pub fn from_sdk<E>(action: &str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match &err {
            SdkError::ConstructionFailure(_) => Self::terminal(
                "InvalidRequest",
                format!("{action}: {}", display_chain(&err)),
            ),
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
                Self::recoverable("Unreachable", format!("{action}: {}", display_chain(&err)))
            }
            SdkError::ResponseError(_) => {
                Self::recoverable("BadResponse", format!("{action}: {}", display_chain(&err)))
            }
            SdkError::ServiceError(se) => {
                let e = se.err();
                let code = e.code().unwrap_or("Unknown").to_string();
                let msg = e.message().unwrap_or("").to_string();
                let status = se.raw().status().as_u16();
                let text = if msg.is_empty() {
                    format!("{action}: {code}")
                } else {
                    format!("{action}: {code}: {msg}")
                };
                if is_retryable_code(&code) || status >= 500 {
                    Self::recoverable(code, text)
                } else {
                    Self::terminal(code, text)
                }
            }
            _ => Self::recoverable("Unknown", format!("{action}: {}", display_chain(&err))),
        }
    }

    pub fn is_terminal(&self) -> bool {
        self.severity == Severity::Terminal
    }
}

fn is_retryable_code(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "ProvisionedThroughputExceededException"
            | "TransactionInProgressException"
            | "RequestLimitExceeded"
            | "BandwidthLimitExceeded"
            | "LimitExceededException"
            | "RequestThrottled"
            | "SlowDown"
            | "PriorRequestNotComplete"
            | "EC2ThrottledException"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "InternalFailure"
            | "InternalServerError"
            | "InternalServerException"
            | "InternalErrorException"
            | "ServiceFailure"
            | "ServiceFailureException"
            | "ConcurrentModificationException"
            | "ConcurrentModification"
            | "ConflictException"
            | "OperationAbortedException"
    )
}

fn display_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `map_err` adapter: `.map_err(aws_err(format!("GetRole {name}")))`.
pub fn aws_err<E>(
    action: impl Into<String>,
) -> impl FnOnce(SdkError<E, HttpResponse>) -> ReconcileError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let action = action.into();
    move |e| ReconcileError::from_sdk(&action, e)
}

impl fmt::Display for ReconcileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

impl std::error::Error for ReconcileError {}

pub type Result<T, E = ReconcileError> = std::result::Result<T, E>;

/// An error with its sources, e.g. "error sending request: connection refused" (a source
/// that only repeats the end of the message is left out).
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_codes_are_recognised() {
        for (code, retry) in [
            ("ThrottlingException", true),
            ("TooManyRequestsException", true),
            ("InternalServerException", true),
            ("ValidationException", false),
            ("AccessDeniedException", false),
            ("EntityAlreadyExists", false),
        ] {
            assert_eq!(is_retryable_code(code), retry, "{code}");
        }
    }
}
