//! Taking in a fresh load of the manifests: which files define which objects (a file
//! that cannot be read keeps what it defined before), and the problems by object.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::kinds::ObjectKey;
use crate::manifest::graph::Keys;
use crate::manifest::load::Loaded;

/// The keys each manifest file defines. Shared from one load to the next while a file
/// defines the same keys: a reload after one edit of a fleet's thousands of files copies
/// none of them.
pub type FileKeys = BTreeMap<PathBuf, Keys>;

/// Which files define which keys after `loaded`, given what they defined before: a file
/// that failed to parse keeps its old keys, and so do the files of a directory that could
/// not be listed. Also whether some file that failed has never been read (then what it
/// defines is unknown).
pub fn file_keys(previous: &FileKeys, loaded: &Loaded) -> (FileKeys, bool) {
    let broken_files: BTreeSet<&PathBuf> = loaded
        .problems
        .iter()
        .filter(|p| p.object.is_none())
        .map(|p| &p.source.file)
        .collect();
    let mut file_keys = BTreeMap::new();
    for (file, keys) in &loaded.files {
        let old = previous.get(file);
        if keys.is_empty() && broken_files.contains(file) {
            if let Some(old) = old {
                file_keys.insert(file.clone(), old.clone());
            }
            continue;
        }
        let mut keys = keys.clone();
        keys.sort();
        keys.dedup();
        let keys = match old {
            Some(old) if **old == keys[..] => old.clone(),
            _ => keys.into(),
        };
        file_keys.insert(file.clone(), keys);
    }
    // A directory that could not be listed keeps the files it held, with their keys.
    for dir in broken_files
        .iter()
        .filter(|f| !loaded.files.contains_key(**f))
    {
        for (file, keys) in previous {
            if file.starts_with(dir) && !loaded.files.contains_key(file) {
                file_keys.insert(file.clone(), keys.clone());
            }
        }
    }
    let unknown = broken_files.iter().any(|f| !file_keys.contains_key(*f));
    (file_keys, unknown)
}

/// The problems of `loaded`, by the object they concern: a problem of a whole file
/// concerns every object the file defines.
pub fn problems_by_key(loaded: &Loaded, file_keys: &FileKeys) -> BTreeMap<ObjectKey, Vec<String>> {
    let mut by_key: BTreeMap<ObjectKey, Vec<String>> = BTreeMap::new();
    for p in &loaded.problems {
        let keys: Vec<ObjectKey> = match &p.object {
            Some(o) => o
                .split_once('/')
                .map(|(k, n)| vec![ObjectKey::new(k, n)])
                .unwrap_or_default(),
            None => file_keys
                .get(&p.source.file)
                .map(|ks| ks.iter().cloned().collect())
                .unwrap_or_default(),
        };
        for k in keys {
            by_key.entry(k).or_default().push(p.to_string());
        }
    }
    by_key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Source;
    use crate::manifest::load::Problem;

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new("Parameter", name)
    }

    fn loaded(files: &[(&str, &[&str])], broken: &[&str]) -> Loaded {
        Loaded {
            objects: Vec::new(),
            problems: broken
                .iter()
                .map(|f| Problem {
                    source: Source {
                        file: PathBuf::from(f),
                        line: 0,
                    },
                    object: None,
                    path: String::new(),
                    message: "not YAML".into(),
                })
                .collect(),
            files: files
                .iter()
                .map(|(f, names)| (PathBuf::from(f), names.iter().map(|n| key(n)).collect()))
                .collect(),
            revision: None,
        }
    }

    fn names(keys: &FileKeys, file: &str) -> Option<Vec<String>> {
        keys.get(&PathBuf::from(file))
            .map(|ks| ks.iter().map(|k| k.name.to_string()).collect())
    }

    #[test]
    fn files_keep_their_keys_when_they_break_and_share_them_while_unchanged() {
        let (first, unknown) = file_keys(
            &FileKeys::new(),
            &loaded(&[("m/a.yaml", &["b", "a", "b"]), ("m/c.yaml", &["c"])], &[]),
        );
        assert!(!unknown);
        // In order, each once.
        assert_eq!(
            names(&first, "m/a.yaml"),
            Some(vec!["a".into(), "b".into()])
        );

        // Loaded again unchanged, each file's keys are the same allocation.
        let (again, _) = file_keys(
            &first,
            &loaded(&[("m/a.yaml", &["a", "b"]), ("m/c.yaml", &["d"])], &[]),
        );
        let shared = |k: &FileKeys, f: &str| {
            std::sync::Arc::ptr_eq(&k[&PathBuf::from(f)], &first[&PathBuf::from(f)])
        };
        assert!(shared(&again, "m/a.yaml"));
        assert!(!shared(&again, "m/c.yaml"));
        assert_eq!(names(&again, "m/c.yaml"), Some(vec!["d".into()]));

        // A file that no longer parses keeps what it defined; a broken file never read is
        // unknown; a directory that cannot be listed keeps its files.
        let (broken, unknown) = file_keys(
            &again,
            &loaded(
                &[("m/a.yaml", &[]), ("m/new.yaml", &[])],
                &["m/a.yaml", "m/new.yaml"],
            ),
        );
        assert!(unknown);
        assert_eq!(
            names(&broken, "m/a.yaml"),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(names(&broken, "m/c.yaml"), None);
        let (unlisted, unknown) = file_keys(&again, &loaded(&[], &["m"]));
        assert!(unknown, "the directory itself was never a file");
        assert_eq!(names(&unlisted, "m/c.yaml"), Some(vec!["d".into()]));
    }
}
