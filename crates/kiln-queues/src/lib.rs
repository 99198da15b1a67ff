//! Kiln's durable, SQS-compatible queues.
//!
//! This crate is the queue service without its wire protocol: queues with SQS's attributes and
//! semantics (visibility timeouts, delays, long polling, FIFO groups and deduplication,
//! dead-letter redrive, retention), kept in memory for receiving and persisted in SQLite
//! (`DATA_DIR/queues.db`) before anything is acknowledged. `kiln-api`'s `sqs` module serves it
//! over SQS's JSON and query protocols; other parts of Kiln use it in process.
//!
//! # In-process use
//!
//! [`QueueService`] is cheap to clone (one `Arc`). Queues are named by name or ARN
//! (`arn:aws:sqs:REGION:ACCOUNT:NAME`) wherever a method takes `name_or_arn`.
//!
//! ```no_run
//! # async fn example(data_dir: &std::path::Path, account: kiln_core::AccountContext) -> Result<(), kiln_queues::QueueError> {
//! use std::time::Duration;
//! use kiln_queues::{QueueService, ReceiveRequest, SendRequest};
//!
//! let queues = QueueService::open(data_dir, account)?;
//! let queue = queues.create_queue("jobs", &Default::default(), Default::default()).await?;
//! queues.send(&queue.arn, SendRequest { body: "hello".into(), ..Default::default() }).await?;
//! let messages = queues
//!     .receive(&queue.arn, ReceiveRequest {
//!         max_messages: 10,
//!         wait: Duration::from_secs(20),
//!         visibility_timeout: None,
//!     })
//!     .await?;
//! for message in &messages {
//!     // ... process, then acknowledge:
//!     queues.delete(&queue.arn, &message.receipt_handle).await?;
//! }
//! # Ok(()) }
//! ```
//!
//! - [`QueueService::queue_by_arn`] gives a [`QueueInfo`] (name, URL path, ARN, FIFO or not,
//!   visibility timeout, redrive policy), e.g. to validate an event source mapping.
//! - [`QueueService::send`] / [`QueueService::send_batch`] return once the message is durable;
//!   FIFO queues need `group_id` and a `dedup_id` (or content-based deduplication).
//! - [`QueueService::receive`] long-polls up to `wait` and returns at most `max_messages`
//!   [`ReceivedMessage`]s, each with every system attribute (`ApproximateReceiveCount`,
//!   `SentTimestamp`, `SenderId`, `ApproximateFirstReceiveTimestamp`, FIFO `MessageGroupId`,
//!   `MessageDeduplicationId`, `SequenceNumber`) and its message attributes. A message received
//!   more than its queue's `maxReceiveCount` times goes to the dead-letter queue instead.
//! - [`QueueService::delete`], [`QueueService::delete_batch`],
//!   [`QueueService::change_visibility`] and [`QueueService::change_visibility_batch`] take the
//!   receipt handle of the latest delivery.
//!
//! # Invariants
//!
//! - **Durable before acknowledged.** A send, a delivery (receive count, visibility deadline,
//!   receipt), a deletion and every queue change are committed (WAL, `synchronous=FULL`) before
//!   the call returns. A message becomes receivable only once its send is durable.
//! - **Group commit.** One writer thread ([`store`](crate::store)) commits whatever requests
//!   queued up while it was syncing in one transaction, so concurrent senders share `fsync`s.
//! - **In-memory index.** Every queue's messages are loaded at start-up; receives, counts and
//!   FIFO group locks are served from memory and never scan the database.
//! - **FIFO order.** Within a group, messages are delivered in send order, and nothing more
//!   of a group is delivered while one of its messages is in flight. Sends of one queue are
//!   committed and made visible in sequence order.

mod digest;
mod error;
mod model;
mod queue;
mod service;
mod settings;
mod store;

pub use digest::{md5_hex, md5_of_message_attributes, sha256_hex};
pub use error::{QueueError, StoreError};
pub use model::{
    DeleteEntry, MessageAttributeValue, QueueInfo, ReceiveRequest, ReceivedMessage, RedrivePolicy,
    SendOutcome, SendRequest,
};
pub use service::{QueueService, validate_message_attributes};
pub use settings::{COMPUTED_ATTRIBUTES, SETTABLE_ATTRIBUTES};

#[cfg(test)]
mod tests;
