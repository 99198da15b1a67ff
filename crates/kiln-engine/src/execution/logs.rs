//! Function logs: stored per log group and stream, like CloudWatch Logs, and followable live.
//!
//! Each stream is an append-only file `DATA/logs/<group>/<stream>.log` of lines
//! `<epoch-millis> <message>` (group and stream names percent-encoded). Writes go through one
//! writer thread, off the invoke path, in batches; a read first waits until everything written
//! before it is on disk. Followers subscribe to a broadcast of every new event.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot};

/// How long the writer waits after an event for more to write with it.
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(2);

/// One log event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub timestamp_millis: i64,
    pub group: Arc<str>,
    pub stream: Arc<str>,
    pub message: String,
}

/// What the writer thread is asked to do.
#[derive(Debug)]
enum WriterJob {
    Event(LogEvent),
    /// Answer once everything sent before is written and flushed.
    Flush(oneshot::Sender<()>),
}

/// The log store; cheap to clone.
#[derive(Debug, Clone)]
pub struct LogStore {
    root: PathBuf,
    writes: mpsc::UnboundedSender<WriterJob>,
    events: broadcast::Sender<LogEvent>,
}

impl LogStore {
    /// Opens the store under `root` and starts its writer task.
    pub(crate) fn open(root: PathBuf) -> std::io::Result<Self> {
        fs::create_dir_all(&root)?;
        let (writes, mut receiver) = mpsc::unbounded_channel::<WriterJob>();
        let (events, _) = broadcast::channel(4096);
        let writer_root = root.clone();
        std::thread::Builder::new()
            .name("kiln-log-writer".into())
            .spawn(move || {
                let mut files: HashMap<(Arc<str>, Arc<str>), BufWriter<File>> = HashMap::new();
                while let Some(first) = receiver.blocking_recv() {
                    // Let a batch gather (unless a reader waits), then write it and flush once:
                    // an invocation logs at least three lines, and waking this thread for each
                    // cost more than the writes. Logs still land within milliseconds.
                    if !matches!(first, WriterJob::Flush(_)) {
                        std::thread::sleep(BATCH_WINDOW);
                    }
                    let mut batch = vec![first];
                    while let Ok(more) = receiver.try_recv() {
                        batch.push(more);
                        if batch.len() >= 1024 {
                            break;
                        }
                    }
                    let mut waiting = Vec::new();
                    for write in batch {
                        match write {
                            WriterJob::Event(event) => {
                                if let Err(error) = append(&writer_root, &mut files, &event) {
                                    tracing::warn!(%error, group = %event.group, "writing a log event failed");
                                }
                            }
                            WriterJob::Flush(reader) => waiting.push(reader),
                        }
                    }
                    for file in files.values_mut() {
                        let _ = file.flush();
                    }
                    for reader in waiting {
                        let _ = reader.send(());
                    }
                    // Keep the number of open files bounded.
                    if files.len() > 256 {
                        files.clear();
                    }
                }
            })?;
        Ok(Self {
            root,
            writes,
            events,
        })
    }

    /// Records an event.
    pub fn write(&self, event: LogEvent) {
        // Nobody follows logs most of the time: no copy for nobody.
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(event.clone());
        }
        let _ = self.writes.send(WriterJob::Event(event));
    }

    /// Every new event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LogEvent> {
        self.events.subscribe()
    }

    /// The stored events of a group at or after `since`, in time order (then stream order),
    /// including every event written before this call.
    pub async fn read(&self, group: &str, since_millis: i64) -> std::io::Result<Vec<LogEvent>> {
        let (flushed, wait) = oneshot::channel();
        if self.writes.send(WriterJob::Flush(flushed)).is_ok() {
            let _ = wait.await;
        }
        let root = self.root.clone();
        let group = group.to_owned();
        tokio::task::spawn_blocking(move || read_stored(&root, &group, since_millis))
            .await
            .map_err(std::io::Error::other)?
    }
}

fn read_stored(root: &Path, group: &str, since_millis: i64) -> std::io::Result<Vec<LogEvent>> {
    let dir = root.join(encode(group));
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let group: Arc<str> = Arc::from(group);
    let mut events = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let Some(stream) = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".log"))
            .map(decode)
        else {
            continue;
        };
        let stream: Arc<str> = Arc::from(stream.as_str());
        for line in BufReader::new(File::open(&path)?).lines() {
            let line = line?;
            let Some((timestamp, message)) = line.split_once(' ') else {
                continue;
            };
            let Ok(timestamp_millis) = timestamp.parse::<i64>() else {
                continue;
            };
            if timestamp_millis >= since_millis {
                events.push(LogEvent {
                    timestamp_millis,
                    group: Arc::clone(&group),
                    stream: Arc::clone(&stream),
                    message: message.to_owned(),
                });
            }
        }
    }
    // Stable: lines of one stream keep their order within a millisecond.
    events.sort_by_key(|event| event.timestamp_millis);
    Ok(events)
}

fn append(
    root: &Path,
    files: &mut HashMap<(Arc<str>, Arc<str>), BufWriter<File>>,
    event: &LogEvent,
) -> std::io::Result<()> {
    let key = (Arc::clone(&event.group), Arc::clone(&event.stream));
    if !files.contains_key(&key) {
        let dir = root.join(encode(&event.group));
        fs::create_dir_all(&dir)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{}.log", encode(&event.stream))))?;
        files.insert(key.clone(), BufWriter::new(file));
    }
    let file = files.get_mut(&key).expect("inserted above");
    // Messages are single lines; a stray newline must not split the record.
    let message = event.message.replace('\n', "\r");
    writeln!(file, "{} {}", event.timestamp_millis, message)
}

/// Group and stream names as file names: `/`, `%` and anything unusual percent-encoded.
fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'[' | b']' | b'$') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn decode(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && index + 2 < bytes.len()
            && let Ok(value) = u8::from_str_radix(
                std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or(""),
                16,
            )
        {
            out.push(value);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_file_names() {
        for name in ["/aws/lambda/f", "2024/01/15/[$LATEST]abc", "weird %name"] {
            assert_eq!(decode(&encode(name)), name);
            assert!(!encode(name).contains('/'));
        }
    }

    #[tokio::test]
    async fn events_are_stored_per_stream_and_read_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path().to_owned()).unwrap();
        let mut live = store.subscribe();
        let event = |ts: i64, stream: &str, message: &str| LogEvent {
            timestamp_millis: ts,
            group: Arc::from("/aws/lambda/f"),
            stream: Arc::from(stream),
            message: message.to_owned(),
        };
        store.write(event(2, "s1", "second"));
        store.write(event(1, "s2", "first\nwith newline"));
        store.write(event(3, "s1", "third"));
        assert_eq!(live.recv().await.unwrap().message, "second");
        // No waiting: a read sees every event written before it.
        let events = store.read("/aws/lambda/f", 0).await.unwrap();
        let messages: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, ["first\rwith newline", "second", "third"]);
        assert_eq!(store.read("/aws/lambda/f", 3).await.unwrap().len(), 1);
        assert!(store.read("/aws/lambda/other", 0).await.unwrap().is_empty());
    }
}
