//! Extracted code packages, one directory per package digest, shared by every function and
//! version that uses the same zip.

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use crate::blobs::{remove_dir_contents, remove_tree};
use crate::error::StoreError;
use crate::unzip::{self, UnzipLimits};

/// A package extracted and validated on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedCode {
    /// The directory holding the package's files (mounted at `/var/task`).
    pub root: PathBuf,
    /// Sum of the extracted file sizes.
    pub unzipped_size_bytes: u64,
}

/// `DATA/code/HEX/tree` holds the files of the package with digest HEX; `DATA/code/HEX/size`
/// records their total size. A directory only appears under its final name once extraction
/// has succeeded, so a present directory is always complete.
#[derive(Debug, Clone)]
pub struct CodeCache {
    root: PathBuf,
    staging: PathBuf,
}

impl CodeCache {
    pub(crate) fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let root = data_dir.join("code");
        let staging = data_dir.join("code-staging");
        for dir in [&root, &staging] {
            fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        // Leftovers of interrupted extractions.
        remove_dir_contents(&staging)?;
        Ok(Self { root, staging })
    }

    /// Returns the extracted package, extracting `zip` first if this digest is new.
    ///
    /// A refused archive leaves nothing on disk.
    pub fn extract(
        &self,
        sha256_hex: &str,
        zip: &[u8],
        limits: UnzipLimits,
    ) -> Result<ExtractedCode, StoreError> {
        if let Some(existing) = self.get(sha256_hex)? {
            if existing.unzipped_size_bytes >= limits.max_unzipped_bytes {
                return Err(unzip::UnzipError::TooLarge {
                    limit: limits.max_unzipped_bytes,
                }
                .into());
            }
            return Ok(existing);
        }
        let work = self
            .staging
            .join(format!("{sha256_hex}.{}", uuid::Uuid::new_v4()));
        let tree = work.join("tree");
        fs::create_dir_all(&tree).map_err(|e| StoreError::io(&tree, e))?;
        let outcome = unzip::extract(Cursor::new(zip), &tree, limits)
            .map_err(StoreError::from)
            .and_then(|report| {
                let size_file = work.join("size");
                fs::write(&size_file, report.unzipped_bytes.to_string())
                    .map_err(|e| StoreError::io(&size_file, e))?;
                let final_dir = self.root.join(sha256_hex);
                match fs::rename(&work, &final_dir) {
                    Ok(()) => Ok(()),
                    // Another extraction of the same digest won the race; theirs is as good.
                    Err(_) if final_dir.join("size").exists() => {
                        let _ = remove_tree(&work);
                        Ok(())
                    }
                    Err(e) => Err(StoreError::io(&final_dir, e)),
                }?;
                Ok(ExtractedCode {
                    root: final_dir.join("tree"),
                    unzipped_size_bytes: report.unzipped_bytes,
                })
            });
        if outcome.is_err() {
            let _ = remove_tree(&work);
        }
        outcome
    }

    /// Validates `zip` as [`CodeCache::extract`] would and returns its unzipped size, without
    /// keeping anything (for dry runs).
    pub fn measure(
        &self,
        sha256_hex: &str,
        zip: &[u8],
        limits: UnzipLimits,
    ) -> Result<u64, StoreError> {
        if let Some(existing) = self.get(sha256_hex)? {
            if existing.unzipped_size_bytes >= limits.max_unzipped_bytes {
                return Err(unzip::UnzipError::TooLarge {
                    limit: limits.max_unzipped_bytes,
                }
                .into());
            }
            return Ok(existing.unzipped_size_bytes);
        }
        let work = self
            .staging
            .join(format!("measure-{sha256_hex}.{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&work).map_err(|e| StoreError::io(&work, e))?;
        let outcome = unzip::extract(Cursor::new(zip), &work, limits)
            .map(|report| report.unzipped_bytes)
            .map_err(StoreError::from);
        remove_tree(&work).map_err(|e| StoreError::io(&work, e))?;
        outcome
    }

    /// The extracted package for a digest, if present.
    pub fn get(&self, sha256_hex: &str) -> Result<Option<ExtractedCode>, StoreError> {
        let dir = self.root.join(sha256_hex);
        let size_file = dir.join("size");
        let size = match fs::read_to_string(&size_file) {
            Ok(size) => size,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(size_file, e)),
        };
        let unzipped_size_bytes = size.trim().parse().map_err(|_| {
            StoreError::CorruptRecord(format!("bad size file in {}", dir.display()))
        })?;
        Ok(Some(ExtractedCode {
            root: dir.join("tree"),
            unzipped_size_bytes,
        }))
    }

    /// Digests of every extracted package.
    pub fn list(&self) -> Result<Vec<String>, StoreError> {
        let entries = fs::read_dir(&self.root).map_err(|e| StoreError::io(&self.root, e))?;
        let mut digests = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(&self.root, e))?;
            if let Some(name) = entry.file_name().to_str() {
                digests.push(name.to_owned());
            }
        }
        Ok(digests)
    }

    /// Removes an extracted package; missing is not an error.
    pub fn remove(&self, sha256_hex: &str) -> Result<(), StoreError> {
        let dir = self.root.join(sha256_hex);
        remove_tree(&dir).map_err(|e| StoreError::io(dir, e))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zip_with(name: &str, content: &[u8]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        writer
            .start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(content).unwrap();
        writer.finish().unwrap().into_inner()
    }

    const LIMITS: UnzipLimits = UnzipLimits {
        max_unzipped_bytes: 1 << 20,
        max_entries: 10,
    };

    #[test]
    fn extracts_once_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CodeCache::open(dir.path()).unwrap();
        let zip = zip_with("index.py", b"print(1)");
        let first = cache.extract("abc", &zip, LIMITS).unwrap();
        assert_eq!(first.unzipped_size_bytes, 8);
        assert_eq!(fs::read(first.root.join("index.py")).unwrap(), b"print(1)");
        // Same digest: served from the cache even with garbage bytes.
        let second = cache.extract("abc", b"not a zip", LIMITS).unwrap();
        assert_eq!(first, second);
        assert_eq!(cache.list().unwrap(), vec!["abc".to_owned()]);
        cache.remove("abc").unwrap();
        assert_eq!(cache.get("abc").unwrap(), None);
    }

    #[test]
    fn measuring_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CodeCache::open(dir.path()).unwrap();
        let zip = zip_with("a.txt", b"12345");
        assert_eq!(cache.measure("m", &zip, LIMITS).unwrap(), 5);
        assert!(cache.list().unwrap().is_empty());
        assert_eq!(
            fs::read_dir(dir.path().join("code-staging"))
                .unwrap()
                .count(),
            0
        );
        assert!(cache.measure("m", &zip_with("../x", b"1"), LIMITS).is_err());
        assert_eq!(
            fs::read_dir(dir.path().join("code-staging"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn refused_archives_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CodeCache::open(dir.path()).unwrap();
        let zip = zip_with("../escape", b"x");
        assert!(cache.extract("bad", &zip, LIMITS).is_err());
        assert!(cache.list().unwrap().is_empty());
        assert_eq!(
            fs::read_dir(dir.path().join("code-staging"))
                .unwrap()
                .count(),
            0
        );
        assert!(!dir.path().join("escape").exists());
    }
}
