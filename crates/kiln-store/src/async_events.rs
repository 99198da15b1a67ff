//! The durable log of asynchronous invocations (`DATA_DIR/async-events.db`) and its writer
//! thread.
//!
//! An event is inserted before its `Invoke` is answered with 202, rewritten with its attempt
//! count and next attempt time after every failed attempt, and deleted only once its final
//! outcome (success, destination, dead-letter queue or drop) has been delivered. Every change
//! goes through one writer thread that commits whatever queued up while it was busy in one
//! transaction (group commit, as the queue service does), so that under load one `fsync`
//! carries many events. Its own file keeps this hot, append-heavy table away from the metadata
//! store's lock.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use rusqlite::{Connection, params};

use crate::error::StoreError;

/// Ordered schema migrations of `async-events.db`; append, never edit.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE async_events (
         id              INTEGER PRIMARY KEY,
         request_id      TEXT NOT NULL,
         function_name   TEXT NOT NULL,
         qualifier       TEXT,
         payload         BLOB NOT NULL,
         received_ms     INTEGER NOT NULL,
         attempts        INTEGER NOT NULL,
         throttles       INTEGER NOT NULL,
         next_attempt_ms INTEGER NOT NULL,
         last_result     TEXT
     );",
    // 2: the caller's X-Ray trace header, which carries recursive loop detection's lineage.
    "ALTER TABLE async_events ADD COLUMN trace_header TEXT;",
];

/// Most requests one transaction takes; more wait for the next one.
const MAX_GROUP: usize = 4096;

/// One asynchronous invocation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncEvent {
    pub id: i64,
    /// The `x-amzn-RequestId` of the accepted request; every attempt runs under it.
    pub request_id: String,
    pub function_name: String,
    /// The qualifier the caller invoked, if any.
    pub qualifier: Option<String>,
    pub payload: Vec<u8>,
    pub received_ms: i64,
    /// Invocations made so far (function errors and successes; not throttles).
    pub attempts: u32,
    /// Attempts that could not run (throttles, system errors), for the backoff.
    pub throttles: u32,
    pub next_attempt_ms: i64,
    /// The engine's record of the last attempt's outcome (opaque to the store).
    pub last_result: Option<String>,
    /// The caller's `X-Amzn-Trace-Id`, passed on to every attempt.
    pub trace_header: Option<String>,
}

/// One change to the log.
#[derive(Debug, Clone)]
pub enum AsyncEventChange {
    Insert(AsyncEvent),
    /// After a failed attempt: when to try next, and what happened.
    Reschedule {
        id: i64,
        attempts: u32,
        throttles: u32,
        next_attempt_ms: i64,
        last_result: Option<String>,
    },
    /// The event's final outcome was delivered.
    Delete {
        id: i64,
    },
}

/// Called on the writer thread once the changes are durable (or failed to commit).
pub type OnCommitted = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

struct WriteRequest {
    changes: Vec<AsyncEventChange>,
    on_committed: OnCommitted,
}

enum Command {
    Write(WriteRequest),
    Stop,
}

/// Handle of the async event log's writer thread.
pub struct AsyncEventLog {
    commands: std::sync::Mutex<Option<mpsc::Sender<Command>>>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    commits: Arc<AtomicU64>,
}

impl std::fmt::Debug for AsyncEventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncEventLog")
            .field("commits", &self.commits.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl AsyncEventLog {
    /// Opens (creating if needed) the log in `data_dir` and returns every stored event.
    pub fn open(data_dir: &Path) -> Result<(Self, Vec<AsyncEvent>), StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::io(data_dir, e))?;
        let mut connection = Connection::open(data_dir.join("async-events.db"))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: an accepted event survives power loss, not only kill -9.
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut connection)?;
        let events = load(&connection)?;
        let (sender, receiver) = mpsc::channel();
        let commits = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&commits);
        let thread = std::thread::Builder::new()
            .name("kiln-async-writer".to_owned())
            .spawn(move || run_writer(connection, &receiver, &counter))
            .map_err(|e| StoreError::io(data_dir, e))?;
        Ok((
            Self {
                commands: std::sync::Mutex::new(Some(sender)),
                thread: std::sync::Mutex::new(Some(thread)),
                commits,
            },
            events,
        ))
    }

    /// Queues `changes` for the next commit; `on_committed` runs once they are durable.
    pub fn write(&self, changes: Vec<AsyncEventChange>, on_committed: OnCommitted) {
        let request = WriteRequest {
            changes,
            on_committed,
        };
        let sent = match &*lock(&self.commands) {
            Some(sender) => sender.send(Command::Write(request)).map_err(|e| e.0),
            None => Err(Command::Write(request)),
        };
        if let Err(Command::Write(request)) = sent {
            (request.on_committed)(Err(StoreError::Closed));
        }
    }

    /// Transactions committed so far.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Commits what is queued, then stops the writer; later writes fail with `Closed`.
    pub fn shutdown(&self) {
        if let Some(sender) = lock(&self.commands).take() {
            let _ = sender.send(Command::Stop);
        }
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn run_writer(mut connection: Connection, receiver: &mpsc::Receiver<Command>, commits: &AtomicU64) {
    let mut stopping = false;
    while !stopping {
        let first = match receiver.recv() {
            Ok(Command::Write(request)) => request,
            Ok(Command::Stop) | Err(_) => break,
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(Command::Write(request)) => group.push(request),
                Ok(Command::Stop) => {
                    stopping = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let result = commit(&mut connection, &group);
        commits.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = &result {
            tracing::error!(%error, "committing async events failed");
        }
        for request in group {
            let outcome = match &result {
                Ok(()) => Ok(()),
                Err(error) => Err(StoreError::CommitFailed(error.to_string())),
            };
            (request.on_committed)(outcome);
        }
    }
}

fn commit(connection: &mut Connection, group: &[WriteRequest]) -> Result<(), StoreError> {
    let transaction = connection.transaction()?;
    {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO async_events (id, request_id, function_name, qualifier, payload,
                 received_ms, attempts, throttles, next_attempt_ms, last_result, trace_header)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        let mut reschedule = transaction.prepare_cached(
            "UPDATE async_events SET attempts = ?2, throttles = ?3, next_attempt_ms = ?4,
                 last_result = ?5 WHERE id = ?1",
        )?;
        let mut delete = transaction.prepare_cached("DELETE FROM async_events WHERE id = ?1")?;
        for change in group.iter().flat_map(|request| &request.changes) {
            match change {
                AsyncEventChange::Insert(event) => {
                    insert.execute(params![
                        event.id,
                        event.request_id,
                        event.function_name,
                        event.qualifier,
                        event.payload,
                        event.received_ms,
                        event.attempts,
                        event.throttles,
                        event.next_attempt_ms,
                        event.last_result,
                        event.trace_header,
                    ])?;
                }
                AsyncEventChange::Reschedule {
                    id,
                    attempts,
                    throttles,
                    next_attempt_ms,
                    last_result,
                } => {
                    reschedule.execute(params![
                        id,
                        attempts,
                        throttles,
                        next_attempt_ms,
                        last_result
                    ])?;
                }
                AsyncEventChange::Delete { id } => {
                    delete.execute(params![id])?;
                }
            }
        }
    }
    transaction.commit()?;
    Ok(())
}

fn load(connection: &Connection) -> Result<Vec<AsyncEvent>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT id, request_id, function_name, qualifier, payload, received_ms, attempts,
             throttles, next_attempt_ms, last_result, trace_header
         FROM async_events ORDER BY id",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(AsyncEvent {
            id: row.get(0)?,
            request_id: row.get(1)?,
            function_name: row.get(2)?,
            qualifier: row.get(3)?,
            payload: row.get(4)?,
            received_ms: row.get(5)?,
            attempts: row.get(6)?,
            throttles: row.get(7)?,
            next_attempt_ms: row.get(8)?,
            last_result: row.get(9)?,
            trace_header: row.get(10)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if current > supported {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(migration)?;
        transaction.pragma_update(None, "user_version", index as i64 + 1)?;
        transaction.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;

    use super::*;

    fn event(id: i64) -> AsyncEvent {
        AsyncEvent {
            id,
            request_id: format!("req-{id}"),
            function_name: "f".into(),
            qualifier: Some("live".into()),
            payload: b"{\"a\":1}".to_vec(),
            received_ms: 1_700_000_000_000,
            attempts: 0,
            throttles: 0,
            next_attempt_ms: 1_700_000_000_000,
            last_result: None,
            trace_header: Some(format!("Root=1-5759e988-{id:024x};Lineage=1a2b3c4d:3")),
        }
    }

    fn write(log: &AsyncEventLog, changes: Vec<AsyncEventChange>) {
        let (sender, receiver) = channel();
        log.write(
            changes,
            Box::new(move |result| sender.send(result).unwrap()),
        );
        receiver.recv().unwrap().unwrap();
    }

    #[test]
    fn events_survive_reopen_with_their_schedule() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (log, loaded) = AsyncEventLog::open(dir.path()).unwrap();
            assert!(loaded.is_empty());
            write(&log, vec![AsyncEventChange::Insert(event(1))]);
            write(&log, vec![AsyncEventChange::Insert(event(2))]);
            write(
                &log,
                vec![AsyncEventChange::Reschedule {
                    id: 1,
                    attempts: 1,
                    throttles: 0,
                    next_attempt_ms: 1_700_000_060_000,
                    last_result: Some("{}".into()),
                }],
            );
            write(&log, vec![AsyncEventChange::Delete { id: 2 }]);
            log.shutdown();
        }
        let (log, loaded) = AsyncEventLog::open(dir.path()).unwrap();
        let mut expected = event(1);
        expected.attempts = 1;
        expected.next_attempt_ms = 1_700_000_060_000;
        expected.last_result = Some("{}".into());
        assert_eq!(loaded, vec![expected]);
        log.shutdown();
        let (sender, receiver) = channel();
        log.write(
            vec![AsyncEventChange::Delete { id: 1 }],
            Box::new(move |result| sender.send(result.is_err()).unwrap()),
        );
        assert!(receiver.recv().unwrap(), "writes after shutdown fail");
    }
}
