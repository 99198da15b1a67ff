//! The public vocabulary of the queue service: requests, received messages, queue facts.

use std::collections::BTreeMap;
use std::time::Duration;

/// A message attribute as SQS defines it: a data type (`String`, `Number`, `Binary`, optionally
/// with a custom suffix such as `Number.int`) and a string or binary value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAttributeValue {
    pub data_type: String,
    pub string_value: Option<String>,
    pub binary_value: Option<Vec<u8>>,
}

/// What to send.
#[derive(Debug, Clone, Default)]
pub struct SendRequest {
    pub body: String,
    pub message_attributes: BTreeMap<String, MessageAttributeValue>,
    /// Per-message delay; `None` takes the queue's `DelaySeconds`. Standard queues only.
    pub delay: Option<Duration>,
    /// Required on FIFO queues; optional (no ordering effect) on standard queues.
    pub group_id: Option<String>,
    /// FIFO queues: explicit deduplication id (else SHA-256 of the body, if the queue has
    /// content-based deduplication).
    pub dedup_id: Option<String>,
    /// The `AWSTraceHeader` system attribute.
    pub trace_header: Option<String>,
}

/// The answer to a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOutcome {
    pub message_id: String,
    pub md5_of_body: String,
    pub md5_of_message_attributes: Option<String>,
    pub md5_of_system_attributes: Option<String>,
    /// FIFO queues only.
    pub sequence_number: Option<String>,
}

/// What to receive.
#[derive(Debug, Clone)]
pub struct ReceiveRequest {
    /// 1 to 10 (values outside are clamped).
    pub max_messages: usize,
    /// Long polling: how long to wait for a first message if none is visible.
    pub wait: Duration,
    /// `None` takes the queue's `VisibilityTimeout`.
    pub visibility_timeout: Option<Duration>,
}

/// A delivered message; it stays invisible until its visibility timeout ends or it is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    /// Valid for this delivery only; a later delivery of the same message gets a new one.
    pub receipt_handle: String,
    pub body: String,
    pub md5_of_body: String,
    pub md5_of_message_attributes: Option<String>,
    /// Every system attribute SQS has for this message (`SenderId`, `SentTimestamp`,
    /// `ApproximateReceiveCount`, `ApproximateFirstReceiveTimestamp`, and for FIFO queues
    /// `MessageGroupId`, `MessageDeduplicationId`, `SequenceNumber`; `AWSTraceHeader` and
    /// `DeadLetterQueueSourceArn` when they apply). Callers filter by what was asked.
    pub system_attributes: BTreeMap<String, String>,
    pub message_attributes: BTreeMap<String, MessageAttributeValue>,
}

/// Facts about a queue that in-process consumers need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    pub name: String,
    /// The URL path (`/ACCOUNT/NAME`); the HTTP layer prefixes scheme and host.
    pub url_path: String,
    pub arn: String,
    pub fifo: bool,
    pub visibility_timeout: Duration,
    pub redrive_policy: Option<RedrivePolicy>,
}

/// Where messages go after too many receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedrivePolicy {
    pub dead_letter_target_arn: String,
    pub max_receive_count: u32,
}

/// One entry of a batch delete.
#[derive(Debug, Clone)]
pub struct DeleteEntry {
    pub id: String,
    pub receipt_handle: String,
}
