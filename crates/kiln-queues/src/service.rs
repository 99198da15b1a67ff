//! [`QueueService`]: the commands of the queue service.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kiln_core::AccountContext;

use crate::digest::{md5_hex, md5_of_message_attributes, sha256_hex};
use crate::error::{QueueError, StoreError};
use crate::model::{
    DeleteEntry, MessageAttributeValue, QueueInfo, ReceiveRequest, ReceivedMessage, SendOutcome,
    SendRequest,
};
use crate::queue::{DedupEntry, Message, Queue, QueueState, received, sequence_number};
use crate::settings::{
    COMPUTED_ATTRIBUTES, QueueSettings, SETTABLE_ATTRIBUTES, validate_queue_name,
};
use crate::store::{self, DedupRow, Mutation, QueueRow, Writer};

/// How long a FIFO queue remembers a deduplication id.
const DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;
/// How often expired messages and deduplication ids are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Most message attributes per message.
const MAX_MESSAGE_ATTRIBUTES: usize = 10;

/// The queue service; cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct QueueService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    account: AccountContext,
    writer: Writer,
    queues: RwLock<BTreeMap<String, Arc<Queue>>>,
    /// Serialises queue creation, deletion and attribute changes (held across their commit).
    control: tokio::sync::Mutex<()>,
    next_seq: AtomicI64,
    next_queue_id: AtomicI64,
    stopping: AtomicBool,
    sweeper: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// SQS allows one PurgeQueue per queue in this long.
const PURGE_INTERVAL_MS: i64 = 60_000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn new_nonce() -> i64 {
    // Only needs to differ between deliveries of one message; random is simplest.
    i64::from_ne_bytes(
        uuid::Uuid::new_v4().as_bytes()[..8]
            .try_into()
            .expect("8 bytes"),
    )
}

fn receipt_handle(queue_id: i64, seq: i64, nonce: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("kiln:{queue_id}:{seq}:{nonce}"))
}

/// `(queue id, message sequence, nonce)` of a receipt handle.
fn parse_receipt_handle(handle: &str) -> Option<(i64, i64, i64)> {
    let bytes = URL_SAFE_NO_PAD.decode(handle).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.strip_prefix("kiln:")?.split(':');
    let queue_id = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let nonce = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((queue_id, seq, nonce))
}

impl QueueService {
    /// Opens (creating if needed) `DATA_DIR/queues.db`, loads every queue and message into
    /// memory, and starts the writer and the sweeper (expiry) threads.
    pub fn open(data_dir: &Path, account: AccountContext) -> Result<Self, QueueError> {
        let (writer, loaded) = store::open(data_dir)?;
        let now = now_ms();
        let next_seq = store::first_free_seq(&loaded, now);
        let mut queues = BTreeMap::new();
        let mut by_id = BTreeMap::new();
        let mut next_queue_id = 1;
        for row in loaded.queues {
            let settings: QueueSettings = serde_json::from_str(&row.settings)
                .map_err(|e| StoreError::CorruptRecord(format!("settings of {}: {e}", row.name)))?;
            let tags: BTreeMap<String, String> = serde_json::from_str(&row.tags)
                .map_err(|e| StoreError::CorruptRecord(format!("tags of {}: {e}", row.name)))?;
            let mut state = QueueState::new(settings, tags, row.created_s);
            state.modified_s = row.modified_s;
            let queue = Arc::new(Queue::new(
                row.id,
                row.name.clone(),
                queue_arn(&account, &row.name),
                url_path(&account, &row.name),
                state,
            ));
            next_queue_id = next_queue_id.max(row.id + 1);
            by_id.insert(row.id, Arc::clone(&queue));
            queues.insert(row.name, queue);
        }
        for row in loaded.messages {
            let Some(queue) = by_id.get(&row.queue_id) else {
                continue;
            };
            let attributes = store::decode_attributes(row.attributes.as_deref())?;
            let message = Message {
                seq: row.seq,
                md5_of_body: md5_hex(row.body.as_bytes()),
                md5_of_attributes: md5_of_message_attributes(&attributes),
                message_id: row.message_id,
                body: row.body,
                attributes,
                sent_ms: row.sent_ms,
                sender_id: row.sender_id,
                group_id: row.group_id,
                dedup_id: row.dedup_id,
                trace_header: row.trace_header,
                dlq_source_arn: row.dlq_source_arn,
                receive_count: row.receive_count,
                first_receive_ms: row.first_receive_ms,
                visible_at_ms: row.visible_at_ms,
                receipt_nonce: row.receipt_nonce,
            };
            queue.lock().insert(message, now);
        }
        for row in loaded.dedup {
            if let Some(queue) = by_id.get(&row.queue_id) {
                queue.lock().dedup.insert(
                    row.dedup_id,
                    DedupEntry {
                        message_id: row.message_id,
                        sequence_number: row.sequence_number,
                        at_ms: row.at_ms,
                    },
                );
            }
        }
        let service = QueueService {
            inner: Arc::new(Inner {
                account,
                writer,
                queues: RwLock::new(queues),
                control: tokio::sync::Mutex::new(()),
                next_seq: AtomicI64::new(next_seq),
                next_queue_id: AtomicI64::new(next_queue_id),
                stopping: AtomicBool::new(false),
                sweeper: std::sync::Mutex::new(None),
            }),
        };
        let weak = Arc::downgrade(&service.inner);
        let sweeper = std::thread::Builder::new()
            .name("kiln-queues-sweeper".into())
            .spawn(move || sweep_loop(&weak))
            .map_err(|source| StoreError::Io {
                path: data_dir.to_owned(),
                source,
            })?;
        *service
            .inner
            .sweeper
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sweeper);
        Ok(service)
    }

    /// Stops the sweeper and the writer after committing what is queued. Idempotent.
    pub fn shutdown(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        let sweeper = self
            .inner
            .sweeper
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(sweeper) = sweeper {
            let _ = sweeper.join();
        }
        self.inner.writer.stop();
    }

    /// How many transactions the queue writer has committed since start-up: with
    /// concurrent callers, fewer than the writes requested (group commit).
    pub fn commits(&self) -> u64 {
        self.inner.writer.commits()
    }

    /// The account and region of every queue.
    pub fn account(&self) -> &AccountContext {
        &self.inner.account
    }

    fn queues(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Queue>>> {
        self.inner
            .queues
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Finds a queue by name or ARN.
    pub(crate) fn resolve(&self, name_or_arn: &str) -> Result<Arc<Queue>, QueueError> {
        let name = match name_or_arn.strip_prefix("arn:") {
            Some(_) => {
                let prefix = format!(
                    "arn:{}:sqs:{}:{}:",
                    self.inner.account.partition,
                    self.inner.account.region,
                    self.inner.account.account_id
                );
                name_or_arn
                    .strip_prefix(&prefix)
                    .ok_or(QueueError::QueueDoesNotExist)?
            }
            None => name_or_arn,
        };
        self.queues()
            .get(name)
            .cloned()
            .ok_or(QueueError::QueueDoesNotExist)
    }

    fn info(queue: &Queue, state: &QueueState) -> QueueInfo {
        QueueInfo {
            name: queue.name.clone(),
            url_path: queue.url_path.clone(),
            arn: queue.arn.clone(),
            fifo: state.settings.fifo_queue,
            visibility_timeout: Duration::from_secs(u64::from(state.settings.visibility_timeout)),
            redrive_policy: state.settings.redrive_policy.as_ref().map(Into::into),
        }
    }

    /// The queue with this ARN, if it exists.
    pub fn queue_by_arn(&self, arn: &str) -> Option<QueueInfo> {
        let queue = self.resolve(arn).ok()?;
        let state = queue.lock();
        Some(Self::info(&queue, &state))
    }

    /// The queue with this name or ARN.
    pub fn queue_info(&self, name_or_arn: &str) -> Result<QueueInfo, QueueError> {
        let queue = self.resolve(name_or_arn)?;
        let state = queue.lock();
        Ok(Self::info(&queue, &state))
    }

    /// Every queue whose name starts with `prefix`, by name.
    pub fn list_queues(&self, prefix: &str) -> Vec<QueueInfo> {
        let queues: Vec<Arc<Queue>> = self
            .queues()
            .range(prefix.to_owned()..)
            .take_while(|(name, _)| name.starts_with(prefix))
            .map(|(_, queue)| Arc::clone(queue))
            .collect();
        queues
            .iter()
            .map(|queue| Self::info(queue, &queue.lock()))
            .collect()
    }

    /// Creates a queue, or returns the existing one if every given attribute matches it.
    pub async fn create_queue(
        &self,
        name: &str,
        attributes: &BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
    ) -> Result<QueueInfo, QueueError> {
        let fifo = match attributes.get("FifoQueue") {
            Some(value) => match value.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(QueueError::InvalidAttributeValue(
                        "Invalid value for the parameter FifoQueue.".into(),
                    ));
                }
            },
            None => false,
        };
        validate_queue_name(name, fifo)?;
        let mut settings = QueueSettings::defaults(fifo);
        for (attribute, value) in attributes {
            settings.apply(attribute, value, true)?;
        }
        let _control = self.inner.control.lock().await;
        let arn = queue_arn(&self.inner.account, name);
        if let Some(redrive) = &settings.redrive_policy {
            self.check_dead_letter_target(&arn, fifo, &redrive.dead_letter_target_arn)?;
        }
        if let Some(existing) = self.queues().get(name).cloned() {
            let state = existing.lock();
            for attribute in attributes.keys() {
                if settings.render(attribute) != state.settings.render(attribute) {
                    return Err(QueueError::QueueNameExists(attribute.clone()));
                }
            }
            if !attributes.contains_key("FifoQueue") && state.settings.fifo_queue != fifo {
                return Err(QueueError::QueueNameExists("FifoQueue".into()));
            }
            return Ok(Self::info(&existing, &state));
        }
        let id = self.inner.next_queue_id.fetch_add(1, Ordering::SeqCst);
        let created_s = now_ms() / 1000;
        let row = QueueRow {
            id,
            name: name.to_owned(),
            settings: serde_json::to_string(&settings).expect("settings serialise"),
            tags: serde_json::to_string(&tags).expect("tags serialise"),
            created_s,
            modified_s: created_s,
        };
        self.inner
            .writer
            .write(vec![Mutation::PutQueue(row)], None)
            .await?;
        let queue = Arc::new(Queue::new(
            id,
            name.to_owned(),
            arn,
            url_path(&self.inner.account, name),
            QueueState::new(settings, tags, created_s),
        ));
        let info = Self::info(&queue, &queue.lock());
        self.inner
            .queues
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), queue);
        Ok(info)
    }

    fn check_dead_letter_target(
        &self,
        source_arn: &str,
        fifo: bool,
        target_arn: &str,
    ) -> Result<(), QueueError> {
        let invalid = |reason: &str| {
            QueueError::invalid_value(
                "RedrivePolicy",
                format!("{{\"deadLetterTargetArn\":\"{target_arn}\"}}"),
                reason,
            )
        };
        let target = self
            .resolve(target_arn)
            .map_err(|_| invalid("Dead letter target does not exist."))?;
        let state = target.lock();
        if state.settings.fifo_queue != fifo {
            return Err(invalid(if fifo {
                "Dead-letter queue must be FIFO queue too."
            } else {
                "Dead-letter queue of a standard queue must be a standard queue."
            }));
        }
        if !crate::settings::redrive_allowed(
            state.settings.redrive_allow_policy.as_deref(),
            source_arn,
        ) {
            return Err(invalid(
                "Queue is not allowed to use the dead-letter target by its RedriveAllowPolicy.",
            ));
        }
        Ok(())
    }

    /// Deletes a queue and its messages.
    pub async fn delete_queue(&self, name_or_arn: &str) -> Result<(), QueueError> {
        let _control = self.inner.control.lock().await;
        let queue = self.resolve(name_or_arn)?;
        self.inner
            .writer
            .write(vec![Mutation::DeleteQueue { id: queue.id }], None)
            .await?;
        self.inner
            .queues
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&queue.name);
        let mut state = queue.lock();
        state.deleted = true;
        state.purge();
        drop(state);
        queue.arrivals.notify_waiters();
        Ok(())
    }

    /// Deletes every message of a queue; refused within 60 seconds of the last purge, as SQS
    /// refuses it.
    pub async fn purge_queue(&self, name_or_arn: &str) -> Result<(), QueueError> {
        let queue = self.resolve(name_or_arn)?;
        let answer = {
            let mut state = queue.lock();
            let now = now_ms();
            if state
                .last_purge_ms
                .is_some_and(|last| now - last < PURGE_INTERVAL_MS)
            {
                return Err(QueueError::PurgeQueueInProgress(queue.name.clone()));
            }
            state.last_purge_ms = Some(now);
            state.purge();
            self.inner
                .writer
                .enqueue(vec![Mutation::PurgeQueue { queue_id: queue.id }], None)
        };
        answer.await.map_err(|_| StoreError::WriterStopped)??;
        Ok(())
    }

    /// Queue attributes by name (`All` for every one); unknown names are refused.
    pub fn get_attributes(
        &self,
        name_or_arn: &str,
        names: &[String],
    ) -> Result<BTreeMap<String, String>, QueueError> {
        let queue = self.resolve(name_or_arn)?;
        for name in names {
            if name != "All"
                && !SETTABLE_ATTRIBUTES.contains(&name.as_str())
                && !COMPUTED_ATTRIBUTES.contains(&name.as_str())
                && name != "FifoQueue"
            {
                return Err(QueueError::InvalidAttributeName(format!(
                    "Unknown Attribute {name}."
                )));
            }
        }
        let all = names.iter().any(|n| n == "All");
        let mut state = queue.lock();
        let (visible, inflight, delayed) = state.counts(now_ms());
        let mut attributes = BTreeMap::new();
        let mut put = |name: &str, value: String| {
            if all || names.iter().any(|n| n == name) {
                attributes.insert(name.to_owned(), value);
            }
        };
        put("QueueArn", queue.arn.clone());
        put("ApproximateNumberOfMessages", visible.to_string());
        put(
            "ApproximateNumberOfMessagesNotVisible",
            inflight.to_string(),
        );
        put("ApproximateNumberOfMessagesDelayed", delayed.to_string());
        put("CreatedTimestamp", state.created_s.to_string());
        put("LastModifiedTimestamp", state.modified_s.to_string());
        for name in state.settings.names() {
            if let Some(value) = state.settings.render(name) {
                put(name, value);
            }
        }
        Ok(attributes)
    }

    /// Changes queue attributes.
    pub async fn set_attributes(
        &self,
        name_or_arn: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), QueueError> {
        let _control = self.inner.control.lock().await;
        let queue = self.resolve(name_or_arn)?;
        let (mut settings, tags, created_s) = {
            let state = queue.lock();
            (state.settings.clone(), state.tags.clone(), state.created_s)
        };
        for (name, value) in attributes {
            settings.apply(name, value, false)?;
        }
        if let Some(redrive) = &settings.redrive_policy {
            self.check_dead_letter_target(
                &queue.arn,
                settings.fifo_queue,
                &redrive.dead_letter_target_arn,
            )?;
        }
        self.persist_queue(&queue, settings, tags, created_s).await
    }

    async fn persist_queue(
        &self,
        queue: &Queue,
        settings: QueueSettings,
        tags: BTreeMap<String, String>,
        created_s: i64,
    ) -> Result<(), QueueError> {
        let modified_s = now_ms() / 1000;
        let row = QueueRow {
            id: queue.id,
            name: queue.name.clone(),
            settings: serde_json::to_string(&settings).expect("settings serialise"),
            tags: serde_json::to_string(&tags).expect("tags serialise"),
            created_s,
            modified_s,
        };
        self.inner
            .writer
            .write(vec![Mutation::PutQueue(row)], None)
            .await?;
        let mut state = queue.lock();
        state.settings = settings;
        state.tags = tags;
        state.modified_s = modified_s;
        drop(state);
        // A shorter delay or visibility may make messages receivable for waiting polls.
        queue.arrivals.notify_waiters();
        Ok(())
    }

    /// The queue's tags.
    pub fn list_tags(&self, name_or_arn: &str) -> Result<BTreeMap<String, String>, QueueError> {
        Ok(self.resolve(name_or_arn)?.lock().tags.clone())
    }

    /// Adds or replaces tags.
    pub async fn tag_queue(
        &self,
        name_or_arn: &str,
        tags: BTreeMap<String, String>,
    ) -> Result<(), QueueError> {
        let _control = self.inner.control.lock().await;
        let queue = self.resolve(name_or_arn)?;
        let (settings, mut current, created_s) = {
            let state = queue.lock();
            (state.settings.clone(), state.tags.clone(), state.created_s)
        };
        current.extend(tags);
        if current.len() > 50 {
            return Err(QueueError::InvalidParameterValue(
                "Too many tags added for queue. A queue can have at most 50 tags.".into(),
            ));
        }
        self.persist_queue(&queue, settings, current, created_s)
            .await
    }

    /// Removes tags by key.
    pub async fn untag_queue(&self, name_or_arn: &str, keys: &[String]) -> Result<(), QueueError> {
        let _control = self.inner.control.lock().await;
        let queue = self.resolve(name_or_arn)?;
        let (settings, mut current, created_s) = {
            let state = queue.lock();
            (state.settings.clone(), state.tags.clone(), state.created_s)
        };
        for key in keys {
            current.remove(key);
        }
        self.persist_queue(&queue, settings, current, created_s)
            .await
    }

    /// Queues whose redrive policy names this queue as dead-letter queue, by name.
    pub fn dead_letter_sources(&self, name_or_arn: &str) -> Result<Vec<QueueInfo>, QueueError> {
        let target = self.resolve(name_or_arn)?;
        let queues: Vec<Arc<Queue>> = self.queues().values().cloned().collect();
        Ok(queues
            .iter()
            .filter_map(|queue| {
                let state = queue.lock();
                let points_here = state
                    .settings
                    .redrive_policy
                    .as_ref()
                    .is_some_and(|p| p.dead_letter_target_arn == target.arn);
                points_here.then(|| Self::info(queue, &state))
            })
            .collect())
    }

    /// Sends one message; returns once it is durable.
    pub async fn send(
        &self,
        name_or_arn: &str,
        request: SendRequest,
    ) -> Result<SendOutcome, QueueError> {
        self.send_batch(name_or_arn, vec![request])
            .await?
            .pop()
            .expect("one outcome per request")
    }

    /// Sends several messages in one durable write; one outcome per request, in order. The
    /// outer error is for the queue as a whole (it does not exist, or the write failed).
    pub async fn send_batch(
        &self,
        name_or_arn: &str,
        requests: Vec<SendRequest>,
    ) -> Result<Vec<Result<SendOutcome, QueueError>>, QueueError> {
        let queue = self.resolve(name_or_arn)?;
        let now = now_ms();
        let mut outcomes = Vec::with_capacity(requests.len());
        let mut mutations = Vec::with_capacity(requests.len());
        let mut staged = Vec::with_capacity(requests.len());
        let answer = {
            let mut state = queue.lock();
            if state.deleted {
                return Err(QueueError::QueueDoesNotExist);
            }
            for request in requests {
                match self.stage_message(&mut state, request, now) {
                    Ok((outcome, message)) => {
                        if let Some(message) = message {
                            mutations.push(Mutation::InsertMessage(message.to_row(queue.id)));
                            if let Some(dedup) = &message.dedup_id
                                && state.settings.fifo_queue
                            {
                                mutations.push(Mutation::PutDedup(DedupRow {
                                    queue_id: queue.id,
                                    dedup_id: dedup.clone(),
                                    message_id: message.message_id.clone(),
                                    sequence_number: sequence_number(message.seq),
                                    at_ms: now,
                                }));
                            }
                            staged.push(message);
                        }
                        outcomes.push(Ok(outcome));
                    }
                    Err(error) => outcomes.push(Err(error)),
                }
            }
            if mutations.is_empty() {
                return Ok(outcomes);
            }
            let target = Arc::clone(&queue);
            // Enqueued under the queue's lock, so commit order (and the order in which the
            // messages become visible) is sequence order.
            self.inner.writer.enqueue(
                mutations,
                Some(Box::new(move || {
                    let now = now_ms();
                    let mut state = target.lock();
                    if !state.deleted {
                        for message in staged {
                            state.insert(message, now);
                        }
                    }
                    drop(state);
                    target.arrivals.notify_waiters();
                })),
            )
        };
        answer.await.map_err(|_| StoreError::WriterStopped)??;
        Ok(outcomes)
    }

    /// Validates a send and builds its message (`None` for a FIFO duplicate).
    fn stage_message(
        &self,
        state: &mut QueueState,
        request: SendRequest,
        now: i64,
    ) -> Result<(SendOutcome, Option<Message>), QueueError> {
        let settings = &state.settings;
        validate_body(&request.body)?;
        validate_message_attributes(&request.message_attributes)?;
        let size = request.body.len() + attributes_size(&request.message_attributes);
        if size > settings.maximum_message_size as usize {
            return Err(QueueError::InvalidParameterValue(format!(
                "One or more parameters are invalid. Reason: Message must be shorter than {} bytes.",
                settings.maximum_message_size
            )));
        }
        let delay_ms = match request.delay {
            Some(delay) => {
                let seconds = delay.as_secs();
                if seconds > 900 {
                    return Err(QueueError::invalid_value(
                        "DelaySeconds",
                        seconds,
                        "DelaySeconds must be >= 0 and <= 900.",
                    ));
                }
                if settings.fifo_queue && seconds > 0 {
                    return Err(QueueError::invalid_value(
                        "DelaySeconds",
                        seconds,
                        "The request include parameter that is not valid for this queue type.",
                    ));
                }
                duration_ms(delay)
            }
            None => i64::from(settings.delay_seconds) * 1000,
        };
        if let Some(group) = &request.group_id {
            validate_fifo_id("MessageGroupId", group)?;
        }
        let md5_of_body = md5_hex(request.body.as_bytes());
        let md5_of_attributes = md5_of_message_attributes(&request.message_attributes);
        let md5_of_system_attributes = request.trace_header.as_ref().map(|trace| {
            let system = BTreeMap::from([(
                "AWSTraceHeader".to_owned(),
                MessageAttributeValue {
                    data_type: "String".into(),
                    string_value: Some(trace.clone()),
                    binary_value: None,
                },
            )]);
            md5_of_message_attributes(&system).expect("one attribute")
        });
        let mut dedup_id = None;
        if settings.fifo_queue {
            if request.group_id.is_none() {
                return Err(QueueError::MissingParameter("MessageGroupId"));
            }
            let id = match request.dedup_id {
                Some(id) => {
                    validate_fifo_id("MessageDeduplicationId", &id)?;
                    id
                }
                None if settings.content_based_deduplication => sha256_hex(request.body.as_bytes()),
                None => {
                    return Err(QueueError::InvalidParameterValue(
                        "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly".into(),
                    ));
                }
            };
            if let Some(seen) = state.dedup.get(&id)
                && seen.at_ms + DEDUP_WINDOW_MS > now
            {
                return Ok((
                    SendOutcome {
                        message_id: seen.message_id.clone(),
                        md5_of_body,
                        md5_of_message_attributes: md5_of_attributes,
                        md5_of_system_attributes,
                        sequence_number: Some(seen.sequence_number.clone()),
                    },
                    None,
                ));
            }
            dedup_id = Some(id);
        } else if let Some(id) = &request.dedup_id {
            return Err(QueueError::invalid_value(
                "MessageDeduplicationId",
                id,
                "The request includes a parameter that is not valid for this queue type.",
            ));
        }
        let seq = self.inner.next_seq.fetch_add(1, Ordering::SeqCst);
        let message_id = uuid::Uuid::new_v4().to_string();
        let sequence = settings.fifo_queue.then(|| sequence_number(seq));
        if let Some(id) = &dedup_id {
            state.dedup.insert(
                id.clone(),
                DedupEntry {
                    message_id: message_id.clone(),
                    sequence_number: sequence.clone().unwrap_or_default(),
                    at_ms: now,
                },
            );
        }
        let message = Message {
            seq,
            message_id: message_id.clone(),
            body: request.body,
            attributes: request.message_attributes,
            md5_of_body: md5_of_body.clone(),
            md5_of_attributes: md5_of_attributes.clone(),
            sent_ms: now,
            sender_id: self.inner.account.account_id.clone(),
            group_id: request.group_id,
            dedup_id,
            trace_header: request.trace_header,
            dlq_source_arn: None,
            receive_count: 0,
            first_receive_ms: None,
            visible_at_ms: now + delay_ms,
            receipt_nonce: 0,
        };
        Ok((
            SendOutcome {
                message_id,
                md5_of_body,
                md5_of_message_attributes: md5_of_attributes,
                md5_of_system_attributes,
                sequence_number: sequence,
            },
            Some(message),
        ))
    }

    /// Receives up to `max_messages`, waiting up to `wait` for the first one. The deliveries
    /// (receive count, visibility deadline, receipt) are durable before this returns.
    pub async fn receive(
        &self,
        name_or_arn: &str,
        request: ReceiveRequest,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let queue = self.resolve(name_or_arn)?;
        let max = request.max_messages.clamp(1, 10);
        let deadline = tokio::time::Instant::now() + request.wait;
        loop {
            let arrivals = queue.arrivals.notified();
            let mut arrivals = std::pin::pin!(arrivals);
            arrivals.as_mut().enable();
            let (redrive, dead_letter_queue) = {
                let state = queue.lock();
                if state.deleted {
                    return Err(QueueError::QueueDoesNotExist);
                }
                let redrive = state.settings.redrive_policy.clone();
                drop(state);
                let target = redrive
                    .as_ref()
                    .and_then(|policy| self.resolve(&policy.dead_letter_target_arn).ok());
                (redrive, target)
            };
            let now = now_ms();
            let (delivered, answer, next_change, fifo) = {
                let mut state = queue.lock();
                let visibility_ms = match request.visibility_timeout {
                    Some(timeout) => duration_ms(timeout),
                    None => i64::from(state.settings.visibility_timeout) * 1000,
                };
                let limit = dead_letter_queue
                    .as_ref()
                    .and(redrive.as_ref())
                    .map(|policy| policy.max_receive_count);
                let delivery = state.deliver(max, now, visibility_ms, limit, new_nonce);
                let fifo = state.settings.fifo_queue;
                let next_change = state.next_change_ms();
                drop(state);
                let mut mutations = delivery.mutations;
                let mut on_durable: Option<store::OnDurable> = None;
                if !delivery.redriven.is_empty()
                    && let Some(target) = dead_letter_queue.clone()
                {
                    on_durable = Some(self.move_messages(
                        &queue,
                        target,
                        delivery.redriven,
                        now,
                        &mut mutations,
                    ));
                }
                let answer = (!mutations.is_empty())
                    .then(|| self.inner.writer.enqueue(mutations, on_durable));
                (delivery.messages, answer, next_change, fifo)
            };
            if let Some(answer) = answer {
                answer.await.map_err(|_| StoreError::WriterStopped)??;
            }
            if !delivered.is_empty() {
                return Ok(delivered
                    .into_iter()
                    .map(|message| {
                        let handle = receipt_handle(queue.id, message.seq, message.receipt_nonce);
                        received(&message, handle, fifo)
                    })
                    .collect());
            }
            let now_instant = tokio::time::Instant::now();
            if now_instant >= deadline {
                return Ok(Vec::new());
            }
            // Wake for a new message, or when a delayed or in-flight one becomes visible.
            let mut wake = deadline;
            if let Some(at) = next_change {
                let until =
                    Duration::from_millis(u64::try_from((at - now_ms()).max(1)).unwrap_or(1));
                wake = wake.min(now_instant + until);
            }
            tokio::select! {
                () = arrivals => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Prepares moving `messages` (already removed from `source`) to the dead-letter queue
    /// `target`: their rows join `mutations`, and the returned callback makes them
    /// receivable there once the write is durable. They keep their ids, bodies and
    /// attributes, as SQS's redrive does.
    fn move_messages(
        &self,
        source: &Queue,
        target: Arc<Queue>,
        messages: Vec<Message>,
        now: i64,
        mutations: &mut Vec<Mutation>,
    ) -> store::OnDurable {
        let moved: Vec<Message> = messages
            .into_iter()
            .map(|mut message| {
                message.seq = self.inner.next_seq.fetch_add(1, Ordering::SeqCst);
                message.receive_count = 0;
                message.first_receive_ms = None;
                message.visible_at_ms = now;
                message.dlq_source_arn = Some(source.arn.clone());
                message
            })
            .collect();
        mutations.extend(
            moved
                .iter()
                .map(|m| Mutation::InsertMessage(m.to_row(target.id))),
        );
        Box::new(move || {
            let now = now_ms();
            let mut state = target.lock();
            if !state.deleted {
                for message in moved {
                    state.insert(message, now);
                }
            }
            drop(state);
            target.arrivals.notify_waiters();
        })
    }

    /// Takes received messages out of the queue as its redrive would: to the queue's
    /// dead-letter queue when it has one, else deleted. Lambda does this with the messages of
    /// a recursive loop it stopped. Returns how many went to a dead-letter queue; stale
    /// receipts are skipped, as deletes skip them.
    pub async fn move_to_dead_letter_queue(
        &self,
        name_or_arn: &str,
        receipt_handles: &[String],
    ) -> Result<usize, QueueError> {
        let queue = self.resolve(name_or_arn)?;
        let target = {
            let state = queue.lock();
            state.settings.redrive_policy.clone()
        }
        .and_then(|policy| self.resolve(&policy.dead_letter_target_arn).ok());
        let mut mutations = Vec::new();
        let mut taken = Vec::new();
        {
            let mut state = queue.lock();
            for handle in receipt_handles {
                let (seq, nonce) = Self::parse_handle(&queue, handle)?;
                if let Some(message) = state.take(seq, nonce) {
                    mutations.push(Mutation::DeleteMessage { seq });
                    taken.push(message);
                }
            }
        }
        let moved = if target.is_some() { taken.len() } else { 0 };
        let on_durable = target
            .filter(|_| !taken.is_empty())
            .map(|target| self.move_messages(&queue, target, taken, now_ms(), &mut mutations));
        if !mutations.is_empty() {
            self.inner.writer.write(mutations, on_durable).await?;
        }
        Ok(moved)
    }

    fn parse_handle(queue: &Queue, handle: &str) -> Result<(i64, i64), QueueError> {
        match parse_receipt_handle(handle) {
            Some((queue_id, seq, nonce)) if queue_id == queue.id => Ok((seq, nonce)),
            _ => Err(QueueError::ReceiptHandleIsInvalid(handle.to_owned())),
        }
    }

    /// Deletes a received message. An old receipt of a message received again since, or of a
    /// message already deleted, succeeds without effect (as SQS does).
    pub async fn delete(&self, name_or_arn: &str, receipt_handle: &str) -> Result<(), QueueError> {
        let entry = DeleteEntry {
            id: String::new(),
            receipt_handle: receipt_handle.to_owned(),
        };
        self.delete_batch(name_or_arn, &[entry])
            .await?
            .pop()
            .expect("one outcome per entry")
    }

    /// Deletes several messages in one durable write; one outcome per entry, in order.
    pub async fn delete_batch(
        &self,
        name_or_arn: &str,
        entries: &[DeleteEntry],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        let queue = self.resolve(name_or_arn)?;
        let mut outcomes = Vec::with_capacity(entries.len());
        let mut mutations = Vec::new();
        {
            let mut state = queue.lock();
            for entry in entries {
                match Self::parse_handle(&queue, &entry.receipt_handle) {
                    Ok((seq, nonce)) => {
                        mutations.extend(state.delete(seq, nonce));
                        outcomes.push(Ok(()));
                    }
                    Err(error) => outcomes.push(Err(error)),
                }
            }
        }
        if !mutations.is_empty() {
            self.inner.writer.write(mutations, None).await?;
        }
        Ok(outcomes)
    }

    /// Changes how long a received message stays invisible, counted from now.
    pub async fn change_visibility(
        &self,
        name_or_arn: &str,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        self.change_visibility_batch(name_or_arn, &[(receipt_handle.to_owned(), timeout)])
            .await?
            .pop()
            .expect("one outcome per entry")
    }

    /// [`QueueService::change_visibility`] for several messages in one durable write.
    pub async fn change_visibility_batch(
        &self,
        name_or_arn: &str,
        entries: &[(String, Duration)],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        let queue = self.resolve(name_or_arn)?;
        let now = now_ms();
        let mut outcomes = Vec::with_capacity(entries.len());
        let mut mutations = Vec::new();
        {
            let mut state = queue.lock();
            for (handle, timeout) in entries {
                let outcome = Self::parse_handle(&queue, handle).and_then(|(seq, nonce)| {
                    if timeout.as_secs() > 43_200 {
                        return Err(QueueError::invalid_value(
                            "VisibilityTimeout",
                            timeout.as_secs(),
                            "Total VisibilityTimeout for the message is beyond the limit [43200 seconds]",
                        ));
                    }
                    state
                        .change_visibility(seq, nonce, now, duration_ms(*timeout))
                        .ok_or(QueueError::MessageNotInflight)
                });
                match outcome {
                    Ok(mutation) => {
                        mutations.push(mutation);
                        outcomes.push(Ok(()));
                    }
                    Err(error) => outcomes.push(Err(error)),
                }
            }
        }
        if !mutations.is_empty() {
            self.inner.writer.write(mutations, None).await?;
            queue.arrivals.notify_waiters();
        }
        Ok(outcomes)
    }

    /// Expires messages past their retention and forgets old deduplication ids (in the
    /// database too when `prune_stored_dedup`).
    fn sweep(&self, prune_stored_dedup: bool) {
        let now = now_ms();
        let queues: Vec<Arc<Queue>> = self.queues().values().cloned().collect();
        for queue in queues {
            let mut state = queue.lock();
            let retention_ms = i64::from(state.settings.message_retention_period) * 1000;
            if state
                .oldest_sent_ms()
                .is_some_and(|oldest| oldest + retention_ms <= now)
            {
                let deletions = state.expire(now);
                self.inner.writer.write_in_background(deletions);
            }
            if state.settings.fifo_queue {
                state.prune_dedup(now - DEDUP_WINDOW_MS);
            }
        }
        if prune_stored_dedup {
            self.inner
                .writer
                .write_in_background(vec![Mutation::PruneDedup {
                    before_ms: now - DEDUP_WINDOW_MS,
                }]);
        }
    }
}

fn sweep_loop(inner: &std::sync::Weak<Inner>) {
    let mut ticks: u64 = 0;
    loop {
        std::thread::sleep(SWEEP_INTERVAL);
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if inner.stopping.load(Ordering::SeqCst) {
            return;
        }
        ticks += 1;
        QueueService { inner }.sweep(ticks.is_multiple_of(60));
    }
}

fn queue_arn(account: &AccountContext, name: &str) -> String {
    format!(
        "arn:{}:sqs:{}:{}:{}",
        account.partition, account.region, account.account_id, name
    )
}

fn url_path(account: &AccountContext, name: &str) -> String {
    format!("/{}/{}", account.account_id, name)
}

fn validate_body(body: &str) -> Result<(), QueueError> {
    if body.is_empty() {
        return Err(QueueError::MissingParameter("MessageBody"));
    }
    let allowed = |c: char| matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}');
    if body.chars().all(allowed) {
        Ok(())
    } else {
        Err(QueueError::InvalidMessageContents)
    }
}

fn attributes_size(attributes: &BTreeMap<String, MessageAttributeValue>) -> usize {
    attributes
        .iter()
        .map(|(name, value)| {
            name.len()
                + value.data_type.len()
                + value.string_value.as_ref().map_or(0, String::len)
                + value.binary_value.as_ref().map_or(0, Vec::len)
        })
        .sum()
}

/// SQS's rules for message attribute names, types and values.
pub fn validate_message_attributes(
    attributes: &BTreeMap<String, MessageAttributeValue>,
) -> Result<(), QueueError> {
    if attributes.len() > MAX_MESSAGE_ATTRIBUTES {
        return Err(QueueError::InvalidParameterValue(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [{MAX_MESSAGE_ATTRIBUTES}].",
            attributes.len()
        )));
    }
    for (name, value) in attributes {
        let lower = name.to_ascii_lowercase();
        let name_ok = !name.is_empty()
            && name.len() <= 256
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
            && !name.starts_with('.')
            && !name.ends_with('.')
            && !name.contains("..")
            && !lower.starts_with("aws.")
            && !lower.starts_with("amazon.");
        if !name_ok {
            return Err(QueueError::InvalidParameterValue(format!(
                "Message (user) attribute name '{name}' is invalid."
            )));
        }
        let base = value.data_type.split('.').next().unwrap_or_default();
        match base {
            "String" | "Number" => {
                let Some(text) = value.string_value.as_deref().filter(|s| !s.is_empty()) else {
                    return Err(QueueError::InvalidParameterValue(format!(
                        "The message attribute '{name}' must contain non-empty message attribute value for message attribute type '{base}'."
                    )));
                };
                if base == "Number" && text.trim().parse::<f64>().is_err() {
                    return Err(QueueError::InvalidParameterValue(format!(
                        "Can't cast the value of message (user) attribute '{name}' to a number."
                    )));
                }
                validate_body(text).map_err(|_| QueueError::InvalidMessageContents)?;
            }
            "Binary" => {
                if value.binary_value.as_ref().is_none_or(Vec::is_empty) {
                    return Err(QueueError::InvalidParameterValue(format!(
                        "The message attribute '{name}' must contain non-empty message attribute value for message attribute type 'Binary'."
                    )));
                }
            }
            _ => {
                return Err(QueueError::InvalidParameterValue(format!(
                    "The type of message (user) attribute '{name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String."
                )));
            }
        }
    }
    Ok(())
}

fn validate_fifo_id(parameter: &str, value: &str) -> Result<(), QueueError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b.is_ascii_punctuation());
    if ok {
        Ok(())
    } else {
        Err(QueueError::invalid_value(
            parameter,
            value,
            &format!(
                "{parameter} can only include alphanumeric and punctuation characters. 1 to 128 in length."
            ),
        ))
    }
}
