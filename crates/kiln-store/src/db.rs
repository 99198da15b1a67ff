//! The SQLite metadata store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use kiln_core::{
    Alias, Function, FunctionName, FunctionVersion, ProvisionedConcurrency, RecursiveLoop,
    VersionId,
};
use rusqlite::{Connection, params};

use crate::blobs::BlobStore;
use crate::code_cache::CodeCache;
use crate::error::StoreError;

/// Ordered schema migrations; migration `i` brings the schema to `user_version = i + 1`.
/// Never edit a released migration: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: functions, their versions and tags.
    "CREATE TABLE functions (
         name       TEXT PRIMARY KEY,
         created_ms INTEGER NOT NULL,
         tags       TEXT NOT NULL
     );
     CREATE TABLE function_versions (
         function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
         version       TEXT NOT NULL,
         record        TEXT NOT NULL,
         PRIMARY KEY (function_name, version)
     );",
    // 2: aliases, and the highest version number ever published (numbers are never reused).
    "ALTER TABLE functions ADD COLUMN last_published INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE function_aliases (
         function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
         name          TEXT NOT NULL,
         record        TEXT NOT NULL,
         PRIMARY KEY (function_name, name)
     );",
    // 3: layers
    crate::layers::LAYERS_MIGRATION,
    // 4: event source mappings (independent of functions: a mapping outlives its function,
    // as on Lambda).
    "CREATE TABLE event_source_mappings (
         uuid   TEXT PRIMARY KEY,
         record TEXT NOT NULL
     );",
    // 5: asynchronous invocation settings per function qualifier ($LATEST, version, alias);
    // they go with their function.
    "CREATE TABLE event_invoke_configs (
         function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
         qualifier     TEXT NOT NULL,
         record        TEXT NOT NULL,
         PRIMARY KEY (function_name, qualifier)
     );",
    // 6: concurrency: a function's reserved concurrency (NULL: none) and its provisioned
    // concurrency configurations, by qualifier (a version number or an alias name).
    "ALTER TABLE functions ADD COLUMN reserved_concurrency INTEGER;
     CREATE TABLE provisioned_concurrency (
         function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
         qualifier     TEXT NOT NULL,
         record        TEXT NOT NULL,
         PRIMARY KEY (function_name, qualifier)
     );",
    // 7: recursive loop detection (`PutFunctionRecursionConfig`); NULL is Lambda's default,
    // `Terminate`.
    "ALTER TABLE functions ADD COLUMN recursive_loop TEXT;",
];

/// The stored form of a recursive loop setting: NULL for Lambda's default.
fn recursive_loop_column(setting: RecursiveLoop) -> Option<&'static str> {
    (setting != RecursiveLoop::default()).then_some(setting.as_str())
}

/// The persistent store: metadata in SQLite, code in a blob store and an extraction cache.
///
/// All methods are synchronous; async callers run them on a blocking thread.
#[derive(Debug)]
pub struct Store {
    connection: Mutex<Connection>,
    blobs: BlobStore,
    code: CodeCache,
    data_dir: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir` and brings its schema up to date.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::io(data_dir, e))?;
        let mut connection = Connection::open(data_dir.join("kiln.db"))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a committed control-plane change survives power loss, not only kill -9.
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut connection)?;
        Ok(Self {
            connection: Mutex::new(connection),
            blobs: BlobStore::open(data_dir)?,
            code: CodeCache::open(data_dir)?,
            data_dir: data_dir.to_owned(),
        })
    }

    /// The directory this store lives in.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Code packages by digest.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Extracted code packages.
    pub fn code(&self) -> &CodeCache {
        &self.code
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back), so a poisoned lock is safe to keep using.
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every function with all its versions.
    pub fn load_functions(&self) -> Result<Vec<Function>, StoreError> {
        let connection = self.lock();
        let mut functions: BTreeMap<String, (i64, BTreeMap<String, String>, u64)> = BTreeMap::new();
        let mut reserved: BTreeMap<String, u32> = BTreeMap::new();
        let mut recursion: BTreeMap<String, RecursiveLoop> = BTreeMap::new();
        {
            let mut statement = connection.prepare(
                "SELECT name, created_ms, tags, last_published, reserved_concurrency, recursive_loop
                 FROM functions",
            )?;
            let rows = statement.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, Option<i64>>(4)?,
                    row.get::<_, Option<String>>(5)?,
                ))
            })?;
            for row in rows {
                let (name, created, tags, last_published, reserved_concurrency, recursive_loop) =
                    row?;
                if let Some(text) = recursive_loop {
                    let setting = RecursiveLoop::parse(&text).ok_or_else(|| {
                        StoreError::CorruptRecord(format!("recursive loop setting of {name}"))
                    })?;
                    recursion.insert(name.clone(), setting);
                }
                if let Some(value) = reserved_concurrency {
                    let value = u32::try_from(value).map_err(|_| {
                        StoreError::CorruptRecord(format!("reserved concurrency of {name}"))
                    })?;
                    reserved.insert(name.clone(), value);
                }
                let tags = serde_json::from_str(&tags)
                    .map_err(|e| StoreError::CorruptRecord(format!("tags of {name}: {e}")))?;
                let last_published = u64::try_from(last_published).map_err(|_| {
                    StoreError::CorruptRecord(format!("last published version of {name}"))
                })?;
                functions.insert(name, (created, tags, last_published));
            }
        }
        let mut aliases: BTreeMap<String, BTreeMap<String, Alias>> = BTreeMap::new();
        {
            let mut statement =
                connection.prepare("SELECT function_name, record FROM function_aliases")?;
            let rows = statement.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (name, record) = row?;
                let alias: Alias = serde_json::from_str(&record)
                    .map_err(|e| StoreError::CorruptRecord(format!("alias of {name}: {e}")))?;
                aliases
                    .entry(name)
                    .or_default()
                    .insert(alias.name.clone(), alias);
            }
        }
        let mut provisioned: BTreeMap<String, BTreeMap<String, ProvisionedConcurrency>> =
            BTreeMap::new();
        {
            let mut statement = connection
                .prepare("SELECT function_name, qualifier, record FROM provisioned_concurrency")?;
            let rows = statement.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })?;
            for row in rows {
                let (name, qualifier, record) = row?;
                let config: ProvisionedConcurrency =
                    serde_json::from_str(&record).map_err(|e| {
                        StoreError::CorruptRecord(format!("provisioned concurrency of {name}: {e}"))
                    })?;
                provisioned
                    .entry(name)
                    .or_default()
                    .insert(qualifier, config);
            }
        }
        let mut versions: BTreeMap<String, Vec<FunctionVersion>> = BTreeMap::new();
        {
            let mut statement =
                connection.prepare("SELECT function_name, record FROM function_versions")?;
            let rows = statement.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (name, record) = row?;
                let version: FunctionVersion = serde_json::from_str(&record)
                    .map_err(|e| StoreError::CorruptRecord(format!("version of {name}: {e}")))?;
                versions.entry(name).or_default().push(version);
            }
        }

        let mut loaded = Vec::with_capacity(functions.len());
        for (name, (created, tags, last_published)) in functions {
            let function_name = FunctionName::parse(&name)
                .map_err(|e| StoreError::CorruptRecord(format!("function name {name:?}: {e}")))?;
            let mut latest = None;
            let mut published = BTreeMap::new();
            for version in versions.remove(&name).unwrap_or_default() {
                match version.version_id() {
                    VersionId::Latest => latest = Some(version),
                    VersionId::Published(number) => {
                        published.insert(number, version);
                    }
                }
            }
            let latest = latest.ok_or_else(|| {
                StoreError::CorruptRecord(format!("function {name} has no $LATEST"))
            })?;
            // Data written before migration 2 has no counter: its published versions are the
            // highest numbers known.
            let last_published = published
                .keys()
                .next_back()
                .copied()
                .unwrap_or(0)
                .max(last_published);
            loaded.push(Function {
                name: function_name,
                created,
                tags,
                latest,
                published,
                last_published,
                aliases: aliases.remove(&name).unwrap_or_default(),
                reserved_concurrency: reserved.remove(&name),
                provisioned_concurrency: provisioned.remove(&name).unwrap_or_default(),
                recursive_loop: recursion.remove(&name).unwrap_or_default(),
            });
        }
        Ok(loaded)
    }

    /// Records a new function with its `$LATEST` (and any published versions and aliases)
    /// atomically.
    pub fn insert_function(&self, function: &Function) -> Result<(), StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        transaction.execute(
            "INSERT INTO functions
                 (name, created_ms, tags, last_published, reserved_concurrency, recursive_loop)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                function.name.as_str(),
                function.created,
                encode(&function.tags)?,
                last_published_column(function.last_published)?,
                function.reserved_concurrency,
                recursive_loop_column(function.recursive_loop),
            ],
        )?;
        for version in function.versions() {
            upsert_version(&transaction, &function.name, version)?;
        }
        for alias in function.aliases.values() {
            upsert_alias(&transaction, &function.name, alias)?;
        }
        for (qualifier, config) in &function.provisioned_concurrency {
            upsert_provisioned(&transaction, &function.name, qualifier, config)?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// Writes versions (a newly published one with the `$LATEST` whose revision changed with
    /// it) and raises the function's published-version counter, in one transaction.
    pub fn put_versions(
        &self,
        function: &FunctionName,
        versions: &[&FunctionVersion],
        last_published: u64,
    ) -> Result<(), StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        for version in versions {
            upsert_version(&transaction, function, version)?;
        }
        transaction.execute(
            "UPDATE functions SET last_published = ?2 WHERE name = ?1",
            params![function.as_str(), last_published_column(last_published)?],
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// Writes one alias, replacing what was stored for it.
    pub fn put_alias(&self, function: &FunctionName, alias: &Alias) -> Result<(), StoreError> {
        let connection = self.lock();
        upsert_alias(&connection, function, alias)
    }

    /// Deletes one alias, with its provisioned concurrency configuration.
    pub fn delete_alias(&self, function: &FunctionName, alias: &str) -> Result<(), StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        transaction.execute(
            "DELETE FROM function_aliases WHERE function_name = ?1 AND name = ?2",
            params![function.as_str(), alias],
        )?;
        delete_provisioned(&transaction, function, alias)?;
        transaction.commit()?;
        Ok(())
    }

    /// Sets (or, with `None`, removes) a function's reserved concurrency.
    pub fn put_reserved_concurrency(
        &self,
        function: &FunctionName,
        reserved: Option<u32>,
    ) -> Result<(), StoreError> {
        let connection = self.lock();
        connection.execute(
            "UPDATE functions SET reserved_concurrency = ?2 WHERE name = ?1",
            params![function.as_str(), reserved],
        )?;
        Ok(())
    }

    /// Sets a function's recursive loop detection setting.
    pub fn put_recursive_loop(
        &self,
        function: &FunctionName,
        setting: RecursiveLoop,
    ) -> Result<(), StoreError> {
        let connection = self.lock();
        connection.execute(
            "UPDATE functions SET recursive_loop = ?2 WHERE name = ?1",
            params![function.as_str(), recursive_loop_column(setting)],
        )?;
        Ok(())
    }

    /// Writes a provisioned concurrency configuration, replacing the qualifier's previous one.
    pub fn put_provisioned_concurrency(
        &self,
        function: &FunctionName,
        qualifier: &str,
        config: &ProvisionedConcurrency,
    ) -> Result<(), StoreError> {
        let connection = self.lock();
        upsert_provisioned(&connection, function, qualifier, config)
    }

    /// Deletes a provisioned concurrency configuration (nothing if there is none).
    pub fn delete_provisioned_concurrency(
        &self,
        function: &FunctionName,
        qualifier: &str,
    ) -> Result<(), StoreError> {
        let connection = self.lock();
        delete_provisioned(&connection, function, qualifier)
    }

    /// Writes one version, replacing what was stored for it.
    pub fn put_version(
        &self,
        function: &FunctionName,
        version: &FunctionVersion,
    ) -> Result<(), StoreError> {
        let connection = self.lock();
        upsert_version(&connection, function, version)
    }

    /// Replaces the function's tags and its `$LATEST` record (whose revision changes with
    /// every tag change) in one transaction.
    pub fn put_tags(
        &self,
        function: &FunctionName,
        tags: &BTreeMap<String, String>,
        latest: &FunctionVersion,
    ) -> Result<(), StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        transaction.execute(
            "UPDATE functions SET tags = ?2 WHERE name = ?1",
            params![function.as_str(), encode(tags)?],
        )?;
        upsert_version(&transaction, function, latest)?;
        transaction.commit()?;
        Ok(())
    }

    /// Deletes a function and all of its versions.
    pub fn delete_function(&self, function: &FunctionName) -> Result<(), StoreError> {
        let connection = self.lock();
        connection.execute(
            "DELETE FROM functions WHERE name = ?1",
            params![function.as_str()],
        )?;
        Ok(())
    }

    /// Deletes one published version, with its provisioned concurrency configuration.
    pub fn delete_version(
        &self,
        function: &FunctionName,
        version: VersionId,
    ) -> Result<(), StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        transaction.execute(
            "DELETE FROM function_versions WHERE function_name = ?1 AND version = ?2",
            params![function.as_str(), version.as_lambda_string()],
        )?;
        delete_provisioned(&transaction, function, &version.as_lambda_string())?;
        transaction.commit()?;
        Ok(())
    }
}

fn upsert_version(
    connection: &Connection,
    function: &FunctionName,
    version: &FunctionVersion,
) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO function_versions (function_name, version, record) VALUES (?1, ?2, ?3)
         ON CONFLICT (function_name, version) DO UPDATE SET record = excluded.record",
        params![
            function.as_str(),
            version.version_id().as_lambda_string(),
            encode(version)?
        ],
    )?;
    Ok(())
}

fn upsert_alias(
    connection: &Connection,
    function: &FunctionName,
    alias: &Alias,
) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO function_aliases (function_name, name, record) VALUES (?1, ?2, ?3)
         ON CONFLICT (function_name, name) DO UPDATE SET record = excluded.record",
        params![function.as_str(), alias.name, encode(alias)?],
    )?;
    Ok(())
}

fn upsert_provisioned(
    connection: &Connection,
    function: &FunctionName,
    qualifier: &str,
    config: &ProvisionedConcurrency,
) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO provisioned_concurrency (function_name, qualifier, record) VALUES (?1, ?2, ?3)
         ON CONFLICT (function_name, qualifier) DO UPDATE SET record = excluded.record",
        params![function.as_str(), qualifier, encode(config)?],
    )?;
    Ok(())
}

fn delete_provisioned(
    connection: &Connection,
    function: &FunctionName,
    qualifier: &str,
) -> Result<(), StoreError> {
    connection.execute(
        "DELETE FROM provisioned_concurrency WHERE function_name = ?1 AND qualifier = ?2",
        params![function.as_str(), qualifier],
    )?;
    Ok(())
}

fn last_published_column(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::CorruptRecord(format!("version number {value} out of range")))
}

pub(crate) fn encode(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::CorruptRecord(e.to_string()))
}

fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if current > supported {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(migration)?;
        transaction.pragma_update(None, "user_version", index as i64 + 1)?;
        transaction.commit()?;
        tracing::info!(schema_version = index + 1, "applied store migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kiln_core::{
        Architecture, CodeArtifact, FunctionConfig, FunctionState, LoggingConfig, PackageType,
        StateInfo, TracingMode,
    };

    use rusqlite::OptionalExtension;

    use super::*;

    fn count_versions(store: &Store, function: &str) -> Result<i64, StoreError> {
        let connection = store.lock();
        let count = connection
            .query_row(
                "SELECT COUNT(*) FROM function_versions WHERE function_name = ?1",
                params![function],
                |row| row.get(0),
            )
            .optional()?;
        Ok(count.unwrap_or(0))
    }

    fn sample(name: &str) -> Function {
        let function_name = FunctionName::parse(name).unwrap();
        let latest = FunctionVersion {
            version: VersionId::Latest.into(),
            config: FunctionConfig {
                description: "d".into(),
                runtime: "python3.12".into(),
                handler: "app.handler".into(),
                role: "arn:aws:iam::000000000000:role/r".into(),
                memory_size_mb: 128,
                timeout_seconds: 3,
                environment: Some(vec![("A".into(), "1".into())]),
                ephemeral_storage_mb: 512,
                architecture: Architecture::X86_64,
                package_type: PackageType::Zip,
                tracing_mode: TracingMode::PassThrough,
                logging: LoggingConfig::default_for(&function_name),
                kms_key_arn: None,
                vpc: None,
                dead_letter: None,
                layers: Vec::new(),
            },
            code: CodeArtifact {
                sha256_hex: "ab".into(),
                sha256_base64: "qw==".into(),
                size_bytes: 10,
                unzipped_size_bytes: 20,
            },
            revision_id: "rev-1".into(),
            last_modified: 1_700_000_000_000,
            state: StateInfo {
                state: FunctionState::Pending,
                reason: Some("The function is being created.".into()),
                reason_code: Some("Creating".into()),
            },
            last_update: None,
        };
        Function {
            name: function_name,
            created: 1_700_000_000_000,
            tags: BTreeMap::from([("team".into(), "kiln".into())]),
            latest,
            published: BTreeMap::new(),
            last_published: 0,
            aliases: BTreeMap::new(),
            reserved_concurrency: None,
            provisioned_concurrency: BTreeMap::new(),
            recursive_loop: kiln_core::RecursiveLoop::default(),
        }
    }

    #[test]
    fn functions_round_trip_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let function = sample("f1");
        {
            let store = Store::open(dir.path()).unwrap();
            store.insert_function(&function).unwrap();
            assert!(
                store.insert_function(&function).is_err(),
                "names are unique"
            );
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.load_functions().unwrap(), vec![function.clone()]);

        let mut updated = function.latest.clone();
        updated.revision_id = "rev-2".into();
        store.put_version(&function.name, &updated).unwrap();
        let mut tags = function.tags.clone();
        tags.insert("x".into(), "y".into());
        store.put_tags(&function.name, &tags, &updated).unwrap();
        let mut published = updated;
        published.version = VersionId::Published(1).into();
        store.put_version(&function.name, &published).unwrap();

        let loaded = store.load_functions().unwrap();
        assert_eq!(loaded[0].latest.revision_id, "rev-2");
        assert_eq!(loaded[0].tags, tags);
        assert_eq!(loaded[0].published.len(), 1);

        store
            .delete_version(&function.name, VersionId::Published(1))
            .unwrap();
        assert_eq!(count_versions(&store, "f1").unwrap(), 1);
        store.delete_function(&function.name).unwrap();
        assert!(store.load_functions().unwrap().is_empty());
        assert_eq!(count_versions(&store, "f1").unwrap(), 0, "versions cascade");
    }

    #[test]
    fn aliases_and_the_version_counter_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let function = sample("f1");
        let alias = Alias {
            name: "live".into(),
            function_version: VersionId::Published(1).into(),
            description: "d".into(),
            routing: Some(kiln_core::AdditionalVersion {
                version: 2,
                weight: 0.3,
            }),
            revision_id: "rev-a".into(),
        };
        {
            let store = Store::open(dir.path()).unwrap();
            store.insert_function(&function).unwrap();
            let mut v1 = function.latest.clone();
            v1.version = VersionId::Published(1).into();
            let mut v2 = v1.clone();
            v2.version = VersionId::Published(2).into();
            store
                .put_versions(&function.name, &[&v1, &function.latest], 1)
                .unwrap();
            store.put_versions(&function.name, &[&v2], 2).unwrap();
            store.put_alias(&function.name, &alias).unwrap();
            store
                .delete_version(&function.name, VersionId::Published(2))
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let loaded = store.load_functions().unwrap().remove(0);
        assert_eq!(loaded.last_published, 2, "a deleted number stays used");
        assert_eq!(loaded.published.len(), 1);
        assert_eq!(loaded.aliases.get("live"), Some(&alias));
        store.delete_alias(&function.name, "live").unwrap();
        assert!(store.load_functions().unwrap()[0].aliases.is_empty());
        store.put_alias(&function.name, &alias).unwrap();
        store.delete_function(&function.name).unwrap();
        let connection = store.lock();
        let aliases: i64 = connection
            .query_row("SELECT COUNT(*) FROM function_aliases", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(aliases, 0, "aliases cascade");
    }

    /// The stored JSON is the store's schema: if this test fails, a domain type changed shape
    /// and a migration is needed for existing data directories.
    #[test]
    fn stored_version_format_is_pinned() {
        let function = sample("f1");
        let json = serde_json::to_string(&function.latest).unwrap();
        assert_eq!(
            json,
            r#"{"version":"latest","config":{"description":"d","runtime":"python3.12","handler":"app.handler","role":"arn:aws:iam::000000000000:role/r","memory_size_mb":128,"timeout_seconds":3,"environment":[["A","1"]],"ephemeral_storage_mb":512,"architecture":"x86_64","package_type":"zip","tracing_mode":"pass_through","logging":{"log_format":"text","application_log_level":null,"system_log_level":null,"log_group":"/aws/lambda/f1"},"kms_key_arn":null,"vpc":null,"dead_letter":null},"code":{"sha256_hex":"ab","sha256_base64":"qw==","size_bytes":10,"unzipped_size_bytes":20},"revision_id":"rev-1","last_modified":1700000000000,"state":{"state":"pending","reason":"The function is being created.","reason_code":"Creating"},"last_update":null}"#
        );
    }

    #[test]
    fn concurrency_settings_round_trip_and_cascade() {
        let dir = tempfile::tempdir().unwrap();
        let function = sample("f1");
        let config = ProvisionedConcurrency {
            requested: 3,
            last_modified: 1_700_000_000_000,
        };
        {
            let store = Store::open(dir.path()).unwrap();
            store.insert_function(&function).unwrap();
            store
                .put_reserved_concurrency(&function.name, Some(7))
                .unwrap();
            store
                .put_provisioned_concurrency(&function.name, "1", &config)
                .unwrap();
            store
                .put_provisioned_concurrency(&function.name, "live", &config)
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let loaded = store.load_functions().unwrap().remove(0);
        assert_eq!(loaded.reserved_concurrency, Some(7));
        assert_eq!(loaded.provisioned_concurrency.len(), 2);
        assert_eq!(loaded.provisioned_concurrency["live"], config);

        store.delete_alias(&function.name, "live").unwrap();
        store
            .delete_version(&function.name, VersionId::Published(1))
            .unwrap();
        store
            .put_reserved_concurrency(&function.name, None)
            .unwrap();
        let loaded = store.load_functions().unwrap().remove(0);
        assert_eq!(loaded.reserved_concurrency, None);
        assert!(
            loaded.provisioned_concurrency.is_empty(),
            "an alias's and a version's configurations go with them"
        );
    }

    #[test]
    fn recursive_loop_setting_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut function = sample("f1");
        function.recursive_loop = RecursiveLoop::Allow;
        {
            let store = Store::open(dir.path()).unwrap();
            store.insert_function(&function).unwrap();
            assert_eq!(
                store.load_functions().unwrap()[0].recursive_loop,
                RecursiveLoop::Allow,
                "CreateFunction keeps a non-default setting"
            );
            store
                .put_recursive_loop(&function.name, RecursiveLoop::Terminate)
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.load_functions().unwrap()[0].recursive_loop,
            RecursiveLoop::Terminate
        );
        store
            .put_recursive_loop(&function.name, RecursiveLoop::Allow)
            .unwrap();
        assert_eq!(
            store.load_functions().unwrap()[0].recursive_loop,
            RecursiveLoop::Allow
        );
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let connection = Connection::open(dir.path().join("kiln.db")).unwrap();
        connection.pragma_update(None, "user_version", 99).unwrap();
        drop(connection);
        let error = Store::open(dir.path()).unwrap_err();
        assert!(matches!(error, StoreError::SchemaTooNew { found: 99, .. }));
    }
}
