//! Extraction of untrusted zip archives into a directory.
//!
//! Every entry is checked before anything is written: names must stay inside the root (no
//! absolute paths, no `..` that climbs out), symlinks must point inside the root, and the
//! bytes actually decompressed are counted against the unzipped limit, so an archive that lies
//! about its sizes (a zip bomb) is stopped at the limit rather than trusted. Symlinks are
//! created last, so no file is ever written through a link.

use std::fs;
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Bounds applied while extracting.
#[derive(Debug, Clone, Copy)]
pub struct UnzipLimits {
    /// Extracted files must total less than this many bytes (Lambda's "must be smaller than").
    pub max_unzipped_bytes: u64,
    /// Maximum number of entries in the archive.
    pub max_entries: usize,
}

impl UnzipLimits {
    /// Lambda's limit on the unzipped size of a function with its layers (250 MB).
    pub const LAMBDA_UNZIPPED_BYTES: u64 = 262_144_000;
}

/// Why an archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum UnzipError {
    #[error("not a readable zip archive: {0}")]
    NotAZip(String),
    #[error("archive entry {entry:?} is corrupt: {detail}")]
    CorruptEntry { entry: String, detail: String },
    #[error("unzipped size exceeds {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("archive has more than {limit} entries")]
    TooManyEntries { limit: usize },
    #[error("archive entry {entry:?} would be written outside the code root")]
    UnsafePath { entry: String },
    #[error("archive entry {entry:?} is a symlink to {target:?}, outside the code root")]
    UnsafeSymlink { entry: String, target: String },
    #[error("archive entry {entry:?} conflicts with another entry")]
    Conflict { entry: String },
    #[error("i/o error while extracting into {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What an extraction produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnzipReport {
    /// Sum of the sizes of extracted regular files.
    pub unzipped_bytes: u64,
    /// Number of regular files written.
    pub files: usize,
}

/// Symlink targets longer than this are refused outright.
const MAX_SYMLINK_TARGET: u64 = 4096;

/// Extracts `archive` into `destination`, which must exist and be empty.
///
/// On error the caller owns cleaning `destination` up; [`crate::CodeCache`] extracts into a
/// private temporary directory and removes it, so a refused archive leaves nothing behind.
pub fn extract<R: Read + Seek>(
    archive: R,
    destination: &Path,
    limits: UnzipLimits,
) -> Result<UnzipReport, UnzipError> {
    let mut zip = zip::ZipArchive::new(archive).map_err(|e| UnzipError::NotAZip(e.to_string()))?;
    if zip.len() > limits.max_entries {
        return Err(UnzipError::TooManyEntries {
            limit: limits.max_entries,
        });
    }

    let mut report = UnzipReport {
        unzipped_bytes: 0,
        files: 0,
    };
    let mut symlinks: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut modes: Vec<(PathBuf, u32)> = Vec::new();

    for index in 0..zip.len() {
        let mut entry = zip.by_index(index).map_err(|e| UnzipError::CorruptEntry {
            entry: format!("#{index}"),
            detail: e.to_string(),
        })?;
        let raw_name = entry
            .name()
            .map_err(|e| UnzipError::CorruptEntry {
                entry: format!("#{index}"),
                detail: e.to_string(),
            })?
            .into_owned();
        let relative = safe_relative_path(&raw_name).ok_or_else(|| UnzipError::UnsafePath {
            entry: raw_name.clone(),
        })?;
        if relative.as_os_str().is_empty() {
            // "./" or "/" alone: nothing to create.
            continue;
        }
        let target = destination.join(&relative);

        if entry.is_dir() {
            create_dir_all(&target)?;
            continue;
        }

        if let Some(parent) = target.parent() {
            create_dir_all(parent)?;
        }

        if entry.is_symlink() {
            let mut link_target = String::new();
            (&mut entry)
                .take(MAX_SYMLINK_TARGET + 1)
                .read_to_string(&mut link_target)
                .map_err(|e| UnzipError::CorruptEntry {
                    entry: raw_name.clone(),
                    detail: e.to_string(),
                })?;
            if link_target.len() as u64 > MAX_SYMLINK_TARGET
                || !symlink_stays_inside(&relative, &link_target)
            {
                return Err(UnzipError::UnsafeSymlink {
                    entry: raw_name,
                    target: link_target,
                });
            }
            symlinks.push((target, PathBuf::from(link_target)));
            continue;
        }

        let remaining = limits
            .max_unzipped_bytes
            .saturating_sub(1)
            .saturating_sub(report.unzipped_bytes);
        let mut file = fs::File::create(&target).map_err(|source| {
            if source.kind() == io::ErrorKind::IsADirectory {
                UnzipError::Conflict {
                    entry: raw_name.clone(),
                }
            } else {
                UnzipError::Io {
                    path: target.clone(),
                    source,
                }
            }
        })?;
        // Read at most one byte past the budget: that byte proves the limit is exceeded
        // without trusting the sizes the archive declares.
        let written = copy_limited(&mut entry, &mut file, remaining + 1).map_err(|source| {
            match source.kind() {
                io::ErrorKind::InvalidData
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::Other => UnzipError::CorruptEntry {
                    entry: raw_name.clone(),
                    detail: source.to_string(),
                },
                _ => UnzipError::Io {
                    path: target.clone(),
                    source,
                },
            }
        })?;
        if written > remaining {
            return Err(UnzipError::TooLarge {
                limit: limits.max_unzipped_bytes,
            });
        }
        report.unzipped_bytes += written;
        report.files += 1;
        let mode = entry.unix_mode().map_or(0o644, |mode| mode & 0o777);
        modes.push((target, mode));
    }

    for (path, mode) in modes {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(|source| UnzipError::Io { path, source })?;
    }
    for (link, link_target) in symlinks {
        std::os::unix::fs::symlink(&link_target, &link).map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                UnzipError::Conflict {
                    entry: link.display().to_string(),
                }
            } else {
                UnzipError::Io { path: link, source }
            }
        })?;
    }
    Ok(report)
}

fn create_dir_all(path: &Path) -> Result<(), UnzipError> {
    fs::create_dir_all(path).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists
            || source.kind() == io::ErrorKind::NotADirectory
        {
            UnzipError::Conflict {
                entry: path.display().to_string(),
            }
        } else {
            UnzipError::Io {
                path: path.to_owned(),
                source,
            }
        }
    })
}

/// Copies up to `limit` bytes, returning how many were copied.
fn copy_limited(reader: &mut impl Read, writer: &mut impl Write, limit: u64) -> io::Result<u64> {
    io::copy(&mut reader.take(limit), writer)
}

/// The entry name as a relative path with no `..`, or `None` if it would leave the root.
///
/// Leading `/` and drive-like prefixes are refused rather than stripped: an archive that names
/// absolute paths is not one a Lambda user means to deploy.
fn safe_relative_path(name: &str) -> Option<PathBuf> {
    if name.contains('\0') || name.contains('\\') {
        return None;
    }
    let path = Path::new(name);
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !clean.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(clean)
}

/// Whether a symlink at `link` (relative to the root) pointing to `target` resolves, lexically,
/// to a path inside the root.
fn symlink_stays_inside(link: &Path, target: &str) -> bool {
    if target.is_empty() || target.contains('\0') || target.starts_with('/') {
        return false;
    }
    let mut resolved: Vec<&std::ffi::OsStr> = link
        .parent()
        .map(|parent| parent.iter().collect())
        .unwrap_or_default();
    for component in Path::new(target).components() {
        match component {
            Component::Normal(part) => resolved.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if resolved.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use zip::write::SimpleFileOptions;

    use super::*;

    const LIMITS: UnzipLimits = UnzipLimits {
        max_unzipped_bytes: 1024 * 1024,
        max_entries: 100,
    };

    enum Entry<'a> {
        File(&'a str, &'a [u8], u32),
        Dir(&'a str),
        Symlink(&'a str, &'a str),
    }

    fn build(entries: &[Entry<'_>]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for entry in entries {
            match entry {
                Entry::File(name, data, mode) => {
                    let options = SimpleFileOptions::default()
                        .compression_method(zip::CompressionMethod::Deflated)
                        .unix_permissions(*mode);
                    writer.start_file(*name, options).unwrap();
                    writer.write_all(data).unwrap();
                }
                Entry::Dir(name) => {
                    writer
                        .add_directory(*name, SimpleFileOptions::default())
                        .unwrap();
                }
                Entry::Symlink(name, target) => {
                    writer
                        .add_symlink(*name, *target, SimpleFileOptions::default())
                        .unwrap();
                }
            }
        }
        writer.finish().unwrap().into_inner()
    }

    fn extract_bytes(bytes: Vec<u8>) -> (tempfile::TempDir, Result<UnzipReport, UnzipError>) {
        let dir = tempfile::tempdir().unwrap();
        let result = extract(Cursor::new(bytes), dir.path(), LIMITS);
        (dir, result)
    }

    #[test]
    fn extracts_files_directories_modes_and_inner_symlinks() {
        let zip = build(&[
            Entry::Dir("lib/"),
            Entry::File("bootstrap", b"#!/bin/sh\n", 0o755),
            Entry::File("lib/data.txt", b"hello", 0o644),
            Entry::Symlink("current", "lib/data.txt"),
            Entry::Symlink("lib/up", "../bootstrap"),
        ]);
        let (dir, result) = extract_bytes(zip);
        let report = result.unwrap();
        assert_eq!(report.files, 2);
        assert_eq!(report.unzipped_bytes, 15);
        let mode = fs::metadata(dir.path().join("bootstrap"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            fs::read_to_string(dir.path().join("current")).unwrap(),
            "hello"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("lib/up")).unwrap(),
            "#!/bin/sh\n"
        );
    }

    #[test]
    fn refuses_parent_traversal() {
        let (_dir, result) = extract_bytes(build(&[Entry::File("../evil", b"x", 0o644)]));
        assert!(
            matches!(result, Err(UnzipError::UnsafePath { .. })),
            "{result:?}"
        );
        let (_dir, result) = extract_bytes(build(&[Entry::File("a/../../evil", b"x", 0o644)]));
        assert!(
            matches!(result, Err(UnzipError::UnsafePath { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn allows_parent_components_that_stay_inside() {
        let (dir, result) = extract_bytes(build(&[Entry::File("a/../b.txt", b"x", 0o644)]));
        result.unwrap();
        assert!(dir.path().join("b.txt").exists());
    }

    #[test]
    fn refuses_absolute_paths() {
        let (_dir, result) = extract_bytes(build(&[Entry::File("/etc/passwd", b"x", 0o644)]));
        assert!(
            matches!(result, Err(UnzipError::UnsafePath { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn refuses_escaping_symlinks() {
        for target in ["/etc/passwd", "../../outside", "a/../../x"] {
            let (_dir, result) = extract_bytes(build(&[Entry::Symlink("link", target)]));
            assert!(
                matches!(result, Err(UnzipError::UnsafeSymlink { .. })),
                "{target}: {result:?}"
            );
        }
    }

    #[test]
    fn never_writes_through_a_symlink() {
        // A symlink to a directory inside the root, then a file "through" it: the file lands
        // in a real directory first, so creating the symlink afterwards conflicts.
        let zip = build(&[
            Entry::Dir("real/"),
            Entry::Symlink("alias", "real"),
            Entry::File("alias/file", b"x", 0o644),
        ]);
        let (dir, result) = extract_bytes(zip);
        assert!(
            matches!(result, Err(UnzipError::Conflict { .. })),
            "{result:?}"
        );
        assert!(!dir.path().join("real/file").exists());
    }

    #[test]
    fn stops_a_zip_bomb_at_the_limit() {
        let big = vec![0u8; 2 * 1024 * 1024];
        let zip = build(&[Entry::File("zeros", &big, 0o644)]);
        assert!(zip.len() < 20 * 1024, "deflate should squeeze zeros");
        let (dir, result) = extract_bytes(zip);
        assert!(
            matches!(result, Err(UnzipError::TooLarge { .. })),
            "{result:?}"
        );
        let written = fs::metadata(dir.path().join("zeros")).unwrap().len();
        assert!(written <= LIMITS.max_unzipped_bytes + 1);
    }

    #[test]
    fn the_limit_is_exclusive() {
        let exact = vec![1u8; LIMITS.max_unzipped_bytes as usize];
        let (_dir, result) = extract_bytes(build(&[Entry::File("exact", &exact, 0o644)]));
        assert!(
            matches!(result, Err(UnzipError::TooLarge { .. })),
            "{result:?}"
        );
        let (_dir, result) = extract_bytes(build(&[Entry::File("under", &exact[1..], 0o644)]));
        assert_eq!(
            result.unwrap().unzipped_bytes,
            LIMITS.max_unzipped_bytes - 1
        );
    }

    #[test]
    fn counts_the_limit_across_entries() {
        let chunk = vec![1u8; 600 * 1024];
        let zip = build(&[
            Entry::File("a", &chunk, 0o644),
            Entry::File("b", &chunk, 0o644),
        ]);
        let (_dir, result) = extract_bytes(zip);
        assert!(
            matches!(result, Err(UnzipError::TooLarge { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn refuses_garbage_and_truncated_archives() {
        let (_dir, result) = extract_bytes(b"definitely not a zip".to_vec());
        assert!(matches!(result, Err(UnzipError::NotAZip(_))), "{result:?}");
        let mut zip = build(&[Entry::File("a", &[7u8; 10_000], 0o644)]);
        zip.truncate(zip.len() / 2);
        let (_dir, result) = extract_bytes(zip);
        assert!(result.is_err());
    }

    #[test]
    fn refuses_too_many_entries() {
        let names: Vec<String> = (0..101).map(|i| format!("f{i}")).collect();
        let entries: Vec<Entry<'_>> = names
            .iter()
            .map(|name| Entry::File(name, b"", 0o644))
            .collect();
        let (_dir, result) = extract_bytes(build(&entries));
        assert!(
            matches!(result, Err(UnzipError::TooManyEntries { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn relative_paths_are_cleaned() {
        assert_eq!(safe_relative_path("./a/b"), Some(PathBuf::from("a/b")));
        assert_eq!(safe_relative_path("a/./b/../c"), Some(PathBuf::from("a/c")));
        assert_eq!(safe_relative_path(".."), None);
        assert_eq!(safe_relative_path("a\\..\\..\\b"), None);
    }
}
