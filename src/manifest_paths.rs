//! The manifest paths given with `-f`, as the daemon watches them: each resolved through
//! symlinks, and the directories holding those symlinks watched too, so that a symlink
//! swapped to a new target is followed. git-sync publishes each commit as a new
//! directory and swaps its `current` link to it (then deletes the old one); a mounted
//! ConfigMap swaps `..data` the same way. A watch kept on the old, deleted directory
//! would see nothing more.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use notify::{RecursiveMode, Watcher};
use tracing::{info, warn};

#[derive(Debug, Default)]
pub struct ManifestPaths {
    given: Vec<PathBuf>,
    /// What is watched now, and how: the resolved directories (recursively), the parents
    /// of resolved files, and the directories holding symlinks on the way (not
    /// recursively).
    watched: BTreeMap<PathBuf, RecursiveMode>,
    /// The given paths that are directories, resolved.
    dirs: Vec<PathBuf>,
}

impl ManifestPaths {
    pub fn new(given: Vec<PathBuf>) -> Self {
        Self {
            given,
            ..Self::default()
        }
    }

    /// The given paths that are directories, resolved (event paths are compared with
    /// these).
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// What should be watched for the given paths as they resolve now, and the
    /// directories among them.
    fn plan(&self) -> (BTreeMap<PathBuf, RecursiveMode>, Vec<PathBuf>) {
        let mut want = BTreeMap::new();
        let mut dirs = Vec::new();
        for given in &self.given {
            let resolved = std::fs::canonicalize(given).unwrap_or_else(|_| given.clone());
            if resolved.is_dir() {
                dirs.push(resolved.clone());
                want.insert(resolved, RecursiveMode::Recursive);
            } else {
                // The parent of a file, so that replace-by-rename is seen.
                let parent = resolved.parent().map(PathBuf::from).unwrap_or(resolved);
                want.entry(parent).or_insert(RecursiveMode::NonRecursive);
            }
            for dir in link_dirs(given) {
                want.entry(dir).or_insert(RecursiveMode::NonRecursive);
            }
        }
        (want, dirs)
    }

    /// Watch the paths as they resolve for the first time; a path that cannot be watched
    /// is an error.
    pub fn start(&mut self, watcher: &mut impl Watcher) -> notify::Result<()> {
        let (want, dirs) = self.plan();
        for (path, mode) in &want {
            watcher.watch(path, *mode)?;
        }
        self.watched = want;
        self.dirs = dirs;
        Ok(())
    }

    /// Resolve the paths again and move the watches to where they lead now. Whether
    /// anything moved.
    pub fn refresh(&mut self, watcher: &mut impl Watcher) -> bool {
        let (want, dirs) = self.plan();
        if want == self.watched {
            return false;
        }
        for (path, mode) in &self.watched {
            if want.get(path) != Some(mode) {
                // Gone with the old target, as often as not.
                let _ = watcher.unwatch(path);
            }
        }
        for (path, mode) in &want {
            if self.watched.get(path) != Some(mode)
                && let Err(e) = watcher.watch(path, *mode)
            {
                warn!(path = %path.display(), error = %e, "cannot watch a manifest path");
            }
        }
        info!(
            dirs = ?dirs,
            "the manifest paths lead elsewhere now (a symlink was swapped): watching there"
        );
        self.watched = want;
        self.dirs = dirs;
        true
    }
}

/// The directories holding a symlink on the way to `path` (the path itself included),
/// as absolute paths.
fn link_dirs(path: &Path) -> Vec<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| path.to_path_buf(), |cwd| cwd.join(path))
    };
    absolute
        .ancestors()
        .filter(|a| std::fs::symlink_metadata(a).is_ok_and(|m| m.file_type().is_symlink()))
        .filter_map(|a| a.parent())
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A watcher that records what it is asked to watch.
    #[derive(Default)]
    struct Recorder(BTreeMap<PathBuf, RecursiveMode>);

    impl Watcher for Recorder {
        fn new<F: notify::EventHandler>(_: F, _: notify::Config) -> notify::Result<Self> {
            Ok(Self::default())
        }
        fn watch(&mut self, path: &Path, mode: RecursiveMode) -> notify::Result<()> {
            self.0.insert(path.to_path_buf(), mode);
            Ok(())
        }
        fn unwatch(&mut self, path: &Path) -> notify::Result<()> {
            self.0.remove(path);
            Ok(())
        }
        fn configure(&mut self, _: notify::Config) -> notify::Result<bool> {
            Ok(true)
        }
        fn kind() -> notify::WatcherKind {
            notify::WatcherKind::NullWatcher
        }
    }

    #[test]
    fn a_swapped_symlink_moves_the_watch_to_its_new_target() {
        let root = tempfile::tempdir().expect("tempdir");
        let root = std::fs::canonicalize(root.path()).expect("canonical");
        let worktree = |name: &str| {
            let dir = root.join(".worktrees").join(name).join("manifests");
            std::fs::create_dir_all(&dir).expect("mkdir");
            dir
        };
        let a = worktree("a");
        std::os::unix::fs::symlink(root.join(".worktrees/a"), root.join("current")).expect("link");
        let mut paths = ManifestPaths::new(vec![root.join("current/manifests")]);
        let mut watcher = Recorder::default();
        paths.start(&mut watcher).expect("start");
        assert_eq!(paths.dirs(), std::slice::from_ref(&a));
        assert_eq!(
            watcher.0,
            BTreeMap::from([
                (a.clone(), RecursiveMode::Recursive),
                (root.clone(), RecursiveMode::NonRecursive),
            ])
        );
        assert!(!paths.refresh(&mut watcher), "nothing moved");

        // git-sync's swap: a new worktree, the link replaced by rename, the old one gone.
        let b = worktree("b");
        std::os::unix::fs::symlink(root.join(".worktrees/b"), root.join("tmp-link")).expect("link");
        std::fs::rename(root.join("tmp-link"), root.join("current")).expect("swap");
        std::fs::remove_dir_all(root.join(".worktrees/a")).expect("rm");
        assert!(paths.refresh(&mut watcher));
        assert_eq!(paths.dirs(), std::slice::from_ref(&b));
        assert_eq!(
            watcher.0,
            BTreeMap::from([
                (b, RecursiveMode::Recursive),
                (root.clone(), RecursiveMode::NonRecursive),
            ])
        );
    }

    #[test]
    fn a_path_without_symlinks_watches_only_itself() {
        let root = tempfile::tempdir().expect("tempdir");
        let root = std::fs::canonicalize(root.path()).expect("canonical");
        let file = root.join("stack.yaml");
        std::fs::write(&file, "").expect("write");
        let mut paths = ManifestPaths::new(vec![root.clone(), file]);
        let mut watcher = Recorder::default();
        paths.start(&mut watcher).expect("start");
        assert_eq!(
            watcher.0,
            BTreeMap::from([(root.clone(), RecursiveMode::Recursive)])
        );
        assert_eq!(paths.dirs(), [root]);
    }
}
