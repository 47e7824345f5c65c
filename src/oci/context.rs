//! Hashing a build context: relative paths, file types, permission bits and contents of
//! everything a builder would be sent, honouring the context's `.dockerignore`. The
//! `.dockerignore` and a root `Dockerfile` always count (Docker sends them even when they
//! match a pattern, and they change the build).

use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::dockerignore::DockerIgnore;

/// What hashing a context found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextHash {
    /// SHA-256 over the sorted entries, hex.
    pub hex: String,
    /// Files hashed (ignored files not counted).
    pub files: u64,
    /// Bytes of file content hashed.
    pub bytes: u64,
}

/// Hash the context directory `root`.
pub fn hash_context(root: &Path) -> std::io::Result<ContextHash> {
    let meta = std::fs::metadata(root)?;
    if !meta.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} is not a directory", root.display()),
        ));
    }
    let ignore = match std::fs::read_to_string(root.join(".dockerignore")) {
        Ok(text) => DockerIgnore::parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DockerIgnore::default(),
        Err(e) => return Err(e),
    };
    let mut walker = Walker {
        ignore,
        hasher: Sha256::new(),
        files: 0,
        bytes: 0,
        buf: vec![0; 64 * 1024],
    };
    walker
        .hasher
        .update(b"agentcore-controller build context v1\0");
    walker.walk(root, "")?;
    Ok(ContextHash {
        hex: hex::encode(walker.hasher.finalize()),
        files: walker.files,
        bytes: walker.bytes,
    })
}

/// The identity of a build: the context's hash and the builder command, hex.
pub fn build_id(context: &ContextHash, command: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"agentcore-controller build v1\0");
    h.update((command.len() as u64).to_le_bytes());
    h.update(command.as_bytes());
    h.update(context.hex.as_bytes());
    hex::encode(h.finalize())
}

struct Walker {
    ignore: DockerIgnore,
    hasher: Sha256,
    files: u64,
    bytes: u64,
    buf: Vec<u8>,
}

impl Walker {
    fn record(&mut self, kind: u8, rel: &[u8], mode: u32, payload: &[u8]) {
        self.hasher.update([kind]);
        self.hasher.update((rel.len() as u64).to_le_bytes());
        self.hasher.update(rel);
        self.hasher.update(mode.to_le_bytes());
        self.hasher.update((payload.len() as u64).to_le_bytes());
        self.hasher.update(payload);
    }

    fn walk(&mut self, dir: &Path, prefix: &str) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            let rel_bytes = [prefix.as_bytes(), name.as_bytes()].concat();
            let rel = String::from_utf8_lossy(&rel_bytes).into_owned();
            let always = rel == ".dockerignore" || rel == "Dockerfile";
            let ignored = !always && self.ignore.is_ignored(&rel);
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path)?;
            let mode = meta.permissions().mode() & 0o7777;
            let ft = meta.file_type();
            if ft.is_dir() {
                if ignored && !self.ignore.has_exceptions() {
                    continue;
                }
                if !ignored {
                    self.record(b'd', &rel_bytes, mode, b"");
                }
                self.walk(&path, &format!("{rel}/"))?;
            } else if ignored {
                continue;
            } else if ft.is_file() {
                let digest = self.file_digest(&path)?;
                self.record(b'f', &rel_bytes, mode, &digest);
            } else if ft.is_symlink() {
                let target = std::fs::read_link(&path)?;
                self.record(b'l', &rel_bytes, mode, target.as_os_str().as_bytes());
            }
            // Sockets, FIFOs and devices are not sent to builders.
        }
        Ok(())
    }

    fn file_digest(&mut self, path: &Path) -> std::io::Result<Vec<u8>> {
        let mut f = File::open(path)?;
        let mut h = Sha256::new();
        let mut size = 0u64;
        loop {
            let n = f.read(&mut self.buf)?;
            if n == 0 {
                break;
            }
            h.update(&self.buf[..n]);
            size += n as u64;
        }
        self.files += 1;
        self.bytes += size;
        let mut out = size.to_le_bytes().to_vec();
        out.extend_from_slice(&h.finalize());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, text).expect("write");
    }

    fn base() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "Dockerfile", "FROM scratch\nCOPY . /app\n");
        write(dir.path(), "server.py", "print('hi')\n");
        write(dir.path(), "lib/util.py", "X = 1\n");
        write(
            dir.path(),
            ".dockerignore",
            "*.log\nbuild\n!build/keep.txt\n",
        );
        write(dir.path(), "debug.log", "noise\n");
        write(dir.path(), "build/out.o", "obj\n");
        write(dir.path(), "build/keep.txt", "kept\n");
        dir
    }

    #[test]
    fn what_changes_the_hash() {
        type Edit = fn(&Path);
        let cases: Vec<(&str, Edit, bool)> = vec![
            ("nothing", |_| {}, false),
            ("content", |r| write(r, "server.py", "print('bye')\n"), true),
            (
                "mode",
                |r| {
                    let p = r.join("server.py");
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
                        .expect("chmod");
                },
                true,
            ),
            (
                "path",
                |r| std::fs::rename(r.join("lib/util.py"), r.join("lib/utils.py")).expect("mv"),
                true,
            ),
            ("new file", |r| write(r, "lib/new.py", ""), true),
            (
                "empty directory",
                |r| std::fs::create_dir(r.join("empty")).expect("mkdir"),
                true,
            ),
            (
                "symlink",
                |r| std::os::unix::fs::symlink("server.py", r.join("link")).expect("ln"),
                true,
            ),
            (
                "ignored file",
                |r| write(r, "debug.log", "more noise\n"),
                false,
            ),
            ("new ignored file", |r| write(r, "other.log", "x"), false),
            (
                "file in an ignored directory",
                |r| write(r, "build/out.o", "changed"),
                false,
            ),
            (
                "re-included file",
                |r| write(r, "build/keep.txt", "changed"),
                true,
            ),
            (
                ".dockerignore itself",
                |r| write(r, ".dockerignore", "*.log\nbuild\n"),
                true,
            ),
            (
                "Dockerfile",
                |r| write(r, "Dockerfile", "FROM alpine\n"),
                true,
            ),
        ];
        for (what, edit, changes) in cases {
            let dir = base();
            let before = hash_context(dir.path()).expect("hash");
            edit(dir.path());
            let after = hash_context(dir.path()).expect("hash");
            assert_eq!(before != after, changes, "{what}");
        }
    }

    #[test]
    fn counts_and_identity() {
        let dir = base();
        let h = hash_context(dir.path()).expect("hash");
        // Dockerfile, .dockerignore, server.py, lib/util.py, build/keep.txt.
        assert_eq!(h.files, 5, "{h:?}");
        assert_eq!(h.hex.len(), 64);
        // Same content elsewhere: same hash (paths are relative).
        let other = base();
        assert_eq!(hash_context(other.path()).expect("hash").hex, h.hex);
        // The command is part of a build's identity.
        assert_ne!(build_id(&h, "make {out}"), build_id(&h, "make2 {out}"));
        assert_eq!(build_id(&h, "make {out}"), build_id(&h, "make {out}"));
        assert!(hash_context(&dir.path().join("missing")).is_err());
        assert!(hash_context(&dir.path().join("server.py")).is_err());
    }
}
