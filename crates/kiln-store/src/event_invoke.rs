//! Asynchronous invocation settings in the metadata store: one JSON record per function
//! qualifier, deleted with their function (foreign key cascade).

use kiln_core::{EventInvokeConfig, FunctionName};
use rusqlite::params;

use crate::db::{Store, encode};
use crate::error::StoreError;

impl Store {
    /// Every function's event invoke configs.
    pub fn load_event_invoke_configs(
        &self,
    ) -> Result<Vec<(FunctionName, EventInvokeConfig)>, StoreError> {
        let connection = self.lock();
        let mut statement =
            connection.prepare("SELECT function_name, record FROM event_invoke_configs")?;
        let rows = statement.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut configs = Vec::new();
        for row in rows {
            let (name, record) = row?;
            let function = FunctionName::parse(&name).map_err(|e| {
                StoreError::CorruptRecord(format!("event invoke config of {name}: {e}"))
            })?;
            let config = serde_json::from_str(&record).map_err(|e| {
                StoreError::CorruptRecord(format!("event invoke config of {name}: {e}"))
            })?;
            configs.push((function, config));
        }
        Ok(configs)
    }

    /// Writes one qualifier's config, replacing what was stored for it.
    pub fn put_event_invoke_config(
        &self,
        function: &FunctionName,
        config: &EventInvokeConfig,
    ) -> Result<(), StoreError> {
        let connection = self.lock();
        connection.execute(
            "INSERT INTO event_invoke_configs (function_name, qualifier, record) VALUES (?1, ?2, ?3)
             ON CONFLICT (function_name, qualifier) DO UPDATE SET record = excluded.record",
            params![function.as_str(), config.qualifier, encode(config)?],
        )?;
        Ok(())
    }

    /// Deletes one qualifier's config.
    pub fn delete_event_invoke_config(
        &self,
        function: &FunctionName,
        qualifier: &str,
    ) -> Result<(), StoreError> {
        let connection = self.lock();
        connection.execute(
            "DELETE FROM event_invoke_configs WHERE function_name = ?1 AND qualifier = ?2",
            params![function.as_str(), qualifier],
        )?;
        Ok(())
    }
}
