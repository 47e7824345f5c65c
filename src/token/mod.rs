//! Bearer tokens for runtimes with a JWT authorizer: reading a Cognito token's claims
//! (for renewal scheduling), checking a token the way the runtime's authorizer would
//! (with a verdict per check that says what to do), and fetching the issuer's OpenID
//! configuration and signing keys.
//!
//! Pure functions except [`oidc`]'s two fetches and [`endpoint`]'s token request. Nothing
//! here ever puts a token into an error message or a verdict.

pub mod endpoint;
pub mod jwt;
pub mod oidc;
pub mod probe;
