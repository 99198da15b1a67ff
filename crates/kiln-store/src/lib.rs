//! Kiln's persistence layer.
//!
//! Three pieces live under one data directory:
//!
//! - `kiln.db`: SQLite in WAL mode holding functions, versions, aliases, tags and event
//!   source mappings ([`Store`]). The
//!   schema is versioned with `PRAGMA user_version` and upgraded by ordered migrations.
//! - `blobs/sha256/HEX.zip`: code packages, content-addressed by the SHA-256 of the zip
//!   ([`BlobStore`]). Written to a temporary file, synced, then renamed into place.
//! - `async-events.db`: asynchronous invocations waiting for their final outcome, written by
//!   one group-committing writer thread ([`AsyncEventLog`]).
//! - `code/HEX/tree/`: each package extracted once, read-only thereafter ([`CodeCache`]).
//!   Extraction is where hostile archives are refused (path traversal, escaping symlinks,
//!   zip bombs); a failed extraction leaves nothing behind. Layer packages live here too.
//! - `layers-merged/KEY/`: the `/opt` of an ordered list of layers, hard links into the
//!   extracted packages ([`MergedLayers`]).
//!
//! The interface is deliberately narrow (load everything at start, then write-through of
//! single records) so that another backend can replace SQLite without touching the engine.

mod async_events;
mod blobs;
mod code_cache;
mod db;
mod error;
mod event_invoke;
mod event_sources;
mod layers;
mod merged_layers;
mod unzip;

pub use async_events::{AsyncEvent, AsyncEventChange, AsyncEventLog, OnCommitted};
pub use blobs::{BlobStore, StoredBlob};
pub use code_cache::{CodeCache, ExtractedCode};
pub use db::Store;
pub use error::StoreError;
pub use layers::LoadedLayers;
pub use merged_layers::MergedLayers;
pub use unzip::{UnzipError, UnzipLimits};
