//! Why a reconcile ended as it did, as a machine-readable word: the reasons the controller
//! gives itself are named here, one variant each; an AWS error code passes through as AWS
//! wrote it. The text of a reason is what the status shows and the metrics label carries
//! (after kube-rs/controller-rs's error enum and its `metric_label()`).

use std::fmt;

/// Declares [`Reason`]: each variant's text is its name.
macro_rules! reasons {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// Why a reconcile failed or waits.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($(#[$doc])* $name,)*
            /// An AWS error code, as AWS wrote it (`ThrottlingException`, `NoSuchEntity`).
            Aws(String),
        }

        impl Reason {
            /// Every reason the controller gives itself.
            pub const OWN: &'static [Reason] = &[$(Reason::$name,)*];

            /// The reason as the status and the logs show it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Reason::$name => stringify!($name),)*
                    Reason::Aws(code) => code,
                }
            }

            /// The reason for a status: shared, unless it is an AWS error code.
            pub fn word(&self) -> std::borrow::Cow<'static, str> {
                match self {
                    $(Reason::$name => std::borrow::Cow::Borrowed(stringify!($name)),)*
                    Reason::Aws(code) => std::borrow::Cow::Owned(code.clone()),
                }
            }
        }
    };
}

reasons! {
    /// A resource with the object's name exists without the owner tag.
    NotOwned,
    /// An object this one refers to has not reported the output it needs yet.
    DependencyNotReady,
    /// A spec that does not deserialise, or a value source with no reference.
    InvalidSpec,
    /// AWS reports the resource failed (a runtime in CREATE_FAILED).
    ResourceFailed,
    /// A request the SDK could not build.
    InvalidRequest,
    /// No answer from AWS (timeout, connection refused).
    Unreachable,
    /// A write refused locally: this replica does not hold the leader lease.
    NotLeader,
    /// An answer from AWS that could not be read.
    BadResponse,
    /// A failure the SDK could not classify.
    Unknown,
    /// No AWS region configured.
    NoRegion,
    /// STS named no account.
    NoAccount,
    /// The inventory could not be written.
    Inventory,
    /// A shared listing of resources could not be had.
    ListCache,
    /// A tag the controller would write is not valid.
    InvalidTag,
    /// A value that cannot be written as asked.
    InvalidValue,
    /// Two user pools carry the name and the owner tag.
    AmbiguousUserPool,
    /// Two app clients of a pool carry the name.
    AmbiguousUserPoolClient,
    /// A field Cognito cannot change after creation differs.
    RequiresReplacement,
    /// The Cognito domain prefix belongs to another user pool.
    DomainTaken,
    /// A new IAM role is not assumable by AgentCore yet.
    RoleNotReady,
    /// A secret with the name exists or is being deleted.
    SecretNameBusy,
    /// A secret is being deleted and cannot be restored yet.
    SecretBeingDeleted,
    /// A secret does not hold JSON.
    SecretNotJson,
    /// The user's password secret does not exist.
    PasswordSecretNotFound,
    /// The user's password secret does not hold a username and a password.
    InvalidPasswordSecret,
    /// The user's password secret holds another user's credentials.
    PasswordSecretConflict,
    /// The app client's secret cannot key a SECRET_HASH.
    InvalidClientSecret,
    /// Cognito asks for a sign-in challenge.
    ChallengeRequired,
    /// The image's build context does not exist.
    ContextNotFound,
    /// The image's build context cannot be read.
    ContextUnreadable,
    /// The build context changed while it was built.
    ContextChanged,
    /// The image build failed.
    BuildFailed,
    /// The image build took too long.
    BuildTimedOut,
    /// The image's OCI layout does not exist.
    LayoutNotFound,
    /// The image's OCI layout cannot be read.
    ImageLayoutUnreadable,
    /// The image's OCI layout is not a valid image.
    InvalidImageLayout,
    /// The OCI layout holds no image for the runtime's platform.
    NoImageForPlatform,
    /// The image the object names is not in its repository.
    ImageNotFound,
    /// ECR could not delete the image and named no failure code.
    ImageDeleteFailed,
    /// A layer is larger than ECR accepts.
    LayerTooLarge,
    /// A layer's content does not match its digest.
    LayerDigestMismatch,
    /// A pushed tag still points at another image.
    TagNotMoved,
}

impl Reason {
    /// An AWS error code, passed through as it is.
    pub fn aws(code: impl Into<String>) -> Self {
        Reason::Aws(code.into())
    }

    /// The value of the `reason` label on metrics: the same text as the status shows.
    pub fn metric_label(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status JSON, the metrics and the README use these words: they stay as they were.
    #[test]
    fn reasons_read_as_before() {
        for (reason, text) in [
            (Reason::NotOwned, "NotOwned"),
            (Reason::DependencyNotReady, "DependencyNotReady"),
            (Reason::ResourceFailed, "ResourceFailed"),
            (Reason::aws("ThrottlingException"), "ThrottlingException"),
        ] {
            assert_eq!(reason.as_str(), text);
            assert_eq!(reason.metric_label(), text);
            assert_eq!(reason.to_string(), text);
            assert_eq!(
                serde_json::to_value(&reason).ok(),
                Some(serde_json::Value::String(text.into()))
            );
        }
    }

    /// No two reasons share a text, and none is empty.
    #[test]
    fn own_reasons_are_distinct_words() {
        let mut texts: Vec<&str> = Reason::OWN.iter().map(Reason::as_str).collect();
        assert!(texts.iter().all(|t| !t.is_empty() && !t.contains(' ')));
        texts.sort_unstable();
        let before = texts.len();
        texts.dedup();
        assert_eq!(texts.len(), before);
    }
}
