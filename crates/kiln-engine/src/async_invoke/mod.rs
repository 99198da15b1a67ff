//! Asynchronous invocation (`InvocationType: Event`, `InvokeAsync`): a durable event log, a
//! dispatcher that invokes due events, Lambda's retries, and the delivery of each event's final
//! outcome to destinations and dead-letter queues.
//!
//! **Invariant:** an event is persisted (group commit, `synchronous=FULL`) before the caller
//! gets its 202, and deleted only after its final outcome was delivered: a success (with its
//! on-success record sent), or a failure sent to the on-failure destination and/or the
//! dead-letter queue (or counted as dropped when neither is configured). Every failed attempt
//! persists the attempt count, the next attempt time and the last response before the event is
//! scheduled again, so a `kill -9` at any point re-runs the event after the restart (at least
//! once, as on Lambda) on the schedule it had.
//!
//! All pending events are held in memory, ordered by their next attempt time; the dispatcher
//! takes due ones while fewer than `AsyncConfig::concurrency` attempts are running.

mod config;
mod metrics;
mod policy;
mod record;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use kiln_core::{FunctionName, Qualifier, VersionId, now_millis};
use kiln_store::{AsyncEvent, AsyncEventChange, AsyncEventLog};
use tokio::sync::{Notify, Semaphore, oneshot, watch};

pub use config::EventInvokeConfigChange;
pub use metrics::{AsyncCounters, AsyncMetrics};
pub use policy::RetryPolicy;
use record::{Condition, LastResult, RecordFacts};

use crate::execution::InvokeRequest;
use crate::{Engine, EngineError};

/// Settings of asynchronous invocation.
#[derive(Debug, Clone, Copy)]
pub struct AsyncConfig {
    /// Lambda's retry schedule, possibly scaled (`--retry-delay-scale`).
    pub retry_policy: RetryPolicy,
    /// Most attempts running at once, over all functions.
    pub concurrency: usize,
}

impl Default for AsyncConfig {
    fn default() -> Self {
        Self {
            retry_policy: RetryPolicy::default(),
            concurrency: 16,
        }
    }
}

/// The asynchronous invocation state of the engine.
pub(crate) struct AsyncInvocations {
    log: AsyncEventLog,
    /// Pending events by (next attempt time, id). Events being attempted are not here.
    schedule: Mutex<BTreeMap<(i64, i64), AsyncEvent>>,
    /// Wakes the dispatcher when an event is scheduled.
    wake: Notify,
    next_id: AtomicI64,
    pub(crate) configs: RwLock<config::ConfigMap>,
    metrics: AsyncMetrics,
    settings: AsyncConfig,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for AsyncInvocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncInvocations")
            .field("pending", &self.lock_schedule().len())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AsyncInvocations {
    /// Opens the event log under `data_dir` with the stored configs; events found in the log
    /// are scheduled as they were.
    pub(crate) fn open(
        data_dir: &std::path::Path,
        settings: AsyncConfig,
        stored_configs: Vec<(FunctionName, kiln_core::EventInvokeConfig)>,
    ) -> Result<Self, EngineError> {
        let (log, events) = AsyncEventLog::open(data_dir)?;
        let next_id = events.iter().map(|event| event.id).max().unwrap_or(0) + 1;
        if !events.is_empty() {
            tracing::info!(events = events.len(), "resuming asynchronous events");
        }
        let schedule = events
            .into_iter()
            .map(|event| ((event.next_attempt_ms, event.id), event))
            .collect();
        let mut configs = config::ConfigMap::new();
        for (name, config) in stored_configs {
            configs
                .entry(name)
                .or_default()
                .insert(config.qualifier.clone(), config);
        }
        Ok(Self {
            log,
            schedule: Mutex::new(schedule),
            wake: Notify::new(),
            next_id: AtomicI64::new(next_id),
            configs: RwLock::new(configs),
            metrics: AsyncMetrics::default(),
            settings,
            stop: watch::channel(false).0,
        })
    }

    fn lock_schedule(&self) -> std::sync::MutexGuard<'_, BTreeMap<(i64, i64), AsyncEvent>> {
        self.schedule
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn schedule(&self, event: AsyncEvent) {
        self.lock_schedule()
            .insert((event.next_attempt_ms, event.id), event);
        self.wake.notify_one();
    }

    /// Writes `changes` and waits until they are durable.
    async fn write(&self, changes: Vec<AsyncEventChange>) -> Result<(), EngineError> {
        let (sender, receiver) = oneshot::channel();
        self.log.write(
            changes,
            Box::new(move |result| {
                let _ = sender.send(result);
            }),
        );
        receiver
            .await
            .map_err(|_| EngineError::Internal("the async event writer stopped".to_owned()))?
            .map_err(EngineError::Store)
    }
}

impl Engine {
    /// Accepts an asynchronous invocation: checks that the function and qualifier exist, makes
    /// the event durable, and schedules it. Returns once the event survives a crash.
    pub async fn invoke_async(
        &self,
        name: &FunctionName,
        qualifier: Option<&Qualifier>,
        request_id: String,
        payload: Bytes,
        trace_header: Option<String>,
    ) -> Result<(), EngineError> {
        // Refuses unknown functions, versions and aliases at once, as Lambda does.
        self.resolve_invocation(name, qualifier)?;
        let state = &self.inner.async_invocations;
        let now = now_millis();
        let event = AsyncEvent {
            id: state.next_id.fetch_add(1, Ordering::Relaxed),
            request_id,
            function_name: name.as_str().to_owned(),
            qualifier: qualifier.map(Qualifier::as_lambda_string),
            payload: payload.to_vec(),
            received_ms: now,
            attempts: 0,
            throttles: 0,
            next_attempt_ms: now,
            last_result: None,
            trace_header,
        };
        state
            .write(vec![AsyncEventChange::Insert(event.clone())])
            .await?;
        state
            .metrics
            .of(name)
            .events_received
            .fetch_add(1, Ordering::Relaxed);
        state.schedule(event);
        Ok(())
    }

    /// Counters of asynchronous invocation per function.
    pub fn async_metrics(&self) -> &AsyncMetrics {
        &self.inner.async_invocations.metrics
    }

    /// Events accepted whose final outcome is not delivered yet (scheduled, not in flight).
    pub fn scheduled_async_events(&self) -> usize {
        self.inner.async_invocations.lock_schedule().len()
    }

    /// Starts the dispatcher (once, at start-up).
    pub(crate) fn start_async_dispatcher(&self) {
        let engine = self.clone();
        let stopped = self.inner.async_invocations.stop.subscribe();
        tokio::spawn(async move { engine.dispatch(stopped).await });
    }

    /// Stops dispatching and the event log's writer (at shutdown). Attempts in flight are
    /// abandoned: their events are still in the log and run again after the restart.
    pub(crate) fn stop_async_invocations(&self) {
        let state = &self.inner.async_invocations;
        let _ = state.stop.send(true);
        state.log.shutdown();
    }

    async fn dispatch(self, mut stopped: watch::Receiver<bool>) {
        let state = &self.inner.async_invocations;
        let slots = Arc::new(Semaphore::new(state.settings.concurrency.max(1)));
        loop {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            let event = loop {
                if *stopped.borrow() {
                    return;
                }
                let wait = {
                    let mut schedule = state.lock_schedule();
                    let now = now_millis();
                    match schedule.first_key_value() {
                        Some((&(due, _), _)) if due <= now => {
                            if let Some((_, event)) = schedule.pop_first() {
                                break event;
                            }
                            continue;
                        }
                        Some((&(due, _), _)) => {
                            Duration::from_millis(u64::try_from(due - now).unwrap_or(0))
                        }
                        None => Duration::from_secs(3600),
                    }
                };
                tokio::select! {
                    () = state.wake.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                    _ = stopped.changed() => {}
                }
            };
            let engine = self.clone();
            tokio::spawn(async move {
                engine.attempt(event).await;
                drop(slot);
            });
        }
    }

    /// Runs one attempt of `event` and acts on its outcome.
    async fn attempt(&self, mut event: AsyncEvent) {
        let state = &self.inner.async_invocations;
        let policy = state.settings.retry_policy;
        let Some((name, qualifier)) = event_target(&event) else {
            tracing::error!(
                event = event.id,
                "dropping an async event with an invalid target"
            );
            self.finish(&event, None).await;
            return;
        };
        let counters = state.metrics.of(&name);
        let config = self
            .event_invoke_config_of(&name, &config::qualifier_text(qualifier.as_ref()))
            .unwrap_or_else(|| default_config(qualifier.as_ref()));
        let max_age_ms = duration_ms(policy.max_event_age(config.event_age_seconds()));
        let now = now_millis();
        let age_ms = now - event.received_ms;
        if age_ms > max_age_ms {
            self.fail(
                &name,
                qualifier.as_ref(),
                &event,
                Condition::EventAgeExceeded,
                &config,
            )
            .await;
            return;
        }
        counters.record_age(u64::try_from(age_ms).unwrap_or(0));
        let outcome = self
            .invoke(
                &name,
                qualifier.as_ref(),
                InvokeRequest {
                    request_id: event.request_id.clone(),
                    payload: Bytes::from(event.payload.clone()),
                    client_context: None,
                    log_tail: false,
                    trace_header: event.trace_header.clone(),
                },
            )
            .await;
        if let Err(error) = &outcome
            && let Some(last) = self.unretried_outcome(&name, error)
        {
            // An earlier attempt's response, if there was one, stays the one reported.
            if event.last_result.is_none() || event.attempts == 0 {
                event.last_result = serde_json::to_string(&last).ok();
            }
            tracing::debug!(function = %name, request_id = %event.request_id, %error, "async event failed without retries");
            self.fail(
                &name,
                qualifier.as_ref(),
                &event,
                Condition::RetriesExhausted,
                &config,
            )
            .await;
            return;
        }
        let next_delay = match outcome {
            Ok(response) => {
                event.attempts += 1;
                let last = LastResult::Invoked {
                    executed_version: response.executed_version,
                    function_error: response.function_error,
                    payload: String::from_utf8_lossy(&response.payload).into_owned(),
                };
                if !response.function_error {
                    if let Some(destination) = &config.on_success {
                        let record = self.record(
                            &name,
                            qualifier.as_ref(),
                            &event,
                            Condition::Success,
                            Some(&last),
                        );
                        if let Err(error) = self.deliver(destination, &record).await {
                            counters
                                .destination_delivery_failures
                                .fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(function = %name, destination, %error, "on-success delivery failed");
                        }
                    }
                    self.finish(&event, None).await;
                    return;
                }
                event.last_result = serde_json::to_string(&last).ok();
                if event.attempts > config.retry_attempts() {
                    self.fail(
                        &name,
                        qualifier.as_ref(),
                        &event,
                        Condition::RetriesExhausted,
                        &config,
                    )
                    .await;
                    return;
                }
                policy.after_function_error(event.attempts)
            }
            Err(EngineError::FunctionNotFound { .. }) => {
                // The function (or its version or alias) was deleted since the event came.
                tracing::warn!(function = %name, request_id = %event.request_id, "dropping an async event: the function no longer exists");
                self.finish(&event, Some(&counters)).await;
                return;
            }
            Err(error) => {
                // Throttled or a system error: not an invocation; back off and try again.
                event.throttles += 1;
                let status = if matches!(
                    error,
                    EngineError::Busy { .. } | EngineError::Throttled { .. }
                ) {
                    429
                } else {
                    500
                };
                let last = LastResult::NotRun {
                    status,
                    message: error.to_string(),
                };
                if event.last_result.is_none() || event.attempts == 0 {
                    event.last_result = serde_json::to_string(&last).ok();
                }
                tracing::debug!(function = %name, %error, "async attempt could not run");
                policy.after_throttle(event.throttles)
            }
        };
        let next_attempt_ms = now_millis() + duration_ms(next_delay);
        if next_attempt_ms - event.received_ms > max_age_ms {
            // The next attempt would come after the event expired.
            self.fail(
                &name,
                qualifier.as_ref(),
                &event,
                Condition::EventAgeExceeded,
                &config,
            )
            .await;
            return;
        }
        event.next_attempt_ms = next_attempt_ms;
        let change = AsyncEventChange::Reschedule {
            id: event.id,
            attempts: event.attempts,
            throttles: event.throttles,
            next_attempt_ms,
            last_result: event.last_result.clone(),
        };
        if let Err(error) = state.write(vec![change]).await {
            // Still scheduled in memory; the log holds the previous schedule, which a restart
            // would simply run earlier.
            tracing::error!(%error, "persisting an async retry failed");
        }
        state.schedule(event);
    }

    /// Whether `name`'s reserved concurrency is 0, which throttles every invocation.
    fn throttled_entirely(&self, name: &FunctionName) -> bool {
        self.inner
            .registry
            .get(name)
            .is_some_and(|function| function.reserved_concurrency == Some(0))
    }

    /// The outcome to report for the errors Lambda does not retry an asynchronous event on:
    /// a recursive loop it stopped, and a function whose reserved concurrency is 0. Their
    /// events go to the dead-letter queue and on-failure destination at once.
    fn unretried_outcome(&self, name: &FunctionName, error: &EngineError) -> Option<LastResult> {
        match error {
            EngineError::RecursiveInvocation { .. } => Some(LastResult::NotRun {
                status: 400,
                message: crate::recursion::STOPPED_MESSAGE.to_owned(),
            }),
            EngineError::Throttled { .. } if self.throttled_entirely(name) => {
                Some(LastResult::NotRun {
                    status: 429,
                    message: error.to_string(),
                })
            }
            _ => None,
        }
    }

    /// Delivers a failed event to the dead-letter queue and the on-failure destination, then
    /// drops it: Lambda's `AsyncEventsDropped` counts every event that never ran successfully,
    /// "sent there before they're dropped" when a DLQ or destination is configured.
    async fn fail(
        &self,
        name: &FunctionName,
        qualifier: Option<&Qualifier>,
        event: &AsyncEvent,
        condition: Condition,
        config: &kiln_core::EventInvokeConfig,
    ) {
        let counters = self.inner.async_invocations.metrics.of(name);
        let last: Option<LastResult> = event
            .last_result
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok());
        if let Some(dead_letter_queue) = self.dead_letter_target(name, qualifier, last.as_ref()) {
            match self
                .send_to_dead_letter_queue(&dead_letter_queue, event, last.as_ref())
                .await
            {
                Ok(()) => {}
                Err(error) => {
                    counters.dead_letter_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(function = %name, queue = dead_letter_queue, %error, "dead-letter delivery failed");
                }
            }
        }
        if let Some(destination) = &config.on_failure {
            let record = self.record(name, qualifier, event, condition, last.as_ref());
            match self.deliver(destination, &record).await {
                Ok(()) => {}
                Err(error) => {
                    counters
                        .destination_delivery_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(function = %name, destination, %error, "on-failure delivery failed");
                }
            }
        }
        self.finish(event, Some(&counters)).await;
    }

    /// Deletes a finished event from the log; `dropped` counts it as dropped.
    async fn finish(&self, event: &AsyncEvent, dropped: Option<&Arc<AsyncCounters>>) {
        if let Some(counters) = dropped {
            counters.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
        let state = &self.inner.async_invocations;
        if let Err(error) = state
            .write(vec![AsyncEventChange::Delete { id: event.id }])
            .await
        {
            tracing::error!(%error, "deleting a finished async event failed");
        }
    }

    fn record(
        &self,
        name: &FunctionName,
        qualifier: Option<&Qualifier>,
        event: &AsyncEvent,
        condition: Condition,
        last: Option<&LastResult>,
    ) -> serde_json::Value {
        let function_arn = format!(
            "{}:{}",
            self.inner.account.function_arn(name),
            config::qualifier_text(qualifier)
        );
        record::invocation_record(&RecordFacts {
            request_id: &event.request_id,
            function_arn: &function_arn,
            condition,
            approximate_invoke_count: event.attempts,
            request_payload: &event.payload,
            last,
            timestamp_ms: now_millis(),
        })
    }

    /// The dead-letter queue of the version that ran (or would run) the event.
    fn dead_letter_target(
        &self,
        name: &FunctionName,
        qualifier: Option<&Qualifier>,
        last: Option<&LastResult>,
    ) -> Option<String> {
        let function = self.inner.registry.get(name)?;
        let version = match last {
            Some(LastResult::Invoked {
                executed_version, ..
            }) => VersionId::parse(executed_version)?,
            _ => self.resolve_invocation(name, qualifier).ok()?.version,
        };
        function
            .version(version)?
            .config
            .dead_letter
            .as_ref()
            .map(|dead_letter| dead_letter.target_arn.clone())
    }

    async fn send_to_dead_letter_queue(
        &self,
        queue_arn: &str,
        event: &AsyncEvent,
        last: Option<&LastResult>,
    ) -> Result<(), String> {
        let queues = self
            .inner
            .queues
            .as_ref()
            .ok_or("Kiln runs without its queue service")?;
        let (status, message) = record::dead_letter_error(last);
        let attribute = |data_type: &str, value: String| kiln_queues::MessageAttributeValue {
            data_type: data_type.to_owned(),
            string_value: Some(value),
            binary_value: None,
        };
        let request = kiln_queues::SendRequest {
            body: String::from_utf8_lossy(&event.payload).into_owned(),
            message_attributes: BTreeMap::from([
                (
                    "RequestID".to_owned(),
                    attribute("String", event.request_id.clone()),
                ),
                (
                    "ErrorCode".to_owned(),
                    attribute("Number", status.to_string()),
                ),
                ("ErrorMessage".to_owned(), attribute("String", message)),
            ]),
            ..kiln_queues::SendRequest::default()
        };
        queues
            .send(queue_arn, request)
            .await
            .map(drop)
            .map_err(|error| error.to_string())
    }

    /// Sends an invocation record to an SQS queue, or invokes a function with it
    /// (asynchronously, so it is durable and retried like any event).
    async fn deliver(&self, destination: &str, record: &serde_json::Value) -> Result<(), String> {
        match config::destination_service(destination) {
            Some("sqs") => {
                let queues = self
                    .inner
                    .queues
                    .as_ref()
                    .ok_or("Kiln runs without its queue service")?;
                let request = kiln_queues::SendRequest {
                    body: record.to_string(),
                    ..kiln_queues::SendRequest::default()
                };
                queues
                    .send(destination, request)
                    .await
                    .map(drop)
                    .map_err(|error| error.to_string())
            }
            Some("lambda") => {
                let (target, qualifier) = config::function_of_arn(destination)
                    .ok_or_else(|| format!("{destination} names no function"))?;
                self.invoke_async(
                    &target,
                    qualifier.as_ref(),
                    crate::ids::new_request_id(),
                    Bytes::from(record.to_string()),
                    None,
                )
                .await
                .map_err(|error| error.to_string())
            }
            _ => Err(format!("Kiln cannot deliver to {destination}")),
        }
    }
}

/// The function and qualifier an event was invoked with.
fn event_target(event: &AsyncEvent) -> Option<(FunctionName, Option<Qualifier>)> {
    let name = FunctionName::parse(&event.function_name).ok()?;
    let qualifier = match &event.qualifier {
        Some(text) => Some(Qualifier::parse(text).ok()?),
        None => None,
    };
    Some((name, qualifier))
}

fn default_config(qualifier: Option<&Qualifier>) -> kiln_core::EventInvokeConfig {
    kiln_core::EventInvokeConfig {
        qualifier: config::qualifier_text(qualifier),
        maximum_retry_attempts: None,
        maximum_event_age_seconds: None,
        on_success: None,
        on_failure: None,
        last_modified: 0,
    }
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
