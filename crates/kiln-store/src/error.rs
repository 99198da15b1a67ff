//! Errors from the store.

use std::path::PathBuf;

use crate::unzip::UnzipError;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("stored record is corrupt: {0}")]
    CorruptRecord(String),
    #[error(
        "data directory schema version {found} is newer than this kiln understands ({supported})"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error(transparent)]
    Unzip(#[from] UnzipError),
    #[error("the transaction failed: {0}")]
    CommitFailed(String),
    #[error("the writer has shut down")]
    Closed,
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }
}
