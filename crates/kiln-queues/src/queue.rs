//! One queue's in-memory state: its messages and the indexes receives work from.
//!
//! A message is in exactly one place: `ready` (visible now, by sequence), `delayed` (not yet
//! visible, never received) or `inflight` (received, invisible until its deadline). Moving
//! messages whose time has come into `ready` happens lazily, at the start of each operation
//! (`promote`), so no timer per message is needed. Receives never touch the database.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use crate::model::{MessageAttributeValue, ReceivedMessage};
use crate::settings::QueueSettings;
use crate::store::{MessageRow, Mutation};

/// A queue: fixed identity, mutable state behind a lock, and the signal long polls wait on.
#[derive(Debug)]
pub(crate) struct Queue {
    pub id: i64,
    pub name: String,
    pub arn: String,
    pub url_path: String,
    state: Mutex<QueueState>,
    /// Woken when messages may have become receivable.
    pub arrivals: tokio::sync::Notify,
}

impl Queue {
    pub(crate) fn new(
        id: i64,
        name: String,
        arn: String,
        url_path: String,
        state: QueueState,
    ) -> Self {
        Queue {
            id,
            name,
            arn,
            url_path,
            state: Mutex::new(state),
            arrivals: tokio::sync::Notify::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, QueueState> {
        // The state is only changed by code that cannot panic halfway through an update of
        // several indexes; a poisoned lock is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A FIFO deduplication id seen within the last five minutes.
#[derive(Debug, Clone)]
pub(crate) struct DedupEntry {
    pub message_id: String,
    pub sequence_number: String,
    pub at_ms: i64,
}

/// A stored message.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub seq: i64,
    pub message_id: String,
    pub body: String,
    pub attributes: BTreeMap<String, MessageAttributeValue>,
    pub md5_of_body: String,
    pub md5_of_attributes: Option<String>,
    pub sent_ms: i64,
    pub sender_id: String,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    pub trace_header: Option<String>,
    pub dlq_source_arn: Option<String>,
    pub receive_count: i64,
    pub first_receive_ms: Option<i64>,
    pub visible_at_ms: i64,
    pub receipt_nonce: i64,
}

impl Message {
    pub(crate) fn to_row(&self, queue_id: i64) -> MessageRow {
        MessageRow {
            seq: self.seq,
            queue_id,
            message_id: self.message_id.clone(),
            body: self.body.clone(),
            attributes: crate::store::encode_attributes(&self.attributes),
            sent_ms: self.sent_ms,
            sender_id: self.sender_id.clone(),
            group_id: self.group_id.clone(),
            dedup_id: self.dedup_id.clone(),
            trace_header: self.trace_header.clone(),
            dlq_source_arn: self.dlq_source_arn.clone(),
            receive_count: self.receive_count,
            first_receive_ms: self.first_receive_ms,
            visible_at_ms: self.visible_at_ms,
            receipt_nonce: self.receipt_nonce,
        }
    }

    fn delivery_update(&self) -> Mutation {
        Mutation::UpdateDelivery {
            seq: self.seq,
            receive_count: self.receive_count,
            first_receive_ms: self.first_receive_ms,
            visible_at_ms: self.visible_at_ms,
            receipt_nonce: self.receipt_nonce,
        }
    }
}

/// `SequenceNumber` of a FIFO message: 20 digits, increasing with the internal sequence.
pub(crate) fn sequence_number(seq: i64) -> String {
    format!(
        "{}",
        10_000_000_000_000_000_000_u128 + u128::try_from(seq).unwrap_or(0)
    )
}

/// The mutable part of a queue.
#[derive(Debug)]
pub(crate) struct QueueState {
    pub settings: QueueSettings,
    pub tags: BTreeMap<String, String>,
    pub created_s: i64,
    pub modified_s: i64,
    /// Set when the queue is deleted; holders of the `Arc` then see it as gone.
    pub deleted: bool,
    messages: HashMap<i64, Message>,
    ready: BTreeSet<i64>,
    delayed: BTreeSet<(i64, i64)>,
    inflight: BTreeSet<(i64, i64)>,
    /// FIFO: how many messages of each group are in flight (a group with any is locked).
    group_inflight: HashMap<String, u32>,
    pub dedup: HashMap<String, DedupEntry>,
    /// When PurgeQueue last ran (SQS allows one every 60 seconds); not persisted.
    pub last_purge_ms: Option<i64>,
}

/// What one receive decided; the caller persists `mutations` before answering.
#[derive(Debug, Default)]
pub(crate) struct Delivery {
    pub messages: Vec<Message>,
    pub mutations: Vec<Mutation>,
    /// Messages that exceeded `maxReceiveCount`: removed here, to be added to the DLQ.
    pub redriven: Vec<Message>,
}

impl QueueState {
    pub(crate) fn new(
        settings: QueueSettings,
        tags: BTreeMap<String, String>,
        created_s: i64,
    ) -> Self {
        QueueState {
            settings,
            tags,
            created_s,
            modified_s: created_s,
            deleted: false,
            messages: HashMap::new(),
            ready: BTreeSet::new(),
            delayed: BTreeSet::new(),
            inflight: BTreeSet::new(),
            group_inflight: HashMap::new(),
            dedup: HashMap::new(),
            last_purge_ms: None,
        }
    }

    /// Adds a message where its state says it belongs.
    pub(crate) fn insert(&mut self, message: Message, now_ms: i64) {
        let seq = message.seq;
        if message.visible_at_ms <= now_ms {
            self.ready.insert(seq);
        } else if message.receive_count > 0 {
            self.inflight.insert((message.visible_at_ms, seq));
            if let Some(group) = self.fifo_group(&message) {
                *self.group_inflight.entry(group).or_default() += 1;
            }
        } else {
            self.delayed.insert((message.visible_at_ms, seq));
        }
        self.messages.insert(seq, message);
    }

    fn fifo_group(&self, message: &Message) -> Option<String> {
        if self.settings.fifo_queue {
            message.group_id.clone()
        } else {
            None
        }
    }

    fn release_group(&mut self, message: &Message) {
        if let Some(group) = self.fifo_group(message)
            && let Some(count) = self.group_inflight.get_mut(&group)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.group_inflight.remove(&group);
            }
        }
    }

    /// Makes messages whose delay or visibility timeout has ended receivable.
    pub(crate) fn promote(&mut self, now_ms: i64) {
        while let Some(&(at, seq)) = self.delayed.first() {
            if at > now_ms {
                break;
            }
            self.delayed.pop_first();
            self.ready.insert(seq);
        }
        while let Some(&(at, seq)) = self.inflight.first() {
            if at > now_ms {
                break;
            }
            self.inflight.pop_first();
            self.ready.insert(seq);
            if let Some(message) = self.messages.get(&seq).cloned() {
                self.release_group(&message);
            }
        }
    }

    /// When the next delayed or in-flight message becomes receivable.
    pub(crate) fn next_change_ms(&self) -> Option<i64> {
        let delayed = self.delayed.first().map(|&(at, _)| at);
        let inflight = self.inflight.first().map(|&(at, _)| at);
        match (delayed, inflight) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Picks up to `max` receivable messages and makes them in flight for `visibility_ms`.
    /// Messages already received `max_receive_count` times go to `redriven` instead.
    /// `new_nonce` gives each delivery its own receipt.
    pub(crate) fn deliver(
        &mut self,
        max: usize,
        now_ms: i64,
        visibility_ms: i64,
        max_receive_count: Option<u32>,
        mut new_nonce: impl FnMut() -> i64,
    ) -> Delivery {
        self.promote(now_ms);
        let mut delivery = Delivery::default();
        let fifo = self.settings.fifo_queue;
        // FIFO: a group with messages in flight delivers nothing until they are done; within
        // one receive, several messages of one group may go out, in order.
        let mut picked = Vec::new();
        for &seq in &self.ready {
            if picked.len() >= max {
                break;
            }
            if fifo
                && let Some(group) = self.messages.get(&seq).and_then(|m| m.group_id.as_ref())
                && self.group_inflight.contains_key(group)
            {
                continue;
            }
            picked.push(seq);
        }
        for seq in picked {
            self.ready.remove(&seq);
            let Some(mut message) = self.messages.remove(&seq) else {
                continue;
            };
            if let Some(limit) = max_receive_count
                && message.receive_count >= i64::from(limit)
            {
                delivery.mutations.push(Mutation::DeleteMessage { seq });
                delivery.redriven.push(message);
                continue;
            }
            message.receive_count += 1;
            message.first_receive_ms.get_or_insert(now_ms);
            message.visible_at_ms = now_ms + visibility_ms;
            message.receipt_nonce = new_nonce();
            delivery.mutations.push(message.delivery_update());
            let copy = message.clone();
            // Re-inserted by state: a zero visibility timeout leaves it receivable at once.
            self.insert(message, now_ms);
            delivery.messages.push(copy);
        }
        delivery
    }

    /// Deletes the message if `nonce` is its latest receipt. A message already gone, or a
    /// stale receipt, succeeds without effect (as SQS documents for old receipt handles).
    pub(crate) fn delete(&mut self, seq: i64, nonce: i64) -> Option<Mutation> {
        self.take(seq, nonce)
            .map(|_| Mutation::DeleteMessage { seq })
    }

    /// Removes the message if `nonce` is its latest receipt, and hands it over.
    pub(crate) fn take(&mut self, seq: i64, nonce: i64) -> Option<Message> {
        let message = self.messages.get(&seq)?;
        if message.receipt_nonce != nonce || message.receive_count == 0 {
            return None;
        }
        let message = self.messages.remove(&seq)?;
        self.unindex(&message);
        Some(message)
    }

    /// Removes a message from whichever index holds it (releasing its FIFO group if it was
    /// in flight).
    fn unindex(&mut self, message: &Message) {
        let seq = message.seq;
        if self.ready.remove(&seq) || self.delayed.remove(&(message.visible_at_ms, seq)) {
            return;
        }
        if self.inflight.remove(&(message.visible_at_ms, seq)) {
            self.release_group(message);
        }
    }

    /// Changes the visibility deadline of an in-flight message; `None` if it is not in flight
    /// under this receipt.
    pub(crate) fn change_visibility(
        &mut self,
        seq: i64,
        nonce: i64,
        now_ms: i64,
        timeout_ms: i64,
    ) -> Option<Mutation> {
        self.promote(now_ms);
        let message = self.messages.get(&seq)?;
        if message.receipt_nonce != nonce || !self.inflight.contains(&(message.visible_at_ms, seq))
        {
            return None;
        }
        let mut message = self.messages.remove(&seq)?;
        self.unindex(&message);
        message.visible_at_ms = now_ms + timeout_ms;
        let mutation = message.delivery_update();
        self.insert(message, now_ms);
        Some(mutation)
    }

    /// Removes messages older than the retention period; returns their deletions.
    pub(crate) fn expire(&mut self, now_ms: i64) -> Vec<Mutation> {
        let retention_ms = i64::from(self.settings.message_retention_period) * 1000;
        let expired: Vec<i64> = self
            .messages
            .values()
            .filter(|m| m.sent_ms + retention_ms <= now_ms)
            .map(|m| m.seq)
            .collect();
        expired
            .into_iter()
            .filter_map(|seq| {
                let message = self.messages.remove(&seq)?;
                self.unindex(&message);
                Some(Mutation::DeleteMessage { seq })
            })
            .collect()
    }

    /// Forgets FIFO deduplication ids older than the window.
    pub(crate) fn prune_dedup(&mut self, before_ms: i64) {
        self.dedup.retain(|_, entry| entry.at_ms >= before_ms);
    }

    /// Drops every message.
    pub(crate) fn purge(&mut self) {
        self.messages.clear();
        self.ready.clear();
        self.delayed.clear();
        self.inflight.clear();
        self.group_inflight.clear();
    }

    /// (visible, in flight, delayed) as GetQueueAttributes counts them.
    pub(crate) fn counts(&mut self, now_ms: i64) -> (usize, usize, usize) {
        self.promote(now_ms);
        (self.ready.len(), self.inflight.len(), self.delayed.len())
    }

    pub(crate) fn oldest_sent_ms(&self) -> Option<i64> {
        self.messages.values().map(|m| m.sent_ms).min()
    }
}

/// Builds the caller's view of a delivered message.
pub(crate) fn received(message: &Message, receipt_handle: String, fifo: bool) -> ReceivedMessage {
    let mut system = BTreeMap::new();
    system.insert("SenderId".to_owned(), message.sender_id.clone());
    system.insert("SentTimestamp".to_owned(), message.sent_ms.to_string());
    system.insert(
        "ApproximateReceiveCount".to_owned(),
        message.receive_count.to_string(),
    );
    if let Some(first) = message.first_receive_ms {
        system.insert(
            "ApproximateFirstReceiveTimestamp".to_owned(),
            first.to_string(),
        );
    }
    if let Some(group) = &message.group_id {
        system.insert("MessageGroupId".to_owned(), group.clone());
    }
    if fifo {
        if let Some(dedup) = &message.dedup_id {
            system.insert("MessageDeduplicationId".to_owned(), dedup.clone());
        }
        system.insert("SequenceNumber".to_owned(), sequence_number(message.seq));
    }
    if let Some(trace) = &message.trace_header {
        system.insert("AWSTraceHeader".to_owned(), trace.clone());
    }
    if let Some(source) = &message.dlq_source_arn {
        system.insert("DeadLetterQueueSourceArn".to_owned(), source.clone());
    }
    ReceivedMessage {
        message_id: message.message_id.clone(),
        receipt_handle,
        body: message.body.clone(),
        md5_of_body: message.md5_of_body.clone(),
        md5_of_message_attributes: message.md5_of_attributes.clone(),
        system_attributes: system,
        message_attributes: message.attributes.clone(),
    }
}
