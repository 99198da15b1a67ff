//! Layer versions in SQLite.
//!
//! `layers` remembers, per layer name, the highest version ever published, so that numbers
//! are never reused even after every version was deleted (as on Lambda); `layer_versions`
//! holds each version as a JSON record, like `function_versions`. A layer's package is a blob
//! in the same content-addressed store as function code, extracted once in the same cache.

use std::collections::BTreeMap;

use kiln_core::LayerVersion;
use rusqlite::params;

use crate::db::{Store, encode};
use crate::error::StoreError;

/// Schema migration 3: layers and their versions.
pub(crate) const LAYERS_MIGRATION: &str = "CREATE TABLE layers (
         name           TEXT PRIMARY KEY,
         latest_version INTEGER NOT NULL
     );
     CREATE TABLE layer_versions (
         layer_name TEXT NOT NULL REFERENCES layers(name),
         version    INTEGER NOT NULL,
         record     TEXT NOT NULL,
         PRIMARY KEY (layer_name, version)
     );";

/// Every layer version, with the highest version number each layer name ever had.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadedLayers {
    pub versions: Vec<LayerVersion>,
    /// Includes names whose versions were all deleted: their numbering continues.
    pub latest_versions: BTreeMap<String, u64>,
}

impl Store {
    /// Every layer version, and each layer name's numbering.
    pub fn load_layers(&self) -> Result<LoadedLayers, StoreError> {
        let connection = self.lock();
        let mut loaded = LoadedLayers::default();
        {
            let mut statement = connection.prepare("SELECT name, latest_version FROM layers")?;
            let rows = statement.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })?;
            for row in rows {
                let (name, latest) = row?;
                let latest = u64::try_from(latest).map_err(|_| {
                    StoreError::CorruptRecord(format!("layer {name} has version {latest}"))
                })?;
                loaded.latest_versions.insert(name, latest);
            }
        }
        let mut statement = connection.prepare("SELECT layer_name, record FROM layer_versions")?;
        let rows = statement.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (name, record) = row?;
            let version: LayerVersion = serde_json::from_str(&record)
                .map_err(|e| StoreError::CorruptRecord(format!("version of layer {name}: {e}")))?;
            loaded.versions.push(version);
        }
        Ok(loaded)
    }

    /// Records a newly published layer version and advances its layer's numbering, atomically.
    /// A version that already exists is refused: versions are immutable.
    pub fn insert_layer_version(&self, layer: &LayerVersion) -> Result<(), StoreError> {
        let version = stored_number(layer.version)?;
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        transaction.execute(
            "INSERT INTO layers (name, latest_version) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE
             SET latest_version = MAX(latest_version, excluded.latest_version)",
            params![layer.layer_name, version],
        )?;
        transaction.execute(
            "INSERT INTO layer_versions (layer_name, version, record) VALUES (?1, ?2, ?3)",
            params![layer.layer_name, version, encode(layer)?],
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// Rewrites an existing layer version (only its permission policy ever changes).
    pub fn put_layer_version(&self, layer: &LayerVersion) -> Result<(), StoreError> {
        let connection = self.lock();
        let changed = connection.execute(
            "UPDATE layer_versions SET record = ?3 WHERE layer_name = ?1 AND version = ?2",
            params![
                layer.layer_name,
                stored_number(layer.version)?,
                encode(layer)?
            ],
        )?;
        if changed == 0 {
            return Err(StoreError::CorruptRecord(format!(
                "layer version {}:{} is not stored",
                layer.layer_name, layer.version
            )));
        }
        Ok(())
    }

    /// Deletes one layer version; the layer's numbering is kept. Missing is not an error.
    pub fn delete_layer_version(&self, layer_name: &str, version: u64) -> Result<(), StoreError> {
        let connection = self.lock();
        connection.execute(
            "DELETE FROM layer_versions WHERE layer_name = ?1 AND version = ?2",
            params![layer_name, stored_number(version)?],
        )?;
        Ok(())
    }
}

fn stored_number(version: u64) -> Result<i64, StoreError> {
    i64::try_from(version)
        .map_err(|_| StoreError::CorruptRecord(format!("layer version {version} is too large")))
}

#[cfg(test)]
mod tests {
    use kiln_core::{
        Architecture, CodeArtifact, FunctionLayer, FunctionVersion, LayerPolicy, LayerStatement,
    };

    use super::*;

    fn sample(name: &str, version: u64) -> LayerVersion {
        LayerVersion {
            layer_name: name.into(),
            version,
            description: "deps".into(),
            created: 1_700_000_000_000,
            compatible_runtimes: Some(vec!["python3.12".into()]),
            compatible_architectures: Some(vec![Architecture::X86_64]),
            license_info: None,
            code: CodeArtifact {
                sha256_hex: "cd".into(),
                sha256_base64: "zQ==".into(),
                size_bytes: 5,
                unzipped_size_bytes: 9,
            },
            policy: None,
        }
    }

    #[test]
    fn layer_versions_round_trip_and_numbers_survive_deletion() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.insert_layer_version(&sample("deps", 1)).unwrap();
            store.insert_layer_version(&sample("deps", 2)).unwrap();
            assert!(
                store.insert_layer_version(&sample("deps", 2)).is_err(),
                "versions are immutable"
            );
            let mut with_policy = sample("deps", 2);
            with_policy.policy = Some(LayerPolicy {
                revision_id: "r1".into(),
                statements: vec![LayerStatement {
                    statement_id: "s1".into(),
                    principal: "*".into(),
                    action: "lambda:GetLayerVersion".into(),
                    organization_id: None,
                }],
            });
            store.put_layer_version(&with_policy).unwrap();
            store.delete_layer_version("deps", 1).unwrap();
            store.delete_layer_version("deps", 2).unwrap();
            store.insert_layer_version(&sample("other", 1)).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let loaded = store.load_layers().unwrap();
        assert_eq!(loaded.versions, vec![sample("other", 1)]);
        assert_eq!(
            loaded.latest_versions,
            BTreeMap::from([("deps".to_owned(), 2), ("other".to_owned(), 1)]),
            "deleting every version keeps the numbering"
        );
        assert!(store.put_layer_version(&sample("deps", 1)).is_err());
    }

    /// The stored JSON is the store's schema: if this test fails, a domain type changed shape
    /// and a migration is needed for existing data directories.
    #[test]
    fn stored_layer_format_is_pinned() {
        let json = serde_json::to_string(&sample("deps", 1)).unwrap();
        assert_eq!(
            json,
            r#"{"layer_name":"deps","version":1,"description":"deps","created":1700000000000,"compatible_runtimes":["python3.12"],"compatible_architectures":["x86_64"],"license_info":null,"code":{"sha256_hex":"cd","sha256_base64":"zQ==","size_bytes":5,"unzipped_size_bytes":9},"policy":null}"#
        );
    }

    const OLD_RECORD: &str = r#"{"version":"latest","config":{"description":"d","runtime":"python3.12","handler":"app.handler","role":"arn:aws:iam::000000000000:role/r","memory_size_mb":128,"timeout_seconds":3,"environment":[["A","1"]],"ephemeral_storage_mb":512,"architecture":"x86_64","package_type":"zip","tracing_mode":"pass_through","logging":{"log_format":"text","application_log_level":null,"system_log_level":null,"log_group":"/aws/lambda/f1"},"kms_key_arn":null,"vpc":null,"dead_letter":null},"code":{"sha256_hex":"ab","sha256_base64":"qw==","size_bytes":10,"unzipped_size_bytes":20},"revision_id":"rev-1","last_modified":1700000000000,"state":{"state":"pending","reason":"The function is being created.","reason_code":"Creating"},"last_update":null}"#;

    /// Records written before layers existed have no `layers` field and still load.
    #[test]
    fn function_records_without_layers_still_load() {
        let version: FunctionVersion = serde_json::from_str(OLD_RECORD).unwrap();
        assert!(version.config.layers.is_empty());
        assert_eq!(serde_json::to_string(&version).unwrap(), OLD_RECORD);
    }

    /// A function version's layers, pinned like the rest of its record.
    #[test]
    fn stored_function_layers_format_is_pinned() {
        let mut version: FunctionVersion = serde_json::from_str(OLD_RECORD).unwrap();
        version.config.layers = vec![FunctionLayer {
            layer_name: "deps".into(),
            version: 2,
            code: sample("deps", 2).code,
        }];
        let json = serde_json::to_string(&version).unwrap();
        assert!(json.contains(r#""dead_letter":null,"layers":[{"layer_name":"deps","version":2,"code":{"sha256_hex":"cd","sha256_base64":"zQ==","size_bytes":5,"unzipped_size_bytes":9}}]},"code""#), "{json}");
        let loaded: FunctionVersion = serde_json::from_str(&json).unwrap();
        assert_eq!(loaded, version);
    }
}
