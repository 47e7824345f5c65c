//! Manifests: YAML documents on disk → validated objects with a dependency graph.

pub mod de;
pub mod yaml;
