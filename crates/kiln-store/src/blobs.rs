//! Content-addressed storage of code packages.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::StoreError;

/// A blob that is safely on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// Lowercase hex SHA-256 of the content.
    pub sha256_hex: String,
    /// Base64 SHA-256 of the content (Lambda's `CodeSha256`).
    pub sha256_base64: String,
    /// Content length in bytes.
    pub size_bytes: u64,
}

/// Immutable blobs named by the SHA-256 of their content, under `DATA/blobs/sha256/`.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    staging: PathBuf,
}

impl BlobStore {
    pub(crate) fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let root = data_dir.join("blobs").join("sha256");
        let staging = data_dir.join("blobs").join("staging");
        for dir in [&root, &staging] {
            fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        // Anything in staging was interrupted mid-write: it never became a blob.
        remove_dir_contents(&staging)?;
        Ok(Self { root, staging })
    }

    /// Hashes `content` without storing it.
    pub fn describe(content: &[u8]) -> StoredBlob {
        let digest = Sha256::digest(content);
        StoredBlob {
            sha256_hex: hex(&digest),
            sha256_base64: base64::engine::general_purpose::STANDARD.encode(digest),
            size_bytes: content.len() as u64,
        }
    }

    /// Stores `content` durably and returns its description. Storing the same content twice
    /// is a no-op the second time.
    pub fn put(&self, content: &[u8]) -> Result<StoredBlob, StoreError> {
        let blob = Self::describe(content);
        let final_path = self.path(&blob.sha256_hex);
        if final_path.exists() {
            return Ok(blob);
        }
        let staging_path =
            self.staging
                .join(format!("{}.{}", blob.sha256_hex, uuid::Uuid::new_v4()));
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&staging_path)?;
            file.write_all(content)?;
            file.sync_all()?;
            fs::rename(&staging_path, &final_path)?;
            fs::File::open(&self.root)?.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&staging_path);
            StoreError::io(&final_path, e)
        })?;
        Ok(blob)
    }

    /// Where the blob with this hex digest lives (it may not exist).
    pub fn path(&self, sha256_hex: &str) -> PathBuf {
        self.root.join(format!("{sha256_hex}.zip"))
    }

    /// Reads a whole blob.
    pub fn read(&self, sha256_hex: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.path(sha256_hex);
        fs::read(&path).map_err(|e| StoreError::io(path, e))
    }

    /// The digests of every stored blob.
    pub fn list(&self) -> Result<Vec<String>, StoreError> {
        let mut digests = Vec::new();
        let entries = fs::read_dir(&self.root).map_err(|e| StoreError::io(&self.root, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(&self.root, e))?;
            if let Some(digest) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.strip_suffix(".zip"))
            {
                digests.push(digest.to_owned());
            }
        }
        Ok(digests)
    }

    /// Deletes a blob; a missing blob is not an error.
    pub fn remove(&self, sha256_hex: &str) -> Result<(), StoreError> {
        let path = self.path(sha256_hex);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

pub(crate) fn remove_dir_contents(dir: &Path) -> Result<(), StoreError> {
    let entries = fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| StoreError::io(dir, e))?.path();
        let removed = if path.is_dir() {
            remove_tree(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.map_err(|e| StoreError::io(&path, e))?;
    }
    Ok(())
}

/// Removes a directory tree even where extraction left read-only directories behind.
pub(crate) fn remove_tree(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(first_error) => {
            // Directories without the write bit refuse deletion of their children: restore
            // owner write on every directory, then try again.
            for dir in walk_dirs(path) {
                let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o755));
            }
            fs::remove_dir_all(path).map_err(|_| first_error)
        }
    }
}

fn walk_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![root.to_owned()];
    let mut index = 0;
    while index < dirs.len() {
        if let Ok(entries) = fs::read_dir(&dirs[index]) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(entry.path());
                }
            }
        }
        index += 1;
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_matches_lambda_code_sha256() {
        // echo -n "hello" | sha256sum / | base64 of the raw digest
        let blob = BlobStore::describe(b"hello");
        assert_eq!(
            blob.sha256_hex,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(
            blob.sha256_base64,
            "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
        );
        assert_eq!(blob.size_bytes, 5);
    }

    #[test]
    fn put_is_idempotent_and_cleans_staging() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("blobs/staging")).unwrap();
        fs::write(dir.path().join("blobs/staging/leftover"), b"half").unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        assert!(!dir.path().join("blobs/staging/leftover").exists());
        let first = store.put(b"code").unwrap();
        let second = store.put(b"code").unwrap();
        assert_eq!(first, second);
        assert_eq!(store.read(&first.sha256_hex).unwrap(), b"code");
        assert_eq!(store.list().unwrap(), vec![first.sha256_hex.clone()]);
        store.remove(&first.sha256_hex).unwrap();
        store.remove(&first.sha256_hex).unwrap();
        assert!(store.list().unwrap().is_empty());
    }
}
