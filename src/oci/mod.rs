//! OCI images from source: hashing a build context (with `.dockerignore`), running an
//! image builder, reading the OCI image layout it writes (or one given as is), and pushing
//! the linux/arm64 image in it to ECR through the ECR API. No AWS knowledge outside
//! `push`; no knowledge of manifests or kinds at all.

pub mod build;
pub mod context;
pub mod dockerignore;
pub mod layout;
pub mod push;

/// Prefixes of the content tags images are pushed under: `build-<context hash>`,
/// `oci-<manifest hash>`. Each names one content.
pub const BUILD_TAG_PREFIX: &str = "build-";
pub const LAYOUT_TAG_PREFIX: &str = "oci-";

/// Whether `tag` is one of the content tags.
pub fn is_content_tag(tag: &str) -> bool {
    tag.starts_with(BUILD_TAG_PREFIX) || tag.starts_with(LAYOUT_TAG_PREFIX)
}
