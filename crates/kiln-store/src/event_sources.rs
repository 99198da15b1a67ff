//! Event source mappings in the metadata store: one JSON record per mapping.

use kiln_core::EventSourceMapping;
use rusqlite::params;

use crate::db::{Store, encode};
use crate::error::StoreError;

impl Store {
    /// Every event source mapping.
    pub fn load_event_source_mappings(&self) -> Result<Vec<EventSourceMapping>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare("SELECT uuid, record FROM event_source_mappings")?;
        let rows = statement.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut mappings = Vec::new();
        for row in rows {
            let (uuid, record) = row?;
            let mapping = serde_json::from_str(&record).map_err(|e| {
                StoreError::CorruptRecord(format!("event source mapping {uuid}: {e}"))
            })?;
            mappings.push(mapping);
        }
        Ok(mappings)
    }

    /// Writes one mapping, replacing what was stored for it.
    pub fn put_event_source_mapping(&self, mapping: &EventSourceMapping) -> Result<(), StoreError> {
        let connection = self.lock();
        connection.execute(
            "INSERT INTO event_source_mappings (uuid, record) VALUES (?1, ?2)
             ON CONFLICT (uuid) DO UPDATE SET record = excluded.record",
            params![mapping.uuid, encode(mapping)?],
        )?;
        Ok(())
    }

    /// Deletes one mapping.
    pub fn delete_event_source_mapping(&self, uuid: &str) -> Result<(), StoreError> {
        let connection = self.lock();
        connection.execute(
            "DELETE FROM event_source_mappings WHERE uuid = ?1",
            params![uuid],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use kiln_core::{EventSourceState, FunctionName};

    use super::*;

    #[test]
    fn mappings_round_trip_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mapping = EventSourceMapping {
            uuid: "a1b2".into(),
            event_source_arn: "arn:aws:sqs:us-east-1:000000000000:q".into(),
            function_name: FunctionName::parse("f").unwrap(),
            qualifier: Some("live".into()),
            batch_size: 10,
            maximum_batching_window_seconds: 0,
            enabled: true,
            state: EventSourceState::Enabled,
            filter_patterns: Some(vec![r#"{"body": {"a": [1]}}"#.into()]),
            report_batch_item_failures: true,
            maximum_concurrency: Some(5),
            last_modified: 1_700_000_000_000,
        };
        {
            let store = Store::open(dir.path()).unwrap();
            store.put_event_source_mapping(&mapping).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.load_event_source_mappings().unwrap(), vec![mapping]);
        store.delete_event_source_mapping("a1b2").unwrap();
        assert!(store.load_event_source_mappings().unwrap().is_empty());
    }
}
