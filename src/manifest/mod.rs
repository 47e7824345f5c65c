//! Manifests: YAML documents on disk → validated objects with a dependency graph.

pub mod graph;
pub mod load;

pub use crate::model::{de, yaml};

use std::path::PathBuf;
use std::sync::Arc;

pub use graph::Graph;
pub use load::{Object, Problem, Source};

use crate::model::schema::Schemas;

/// A complete, valid set of manifests.
#[derive(Debug, Clone, Default)]
pub struct ManifestSet {
    pub objects: Vec<Arc<Object>>,
    pub graph: Graph,
}

impl ManifestSet {
    pub fn get(&self, key: &crate::model::object::ObjectKey) -> Option<&Object> {
        self.objects.iter().find(|o| &o.key == key).map(|o| &**o)
    }
}

/// Why a set of manifests could not be used.
#[derive(Debug)]
pub enum LoadError {
    Io(std::io::Error),
    Invalid(Vec<Problem>),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "{e}"),
            LoadError::Invalid(problems) => {
                for p in problems {
                    writeln!(f, "{p}")?;
                }
                write!(
                    f,
                    "{} problem{} found",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" }
                )
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// Load, validate and order the manifests under `paths`; every problem or nothing.
pub fn load_set(paths: &[PathBuf], schemas: &dyn Schemas) -> Result<ManifestSet, LoadError> {
    let loaded = load::load(paths, schemas).map_err(LoadError::Io)?;
    let mut problems = loaded.problems;
    let graph = match Graph::build(&loaded.objects, schemas) {
        Ok(g) => Some(g),
        Err(ps) => {
            problems.extend(ps);
            None
        }
    };
    match graph {
        Some(graph) if problems.is_empty() => Ok(ManifestSet {
            objects: loaded.objects,
            graph,
        }),
        _ => {
            problems.sort();
            Err(LoadError::Invalid(problems))
        }
    }
}
