//! The SQS poller of an event source mapping: receives batches from Kiln's queue service,
//! filters them, invokes the function with Lambda's SQS event, and deletes what succeeded.
//!
//! As on Lambda: a batch is up to `BatchSize` messages collected for at most
//! `MaximumBatchingWindowInSeconds` (one receive when the window is 0); messages no filter
//! matches are deleted without invoking; a successful invocation deletes the batch, or with
//! `ReportBatchItemFailures` everything but the reported failures (an invalid report fails the
//! whole batch); a failed invocation deletes nothing, so the messages return after the queue's
//! visibility timeout and, past `maxReceiveCount`, go to the queue's dead-letter queue. FIFO
//! order holds because the queue hands out a message group's next messages only once the
//! previous ones are deleted or visible again.
//!
//! One collector per mapping gathers batches one after another (so a batch fills up to its
//! size or window before it is handed over, as Lambda's batching promises) and hands each to
//! its own task; `ScalingConfig.MaximumConcurrency` (default 5) bounds the batches in flight.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use kiln_core::{EventSourceMapping, Qualifier};
use kiln_event_filter::FilterCriteria;
use kiln_queues::{DeleteEntry, ReceiveRequest, ReceivedMessage};
use serde_json::{Map, Value, json};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::Engine;
use crate::execution::InvokeRequest;

/// Concurrent batches per mapping without `ScalingConfig` (Lambda starts with five pollers).
const DEFAULT_CONCURRENCY: u32 = 5;
/// SQS's most messages per receive.
const MAX_PER_RECEIVE: usize = 10;
/// The system attributes Lambda puts into an SQS record.
const RECORD_ATTRIBUTES: &[&str] = &[
    "ApproximateReceiveCount",
    "AWSTraceHeader",
    "SentTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "SenderId",
    "MessageDeduplicationId",
    "ApproximateFirstReceiveTimestamp",
];
/// How long one receive waits for messages; short so that a stopped poller exits soon (a
/// long poll returns as soon as a message arrives, so this costs no latency).
const RECEIVE_WAIT: Duration = Duration::from_secs(1);
/// Pause after an invocation that could not run (function missing, throttled), so that a
/// broken mapping does not spin.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// What a mapping needs to know about its queue.
#[derive(Debug, Clone)]
pub struct QueueFacts {
    pub fifo: bool,
    pub visibility_timeout: Duration,
}

impl Engine {
    /// The queue behind `arn`, if Kiln's queue service has it.
    pub(super) fn queue_facts(&self, arn: &str) -> Option<QueueFacts> {
        let queues = self.inner.queues.as_ref()?;
        let queue = queues.queue_by_arn(arn)?;
        Some(QueueFacts {
            fifo: queue.fifo,
            visibility_timeout: queue.visibility_timeout,
        })
    }
}

/// A mapping's running collector and its batches in flight.
#[derive(Debug)]
pub(super) struct Poller {
    stop: watch::Sender<bool>,
    collector: JoinHandle<()>,
}

impl Poller {
    pub(super) fn start(
        engine: Engine,
        mapping: EventSourceMapping,
        filter: Option<FilterCriteria>,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let worker = Worker {
            engine,
            qualifier: mapping
                .qualifier
                .as_deref()
                .and_then(|text| Qualifier::parse(text).ok()),
            mapping,
            filter,
        };
        let collector = tokio::spawn(async move { worker.run(stopped).await });
        Self { stop, collector }
    }

    /// Asks the workers to stop after their batch in flight.
    pub(super) fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Stops collecting and waits until the batches in flight are done.
    pub(super) async fn stop_and_wait(self) {
        self.stop();
        let _ = self.collector.await;
    }
}

#[derive(Debug, Clone)]
struct Worker {
    engine: Engine,
    mapping: EventSourceMapping,
    qualifier: Option<Qualifier>,
    filter: Option<FilterCriteria>,
}

/// How one batch went.
enum Outcome {
    Done,
    /// The invocation could not run; back off before the next batch.
    CouldNotInvoke,
}

impl Worker {
    async fn run(self, stopped: watch::Receiver<bool>) {
        let Some(queues) = self.engine.inner.queues.clone() else {
            return;
        };
        let concurrency = self
            .mapping
            .maximum_concurrency
            .unwrap_or(DEFAULT_CONCURRENCY)
            .max(1);
        let slots = Arc::new(Semaphore::new(concurrency as usize));
        let mut in_flight = JoinSet::new();
        while !*stopped.borrow() {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            while in_flight.try_join_next().is_some() {}
            let batch = match self.collect_batch(&queues, &stopped).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(mapping = %self.mapping.uuid, %error, "receiving from the queue failed");
                    tokio::time::sleep(ERROR_BACKOFF).await;
                    continue;
                }
            };
            if batch.is_empty() {
                continue;
            }
            let worker = self.clone();
            let queues = queues.clone();
            in_flight.spawn(async move {
                let arn = worker.mapping.event_source_arn.clone();
                if let Outcome::CouldNotInvoke = worker.process(&queues, &arn, batch).await {
                    // Holding the slot: a mapping whose function cannot run slows down.
                    tokio::time::sleep(ERROR_BACKOFF).await;
                }
                drop(slot);
            });
        }
        while in_flight.join_next().await.is_some() {}
    }

    /// Up to `BatchSize` messages, gathered for at most the batching window.
    async fn collect_batch(
        &self,
        queues: &kiln_queues::QueueService,
        stopped: &watch::Receiver<bool>,
    ) -> Result<Vec<ReceivedMessage>, kiln_queues::QueueError> {
        let arn = &self.mapping.event_source_arn;
        let wanted = self.mapping.batch_size as usize;
        let mut batch = queues
            .receive(
                arn,
                ReceiveRequest {
                    max_messages: MAX_PER_RECEIVE.min(self.mapping.batch_size as usize),
                    wait: RECEIVE_WAIT,
                    visibility_timeout: None,
                },
            )
            .await?;
        if batch.is_empty() || self.mapping.maximum_batching_window_seconds == 0 {
            return Ok(batch);
        }
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(u64::from(self.mapping.maximum_batching_window_seconds));
        while batch.len() < wanted && !*stopped.borrow() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let more = queues
                .receive(
                    arn,
                    ReceiveRequest {
                        max_messages: MAX_PER_RECEIVE.min(wanted - batch.len()),
                        wait: left.min(RECEIVE_WAIT),
                        visibility_timeout: None,
                    },
                )
                .await?;
            batch.extend(more);
        }
        Ok(batch)
    }

    async fn process(
        &self,
        queues: &kiln_queues::QueueService,
        arn: &str,
        batch: Vec<ReceivedMessage>,
    ) -> Outcome {
        let region = &self.engine.inner.account.region;
        let mut kept = Vec::with_capacity(batch.len());
        let mut filtered_out = Vec::new();
        for message in batch {
            let record = sqs_record(&message, arn, region);
            match &self.filter {
                Some(filter) if !filter.matches_sqs_record(&record) => {
                    filtered_out.push(message.receipt_handle);
                }
                _ => kept.push(Entry {
                    json: record.to_string(),
                    trace_header: message.system_attributes.get("AWSTraceHeader").cloned(),
                    message_id: message.message_id,
                    receipt_handle: message.receipt_handle,
                }),
            }
        }
        // Lambda deletes what no filter matches.
        self.delete(queues, arn, filtered_out).await;
        let kept = self.stop_recursive_loops(queues, arn, kept).await;
        // A batch never exceeds the invoke payload limit: Lambda sizes batches so; Kiln
        // splits a batch that would, and invokes the parts one after another.
        for part in split_by_payload_size(kept) {
            if let Outcome::CouldNotInvoke = self.invoke_part(queues, arn, part).await {
                return Outcome::CouldNotInvoke;
            }
        }
        Outcome::Done
    }

    /// Invokes the function with one batch and deletes what succeeded.
    async fn invoke_part(
        &self,
        queues: &kiln_queues::QueueService,
        arn: &str,
        part: Vec<Entry>,
    ) -> Outcome {
        let mut payload = String::with_capacity(
            part.iter().map(|entry| entry.json.len() + 1).sum::<usize>() + 16,
        );
        payload.push_str("{\"Records\":[");
        for (index, entry) in part.iter().enumerate() {
            if index > 0 {
                payload.push(',');
            }
            payload.push_str(&entry.json);
        }
        payload.push_str("]}");
        // The invocation carries the trace of the message furthest along a loop, so that what
        // the function sends on keeps counting from there.
        let trace_header = self
            .engine
            .furthest_trace(
                &self.mapping.function_name,
                part.iter()
                    .filter_map(|entry| entry.trace_header.as_deref()),
            )
            .map(str::to_owned);
        let ids: Vec<(String, String)> = part
            .into_iter()
            .map(|entry| (entry.message_id, entry.receipt_handle))
            .collect();
        let invoked = self
            .engine
            .invoke(
                &self.mapping.function_name,
                self.qualifier.as_ref(),
                InvokeRequest {
                    request_id: uuid::Uuid::new_v4().to_string(),
                    payload: Bytes::from(payload),
                    client_context: None,
                    log_tail: false,
                    trace_header,
                },
            )
            .await;
        let response = match invoked {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(mapping = %self.mapping.uuid, %error, "event source mapping could not invoke its function");
                return Outcome::CouldNotInvoke;
            }
        };
        if response.function_error {
            // The whole batch returns to the queue after its visibility timeout.
            return Outcome::Done;
        }
        let succeeded: Vec<String> = if self.mapping.report_batch_item_failures {
            match reported_failures(&response.payload, &ids) {
                Some(failed) => ids
                    .into_iter()
                    .filter(|(id, _)| !failed.contains(id))
                    .map(|(_, handle)| handle)
                    .collect(),
                None => Vec::new(),
            }
        } else {
            ids.into_iter().map(|(_, handle)| handle).collect()
        };
        self.delete(queues, arn, succeeded).await;
        Outcome::Done
    }

    /// Recursive loop detection: messages whose trace shows the function already invoked as
    /// many times as Lambda allows along their chain are not delivered. They go to the
    /// queue's dead-letter queue (deleted when it has none), and each counts as a
    /// `RecursiveInvocationsDropped`. Returns the messages to deliver.
    async fn stop_recursive_loops(
        &self,
        queues: &kiln_queues::QueueService,
        arn: &str,
        entries: Vec<Entry>,
    ) -> Vec<Entry> {
        let Ok(function) = self.engine.function(&self.mapping.function_name) else {
            return entries;
        };
        let (looping, kept): (Vec<Entry>, Vec<Entry>) = entries.into_iter().partition(|entry| {
            self.engine
                .stops_recursion(&function, entry.trace_header.as_deref())
        });
        if looping.is_empty() {
            return kept;
        }
        for _ in &looping {
            self.engine
                .inner
                .metrics
                .record_recursion_stop(&function.name);
        }
        tracing::warn!(
            mapping = %self.mapping.uuid,
            function = %function.name,
            messages = looping.len(),
            "stopped a recursive loop through a queue"
        );
        let handles: Vec<String> = looping
            .into_iter()
            .map(|entry| entry.receipt_handle)
            .collect();
        if let Err(error) = queues.move_to_dead_letter_queue(arn, &handles).await {
            // They come back after their visibility timeout and are stopped again.
            tracing::warn!(mapping = %self.mapping.uuid, %error, "moving looping messages failed");
        }
        kept
    }

    async fn delete(&self, queues: &kiln_queues::QueueService, arn: &str, handles: Vec<String>) {
        if handles.is_empty() {
            return;
        }
        // SQS deletes at most 10 per request; the service has no such limit in-process.
        let entries: Vec<DeleteEntry> = handles
            .into_iter()
            .enumerate()
            .map(|(index, receipt_handle)| DeleteEntry {
                id: index.to_string(),
                receipt_handle,
            })
            .collect();
        match queues.delete_batch(arn, &entries).await {
            Ok(outcomes) => {
                for error in outcomes.into_iter().filter_map(Result::err) {
                    // The message comes back after its visibility timeout: at-least-once.
                    tracing::warn!(mapping = %self.mapping.uuid, %error, "deleting a processed message failed");
                }
            }
            Err(error) => {
                tracing::warn!(mapping = %self.mapping.uuid, %error, "deleting processed messages failed");
            }
        }
    }
}

/// One message of a batch, its record already serialised.
struct Entry {
    json: String,
    /// The message's `AWSTraceHeader`.
    trace_header: Option<String>,
    message_id: String,
    receipt_handle: String,
}

/// Lambda's limit on a synchronous invocation's payload; the `{"Records":[...]}` envelope
/// counts too.
const MAX_BATCH_PAYLOAD: usize = 6_291_456 - 16;

/// Consecutive parts of `entries` whose events stay within the invoke payload limit (a record
/// too large on its own goes alone, and its invocation fails as Lambda's would).
fn split_by_payload_size(entries: Vec<Entry>) -> Vec<Vec<Entry>> {
    let mut parts: Vec<Vec<Entry>> = Vec::new();
    let mut size = 0;
    for entry in entries {
        let needed = entry.json.len() + 1;
        match parts.last_mut() {
            Some(part) if size + needed <= MAX_BATCH_PAYLOAD => {
                size += needed;
                part.push(entry);
            }
            _ => {
                size = needed;
                parts.push(vec![entry]);
            }
        }
    }
    parts
}

/// The message ids a `ReportBatchItemFailures` response names, or `None` when the response
/// fails the whole batch (not a valid report, or an id that is not in the batch). An empty
/// response, `null`, `{}` and an empty list all mean success.
fn reported_failures(payload: &[u8], batch: &[(String, String)]) -> Option<HashSet<String>> {
    let text = std::str::from_utf8(payload).ok()?.trim();
    if text.is_empty() {
        return Some(HashSet::new());
    }
    let value: Value = serde_json::from_str(text).ok()?;
    let failures = match &value {
        Value::Null => return Some(HashSet::new()),
        Value::Object(object) => match object.get("batchItemFailures") {
            None | Some(Value::Null) => return Some(HashSet::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return None,
        },
        _ => return None,
    };
    let mut failed = HashSet::new();
    for item in failures {
        let id = item.get("itemIdentifier")?.as_str()?;
        if id.is_empty() || !batch.iter().any(|(known, _)| known == id) {
            return None;
        }
        failed.insert(id.to_owned());
    }
    Some(failed)
}

/// One record of Lambda's SQS event.
pub(crate) fn sqs_record(message: &ReceivedMessage, arn: &str, region: &str) -> Value {
    let mut attributes = Map::new();
    for name in RECORD_ATTRIBUTES {
        if let Some(value) = message.system_attributes.get(*name) {
            attributes.insert((*name).to_owned(), json!(value));
        }
    }
    let mut message_attributes = Map::new();
    for (name, attribute) in &message.message_attributes {
        let mut entry = Map::new();
        if let Some(text) = &attribute.string_value {
            entry.insert("stringValue".into(), json!(text));
        }
        if let Some(binary) = &attribute.binary_value {
            entry.insert(
                "binaryValue".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(binary)),
            );
        }
        entry.insert("stringListValues".into(), json!([]));
        entry.insert("binaryListValues".into(), json!([]));
        entry.insert("dataType".into(), json!(attribute.data_type));
        message_attributes.insert(name.clone(), Value::Object(entry));
    }
    json!({
        "messageId": message.message_id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfMessageAttributes": message.md5_of_message_attributes,
        "md5OfBody": message.md5_of_body,
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Vec<(String, String)> {
        vec![("a".into(), "ha".into()), ("b".into(), "hb".into())]
    }

    #[test]
    fn batches_are_split_under_the_payload_limit() {
        let entry = |size: usize| Entry {
            json: "x".repeat(size),
            trace_header: None,
            message_id: String::new(),
            receipt_handle: String::new(),
        };
        let sizes = |parts: &[Vec<Entry>]| -> Vec<usize> { parts.iter().map(Vec::len).collect() };
        assert_eq!(
            sizes(&split_by_payload_size((0..10).map(|_| entry(10)).collect())),
            vec![10]
        );
        let quarter = MAX_BATCH_PAYLOAD / 4;
        let parts = split_by_payload_size((0..10).map(|_| entry(quarter)).collect());
        assert_eq!(sizes(&parts), vec![3, 3, 3, 1]);
        let parts = split_by_payload_size(vec![entry(MAX_BATCH_PAYLOAD * 2), entry(1)]);
        assert_eq!(sizes(&parts), vec![1, 1]);
        assert!(split_by_payload_size(Vec::new()).is_empty());
    }

    #[test]
    fn batch_item_failure_reports_are_read_as_lambda_reads_them() {
        let none = Some(HashSet::new());
        assert_eq!(reported_failures(b"", &batch()), none);
        assert_eq!(reported_failures(b"null", &batch()), none);
        assert_eq!(reported_failures(b"{}", &batch()), none);
        assert_eq!(
            reported_failures(br#"{"batchItemFailures": []}"#, &batch()),
            none
        );
        assert_eq!(
            reported_failures(
                br#"{"batchItemFailures": [{"itemIdentifier": "b"}]}"#,
                &batch()
            ),
            Some(HashSet::from(["b".to_owned()]))
        );
        // Anything else fails the whole batch.
        assert_eq!(reported_failures(b"not json", &batch()), None);
        assert_eq!(
            reported_failures(
                br#"{"batchItemFailures": [{"itemIdentifier": "zzz"}]}"#,
                &batch()
            ),
            None
        );
        assert_eq!(
            reported_failures(
                br#"{"batchItemFailures": [{"itemIdentifier": ""}]}"#,
                &batch()
            ),
            None
        );
        assert_eq!(
            reported_failures(br#"{"batchItemFailures": [{}]}"#, &batch()),
            None
        );
        assert_eq!(reported_failures(b"[1]", &batch()), None);
    }
}
