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
//! takes due ones. Each function runs at most `AsyncConfig::concurrency` attempts at once (or
//! its reserved concurrency, if higher); a due event of a function at its limit waits, parked,
//! for one of them to end, so that a function with slow or many events never holds up the
//! events of another (Lambda queues events per function). Beyond that, the account's
//! concurrency limit applies as to every invocation: a throttled attempt is retried.

mod config;
mod metrics;
mod policy;
mod record;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use kiln_core::{FunctionName, Qualifier, VersionId, now_millis};
use kiln_store::{AsyncEvent, AsyncEventChange, AsyncEventLog};
use tokio::sync::{Notify, oneshot, watch};

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
    /// Most attempts of one function running at once (more if its reserved concurrency is
    /// higher).
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
    /// Pending events. Events being attempted are not here.
    schedule: Mutex<Schedule>,
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
            .field("pending", &self.lock_schedule().pending())
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
        let mut schedule = Schedule::default();
        for event in events {
            schedule.insert(event);
        }
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

    fn lock_schedule(&self) -> std::sync::MutexGuard<'_, Schedule> {
        self.schedule
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn schedule(&self, event: AsyncEvent) {
        self.lock_schedule().insert(event);
        self.wake.notify_one();
    }

    /// Ends an attempt of `function`'s: frees its slot and un-parks its next waiting event.
    fn attempt_ended(&self, function: &str) {
        if self.lock_schedule().release(function) {
            self.wake.notify_one();
        }
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
        self.inner.async_invocations.lock_schedule().pending()
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
        let per_function = state.settings.concurrency.max(1);
        loop {
            let event = loop {
                if *stopped.borrow() {
                    return;
                }
                let wait = {
                    let limit_of = |function: &str| {
                        let reserved = FunctionName::parse(function)
                            .ok()
                            .and_then(|name| self.inner.registry.get(&name))
                            .and_then(|function| function.reserved_concurrency)
                            .unwrap_or(0);
                        per_function.max(usize::try_from(reserved).unwrap_or(usize::MAX))
                    };
                    match state.lock_schedule().take_due(now_millis(), limit_of) {
                        Ok(event) => break event,
                        Err(wait) => wait.unwrap_or(Duration::from_secs(3600)),
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
                // Frees the function's slot however the attempt ends, a panic included.
                let _slot = AttemptSlot {
                    engine: engine.clone(),
                    function: event.function_name.clone(),
                };
                engine.attempt(event).await;
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

/// One running attempt's hold on its function's slot, released when dropped.
struct AttemptSlot {
    engine: Engine,
    function: String,
}

impl Drop for AttemptSlot {
    fn drop(&mut self) {
        self.engine
            .inner
            .async_invocations
            .attempt_ended(&self.function);
    }
}

/// The pending events: due or future ones in one order, and those parked because their
/// function was at its limit of attempts when they came due.
#[derive(Debug, Default)]
struct Schedule {
    /// By (next attempt time, id).
    queue: BTreeMap<(i64, i64), AsyncEvent>,
    /// By function name, each by (next attempt time, id).
    parked: HashMap<String, BTreeMap<(i64, i64), AsyncEvent>>,
    /// Attempts running, by function name.
    running: HashMap<String, usize>,
}

impl Schedule {
    fn insert(&mut self, event: AsyncEvent) {
        self.queue.insert((event.next_attempt_ms, event.id), event);
    }

    fn pending(&self) -> usize {
        self.queue.len() + self.parked.values().map(BTreeMap::len).sum::<usize>()
    }

    /// The next event due at `now` whose function has a free slot (taking it), parking due
    /// events of functions at their limit; otherwise how long until the next one is due.
    fn take_due(
        &mut self,
        now: i64,
        limit_of: impl Fn(&str) -> usize,
    ) -> Result<AsyncEvent, Option<Duration>> {
        while let Some(entry) = self.queue.first_entry() {
            let (due, _) = *entry.key();
            if due > now {
                return Err(Some(Duration::from_millis(
                    u64::try_from(due - now).unwrap_or(0),
                )));
            }
            let event = entry.remove();
            let running = self.running.entry(event.function_name.clone()).or_default();
            if *running < limit_of(&event.function_name).max(1) {
                *running += 1;
                return Ok(event);
            }
            self.parked
                .entry(event.function_name.clone())
                .or_default()
                .insert((event.next_attempt_ms, event.id), event);
        }
        Err(None)
    }

    /// Frees a slot of `function`; true if one of its parked events went back in the queue.
    fn release(&mut self, function: &str) -> bool {
        if let Some(running) = self.running.get_mut(function) {
            *running = running.saturating_sub(1);
            if *running == 0 {
                self.running.remove(function);
            }
        }
        let Some(parked) = self.parked.get_mut(function) else {
            return false;
        };
        let Some((_, event)) = parked.pop_first() else {
            return false;
        };
        if parked.is_empty() {
            self.parked.remove(function);
        }
        self.insert(event);
        true
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64, function: &str, due: i64) -> AsyncEvent {
        AsyncEvent {
            id,
            request_id: format!("request-{id}"),
            function_name: function.to_owned(),
            qualifier: None,
            payload: Vec::new(),
            received_ms: 0,
            attempts: 0,
            throttles: 0,
            next_attempt_ms: due,
            last_result: None,
            trace_header: None,
        }
    }

    #[test]
    fn a_function_at_its_limit_does_not_hold_up_another() {
        let mut schedule = Schedule::default();
        for id in 1..=3 {
            schedule.insert(event(id, "slow", 10));
        }
        schedule.insert(event(4, "quick", 20));
        schedule.insert(event(5, "later", 1_000));
        let limit = |_: &str| 1;
        assert_eq!(schedule.take_due(100, limit).map(|e| e.id), Ok(1));
        // slow's other events are parked; quick's runs although it came due after them.
        assert_eq!(schedule.take_due(100, limit).map(|e| e.id), Ok(4));
        assert_eq!(
            schedule.take_due(100, limit).map(|e| e.id),
            Err(Some(Duration::from_millis(900)))
        );
        assert_eq!(schedule.pending(), 3);
        // An attempt of slow's ends: its next event, in order, is due again at once.
        assert!(schedule.release("slow"));
        assert_eq!(schedule.take_due(100, limit).map(|e| e.id), Ok(2));
        assert!(!schedule.release("quick"));
        assert!(schedule.release("slow"));
        assert_eq!(schedule.take_due(100, limit).map(|e| e.id), Ok(3));
        assert!(!schedule.release("slow"));
        assert!(schedule.running.is_empty());
        assert!(schedule.parked.is_empty());
        assert_eq!(schedule.pending(), 1);
    }

    #[test]
    fn limits_above_one_run_that_many_at_once() {
        let mut schedule = Schedule::default();
        for id in 1..=5 {
            schedule.insert(event(id, "f", 0));
        }
        let taken: Vec<i64> = std::iter::from_fn(|| schedule.take_due(0, |_| 3).ok())
            .map(|e| e.id)
            .collect();
        assert_eq!(taken, [1, 2, 3]);
        assert_eq!(schedule.take_due(0, |_| 3).map(|e| e.id), Err(None));
        assert_eq!(schedule.pending(), 2);
    }
}
