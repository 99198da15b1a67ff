//! The queue database (`DATA_DIR/queues.db`) and its writer thread.
//!
//! Every change goes through one writer thread. It takes whatever requests have queued up
//! while it was busy and commits them in one transaction (group commit), so that under load
//! one `fsync` covers many requests. A request is answered only after its transaction is
//! durable (WAL, `synchronous=FULL`), and an optional `on_durable` callback runs on the writer
//! thread first, in commit order: that is how sends become visible to receivers only once
//! they are durable, and in the order their sequence numbers were given.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::error::StoreError;
use crate::model::MessageAttributeValue;

/// Ordered schema migrations; migration `i` brings the schema to `user_version = i + 1`.
/// Never edit a released migration: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: queues, their messages, and the deduplication ids of FIFO queues.
    "CREATE TABLE queues (
         id         INTEGER PRIMARY KEY,
         name       TEXT NOT NULL UNIQUE,
         settings   TEXT NOT NULL,
         tags       TEXT NOT NULL,
         created_s  INTEGER NOT NULL,
         modified_s INTEGER NOT NULL
     );
     CREATE TABLE messages (
         seq              INTEGER PRIMARY KEY,
         queue_id         INTEGER NOT NULL,
         message_id       TEXT NOT NULL,
         body             TEXT NOT NULL,
         attributes       TEXT,
         sent_ms          INTEGER NOT NULL,
         sender_id        TEXT NOT NULL,
         group_id         TEXT,
         dedup_id         TEXT,
         trace_header     TEXT,
         dlq_source_arn   TEXT,
         receive_count    INTEGER NOT NULL,
         first_receive_ms INTEGER,
         visible_at_ms    INTEGER NOT NULL,
         receipt_nonce    INTEGER NOT NULL
     );
     CREATE INDEX messages_by_queue ON messages (queue_id);
     CREATE TABLE fifo_dedup (
         queue_id        INTEGER NOT NULL,
         dedup_id        TEXT NOT NULL,
         message_id      TEXT NOT NULL,
         sequence_number TEXT NOT NULL,
         at_ms           INTEGER NOT NULL,
         PRIMARY KEY (queue_id, dedup_id)
     );",
];

/// Most requests a single transaction takes; more wait for the next one.
const MAX_GROUP: usize = 4096;

/// A queue as stored.
#[derive(Debug, Clone)]
pub(crate) struct QueueRow {
    pub id: i64,
    pub name: String,
    pub settings: String,
    pub tags: String,
    pub created_s: i64,
    pub modified_s: i64,
}

/// A message as stored.
#[derive(Debug, Clone)]
pub(crate) struct MessageRow {
    pub seq: i64,
    pub queue_id: i64,
    pub message_id: String,
    pub body: String,
    pub attributes: Option<String>,
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

/// A remembered deduplication id of a FIFO queue.
#[derive(Debug, Clone)]
pub(crate) struct DedupRow {
    pub queue_id: i64,
    pub dedup_id: String,
    pub message_id: String,
    pub sequence_number: String,
    pub at_ms: i64,
}

/// One change to the database.
#[derive(Debug)]
pub(crate) enum Mutation {
    PutQueue(QueueRow),
    DeleteQueue {
        id: i64,
    },
    InsertMessage(MessageRow),
    UpdateDelivery {
        seq: i64,
        receive_count: i64,
        first_receive_ms: Option<i64>,
        visible_at_ms: i64,
        receipt_nonce: i64,
    },
    DeleteMessage {
        seq: i64,
    },
    PurgeQueue {
        queue_id: i64,
    },
    PutDedup(DedupRow),
    PruneDedup {
        before_ms: i64,
    },
}

/// Runs after the transaction holding its request is durable, on the writer thread.
pub(crate) type OnDurable = Box<dyn FnOnce() + Send>;

struct WriteRequest {
    mutations: Vec<Mutation>,
    on_durable: Option<OnDurable>,
    reply: Option<oneshot::Sender<Result<(), StoreError>>>,
}

enum Command {
    Write(WriteRequest),
    Stop,
}

/// Everything stored, as loaded at start-up.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub queues: Vec<QueueRow>,
    pub messages: Vec<MessageRow>,
    pub dedup: Vec<DedupRow>,
}

/// Handle of the writer thread.
#[derive(Debug)]
pub(crate) struct Writer {
    commands: mpsc::Sender<Command>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// Transactions committed so far (for tests of the grouping).
    commits: Arc<AtomicU64>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Write(request) => write!(f, "Write({} mutations)", request.mutations.len()),
            Command::Stop => write!(f, "Stop"),
        }
    }
}

/// Opens the database, brings its schema up to date and loads everything.
pub(crate) fn open(data_dir: &Path) -> Result<(Writer, Loaded), StoreError> {
    std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
        path: data_dir.to_owned(),
        source,
    })?;
    let mut connection = Connection::open(data_dir.join("queues.db"))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: an acknowledged message survives power loss, not only kill -9.
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    migrate(&mut connection)?;
    // Messages whose queue was deleted while their send was committing.
    connection.execute(
        "DELETE FROM messages WHERE queue_id NOT IN (SELECT id FROM queues)",
        [],
    )?;
    connection.execute(
        "DELETE FROM fifo_dedup WHERE queue_id NOT IN (SELECT id FROM queues)",
        [],
    )?;
    let loaded = load(&connection)?;
    let (commands, receiver) = mpsc::channel();
    let commits = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&commits);
    let thread = std::thread::Builder::new()
        .name("kiln-queues-writer".into())
        .spawn(move || write_loop(connection, receiver, &counter))
        .map_err(|source| StoreError::Io {
            path: data_dir.to_owned(),
            source,
        })?;
    Ok((
        Writer {
            commands,
            thread: std::sync::Mutex::new(Some(thread)),
            commits,
        },
        loaded,
    ))
}

fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let supported = i64::try_from(MIGRATIONS.len()).expect("few migrations");
    if version > supported {
        return Err(StoreError::SchemaTooNew {
            found: version,
            supported,
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(
        usize::try_from(version).map_err(|_| StoreError::CorruptRecord("user_version".into()))?,
    ) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(migration)?;
        transaction.pragma_update(
            None,
            "user_version",
            i64::try_from(index + 1).expect("few migrations"),
        )?;
        transaction.commit()?;
    }
    Ok(())
}

fn load(connection: &Connection) -> Result<Loaded, StoreError> {
    let mut loaded = Loaded::default();
    let mut statement = connection.prepare(
        "SELECT id, name, settings, tags, created_s, modified_s FROM queues ORDER BY id",
    )?;
    for row in statement.query_map([], |row| {
        Ok(QueueRow {
            id: row.get(0)?,
            name: row.get(1)?,
            settings: row.get(2)?,
            tags: row.get(3)?,
            created_s: row.get(4)?,
            modified_s: row.get(5)?,
        })
    })? {
        loaded.queues.push(row?);
    }
    let mut statement = connection.prepare(
        "SELECT seq, queue_id, message_id, body, attributes, sent_ms, sender_id, group_id,
                dedup_id, trace_header, dlq_source_arn, receive_count, first_receive_ms,
                visible_at_ms, receipt_nonce
         FROM messages ORDER BY seq",
    )?;
    for row in statement.query_map([], |row| {
        Ok(MessageRow {
            seq: row.get(0)?,
            queue_id: row.get(1)?,
            message_id: row.get(2)?,
            body: row.get(3)?,
            attributes: row.get(4)?,
            sent_ms: row.get(5)?,
            sender_id: row.get(6)?,
            group_id: row.get(7)?,
            dedup_id: row.get(8)?,
            trace_header: row.get(9)?,
            dlq_source_arn: row.get(10)?,
            receive_count: row.get(11)?,
            first_receive_ms: row.get(12)?,
            visible_at_ms: row.get(13)?,
            receipt_nonce: row.get(14)?,
        })
    })? {
        loaded.messages.push(row?);
    }
    let mut statement = connection
        .prepare("SELECT queue_id, dedup_id, message_id, sequence_number, at_ms FROM fifo_dedup")?;
    for row in statement.query_map([], |row| {
        Ok(DedupRow {
            queue_id: row.get(0)?,
            dedup_id: row.get(1)?,
            message_id: row.get(2)?,
            sequence_number: row.get(3)?,
            at_ms: row.get(4)?,
        })
    })? {
        loaded.dedup.push(row?);
    }
    Ok(loaded)
}

/// Where message sequence numbers continue after a restart: above every stored one and above
/// every one issued before (they were at most 1,024 per millisecond above the clock-derived
/// start of their run), so that FIFO `SequenceNumber`s keep increasing even when the newest
/// messages were deleted.
pub(crate) fn first_free_seq(loaded: &Loaded, now_ms: i64) -> i64 {
    let stored = loaded.messages.iter().map(|m| m.seq).max().unwrap_or(0);
    (stored + 1).max(now_ms.saturating_mul(1024))
}

impl Writer {
    /// Queues `mutations` for the next commit and waits until they are durable.
    pub(crate) async fn write(
        &self,
        mutations: Vec<Mutation>,
        on_durable: Option<OnDurable>,
    ) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Write(WriteRequest {
                mutations,
                on_durable,
                reply: Some(reply),
            }))
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Queues `mutations` for the next commit without waiting (housekeeping: expiry, pruning).
    pub(crate) fn write_in_background(&self, mutations: Vec<Mutation>) {
        if mutations.is_empty() {
            return;
        }
        let _ = self.commands.send(Command::Write(WriteRequest {
            mutations,
            on_durable: None,
            reply: None,
        }));
    }

    /// Queues a write and returns the receiver of its outcome, for callers that must enqueue
    /// while holding a lock (so that commit order follows their order) and wait after.
    pub(crate) fn enqueue(
        &self,
        mutations: Vec<Mutation>,
        on_durable: Option<OnDurable>,
    ) -> oneshot::Receiver<Result<(), StoreError>> {
        let (reply, answer) = oneshot::channel();
        // If the writer stopped, `reply` is dropped and the receiver reports it.
        let _ = self.commands.send(Command::Write(WriteRequest {
            mutations,
            on_durable,
            reply: Some(reply),
        }));
        answer
    }

    /// How many transactions the writer has committed (or tried to).
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Commits what is queued, then stops the thread.
    pub(crate) fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("the queue writer thread panicked");
        }
    }
}

fn write_loop(mut connection: Connection, commands: mpsc::Receiver<Command>, commits: &AtomicU64) {
    let mut group: Vec<WriteRequest> = Vec::new();
    loop {
        let mut stop = false;
        match commands.recv() {
            Ok(Command::Write(request)) => group.push(request),
            Ok(Command::Stop) | Err(_) => stop = true,
        }
        // Everything that arrived while the previous commit was syncing joins this one.
        while !stop && group.len() < MAX_GROUP {
            match commands.try_recv() {
                Ok(Command::Write(request)) => group.push(request),
                Ok(Command::Stop) => stop = true,
                Err(_) => break,
            }
        }
        if !group.is_empty() {
            let outcome = commit(&mut connection, &group);
            commits.fetch_add(1, Ordering::Relaxed);
            if let Err(error) = &outcome {
                tracing::error!(%error, requests = group.len(), "queue commit failed");
            }
            for request in group.drain(..) {
                let result = match &outcome {
                    Ok(()) => {
                        if let Some(on_durable) = request.on_durable {
                            on_durable();
                        }
                        Ok(())
                    }
                    Err(error) => Err(StoreError::CommitFailed(error.to_string())),
                };
                if let Some(reply) = request.reply {
                    let _ = reply.send(result);
                }
            }
        }
        if stop {
            break;
        }
    }
}

fn commit(connection: &mut Connection, group: &[WriteRequest]) -> Result<(), rusqlite::Error> {
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for request in group {
        for mutation in &request.mutations {
            apply(&transaction, mutation)?;
        }
    }
    transaction.commit()
}

fn apply(connection: &Connection, mutation: &Mutation) -> Result<(), rusqlite::Error> {
    match mutation {
        Mutation::PutQueue(queue) => {
            connection
                .prepare_cached(
                    "INSERT INTO queues (id, name, settings, tags, created_s, modified_s)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (id) DO UPDATE SET settings = ?3, tags = ?4, modified_s = ?6",
                )?
                .execute(params![
                    queue.id,
                    queue.name,
                    queue.settings,
                    queue.tags,
                    queue.created_s,
                    queue.modified_s
                ])?;
        }
        Mutation::DeleteQueue { id } => {
            connection.execute("DELETE FROM messages WHERE queue_id = ?1", [id])?;
            connection.execute("DELETE FROM fifo_dedup WHERE queue_id = ?1", [id])?;
            connection.execute("DELETE FROM queues WHERE id = ?1", [id])?;
        }
        Mutation::InsertMessage(message) => {
            connection
                .prepare_cached(
                    "INSERT INTO messages (seq, queue_id, message_id, body, attributes, sent_ms,
                         sender_id, group_id, dedup_id, trace_header, dlq_source_arn,
                         receive_count, first_receive_ms, visible_at_ms, receipt_nonce)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                )?
                .execute(params![
                    message.seq,
                    message.queue_id,
                    message.message_id,
                    message.body,
                    message.attributes,
                    message.sent_ms,
                    message.sender_id,
                    message.group_id,
                    message.dedup_id,
                    message.trace_header,
                    message.dlq_source_arn,
                    message.receive_count,
                    message.first_receive_ms,
                    message.visible_at_ms,
                    message.receipt_nonce
                ])?;
        }
        Mutation::UpdateDelivery {
            seq,
            receive_count,
            first_receive_ms,
            visible_at_ms,
            receipt_nonce,
        } => {
            connection
                .prepare_cached(
                    "UPDATE messages SET receive_count = ?2, first_receive_ms = ?3,
                         visible_at_ms = ?4, receipt_nonce = ?5
                     WHERE seq = ?1",
                )?
                .execute(params![
                    seq,
                    receive_count,
                    first_receive_ms,
                    visible_at_ms,
                    receipt_nonce
                ])?;
        }
        Mutation::DeleteMessage { seq } => {
            connection
                .prepare_cached("DELETE FROM messages WHERE seq = ?1")?
                .execute([seq])?;
        }
        Mutation::PurgeQueue { queue_id } => {
            connection.execute("DELETE FROM messages WHERE queue_id = ?1", [queue_id])?;
        }
        Mutation::PutDedup(row) => {
            connection
                .prepare_cached(
                    "INSERT OR REPLACE INTO fifo_dedup
                         (queue_id, dedup_id, message_id, sequence_number, at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    row.queue_id,
                    row.dedup_id,
                    row.message_id,
                    row.sequence_number,
                    row.at_ms
                ])?;
        }
        Mutation::PruneDedup { before_ms } => {
            connection.execute("DELETE FROM fifo_dedup WHERE at_ms < ?1", [before_ms])?;
        }
    }
    Ok(())
}

/// The store's form of a message's attributes.
#[derive(Debug, Serialize, Deserialize)]
struct StoredAttribute {
    #[serde(rename = "t")]
    data_type: String,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    string_value: Option<String>,
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    binary_value: Option<String>,
}

pub(crate) fn encode_attributes(
    attributes: &BTreeMap<String, MessageAttributeValue>,
) -> Option<String> {
    if attributes.is_empty() {
        return None;
    }
    let stored: BTreeMap<&str, StoredAttribute> = attributes
        .iter()
        .map(|(name, value)| {
            (
                name.as_str(),
                StoredAttribute {
                    data_type: value.data_type.clone(),
                    string_value: value.string_value.clone(),
                    binary_value: value.binary_value.as_ref().map(|b| BASE64.encode(b)),
                },
            )
        })
        .collect();
    Some(serde_json::to_string(&stored).expect("attributes serialise"))
}

pub(crate) fn decode_attributes(
    text: Option<&str>,
) -> Result<BTreeMap<String, MessageAttributeValue>, StoreError> {
    let Some(text) = text else {
        return Ok(BTreeMap::new());
    };
    let stored: BTreeMap<String, StoredAttribute> = serde_json::from_str(text)
        .map_err(|e| StoreError::CorruptRecord(format!("message attributes: {e}")))?;
    stored
        .into_iter()
        .map(|(name, value)| {
            let binary_value = value
                .binary_value
                .map(|b| BASE64.decode(b))
                .transpose()
                .map_err(|e| StoreError::CorruptRecord(format!("binary attribute: {e}")))?;
            Ok((
                name,
                MessageAttributeValue {
                    data_type: value.data_type,
                    string_value: value.string_value,
                    binary_value,
                },
            ))
        })
        .collect()
}

/// How many messages are stored (for tests of the on-disk state).
#[cfg(test)]
pub(crate) fn count_messages(data_dir: &Path) -> i64 {
    let connection = Connection::open(data_dir.join("queues.db")).expect("open");
    connection
        .query_row("SELECT COUNT(*) FROM messages", [], |row| row.get(0))
        .expect("query")
}
