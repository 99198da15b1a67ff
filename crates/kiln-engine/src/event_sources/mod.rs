//! Event source mappings: their lifecycle, as Lambda's, and the pollers that feed queue
//! messages to functions.
//!
//! A change is persisted first and applied in the background, as on Lambda: a create answers
//! `Creating` and settles `Enabled` (or `Disabled`), an update answers `Updating`, `Enabling`
//! or `Disabling`, a delete answers `Deleting`. Settling stops the mapping's poller (waiting
//! for the batch in flight) and starts a new one with the new settings if the mapping is
//! enabled. Mappings survive restarts, and a change interrupted by one is settled at start-up.

mod sqs;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kiln_core::{EventSourceMapping, EventSourceState, FunctionName, Qualifier};
use kiln_event_filter::FilterCriteria;

use crate::error::EventSourceRule;
use crate::{Engine, EngineError, blocking};

pub use sqs::QueueFacts;

/// Lambda's default batch size for SQS.
const DEFAULT_BATCH_SIZE: u32 = 10;
/// How long a transitional state lasts at least, so that callers can observe it as on Lambda.
const SETTLE_DELAY: Duration = Duration::from_millis(100);

/// `CreateEventSourceMapping`'s parameters, checked for shape by the API layer.
#[derive(Debug)]
pub struct NewEventSourceMapping {
    pub event_source_arn: String,
    pub function_name: FunctionName,
    pub qualifier: Option<String>,
    pub batch_size: Option<u32>,
    pub maximum_batching_window_seconds: Option<u32>,
    pub enabled: bool,
    pub filter_patterns: Option<Vec<String>>,
    pub report_batch_item_failures: bool,
    pub maximum_concurrency: Option<u32>,
}

/// `UpdateEventSourceMapping`'s parameters; `None` leaves a setting as it is.
#[derive(Debug, Default)]
pub struct EventSourceMappingUpdate {
    pub function: Option<(FunctionName, Option<String>)>,
    pub batch_size: Option<u32>,
    pub maximum_batching_window_seconds: Option<u32>,
    pub enabled: Option<bool>,
    /// `Some(None)` removes the filter criteria.
    pub filter_patterns: Option<Option<Vec<String>>>,
    pub report_batch_item_failures: Option<bool>,
    /// `Some(None)` removes the scaling limit.
    pub maximum_concurrency: Option<Option<u32>>,
}

/// The mappings and their running pollers.
#[derive(Debug, Default)]
pub(crate) struct EventSources {
    mappings: std::sync::RwLock<BTreeMap<String, EventSourceMapping>>,
    pollers: std::sync::Mutex<HashMap<String, sqs::Poller>>,
}

impl EventSources {
    pub(crate) fn new(mappings: Vec<EventSourceMapping>) -> Self {
        Self {
            mappings: std::sync::RwLock::new(
                mappings
                    .into_iter()
                    .map(|mapping| (mapping.uuid.clone(), mapping))
                    .collect(),
            ),
            pollers: std::sync::Mutex::default(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, EventSourceMapping>> {
        self.mappings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, EventSourceMapping>> {
        self.mappings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn pollers(&self) -> std::sync::MutexGuard<'_, HashMap<String, sqs::Poller>> {
        self.pollers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Engine {
    /// Creates a mapping; it answers `Creating` (or `Disabled`) and settles in the background.
    pub async fn create_event_source_mapping(
        &self,
        new: NewEventSourceMapping,
    ) -> Result<EventSourceMapping, EngineError> {
        let _writer = self.inner.writer.lock().await;
        let queue = self.check_event_source(&new.event_source_arn)?;
        let function = self
            .function(&new.function_name)
            .map_err(|_| EngineError::EventSourceFunctionMissing)?;
        if let Some(existing) = self.inner.event_sources.read().values().find(|mapping| {
            mapping.event_source_arn == new.event_source_arn
                && mapping.function_name == new.function_name
        }) {
            return Err(EngineError::DuplicateEventSourceMapping {
                uuid: existing.uuid.clone(),
                event_source_arn: existing.event_source_arn.clone(),
                function: function.name.clone(),
            });
        }
        let mapping = EventSourceMapping {
            uuid: uuid::Uuid::new_v4().to_string(),
            event_source_arn: new.event_source_arn,
            function_name: new.function_name,
            qualifier: new.qualifier,
            batch_size: new.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
            maximum_batching_window_seconds: new.maximum_batching_window_seconds.unwrap_or(0),
            enabled: new.enabled,
            state: if new.enabled {
                EventSourceState::Creating
            } else {
                EventSourceState::Disabled
            },
            filter_patterns: new.filter_patterns,
            report_batch_item_failures: new.report_batch_item_failures,
            maximum_concurrency: new.maximum_concurrency,
            last_modified: kiln_core::now_millis(),
        };
        check_mapping_rules(&mapping, &queue, self.function_timeout(&mapping))?;
        self.commit_event_source_mapping(mapping.clone()).await?;
        if mapping.state.is_transitional() {
            self.spawn_settle(mapping.uuid.clone());
        }
        Ok(mapping)
    }

    /// One mapping.
    pub fn event_source_mapping(&self, uuid: &str) -> Result<EventSourceMapping, EngineError> {
        self.inner
            .event_sources
            .read()
            .get(uuid)
            .cloned()
            .ok_or(EngineError::EventSourceMappingNotFound)
    }

    /// Every mapping, ordered by UUID.
    pub fn event_source_mappings(&self) -> Vec<EventSourceMapping> {
        self.inner.event_sources.read().values().cloned().collect()
    }

    /// Changes a mapping; it answers `Updating`, `Enabling` or `Disabling` and settles in the
    /// background.
    pub async fn update_event_source_mapping(
        &self,
        uuid: &str,
        update: EventSourceMappingUpdate,
    ) -> Result<EventSourceMapping, EngineError> {
        let _writer = self.inner.writer.lock().await;
        let mut mapping = self.event_source_mapping(uuid)?;
        if mapping.state.is_transitional() {
            return Err(EngineError::EventSourceMappingBusy {
                state: mapping.state,
            });
        }
        let EventSourceMappingUpdate {
            function,
            batch_size,
            maximum_batching_window_seconds,
            enabled,
            filter_patterns,
            report_batch_item_failures,
            maximum_concurrency,
        } = update;
        if let Some((name, qualifier)) = function {
            self.function(&name)
                .map_err(|_| EngineError::EventSourceFunctionMissing)?;
            mapping.function_name = name;
            mapping.qualifier = qualifier;
        }
        let was_enabled = mapping.enabled;
        set(&mut mapping.batch_size, batch_size);
        set(
            &mut mapping.maximum_batching_window_seconds,
            maximum_batching_window_seconds,
        );
        set(&mut mapping.enabled, enabled);
        set(&mut mapping.filter_patterns, filter_patterns);
        set(
            &mut mapping.report_batch_item_failures,
            report_batch_item_failures,
        );
        set(&mut mapping.maximum_concurrency, maximum_concurrency);
        let queue = self.check_event_source(&mapping.event_source_arn)?;
        check_mapping_rules(&mapping, &queue, self.function_timeout(&mapping))?;
        mapping.state = match (was_enabled, mapping.enabled) {
            (false, true) => EventSourceState::Enabling,
            (true, false) => EventSourceState::Disabling,
            _ => EventSourceState::Updating,
        };
        mapping.last_modified = kiln_core::now_millis();
        self.commit_event_source_mapping(mapping.clone()).await?;
        self.spawn_settle(mapping.uuid.clone());
        Ok(mapping)
    }

    /// Deletes a mapping: it answers `Deleting`, stops its poller and disappears.
    pub async fn delete_event_source_mapping(
        &self,
        uuid: &str,
    ) -> Result<EventSourceMapping, EngineError> {
        let _writer = self.inner.writer.lock().await;
        let mut mapping = self.event_source_mapping(uuid)?;
        mapping.state = EventSourceState::Deleting;
        self.commit_event_source_mapping(mapping.clone()).await?;
        self.spawn_settle(mapping.uuid.clone());
        Ok(mapping)
    }

    /// Starts the pollers of enabled mappings and settles changes a restart interrupted.
    pub(crate) fn resume_event_sources(&self) {
        for mapping in self.event_source_mappings() {
            if mapping.state.is_transitional() {
                self.spawn_settle(mapping.uuid);
            } else if mapping.state == EventSourceState::Enabled {
                self.start_poller(&mapping);
            }
        }
    }

    /// Stops every poller (at shutdown); messages in flight return to their queues after
    /// their visibility timeout.
    pub(crate) fn stop_event_sources(&self) {
        for (_, poller) in self.inner.event_sources.pollers().drain() {
            poller.stop();
        }
    }

    async fn commit_event_source_mapping(
        &self,
        mapping: EventSourceMapping,
    ) -> Result<(), EngineError> {
        let store = Arc::clone(&self.inner.store);
        let record = mapping.clone();
        blocking(move || store.put_event_source_mapping(&record)).await??;
        self.inner
            .event_sources
            .write()
            .insert(mapping.uuid.clone(), mapping);
        Ok(())
    }

    /// Applies a mapping's transitional state in the background.
    fn spawn_settle(&self, uuid: String) {
        let engine = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SETTLE_DELAY).await;
            if let Err(error) = engine.settle(&uuid).await {
                tracing::error!(mapping = %uuid, %error, "event source mapping change failed");
            }
        });
    }

    async fn settle(&self, uuid: &str) -> Result<(), EngineError> {
        // The old poller finishes its batch outside the writer lock: an invocation can take
        // minutes.
        let running = self.inner.event_sources.pollers().remove(uuid);
        if let Some(poller) = running {
            poller.stop_and_wait().await;
        }
        let _writer = self.inner.writer.lock().await;
        let Ok(mut mapping) = self.event_source_mapping(uuid) else {
            return Ok(());
        };
        match mapping.state {
            EventSourceState::Deleting => {
                let store = Arc::clone(&self.inner.store);
                let deleted = uuid.to_owned();
                blocking(move || store.delete_event_source_mapping(&deleted)).await??;
                self.inner.event_sources.write().remove(uuid);
                return Ok(());
            }
            state if state.is_transitional() => {
                mapping.state = if mapping.enabled {
                    EventSourceState::Enabled
                } else {
                    EventSourceState::Disabled
                };
                self.commit_event_source_mapping(mapping.clone()).await?;
            }
            _ => {}
        }
        if mapping.state == EventSourceState::Enabled {
            self.start_poller(&mapping);
        }
        Ok(())
    }

    fn start_poller(&self, mapping: &EventSourceMapping) {
        let filter = match &mapping.filter_patterns {
            Some(patterns) => match FilterCriteria::parse(patterns) {
                Ok(filter) => Some(filter),
                Err(error) => {
                    // Validated on create and update; a stored pattern that no longer parses
                    // is a bug, not a reason to drop messages.
                    tracing::error!(mapping = %mapping.uuid, %error, "stored filter does not parse");
                    return;
                }
            },
            None => None,
        };
        let poller = sqs::Poller::start(self.clone(), mapping.clone(), filter);
        if let Some(previous) = self
            .inner
            .event_sources
            .pollers()
            .insert(mapping.uuid.clone(), poller)
        {
            previous.stop();
        }
    }

    /// The queue behind an event source ARN, or why it cannot be a source.
    fn check_event_source(&self, arn: &str) -> Result<QueueFacts, EngineError> {
        let service = arn.split(':').nth(2).unwrap_or_default();
        match service {
            "sqs" => self
                .queue_facts(arn)
                .ok_or(EngineError::EventSourceQueueMissing),
            "" => Err(EngineError::UnrecognizedEventSource),
            other => Err(EngineError::UnsupportedEventSource {
                service: other.to_owned(),
            }),
        }
    }

    /// The timeout of the version a mapping invokes, when it exists.
    fn function_timeout(&self, mapping: &EventSourceMapping) -> Option<u32> {
        let function = self.function(&mapping.function_name).ok()?;
        let version = match mapping.qualifier.as_deref().map(Qualifier::parse) {
            None => function.latest.clone(),
            Some(Ok(Qualifier::Version(id))) => function.version(id)?.clone(),
            Some(Ok(Qualifier::Alias(alias))) => function
                .version(function.aliases.get(&alias)?.version_id())?
                .clone(),
            Some(Err(_)) => return None,
        };
        Some(version.config.timeout_seconds)
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

/// Lambda's rules for an SQS mapping's settings.
fn check_mapping_rules(
    mapping: &EventSourceMapping,
    queue: &QueueFacts,
    function_timeout: Option<u32>,
) -> Result<(), EngineError> {
    if mapping.batch_size > 10 && mapping.maximum_batching_window_seconds == 0 {
        return Err(EngineError::EventSourceRule(
            EventSourceRule::BatchWindowRequired,
        ));
    }
    if queue.fifo && mapping.batch_size > 10 {
        return Err(EngineError::EventSourceRule(EventSourceRule::FifoBatchSize));
    }
    if let Some(function_timeout) = function_timeout
        && u64::from(function_timeout) > queue.visibility_timeout.as_secs()
    {
        return Err(EngineError::EventSourceRule(
            EventSourceRule::VisibilityTimeoutTooShort {
                queue_seconds: queue.visibility_timeout.as_secs(),
                function_seconds: function_timeout,
            },
        ));
    }
    if let Some(patterns) = &mapping.filter_patterns {
        FilterCriteria::parse(patterns)
            .map_err(|_| EngineError::EventSourceRule(EventSourceRule::InvalidFilter))?;
    }
    Ok(())
}
