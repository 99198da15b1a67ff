//! The `/opt` of an ordered list of layers, built once and shared.
//!
//! Lambda extracts a function's layers into `/opt` in order, a later layer overwriting an
//! earlier one's files. Kiln builds that tree once per ordered list of layer packages, under
//! `DATA/layers-merged/KEY` (KEY: a digest of the ordered package digests), out of hard links
//! into the packages' extracted trees (`code/HEX/tree`), so building costs directory entries,
//! not copies. Every environment of every function with the same list mounts the same tree
//! read-only at `/opt`, so a warm tree makes a cold start with layers cost what one without
//! does. A tree is built in `layers-merged-staging/` and appears under its final name by
//! rename only when complete: a present tree is always whole.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::blobs::{hex, remove_dir_contents, remove_tree};
use crate::error::StoreError;

/// Merged layer trees by key.
#[derive(Debug, Clone)]
pub struct MergedLayers {
    root: PathBuf,
    staging: PathBuf,
}

impl MergedLayers {
    /// Opens (creating) the cache under `data_dir`, removing leftovers of interrupted builds.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let root = data_dir.join("layers-merged");
        let staging = data_dir.join("layers-merged-staging");
        for dir in [&root, &staging] {
            fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        remove_dir_contents(&staging)?;
        Ok(Self { root, staging })
    }

    /// The key of an ordered list of package digests: order matters, as it decides which
    /// layer's file wins.
    pub fn key<'a>(digests: impl IntoIterator<Item = &'a str>) -> String {
        let mut hasher = Sha256::new();
        for digest in digests {
            hasher.update(digest.as_bytes());
            hasher.update(b"\n");
        }
        hex(&hasher.finalize())
    }

    /// The merged tree for `key`, if built.
    pub fn get(&self, key: &str) -> Option<PathBuf> {
        let dir = self.root.join(key);
        dir.is_dir().then_some(dir)
    }

    /// Returns the merged tree for `key`, building it from `trees` (the layers' extracted
    /// packages, in order) if needed. Concurrent builds of one key are harmless: the first
    /// rename wins and the others discard their copy.
    pub fn get_or_build(&self, key: &str, trees: &[PathBuf]) -> Result<PathBuf, StoreError> {
        if let Some(existing) = self.get(key) {
            return Ok(existing);
        }
        let work = self
            .staging
            .join(format!("{key}.{}", uuid::Uuid::new_v4().simple()));
        let built = (|| {
            fs::create_dir(&work).map_err(|e| StoreError::io(&work, e))?;
            for tree in trees {
                overlay(tree, &work)?;
            }
            let final_dir = self.root.join(key);
            match fs::rename(&work, &final_dir) {
                Ok(()) => Ok(final_dir),
                // Another build of the same list won the race; theirs is as good.
                Err(_) if final_dir.is_dir() => {
                    let _ = remove_tree(&work);
                    Ok(final_dir)
                }
                Err(e) => Err(StoreError::io(&final_dir, e)),
            }
        })();
        if built.is_err() {
            let _ = remove_tree(&work);
        }
        built
    }

    /// Keys of every merged tree.
    pub fn list(&self) -> Result<Vec<String>, StoreError> {
        let entries = fs::read_dir(&self.root).map_err(|e| StoreError::io(&self.root, e))?;
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(&self.root, e))?;
            if let Some(name) = entry.file_name().to_str() {
                keys.push(name.to_owned());
            }
        }
        Ok(keys)
    }

    /// Removes a merged tree; missing is not an error. The packages it links to are
    /// untouched (a hard link is only a name).
    pub fn remove(&self, key: &str) -> Result<(), StoreError> {
        let dir = self.root.join(key);
        remove_tree(&dir).map_err(|e| StoreError::io(dir, e))
    }
}

/// Lays `source`'s entries over `target`, replacing whatever is at the same path: files are
/// hard-linked (copied if the link fails, e.g. across file systems), symbolic links recreated
/// as they are (extraction has already refused links that leave the package), directories
/// merged.
fn overlay(source: &Path, target: &Path) -> Result<(), StoreError> {
    let entries = fs::read_dir(source).map_err(|e| StoreError::io(source, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(source, e))?;
        let from = entry.path();
        let to = target.join(entry.file_name());
        let kind = entry.file_type().map_err(|e| StoreError::io(&from, e))?;
        let existing = fs::symlink_metadata(&to).ok();
        if kind.is_dir() {
            match existing {
                Some(meta) if meta.is_dir() => {}
                Some(_) => {
                    fs::remove_file(&to).map_err(|e| StoreError::io(&to, e))?;
                    fs::create_dir(&to).map_err(|e| StoreError::io(&to, e))?;
                }
                None => fs::create_dir(&to).map_err(|e| StoreError::io(&to, e))?,
            }
            overlay(&from, &to)?;
            continue;
        }
        match existing {
            Some(meta) if meta.is_dir() => remove_tree(&to).map_err(|e| StoreError::io(&to, e))?,
            Some(_) => fs::remove_file(&to).map_err(|e| StoreError::io(&to, e))?,
            None => {}
        }
        if kind.is_symlink() {
            let link = fs::read_link(&from).map_err(|e| StoreError::io(&from, e))?;
            std::os::unix::fs::symlink(&link, &to).map_err(|e| StoreError::io(&to, e))?;
        } else if fs::hard_link(&from, &to).is_err() {
            fs::copy(&from, &to).map_err(|e| StoreError::io(&to, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn tree(root: &Path, files: &[(&str, &str)]) -> PathBuf {
        fs::create_dir_all(root).unwrap();
        for (name, content) in files {
            let path = root.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        root.to_owned()
    }

    #[test]
    fn later_layers_win_and_files_are_shared_not_copied() {
        let dir = tempfile::tempdir().unwrap();
        let cache = MergedLayers::open(dir.path()).unwrap();
        let first = tree(
            &dir.path().join("a"),
            &[
                ("python/common.py", "first"),
                ("python/only_a.py", "a"),
                ("bin", "file"),
            ],
        );
        let second = tree(
            &dir.path().join("b"),
            &[("python/common.py", "second"), ("bin/tool", "t")],
        );
        std::os::unix::fs::symlink("common.py", second.join("python/link.py")).unwrap();
        let key = MergedLayers::key(["a", "b"]);
        assert_ne!(key, MergedLayers::key(["b", "a"]), "order matters");
        let merged = cache.get_or_build(&key, &[first.clone(), second]).unwrap();
        let read = |path: &str| fs::read_to_string(merged.join(path)).unwrap();
        assert_eq!(read("python/common.py"), "second");
        assert_eq!(read("python/only_a.py"), "a");
        assert_eq!(read("bin/tool"), "t", "a directory replaces a file");
        assert_eq!(read("python/link.py"), "second");
        assert_eq!(
            fs::metadata(merged.join("python/only_a.py")).unwrap().ino(),
            fs::metadata(first.join("python/only_a.py")).unwrap().ino(),
            "hard links, not copies"
        );
        // Built once: the next call finds it even without sources.
        assert_eq!(cache.get_or_build(&key, &[]).unwrap(), merged);
        assert_eq!(cache.list().unwrap(), vec![key.clone()]);
        cache.remove(&key).unwrap();
        assert!(cache.get(&key).is_none());
        assert!(
            first.join("python/only_a.py").exists(),
            "packages untouched"
        );
    }

    #[test]
    fn failed_builds_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = MergedLayers::open(dir.path()).unwrap();
        let missing = dir.path().join("missing");
        assert!(cache.get_or_build("k", &[missing]).is_err());
        assert!(cache.list().unwrap().is_empty());
        assert_eq!(
            fs::read_dir(dir.path().join("layers-merged-staging"))
                .unwrap()
                .count(),
            0
        );
    }
}
