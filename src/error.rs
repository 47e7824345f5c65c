//! Errors a reconcile can end with, split the way an operator needs them split:
//! terminal (only a manifest change helps), recoverable (retry with backoff) and
//! waiting (a dependency or an external artefact is not there yet).

use std::fmt;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub use crate::reason::Reason;

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
    pub reason: Reason,
    pub message: String,
    /// Retry no later than this (e.g. before a token expires), whatever the backoff says.
    pub retry_before: Option<std::time::Duration>,
    /// The resource is no longer usable (e.g. its token expired): Ready turns False.
    pub unready: bool,
    /// A write answered with an error that means its effect is already there (a delete
    /// answered "not found"): success for whoever made it (see [`write_result`]).
    pub already_done: bool,
    /// A delete refused because the resource holds things nobody asked to delete (a
    /// repository with images): it stays, like a retained resource, and the message
    /// says why and how to delete it anyway. Not a failure of the teardown.
    pub stays: bool,
}

impl ReconcileError {
    pub fn terminal(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(Severity::Terminal, reason, message)
    }

    pub fn recoverable(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(Severity::Recoverable, reason, message)
    }

    pub fn waiting(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(Severity::Waiting, reason, message)
    }

    fn new(severity: Severity, reason: Reason, message: impl Into<String>) -> Self {
        Self {
            severity,
            reason,
            message: message.into(),
            retry_before: None,
            unready: false,
            already_done: false,
            stays: false,
        }
    }

    /// A delete that leaves the resource in place because of what it holds (see `stays`).
    pub fn stays(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            stays: true,
            ..Self::terminal(reason, message)
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
        if is_fenced(&err) {
            return Self::recoverable(
                Reason::NotLeader,
                format!("{action}: {}", crate::leader::Fenced),
            );
        }
        match &err {
            SdkError::ConstructionFailure(_) => {
                Self::terminal(Reason::InvalidRequest, format!("{action}: {}", chain(&err)))
            }
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
                Self::recoverable(Reason::Unreachable, format!("{action}: {}", chain(&err)))
            }
            SdkError::ResponseError(_) => {
                Self::recoverable(Reason::BadResponse, format!("{action}: {}", chain(&err)))
            }
            SdkError::ServiceError(se) => {
                let e = se.err();
                let code = e.code().unwrap_or("Unknown").to_string();
                let reason = Reason::aws(code.as_str());
                let msg = e.message().unwrap_or("").to_string();
                let status = se.raw().status().as_u16();
                let text = if msg.is_empty() {
                    format!("{action}: {code}")
                } else {
                    format!("{action}: {code}: {msg}")
                };
                let operation = action.split_whitespace().next().unwrap_or_default();
                match after_write(operation, &code) {
                    Some(AfterWrite::Done) => Self {
                        already_done: true,
                        ..Self::recoverable(reason, text)
                    },
                    Some(AfterWrite::ObserveAgain) => {
                        Self::recoverable(reason, format!("{text} (observing again)"))
                    }
                    None if is_retryable_code(&code) || status >= 500 => {
                        Self::recoverable(reason, text)
                    }
                    None => Self::terminal(reason, text),
                }
            }
            _ => Self::recoverable(Reason::Unknown, format!("{action}: {}", chain(&err))),
        }
    }

    pub fn is_terminal(&self) -> bool {
        self.severity == Severity::Terminal
    }
}

/// What an error answered to a write means. The SDK resends a write whose answer was lost
/// (a dropped connection, a 5xx from a proxy), so the error a resent write gets may be
/// about the first attempt's success: the upload it completed is gone, the resource it
/// created exists, the one it deleted is not found. Such an error is never terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterWrite {
    /// The write's effect is there: a delete (or detach) answered "not found".
    Done,
    /// The first attempt may have done it, or something changed since observe: the
    /// reconcile observes again (recoverable, short backoff) and decides from what it sees.
    ObserveAgain,
}

/// Operations that change something, by name prefix (reads are Get/Describe/List/
/// BatchCheck/BatchGet, and signing in, InitiateAuth, creates nothing the controller
/// looks for). The tests' fault proxy loses answers to exactly these.
pub fn is_write(operation: &str) -> bool {
    const WRITES: [&str; 16] = [
        "Create",
        "Put",
        "Update",
        "Delete",
        "BatchDelete",
        "AdminCreate",
        "AdminSet",
        "AdminUpdate",
        "AdminDelete",
        "Tag",
        "Untag",
        "AddTags",
        "RemoveTags",
        "Attach",
        "Detach",
        "Restore",
    ];
    WRITES.iter().any(|p| operation.starts_with(p))
        || matches!(
            operation,
            "InitiateLayerUpload" | "UploadLayerPart" | "CompleteLayerUpload"
        )
}

/// Operations that remove something: "not found" means done.
fn is_removal(operation: &str) -> bool {
    ["Delete", "BatchDelete", "AdminDelete", "Detach"]
        .iter()
        .any(|p| operation.starts_with(p))
}

/// "It already exists" and "it changed meanwhile": what a resent create gets.
fn is_exists_code(code: &str) -> bool {
    matches!(
        code,
        "EntityAlreadyExists"
            | "EntityAlreadyExistsException"
            | "ResourceExistsException"
            | "UsernameExistsException"
            | "AliasExistsException"
            | "ParameterAlreadyExists"
            | "RepositoryAlreadyExistsException"
            | "LayerAlreadyExistsException"
            | "ImageAlreadyExistsException"
            | "ConflictException"
            | "DeleteConflict"
    )
}

/// "It is not there": what a resent delete gets, or a write racing AWS's eventual
/// consistency right after a create (and a layer upload that a resent
/// CompleteLayerUpload finds finished, or a resent part finds past).
fn is_gone_code(code: &str) -> bool {
    matches!(
        code,
        "NoSuchEntity"
            | "NoSuchEntityException"
            | "ResourceNotFoundException"
            | "NotFoundException"
            | "ParameterNotFound"
            | "RepositoryNotFoundException"
            | "LifecyclePolicyNotFoundException"
            | "ImageNotFoundException"
            | "UserNotFoundException"
            | "UploadNotFoundException"
            | "InvalidLayerPartException"
    )
}

/// How an error answered to `operation` is handled, when the operation is a write and the
/// error one a resent write can get; `None` for everything else.
fn after_write(operation: &str, code: &str) -> Option<AfterWrite> {
    if !is_write(operation) {
        return None;
    }
    if is_gone_code(code) {
        let upload = matches!(operation, "UploadLayerPart" | "CompleteLayerUpload");
        return Some(if is_removal(operation) && !upload {
            AfterWrite::Done
        } else {
            AfterWrite::ObserveAgain
        });
    }
    is_exists_code(code).then_some(AfterWrite::ObserveAgain)
}

/// The outcome of a write: `Some(output)`, or `None` when AWS answered with an error that
/// means the effect is already there (a delete answered "not found"). Every other error
/// is classified for `action` (see [`ReconcileError::from_sdk`]).
pub fn write_result<T, E>(
    action: impl Into<String>,
    result: std::result::Result<T, SdkError<E, HttpResponse>>,
) -> Result<Option<T>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    answer(action, result, |err| err.already_done)
}

/// The answer of a read: `Some(output)`, or `None` when AWS answered that what was read
/// does not exist (a "not found" code, the same list a resent delete is judged by). Every
/// other error is classified for `action` (see [`ReconcileError::from_sdk`]).
pub fn read_result<T, E>(
    action: impl Into<String>,
    result: std::result::Result<T, SdkError<E, HttpResponse>>,
) -> Result<Option<T>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    answer(
        action,
        result,
        |err| matches!(&err.reason, Reason::Aws(code) if is_gone_code(code)),
    )
}

/// `Some(output)`, or `None` for an error that `absent` says leaves nothing to report;
/// every other error classified for `action`.
fn answer<T, E>(
    action: impl Into<String>,
    result: std::result::Result<T, SdkError<E, HttpResponse>>,
    absent: impl FnOnce(&ReconcileError) -> bool,
) -> Result<Option<T>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) => match ReconcileError::from_sdk(&action.into(), e) {
            err if absent(&err) => Ok(None),
            err => Err(err),
        },
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
/// The write was refused by the leader fence (see [`crate::leader::Fence`]).
fn is_fenced(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if e.is::<crate::leader::Fenced>() {
            return true;
        }
        source = e.source();
    }
    false
}

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
    use aws_sdk_ssm::operation::put_parameter::PutParameterError;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(code: &str, status: u16) -> SdkError<PutParameterError, HttpResponse> {
        let raw = HttpResponse::new(status.try_into().expect("a status code"), SdkBody::empty());
        let err = PutParameterError::generic(ErrorMetadata::builder().code(code).build());
        SdkError::service_error(err, raw)
    }

    /// A read answered "not found" reads as absent; any other error stays an error.
    #[test]
    fn reads_answered_not_found_are_absent() {
        for (action, code, status, absent) in [
            ("GetRole r", "NoSuchEntity", 404, true),
            ("GetParameter /p", "ParameterNotFound", 400, true),
            ("DescribeUserPool p", "ResourceNotFoundException", 400, true),
            ("AdminGetUser u", "UserNotFoundException", 400, true),
            (
                "DescribeRepositories r",
                "RepositoryNotFoundException",
                400,
                true,
            ),
            ("GetRole r", "AccessDenied", 403, false),
            ("GetRole r", "Throttling", 400, false),
            ("GetAgentRuntime rt", "InternalServerException", 500, false),
        ] {
            let read = read_result(action, Err::<(), _>(service_error(code, status)));
            match read {
                Ok(None) => assert!(absent, "{action}: {code} read as absent"),
                Err(e) => {
                    assert!(!absent, "{action}: {code}: {e}");
                    assert_eq!(e.reason, Reason::aws(code));
                }
                Ok(Some(())) => panic!("{action}: {code} read as present"),
            }
        }
        assert!(matches!(
            read_result(
                "GetRole r",
                Ok::<_, SdkError<PutParameterError, HttpResponse>>(1)
            ),
            Ok(Some(1))
        ));
    }

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

    /// What a resent write can get after its first attempt succeeded is never terminal;
    /// the same code answered to a read keeps its usual meaning.
    #[test]
    fn errors_are_classified_per_operation() {
        use Severity::{Recoverable, Terminal};
        let cases = [
            // (action, code, status, severity, already done)
            (
                "CompleteLayerUpload repo sha256:ab",
                "UploadNotFoundException",
                400,
                Recoverable,
                false,
            ),
            (
                "CompleteLayerUpload repo sha256:ab",
                "LayerAlreadyExistsException",
                400,
                Recoverable,
                false,
            ),
            (
                "UploadLayerPart repo sha256:ab",
                "InvalidLayerPartException",
                400,
                Recoverable,
                false,
            ),
            (
                "UploadLayerPart repo sha256:ab",
                "UploadNotFoundException",
                400,
                Recoverable,
                false,
            ),
            (
                "PutImage repo:latest",
                "ImageAlreadyExistsException",
                400,
                Recoverable,
                false,
            ),
            (
                "CreateRole r",
                "EntityAlreadyExists",
                409,
                Recoverable,
                false,
            ),
            (
                "CreateSecret s",
                "ResourceExistsException",
                400,
                Recoverable,
                false,
            ),
            (
                "AdminCreateUser u",
                "UsernameExistsException",
                400,
                Recoverable,
                false,
            ),
            (
                "PutParameter /p",
                "ParameterAlreadyExists",
                400,
                Recoverable,
                false,
            ),
            (
                "CreateRepository r",
                "RepositoryAlreadyExistsException",
                400,
                Recoverable,
                false,
            ),
            (
                "CreateAgentRuntime rt",
                "ConflictException",
                409,
                Recoverable,
                false,
            ),
            (
                "TagResource arn",
                "ResourceNotFoundException",
                404,
                Recoverable,
                false,
            ),
            (
                "PutSecretValue s",
                "ResourceNotFoundException",
                400,
                Recoverable,
                false,
            ),
            (
                "UpdateAgentRuntime rt",
                "ResourceNotFoundException",
                404,
                Recoverable,
                false,
            ),
            ("DeleteRole r", "DeleteConflict", 409, Recoverable, false),
            // A resent delete finds nothing: done.
            ("DeleteRole r", "NoSuchEntity", 404, Recoverable, true),
            ("DetachRolePolicy r", "NoSuchEntity", 404, Recoverable, true),
            (
                "DeleteSecret s",
                "ResourceNotFoundException",
                400,
                Recoverable,
                true,
            ),
            (
                "DeleteParameter /p",
                "ParameterNotFound",
                400,
                Recoverable,
                true,
            ),
            (
                "DeleteRepository r",
                "RepositoryNotFoundException",
                400,
                Recoverable,
                true,
            ),
            (
                "DeleteLifecyclePolicy r",
                "LifecyclePolicyNotFoundException",
                400,
                Recoverable,
                true,
            ),
            (
                "AdminDeleteUser u",
                "UserNotFoundException",
                400,
                Recoverable,
                true,
            ),
            (
                "DeleteAgentRuntime rt",
                "ResourceNotFoundException",
                404,
                Recoverable,
                true,
            ),
            (
                "DeleteUserPool p (id)",
                "ResourceNotFoundException",
                400,
                Recoverable,
                true,
            ),
            // Reads: "not found" is an answer their callers handle; anything unexpected
            // stays terminal.
            (
                "DescribeRepositories r",
                "RepositoryNotFoundException",
                400,
                Terminal,
                false,
            ),
            ("GetRole r", "NoSuchEntity", 404, Terminal, false),
            (
                "InitiateAuth REFRESH_TOKEN_AUTH for u",
                "NotAuthorizedException",
                400,
                Terminal,
                false,
            ),
            // Writes refused for what they ask: terminal.
            (
                "CreateRole r",
                "MalformedPolicyDocument",
                400,
                Terminal,
                false,
            ),
            (
                "CreateAgentRuntime rt",
                "ValidationException",
                400,
                Terminal,
                false,
            ),
            (
                "PutImage repo:latest",
                "AccessDeniedException",
                403,
                Terminal,
                false,
            ),
            // Throttling and server errors: recoverable whatever the operation.
            ("CreateRole r", "Throttling", 400, Recoverable, false),
            ("GetRole r", "InternalFailure", 500, Recoverable, false),
            ("DescribeSecret s", "Whatever", 503, Recoverable, false),
        ];
        for (action, code, status, severity, done) in cases {
            let err = ReconcileError::from_sdk(action, service_error(code, status));
            assert_eq!(
                (err.severity, err.already_done, err.reason),
                (severity, done, Reason::aws(code)),
                "{action}: {code}"
            );
            let written = write_result(action, Err::<(), _>(service_error(code, status)));
            assert_eq!(written.is_ok(), done, "{action}: {code}");
        }
    }
}
