//! OCI images from source: hashing a build context (with `.dockerignore`), running an
//! image builder, reading the OCI image layout it writes (or one given as is), and pushing
//! the linux/arm64 image in it to ECR through the ECR API. No AWS knowledge outside
//! `push`; no knowledge of manifests or kinds at all.

pub mod build;
pub mod context;
pub mod dockerignore;
pub mod layout;
pub mod push;
